"""The ``"cuda"`` scan backend: upstream ``mamba_ssm``'s CUDA kernels, when they are installed.

``selective_scan_fn`` runs the scan; with ``causal-conv1d`` installed too, ``causal_conv1d_fn`` runs
Mamba's convolution and, with ``Mamba(use_fast_path=True)`` (the default), ``mamba_inner_fn`` runs
the whole block (convolution, projections and scan in one autograd function).
"""

from functools import cache

import torch

from .backends import register

CUDA_INSTALL_HINT = (
    "pip install 'asteroid-spmamba[cuda]'  (or: pip install mamba-ssm causal-conv1d "
    "--no-build-isolation), on a machine with a CUDA toolkit matching your torch build"
)


@cache
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
    """Whether the ``mamba_ssm`` CUDA kernels can be imported (a GPU is
    still needed to run them)."""
    return _cuda_kernels() is not None


def _require(device: torch.device) -> None:
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


def selective_scan_cuda(u, delta, A, B, C, **kwargs):
    """``mamba_ssm``'s ``selective_scan_fn`` (arguments as :func:`~.scan.selective_scan`)."""
    return _cuda_kernels()["selective_scan_fn"](u, delta, A, B, C, **kwargs)


def _conv_silu(conv1d_fn):
    def conv(x, weight, bias):
        return conv1d_fn(x, weight, bias, activation="silu")

    return conv


def _block(mamba, xz, A, D, dt_bias):
    kernels = _cuda_kernels()
    xz = xz.transpose(1, 2)  # (B, 2 * d_inner, L), the layout of upstream's kernels
    if mamba.use_fast_path and kernels["causal_conv1d_fn"] is not None:
        return kernels["mamba_inner_fn"](
            xz,
            mamba.conv1d.weight,
            mamba.conv1d.bias,
            mamba.x_proj.weight,
            mamba.dt_proj.weight,
            mamba.out_proj.weight,
            mamba.out_proj.bias,
            A,
            None,
            None,
            D,
            delta_bias=dt_bias,
            delta_softplus=True,
        )
    x, z = xz.chunk(2, dim=1)
    conv = kernels["causal_conv1d_fn"]
    return mamba.forward_unfused(
        x, z, A, D, dt_bias, selective_scan_cuda, conv=_conv_silu(conv) if conv else None
    )


register(
    "cuda",
    selective_scan_cuda,
    require=_require,
    available=cuda_kernels_available,
    auto={"cuda": 1},  # after Triton, which ran faster inside SPMamba (README, "Speed")
    block=_block,
)
