"""The ``"triton"`` scan backend: its registration, and the autograd functions of the Mamba block's
Triton path, built on the kernels of :mod:`asteroid_spmamba.mamba.triton_scan`.

:mod:`~asteroid_spmamba.mamba.triton_scan` (and triton) is imported on first use only, so that
importing the package on a machine without a GPU does not import triton.
"""

from functools import cache

import torch
import torch.nn.functional as F

from .backends import register


@cache
def triton_kernels_available() -> bool:
    """Whether this package's Triton scan kernels can be imported (a GPU is still needed to run
    them, unless ``TRITON_INTERPRET=1`` was set before import)."""
    try:
        from . import triton_scan
    except (ImportError, OSError, RuntimeError):
        return False
    return triton_scan.triton_available()


def _require(device: torch.device) -> None:
    if not triton_kernels_available():
        raise ImportError(
            "The 'triton' scan backend needs the triton package (pip install triton)."
        )
    from . import triton_scan

    if device.type != "cuda" and not triton_scan.interpreting():
        raise ValueError(
            f"The 'triton' scan backend runs on CUDA tensors only, got tensors on {device}. Move "
            "the model to a GPU or use backend='torch' (TRITON_INTERPRET=1 set before import runs "
            "the kernels on CPU in Triton's interpreter, for tests)."
        )


def selective_scan_triton_or_torch(u, delta, A, B, C, **kwargs):
    """The Triton scan; float64 inputs run in the chunked PyTorch scan (arguments as
    :func:`~asteroid_spmamba.mamba.scan.selective_scan`)."""
    if u.dtype == torch.float64:
        from .scan import selective_scan_chunked

        return selective_scan_chunked(u, delta, A, B, C, **kwargs)
    from .triton_scan import selective_scan_triton

    return selective_scan_triton(u, delta, A, B, C, **kwargs)


def _conv_silu(x, weight, bias):
    # x arrives channel-contiguous (a slice of in_proj's output), and the Triton convolution keeps
    # it so, which the Triton scan reads one step at a time
    from .triton_scan import causal_conv1d_silu_triton

    return causal_conv1d_silu_triton(x, weight, bias)


def _block(mamba, xz, A, D, dt_bias):
    x, z = _SplitInProj.apply(xz, mamba.d_inner)
    if A.dtype != torch.float32:  # float64 models run the scan in the torch backend
        return mamba.forward_unfused(
            x, z, A, D, dt_bias, selective_scan_triton_or_torch, conv=_conv_silu
        )
    y = _TritonMambaInner.apply(
        x,
        z,
        mamba.conv1d.weight[:, 0],
        mamba.conv1d.bias,
        mamba.x_proj.weight,
        mamba.dt_proj.weight,
        A,
        D,
        dt_bias,
        mamba.dt_rank,
        mamba.d_state,
    )
    return mamba.out_proj(y.transpose(1, 2))


def _inner_front(
    x, conv_weight, conv_bias, x_proj_weight, dt_proj_weight, dt_rank: int, d_state: int
):
    """Convolution, x_proj and dt_proj of the Triton path: the scan's u, delta, B, C."""
    from .triton_scan import causal_conv1d_silu_triton

    u = causal_conv1d_silu_triton(x, conv_weight, conv_bias)
    x_dbl = F.linear(u.transpose(1, 2), x_proj_weight)  # (B, L, dt_rank + 2N)
    dt, B, C = torch.split(x_dbl, [dt_rank, d_state, d_state], dim=-1)
    delta = F.linear(dt, dt_proj_weight).transpose(1, 2)  # bias goes into the scan
    return u, delta, B.transpose(1, 2), C.transpose(1, 2)


class _TritonMambaInner(torch.autograd.Function):
    """Convolution -> x_proj -> dt_proj -> selective scan on the Triton kernels, keeping for the
    backward pass only the inputs (``x`` and ``z``, views of in_proj's output, and the weights),
    like mamba_ssm's ``mamba_inner_fn``. The backward recomputes the convolution and the projections
    (cheap) but not the scan's output; composing the same operations under autograd would also keep
    the convolution's output and ``delta``, two ``(B, d_inner, L)`` tensors per call. Same values
    and gradients as that composition.
    """

    @staticmethod
    @torch.amp.custom_fwd(device_type="cuda")
    def forward(
        ctx,
        x,
        z,
        conv_weight,
        conv_bias,
        x_proj_weight,
        dt_proj_weight,
        A,
        D,
        dt_bias,
        dt_rank,
        d_state,
    ):
        from .triton_scan import scan_forward

        with torch.no_grad():
            u, delta, B, C = _inner_front(
                x, conv_weight, conv_bias, x_proj_weight, dt_proj_weight, dt_rank, d_state
            )
            out = scan_forward(u, delta, A, B, C, D, z, dt_bias, True)
        ctx.save_for_backward(
            x, z, conv_weight, conv_bias, x_proj_weight, dt_proj_weight, A, D, dt_bias
        )
        ctx.sizes = (dt_rank, d_state)
        return out

    @staticmethod
    @torch.amp.custom_bwd(
        device_type="cuda"
    )  # the recomputation runs under the forward's autocast state
    def backward(ctx, gout):
        from .triton_scan import scan_backward

        x, z, conv_weight, conv_bias, x_proj_weight, dt_proj_weight, A, D, dt_bias = (
            ctx.saved_tensors
        )
        x_, w_, b_, xw_, dw_ = (
            t.detach().requires_grad_() if t is not None else None
            for t in (x, conv_weight, conv_bias, x_proj_weight, dt_proj_weight)
        )
        with torch.enable_grad():
            u, delta, B, C = _inner_front(x_, w_, b_, xw_, dw_, *ctx.sizes)
        g = scan_backward(
            u.detach(), delta.detach(), A, B.detach(), C.detach(), D, z, dt_bias, True, gout, None
        )
        front = [
            (t, g[k])
            for t, k in ((u, "du"), (delta, "ddelta"), (B, "dB"), (C, "dC"))
            if g[k] is not None
        ]
        torch.autograd.backward([t for t, _ in front], [grad for _, grad in front])
        return (
            x_.grad,
            g["dz"],
            w_.grad,
            b_.grad if b_ is not None else None,
            xw_.grad,
            dw_.grad,
            g["dA"],
            g["dD"],
            g["dbias"],
            None,
            None,
        )


class _SplitInProj(torch.autograd.Function):
    """The x and z halves of in_proj's ``(B, L, 2 * d_inner)`` output as ``(B, d_inner, L)`` views.

    Same values and gradients as ``rows.transpose(1, 2).chunk(2, dim=1)``; the backward writes both
    halves' gradients straight into one ``(B, L, 2 * d_inner)`` tensor, the layout in_proj's
    backward reads. (Through chunk, autograd concatenates them in ``(B, 2 * d_inner, L)`` order and
    the linear layer's backward then copies that once more: two full copies per Mamba block, 13% of
    a bf16 training step of the Echo2Mix model on an H100.)
    """

    @staticmethod
    def forward(ctx, rows: torch.Tensor, d_inner: int):
        ctx.d_inner = d_inner
        cols = rows.transpose(1, 2)
        return cols[:, :d_inner], cols[:, d_inner:]

    @staticmethod
    def backward(ctx, gx, gz):
        d = ctx.d_inner
        ref = gx if gx is not None else gz
        grad = torch.empty(ref.shape[0], ref.shape[2], 2 * d, device=ref.device, dtype=ref.dtype)
        for half, g in ((grad[..., :d], gx), (grad[..., d:], gz)):
            if g is None:
                half.zero_()
            else:
                half.copy_(g.transpose(1, 2))
        return grad, None


register(
    "triton",
    selective_scan_triton_or_torch,
    require=_require,
    available=triton_kernels_available,
    auto={
        "cuda": 0
    },  # first on a GPU: inside SPMamba it beats mamba_ssm's kernels (README, "Speed")
    block=_block,
)
