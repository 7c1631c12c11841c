"""The fused C kernels of the "cpu" scan backend vs float64 references and upstream mamba_ssm."""

import pytest
import torch
import torch.nn.functional as F
from conftest import float64_reference, tiny_spmamba_args

from asteroid_spmamba import SPMamba
from asteroid_spmamba.mamba import cpu_scan, scan, set_scan_backend
from asteroid_spmamba.mamba.cpu_scan import (
    causal_conv1d_silu_time_major,
    selective_scan_cpu,
    selective_scan_time_major,
)
from asteroid_spmamba.mamba.scan import selective_scan, selective_scan_sequential

pytestmark = pytest.mark.skipif(not cpu_scan.cpu_kernel_available(), reason="no C compiler")

NAMES = ["u", "delta", "A", "B", "C", "D", "z", "delta_bias"]


def random_inputs(batch=2, dim=6, length=50, d_state=4, dt_scale=1.0, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g, dtype=dtype)  # noqa: E731
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


def scan_with_grads(fn, x, h0, weights, **kwargs):
    """Outputs, last state and the gradients of every input under a random weighting."""
    leaves = {k: v.clone().requires_grad_(True) for k, v in x.items()}
    h0 = h0.clone().requires_grad_(True)
    out, last = fn(
        **leaves, delta_softplus=True, return_last_state=True, initial_state=h0, **kwargs
    )
    ((out * weights[0]).sum() + (last * weights[1]).sum()).backward()
    return [out.detach(), last.detach(), h0.grad] + [leaves[k].grad for k in NAMES]


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 2e-5)])
@pytest.mark.parametrize(
    "batch,dim,length,d_state",
    [
        (2, 6, 50, 4),  # fewer channels than one SIMD tile
        (3, 37, 300, 16),  # two full tiles and a partial one, the unrolled d_state
        (1, 16, 1, 16),  # a single step
        (2, 5, 2100, 16),  # long sequence
    ],
)
def test_equals_float64_recurrence_values_and_gradients(dtype, tol, batch, dim, length, d_state):
    x = random_inputs(batch, dim, length, d_state)
    g = torch.Generator().manual_seed(1)
    h0 = torch.randn(batch, dim, d_state, generator=g, dtype=torch.float64)
    weights = (
        torch.randn(batch, dim, length, generator=g, dtype=torch.float64),
        torch.randn(batch, dim, d_state, generator=g, dtype=torch.float64),
    )
    ref = scan_with_grads(selective_scan_sequential, x, h0, weights)
    ours = scan_with_grads(
        selective_scan_cpu,
        {k: v.to(dtype) for k, v in x.items()},
        h0.to(dtype),
        [w.to(dtype) for w in weights],
    )
    for name, a, b in zip(["out", "last", "h0"] + NAMES, ours, ref):
        assert a.dtype == dtype, name
        scale = b.abs().max().clamp(min=1)
        assert (a.double() - b).abs().max() / scale < tol, name


@pytest.mark.parametrize("length", [64, 2048])
def test_equals_upstream_selective_scan_ref(upstream, length):
    x = random_inputs(batch=2, dim=24, length=length, d_state=16)
    leaves = {k: v.clone().requires_grad_(True) for k, v in x.items()}
    leaves_ref = {k: v.clone().requires_grad_(True) for k, v in x.items()}
    weight = torch.randn(2, 24, length, dtype=torch.float64)
    ours = selective_scan(**leaves, delta_softplus=True, backend="cpu")
    with float64_reference():
        ref = upstream["ssi"].selective_scan_ref(**leaves_ref, delta_softplus=True)
    torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-10)
    (ours * weight).sum().backward()
    (ref * weight).sum().backward()
    for k in x:
        torch.testing.assert_close(leaves[k].grad, leaves_ref[k].grad, rtol=1e-9, atol=1e-9, msg=k)


@pytest.mark.parametrize(
    "with_z,with_D,with_bias,softplus",
    [
        (True, True, True, True),
        (False, False, False, False),
        (True, False, True, False),
    ],
)
def test_gradcheck_options(with_z, with_D, with_bias, softplus):
    x = random_inputs(batch=2, dim=3, length=7, d_state=3)
    x["delta"] = x["delta"].abs()  # without softplus, delta must stay positive
    tensors = [x[n].clone().requires_grad_(True) for n in NAMES]

    def f(u, delta, A, B, C, D, z, bias):
        return selective_scan_cpu(
            u,
            delta,
            A,
            B,
            C,
            D=D if with_D else None,
            z=z if with_z else None,
            delta_bias=bias if with_bias else None,
            delta_softplus=softplus,
        )

    assert torch.autograd.gradcheck(f, tensors)


def test_softplus_and_exp_across_their_range():
    # float32 kernel: its inlined exp/log against torch's softplus (threshold 20) and exp, from
    # deltas that underflow the decay to exp(-87) and below, to ones past the softplus threshold.
    x = random_inputs(batch=1, dim=16, length=400, d_state=16, dtype=torch.float32)
    x["delta"] = torch.linspace(-30, 40, 400).expand(1, 16, 400).contiguous()
    x["delta_bias"] = torch.zeros(16)
    out = selective_scan_cpu(**x, delta_softplus=True)
    assert torch.isfinite(out).all()
    ref = selective_scan_sequential(**{k: v.double() for k, v in x.items()}, delta_softplus=True)
    torch.testing.assert_close(out.double(), ref, rtol=1e-5, atol=1e-5)


def test_large_dt_and_long_sequence_stay_finite():
    x = random_inputs(length=5000, dt_scale=50.0, dtype=torch.float32)
    out = selective_scan(**x, delta_softplus=True, backend="cpu")
    assert torch.isfinite(out).all()
    ref = selective_scan_sequential(**{k: v.double() for k, v in x.items()}, delta_softplus=True)
    torch.testing.assert_close(out.double(), ref, rtol=1e-4, atol=1e-4)


def test_channel_slices_are_read_in_place_and_threads_agree():
    # x and z as the two halves of one (batch, L, 2*dim) tensor, as Mamba's in_proj produces them
    g = torch.Generator().manual_seed(0)
    batch, length, dim, n = 8, 120, 40, 16
    xz = torch.randn(batch, length, 2 * dim, generator=g)
    u, z = xz.split(dim, dim=-1)
    dbc = torch.randn(batch, length, dim + 2 * n, generator=g)
    dt, B, C = dbc.split([dim, n, n], dim=-1)
    A = -torch.rand(dim, n, generator=g) - 0.1
    D, bias = torch.randn(dim, generator=g), torch.randn(dim, generator=g)
    outs, threads_before = [], torch.get_num_threads()
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            outs.append(selective_scan_time_major(u, dt, A, B, C, D, z, bias, True)[0])
    finally:
        torch.set_num_threads(threads_before)
    assert torch.equal(outs[0], outs[1])
    ref = selective_scan_sequential(
        *(t.transpose(1, 2).double() for t in (u, dt)),
        A.double(),
        *(t.transpose(1, 2).double() for t in (B, C)),
        D.double(),
        z.transpose(1, 2).double(),
        bias.double(),
        True,
    )
    torch.testing.assert_close(outs[0].transpose(1, 2).double(), ref, rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
@pytest.mark.parametrize("with_bias", [True, False])
def test_causal_conv_equals_conv1d(dtype, tol, with_bias):
    g = torch.Generator().manual_seed(0)
    batch, length, dim, k = 3, 33, 21, 4
    xz = torch.randn(batch, length, 2 * dim, generator=g, dtype=dtype)
    weight = torch.randn(dim, k, generator=g, dtype=dtype)
    bias = torch.randn(dim, generator=g, dtype=dtype) if with_bias else None
    grads = []
    for use_kernel in (True, False):
        leaf_xz, leaf_w = xz.clone().requires_grad_(True), weight.clone().requires_grad_(True)
        leaf_b = None if bias is None else bias.clone().requires_grad_(True)
        x = leaf_xz[..., :dim]  # a channel slice, read in place by the kernel
        if use_kernel:
            out = causal_conv1d_silu_time_major(x, leaf_w, leaf_b)
        else:
            ref = F.conv1d(x.transpose(1, 2), leaf_w[:, None], leaf_b, padding=k - 1, groups=dim)
            out = F.silu(ref[..., :length]).transpose(1, 2)
        (out * torch.arange(out.numel(), dtype=dtype).view_as(out).sin()).sum().backward()
        grads.append(
            [out.detach(), leaf_xz.grad, leaf_w.grad] + ([leaf_b.grad] if with_bias else [])
        )
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=tol, atol=tol)


def test_spmamba_cpu_backend_equals_torch_backend():
    torch.manual_seed(0)
    model = SPMamba(**tiny_spmamba_args(n_layers=2, d_state=16, expand=2)).eval()
    wav = torch.randn(2, 1600)
    with torch.no_grad():
        outs = [set_scan_backend(model, backend)(wav) for backend in ("cpu", "torch")]
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-4, atol=1e-5)


def test_auto_backend_and_missing_compiler(monkeypatch, tmp_path):
    assert scan.resolve_backend("auto", torch.device("cpu")) == "cpu"
    # a machine without a compiler: auto falls back, an explicit request explains the fix
    monkeypatch.setattr(cpu_scan, "_find_compiler", lambda: None)
    monkeypatch.setenv(cpu_scan.CACHE_ENV_VAR, str(tmp_path))
    cpu_scan._library.cache_clear()
    cpu_scan.cpu_kernel_available.cache_clear()
    try:
        assert scan.resolve_backend("auto", torch.device("cpu")) == "torch"
        with pytest.raises(cpu_scan.CpuKernelUnavailable, match="no C compiler"):
            scan.resolve_backend("cpu", torch.device("cpu"))
    finally:
        cpu_scan._library.cache_clear()
        cpu_scan.cpu_kernel_available.cache_clear()
    assert list(tmp_path.iterdir()) == []  # nothing half-built left behind


def test_failed_build_reports_the_compiler_error(monkeypatch, tmp_path):
    monkeypatch.setattr(cpu_scan, "COMPILE_FLAGS", cpu_scan.COMPILE_FLAGS + ("-fno-such-option",))
    monkeypatch.setenv(cpu_scan.CACHE_ENV_VAR, str(tmp_path))
    cpu_scan._library.cache_clear()
    try:
        with pytest.raises(
            cpu_scan.CpuKernelUnavailable, match="Building the CPU scan kernel failed"
        ):
            cpu_scan.require_cpu_kernel()
    finally:
        cpu_scan._library.cache_clear()
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_kernel_is_built_once_into_the_cache(monkeypatch, tmp_path):
    monkeypatch.setenv(cpu_scan.CACHE_ENV_VAR, str(tmp_path))
    cpu_scan._library.cache_clear()
    try:
        cpu_scan.require_cpu_kernel()
        built = sorted(tmp_path.iterdir())
        assert len(built) == 1 and built[0].name.startswith("cpu_scan-")
        cpu_scan._library.cache_clear()
        mtime = built[0].stat().st_mtime_ns
        cpu_scan.require_cpu_kernel()
        assert built[0].stat().st_mtime_ns == mtime
    finally:
        cpu_scan._library.cache_clear()
