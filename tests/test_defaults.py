"""What a user gets without a flag: fast paths on however a model is built or loaded, the inference
precision of the entry points, and the device choice of the commands."""

import copy
import os

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import tiny_spmamba_args

from asteroid_spmamba import SPMamba, convert_original
from asteroid_spmamba.commands import main as cli_main
from asteroid_spmamba.devices import resolve_device
from asteroid_spmamba.inference import separate_array, separate_file
from asteroid_spmamba.loading import list_pretrained
from asteroid_spmamba.masknn.gridnet import GridNetBlock, set_fast_paths
from asteroid_spmamba.models import TFGridNet
from asteroid_spmamba.models.base import inference_precision
from asteroid_spmamba.training import build_model

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "original_spmamba_small.pt")
FAST_FLAGS = ("fast_unfold", "fast_fold", "batched_heads", "fused_attention")


def _fast(model) -> bool:
    blocks = [m for m in model.modules() if isinstance(m, GridNetBlock)]
    assert blocks, "no GridNet blocks"
    return all(getattr(b, flag) for b in blocks for flag in FAST_FLAGS)


def _plain(model) -> bool:
    return not any(
        getattr(b, flag)
        for b in model.modules()
        if isinstance(b, GridNetBlock)
        for flag in FAST_FLAGS
    )


def test_fast_paths_on_however_the_model_is_built(tmp_path):
    tiny = tiny_spmamba_args()
    model = SPMamba(**tiny)
    assert _fast(model)
    assert _fast(SPMamba.from_preset("causal-16k"))
    assert _fast(
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
        )
    )
    assert _fast(build_model({"name": "SPMamba", "args": tiny}))
    model.save_pretrained(tmp_path / "saved")
    assert _fast(SPMamba.from_pretrained(str(tmp_path / "saved")))
    torch.save(model.serialize(), tmp_path / "best_model.pth")
    assert _fast(SPMamba.from_pretrained(str(tmp_path / "best_model.pth")))
    assert _fast(
        convert_original(torch.load(FIXTURE, weights_only=True)["serialized"], sample_rate=8000)
    )
    shipped = list_pretrained()[0].name
    assert _fast(SPMamba.from_pretrained(shipped))


def test_opt_out_survives_copies_and_loading():
    model = set_fast_paths(SPMamba(**tiny_spmamba_args()), False)
    assert _plain(model)
    assert _plain(copy.deepcopy(model))
    model.load_state_dict(
        SPMamba(**tiny_spmamba_args()).state_dict()
    )  # weights only: the paths stay
    assert _plain(model)
    assert _fast(set_fast_paths(model))


def test_default_equals_plain_values_and_gradients():
    torch.manual_seed(0)
    default = SPMamba(**tiny_spmamba_args(n_layers=2)).train()
    plain = set_fast_paths(copy.deepcopy(default), False)
    wav = torch.randn(2, 1600)
    out_d, out_p = default(wav), plain(wav)
    torch.testing.assert_close(out_d, out_p, rtol=1e-4, atol=1e-5)
    g = torch.randn_like(out_d)
    (out_d * g).sum().backward()
    (out_p * g).sum().backward()
    for (name, a), b in zip(default.named_parameters(), plain.parameters()):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-3, atol=1e-5, msg=name)


def _si_snr(est, ref):
    est, ref = est - est.mean(-1, keepdims=True), ref - ref.mean(-1, keepdims=True)
    proj = (est * ref).sum(-1, keepdims=True) / (ref * ref).sum(-1, keepdims=True) * ref
    return 10 * np.log10((proj**2).sum(-1) / ((est - proj) ** 2).sum(-1))


def test_inference_precision_rules():
    model = SPMamba(**tiny_spmamba_args())
    cpu = torch.device("cpu")
    with inference_precision(model, cpu, "auto"):  # the CPU stays float32
        assert not torch.is_autocast_enabled("cpu")
    with inference_precision(model, cpu, "bf16"):
        assert (
            torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
        )
    with inference_precision(
        torch.nn.Linear(2, 2), "cuda", "auto"
    ):  # not one of ours: float32 everywhere
        assert not torch.is_autocast_enabled("cuda")
    with pytest.raises(ValueError, match="precision must be one of"):
        inference_precision(model, cpu, "fp16")


@pytest.mark.parametrize(
    "name, bf16",
    [("spmamba", True), ("bsrnn", True), ("afrcnn", True), ("tfgridnet", False), ("tdanet", False)],
)
def test_auto_precision_on_a_gpu_runs_bf16_only_where_it_agrees_with_float32(
    monkeypatch, name, bf16
):
    """On a bf16-capable GPU, "auto" is bf16 autocast for the models whose bf16 output agrees with
    float32 to 35 dB (tests/test_gpu.py measures it) and float32 for TF-GridNet and TDANet."""
    import contextlib

    from asteroid_spmamba import zoo

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    model = zoo.build(name, "tiny")
    context = inference_precision(model, "cuda", "auto")
    assert model.bf16_inference is bf16
    assert isinstance(context, torch.autocast if bf16 else contextlib.nullcontext)
    if bf16:
        assert context.fast_dtype == torch.bfloat16


def test_entry_points_take_a_precision():
    torch.manual_seed(
        4
    )  # an untrained model whose two outputs both stand about 9 dB under the mixture
    model = SPMamba(**tiny_spmamba_args()).eval()
    from asteroid_spmamba.levels import match_mixture, remove_dc

    wav = torch.randn(4000).numpy()
    with torch.no_grad():
        mix = remove_dc(torch.from_numpy(wav)[None])
        ref = match_mixture(model(mix), mix)[0][0].numpy()  # what users get: fitted to the mixture
    np.testing.assert_allclose(
        separate_array(wav, 8000, model), ref, rtol=1e-4, atol=1e-5
    )  # auto on CPU = fp32
    np.testing.assert_allclose(
        separate_array(wav, 8000, model, precision="fp32"), ref, rtol=1e-4, atol=1e-5
    )
    bf16 = separate_array(wav, 8000, model, precision="bf16")
    assert bf16.dtype == np.float32 and not np.allclose(bf16, ref, atol=1e-6)  # autocast did run
    assert np.abs(ref).sum(-1).min() > 0  # both present: a silent output would hide the precision
    assert _si_snr(bf16, ref).min() > 20
    via_asteroid = model.separate(
        torch.from_numpy(wav)[None], precision="bf16"
    )  # Asteroid's separate -> forward_wav
    assert via_asteroid.dtype == torch.float32
    np.testing.assert_allclose(via_asteroid[0].numpy(), bf16, rtol=1e-3, atol=1e-4)
    with pytest.raises(ValueError, match="precision must be one of"):
        separate_array(wav, 8000, model, precision="half")


def test_cli_device_and_precision(tmp_path, capsys):
    model = SPMamba(**tiny_spmamba_args())
    model.save_pretrained(tmp_path / "m")
    sf.write(
        tmp_path / "mix.wav",
        np.random.default_rng(0).standard_normal(4000).astype(np.float32) * 0.1,
        8000,
    )
    assert resolve_device("auto") == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="not a device"):
        resolve_device("tpu:banana")
    if not torch.cuda.is_available():
        assert (
            cli_main(
                [
                    "separate",
                    str(tmp_path / "m"),
                    str(tmp_path / "mix.wav"),
                    "--device",
                    "cuda",
                    "-q",
                ]
            )
            == 2
        )
        assert "CUDA is not available" in capsys.readouterr().err
    assert (
        cli_main(
            [
                "separate",
                str(tmp_path / "m"),
                str(tmp_path / "mix.wav"),
                "--precision",
                "fp32",
                "-q",
                "-o",
                str(tmp_path / "out"),
            ]
        )
        == 0
    )
    est, rate = separate_file(
        tmp_path / "mix.wav", str(tmp_path / "m"), chunk_seconds=8.0, precision="fp32"
    )
    written = sf.read(tmp_path / "out" / "mix_spk1.wav", dtype="float32")[0]
    np.testing.assert_allclose(written, est[0], rtol=1e-5, atol=1e-6)
