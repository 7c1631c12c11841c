"""Selective scan (Mamba-1) in Triton: forward and backward kernels for GPUs without ``mamba_ssm``.

Same computation and argument conventions as :func:`asteroid_spmamba.mamba.scan.selective_scan`
(``u, delta, z: (batch, dim, length)``, ``A: (dim, d_state)`` real, ``B, C: (batch, d_state,
length)``, ``D, delta_bias: (dim,)``). Inputs may be float32, float16 or bfloat16 (A, D and the bias
are used in float32); the state and every accumulation are float32; outputs take the dtype of ``u``.

Forward kernel: one program per (batch, block of ``BLOCK_D`` channels) walks the sequence one step
at a time, the ``(d_state, BLOCK_D)`` state staying in registers: with the channels on the threads
and the states inside each thread, ``y_t = C_t . h_t`` needs no communication between threads. The
next step's inputs are loaded before the current step is computed, hiding the memory latency. Each
step reads every channel, so ``u``, ``delta``, ``z`` and the output are channel-contiguous
(``(batch, dim, length)`` views of ``(batch, length, dim)`` memory; other layouts are copied): in
:class:`~asteroid_spmamba.mamba.Mamba` they are so already, and ``out_proj`` reads the output
without a copy.

Backward (nothing but the inputs is saved by the forward pass, as in the torch backend): one
backward program per (sequence, block of channels), in the forward kernel's layout, walks the
sequence from its end one step at a time: it loads ``h_{t-1}``, rebuilds ``h_t`` with one
multiply-add, and updates the adjoint in registers; the inputs and state of step ``t - 1`` are
loaded while step ``t`` is computed (one warp per program, so nothing else would hide the memory
latency). Per step, the sums over channels (dB, dC) are reduced across the block's threads; each
channel block writes its own row, and the rows are summed afterwards. The states it walks back
come in one of two ways (:data:`BACKWARD_METHOD`):

* ``"recompute"`` (default): the forward pass keeps only the state entering every chunk of
  :data:`RECOMPUTE_CHUNK` steps, and each chunk's states are recomputed into per-program scratch
  rows (small enough to stay in L2) just before the chunk is walked back;
* ``"stored"``: for a slice of the batch (at most ``STORED_STATES_BUDGET`` state elements, 1 GiB),
  the forward kernel runs again and stores the state entering every step (every state goes through
  HBM twice).

The forward kernel's sizes are autotuned on the GPU.

Also here: :func:`causal_conv1d_silu_triton`, Mamba's depthwise causal convolution with its SiLU
(forward and backward) on channel-contiguous tensors, which the Triton path of
:class:`~asteroid_spmamba.mamba.Mamba` uses instead of a cuDNN grouped convolution.

Testing on CPU: with ``TRITON_INTERPRET=1`` set before this module is imported, the kernels run in
Triton's interpreter on CPU tensors (slow; for small sizes), and :func:`compile_for_target` compiles
them for a GPU architecture without a GPU (used by the tests to catch compiler errors).

References
    [1] A. Gu, T. Dao, "Mamba: Linear-time sequence modeling with selective state spaces",
    arXiv:2312.00752, 2023.
    [2] P. Tillet, H. T. Kung, D. Cox, "Triton: an intermediate language and compiler for tiled
    neural network computations", MAPL 2019.
"""

import os
from typing import Optional, Union

import torch

try:
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - triton ships with CUDA builds of torch
    triton = None
    tl = None


def interpreting() -> bool:
    """Whether Triton kernels run in the CPU interpreter (``TRITON_INTERPRET=1`` at import)."""
    return _INTERPRET


def triton_available() -> bool:
    """Whether Triton is importable (GPU kernels still need a CUDA device, or the interpreter)."""
    return triton is not None


_INTERPRET = os.environ.get("TRITON_INTERPRET", "0").lower() in ("1", "true", "yes", "on")


def _fix_interpreter_scalars() -> None:
    """Triton's interpreter holds scalars as 1-element arrays and turns them into Python ints with
    ``int(array)``, which numpy >= 2.4 refuses ("only 0-dimensional arrays can be converted"), so
    any loop over a runtime bound fails. Convert through ``.item()`` instead (interpreter mode
    only)."""
    import numpy as np

    try:
        int(np.zeros(1))
        return  # this numpy still converts 1-element arrays
    except TypeError:
        pass
    from triton.runtime import interpreter

    if getattr(interpreter, "_asteroid_spmamba_scalar_fix", False):
        return
    original = interpreter._patch_lang_tensor

    def patch(tensor, scope):
        original(tensor, scope)
        scope.set_attr(
            tensor, "__index__", lambda self: int(np.asarray(self.handle.data).reshape(-1)[0])
        )

    interpreter._patch_lang_tensor = patch
    interpreter._asteroid_spmamba_scalar_fix = True


if triton is not None and _INTERPRET:
    _fix_interpreter_scalars()

if triton is not None:

    @triton.jit
    def _load_tile(ptr, t, offs_d, sl, mask):
        """(steps, channels) tile of a channel-contiguous tensor as float32, zero where masked."""
        return tl.load(ptr + t[:, None] * sl + offs_d[None, :], mask=mask, other=0.0).to(tl.float32)

    @triton.jit
    def _row(tile, rows, i):
        """Row ``i`` (a compile-time index) of a tile whose rows sit in each thread's registers.

        With constant ``i`` the select-and-sum folds away (adding -0.0 is exact): a register pick.
        """
        return tl.sum(tl.where(rows[:, None] == i, tile, -0.0), axis=0)

    @triton.jit
    def _entry(vec, rows, i):
        """Entry ``i`` (a compile-time index) of a vector held whole by every thread."""
        return tl.sum(tl.where(rows == i, vec, -0.0), axis=0)

    @triton.jit
    def _softplus(x):
        return tl.where(x <= 20.0, tl.log(1.0 + tl.exp(x)), x)

    @triton.jit
    def _state_tile(
        A_ptr,
        D_ptr,
        bias_ptr,
        sA_d,
        sA_n,
        DIM,
        NSTATE,
        pid_d,
        HAS_D: tl.constexpr,
        HAS_BIAS: tl.constexpr,
        EVEN_N: tl.constexpr,
        BLOCK_D: tl.constexpr,
        BLOCK_N: tl.constexpr,
    ):
        """Channel and state offsets and masks of a program's ``(d_state, BLOCK_D)`` state tile,
        with its ``A`` (float32), ``D`` and delta bias (zeros when absent); shared by the forward
        and the stored-state backward kernels, which must lay the tile out alike."""
        offs_d = pid_d * BLOCK_D + tl.arange(0, BLOCK_D)
        offs_n = tl.arange(0, BLOCK_N)
        mask_d = offs_d < DIM
        if EVEN_N:
            mask_n = offs_n < BLOCK_N  # all true: lets B/C rows load as vectors
        else:
            mask_n = offs_n < NSTATE
        mask_nd = mask_n[:, None] & mask_d[None, :]
        # A arrives as (d_state, dim) with unit channel stride: Triton then puts the channels on the
        # threads and a channel's states in one thread (no shuffles for C.h).
        A = tl.load(
            A_ptr + offs_n[:, None] * sA_n + offs_d[None, :] * sA_d, mask=mask_nd, other=0.0
        ).to(tl.float32)
        Dv = tl.zeros((BLOCK_D,), dtype=tl.float32)
        if HAS_D:
            Dv = tl.load(D_ptr + offs_d, mask=mask_d, other=0.0).to(tl.float32)
        bias = tl.zeros((BLOCK_D,), dtype=tl.float32)
        if HAS_BIAS:
            bias = tl.load(bias_ptr + offs_d, mask=mask_d, other=0.0).to(tl.float32)
        return offs_d, offs_n, mask_d, mask_n, mask_nd, A, Dv, bias

    @triton.jit
    def _load_step(
        u_p,
        dt_p,
        B_p,
        C_p,
        z_p,
        t,
        su_l,
        sdt_l,
        sB_l,
        sC_l,
        sz_l,
        mask_d,
        mask_n,
        valid,
        HAS_Z: tl.constexpr,
    ):
        """Step ``t``'s ``u``, ``delta``, ``B``, ``C`` and ``z`` (``u`` again without z) as stored,
        zero where ``valid`` is false. Addresses come from the step index (not carried through the
        loop), so that Triton sees their contiguity and alignment and loads vectors at once."""
        u = tl.load(u_p + t * su_l, mask=mask_d & valid, other=0.0)
        dt = tl.load(dt_p + t * sdt_l, mask=mask_d & valid, other=0.0)
        B = tl.load(B_p + t * sB_l, mask=mask_n & valid, other=0.0)
        C = tl.load(C_p + t * sC_l, mask=mask_n & valid, other=0.0)
        z = u
        if HAS_Z:
            z = tl.load(z_p + t * sz_l, mask=mask_d & valid, other=0.0)
        return u, dt, B, C, z

    @triton.jit
    def _scan_fwd_kernel(
        u_ptr,
        dt_ptr,
        A_ptr,
        B_ptr,
        C_ptr,
        D_ptr,
        z_ptr,
        bias_ptr,
        out_ptr,
        states_ptr,
        last_ptr,
        L,
        DIM,
        NSTATE,
        SEQ_BUCKET,
        su_b,
        su_d,
        su_l,
        sdt_b,
        sdt_d,
        sdt_l,
        sA_d,
        sA_n,
        sB_b,
        sB_n,
        sB_l,
        sC_b,
        sC_n,
        sC_l,
        sz_b,
        sz_d,
        sz_l,
        so_b,
        so_d,
        so_l,
        HAS_D: tl.constexpr,
        HAS_Z: tl.constexpr,
        HAS_BIAS: tl.constexpr,
        SOFTPLUS: tl.constexpr,
        STORE_OUT: tl.constexpr,
        STORE_STATES: tl.constexpr,
        STORE_LAST: tl.constexpr,
        STATE_CHUNK: tl.constexpr,
        EVEN_N: tl.constexpr,
        BLOCK_D: tl.constexpr,
        BLOCK_N: tl.constexpr,
    ):
        pid_b = tl.program_id(0).to(tl.int64)
        pid_d = tl.program_id(1)
        offs_d, offs_n, mask_d, mask_n, mask_nd, A, Dv, bias = _state_tile(
            A_ptr,
            D_ptr,
            bias_ptr,
            sA_d,
            sA_n,
            DIM,
            NSTATE,
            pid_d,
            HAS_D,
            HAS_BIAS,
            EVEN_N,
            BLOCK_D,
            BLOCK_N,
        )
        A2 = A * 1.4426950408889634  # exp(x) = exp2(x log2 e)
        u_p = u_ptr + pid_b * su_b + offs_d * su_d
        dt_p = dt_ptr + pid_b * sdt_b + offs_d * sdt_d
        z_p = z_ptr + pid_b * sz_b + offs_d * sz_d
        o_p = out_ptr + pid_b * so_b + offs_d * so_d
        B_p = B_ptr + pid_b * sB_b + offs_n * sB_n
        C_p = C_ptr + pid_b * sC_b + offs_n * sC_n
        st_p = (
            states_ptr
            + pid_b * (tl.cdiv(L, STATE_CHUNK) * NSTATE * DIM)
            + offs_n[:, None] * DIM
            + offs_d[None, :]
        )
        h = tl.zeros((BLOCK_N, BLOCK_D), dtype=tl.float32)
        # prefetch step 0
        u_n, dt_n, B_n, C_n, z_n = _load_step(
            u_p, dt_p, B_p, C_p, z_p, 0, su_l, sdt_l, sB_l, sC_l, sz_l, mask_d, mask_n, L > 0, HAS_Z
        )
        for t in range(L):
            u_t = u_n.to(tl.float32)
            dt_t = dt_n.to(tl.float32)
            B_t = B_n.to(tl.float32)
            C_t = C_n.to(tl.float32)
            if HAS_Z:
                z_t = z_n.to(tl.float32)
            # issue the next step's loads before computing this one (hides the memory latency)
            u_n, dt_n, B_n, C_n, z_n = _load_step(
                u_p,
                dt_p,
                B_p,
                C_p,
                z_p,
                t + 1,
                su_l,
                sdt_l,
                sB_l,
                sC_l,
                sz_l,
                mask_d,
                mask_n,
                t + 1 < L,
                HAS_Z,
            )
            if STORE_STATES:  # the state entering each chunk, for the backward pass
                tl.store(
                    st_p + (t // STATE_CHUNK) * (NSTATE * DIM),
                    h,
                    mask=mask_nd & (t % STATE_CHUNK == 0),
                )
            if HAS_BIAS:
                dt_t += bias
            if SOFTPLUS:
                dt_t = _softplus(dt_t)
            h = tl.exp2(A2 * dt_t[None, :]) * h + B_t[:, None] * (dt_t * u_t)[None, :]
            if STORE_OUT:
                y = tl.sum(h * C_t[:, None], axis=0)
                if HAS_D:
                    y += Dv * u_t
                if HAS_Z:
                    y *= z_t / (1.0 + tl.exp(-z_t))
                tl.store(o_p + t * so_l, y.to(out_ptr.dtype.element_ty), mask=mask_d)
        if STORE_LAST:
            last_p = last_ptr + pid_b * (NSTATE * DIM) + offs_n[:, None] * DIM + offs_d[None, :]
            tl.store(last_p, h, mask=mask_nd)

    @triton.jit
    def _bwd_step(
        h_prev,
        g,
        a_next,
        dA_acc,
        dD_acc,
        dbias_acc,
        u_t,
        draw,
        gy,
        B_t,
        C_t,
        z_t,
        A,
        A2,
        Dv,
        bias,
        mask_d,
        mask_n,
        t,
        dz_p,
        sdz_l,
        dB_p,
        dC_p,
        du_p,
        sdu_l,
        ddt_p,
        sddt_l,
        HAS_D: tl.constexpr,
        HAS_Z: tl.constexpr,
        HAS_BIAS: tl.constexpr,
        SOFTPLUS: tl.constexpr,
        PARTIALS: tl.constexpr,
    ):
        """One step of the stored-state backward, in the forward kernel's layout: from the state
        entering step ``t`` (``h_prev``), the adjoint after it (``g``) and the decay of step ``t +
        1`` (``a_next``), write step ``t``'s gradients and return the adjoint at ``t``, this step's
        decay and the updated dA, dD and delta-bias accumulators."""
        if HAS_BIAS:
            draw += bias
        if SOFTPLUS:
            dt = _softplus(draw)
        else:
            dt = draw
        dt = tl.where(mask_d, dt, 0.0)
        a = tl.exp2(A2 * dt[None, :])
        x = dt * u_t
        h = a * h_prev + B_t[:, None] * x[None, :]
        if HAS_Z:
            sz = 1.0 / (1.0 + tl.exp(-z_t))
            y = tl.sum(h * C_t[:, None], axis=0)
            if HAS_D:
                y += Dv * u_t
            tl.store(
                dz_p + t * sdz_l,
                (gy * sz * (1.0 + z_t * (1.0 - sz)) * y).to(dz_p.dtype.element_ty),
                mask=mask_d,
            )
            gy = gy * z_t * sz  # dL/dy before the gate
        # adjoint g_t = dL/dh_t = C_t dy_t + a_{t+1} g_{t+1}
        g = a_next * g + C_t[:, None] * gy[None, :]
        if PARTIALS:
            tl.store(dC_p + t, tl.sum(h * gy[None, :], axis=1), mask=mask_n)
            tl.store(dB_p + t, tl.sum(g * x[None, :], axis=1), mask=mask_n)
        else:
            tl.atomic_add(dC_p + t, tl.sum(h * gy[None, :], axis=1), mask=mask_n)
            tl.atomic_add(dB_p + t, tl.sum(g * x[None, :], axis=1), mask=mask_n)
        dx = tl.sum(g * B_t[:, None], axis=0)
        gh = g * a * h_prev
        dA_acc += gh * dt[None, :]
        du = dx * dt
        if HAS_D:
            du += gy * Dv
            dD_acc += gy * u_t
        ddt = dx * u_t + tl.sum(gh * A, axis=0)
        if SOFTPLUS:
            ddt = ddt / (1.0 + tl.exp(-draw))  # softplus' = sigmoid
        ddt = tl.where(mask_d, ddt, 0.0)
        dbias_acc += ddt
        tl.store(du_p + t * sdu_l, du.to(du_p.dtype.element_ty), mask=mask_d)
        tl.store(ddt_p + t * sddt_l, ddt.to(ddt_p.dtype.element_ty), mask=mask_d)
        return g, a, dA_acc, dD_acc, dbias_acc

    @triton.jit
    def _bwd_program(
        u_ptr,
        dt_ptr,
        z_ptr,
        gout_ptr,
        du_ptr,
        ddt_ptr,
        dz_ptr,
        B_ptr,
        C_ptr,
        dB_ptr,
        dC_ptr,
        glast_ptr,
        pid_b,
        pid_d,
        offs_d,
        offs_n,
        mask_nd,
        L,
        DIM,
        NSTATE,
        su_b,
        su_d,
        sdt_b,
        sdt_d,
        sz_b,
        sz_d,
        sg_b,
        sg_d,
        sdu_b,
        sdu_d,
        sddt_b,
        sddt_d,
        sdz_b,
        sdz_d,
        sB_b,
        sB_n,
        sC_b,
        sC_n,
        HAS_GLAST: tl.constexpr,
        PARTIALS: tl.constexpr,
        BLOCK_D: tl.constexpr,
        BLOCK_N: tl.constexpr,
    ):
        """A step-by-step backward program's pointers (its sequence and channel block), its dB/dC
        rows, the adjoint after the last step and zeroed accumulators (stored and recompute
        kernels)."""
        u_p = u_ptr + pid_b * su_b + offs_d * su_d
        dt_p = dt_ptr + pid_b * sdt_b + offs_d * sdt_d
        z_p = z_ptr + pid_b * sz_b + offs_d * sz_d
        g_p = gout_ptr + pid_b * sg_b + offs_d * sg_d
        du_p = du_ptr + pid_b * sdu_b + offs_d * sdu_d
        ddt_p = ddt_ptr + pid_b * sddt_b + offs_d * sddt_d
        dz_p = dz_ptr + pid_b * sdz_b + offs_d * sdz_d
        B_p = B_ptr + pid_b * sB_b + offs_n * sB_n
        C_p = C_ptr + pid_b * sC_b + offs_n * sC_n
        if PARTIALS:  # one row of dB/dC per channel block, summed afterwards: no atomics
            row = (pid_b * tl.num_programs(1) + pid_d) * NSTATE
        else:
            row = pid_b * NSTATE
        dB_p = dB_ptr + (row + offs_n) * L
        dC_p = dC_ptr + (row + offs_n) * L
        nd = offs_n[:, None] * DIM + offs_d[None, :]
        if HAS_GLAST:
            g = tl.load(glast_ptr + pid_b * (NSTATE * DIM) + nd, mask=mask_nd, other=0.0)
        else:
            g = tl.zeros((BLOCK_N, BLOCK_D), dtype=tl.float32)
        a_next = tl.full((BLOCK_N, BLOCK_D), 1.0, dtype=tl.float32)
        dA_acc = tl.zeros((BLOCK_N, BLOCK_D), dtype=tl.float32)
        dD_acc = tl.zeros((BLOCK_D,), dtype=tl.float32)
        dbias_acc = tl.zeros((BLOCK_D,), dtype=tl.float32)
        return (
            u_p,
            dt_p,
            z_p,
            g_p,
            du_p,
            ddt_p,
            dz_p,
            B_p,
            C_p,
            dB_p,
            dC_p,
            nd,
            g,
            a_next,
            dA_acc,
            dD_acc,
            dbias_acc,
        )

    @triton.jit
    def _load_bwd_step(
        u_p, dt_p, g_p, B_p, C_p, t, su_l, sdt_l, sg_l, sB_l, sC_l, mask_d, mask_n, valid
    ):
        """Step ``t``'s ``u``, ``delta``, output gradient, ``B`` and ``C`` as stored, zero where
        ``valid`` is false (the backward kernels' prefetch)."""
        u = tl.load(u_p + t * su_l, mask=mask_d & valid, other=0.0)
        dt = tl.load(dt_p + t * sdt_l, mask=mask_d & valid, other=0.0)
        gy = tl.load(g_p + t * sg_l, mask=mask_d & valid, other=0.0)
        B = tl.load(B_p + t * sB_l, mask=mask_n & valid, other=0.0)
        C = tl.load(C_p + t * sC_l, mask=mask_n & valid, other=0.0)
        return u, dt, gy, B, C

    @triton.jit
    def _store_param_grads(
        dA_ptr,
        dD_ptr,
        dbias_ptr,
        dA_acc,
        dD_acc,
        dbias_acc,
        pid_b,
        nd,
        offs_d,
        mask_nd,
        mask_d,
        DIM,
        NSTATE,
    ):
        """A backward program's partial dA, dD and delta-bias gradients (summed
        over the batch later)."""
        tl.store(dA_ptr + pid_b * (NSTATE * DIM) + nd, dA_acc, mask=mask_nd)
        tl.store(dD_ptr + pid_b * DIM + offs_d, dD_acc, mask=mask_d)
        tl.store(dbias_ptr + pid_b * DIM + offs_d, dbias_acc, mask=mask_d)

    @triton.jit
    def _scan_bwd_stored_kernel(
        u_ptr,
        dt_ptr,
        A_ptr,
        B_ptr,
        C_ptr,
        D_ptr,
        z_ptr,
        bias_ptr,
        gout_ptr,
        states_ptr,
        glast_ptr,
        du_ptr,
        ddt_ptr,
        dA_ptr,
        dB_ptr,
        dC_ptr,
        dD_ptr,
        dz_ptr,
        dbias_ptr,
        L,
        DIM,
        NSTATE,
        su_b,
        su_d,
        su_l,
        sdt_b,
        sdt_d,
        sdt_l,
        sA_d,
        sA_n,
        sB_b,
        sB_n,
        sB_l,
        sC_b,
        sC_n,
        sC_l,
        sz_b,
        sz_d,
        sz_l,
        sg_b,
        sg_d,
        sg_l,
        sdu_b,
        sdu_d,
        sdu_l,
        sddt_b,
        sddt_d,
        sddt_l,
        sdz_b,
        sdz_d,
        sdz_l,
        HAS_D: tl.constexpr,
        HAS_Z: tl.constexpr,
        HAS_BIAS: tl.constexpr,
        SOFTPLUS: tl.constexpr,
        HAS_GLAST: tl.constexpr,
        EVEN_N: tl.constexpr,
        BLOCK_D: tl.constexpr,
        BLOCK_N: tl.constexpr,
        PARTIALS: tl.constexpr,
    ):
        # The forward kernel's layout (channels on the threads, a channel's states in one thread),
        # walking the sequence backwards one step at a time; the state entering each step comes
        # from the forward pass (stored for every step), so nothing is recomputed over chunks.
        pid_b = tl.program_id(0).to(tl.int64)
        pid_d = tl.program_id(1)
        offs_d, offs_n, mask_d, mask_n, mask_nd, A, Dv, bias = _state_tile(
            A_ptr,
            D_ptr,
            bias_ptr,
            sA_d,
            sA_n,
            DIM,
            NSTATE,
            pid_d,
            HAS_D,
            HAS_BIAS,
            EVEN_N,
            BLOCK_D,
            BLOCK_N,
        )
        A2 = A * 1.4426950408889634
        (
            u_p,
            dt_p,
            z_p,
            g_p,
            du_p,
            ddt_p,
            dz_p,
            B_p,
            C_p,
            dB_p,
            dC_p,
            nd,
            g,
            a_next,
            dA_acc,
            dD_acc,
            dbias_acc,
        ) = _bwd_program(
            u_ptr,
            dt_ptr,
            z_ptr,
            gout_ptr,
            du_ptr,
            ddt_ptr,
            dz_ptr,
            B_ptr,
            C_ptr,
            dB_ptr,
            dC_ptr,
            glast_ptr,
            pid_b,
            pid_d,
            offs_d,
            offs_n,
            mask_nd,
            L,
            DIM,
            NSTATE,
            su_b,
            su_d,
            sdt_b,
            sdt_d,
            sz_b,
            sz_d,
            sg_b,
            sg_d,
            sdu_b,
            sdu_d,
            sddt_b,
            sddt_d,
            sdz_b,
            sdz_d,
            sB_b,
            sB_n,
            sC_b,
            sC_n,
            HAS_GLAST,
            PARTIALS,
            BLOCK_D,
            BLOCK_N,
        )
        st_p = states_ptr + pid_b * (L * NSTATE * DIM) + nd  # entry t: the state entering step t
        # prefetch the last step; in the loop, the previous step's loads are issued before the
        # current step is computed (one warp per program: nothing else hides the memory latency)
        # (_load_bwd_step, then the stored state, then z: in this order, unlike _load_step's, Triton
        # compiles the loop without an extra layout conversion)
        t0 = L - 1
        has = t0 >= 0
        u_n, dt_n, gy_n, B_n, C_n = _load_bwd_step(
            u_p, dt_p, g_p, B_p, C_p, t0, su_l, sdt_l, sg_l, sB_l, sC_l, mask_d, mask_n, has
        )
        h_n = tl.load(st_p + t0 * (NSTATE * DIM), mask=mask_nd & has, other=0.0)
        if HAS_Z:
            z_n = tl.load(z_p + t0 * sz_l, mask=mask_d & has, other=0.0)
        for i in range(L):
            t = L - 1 - i
            u_t = u_n.to(tl.float32)
            draw = dt_n.to(tl.float32)
            gy = gy_n.to(tl.float32)
            B_t = B_n.to(tl.float32)
            C_t = C_n.to(tl.float32)
            h_prev = h_n
            if HAS_Z:
                z_t = z_n.to(tl.float32)
            tp = t - 1
            more = tp >= 0
            u_n, dt_n, gy_n, B_n, C_n = _load_bwd_step(
                u_p, dt_p, g_p, B_p, C_p, tp, su_l, sdt_l, sg_l, sB_l, sC_l, mask_d, mask_n, more
            )
            h_n = tl.load(st_p + tp * (NSTATE * DIM), mask=mask_nd & more, other=0.0)
            if HAS_Z:
                z_n = tl.load(z_p + tp * sz_l, mask=mask_d & more, other=0.0)
            if not HAS_Z:
                z_t = u_t
            g, a_next, dA_acc, dD_acc, dbias_acc = _bwd_step(
                h_prev,
                g,
                a_next,
                dA_acc,
                dD_acc,
                dbias_acc,
                u_t,
                draw,
                gy,
                B_t,
                C_t,
                z_t,
                A,
                A2,
                Dv,
                bias,
                mask_d,
                mask_n,
                t,
                dz_p,
                sdz_l,
                dB_p,
                dC_p,
                du_p,
                sdu_l,
                ddt_p,
                sddt_l,
                HAS_D,
                HAS_Z,
                HAS_BIAS,
                SOFTPLUS,
                PARTIALS,
            )
        _store_param_grads(
            dA_ptr,
            dD_ptr,
            dbias_ptr,
            dA_acc,
            dD_acc,
            dbias_acc,
            pid_b,
            nd,
            offs_d,
            mask_nd,
            mask_d,
            DIM,
            NSTATE,
        )

    @triton.jit
    def _scan_bwd_recompute_kernel(
        u_ptr,
        dt_ptr,
        A_ptr,
        B_ptr,
        C_ptr,
        D_ptr,
        z_ptr,
        bias_ptr,
        gout_ptr,
        states_ptr,
        glast_ptr,
        du_ptr,
        ddt_ptr,
        dA_ptr,
        dB_ptr,
        dC_ptr,
        dD_ptr,
        dz_ptr,
        dbias_ptr,
        scratch_ptr,
        L,
        DIM,
        NSTATE,
        su_b,
        su_d,
        su_l,
        sdt_b,
        sdt_d,
        sdt_l,
        sA_d,
        sA_n,
        sB_b,
        sB_n,
        sB_l,
        sC_b,
        sC_n,
        sC_l,
        sz_b,
        sz_d,
        sz_l,
        sg_b,
        sg_d,
        sg_l,
        sdu_b,
        sdu_d,
        sdu_l,
        sddt_b,
        sddt_d,
        sddt_l,
        sdz_b,
        sdz_d,
        sdz_l,
        HAS_D: tl.constexpr,
        HAS_Z: tl.constexpr,
        HAS_BIAS: tl.constexpr,
        SOFTPLUS: tl.constexpr,
        HAS_GLAST: tl.constexpr,
        EVEN_N: tl.constexpr,
        BLOCK_D: tl.constexpr,
        BLOCK_N: tl.constexpr,
        PARTIALS: tl.constexpr,
        CHUNK: tl.constexpr,
    ):
        # The stored-state backward without the stored states: the forward pass keeps only the
        # state entering each chunk of CHUNK steps (states_ptr); for each chunk, last to first, the
        # program recomputes the chunk's states into its own scratch rows (CHUNK states per program:
        # small enough to stay in L2, where the stored method streams every state through HBM) and
        # then walks the chunk back with the stored method's step.
        pid_b = tl.program_id(0).to(tl.int64)
        pid_d = tl.program_id(1)
        offs_d, offs_n, mask_d, mask_n, mask_nd, A, Dv, bias = _state_tile(
            A_ptr,
            D_ptr,
            bias_ptr,
            sA_d,
            sA_n,
            DIM,
            NSTATE,
            pid_d,
            HAS_D,
            HAS_BIAS,
            EVEN_N,
            BLOCK_D,
            BLOCK_N,
        )
        A2 = A * 1.4426950408889634
        (
            u_p,
            dt_p,
            z_p,
            g_p,
            du_p,
            ddt_p,
            dz_p,
            B_p,
            C_p,
            dB_p,
            dC_p,
            nd,
            g,
            a_next,
            dA_acc,
            dD_acc,
            dbias_acc,
        ) = _bwd_program(
            u_ptr,
            dt_ptr,
            z_ptr,
            gout_ptr,
            du_ptr,
            ddt_ptr,
            dz_ptr,
            B_ptr,
            C_ptr,
            dB_ptr,
            dC_ptr,
            glast_ptr,
            pid_b,
            pid_d,
            offs_d,
            offs_n,
            mask_nd,
            L,
            DIM,
            NSTATE,
            su_b,
            su_d,
            sdt_b,
            sdt_d,
            sz_b,
            sz_d,
            sg_b,
            sg_d,
            sdu_b,
            sdu_d,
            sddt_b,
            sddt_d,
            sdz_b,
            sdz_d,
            sB_b,
            sB_n,
            sC_b,
            sC_n,
            HAS_GLAST,
            PARTIALS,
            BLOCK_D,
            BLOCK_N,
        )
        n_chunks = tl.cdiv(L, CHUNK)
        ck_p = (
            states_ptr + pid_b * (n_chunks * NSTATE * DIM) + nd
        )  # entry c: the state entering chunk c
        sc_p = (
            scratch_ptr + pid_b * (CHUNK * NSTATE * DIM) + nd
        )  # entry k: the state entering step k of the chunk
        for ci in range(n_chunks):
            c = n_chunks - 1 - ci
            t0 = c * CHUNK
            steps = tl.minimum(CHUNK, L - t0)
            # 1. the chunk's states, forwards (next step's inputs loaded
            # before this step is computed)
            h = tl.load(ck_p + c * (NSTATE * DIM), mask=mask_nd, other=0.0)
            u_n = tl.load(u_p + t0 * su_l, mask=mask_d, other=0.0)
            dt_n = tl.load(dt_p + t0 * sdt_l, mask=mask_d, other=0.0)
            B_n = tl.load(B_p + t0 * sB_l, mask=mask_n, other=0.0)
            for k in range(steps):
                u_t = u_n.to(tl.float32)
                dt_t = dt_n.to(tl.float32)
                B_t = B_n.to(tl.float32)
                more = k + 1 < steps
                u_n = tl.load(u_p + (t0 + k + 1) * su_l, mask=mask_d & more, other=0.0)
                dt_n = tl.load(dt_p + (t0 + k + 1) * sdt_l, mask=mask_d & more, other=0.0)
                B_n = tl.load(B_p + (t0 + k + 1) * sB_l, mask=mask_n & more, other=0.0)
                tl.store(sc_p + k * (NSTATE * DIM), h, mask=mask_nd)
                if HAS_BIAS:
                    dt_t += bias
                if SOFTPLUS:
                    dt_t = _softplus(dt_t)
                h = tl.exp2(A2 * dt_t[None, :]) * h + B_t[:, None] * (dt_t * u_t)[None, :]
            tl.debug_barrier()  # the scratch rows are written before they are read back
            # 2. the chunk backwards, as the stored method
            t = t0 + steps - 1
            u_n, dt_n, gy_n, B_n, C_n = _load_bwd_step(
                u_p, dt_p, g_p, B_p, C_p, t, su_l, sdt_l, sg_l, sB_l, sC_l, mask_d, mask_n, True
            )  # a chunk has >= 1 step
            h_n = tl.load(sc_p + (steps - 1) * (NSTATE * DIM), mask=mask_nd, other=0.0)
            if HAS_Z:
                z_n = tl.load(z_p + t * sz_l, mask=mask_d, other=0.0)
            for j in range(steps):
                k = steps - 1 - j
                t = t0 + k
                u_t = u_n.to(tl.float32)
                draw = dt_n.to(tl.float32)
                gy = gy_n.to(tl.float32)
                B_t = B_n.to(tl.float32)
                C_t = C_n.to(tl.float32)
                h_prev = h_n
                if HAS_Z:
                    z_t = z_n.to(tl.float32)
                else:
                    z_t = u_t
                more = k > 0
                u_n, dt_n, gy_n, B_n, C_n = _load_bwd_step(
                    u_p,
                    dt_p,
                    g_p,
                    B_p,
                    C_p,
                    t - 1,
                    su_l,
                    sdt_l,
                    sg_l,
                    sB_l,
                    sC_l,
                    mask_d,
                    mask_n,
                    more,
                )
                h_n = tl.load(sc_p + (k - 1) * (NSTATE * DIM), mask=mask_nd & more, other=0.0)
                if HAS_Z:
                    z_n = tl.load(z_p + (t - 1) * sz_l, mask=mask_d & more, other=0.0)
                g, a_next, dA_acc, dD_acc, dbias_acc = _bwd_step(
                    h_prev,
                    g,
                    a_next,
                    dA_acc,
                    dD_acc,
                    dbias_acc,
                    u_t,
                    draw,
                    gy,
                    B_t,
                    C_t,
                    z_t,
                    A,
                    A2,
                    Dv,
                    bias,
                    mask_d,
                    mask_n,
                    t,
                    dz_p,
                    sdz_l,
                    dB_p,
                    dC_p,
                    du_p,
                    sdu_l,
                    ddt_p,
                    sddt_l,
                    HAS_D,
                    HAS_Z,
                    HAS_BIAS,
                    SOFTPLUS,
                    PARTIALS,
                )
            tl.debug_barrier()  # read back before the next chunk overwrites the scratch rows
        _store_param_grads(
            dA_ptr,
            dD_ptr,
            dbias_ptr,
            dA_acc,
            dD_acc,
            dbias_acc,
            pid_b,
            nd,
            offs_d,
            mask_nd,
            mask_d,
            DIM,
            NSTATE,
        )

    @triton.jit
    def _conv_fwd_kernel(
        x_ptr,
        w_ptr,
        bias_ptr,
        out_ptr,
        L,
        DIM,
        sx_b,
        sx_l,
        so_b,
        so_l,
        K: tl.constexpr,
        HAS_BIAS: tl.constexpr,
        BLOCK_T: tl.constexpr,
        BLOCK_D: tl.constexpr,
    ):
        # silu(bias + sum_k w[:, k] x[t - K + 1 + k]) on a (steps, channels)
        # tile, channel-contiguous
        pid_b = tl.program_id(0).to(tl.int64)
        offs_t = tl.program_id(1) * BLOCK_T + tl.arange(0, BLOCK_T)
        offs_d = tl.program_id(2) * BLOCK_D + tl.arange(0, BLOCK_D)
        mask_d = offs_d < DIM
        mask = (offs_t < L)[:, None] & mask_d[None, :]
        acc = tl.zeros((BLOCK_T, BLOCK_D), dtype=tl.float32)
        if HAS_BIAS:
            acc += tl.load(bias_ptr + offs_d, mask=mask_d, other=0.0).to(tl.float32)[None, :]
        x_b = x_ptr + pid_b * sx_b
        for k in tl.static_range(K):
            src = offs_t - (K - 1) + k
            xk = tl.load(
                x_b + src[:, None] * sx_l + offs_d[None, :],
                mask=mask & (src >= 0)[:, None],
                other=0.0,
            )
            wk = tl.load(w_ptr + offs_d * K + k, mask=mask_d, other=0.0).to(tl.float32)
            acc += xk.to(tl.float32) * wk[None, :]
        out = acc / (1.0 + tl.exp(-acc))
        tl.store(
            out_ptr + pid_b * so_b + offs_t[:, None] * so_l + offs_d[None, :],
            out.to(out_ptr.dtype.element_ty),
            mask=mask,
        )

    @triton.jit
    def _conv_bwd_kernel(
        x_ptr,
        w_ptr,
        bias_ptr,
        gout_ptr,
        gx_ptr,
        gw_ptr,
        gbias_ptr,
        L,
        DIM,
        sx_b,
        sx_l,
        sg_b,
        sg_l,
        sgx_b,
        sgx_l,
        K: tl.constexpr,
        HAS_BIAS: tl.constexpr,
        BLOCK_T: tl.constexpr,
        BLOCK_D: tl.constexpr,
    ):
        # dL/dx_s = sum_k w[:, k] gpre_{s + K - 1 - k}, gpre_t = gout_t silu'(pre_t); the
        # pre-activations of the K - 1 steps after the tile are recomputed here (no
        # second pass, no scratch).
        pid_b = tl.program_id(0).to(tl.int64)
        offs_s = tl.program_id(1) * BLOCK_T + tl.arange(0, BLOCK_T)
        offs_d = tl.program_id(2) * BLOCK_D + tl.arange(0, BLOCK_D)
        mask_d = offs_d < DIM
        x_b = x_ptr + pid_b * sx_b
        g_b = gout_ptr + pid_b * sg_b
        if HAS_BIAS:
            bias = tl.load(bias_ptr + offs_d, mask=mask_d, other=0.0).to(tl.float32)
        gx = tl.zeros((BLOCK_T, BLOCK_D), dtype=tl.float32)
        for k in tl.static_range(K):
            t = offs_s + (K - 1 - k)  # the output step that x_s reaches through tap k
            mask_t = (t < L)[:, None] & mask_d[None, :]
            pre = tl.zeros((BLOCK_T, BLOCK_D), dtype=tl.float32)
            if HAS_BIAS:
                pre += bias[None, :]
            for j in tl.static_range(K):
                src = t - (K - 1) + j
                xj = tl.load(
                    x_b + src[:, None] * sx_l + offs_d[None, :],
                    mask=mask_t & (src >= 0)[:, None],
                    other=0.0,
                )
                wj = tl.load(w_ptr + offs_d * K + j, mask=mask_d, other=0.0).to(tl.float32)
                pre += xj.to(tl.float32) * wj[None, :]
            sg = 1.0 / (1.0 + tl.exp(-pre))
            go = tl.load(g_b + t[:, None] * sg_l + offs_d[None, :], mask=mask_t, other=0.0).to(
                tl.float32
            )
            gpre = tl.where(mask_t, go * sg * (1.0 + pre * (1.0 - sg)), 0.0)
            wk = tl.load(w_ptr + offs_d * K + k, mask=mask_d, other=0.0).to(tl.float32)
            gx += gpre * wk[None, :]
            # parameter gradients from the output steps of this tile (k = K - 1: t = s), one row of
            # partial sums per (sequence, time block), summed afterwards: thousands of programs
            # adding atomically into the same few hundred weights serialised on them
            if k == K - 1:
                row = pid_b * tl.num_programs(1) + tl.program_id(1)
                for j in tl.static_range(K):
                    src = offs_s - (K - 1) + j
                    xj = tl.load(
                        x_b + src[:, None] * sx_l + offs_d[None, :],
                        mask=mask_t & (src >= 0)[:, None],
                        other=0.0,
                    )
                    tl.store(
                        gw_ptr + (row * K + j) * DIM + offs_d,
                        tl.sum(gpre * xj.to(tl.float32), axis=0),
                        mask=mask_d,
                    )
                if HAS_BIAS:
                    tl.store(gbias_ptr + row * DIM + offs_d, tl.sum(gpre, axis=0), mask=mask_d)
        mask_s = (offs_s < L)[:, None] & mask_d[None, :]
        tl.store(
            gx_ptr + pid_b * sgx_b + offs_s[:, None] * sgx_l + offs_d[None, :],
            gx.to(gx_ptr.dtype.element_ty),
            mask=mask_s,
        )


# ---------------------------------------------------------------------------------------------
# Launch configuration
# ---------------------------------------------------------------------------------------------

# Forward: channels per program and warps. The state tile is (d_state, BLOCK_D); the A load makes
# Triton put 4 consecutive channels in a thread and the threads of a warp along the channels, so
# with BLOCK_D >= 128 per warp every state of a channel sits in one thread (64:
# two threads share them).
# Configurations with warps split over the states (cross-warp reductions every step) are left out.
FWD_DEFAULT = {"BLOCK_D": 128, "num_warps": 1}
FWD_CONFIGS = [(128, 1), (64, 1), (256, 2), (32, 1)]


def _autotune_enabled() -> bool:
    return not _INTERPRET


_TUNED: dict[str, object] = {}


def _kernel(name: str):
    """The forward kernel, wrapped in ``triton.autotune`` on the GPU (built once)."""
    raw = _scan_fwd_kernel
    if not _autotune_enabled():
        return raw, FWD_DEFAULT
    if name not in _TUNED:
        configs = [triton.Config({"BLOCK_D": d}, num_warps=w) for d, w in FWD_CONFIGS]
        _TUNED[name] = triton.autotune(
            configs,
            key=[
                "DIM",
                "NSTATE",
                "SEQ_BUCKET",
                "STORE_OUT",
                "STORE_STATES",
                "HAS_Z",
                "STATE_CHUNK",
            ],
        )(raw)
    return _TUNED[name], {}


def tuned_configs() -> dict[str, dict[str, str]]:
    """Configurations chosen by the autotuner so far, ``{kernel: {key: config}}`` (for reports)."""
    return {
        name: {str(key): str(cfg) for key, cfg in getattr(kernel, "cache", {}).items()}
        for name, kernel in _TUNED.items()
    }


def _seq_bucket(length: int) -> int:
    return int(length).bit_length()


# ---------------------------------------------------------------------------------------------
# Launches
# ---------------------------------------------------------------------------------------------


def _check_inputs(u, delta, A, B, C, D, z, delta_bias):
    if triton is None:
        raise ImportError(
            "The 'triton' scan backend needs the triton package (pip install triton)."
        )
    if A.is_complex():
        raise NotImplementedError("Complex A (S4D-Lin) is not supported; Mamba-1 uses real A.")
    if u.dim() != 3 or delta.shape != u.shape:
        raise ValueError(
            f"u and delta must both be (batch, dim, length); got {tuple(u.shape)} "
            f"and {tuple(delta.shape)}."
        )
    batch, dim, length = u.shape
    if A.shape[0] != dim:
        raise ValueError(f"A must be (dim, d_state) = ({dim}, N); got {tuple(A.shape)}.")
    n = A.shape[1]
    for name, t in (("B", B), ("C", C)):
        if t.dim() != 3 or tuple(t.shape) != (batch, n, length):
            raise ValueError(
                f"{name} must be input-dependent, shaped (batch, d_state, length) = "
                f"{(batch, n, length)}; got {tuple(t.shape)}."
            )
    if z is not None and z.shape != u.shape:
        raise ValueError(f"z must be shaped like u {tuple(u.shape)}; got {tuple(z.shape)}.")
    for name, t in (("D", D), ("delta_bias", delta_bias)):
        if t is not None and tuple(t.shape) != (dim,):
            raise ValueError(f"{name} must be ({dim},); got {tuple(t.shape)}.")
    if u.device.type != "cuda" and not _INTERPRET:
        raise ValueError(
            f"The 'triton' scan backend runs on CUDA tensors, got {u.device}. Use backend='torch' "
            "on CPU (or set TRITON_INTERPRET=1 before importing to run the kernels "
            "in Triton's interpreter)."
        )


def _channels_last(x: torch.Tensor) -> torch.Tensor:
    """``(batch, dim, length)`` with unit channel stride (a copy unless it already has one)."""
    return (
        x if x.stride(1) == 1 or x.shape[1] == 1 else x.transpose(1, 2).contiguous().transpose(1, 2)
    )


def _empty_channels_last(x: torch.Tensor) -> torch.Tensor:
    batch, dim, length = x.shape
    return torch.empty(batch, length, dim, device=x.device, dtype=x.dtype).transpose(1, 2)


def _forward(
    u,
    delta,
    A,
    B,
    C,
    D,
    z,
    delta_bias,
    softplus: bool,
    store_out: bool = True,
    chunk: Optional[int] = None,
    store_last: bool = True,
):
    """Launch the forward kernel -> (out or None, last state (batch, N, dim) or
    None, states or None)."""
    batch, dim, length = u.shape
    nstate = A.shape[1]
    dev = u.device
    # Each step reads all channels: channel-contiguous inputs and output (Mamba passes them so; a
    # copy otherwise). The output, (batch, dim, length) with unit channel stride, is what out_proj
    # reads after its transpose.
    u, delta = _channels_last(u), _channels_last(delta)
    z = _channels_last(z) if z is not None else None
    out = _empty_channels_last(u) if store_out else None
    states = None
    if chunk is not None:
        n_chunks = max(1, -(-length // chunk))
        states = torch.empty(batch, n_chunks, nstate, dim, device=dev, dtype=torch.float32)
    last = torch.empty(batch, nstate, dim, device=dev, dtype=torch.float32) if store_last else None
    dummy = u
    # A as (d_state, dim), channel-contiguous: this makes Triton lay the state tile out with the
    # channels on the threads (the states of a channel in one thread), so y = C.h needs no shuffles.
    At = A.t().contiguous()
    # B, C as (batch, length, d_state) contiguous: each step reads a
    # channel-independent row, as vectors
    B = B.transpose(1, 2).contiguous().transpose(1, 2)
    C = C.transpose(1, 2).contiguous().transpose(1, 2)
    kernel, fixed = _kernel("fwd")
    grid = lambda meta: (batch, triton.cdiv(dim, meta["BLOCK_D"]))  # noqa: E731
    zs = z.stride() if z is not None else (0, 0, 0)
    os_ = out.stride() if out is not None else (0, 0, 0)
    kernel[grid](
        u_ptr=u,
        dt_ptr=delta,
        A_ptr=At,
        B_ptr=B,
        C_ptr=C,
        D_ptr=D if D is not None else dummy,
        z_ptr=z if z is not None else dummy,
        bias_ptr=delta_bias if delta_bias is not None else dummy,
        out_ptr=out if out is not None else dummy,
        states_ptr=states if states is not None else dummy,
        last_ptr=last if last is not None else dummy,
        L=length,
        DIM=dim,
        NSTATE=nstate,
        SEQ_BUCKET=_seq_bucket(length),
        su_b=u.stride(0),
        su_d=u.stride(1),
        su_l=u.stride(2),
        sdt_b=delta.stride(0),
        sdt_d=delta.stride(1),
        sdt_l=delta.stride(2),
        sA_d=At.stride(1),
        sA_n=At.stride(0),
        sB_b=B.stride(0),
        sB_n=B.stride(1),
        sB_l=B.stride(2),
        sC_b=C.stride(0),
        sC_n=C.stride(1),
        sC_l=C.stride(2),
        sz_b=zs[0],
        sz_d=zs[1],
        sz_l=zs[2],
        so_b=os_[0],
        so_d=os_[1],
        so_l=os_[2],
        HAS_D=D is not None,
        HAS_Z=z is not None,
        HAS_BIAS=delta_bias is not None,
        SOFTPLUS=bool(softplus),
        STORE_OUT=store_out,
        STORE_STATES=chunk is not None,
        STORE_LAST=store_last,
        STATE_CHUNK=chunk or 1,
        EVEN_N=nstate == triton.next_power_of_2(nstate),
        BLOCK_N=triton.next_power_of_2(nstate),
        **fixed,
    )
    return out, last, states


# Backward with stored states: elements of the states buffer for one batch slice (float32).
STORED_STATES_BUDGET = 1 << 28
# 32 channels, 1 warp: one channel per thread, its states in registers without spills. On an H100
# (Echo2Mix shapes) it ran at 6-7 ms per intra-frame scan backward against 5-7 ms for 64/1 (which
# spills), 6-7 for 64/2 and 7-10 for 128/x.
BWD_STORED_DEFAULT = {"BLOCK_D": 32, "num_warps": 1}
BWD_METHODS = ("recompute", "stored")
# On an H100 (Echo2Mix model, 3 s training step, float32; one scan backward with its forward
# recomputation) "recompute" with 8-step chunks took 4.0 ms against 4.4 ms for "stored" along
# frequency and 4.0 against 5.3 ms along time.
BACKWARD_METHOD = "recompute"
# "recompute": steps per chunk (states kept by the forward pass: one per chunk; scratch rows per
# program); 4 and 8 were fastest on an H100, 16-64 up to 27% slower
RECOMPUTE_CHUNK = 8


def _backward_recompute(u, delta, A, B, C, D, z, delta_bias, softplus: bool, gout, glast):
    return _backward_stored(
        u, delta, A, B, C, D, z, delta_bias, softplus, gout, glast, chunk=RECOMPUTE_CHUNK
    )


def _backward_stored(
    u, delta, A, B, C, D, z, delta_bias, softplus: bool, gout, glast, chunk: Optional[int] = None
):
    """The stored-state backward; with ``chunk``, the ``"recompute"`` variant (one launch: its
    buffers are small, so the batch is not sliced)."""
    batch, dim, length = u.shape
    nstate = A.shape[1]
    dev = u.device
    if gout is None:
        gout = torch.zeros_like(u)
    u, delta, gout = _channels_last(u), _channels_last(delta), _channels_last(gout)
    z = _channels_last(z) if z is not None else None
    # B, C as (batch, length, d_state) memory: each step reads one state-contiguous row
    B = B.transpose(1, 2).contiguous().transpose(1, 2)
    C = C.transpose(1, 2).contiguous().transpose(1, 2)
    glast = (
        glast.transpose(1, 2).float().contiguous() if glast is not None else None
    )  # (batch, N, dim)
    du, ddelta = _empty_channels_last(u), _empty_channels_last(delta)
    dz = _empty_channels_last(z) if z is not None else None
    dA = torch.empty(batch, nstate, dim, device=dev, dtype=torch.float32)
    dB = torch.zeros(batch, nstate, length, device=dev, dtype=torch.float32)
    dC = torch.zeros(batch, nstate, length, device=dev, dtype=torch.float32)
    dD = torch.empty(batch, dim, device=dev, dtype=torch.float32)
    dbias = torch.empty(batch, dim, device=dev, dtype=torch.float32)
    At = A.t().contiguous()
    step = batch if chunk else max(1, STORED_STATES_BUDGET // max(1, length * nstate * dim))
    cfg = dict(BWD_STORED_DEFAULT)
    warps = cfg.pop("num_warps")
    partials = True  # one row of dB/dC per channel block, summed afterwards
    # (atomics were slower on an H100)
    n_blocks = triton.cdiv(dim, cfg["BLOCK_D"])
    for start in range(0, batch, step):
        sl = slice(start, min(batch, start + step))
        zs = z[sl] if z is not None else None
        if partials:
            dB_out = torch.empty(
                sl.stop - sl.start, n_blocks, nstate, length, device=dev, dtype=torch.float32
            )
            dC_out = torch.empty_like(dB_out)
        else:
            dB_out, dC_out = dB[sl], dC[sl]
        _, _, states = _forward(
            u[sl],
            delta[sl],
            A,
            B[sl],
            C[sl],
            D,
            zs,
            delta_bias,
            softplus,
            store_out=False,
            chunk=chunk or 1,
            store_last=False,
        )
        parts = dict(
            u=u[sl],
            dt=delta[sl],
            B=B[sl],
            C=C[sl],
            z=zs,
            g=gout[sl],
            du=du[sl],
            ddt=ddelta[sl],
            dz=dz[sl] if dz is not None else None,
        )
        dummy = parts["u"]
        st = {k: (v.stride() if v is not None else (0, 0, 0)) for k, v in parts.items()}
        grid = (sl.stop - sl.start, triton.cdiv(dim, cfg["BLOCK_D"]))
        if chunk:
            kernel = _scan_bwd_recompute_kernel
            scratch = (
                torch.empty(
                    sl.stop - sl.start, chunk, nstate, dim, device=dev, dtype=torch.float32
                ),
            )
            extra = dict(CHUNK=chunk)
        else:
            kernel, scratch, extra = _scan_bwd_stored_kernel, (), {}
        kernel[grid](
            parts["u"],
            parts["dt"],
            At,
            parts["B"],
            parts["C"],
            D if D is not None else dummy,
            zs if zs is not None else dummy,
            delta_bias if delta_bias is not None else dummy,
            parts["g"],
            states,
            glast[sl] if glast is not None else dummy,
            parts["du"],
            parts["ddt"],
            dA[sl],
            dB_out,
            dC_out,
            dD[sl],
            parts["dz"] if dz is not None else dummy,
            dbias[sl],
            *scratch,
            length,
            dim,
            nstate,
            *st["u"],
            *st["dt"],
            At.stride(1),
            At.stride(0),
            *st["B"],
            *st["C"],
            *st["z"],
            *st["g"],
            *st["du"],
            *st["ddt"],
            *st["dz"],
            HAS_D=D is not None,
            HAS_Z=z is not None,
            HAS_BIAS=delta_bias is not None,
            SOFTPLUS=bool(softplus),
            HAS_GLAST=glast is not None,
            EVEN_N=nstate == triton.next_power_of_2(nstate),
            BLOCK_N=triton.next_power_of_2(nstate),
            PARTIALS=partials,
            num_warps=warps,
            **cfg,
            **extra,
        )
        if partials:
            torch.sum(dB_out, dim=1, out=dB[sl])
            torch.sum(dC_out, dim=1, out=dC[sl])
    return dict(
        du=du,
        ddelta=ddelta,
        dz=dz,
        dA=dA.sum(0).t().to(A.dtype),
        dB=dB.to(B.dtype),
        dC=dC.to(C.dtype),
        dD=dD.sum(0).to(D.dtype) if D is not None else None,
        dbias=dbias.sum(0).to(delta_bias.dtype) if delta_bias is not None else None,
    )


class _TritonSelectiveScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u, delta, A, B, C, D, z, delta_bias, softplus):
        out, last, _ = _forward(u, delta, A, B, C, D, z, delta_bias, softplus)
        ctx.save_for_backward(u, delta, A, B, C, D, z, delta_bias)
        ctx.set_materialize_grads(False)  # an unused last state gets no zero gradient to read
        ctx.softplus = softplus
        return out, last.transpose(1, 2)

    @staticmethod
    def backward(ctx, gout, glast):
        u, delta, A, B, C, D, z, delta_bias = ctx.saved_tensors
        g = scan_backward(u, delta, A, B, C, D, z, delta_bias, ctx.softplus, gout, glast)
        return g["du"], g["ddelta"], g["dA"], g["dB"], g["dC"], g["dD"], g["dz"], g["dbias"], None


def scan_forward(u, delta, A, B, C, D, z, delta_bias, softplus: bool) -> torch.Tensor:
    """The scan's output alone (no autograd), for callers that write their own backward."""
    _check_inputs(u, delta, A, B, C, D, z, delta_bias)
    return _forward(u, delta, A, B, C, D, z, delta_bias, softplus)[0]


def scan_backward(
    u, delta, A, B, C, D, z, delta_bias, softplus: bool, gout, glast=None
) -> dict[str, torch.Tensor]:
    """Gradients ``{du, ddelta, dA, dB, dC, dD, dz, dbias}`` of the scan (the method of
    :data:`BACKWARD_METHOD`), given the forward's inputs and the output's gradient."""
    if BACKWARD_METHOD not in BWD_METHODS:
        raise ValueError(
            f"triton_scan.BACKWARD_METHOD must be one of {BWD_METHODS}, got {BACKWARD_METHOD!r}."
        )
    backward = _backward_recompute if BACKWARD_METHOD == "recompute" else _backward_stored
    return backward(u, delta, A, B, C, D, z, delta_bias, softplus, gout, glast)


def selective_scan_triton(
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
) -> Union[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """Selective scan with the Triton kernels; arguments as ``mamba_ssm``'s ``selective_scan_fn``.

    Args:
        u, delta, z: ``(batch, dim, length)``, float32/float16/bfloat16, any strides.
        A: ``(dim, d_state)`` real. B, C: ``(batch, d_state, length)``. D, delta_bias: ``(dim,)``.
        delta_softplus: apply ``softplus`` to ``delta + delta_bias``.
        return_last_state: also return the final state ``(batch, dim, d_state)`` (float32).

    Returns:
        ``out`` (dtype of ``u``, laid out like ``delta``), and the last state if asked.
    """
    _check_inputs(u, delta, A, B, C, D, z, delta_bias)
    out, last = _TritonSelectiveScan.apply(
        u, delta, A, B, C, D, z, delta_bias, bool(delta_softplus)
    )
    return (out, last) if return_last_state else out


# ---------------------------------------------------------------------------------------------
# Depthwise causal convolution + SiLU (Mamba's conv1d), channel-contiguous
# ---------------------------------------------------------------------------------------------
CONV_BLOCK_T, CONV_BLOCK_D = 32, 64


class _TritonCausalConv(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias):
        rows = _channels_last(x).transpose(1, 2)  # (B, L, D), unit channel stride
        batch, length, dim = rows.shape
        k = weight.shape[1]
        w = weight.contiguous()
        out = torch.empty(batch, length, dim, device=x.device, dtype=x.dtype)
        grid = (batch, triton.cdiv(length, CONV_BLOCK_T), triton.cdiv(dim, CONV_BLOCK_D))
        _conv_fwd_kernel[grid](
            rows,
            w,
            bias if bias is not None else w,
            out,
            length,
            dim,
            rows.stride(0),
            rows.stride(1),
            out.stride(0),
            out.stride(1),
            K=k,
            HAS_BIAS=bias is not None,
            BLOCK_T=CONV_BLOCK_T,
            BLOCK_D=CONV_BLOCK_D,
        )
        ctx.save_for_backward(rows, w, bias)
        return out.transpose(1, 2)

    @staticmethod
    def backward(ctx, gout):
        rows, w, bias = ctx.saved_tensors
        batch, length, dim = rows.shape
        k = w.shape[1]
        g = _channels_last(gout).transpose(1, 2)
        gx = torch.empty(batch, length, dim, device=rows.device, dtype=rows.dtype)
        grid = (batch, triton.cdiv(length, CONV_BLOCK_T), triton.cdiv(dim, CONV_BLOCK_D))
        n_rows = grid[0] * grid[1]  # partial weight gradients of each (sequence, time block)
        gw = torch.empty(n_rows, k, dim, device=rows.device, dtype=torch.float32)
        gbias = (
            torch.empty(n_rows, dim, device=rows.device, dtype=torch.float32)
            if bias is not None
            else gw
        )
        _conv_bwd_kernel[grid](
            rows,
            w,
            bias if bias is not None else w,
            g,
            gx,
            gw,
            gbias,
            length,
            dim,
            rows.stride(0),
            rows.stride(1),
            g.stride(0),
            g.stride(1),
            gx.stride(0),
            gx.stride(1),
            K=k,
            HAS_BIAS=bias is not None,
            BLOCK_T=CONV_BLOCK_T,
            BLOCK_D=CONV_BLOCK_D,
        )
        return (
            gx.transpose(1, 2),
            gw.sum(0).t().to(w.dtype),
            gbias.sum(0).to(bias.dtype) if bias is not None else None,
        )


def causal_conv1d_silu_triton(
    x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor] = None
) -> torch.Tensor:
    """``silu(depthwise causal conv1d(x))`` for ``x (batch, dim, length)`` with ``weight (dim, K)``:
    Mamba's convolution in one pass (cuDNN's grouped kernel took 37% of a 16 s inference on an
    H100). Reads and returns channel-contiguous tensors (``x`` may be a channel slice of a wider
    one)."""
    if triton is None:
        raise ImportError("causal_conv1d_silu_triton needs the triton package.")
    return _TritonCausalConv.apply(x, weight, bias)


# ---------------------------------------------------------------------------------------------
# Compilation without a GPU (tests)
# ---------------------------------------------------------------------------------------------


def compile_for_target(
    arch: int = 90,
    bf16: bool = False,
    with_z: bool = True,
    with_last_grad: bool = False,
    chunk: int = 8,
) -> dict[str, dict[str, object]]:
    """Compile the kernels (default configurations) for ``sm_<arch>`` without a GPU: the forward,
    the forward that stores the chunk states for the backward, and the two backward kernels.

    Returns ``{kernel: {"ttgir": ..., "ptx": ..., "cubin": ..., "metadata": ...}}``; raises if
    Triton cannot compile them. Used by the tests to catch compiler errors (the interpreter does not
    compile) and to check the kernels' layouts and register use.
    """
    if triton is None or _INTERPRET:
        raise RuntimeError("compile_for_target needs triton, without TRITON_INTERPRET=1.")
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    elem = "*bf16" if bf16 else "*fp32"
    common = dict(HAS_D=True, HAS_Z=with_z, HAS_BIAS=True, SOFTPLUS=True)
    fwd_example = {n: "i32" for n in _scan_fwd_kernel.arg_names}
    # ints divisible by 16 are specialised by the JIT too: those of the Echo2Mix model (dim 512)
    fwd_example.update(
        {
            k: "i32:16"
            for k in (
                "DIM",
                "su_l",
                "sdt_l",
                "sz_l",
                "so_l",
                "su_b",
                "sdt_b",
                "sz_b",
                "so_b",
                "sB_b",
                "sC_b",
            )
        }
    )
    fwd_example.update({p: "*fp32" for p in _scan_fwd_kernel.arg_names if p.endswith("_ptr")})
    fwd_example.update(u_ptr=elem, dt_ptr=elem, B_ptr=elem, C_ptr=elem, z_ptr=elem, out_ptr=elem)
    fwd_example.update(
        common,
        STORE_OUT=True,
        STORE_STATES=False,
        STORE_LAST=True,
        BLOCK_N=16,
        STATE_CHUNK=1,
        EVEN_N=True,
        BLOCK_D=FWD_DEFAULT["BLOCK_D"],
    )
    # unit strides are specialised by the JIT; as laid out by the wrappers: A transposed,
    # u/delta/z/out channel-contiguous, B/C state-contiguous
    fwd_example.update(sA_d=1, su_d=1, sdt_d=1, sz_d=1, so_d=1, sB_n=1, sC_n=1)
    fwd_example.update(sB_l="i32:16", sC_l="i32:16")  # B, C copied to (batch, length, d_state)
    states_example = dict(
        fwd_example, STORE_OUT=False, STORE_STATES=True, STORE_LAST=False, STATE_CHUNK=chunk
    )
    stored_example = {n: "i32" for n in _scan_bwd_stored_kernel.arg_names}
    stored_example.update(
        {p: "*fp32" for p in _scan_bwd_stored_kernel.arg_names if p.endswith("_ptr")}
    )
    stored_example.update(
        u_ptr=elem,
        dt_ptr=elem,
        B_ptr=elem,
        C_ptr=elem,
        z_ptr=elem,
        gout_ptr=elem,
        du_ptr=elem,
        ddt_ptr=elem,
        dz_ptr=elem,
    )
    stored_example.update(
        {
            k: "i32:16"
            for k in (
                "DIM",
                "su_l",
                "sdt_l",
                "sz_l",
                "sg_l",
                "sdu_l",
                "sddt_l",
                "sdz_l",
                "sB_l",
                "sC_l",
            )
        }
    )
    stored_example.update(
        sA_d=1, su_d=1, sdt_d=1, sz_d=1, sg_d=1, sdu_d=1, sddt_d=1, sdz_d=1, sB_n=1, sC_n=1
    )
    stored_example.update(
        common,
        HAS_GLAST=with_last_grad,
        EVEN_N=True,
        BLOCK_N=16,
        PARTIALS=True,
        BLOCK_D=BWD_STORED_DEFAULT["BLOCK_D"],
    )
    recompute_example = dict(stored_example, scratch_ptr="*fp32", CHUNK=RECOMPUTE_CHUNK)
    results = {}
    target = GPUTarget("cuda", arch, 32)
    for name, kernel, example, warps in (
        ("fwd", _scan_fwd_kernel, fwd_example, FWD_DEFAULT["num_warps"]),
        ("fwd_states", _scan_fwd_kernel, states_example, FWD_DEFAULT["num_warps"]),
        ("bwd_stored", _scan_bwd_stored_kernel, stored_example, BWD_STORED_DEFAULT["num_warps"]),
        (
            "bwd_recompute",
            _scan_bwd_recompute_kernel,
            recompute_example,
            BWD_STORED_DEFAULT["num_warps"],
        ),
    ):
        sig, consts, attrs = {}, {}, {}
        for index, arg in enumerate(kernel.arg_names):
            value = example[arg]
            if isinstance(value, str):
                sig[arg], _, hint = value.partition(":")
                # as the JIT: 16-aligned pointers and ints divisible by 16
                if hint == "16" or sig[arg].startswith("*"):
                    attrs[(index,)] = [["tt.divisibility", 16]]
            else:
                sig[arg] = "constexpr"
                consts[arg] = value
        compiled = triton.compile(
            ASTSource(fn=kernel, signature=sig, constexprs=consts, attrs=attrs),
            target=target,
            options={"num_warps": warps},
        )
        results[name] = {
            "ttgir": compiled.asm["ttgir"],
            "ptx": compiled.asm["ptx"],
            "cubin": compiled.asm["cubin"],
            "metadata": compiled.metadata,
        }
    return results
