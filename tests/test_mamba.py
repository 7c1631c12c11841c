"""Our Mamba block vs upstream mamba_ssm: same parameter contract, same outputs and gradients."""

import pytest
import torch
import torch.nn.functional as F
from conftest import float64_reference

from asteroid_spmamba.mamba import BiMamba, Mamba, MambaResidualBlock, RMSNorm
from asteroid_spmamba.mamba.cpu_scan import cpu_kernel_available


def perturbed(module, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return module


def causal_conv1d_ref(x, weight, bias=None, activation=None, **_):
    """Plain-PyTorch stand-in for causal_conv1d_fn (upstream's mamba_inner_ref requires one)."""
    out = F.conv1d(x, weight[:, None], bias, padding=weight.shape[-1] - 1, groups=x.shape[1])[
        ..., : x.shape[-1]
    ]
    return F.silu(out) if activation in ("silu", "swish") else out


def test_parameter_names_and_shapes_equal_upstream(upstream):
    ours = Mamba(32, d_state=16, d_conv=4, expand=4)
    theirs = upstream["mamba_simple"].Mamba(32, d_state=16, d_conv=4, expand=4)
    assert {k: v.shape for k, v in ours.state_dict().items()} == {
        k: v.shape for k, v in theirs.state_dict().items()
    }


@pytest.mark.parametrize("backend", ["torch", "cpu"])
@pytest.mark.parametrize("length", [1, 37, 2000])
def test_outputs_and_gradients_equal_upstream_module(upstream, length, backend):
    if backend == "cpu" and not cpu_kernel_available():
        pytest.skip("no C compiler for the cpu backend")
    torch.manual_seed(0)
    theirs = perturbed(upstream["mamba_simple"].Mamba(16, d_state=8, d_conv=4, expand=2)).double()
    ours = Mamba(16, d_state=8, d_conv=4, expand=2, backend=backend).double()
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(2, length, 16, dtype=torch.float64)
    x_ours, x_theirs = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    weight = torch.randn(2, length, 16, dtype=torch.float64)
    y = ours(x_ours)
    (y * weight).sum().backward()
    with float64_reference():
        y_ref = theirs(x_theirs)
        (y_ref * weight).sum().backward()
    torch.testing.assert_close(y, y_ref, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(x_ours.grad, x_theirs.grad, rtol=1e-9, atol=1e-9)
    grads_theirs = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        torch.testing.assert_close(p.grad, grads_theirs[name].grad, rtol=1e-9, atol=1e-9, msg=name)


def test_equals_upstream_mamba_inner_ref(upstream, monkeypatch):
    ssi = upstream["ssi"]
    monkeypatch.setattr(ssi, "causal_conv1d_fn", causal_conv1d_ref)
    monkeypatch.setattr(ssi, "selective_scan_fn", ssi.selective_scan_ref)
    torch.manual_seed(1)
    m = perturbed(Mamba(16, d_state=16, expand=4, backend="torch")).double()
    x = torch.randn(3, 700, 16, dtype=torch.float64)
    xz = (x @ m.in_proj.weight.T).transpose(1, 2)
    with float64_reference():
        ref = ssi.mamba_inner_ref(
            xz,
            m.conv1d.weight,
            m.conv1d.bias,
            m.x_proj.weight,
            m.dt_proj.weight,
            m.out_proj.weight,
            m.out_proj.bias,
            -torch.exp(m.A_log),
            None,
            None,
            m.D,
            delta_bias=m.dt_proj.bias,
            delta_softplus=True,
        )
    torch.testing.assert_close(m(x), ref, rtol=1e-10, atol=1e-10)


def test_rmsnorm_equals_upstream(upstream):
    norm = perturbed(RMSNorm(24))
    x = torch.randn(5, 24)
    ref = upstream["layer_norm"].rms_norm_ref(x, norm.weight, None, eps=norm.eps, upcast=True)
    torch.testing.assert_close(norm(x), ref)


def test_residual_block_equals_upstream_block(upstream):
    block_cls = upstream[
        "mamba_simple"
    ].Block  # the mamba_ssm 1.x signature SPMamba was written for
    from functools import partial

    from mamba_ssm.ops.triton.layernorm import RMSNorm as UpstreamRMSNorm

    theirs = block_cls(
        16,
        mixer_cls=partial(upstream["mamba_simple"].Mamba, d_state=8, expand=2),
        norm_cls=partial(UpstreamRMSNorm, eps=1e-5),
        fused_add_norm=False,
    )
    perturbed(theirs)
    ours = MambaResidualBlock(16, Mamba(16, d_state=8, expand=2))
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(2, 30, 16)
    hidden, residual = theirs(x, None)
    torch.testing.assert_close(ours(x), hidden + residual, rtol=1e-5, atol=1e-5)


def test_unidirectional_bimamba_is_causal():
    torch.manual_seed(0)
    seq = BiMamba(8, bidirectional=False, d_state=4, expand=2).eval()
    assert seq.output_dim == 8 and seq.backward_blocks is None
    x = torch.randn(1, 40, 8)
    x2 = x.clone()
    x2[:, 25:] += torch.randn(1, 15, 8)
    with torch.no_grad():
        y, y2 = seq(x), seq(x2)
    torch.testing.assert_close(y[:, :25], y2[:, :25])
    assert not torch.allclose(y[:, 25:], y2[:, 25:])


def test_bidirectional_bimamba_looks_both_ways():
    torch.manual_seed(0)
    seq = BiMamba(8, bidirectional=True, d_state=4, expand=2).eval()
    assert seq.output_dim == 16
    x = torch.randn(1, 40, 8)
    x2 = x.clone()
    x2[:, 25:] += 1.0
    with torch.no_grad():
        y, y2 = seq(x), seq(x2)
    torch.testing.assert_close(y[:, :25, :8], y2[:, :25, :8])  # forward half: causal
    assert not torch.allclose(y[:, :25, 8:], y2[:, :25, 8:])  # backward half sees the future


def test_split_in_proj_equals_chunk_values_and_gradients():
    """The Triton path's split of in_proj's output: chunk's values, gradcheck-exact gradients
    written in in_proj's (B, L, 2 * d_inner) layout, zeros for an unused half."""
    from asteroid_spmamba.mamba.triton_block import _SplitInProj

    rows = torch.randn(2, 7, 10, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda r: _SplitInProj.apply(r, 5), (rows,))
    x, z = _SplitInProj.apply(rows, 5)
    ref_x, ref_z = rows.transpose(1, 2).chunk(2, dim=1)
    assert torch.equal(x, ref_x) and torch.equal(z, ref_z)
    (3 * x).sum().backward()  # z unused: its gradient is None
    assert rows.grad.is_contiguous()
    assert torch.equal(
        rows.grad, torch.cat([torch.full((2, 7, 5), 3.0), torch.zeros(2, 7, 5)], -1).double()
    )
