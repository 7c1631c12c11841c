import contextlib
import os
import sys
import types

import pytest
import torch

sys.path.insert(0, os.path.dirname(__file__))  # fake_datasets and the other helpers of tests/
# the original SPMamba code, adapted to mamba_ssm 2.x (benchmarks/original_code.py)
sys.path.insert(
    0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks")
)


@pytest.fixture(scope="session")
def upstream():
    """Upstream mamba_ssm's reference (pure PyTorch) functions; skip where
    mamba_ssm is not installed."""
    from original_code import install_mamba_ssm_cpu_shims

    if not torch.cuda.is_available():
        # mamba_ssm imports its compiled kernel at import time; without CUDA only
        # the reference code runs.
        sys.modules.setdefault("selective_scan_cuda", types.ModuleType("selective_scan_cuda"))
    pytest.importorskip(
        "mamba_ssm", reason="mamba-ssm not installed (see .ci/run for the CPU install)"
    )
    if not torch.cuda.is_available():
        install_mamba_ssm_cpu_shims()
    from mamba_ssm.modules import mamba_simple
    from mamba_ssm.ops import selective_scan_interface as ssi
    from mamba_ssm.ops.triton import layer_norm

    return {"ssi": ssi, "mamba_simple": mamba_simple, "layer_norm": layer_norm}


@contextlib.contextmanager
def float64_reference():
    """Let upstream reference code, which casts with ``.float()``, compute in
    float64 on float64 inputs."""
    original = torch.Tensor.float

    def keep_float64(self, *args, **kwargs):
        return self if self.dtype == torch.float64 else original(self, *args, **kwargs)

    torch.Tensor.float = keep_float64
    try:
        yield
    finally:
        torch.Tensor.float = original


def tiny_spmamba_args(**overrides):
    """A small SPMamba configuration that runs in well under a second on CPU."""
    args = dict(
        n_src=2,
        sample_rate=8000,
        n_fft=64,
        hop_length=16,
        n_layers=1,
        emb_dim=8,
        emb_ks=2,
        n_head=2,
        approx_qk_dim=32,
        d_state=4,
        expand=1,
    )
    args.update(overrides)
    return args


@pytest.fixture(autouse=True)
def _test_interpreter_on_path(monkeypatch):
    """Recipes' run.sh scripts call ``python``: make it the interpreter running the tests, since CI
    runs ``.venv/bin/python -m pytest`` without activating the virtualenv."""
    monkeypatch.setenv(
        "PATH", os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
    )
