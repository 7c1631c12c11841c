"""Shipped models (asteroid_spmamba.pretrained): listed, loaded offline by
name, card and weights."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import tiny_spmamba_args

from asteroid_spmamba import SPMamba, commands, list_pretrained, load_model, pretrained

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def shipped(tmp_path, monkeypatch):
    """A tiny model shipped into a temporary package folder."""
    monkeypatch.setattr(pretrained, "HERE", tmp_path / "pretrained")
    (tmp_path / "pretrained").mkdir()
    torch.manual_seed(0)
    model = SPMamba(**tiny_spmamba_args()).eval()
    infos = {
        "n_parameters": sum(p.numel() for p in model.parameters()),
        "training_data": "a test corpus",
        "scores": {"real_reverb_si_snr_i": 1.5},
    }
    pretrained.save_shipped(
        model, "tiny-test", infos, datasets="a test corpus", metrics=infos["scores"]
    )
    return model


def test_listed_and_loaded_by_name_offline(shipped, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    (entry,) = [e for e in list_pretrained() if not e.downloads]
    assert entry.name == "tiny-test" and entry.architecture == "SPMamba"
    assert {e.name for e in list_pretrained() if e.downloads} >= {
        "spmamba-libri2mix",
        "spmamba-echo2mix",
    }
    assert entry.scores == {"real_reverb_si_snr_i": 1.5} and entry.training_data == "a test corpus"
    loaded = SPMamba.from_pretrained("tiny-test")
    assert all(
        p.dtype == torch.float32 for p in loaded.parameters()
    )  # float16 on disk, float32 to run
    for (name, a), b in zip(shipped.state_dict().items(), loaded.state_dict().values()):
        if a.is_floating_point():
            torch.testing.assert_close(
                b, a.half().float(), rtol=0, atol=0, msg=name
            )  # exactly float16-rounded
    x = torch.randn(1, 4000)
    rounded = SPMamba(**shipped.get_model_args()).eval()
    rounded.load_state_dict(
        {
            k: v.half().float() if v.is_floating_point() else v
            for k, v in shipped.state_dict().items()
        }
    )
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), rounded(x), rtol=0, atol=0)
    assert type(load_model("tiny-test")) is SPMamba
    assert not (
        tmp_path / "pretrained" / "tiny-test" / "pytorch_model.bin"
    ).exists()  # not twice in the package
    weights = tmp_path / "pretrained" / "tiny-test" / "model.safetensors"
    umask = os.umask(0)
    os.umask(umask)
    assert (
        weights.stat().st_mode & 0o777 == 0o666 & ~umask
    )  # like any other file (safetensors makes 0600)
    assert (
        weights.stat().st_size < 2 * sum(p.numel() for p in shipped.parameters()) + 20000
    )  # 2 bytes each
    card = (tmp_path / "pretrained" / "tiny-test" / "README.md").read_text()
    assert "a test corpus" in card and "1.5" in card


def test_separate_command_takes_a_name(shipped, tmp_path):
    wav = tmp_path / "mix.wav"
    sf.write(wav, np.random.default_rng(0).standard_normal(4000).astype(np.float32) * 0.1, 8000)
    assert (
        commands.main(["separate", "tiny-test", str(wav), "-o", str(tmp_path / "out"), "-q"]) == 0
    )
    assert sorted(p.name for p in (tmp_path / "out").glob("*.wav")) == [
        "mix_spk1.wav",
        "mix_spk2.wav",
    ]


def test_a_local_folder_of_that_name_wins_and_unknown_names_explain(shipped, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    other = SPMamba(**{**tiny_spmamba_args(), "n_layers": 2})
    other.save_pretrained(tmp_path / "tiny-test")
    assert SPMamba.from_pretrained("tiny-test").get_model_args()["n_layers"] == 2
    with pytest.raises(FileNotFoundError, match="neither"):
        SPMamba.from_pretrained("no-such-model/x/y")


@pytest.mark.parametrize(
    "entry", [e for e in list_pretrained() if not e.downloads], ids=lambda e: e.name
)
def test_every_shipped_model_loads_and_states_its_scores(entry):
    folder = pretrained.pretrained_folder(entry.name)
    config = json.loads((folder / "config.json").read_text())
    assert config["infos"]["scores"] and config["infos"]["training_data"]
    card = (folder / "README.md").read_text()
    for key, value in config["infos"]["scores"].items():
        assert f"{value:.2f}" in card or str(value) in card, key
    model = load_model(entry.name)
    assert sum(p.numel() for p in model.parameters()) == config["infos"]["n_parameters"]
    with torch.no_grad():
        out = model(torch.randn(1, int(model.sample_rate)))
    assert out.shape == (1, 2, int(model.sample_rate)) and torch.isfinite(out).all()


def test_the_bundled_real_recording_is_the_dev_set_mixture_and_the_demo_scores_it(tmp_path):
    """The bundled FLACs decode to the very WAV files of egs/realdev's reverb/011 (their SHA-256 in
    dev_set.sha256), and `demo` reports the SI-SNRi of the estimates it writes (recomputed here)."""
    import hashlib
    import io
    import re

    import soundfile as sf

    from asteroid_spmamba.demo import REAL_MIXTURE, demo

    listed = dict(
        reversed(line.split())
        for line in (REPO / "egs/realdev/local/dev_set.sha256").read_text().splitlines()
    )
    for name in ("mix", "spk1_reverb", "spk2_reverb"):
        pcm, rate = sf.read(REAL_MIXTURE / f"{name}.flac", dtype="int16")
        wav = io.BytesIO()
        sf.write(wav, pcm, rate, subtype="PCM_16", format="WAV")
        assert (
            hashlib.sha256(wav.getvalue()).hexdigest()
            == listed[f"reverb/011_arctic_axb_arctic_aew/{name}.wav"]
        )
    scores = demo(out_dir=tmp_path)
    refs = [sf.read(REAL_MIXTURE / f"spk{k}_reverb.flac", dtype="float64")[0] for k in (1, 2)]
    mix = sf.read(tmp_path / "mixture.wav", dtype="float64")[0]

    def si_snr(est, ref):
        est, ref = est - est.mean(), ref - ref.mean()
        proj = (est @ ref) / (ref @ ref) * ref
        return 10 * np.log10((proj @ proj) / ((est - proj) @ (est - proj)))

    ests = [sf.read(tmp_path / f"spk{k}.wav", dtype="float64")[0] for k in (1, 2)]
    gain = np.mean([si_snr(e, r) - si_snr(mix, r) for e, r in zip(ests, refs)])
    assert scores["si_snr_i"] == pytest.approx(gain, abs=0.01)  # the written wavs are float32
    assert scores["si_snr_i"] > 5.0  # a trained separator, not a copy of the mixture (about 0 dB)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "asteroid_spmamba",
            "demo",
            "-o",
            str(tmp_path / "cli"),
            "--device",
            "cpu",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    printed = float(re.search(r"SI-SNRi (-?[\d.]+) dB", out.stdout).group(1))
    assert printed == pytest.approx(scores["si_snr_i"], abs=0.005)
    # README's figures are the demo's (they went stale once when a new model shipped)
    readme = (REPO / "README.md").read_text()
    stated = re.findall(r"SI-SNRi ([\d.]+) dB \(SDRi ([\d.]+) dB\)", readme)[0]
    assert float(stated[0]) == pytest.approx(scores["si_snr_i"], abs=0.02)
    assert float(stated[1]) == pytest.approx(scores["sdr_i"], abs=0.02)
    assert f"({stated[0]} dB SI-SNRi)" in readme
