"""Asteroid's own loader and ``asteroid-infer`` read what this package writes,
and ours reads Asteroid's.

Each check compares outputs with the model that was saved: a loader that builds the wrong class or
drops weights fails.
"""

import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from asteroid.models import BaseModel, ConvTasNet
from asteroid.utils import hub_utils
from conftest import tiny_spmamba_args
from huggingface_hub import constants
from test_hub import add_to_cache

from asteroid_spmamba import hub, loading
from asteroid_spmamba.models import SPMamba
from asteroid_spmamba.training.fit import export_best_model

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return SPMamba(**tiny_spmamba_args()).eval()


@pytest.fixture(scope="module")
def mixture():
    return 0.1 * torch.randn(1, 1200, generator=torch.Generator().manual_seed(1))


def outputs(model, wav):
    with torch.no_grad():
        return model.eval()(wav)


def best_model(model, path: Path) -> Path:
    """best_model.pth as the training engine writes it."""
    return export_best_model(
        types.SimpleNamespace(model=model),
        None,
        path,
        {"model": {"name": "SPMamba"}},
        {"global_step": 10},
    )


def test_asteroid_loads_a_saved_folder_and_we_still_read_safetensors(model, mixture, tmp_path):
    folder = hub.save_pretrained(model, tmp_path / "saved")
    loaded = BaseModel.from_pretrained(str(folder))  # Asteroid's own from_pretrained
    assert type(loaded) is SPMamba and torch.equal(
        outputs(loaded, mixture), outputs(model, mixture)
    )
    umask = os.umask(0)
    os.umask(umask)
    assert {(folder / n).stat().st_mode & 0o777 for n in os.listdir(folder)} == {0o666 & ~umask}
    with pytest.raises(ValueError, match="reads PyTorch files only.*pass the folder"):
        BaseModel.from_pretrained(str(folder / "model.safetensors"))
    # Our loader takes model.safetensors, never the .bin: a damaged .bin does not matter to it.
    (folder / "pytorch_model.bin").write_bytes(b"damaged")
    assert torch.equal(outputs(loading.load_model(folder), mixture), outputs(model, mixture))


def test_asteroid_loads_a_hub_repository(model, mixture, tmp_path, monkeypatch):
    folder = hub.save_pretrained(model, tmp_path / "saved")
    monkeypatch.setattr(
        constants, "HF_HUB_OFFLINE", True
    )  # Asteroid's hf_hub_download reads its cache
    monkeypatch.setattr(hub_utils, "CACHE_DIR", str(tmp_path / "asteroid-cache"))
    add_to_cache(
        tmp_path / "asteroid-cache", "org/tiny", {n: folder / n for n in os.listdir(folder)}
    )
    loaded = BaseModel.from_pretrained("org/tiny")
    assert type(loaded) is SPMamba and torch.equal(
        outputs(loaded, mixture), outputs(model, mixture)
    )


def test_asteroid_loads_the_engines_best_model(model, mixture, tmp_path):
    path = best_model(model, tmp_path / "exp" / "best_model.pth")
    for source in (path, path.parent):  # the file, and the experiment folder
        loaded = BaseModel.from_pretrained(str(source))
        assert type(loaded) is SPMamba and torch.equal(
            outputs(loaded, mixture), outputs(model, mixture)
        )


def test_we_load_asteroids_own_hub_package(mixture, tmp_path, monkeypatch):
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    torch.manual_seed(0)
    convtasnet = ConvTasNet(
        n_src=2,
        n_blocks=2,
        n_repeats=1,
        n_filters=16,
        bn_chan=16,
        hid_chan=16,
        skip_chan=16,
        sample_rate=8000,
    ).eval()
    torch.save(convtasnet.serialize(), tmp_path / "pytorch_model.bin")  # Asteroid's own serialize()
    add_to_cache(
        tmp_path / "cache",
        "asteroid-team/tiny-convtasnet",
        {"pytorch_model.bin": tmp_path / "pytorch_model.bin"},
    )
    loaded = loading.load_model("asteroid-team/tiny-convtasnet", cache_dir=tmp_path / "cache")
    assert type(loaded) is ConvTasNet and torch.equal(
        outputs(loaded, mixture), outputs(convtasnet, mixture)
    )


def _run(args, tmp_path):
    env = dict(
        os.environ,
        PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        HF_HUB_OFFLINE="1",
    )
    return subprocess.run(
        [sys.executable, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )


def test_asteroid_infer_separates_with_our_best_model(model, tmp_path):
    path = best_model(model, tmp_path / "exp" / "best_model.pth")
    wav = 0.1 * np.random.default_rng(0).standard_normal(1200).astype(np.float32)
    sf.write(tmp_path / "mix.wav", wav, 8000, subtype="FLOAT")
    (tmp_path / "out").mkdir()  # asteroid-infer writes into an existing folder only
    done = _run(
        [
            "-m",
            "asteroid_spmamba.commands.infer",
            str(path),
            "--files",
            str(tmp_path / "mix.wav"),
            "-o",
            str(tmp_path / "out"),
        ],
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    # our models' files: each source at its level in the mixture (not Asteroid's joint L1 rescaling)
    from asteroid_spmamba.inference import separate_file

    expected, _ = separate_file(tmp_path / "mix.wav", model)
    for k in range(2):
        written, rate = sf.read(tmp_path / "out" / f"mix_est{k + 1}.wav", dtype="float32")
        assert rate == 8000
        np.testing.assert_allclose(written, expected[k], atol=1e-6)
    # Plain asteroid-infer, which never imports asteroid_spmamba, builds
    # Asteroid's BaseModel instead.
    plain = _run(
        [
            "-c",
            "from asteroid.scripts.asteroid_cli import infer; infer()",
            str(path),
            "--files",
            str(tmp_path / "mix.wav"),
            "-o",
            str(tmp_path / "plain"),
        ],
        tmp_path,
    )
    assert plain.returncode != 0 and "unexpected keyword argument 'n_src'" in plain.stderr
