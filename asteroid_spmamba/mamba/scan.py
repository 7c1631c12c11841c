"""Selective state-space scan (Mamba-1) with interchangeable backends.

All backends compute, for every batch ``b``, channel ``d`` and state ``n``::

    dt_t = softplus(delta_t + delta_bias)            (if delta_softplus)
    h_t  = exp(dt_t * A) * h_{t-1} + dt_t * B_t * u_t
    y_t  = sum_n C_t * h_t + D * u_t
    out  = y * silu(z)                               (if z is given)

with the argument conventions of ``mamba_ssm.ops.selective_scan_interface.selective_scan_fn``:
``u, delta, z: (batch, dim, length)``, ``A: (dim, d_state)``, ``B, C: (batch, d_state, length)``,
``D, delta_bias: (dim,)``.

Backends:

* ``"torch"``: pure PyTorch, any device. A sequence longer than ``SINGLE_CHUNK_MAX_LEN`` steps is
  cut into chunks of about ``sqrt(L)`` steps; all chunks are scanned at once from a zero state, the
  chunk boundary states are then carried across chunks, and each chunk's output is corrected by the
  decayed carry: ``2 sqrt(L) + sqrt(L)`` Python iterations instead of ``L``, each on a tensor holding
  every chunk. Only decays ``exp(dt * A) <= 1`` are ever formed (no division by a cumulative
  product), so it is safe for long sequences and large ``dt``. Without autograd it runs in place.
* ``"cuda"``: the ``mamba_ssm`` CUDA kernel (``pip install mamba-ssm causal-conv1d``).
* ``"sequential"``: one step at a time, the textbook recurrence; used as a reference in tests.
* ``"auto"`` (default): ``"cuda"`` for CUDA tensors when ``mamba_ssm`` kernels import, else ``"torch"``.

The default can be set with the environment variable ``ASTEROID_SPMAMBA_SCAN_BACKEND``.
"""
import math
import os
from functools import lru_cache
from typing import Optional, Tuple, Union

import torch
import torch.nn.functional as F

BACKENDS = ("auto", "torch", "cuda", "sequential")
BACKEND_ENV_VAR = "ASTEROID_SPMAMBA_SCAN_BACKEND"
CUDA_INSTALL_HINT = (
    "pip install 'asteroid-spmamba[cuda]'  (or: pip install mamba-ssm causal-conv1d "
    "--no-build-isolation), on a machine with a CUDA toolkit matching your torch build"
)


@lru_cache(maxsize=None)
def _cuda_kernels():
    """Import mamba_ssm's CUDA entry points once; None when they are not importable."""
    try:
        from mamba_ssm.ops.selective_scan_interface import mamba_inner_fn, selective_scan_fn
    except (ImportError, OSError, AttributeError):
        return None
    try:
        from causal_conv1d import causal_conv1d_fn
    except (ImportError, OSError):
        causal_conv1d_fn = None
    return {
        "selective_scan_fn": selective_scan_fn,
        "mamba_inner_fn": mamba_inner_fn,
        "causal_conv1d_fn": causal_conv1d_fn,
    }


def cuda_kernels_available() -> bool:
    """Whether the ``mamba_ssm`` CUDA kernels can be imported (a GPU is still needed to run them)."""
    return _cuda_kernels() is not None


def resolve_backend(backend: Optional[str], device: torch.device) -> str:
    """Turn ``None``/``"auto"``/an explicit name into the backend that will run on ``device``."""
    if backend is None:
        backend = os.environ.get(BACKEND_ENV_VAR, "auto") or "auto"
    backend = backend.lower()
    if backend not in BACKENDS:
        raise ValueError(f"Unknown scan backend {backend!r}; choose one of {BACKENDS}.")
    if backend == "auto":
        return "cuda" if device.type == "cuda" and cuda_kernels_available() else "torch"
    if backend == "cuda":
        if not cuda_kernels_available():
            raise ImportError(
                "The 'cuda' scan backend needs the mamba_ssm CUDA kernels, which could not be "
                f"imported. Install them with: {CUDA_INSTALL_HINT}. Or use backend='torch'."
            )
        if device.type != "cuda":
            raise ValueError(
                f"The 'cuda' scan backend runs on CUDA tensors only, got tensors on {device}. "
                "Move the model to a GPU or use backend='torch'."
            )
    return backend


def _prepare(u, delta, A, B, C, delta_bias, delta_softplus):
    """Upcast to the compute dtype (float32, or float64 for float64 inputs) and apply the dt bias."""
    if A.is_complex():
        raise NotImplementedError("Complex A (S4D-Lin) is not supported; Mamba-1 uses real A.")
    if B.dim() != 3 or C.dim() != 3:
        raise ValueError("B and C must be input-dependent, shaped (batch, d_state, length).")
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
    u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
    return_last_state=False, initial_state=None,
):
    """Step-by-step recurrence, one Python iteration per time step (reference)."""
    dtype_in = u.dtype
    u, delta, A, B, C = _prepare(u, delta, A, B, C, delta_bias, delta_softplus)
    batch, dim, length = u.shape
    h = u.new_zeros(batch, dim, A.shape[1]) if initial_state is None else initial_state.to(u.dtype)
    ys = []
    for t in range(length):
        h = torch.exp(delta[:, :, t, None] * A) * h + (delta[:, :, t] * u[:, :, t])[..., None] * B[:, None, :, t]
        ys.append((h * C[:, None, :, t]).sum(-1))
    y = torch.stack(ys, dim=-1) if ys else u.new_zeros(batch, dim, 0)
    out = _finish(y, u, D, z, dtype_in)
    return (out, h) if return_last_state else out


# Sequences up to this many steps are scanned as one chunk: their per-step tensors are large enough
# that Python's per-step overhead is negligible, and one chunk needs no carry correction.
SINGLE_CHUNK_MAX_LEN = 512


def default_chunk_size(length: int) -> int:
    """One chunk up to SINGLE_CHUNK_MAX_LEN steps, else about sqrt(length) steps per chunk."""
    if length <= SINGLE_CHUNK_MAX_LEN:
        return max(1, length)
    return int(math.ceil(math.sqrt(length)))


def _by_step(x: torch.Tensor, n_chunks: int, k_len: int) -> torch.Tensor:
    """``(batch, ch, L) -> (K, batch, n_chunks, ch)``: step k of every chunk, contiguous."""
    x = F.pad(x, (0, n_chunks * k_len - x.shape[-1]))  # padded steps: dt = 0 -> state unchanged
    return x.view(x.shape[0], x.shape[1], n_chunks, k_len).permute(3, 0, 2, 1).contiguous()


def selective_scan_chunked(
    u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
    return_last_state=False, initial_state=None, chunk_size: Optional[int] = None,
):
    """Chunked scan in pure PyTorch (see module docstring).

    Under autograd it is built from out-of-place operations; without gradients it runs in place on
    preallocated buffers, a batch slice at a time, which is several times faster on CPU.
    """
    dtype_in = u.dtype
    u, delta, A, B, C = _prepare(u, delta, A, B, C, delta_bias, delta_softplus)
    batch, dim, length = u.shape
    d_state = A.shape[1]
    k_len = chunk_size or default_chunk_size(length)
    n_chunks = max(1, -(-length // k_len))
    needs_grad = torch.is_grad_enabled() and any(
        t is not None and t.requires_grad for t in (u, delta, A, B, C, initial_state)
    )
    scan = _chunked_autograd if needs_grad else _chunked_inplace
    y, last = scan(u, delta, A, B, C, initial_state, n_chunks, k_len)
    out = _finish(y, u, D, z, dtype_in)
    return (out, last) if return_last_state else out


def _chunked_autograd(u, delta, A, B, C, initial_state, n_chunks, k_len):
    batch, dim, length = u.shape
    d_state = A.shape[1]
    dt = _by_step(delta, n_chunks, k_len)[..., None]  # (K, b, c, d, 1)
    dt_u = _by_step(delta * u, n_chunks, k_len)[..., None]
    B_k = _by_step(B, n_chunks, k_len)[..., None, :]  # (K, b, c, 1, N)
    C_k = _by_step(C, n_chunks, k_len)[..., None]  # (K, b, c, N, 1)

    # 1) scan every chunk from a zero state, all chunks at once
    h = u.new_zeros(batch, n_chunks, dim, d_state)
    ys = []
    for k in range(k_len):
        h = torch.exp(dt[k] * A) * h + dt_u[k] * B_k[k]
        ys.append(torch.matmul(h, C_k[k])[..., 0])  # (b, c, d)

    # 2) carry the state across chunk boundaries (decay of a whole chunk = exp(sum dt * A) <= 1)
    dt_cum = dt.cumsum(0)  # (K, b, c, d, 1)
    chunk_decay = torch.exp(dt_cum[-1] * A)  # (b, c, d, N)
    carry = u.new_zeros(batch, dim, d_state) if initial_state is None else initial_state.to(u.dtype)
    carries = []
    for c in range(n_chunks):
        carries.append(carry)
        carry = chunk_decay[:, c] * carry + h[:, c]
    carry_in = torch.stack(carries, dim=1)  # state entering each chunk, (b, c, d, N)

    # 3) add the decayed incoming state to each step's output
    if n_chunks > 1 or initial_state is not None:
        ys = [y + torch.matmul(torch.exp(dt_cum[k] * A) * carry_in, C_k[k])[..., 0] for k, y in enumerate(ys)]
    y = torch.stack(ys, dim=-1)  # (b, c, d, K)
    return y.transpose(1, 2).reshape(batch, dim, n_chunks * k_len)[..., :length], carry


# Elements per step tensor of the in-place kernel: a batch slice this size stays in cache.
_INPLACE_SLICE_ELEMENTS = 1 << 20


@torch.no_grad()
def _chunked_inplace(u, delta, A, B, C, initial_state, n_chunks, k_len):
    batch, dim, length = u.shape
    d_state = A.shape[1]
    dt = _by_step(delta, n_chunks, k_len)[..., None]  # (K, b, c, d, 1)
    dt_u = _by_step(delta * u, n_chunks, k_len)[..., None]
    B_k = _by_step(B, n_chunks, k_len)[..., None, :]  # (K, b, c, 1, N)
    C_k = _by_step(C, n_chunks, k_len)[..., None]  # (K, b, c, N, 1)
    dt_cum = dt.cumsum(0) if n_chunks > 1 or initial_state is not None else None
    y = u.new_empty(k_len, batch, n_chunks, dim, 1)
    last = u.new_empty(batch, dim, d_state)
    step = max(1, _INPLACE_SLICE_ELEMENTS // (n_chunks * dim * d_state))
    for start in range(0, batch, step):
        sl = slice(start, start + step)
        h = u.new_zeros(min(step, batch - start), n_chunks, dim, d_state)
        decay = torch.empty_like(h)
        for k in range(k_len):
            torch.mul(dt[k, sl], A, out=decay).exp_()
            h.mul_(decay).addcmul_(dt_u[k, sl], B_k[k, sl])
            torch.matmul(h, C_k[k, sl], out=y[k, sl])
        carry = u.new_zeros(h.shape[0], dim, d_state) if initial_state is None else initial_state[sl].clone()
        if dt_cum is None:
            last[sl] = h[:, 0]
            continue
        torch.mul(dt_cum[-1, sl], A, out=decay).exp_()
        carry_in = torch.empty_like(h)
        for c in range(n_chunks):
            carry_in[:, c] = carry
            carry = decay[:, c] * carry + h[:, c]
        last[sl] = carry
        for k in range(k_len):
            torch.mul(dt_cum[k, sl], A, out=decay).exp_().mul_(carry_in)
            y[k, sl] += torch.matmul(decay, C_k[k, sl])
    y = y[..., 0].permute(1, 3, 2, 0)  # (b, d, c, K)
    return y.reshape(batch, dim, n_chunks * k_len)[..., :length], last


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
) -> Union[torch.Tensor, Tuple[torch.Tensor, torch.Tensor]]:
    """Selective scan with the signature of ``mamba_ssm``'s ``selective_scan_fn``.

    Args:
        u, delta, z: ``(batch, dim, length)``.
        A: ``(dim, d_state)``, real (negative for a stable system).
        B, C: ``(batch, d_state, length)``.
        D, delta_bias: ``(dim,)``.
        delta_softplus: apply ``softplus`` to ``delta + delta_bias``.
        return_last_state: also return the final state ``(batch, dim, d_state)``.
        backend: ``"auto"``, ``"torch"``, ``"cuda"`` or ``"sequential"``; ``None`` reads
            ``$ASTEROID_SPMAMBA_SCAN_BACKEND`` (default ``"auto"``).
    """
    backend = resolve_backend(backend, u.device)
    kwargs = dict(D=D, z=z, delta_bias=delta_bias, delta_softplus=delta_softplus,
                  return_last_state=return_last_state)
    if backend == "cuda":
        return _cuda_kernels()["selective_scan_fn"](u, delta, A, B, C, **kwargs)
    if backend == "sequential":
        return selective_scan_sequential(u, delta, A, B, C, **kwargs)
    return selective_scan_chunked(u, delta, A, B, C, **kwargs)


def scan_macs(batch: int, length: int, dim: int, d_state: int) -> int:
    """Multiply-adds of one scan as counted by :mod:`asteroid_spmamba.complexity`.

    Per (batch, step, channel, state): ``dt*A``, ``exp`` (counted as one), ``decay*h``, ``dt*u*B``
    (two), ``+``, ``C*h`` and the sum over states: 9 operations, as in the usual 9·B·L·D·N estimate;
    the chunked backend's carry correction costs about 4 more per element and is not counted, since
    it is an artefact of the parallelisation rather than of the model.
    """
    return 9 * batch * length * dim * d_state
