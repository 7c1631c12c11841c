"""The original SPMamba code (JusperLee/SPMamba, ``look2hear``), run beside this package's for
reference outputs (tests) and timings (benchmarks). Development tooling: not
installed with the package.

The original targets mamba_ssm 1.x. This module adapts a checkout of it to an
installed mamba_ssm 2.x:

* ``mamba_ssm.modules.mamba_simple.Block`` (moved to ``modules.block`` in 2.x, with a new
  ``mlp_cls`` argument) and ``mamba_ssm.ops.triton.layernorm.RMSNorm`` (renamed ``layer_norm``);
* on CPU (or without the CUDA kernels), ``selective_scan_fn`` -> upstream's ``selective_scan_ref``
  and the Triton RMSNorm -> upstream's ``rms_norm_ref``;
* ``typeguard.check_argument_types`` (gone in typeguard 3) and ``librosa`` (imported, never used
  here) are stubbed.

Nothing of the original is stored here: point ``SPMAMBA_ORIGINAL_DIR`` (or ``original_dir``) at a
checkout of JusperLee/SPMamba; torch_complex must be importable.
"""

import importlib
import importlib.machinery
import importlib.util
import os
import sys
import types
from typing import Optional, Union

import torch
from torch import nn


def install_mamba_ssm_1x_api(use_cuda_kernels: bool) -> None:
    """Adapt an installed ``mamba_ssm`` 2.x to the 1.x names the original code imports.

    ``mamba_simple.Block`` moved to ``modules.block`` with a new ``mlp_cls`` argument, and
    ``ops.triton.layernorm`` became ``ops.triton.layer_norm``. With ``use_cuda_kernels`` the CUDA
    scan and the Triton RMSNorm stay in place; otherwise (CPU) upstream's reference functions run.
    """
    if not use_cuda_kernels:
        # its Python code imports the compiled extension at import time
        sys.modules.setdefault("selective_scan_cuda", types.ModuleType("selective_scan_cuda"))
    from mamba_ssm.modules import mamba_simple

    try:
        importlib.import_module("mamba_ssm.ops.triton.layernorm")
        has_1x_layernorm = True
    except ImportError:
        has_1x_layernorm = False
    if hasattr(mamba_simple, "Block") and has_1x_layernorm and use_cuda_kernels:
        return  # mamba_ssm 1.x: nothing to adapt
    from mamba_ssm.modules import block as block_mod
    from mamba_ssm.ops import selective_scan_interface as ssi
    from mamba_ssm.ops.triton import layer_norm

    class Block(block_mod.Block):  # 1.x signature: no mlp_cls
        def __init__(
            self,
            dim,
            mixer_cls,
            norm_cls=nn.LayerNorm,
            fused_add_norm=False,
            residual_in_fp32=False,
        ):
            super().__init__(
                dim, mixer_cls, nn.Identity, norm_cls, fused_add_norm, residual_in_fp32
            )

    if use_cuda_kernels:
        RMSNorm = layer_norm.RMSNorm
    else:
        mamba_simple.selective_scan_fn = ssi.selective_scan_ref
        mamba_simple.causal_conv1d_fn = None

        class RMSNorm(layer_norm.RMSNorm):
            def forward(self, x, residual=None, prenorm=False, residual_in_fp32=False):
                return layer_norm.rms_norm_ref(x, self.weight, self.bias, eps=self.eps, upcast=True)

    mamba_simple.Block = Block
    layernorm_1x = types.ModuleType("mamba_ssm.ops.triton.layernorm")
    layernorm_1x.RMSNorm = RMSNorm
    sys.modules["mamba_ssm.ops.triton.layernorm"] = layernorm_1x


def import_original_spmamba(
    original_dir: Optional[str] = None, device: Union[str, torch.device] = "cpu"
):
    """The original ``SPMamba`` class from a checkout of JusperLee/SPMamba (default:
    ``$SPMAMBA_ORIGINAL_DIR``), ready for ``device``.

    Raises:
        FileNotFoundError: ``original_dir`` is not such a checkout.
        ImportError: ``mamba_ssm`` or ``torch_complex`` is missing.
    """
    original_dir = original_dir or os.environ.get("SPMAMBA_ORIGINAL_DIR")
    if not original_dir or not os.path.isdir(os.path.join(original_dir, "look2hear", "models")):
        raise FileNotFoundError(
            f"original code: {original_dir!r} is not a checkout of "
            "https://github.com/JusperLee/SPMamba (no look2hear/models inside)."
        )
    from asteroid_spmamba.mamba.cuda_scan import cuda_kernels_available

    device = torch.device(device)
    use_cuda = device.type == "cuda" and cuda_kernels_available()
    if device.type == "cuda" and not use_cuda:
        raise ImportError(
            "timing the original code on a GPU needs the mamba_ssm CUDA kernels (pip install "
            "mamba-ssm causal-conv1d); its pure-PyTorch reference scan "
            "would not be a fair reference."
        )
    try:
        install_mamba_ssm_1x_api(use_cuda)
    except ImportError as err:
        raise ImportError(
            f"The original code needs mamba_ssm (pip install mamba-ssm): {err}"
        ) from err
    # typeguard.check_argument_types is gone in typeguard 3; librosa is only
    # imported, never used on GPU
    typeguard = types.ModuleType("typeguard")
    typeguard.check_argument_types = lambda: True
    sys.modules.setdefault("typeguard", typeguard)
    if "librosa" not in sys.modules and _not_installed("librosa"):
        for name in ("librosa", "librosa.filters", "librosa.util"):
            module = types.ModuleType(name)
            module.__path__ = []  # a package, so that "import librosa.filters" finds the stub
            # a spec, so that other libraries' importlib.util.find_spec("librosa") does not raise
            module.__spec__ = importlib.machinery.ModuleSpec(name, None, is_package=True)
            sys.modules.setdefault(name, module)
    if original_dir not in sys.path:
        sys.path.insert(0, original_dir)
    return importlib.import_module("look2hear.models.SPMamba").SPMamba


def _not_installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is None
    except (ImportError, ValueError):  # a stub without __spec__, or a broken install
        return True


def install_mamba_ssm_cpu_shims() -> None:
    """mamba_ssm importable on a CPU, its kernels routed to upstream's reference code."""
    install_mamba_ssm_1x_api(use_cuda_kernels=False)


def build_original(original_cls, config: dict) -> nn.Module:
    """The original model with the architecture of this package's SPMamba ``config``."""
    fixed = dict(d_state=16, d_conv=4, expand=4, mamba_layers=1, bidirectional=True, causal=False)
    mismatch = {k: config.get(k, v) for k, v in fixed.items() if config.get(k, v) != v}
    if mismatch:
        raise ValueError(
            f"The original code hard-codes {fixed}; this configuration has {mismatch}."
        )
    return original_cls(
        input_dim=64,
        n_srcs=config["n_src"],
        n_fft=config["n_fft"],
        stride=config["hop_length"],
        window=config.get("window", "hann"),
        n_imics=config.get("in_channels", 1),
        n_layers=config["n_layers"],
        lstm_hidden_units=256,
        attn_n_head=config["n_head"],
        attn_approx_qk_dim=config["approx_qk_dim"],
        emb_dim=config["emb_dim"],
        emb_ks=config["emb_ks"],
        emb_hs=config.get("emb_hs", 1),
        activation=config.get("activation", "prelu"),
        eps=config.get("eps", 1e-5),
        sample_rate=int(config["sample_rate"]),
    )
