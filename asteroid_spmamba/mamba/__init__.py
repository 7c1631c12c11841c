"""Mamba-1 in pure PyTorch with optional ``mamba_ssm`` CUDA kernels."""

from .backends import BACKEND_ENV_VAR, resolve_backend
from .cuda_scan import cuda_kernels_available
from .modules import BiMamba, Mamba, MambaResidualBlock, RMSNorm, set_scan_backend
from .scan import (
    selective_scan,
    selective_scan_chunked,
    selective_scan_sequential,
)

__all__ = [
    "Mamba",
    "MambaResidualBlock",
    "RMSNorm",
    "BiMamba",
    "set_scan_backend",
    "selective_scan",
    "selective_scan_chunked",
    "selective_scan_sequential",
    "resolve_backend",
    "cuda_kernels_available",
    "BACKEND_ENV_VAR",
]
