"""Loading and saving pretrained models: local folders, the Hub cache
(offline), Asteroid's format."""

import json
import os
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from asteroid.models import register_model
from asteroid.models.base_models import BaseModel
from huggingface_hub import constants

from asteroid_spmamba import hub, loading
from asteroid_spmamba.hub import AsteroidHubMixin
from asteroid_spmamba.models import SPMamba

COMMIT = "0123456789abcdef0123456789abcdef01234567"
TINY = dict(
    n_fft=64,
    hop_length=16,
    n_layers=1,
    emb_dim=8,
    emb_ks=2,
    n_head=2,
    d_state=4,
    expand=1,
    approx_qk_dim=16,
    sample_rate=8000,
)


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """No network, and an empty default Hub cache."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "default-cache"))


def tiny(seed: int = 0, **overrides) -> SPMamba:
    torch.manual_seed(seed)
    return SPMamba(**{**TINY, **overrides}).eval()


@pytest.fixture(scope="module")
def model():
    return tiny()


@pytest.fixture(scope="module")
def mixture():
    return torch.randn(1, 1200, generator=torch.Generator().manual_seed(1))


def outputs(model, wav):
    with torch.no_grad():
        return model(wav)


def add_to_cache(cache: Path, repo_id: str, files: dict, commit: str = COMMIT) -> Path:
    """Lay files out as huggingface_hub's cache does (blobs, snapshots/<commit>, refs/main)."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (repo / "blobs").mkdir(exist_ok=True)
    for name, source in files.items():
        blob = repo / "blobs" / f"{name}-blob"
        shutil.copyfile(source, blob)
        os.symlink(os.path.relpath(blob, snapshot), snapshot / name)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    return snapshot


class HubTestNet(BaseModel):
    """A second registered architecture (time-domain gain), for class-dispatch tests."""

    def __init__(self, n_src: int = 2, sample_rate: float = 8000):
        super().__init__(sample_rate=sample_rate)
        self.n_src = n_src
        self.gain = torch.nn.Parameter(torch.ones(n_src))

    def forward(self, wav):
        return wav.reshape(-1, 1, wav.shape[-1]) * self.gain[:, None]

    def get_model_args(self):
        return {"n_src": self.n_src, "sample_rate": self.sample_rate}


class HubMixinNet(AsteroidHubMixin, HubTestNet):
    """HubTestNet with the mixin, as the package's models get it."""


for _cls in (HubTestNet, HubMixinNet):
    try:
        register_model(_cls)
    except ValueError:  # already registered (module imported twice)
        pass


# ------------------------------------------------------------------------------------------------
def test_round_trip_local_folder(model, mixture, tmp_path):
    folder = hub.save_pretrained(
        model,
        tmp_path / "tiny",
        datasets="Libri2Mix",
        metrics={"si_sdr": 14.25, "sdr": 15.5},
        repo_id="org/tiny",
    )
    assert sorted(os.listdir(folder)) == [
        "README.md",
        "config.json",
        "model.safetensors",
        "pytorch_model.bin",
    ]
    config = json.loads((folder / "config.json").read_text())
    assert config["architecture"] == "SPMamba"
    assert config["model_args"] == model.get_model_args()
    assert config["sample_rate"] == 8000 and config["asteroid_spmamba_version"]
    card = (folder / "README.md").read_text()
    front = card.split("---")[1]
    for line in (
        "library_name: asteroid",
        "- asteroid",
        "- audio-to-audio",
        "- speech-separation",
        "- Libri2Mix",
        "pipeline_tag: audio-to-audio",
    ):
        assert line in front, line
    assert "| si_sdr | 14.25 |" in card and "| sdr | 15.50 |" in card
    assert 'SPMamba.from_pretrained("org/tiny")' in card
    # The front matter is YAML with the results as a model-index; the card
    # names paper, licence, steps.
    meta = yaml.safe_load(front)
    (result,) = meta["model-index"][0]["results"]
    assert {m["type"]: m["value"] for m in result["metrics"]} == {"si_sdr": 14.25, "sdr": 15.5}
    assert meta["license"] == "mit" and "arxiv:2404.02063" in meta["tags"]
    assert "arXiv:2404.02063" in card and "- steps: not recorded" in card

    loaded = loading.from_pretrained(SPMamba, folder)
    assert isinstance(loaded, SPMamba) and not loaded.training
    assert torch.equal(outputs(loaded, mixture), outputs(model, mixture))
    # A lone model.safetensors carries its configuration in its header.
    lone = tmp_path / "lone.safetensors"
    shutil.copyfile(folder / "model.safetensors", lone)
    assert torch.equal(outputs(loading.load_model(lone), mixture), outputs(model, mixture))
    # Keyword arguments override the saved configuration.
    assert (
        loading.from_pretrained(SPMamba, folder, scan_backend="torch").get_model_args()
        == model.get_model_args()
    )


def test_round_trip_hub_id_from_cache(model, mixture, tmp_path):
    folder = hub.save_pretrained(model, tmp_path / "saved")
    cache = tmp_path / "cache"
    add_to_cache(
        cache,
        "org/tiny",
        {n: folder / n for n in ("config.json", "model.safetensors", "README.md")},
    )
    reference = outputs(model, mixture)
    for kwargs in ({}, {"revision": COMMIT}):
        loaded = loading.from_pretrained(SPMamba, "org/tiny", cache_dir=cache, **kwargs)
        assert torch.equal(outputs(loaded, mixture), reference)
    assert torch.equal(
        outputs(loading.load_model(f"org/tiny@{COMMIT}", cache_dir=cache), mixture), reference
    )
    assert torch.equal(
        outputs(loading.load_model("https://huggingface.co/org/tiny", cache_dir=cache), mixture),
        reference,
    )
    # The default cache (HF_HUB_CACHE) is where huggingface_hub looks without cache_dir.
    add_to_cache(
        Path(constants.HF_HUB_CACHE),
        "org/tiny",
        {n: folder / n for n in ("config.json", "model.safetensors")},
    )
    assert torch.equal(outputs(loading.from_pretrained(SPMamba, "org/tiny"), mixture), reference)


def test_asteroid_legacy_format(model, mixture, tmp_path):
    reference = outputs(model, mixture)
    path = tmp_path / "best_model.pth"
    torch.save(BaseModel.serialize(model), path)  # Asteroid's own serialize (stores a TorchVersion)
    assert torch.equal(outputs(loading.from_pretrained(SPMamba, path), mixture), reference)
    assert torch.equal(
        outputs(loading.from_pretrained(SPMamba, model.serialize()), mixture), reference
    )
    # A folder holding only best_model.pth, and a Hub repository holding pytorch_model.bin.
    (tmp_path / "recipe").mkdir()
    shutil.copyfile(path, tmp_path / "recipe" / "best_model.pth")
    assert torch.equal(outputs(loading.load_model(tmp_path / "recipe"), mixture), reference)
    add_to_cache(tmp_path / "cache", "asteroid-team/legacy", {"pytorch_model.bin": path})
    loaded = loading.from_pretrained(SPMamba, "asteroid-team/legacy", cache_dir=tmp_path / "cache")
    assert torch.equal(outputs(loaded, mixture), reference)


EXECUTED = []


class _Payload:
    def __reduce__(self):
        return (EXECUTED.append, ("code ran",))


def test_pickled_code_is_never_run(model, tmp_path):
    conf = model.serialize()
    conf["infos"] = {"extra": _Payload()}
    path = tmp_path / "unsafe.pth"
    torch.save(conf, path)
    with pytest.raises(ValueError, match="pickled Python objects"):
        loading.load_model(path)
    assert EXECUTED == []


def test_corrupted_files(model, tmp_path):
    folder = hub.save_pretrained(model, tmp_path / "m")
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])  # truncated download
    with pytest.raises(ValueError, match="not a valid safetensors file.*force_download=True"):
        loading.from_pretrained(SPMamba, folder)
    weights.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(ValueError, match="not a valid safetensors file"):
        loading.from_pretrained(SPMamba, folder)
    broken = tmp_path / "broken.pth"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ValueError, match="broken.pth is not a readable PyTorch file"):
        loading.load_model(broken)
    (folder / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="config.json .* not readable JSON"):
        loading.from_pretrained(SPMamba, folder)


def test_config_weights_mismatch(tmp_path):
    folder = hub.save_pretrained(tiny(n_layers=2), tmp_path / "two")
    config = json.loads((folder / "config.json").read_text())
    config["model_args"]["n_layers"] = 1
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"unexpected keys \(\d+\): masker\.blocks\.1\."):
        loading.from_pretrained(SPMamba, folder)
    config["model_args"].update(n_layers=3)
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"missing keys \(\d+\): masker\.blocks\.2\."):
        loading.from_pretrained(SPMamba, folder)
    config["model_args"].update(n_layers=2, emb_dim=12)
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(
        ValueError, match=r"shape mismatches \(\d+\): .*: file \(.*8.*\) vs model \(.*12.*\)"
    ):
        loading.from_pretrained(SPMamba, folder)


def test_missing_repo_and_files_offline(model, tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        loading.from_pretrained(SPMamba, "org/absent", cache_dir=tmp_path / "cache")
    message = str(err.value)
    for part in (
        "'org/absent'",
        "config.json",
        "model.safetensors",
        "pytorch_model.bin",
        "HF_HUB_OFFLINE",
    ):
        assert part in message, part
    with pytest.raises(FileNotFoundError, match="neither an existing local file"):
        loading.load_model(tmp_path / "nowhere.pth")
    folder = hub.save_pretrained(model, tmp_path / "m")
    (folder / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="no model.safetensors"):
        loading.load_model(folder)
    add_to_cache(tmp_path / "cache", "org/half", {"config.json": folder / "config.json"})
    with pytest.raises(
        FileNotFoundError, match="'org/half'.*has config.json but model.safetensors"
    ):
        loading.load_model("org/half", cache_dir=tmp_path / "cache")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="looked for config.json"):
        loading.load_model(tmp_path / "empty")


def test_architecture_decides_the_class(model, mixture, tmp_path):
    spmamba_dir = hub.save_pretrained(model, tmp_path / "spmamba")
    other = HubMixinNet(n_src=3)
    other_dir = (
        other.save_pretrained(tmp_path / "other") or tmp_path / "other"
    )  # the mixin's method
    assert json.loads((other_dir / "config.json").read_text())["architecture"] == "HubMixinNet"
    with pytest.raises(
        ValueError,
        match="contains a model of class SPMamba; HubMixinNet.from_pretrained loads only "
        "HubMixinNet",
    ):
        HubMixinNet.from_pretrained(spmamba_dir)
    with pytest.raises(ValueError, match="contains a model of class HubMixinNet; SPMamba"):
        loading.from_pretrained(SPMamba, other_dir)
    # Base classes accept any architecture.
    assert type(AsteroidHubMixin.from_pretrained(spmamba_dir)) is SPMamba
    assert type(loading.from_pretrained(BaseModel, other_dir)) is HubMixinNet
    loaded = HubMixinNet.from_pretrained(other_dir)
    assert loaded.n_src == 3 and torch.equal(loaded.gain, other.gain)
    # An unregistered architecture is named in the error.
    config = json.loads((other_dir / "config.json").read_text())
    config["architecture"] = "NoSuchNet"
    (other_dir / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="'NoSuchNet', which is not registered"):
        loading.load_model(other_dir)


@pytest.mark.skipif(
    not issubclass(SPMamba, AsteroidHubMixin), reason="models/base.py does not use AsteroidHubMixin"
)
def test_spmamba_classmethods(model, mixture, tmp_path):
    model.save_pretrained(tmp_path / "m", model_card_kwargs={"datasets": ["WSJ0-2mix"]})
    loaded = SPMamba.from_pretrained(tmp_path / "m")
    assert torch.equal(outputs(loaded, mixture), outputs(model, mixture))
    assert "- WSJ0-2mix" in (tmp_path / "m" / "README.md").read_text()


def test_save_is_atomic(model, mixture, tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise RuntimeError("disk full")

    # A failing first save leaves nothing behind.
    monkeypatch.setattr(hub, "make_model_card", fail)
    with pytest.raises(RuntimeError, match="disk full"):
        hub.save_pretrained(model, tmp_path / "new")
    assert os.listdir(tmp_path) == []
    monkeypatch.undo()
    # A failing re-save keeps the previous model whole.
    folder = hub.save_pretrained(model, tmp_path / "m")
    (folder / "notes.txt").write_text("kept")
    before = {n: (folder / n).read_bytes() for n in os.listdir(folder)}
    monkeypatch.setattr(hub, "make_model_card", fail)
    with pytest.raises(RuntimeError):
        hub.save_pretrained(tiny(seed=1), folder)
    monkeypatch.undo()
    assert {n: (folder / n).read_bytes() for n in os.listdir(folder)} == before
    assert sorted(os.listdir(tmp_path)) == ["m"]  # no temporary folder left
    assert torch.equal(outputs(loading.load_model(folder), mixture), outputs(model, mixture))
    # A successful re-save replaces weights and config, keeps other files and an edited card.
    (folder / "README.md").write_text("hand-written card")
    other = tiny(seed=1)
    hub.save_pretrained(other, folder)
    assert (folder / "notes.txt").read_text() == "kept"
    assert (folder / "README.md").read_text() == "hand-written card"
    assert torch.equal(outputs(loading.load_model(folder), mixture), outputs(other, mixture))
    hub.save_pretrained(other, folder, overwrite_card=True)
    assert (folder / "README.md").read_text().startswith("---\n")


def test_push_to_hub_uploads_one_folder(model, tmp_path, monkeypatch):
    calls = {}

    class FakeApi:
        def __init__(self, token=None):
            calls["token"] = token

        def create_repo(self, repo_id, private=None, exist_ok=False):
            calls["create"] = (repo_id, private, exist_ok)
            return type("RepoUrl", (), {"repo_id": repo_id})()

        def upload_folder(
            self, repo_id, folder_path, repo_type, commit_message, revision, create_pr
        ):
            folder = Path(folder_path)
            calls["files"] = sorted(os.listdir(folder))
            calls["card"] = (folder / "README.md").read_text()
            return type(
                "CommitInfo", (), {"commit_url": f"https://huggingface.co/{repo_id}/commit/abc"}
            )()

    monkeypatch.setattr(hub, "HfApi", FakeApi)
    url = hub.push_to_hub(model, "org/tiny", token="hf_x", private=True, datasets="Libri2Mix")
    assert url.endswith("org/tiny/commit/abc")
    assert calls["create"] == ("org/tiny", True, True) and calls["token"] == "hf_x"
    assert calls["files"] == ["README.md", "config.json", "model.safetensors", "pytorch_model.bin"]
    assert 'from_pretrained("org/tiny")' in calls["card"] and "- Libri2Mix" in calls["card"]
