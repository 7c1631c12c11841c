"""Selective state-space scan (Mamba-1) with interchangeable backends.

All backends compute, for every batch ``b``, channel ``d`` and state ``n``::

    dt_t = softplus(delta_t + delta_bias)            (if delta_softplus)
    h_t  = exp(dt_t * A) * h_{t-1} + dt_t * B_t * u_t
    y_t  = sum_n C_t * h_t + D * u_t
    out  = y * silu(z)                               (if z is given)

with the argument conventions of ``mamba_ssm.ops.selective_scan_interface.selective_scan_fn``:
``u, delta, z: (batch, dim, length)``, ``A: (dim, d_state)``, ``B, C: (batch, d_state, length)``,
``D, delta_bias: (dim,)``.

Backends (each registered in the table of :mod:`asteroid_spmamba.mamba.backends` by the module
that holds its kernels, which also gives :class:`~asteroid_spmamba.mamba.Mamba` its fused block
path):

* ``"torch"``: pure PyTorch, any device. A sequence longer than ``SINGLE_CHUNK_MAX_LEN`` steps is
  cut into chunks of about ``sqrt(L)`` steps; all chunks are scanned at once from a zero state, the
  chunk boundary states are then carried across chunks, and each chunk's output is corrected by the
  decayed carry: ``2 sqrt(L) + sqrt(L)`` Python iterations instead of ``L``, each on a tensor
  holding every chunk. Only decays ``exp(dt * A) <= 1`` are ever formed (no division by a cumulative
  product), so it is safe for long sequences and large ``dt``. It runs in place on preallocated
  buffers; its backward pass recomputes the states instead of storing them (memory-lean training).
* ``"cpu"``: a fused C kernel for CPU tensors (:mod:`asteroid_spmamba.mamba.cpu_scan`), compiled
  with the system C compiler on first use: one pass over the inputs per scan, the state in
  registers, ``exp`` vectorised. Forward and backward, float32 and float64.
* ``"cuda"``: the ``mamba_ssm`` CUDA kernel (``pip install mamba-ssm causal-conv1d``;
  :mod:`asteroid_spmamba.mamba.cuda_scan`).
* ``"triton"``: this package's Triton kernels (:mod:`asteroid_spmamba.mamba.triton_scan`; the block
  path in :mod:`asteroid_spmamba.mamba.triton_block`), for GPUs without ``mamba_ssm``; float64
  inputs run in the ``"torch"`` backend.
* ``"sequential"``: one step at a time, the textbook recurrence; used as a reference in tests.
* ``"auto"`` (default): for CUDA tensors ``"triton"`` when Triton imports (the fastest inside the
  model on the GPUs measured, mamba_ssm's kernels included), else ``"cuda"`` when the ``mamba_ssm``
  kernels import; for CPU tensors ``"cpu"`` when its kernel builds (a C compiler is found);
  ``"torch"`` otherwise.

The default can be set with the environment variable ``ASTEROID_SPMAMBA_SCAN_BACKEND``.
"""

import math
from typing import Optional, Union

import torch
import torch.nn.functional as F

# re-exported: the table's names (the kernel backends' own functions live in their modules)
from .backends import BACKEND_ENV_VAR, register, resolve, resolve_backend  # noqa: F401


def _check_real_selective(A, B, C) -> None:
    if A.is_complex():
        raise NotImplementedError("Complex A (S4D-Lin) is not supported; Mamba-1 uses real A.")
    if B.dim() != 3 or C.dim() != 3:
        raise ValueError("B and C must be input-dependent, shaped (batch, d_state, length).")


def _prepare(u, delta, A, B, C, delta_bias, delta_softplus):
    """Upcast to the compute dtype (float32, or float64 for float64 inputs)
    and apply the dt bias."""
    _check_real_selective(A, B, C)
    dtype = torch.float64 if u.dtype == torch.float64 else torch.float32
    u, delta, A, B, C = (t.to(dtype) for t in (u, delta, A, B, C))
    if delta_bias is not None:
        delta = delta + delta_bias.to(dtype)[:, None]
    if delta_softplus:
        delta = F.softplus(delta)
    return u, delta, A, B, C


def _finish(y, u, D, z, dtype_in):
    if D is not None:
        y = y + u * D.to(y.dtype)[:, None]
    if z is not None:
        y = y * F.silu(z.to(y.dtype))
    return y.to(dtype_in)


def selective_scan_sequential(
    u,
    delta,
    A,
    B,
    C,
    D=None,
    z=None,
    delta_bias=None,
    delta_softplus=False,
    return_last_state=False,
    initial_state=None,
):
    """Step-by-step recurrence, one Python iteration per time step (reference)."""
    dtype_in = u.dtype
    u, delta, A, B, C = _prepare(u, delta, A, B, C, delta_bias, delta_softplus)
    batch, dim, length = u.shape
    h = u.new_zeros(batch, dim, A.shape[1]) if initial_state is None else initial_state.to(u.dtype)
    ys = []
    for t in range(length):
        h = (
            torch.exp(delta[:, :, t, None] * A) * h
            + (delta[:, :, t] * u[:, :, t])[..., None] * B[:, None, :, t]
        )
        ys.append((h * C[:, None, :, t]).sum(-1))
    y = torch.stack(ys, dim=-1) if ys else u.new_zeros(batch, dim, 0)
    out = _finish(y, u, D, z, dtype_in)
    return (out, h) if return_last_state else out


# On CPU, sequences up to this many steps are scanned as one chunk: the per-step tensors are large
# enough that Python's per-step overhead is negligible, and one chunk needs no carry correction.
# On GPUs every step is a few kernel launches, so fewer, larger steps (sqrt(L) chunks) win.
SINGLE_CHUNK_MAX_LEN = 512


def default_chunk_size(length: int, device: Optional[torch.device] = None) -> int:
    """Steps per chunk: the whole sequence on CPU up to SINGLE_CHUNK_MAX_LEN,
    else about sqrt(length)."""
    on_gpu = device is not None and device.type != "cpu"
    if length <= SINGLE_CHUNK_MAX_LEN and not on_gpu:
        return max(1, length)
    return max(1, int(math.ceil(math.sqrt(length))))


def _by_step(x: torch.Tensor, n_chunks: int, k_len: int) -> torch.Tensor:
    """``(batch, ch, L) -> (K, batch, n_chunks, ch)``: step k of every chunk, contiguous."""
    x = F.pad(x, (0, n_chunks * k_len - x.shape[-1]))  # padded steps: dt = 0 -> state unchanged
    return x.view(x.shape[0], x.shape[1], n_chunks, k_len).permute(3, 0, 2, 1).contiguous()


def selective_scan_chunked(
    u,
    delta,
    A,
    B,
    C,
    D=None,
    z=None,
    delta_bias=None,
    delta_softplus=False,
    return_last_state=False,
    initial_state=None,
    chunk_size: Optional[int] = None,
):
    """Chunked scan in pure PyTorch (see module docstring).

    The recurrence runs in place on preallocated buffers, a batch slice at a time. Under autograd it
    is a custom function that saves only its inputs and the state entering each chunk; the backward
    pass recomputes the states and runs the adjoint recurrence backwards in time with the same
    chunking, so training memory is O(batch * dim * length) instead of O(... * d_state * length).
    """
    dtype_in = u.dtype
    u, delta, A, B, C = _prepare(u, delta, A, B, C, delta_bias, delta_softplus)
    length = u.shape[-1]
    k_len = chunk_size or default_chunk_size(length, u.device)
    n_chunks = max(1, -(-length // k_len))
    if initial_state is not None:
        initial_state = initial_state.to(u.dtype)
    y, last = _ChunkedScan.apply(delta * u, delta, A, B, C, initial_state, n_chunks, k_len)
    out = _finish(y, u, D, z, dtype_in)
    return (out, last) if return_last_state else out


# Elements per step tensor of the forward kernel: on CPU a batch slice this size stays in cache;
# on GPUs the whole batch goes at once (fewer launches).
_FORWARD_SLICE_ELEMENTS = {"cpu": 1 << 20, "gpu": 1 << 30}
# Elements of the recomputed states kept for one batch slice in the backward pass.
_BACKWARD_SLICE_ELEMENTS = {"cpu": 1 << 25, "gpu": 1 << 28}


def _slice_budget(table, device: torch.device) -> int:
    return table["cpu" if device.type == "cpu" else "gpu"]


def _steps(n_chunks, k_len, x, dt, B, C):
    """Step-major views: x, dt -> (K, b, c, d, 1); B -> (K, b, c, 1, N); C -> (K, b, c, N, 1)."""
    return (
        _by_step(x, n_chunks, k_len)[..., None],
        _by_step(dt, n_chunks, k_len)[..., None],
        _by_step(B, n_chunks, k_len)[..., None, :],
        _by_step(C, n_chunks, k_len)[..., None],
    )


def _unstep(y_steps: torch.Tensor, length: int) -> torch.Tensor:
    """(K, b, c, d, 1) -> (b, d, L)"""
    k_len, batch, n_chunks, dim, _ = y_steps.shape
    return y_steps[..., 0].permute(1, 3, 2, 0).reshape(batch, dim, n_chunks * k_len)[..., :length]


class _ChunkedScan(torch.autograd.Function):
    """y_t = C_t . h_t with h_t = exp(dt_t A) h_{t-1} + x_t B_t (x = dt * u), chunked, in place."""

    @staticmethod
    def forward(ctx, x, dt, A, B, C, initial_state, n_chunks, k_len):
        batch, dim, length = x.shape
        d_state = A.shape[1]
        x_k, dt_k, B_k, C_k = _steps(n_chunks, k_len, x, dt, B, C)
        with_carry = n_chunks > 1 or initial_state is not None
        dt_cum = dt_k.cumsum(0) if with_carry else None
        y = x.new_empty(k_len, batch, n_chunks, dim, 1)
        last = x.new_empty(batch, dim, d_state)
        carry_in_all = x.new_zeros(batch, n_chunks, dim, d_state)
        step = max(
            1, _slice_budget(_FORWARD_SLICE_ELEMENTS, x.device) // (n_chunks * dim * d_state)
        )
        for start in range(0, batch, step):
            sl = slice(start, start + step)
            h = x.new_zeros(min(step, batch - start), n_chunks, dim, d_state)
            decay = torch.empty_like(h)
            # 1) every chunk from a zero state, all chunks at once
            for k in range(k_len):
                torch.mul(dt_k[k, sl], A, out=decay).exp_()
                h.mul_(decay).addcmul_(x_k[k, sl], B_k[k, sl])
                torch.matmul(h, C_k[k, sl], out=y[k, sl])
            carry = (
                x.new_zeros(h.shape[0], dim, d_state)
                if initial_state is None
                else initial_state[sl]
            )
            if not with_carry:
                last[sl] = h[:, 0]
                continue
            # 2) carry the state across chunks: a whole chunk decays by exp(sum dt * A) <= 1
            torch.mul(dt_cum[-1, sl], A, out=decay).exp_()
            carry_in = carry_in_all[sl]
            for c in range(n_chunks):
                carry_in[:, c] = carry
                carry = decay[:, c] * carry + h[:, c]
            last[sl] = carry
            # 3) add the decayed incoming state to every step's output
            for k in range(k_len):
                torch.mul(dt_cum[k, sl], A, out=decay).exp_().mul_(carry_in)
                y[k, sl] += torch.matmul(decay, C_k[k, sl])
        ctx.save_for_backward(x, dt, A, B, C, carry_in_all)
        ctx.chunks = (n_chunks, k_len)
        ctx.has_initial_state = initial_state is not None
        return _unstep(y, length), last

    @staticmethod
    def backward(ctx, grad_y, grad_last):
        x, dt, A, B, C, carry_in_all = ctx.saved_tensors
        n_chunks, k_len = ctx.chunks
        batch, dim, length = x.shape
        d_state = A.shape[1]
        x_k, dt_k, B_k, C_k = _steps(n_chunks, k_len, x, dt, B, C)
        gy_k = _by_step(grad_y.contiguous(), n_chunks, k_len)[..., None]  # (K, b, c, d, 1)
        gx = torch.empty_like(gy_k)
        gdt = torch.empty_like(gy_k)
        gB = x.new_empty(k_len, batch, n_chunks, 1, d_state)
        gC = x.new_empty(k_len, batch, n_chunks, 1, d_state)
        gA = torch.zeros_like(A)
        g_init = x.new_empty(batch, dim, d_state) if ctx.has_initial_state else None
        # The adjoint g_t = dL/dh_t obeys g_t = C_t gy_t + exp(dt_{t+1} A) g_{t+1}
        # (+ dL/dh_last at the end).
        step = max(
            1,
            _slice_budget(_BACKWARD_SLICE_ELEMENTS, x.device)
            // ((k_len + 1) * n_chunks * dim * d_state),
        )
        for start in range(0, batch, step):
            sl = slice(start, start + step)
            sb = min(step, batch - start)
            # recompute the states: states[k] = h before step k, states[k + 1] = h after it
            states = x.new_empty(k_len + 1, sb, n_chunks, dim, d_state)
            states[0] = carry_in_all[sl]
            decay = torch.empty_like(states[0])
            for k in range(k_len):
                torch.mul(dt_k[k, sl], A, out=decay).exp_()
                torch.mul(states[k], decay, out=states[k + 1]).addcmul_(x_k[k, sl], B_k[k, sl])
            # adjoint entering each chunk from its right (the next chunk, or dL/dh_last)
            g_end = x.new_zeros(sb, n_chunks, dim, d_state)
            if grad_last is not None:
                g_end[:, -1] = grad_last[sl]
            if n_chunks > 1:
                g_local = torch.zeros_like(g_end)  # 1) local adjoint at each chunk's first step
                for k in reversed(range(k_len)):
                    if k < k_len - 1:
                        g_local.mul_(torch.mul(dt_k[k + 1, sl], A, out=decay).exp_())
                    g_local.addcmul_(gy_k[k, sl], C_k[k, sl].transpose(-1, -2))
                # 2) carry across chunks, right to left: G_c = g_local_c +
                # decay(steps 1..K-1 of c) * g_end_c
                inner_decay = torch.exp((dt_k[:, sl].sum(0) - dt_k[0, sl]) * A)
                first_decay = torch.exp(dt_k[0, sl] * A)
                for c in reversed(range(n_chunks - 1)):
                    g_next = g_local[:, c + 1] + inner_decay[:, c + 1] * g_end[:, c + 1]
                    g_end[:, c] = first_decay[:, c + 1] * g_next
            # 3) exact adjoint, step by step from each chunk's end, and the gradients it gives
            g = g_end
            tmp = torch.empty_like(g)
            a_next = None
            for k in reversed(range(k_len)):
                if a_next is not None:
                    g.mul_(a_next)
                g.addcmul_(gy_k[k, sl], C_k[k, sl].transpose(-1, -2))
                a_k = torch.mul(dt_k[k, sl], A).exp_()
                torch.matmul(gy_k[k, sl].transpose(-1, -2), states[k + 1], out=gC[k, sl])
                torch.matmul(g, B_k[k, sl].transpose(-1, -2), out=gx[k, sl])
                torch.matmul(x_k[k, sl].transpose(-1, -2), g, out=gB[k, sl])
                torch.mul(g, a_k, out=tmp).mul_(states[k])  # g_t * exp(dt_t A) * h_{t-1}
                gA += torch.einsum("bcdn,bcd->dn", tmp, dt_k[k, sl, ..., 0])
                torch.sum(tmp.mul_(A), dim=-1, keepdim=True, out=gdt[k, sl])
                a_next = a_k
            if g_init is not None:
                g_init[sl] = (a_next * g)[:, 0]
        return (
            _unstep(gx, length),
            _unstep(gdt, length),
            gA,
            _unstep(gB.transpose(-1, -2), length),
            _unstep(gC.transpose(-1, -2), length),  # (b, N, L)
            g_init,
            None,
            None,
        )


def selective_scan(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: Optional[torch.Tensor] = None,
    z: Optional[torch.Tensor] = None,
    delta_bias: Optional[torch.Tensor] = None,
    delta_softplus: bool = False,
    return_last_state: bool = False,
    backend: Optional[str] = None,
) -> Union[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """Selective scan with the signature of ``mamba_ssm``'s ``selective_scan_fn``.

    Args:
        u, delta, z: ``(batch, dim, length)``.
        A: ``(dim, d_state)``, real (negative for a stable system).
        B, C: ``(batch, d_state, length)``.
        D, delta_bias: ``(dim,)``.
        delta_softplus: apply ``softplus`` to ``delta + delta_bias``.
        return_last_state: also return the final state ``(batch, dim, d_state)``.
        backend: ``"auto"``, ``"torch"``, ``"cpu"``, ``"cuda"``, ``"triton"`` or ``"sequential"``
            (:func:`~asteroid_spmamba.mamba.backends.backend_names`); ``None`` reads
            ``$ASTEROID_SPMAMBA_SCAN_BACKEND`` (default ``"auto"``).
    """
    return resolve(backend, u.device).scan(
        u,
        delta,
        A,
        B,
        C,
        D=D,
        z=z,
        delta_bias=delta_bias,
        delta_softplus=delta_softplus,
        return_last_state=return_last_state,
    )


register("torch", selective_scan_chunked)  # also what "auto" runs where nothing faster loads
register("sequential", selective_scan_sequential)


def scan_macs(batch: int, length: int, dim: int, d_state: int) -> int:
    """Multiply-adds of one scan as counted by :mod:`asteroid_spmamba.complexity`.

    Per (batch, step, channel, state): ``dt*A``, ``exp`` (counted as one), ``decay*h``, ``dt*u*B``
    (two), ``+``, ``C*h`` and the sum over states: 9 operations, as in the usual 9·B·L·D·N estimate;
    the chunked backend's carry correction costs about 4 more per element and is not counted, since
    it is an artefact of the parallelisation rather than of the model.
    """
    return 9 * batch * length * dim * d_state
