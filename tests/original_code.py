"""Run the original SPMamba code (JusperLee/SPMamba, ``look2hear``) on CPU, for reference outputs.

The original targets mamba_ssm 1.x with its CUDA kernels. This module adapts a checkout of it to
run on CPU with mamba_ssm 2.x installed without CUDA, using upstream's own reference code:

* ``mamba_ssm.modules.mamba_simple.Block`` (moved to ``modules.block`` in 2.x, with a new ``mlp_cls``
  argument) and ``mamba_ssm.ops.triton.layernorm.RMSNorm`` (renamed ``layer_norm``; its Triton kernel
  replaced by upstream's ``rms_norm_ref``);
* ``selective_scan_fn`` -> upstream's ``selective_scan_ref``;
* ``typeguard.check_argument_types`` (gone in typeguard 3) and ``librosa`` (only used on machines
  without FFT support) are stubbed.

Nothing of the original is stored here: point ``SPMAMBA_ORIGINAL_DIR`` (or the ``original_dir``
argument) at a checkout of JusperLee/SPMamba; torch_complex must be importable.
"""
import importlib
import os
import sys
import types
from functools import partial


def install_mamba_ssm_cpu_shims() -> None:
    """Make ``mamba_ssm`` importable on CPU and route its kernels to upstream's reference code."""
    sys.modules.setdefault("selective_scan_cuda", types.ModuleType("selective_scan_cuda"))
    import torch.nn as nn
    from mamba_ssm.modules import block as block_mod
    from mamba_ssm.modules import mamba_simple
    from mamba_ssm.ops import selective_scan_interface as ssi
    from mamba_ssm.ops.triton import layer_norm

    mamba_simple.selective_scan_fn = ssi.selective_scan_ref
    mamba_simple.causal_conv1d_fn = None

    class Block(block_mod.Block):  # mamba_ssm 1.x signature: no mlp_cls
        def __init__(self, dim, mixer_cls, norm_cls=nn.LayerNorm, fused_add_norm=False, residual_in_fp32=False):
            super().__init__(dim, mixer_cls, nn.Identity, norm_cls, fused_add_norm, residual_in_fp32)

    class RMSNorm(layer_norm.RMSNorm):
        def forward(self, x, residual=None, prenorm=False, residual_in_fp32=False):
            return layer_norm.rms_norm_ref(x, self.weight, self.bias, eps=self.eps, upcast=True)

    mamba_simple.Block = Block
    layernorm_1x = types.ModuleType("mamba_ssm.ops.triton.layernorm")
    layernorm_1x.RMSNorm = RMSNorm
    sys.modules["mamba_ssm.ops.triton.layernorm"] = layernorm_1x


def import_original_spmamba(original_dir=None):
    """Return the original ``SPMamba`` class from a checkout of JusperLee/SPMamba."""
    original_dir = original_dir or os.environ.get("SPMAMBA_ORIGINAL_DIR")
    if not original_dir or not os.path.isdir(os.path.join(original_dir, "look2hear")):
        raise FileNotFoundError(
            "Set SPMAMBA_ORIGINAL_DIR to a checkout of https://github.com/JusperLee/SPMamba"
        )
    install_mamba_ssm_cpu_shims()
    typeguard = types.ModuleType("typeguard")
    typeguard.check_argument_types = lambda: True
    sys.modules.setdefault("typeguard", typeguard)
    librosa = types.ModuleType("librosa")
    librosa.__path__ = []  # a package, so that "import librosa.filters" finds the stub below
    sys.modules.setdefault("librosa", librosa)
    sys.modules.setdefault("librosa.filters", types.ModuleType("librosa.filters"))
    sys.modules.setdefault("librosa.util", types.ModuleType("librosa.util"))
    sys.path.insert(0, original_dir)
    return importlib.import_module("look2hear.models.SPMamba").SPMamba
