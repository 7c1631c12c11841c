"""GPU fast paths, checked on CPU: the Triton selective scan (in Triton's interpreter, and compiled
for sm_90 without a GPU) and the GridNet fast paths (unfold, batched heads, fused attention, bf16
autocast, torch.compile), each against the plain computation, values and gradients."""

import copy
import math
import os
import re
import shutil

import pytest
import torch
import torch.nn.functional as F
from conftest import tiny_spmamba_args

from asteroid_spmamba import SPMamba
from asteroid_spmamba.mamba import Mamba
from asteroid_spmamba.mamba import scan as scan_mod
from asteroid_spmamba.mamba.cuda_scan import cuda_kernels_available
from asteroid_spmamba.mamba.scan import selective_scan, selective_scan_sequential
from asteroid_spmamba.mamba.triton_block import triton_kernels_available
from asteroid_spmamba.masknn.gridnet import GridNetBlock, set_fast_paths
from asteroid_spmamba.masknn.norms import LayerNorm4D
from asteroid_spmamba.models.tfgridnet import TFGridNet

triton = pytest.importorskip("triton", reason="triton not installed")
from asteroid_spmamba.mamba import triton_scan  # noqa: E402

# --------------------------------------------------------------------------------------------
# Triton selective scan
# --------------------------------------------------------------------------------------------

# Triton's interpreter is chosen when triton is first imported (its library functions are compiled
# or interpreted then), so the kernels are checked in a child pytest run with TRITON_INTERPRET=1;
# the tests named *_interpreted run there (or here, when this session has TRITON_INTERPRET=1).
needs_interpreter = pytest.mark.skipif(
    not triton_scan.interpreting(),
    reason="runs in the TRITON_INTERPRET=1 child (test_triton_kernels_in_interpreter)",
)


@pytest.fixture(scope="module")
def interp():
    """triton_scan in interpreter mode; skip where the interpreter cannot run the kernels."""
    try:
        u = torch.randn(1, 2, 3)
        triton_scan.selective_scan_triton(
            u, u, -torch.ones(2, 2), torch.ones(1, 2, 3), torch.ones(1, 2, 3)
        )
    except Exception as err:
        pytest.skip(
            f"Triton's interpreter cannot run the kernels here: {type(err).__name__}: {err}"
        )
    return triton_scan


def test_triton_kernels_in_interpreter():
    if triton_scan.interpreting():
        pytest.skip("this session interprets: the *_interpreted tests run directly")
    import subprocess
    import sys

    env = dict(
        os.environ, TRITON_INTERPRET="1", OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1")
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-rs",
            "-p",
            "no:cacheprovider",
            __file__,
            "-k",
            "interpreted",
        ],
        env=env,
        capture_output=True,
        text=True,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        timeout=900,
    )
    summary = proc.stdout[-3000:] + proc.stderr[-2000:]
    assert proc.returncode == 0, summary
    passed = re.search(r"(\d+) passed", proc.stdout)
    if not passed:
        pytest.skip("the interpreter could not run the kernels:\n" + summary)
    assert int(passed.group(1)) >= 8, summary


def _scan_inputs(batch, dim, length, n, z=True, D=True, bias=True, channels_last=False, seed=0):
    g = torch.Generator().manual_seed(seed)

    def randn(*shape):
        return torch.randn(*shape, generator=g)

    if channels_last:  # as in Mamba: delta and z contiguous along the channels
        u, delta = (
            randn(batch, length, dim).transpose(1, 2),
            (0.5 * randn(batch, length, dim)).transpose(1, 2),
        )
    else:
        u, delta = randn(batch, dim, length), 0.5 * randn(batch, dim, length)
    A = -(2 * torch.rand(dim, n, generator=g) + 0.1)
    B, C = randn(batch, n, length), randn(batch, n, length)
    return [
        u,
        delta,
        A,
        B,
        C,
        randn(dim) if D else None,
        randn(batch, dim, length) if z else None,
        0.3 * randn(dim) if bias else None,
    ]


def _rel(a, b):
    return ((a.double() - b.double()).abs().max() / b.double().abs().max().clamp_min(1e-12)).item()


@pytest.mark.parametrize(
    "case",
    [
        dict(batch=2, dim=5, length=19, n=4),  # partial chunks, odd sizes
        dict(
            batch=1, dim=3, length=3, n=3, z=False, D=False, bias=False, softplus=False, last=False
        ),
        dict(batch=2, dim=40, length=23, n=8, channels_last=True),
    ],
)
@pytest.mark.parametrize("backward", ["stored", "recompute"])
@needs_interpreter
def test_triton_scan_matches_sequential_interpreted(interp, case, backward, monkeypatch):
    monkeypatch.setattr(interp, "BACKWARD_METHOD", backward)
    monkeypatch.setattr(interp, "RECOMPUTE_CHUNK", 4)  # several chunks, the last one partial
    case = dict(case)
    softplus, with_last = case.pop("softplus", True), case.pop("last", True)
    args = _scan_inputs(**case)
    ours = [t.clone().requires_grad_(True) if t is not None else None for t in args]
    ref = [t.double().clone().requires_grad_(True) if t is not None else None for t in args]
    out, last = interp.selective_scan_triton(*ours, delta_softplus=softplus, return_last_state=True)
    out_ref, last_ref = selective_scan_sequential(
        *ref, delta_softplus=softplus, return_last_state=True
    )
    assert out.dtype == torch.float32 and last.shape == last_ref.shape
    assert _rel(out, out_ref) < 1e-4 and _rel(last, last_ref) < 1e-4
    g_out, g_last = torch.randn_like(out_ref), torch.randn_like(last_ref)
    loss = (out * g_out.float()).sum() + ((last * g_last.float()).sum() if with_last else 0)
    loss_ref = (out_ref * g_out).sum() + ((last_ref * g_last).sum() if with_last else 0)
    loss.backward()
    loss_ref.backward()
    for name, a, b in zip(("u", "delta", "A", "B", "C", "D", "z", "delta_bias"), ours, ref):
        if a is not None:
            assert _rel(a.grad, b.grad) < 1e-4, name


@pytest.mark.parametrize("k,with_bias", [(4, True), (2, False)])
@needs_interpreter
def test_triton_causal_conv_matches_conv1d_interpreted(interp, k, with_bias):
    g = torch.Generator().manual_seed(0)
    batch, length, dim = 2, 37, 70  # partial tiles along time and channels
    xz = torch.randn(batch, length, 2 * dim, generator=g)
    w = torch.randn(dim, k, generator=g)
    b = torch.randn(dim, generator=g) if with_bias else None
    results = []
    for use_kernel in (True, False):
        leaves = [
            xz.clone().requires_grad_(True),
            w.clone().requires_grad_(True),
            b.clone().requires_grad_(True) if with_bias else None,
        ]
        x = leaves[0].transpose(1, 2)[:, :dim]  # a channel slice of a wider tensor, as in Mamba
        if use_kernel:
            out = interp.causal_conv1d_silu_triton(x, leaves[1], leaves[2])
        else:
            out = F.silu(
                F.conv1d(x, leaves[1][:, None], leaves[2], padding=k - 1, groups=dim)[..., :length]
            )
        (out * torch.randn(out.shape, generator=torch.Generator().manual_seed(1))).sum().backward()
        results.append([out.detach()] + [t.grad for t in leaves if t is not None])
    for a, ref in zip(*results):
        assert _rel(a, ref) < 1e-5


@needs_interpreter
def test_triton_scan_bf16_inputs_interpreted(interp):
    args = _scan_inputs(2, 6, 11, 4, seed=1)
    low = [
        t.bfloat16() if t is not None and i in (0, 1, 3, 4, 6) else t for i, t in enumerate(args)
    ]
    try:
        out = interp.selective_scan_triton(*low, delta_softplus=True)
    except Exception as err:
        pytest.skip(f"the interpreter does not run bfloat16 here: {err}")
    ref = selective_scan_sequential(
        *[t.double() if t is not None else None for t in low], delta_softplus=True
    )
    assert out.dtype == torch.bfloat16
    assert _rel(out, ref) < 2e-2  # bf16 output rounding; the state is float32


@needs_interpreter
def test_triton_backend_in_selective_scan_and_mamba_interpreted(interp):
    args = _scan_inputs(2, 6, 9, 4, seed=2)
    out = selective_scan(
        *args[:5], D=args[5], z=args[6], delta_bias=args[7], delta_softplus=True, backend="triton"
    )
    ref = selective_scan(
        *args[:5], D=args[5], z=args[6], delta_bias=args[7], delta_softplus=True, backend="torch"
    )
    assert _rel(out, ref) < 1e-4
    torch.manual_seed(0)
    plain = Mamba(8, d_state=4, expand=2, backend="torch")
    fast = copy.deepcopy(plain)
    fast.backend = "triton"
    x = torch.randn(2, 10, 8)
    y_plain, y_fast = plain(x), fast(x)
    assert _rel(y_fast, y_plain) < 1e-4
    g = torch.randn_like(y_plain)
    (y_plain * g).sum().backward()
    (y_fast * g).sum().backward()
    for (name, p), q in zip(plain.named_parameters(), fast.parameters()):
        assert _rel(q.grad, p.grad) < 1e-4, name


@needs_interpreter
def test_lean_triton_mamba_inner_equals_the_composition_and_keeps_less_interpreted(interp):
    """The Triton path's Mamba inner Function: the values and gradients of convolution ->
    projections -> scan composed under autograd, keeping neither the convolution's output nor delta
    for the backward."""
    from asteroid_spmamba.mamba.triton_block import _inner_front, _TritonMambaInner

    torch.manual_seed(0)
    mamba = Mamba(8, d_state=4, expand=2, backend="triton")
    batch, length, d_inner = 2, 13, mamba.d_inner
    xz = torch.randn(batch, length, 2 * d_inner)
    A = -torch.exp(mamba.A_log.detach())
    g = torch.randn(batch, d_inner, length)
    results, kept = [], []
    for lean in (True, False):
        leaves = [
            t.detach().clone().requires_grad_()
            for t in (
                xz,
                mamba.conv1d.weight[:, 0],
                mamba.conv1d.bias,
                mamba.x_proj.weight,
                mamba.dt_proj.weight,
                A,
                mamba.D,
                mamba.dt_proj.bias,
            )
        ]
        x, z = leaves[0].transpose(1, 2).chunk(2, dim=1)
        saved = {}

        def pack(t):
            saved[(t.untyped_storage().data_ptr(), t.dtype)] = t.untyped_storage().nbytes()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            if lean:
                out = _TritonMambaInner.apply(x, z, *leaves[1:], mamba.dt_rank, mamba.d_state)
            else:
                u, delta, B, C = _inner_front(x, *leaves[1:5], mamba.dt_rank, mamba.d_state)
                out = interp.selective_scan_triton(
                    u, delta, leaves[5], B, C, leaves[6], z, leaves[7], delta_softplus=True
                )
        (out * g).sum().backward()
        results.append([out.detach()] + [t.grad for t in leaves])
        kept.append(sum(saved.values()))
    for name, a, b in zip(
        ("out", "xz", "conv_w", "conv_b", "x_proj", "dt_proj", "A", "D", "dt_bias"), *results
    ):
        assert _rel(a, b) < 1e-5, name
    activation = batch * d_inner * length * 4  # bytes of one (B, d_inner, L) float32 tensor
    assert kept[1] - kept[0] >= 2 * activation, (
        kept
    )  # the convolution's output and delta are not kept


gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("channels_last", [False, True])
def test_triton_scan_on_gpu(dtype, channels_last):
    """Compiled kernels (autotuned) against the float64 recurrence: values and gradients."""
    args = [
        t.cuda() if t is not None else None
        for t in _scan_inputs(3, 96, 301, 16, channels_last=channels_last)
    ]
    low = [t.to(dtype) if t is not None and i in (0, 1, 3, 4, 6) else t for i, t in enumerate(args)]
    ours = [t.clone().requires_grad_(True) if t is not None else None for t in low]
    ref = [t.double().clone().requires_grad_(True) if t is not None else None for t in low]
    out, last = triton_scan.selective_scan_triton(
        *ours, delta_softplus=True, return_last_state=True
    )
    out_ref, last_ref = selective_scan_sequential(*ref, delta_softplus=True, return_last_state=True)
    tol = 1e-4 if dtype == torch.float32 else 2e-2
    assert out.dtype == dtype and _rel(out, out_ref) < tol and _rel(last, last_ref) < 1e-4
    g = torch.randn_like(out_ref)
    ((out * g.to(dtype)).sum() + last.sum()).backward()
    ((out_ref * g).sum() + last_ref.sum()).backward()
    for name, a, b in zip(("u", "delta", "A", "B", "C", "D", "z", "delta_bias"), ours, ref):
        assert _rel(a.grad, b.grad) < (1e-3 if dtype == torch.float32 else 5e-2), name


@gpu
def test_spmamba_triton_backend_on_gpu():
    torch.manual_seed(0)
    plain = SPMamba(**tiny_spmamba_args(d_state=16)).cuda().train()
    scan_mod_models = [copy.deepcopy(plain) for _ in range(2)]
    from asteroid_spmamba.mamba import set_scan_backend

    set_scan_backend(plain, "torch")
    set_scan_backend(scan_mod_models[0], "triton")
    _compare_models(plain, scan_mod_models[0], torch.randn(2, 4000, device="cuda"), tol=1e-3)
    if cuda_kernels_available():  # and against mamba_ssm's kernels
        set_scan_backend(scan_mod_models[1], "cuda")
        with torch.no_grad():
            wav = torch.randn(1, 4000, device="cuda")
            assert _rel(scan_mod_models[0](wav), scan_mod_models[1](wav)) < 1e-3


def test_triton_backend_resolution():
    if triton_scan.interpreting():
        pytest.skip("TRITON_INTERPRET is set for the whole session")
    cpu = torch.device("cpu")
    assert scan_mod.resolve_backend("auto", cpu) in ("cpu", "torch")
    with pytest.raises(ValueError, match="CUDA tensors"):
        scan_mod.resolve_backend("triton", cpu)
    # Triton first on a GPU, whether or not mamba_ssm's kernels are installed
    # (faster inside the model)
    assert scan_mod.resolve_backend("auto", torch.device("cuda")) == (
        "triton" if triton_kernels_available() else "cuda" if cuda_kernels_available() else "torch"
    )


def test_triton_kernels_compile_for_h100():
    """The kernels compile for sm_90 (no GPU needed): layouts as intended, no register spills."""
    if triton_scan.interpreting():
        pytest.skip("TRITON_INTERPRET is set for the whole session")
    compiled = triton_scan.compile_for_target(arch=90)
    bf16 = triton_scan.compile_for_target(arch=90, bf16=True, with_z=False, with_last_grad=True)
    assert set(compiled) == set(bf16) == {"fwd", "fwd_states", "bwd_stored", "bwd_recompute"}

    def layouts(ttgir, shape):
        loop = ttgir[ttgir.index("scf.for") :]
        names = set(re.findall(rf"tensor<{shape}xf32, (#blocked\d*)>", loop))
        assert names, f"no {shape} tile in the loop"
        return [re.search(rf"^{name} = (.*)$", ttgir, re.M).group(1) for name in names]

    # forward: the loop-carried state tile (16 states x 128 channels) has the channels on the 32
    # threads of a warp, each thread holding every state of its channels (y = C.h without shuffles)
    for kernels in (compiled, bf16):
        for name in ("fwd", "fwd_states"):
            for layout in layouts(kernels[name]["ttgir"], "16x128"):
                assert "threadsPerWarp = [1, 32]" in layout, (name, layout)
        # backward with stored states: (16 states x 32 channels) tiles in one warp, so that every
        # reduction (over the states, over the channels) is made of warp shuffles, no shared memory
        for name in ("bwd_stored", "bwd_recompute"):
            for layout in layouts(kernels[name]["ttgir"], "16x32"):
                assert "warpsPerCTA = [1, 1]" in layout, (name, layout)
    cuobjdump = os.path.join(
        os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "cuobjdump"
    )
    if os.path.exists(cuobjdump):
        import subprocess
        import tempfile

        for name, result in list(compiled.items()) + [(k + " bf16", v) for k, v in bf16.items()]:
            with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
                f.write(result["cubin"])
                f.flush()
                sass = subprocess.run(
                    [cuobjdump, "-sass", f.name], capture_output=True, text=True
                ).stdout
            assert sass and "STL" not in sass, f"{name} kernel spills registers to local memory"


# --------------------------------------------------------------------------------------------
# GridNet fast paths
# --------------------------------------------------------------------------------------------


def _compare_models(plain, fast, wav, tol=1e-4):
    """Outputs and parameter gradients equal (gradients relative to the largest one)."""
    y_plain, y_fast = plain(wav), fast(wav)
    assert y_fast.dtype == y_plain.dtype
    assert _rel(y_fast, y_plain) < tol
    g = torch.randn_like(y_plain)
    (y_plain * g).sum().backward()
    (y_fast * g).sum().backward()
    scale = max(p.grad.abs().max().item() for p in plain.parameters() if p.grad is not None)
    for (name, p), q in zip(plain.named_parameters(), fast.parameters()):
        if p.grad is None:
            assert q.grad is None, name
            continue
        assert (q.grad - p.grad).abs().max().item() <= tol * scale, name


@pytest.mark.parametrize(
    "flags",
    [
        dict(unfold=True, fold=False, heads=False, attention=False),
        dict(unfold=False, fold=True, heads=False, attention=False),
        dict(unfold=False, fold=False, heads=True, attention=False),
        dict(unfold=False, fold=False, heads=False, attention=True),
        dict(),
    ],
)
@pytest.mark.parametrize(
    "config",
    [
        dict(),
        dict(emb_hs=2),
        dict(emb_ks=4, emb_hs=2),
        dict(emb_ks=3, emb_hs=2),
        dict(causal=True, attn_window=3),
        dict(causal=True, emb_ks=4, emb_hs=2),
        dict(activation="relu"),
    ],
)
def test_spmamba_fast_paths_equal_plain(flags, config):
    torch.manual_seed(0)
    plain = set_fast_paths(SPMamba(**tiny_spmamba_args(**config)).train(), False)
    fast = set_fast_paths(copy.deepcopy(plain), **flags)
    _compare_models(plain, fast, torch.randn(2, 1200))


def _saved_bytes(model, wav):
    """Bytes of the tensors autograd keeps for the backward pass of ``model(wav)``."""
    sizes = {}

    def pack(t):
        sizes[(t.data_ptr(), t.dtype, t.shape)] = t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(wav)
    return sum(sizes.values())


def test_activation_checkpointing_same_gradients_less_memory():
    torch.manual_seed(0)
    plain = SPMamba(**tiny_spmamba_args(n_layers=2)).train()  # default paths (fast)
    ckpt = set_fast_paths(copy.deepcopy(plain), checkpoint=True)
    assert ckpt.masker.checkpoint_blocks
    wav = torch.randn(2, 1200)
    _compare_models(plain, ckpt, wav)
    assert _saved_bytes(ckpt, wav) < 0.5 * _saved_bytes(plain, wav)
    set_fast_paths(ckpt)  # switched off again
    assert not ckpt.masker.checkpoint_blocks


def test_tfgridnet_fast_paths_equal_plain():
    torch.manual_seed(0)
    plain = set_fast_paths(
        TFGridNet(
            n_fft=64,
            hop_length=16,
            sample_rate=8000,
            n_layers=1,
            lstm_hidden_units=8,
            emb_dim=8,
            emb_ks=2,
            n_head=2,
            approx_qk_dim=32,
        ).train(),
        False,
    )
    fast = set_fast_paths(copy.deepcopy(plain))
    _compare_models(plain, fast, torch.randn(2, 1200))


def _block(**overrides):
    torch.manual_seed(0)
    return SPMamba(**tiny_spmamba_args(**overrides)).masker.blocks[0]


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("causal", [False, True])
def test_attention_equals_explicit_softmax(fused, causal):
    block = _block(causal=causal)
    block.fused_attention = fused
    x = torch.randn(2, 8, 13, 33)  # (batch, emb_dim, frames, freqs)
    out = block._attention(x)
    q, k, v, v_channels = block._qkv(x)
    assert q.shape[-1] % 8 != 0  # the fused path pads: the test covers it
    scores = q @ k.transpose(1, 2) / math.sqrt(q.shape[-1])
    if causal:
        scores = scores.masked_fill(~torch.ones(13, 13, dtype=torch.bool).tril(), float("-inf"))
    explicit = block._attention_out(torch.softmax(scores, dim=-1) @ v, x, v_channels)
    assert _rel(out, explicit) < 1e-5


def test_batched_heads_same_parameters():
    block = _block()
    names = {n for n, _ in block.named_parameters()}
    block.batched_heads = True
    assert {n for n, _ in block.named_parameters()} == names
    assert "attn_conv_Q_1.0.weight" in names and "attn_conv_V_0.2.gamma" in names


@gpu
def test_fused_attention_runs_without_math_backend_on_gpu():
    from torch.nn.attention import SDPBackend, sdpa_kernel

    block = _block().cuda()
    block.fused_attention = True
    x = torch.randn(1, 8, 50, 33, device="cuda")
    with sdpa_kernel(
        [SDPBackend.EFFICIENT_ATTENTION, SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION]
    ):
        out = block._attention(x)  # raises if only the math backend (a T x T matrix) could run
    block.fused_attention = False
    assert _rel(out, block._attention(x)) < 1e-4


def test_norms_compute_in_float32_for_bf16():
    norm = LayerNorm4D(8)
    x = (3 + 1e-2 * torch.randn(2, 8, 5, 7)).bfloat16()  # large mean, small spread
    out = norm(x)
    assert out.dtype == torch.bfloat16
    assert torch.allclose(out.float(), norm(x.float()), atol=2e-2)


def _si_snr(est, ref):
    est, ref = est - est.mean(-1, keepdim=True), ref - ref.mean(-1, keepdim=True)
    target = (est * ref).sum(-1, keepdim=True) / (ref * ref).sum(-1, keepdim=True) * ref
    return 10 * torch.log10(target.square().sum(-1) / (est - target).square().sum(-1))


def test_bf16_autocast_quality():
    """bf16 autocast of the masker: float32 output within 0.1 dB SI-SNR of float32 on a mixture."""
    torch.manual_seed(0)
    plain = SPMamba(**tiny_spmamba_args()).eval()
    fast = set_fast_paths(copy.deepcopy(plain), autocast="bf16")
    t = torch.arange(8000) / 8000
    sources = torch.stack(
        [
            torch.sin(2 * math.pi * 220 * t) * (1 + t),
            torch.sign(torch.sin(2 * math.pi * 3 * t)) * torch.randn(8000) * 0.3,
        ]
    )
    mixture = sources.sum(0, keepdim=True)
    with torch.no_grad():
        est32, est16 = plain(mixture)[0], fast(mixture)[0]
    assert est16.dtype == torch.float32
    assert _si_snr(est16, est32).min() > 30  # the two estimates agree to 30 dB
    assert (_si_snr(est16, sources) - _si_snr(est32, sources)).abs().max() < 0.1
    with pytest.raises(ValueError, match="autocast"):
        set_fast_paths(plain, autocast="int8")


def test_set_fast_paths_needs_gridnet():
    with pytest.raises(ValueError, match="no GridNet blocks"):
        set_fast_paths(torch.nn.Linear(2, 2))


def _compiler_works() -> bool:
    return shutil.which(os.environ.get("CXX", "g++")) is not None or shutil.which("c++") is not None


@pytest.mark.slow
@pytest.mark.skipif(not _compiler_works(), reason="torch.compile on CPU needs a C++ compiler")
def test_compiled_blocks_equal_plain():
    torch.manual_seed(0)
    plain = SPMamba(**tiny_spmamba_args()).eval()
    fast = set_fast_paths(copy.deepcopy(plain), compile=True)
    assert all(isinstance(b, GridNetBlock) and b.compiled for b in fast.masker.blocks)
    wav = torch.randn(1, 1200)
    with torch.no_grad():
        assert _rel(fast(wav), plain(wav)) < 1e-4
    set_fast_paths(fast, compile=False)
    assert not fast.masker.blocks[0].compiled and fast.masker.blocks[0]._compiled_call_impl is None
