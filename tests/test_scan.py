"""The selective scan: chunked PyTorch backend vs a float64 recurrence and vs upstream mamba_ssm."""

import pytest
import torch
from conftest import float64_reference

from asteroid_spmamba.mamba import cuda_scan, scan
from asteroid_spmamba.mamba.scan import (
    selective_scan,
    selective_scan_chunked,
    selective_scan_sequential,
)


def random_inputs(batch=2, dim=6, length=50, d_state=4, dt_scale=1.0, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)

    def r(*s):
        return torch.randn(*s, generator=g, dtype=dtype)

    return dict(
        u=r(batch, dim, length),
        delta=r(batch, dim, length) * dt_scale,
        A=-torch.rand(dim, d_state, generator=g, dtype=dtype) * 4 - 0.1,
        B=r(batch, d_state, length),
        C=r(batch, d_state, length),
        D=r(dim),
        z=r(batch, dim, length),
        delta_bias=r(dim),
    )


@pytest.mark.parametrize(
    "length,chunk", [(1, None), (7, 3), (50, None), (50, 8), (513, None), (2100, None)]
)
@pytest.mark.parametrize("grad", [False, True])
def test_chunked_equals_float64_recurrence(length, chunk, grad):
    x = random_inputs(length=length)
    ref, ref_state = selective_scan_sequential(**x, delta_softplus=True, return_last_state=True)
    with torch.set_grad_enabled(grad):
        if grad:
            x["u"].requires_grad_(True)
        out, state = selective_scan_chunked(
            **x, delta_softplus=True, return_last_state=True, chunk_size=chunk
        )
    assert out.shape == ref.shape
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(state, ref_state, rtol=1e-10, atol=1e-10)


def test_initial_state_is_carried():
    x = random_inputs(length=600)
    h0 = torch.randn(2, 6, 4, dtype=torch.float64)
    ref = selective_scan_sequential(**x, delta_softplus=True, initial_state=h0)
    for grad in (False, True):
        with torch.set_grad_enabled(grad):
            out = selective_scan_chunked(
                **x, delta_softplus=True, initial_state=h0.requires_grad_(grad)
            )
        torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)


def test_large_dt_and_long_sequence_stay_finite():
    # softplus(dt) up to ~50 with |A| up to 4: per-step decays as small as exp(-200); a cumulative
    # product over 5000 steps underflows to 0, so only a formulation without division survives.
    x = random_inputs(length=5000, dt_scale=50.0, dtype=torch.float32)
    out = selective_scan_chunked(**x, delta_softplus=True)
    assert torch.isfinite(out).all()
    ref = selective_scan_sequential(**{k: v.double() for k, v in x.items()}, delta_softplus=True)
    torch.testing.assert_close(out.double(), ref, rtol=1e-4, atol=1e-4)


def test_gradcheck_small():
    x = random_inputs(batch=1, dim=2, length=9, d_state=3)
    names = ["u", "delta", "A", "B", "C", "D", "z", "delta_bias"]
    tensors = [x[n].clone().requires_grad_(True) for n in names]

    def f(*args):
        return selective_scan_chunked(
            *args[:5], D=args[5], z=args[6], delta_bias=args[7], delta_softplus=True, chunk_size=4
        )

    assert torch.autograd.gradcheck(f, tensors)


@pytest.mark.parametrize("length", [64, 2048])
def test_equals_upstream_selective_scan_ref(upstream, length):
    x = random_inputs(batch=2, dim=8, length=length, d_state=16)
    with float64_reference():
        ref = upstream["ssi"].selective_scan_ref(**x, delta_softplus=True)
    ours = selective_scan(**x, delta_softplus=True, backend="torch")
    torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-10)


def test_gradients_equal_upstream_selective_scan_ref(upstream):
    x = random_inputs(batch=2, dim=4, length=300, d_state=8)
    leaves = {k: v.clone().requires_grad_(True) for k, v in x.items()}
    leaves_ref = {k: v.clone().requires_grad_(True) for k, v in x.items()}
    weight = torch.randn(2, 4, 300, dtype=torch.float64)
    (selective_scan(**leaves, delta_softplus=True, backend="torch") * weight).sum().backward()
    with float64_reference():
        (
            upstream["ssi"].selective_scan_ref(**leaves_ref, delta_softplus=True) * weight
        ).sum().backward()
    for k in x:
        torch.testing.assert_close(leaves[k].grad, leaves_ref[k].grad, rtol=1e-9, atol=1e-9, msg=k)


def test_backend_choice(monkeypatch):
    assert scan.resolve_backend("torch", torch.device("cpu")) == "torch"
    assert scan.resolve_backend("auto", torch.device("cpu")) in ("cpu", "torch")
    monkeypatch.setenv(scan.BACKEND_ENV_VAR, "sequential")
    assert scan.resolve_backend(None, torch.device("cpu")) == "sequential"
    with pytest.raises(ValueError, match="Unknown scan backend"):
        scan.resolve_backend("fast", torch.device("cpu"))


def test_cuda_backend_without_kernels_names_the_install(monkeypatch):
    monkeypatch.setattr(cuda_scan, "_cuda_kernels", lambda: None)
    with pytest.raises(ImportError, match="pip install"):
        scan.resolve_backend("cuda", torch.device("cpu"))


def test_cuda_backend_on_cpu_tensors_is_refused(monkeypatch):
    monkeypatch.setattr(cuda_scan, "_cuda_kernels", lambda: {"selective_scan_fn": None})
    with pytest.raises(ValueError, match="CUDA tensors"):
        scan.resolve_backend("cuda", torch.device("cpu"))
