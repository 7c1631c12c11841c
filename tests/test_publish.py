"""``asteroid-spmamba publish``: the card carries what a tiny experiment folder holds;
--push uploads that folder."""

import json
import os
import types
from pathlib import Path

import pytest
import torch
import yaml
from conftest import tiny_spmamba_args

from asteroid_spmamba import commands, hub, load_model
from asteroid_spmamba.models import SPMamba
from asteroid_spmamba.training.fit import export_best_model

SCORES = {
    "reverb": {"si_snr_i": 4.0358, "sdr_i": 4.7614, "si_snr": 4.0081, "sdr": 4.8247},
    "anechoic": {"si_snr_i": 4.848, "sdr_i": 5.524, "si_snr": 4.857, "sdr": 5.612},
}


@pytest.fixture
def experiment(tmp_path):
    """An experiment folder as the engine leaves it: conf.yml, train_summary.json,
    best_model.pth, eval_*/."""
    torch.manual_seed(0)
    model = SPMamba(**tiny_spmamba_args()).eval()
    exp = tmp_path / "exp_tiny"
    conf = {
        "model": {"name": "SPMamba", "args": tiny_spmamba_args()},
        "data": {"train_dir": "/data/corpus/train", "segment": 3.0, "dynamic_mixing": True},
        "training": {"batch_size": 8, "precision": "bf16-mixed"},
    }
    export_best_model(types.SimpleNamespace(model=model), None, exp / "best_model.pth", conf)
    (exp / "conf.yml").write_text(yaml.safe_dump(conf))
    (exp / "train_summary.json").write_text(
        json.dumps(
            {
                "model": "SPMamba",
                "global_step": 1954,
                "epochs": 14,
                "best_val_loss": -4.77,
                "cut_short": False,
                "total_wall_time_s": 414.1,
            }
        )
    )
    n_parameters = sum(p.numel() for p in model.parameters())
    for name, scores in SCORES.items():
        (exp / f"eval_{name}").mkdir()
        (exp / f"eval_{name}" / "summary.json").write_text(
            json.dumps(
                {
                    **scores,
                    "n_utterances": 40,
                    "n_parameters": n_parameters,
                    "test_dir": f"/data/{name}",
                }
            )
        )
    return exp, model


def front_matter(card: str) -> dict:
    return yaml.safe_load(card.split("---")[1])


def test_publish_fills_the_card_and_pushes_the_folder(experiment, tmp_path, monkeypatch):
    exp, model = experiment
    uploads = []

    class FakeApi:
        def __init__(self, token=None):
            pass

        def create_repo(self, repo_id, private=None, exist_ok=False):
            return types.SimpleNamespace(repo_id=repo_id)

        def upload_folder(self, repo_id, folder_path, **kwargs):
            uploads.append((repo_id, sorted(os.listdir(folder_path)), Path(folder_path)))
            return types.SimpleNamespace(commit_url=f"https://huggingface.co/{repo_id}/commit/1")

    monkeypatch.setattr(hub, "HfApi", FakeApi)
    assert (
        commands.main(
            ["publish", str(exp), "org/tiny", "--dataset", "tiny2mix", "--license", "cc-by-4.0"]
        )
        == 0
    )
    folder = exp / "publish" / "org--tiny"
    assert uploads == []  # nothing leaves the machine without --push
    card = (folder / "README.md").read_text()
    meta = front_matter(card)
    results = {
        r["dataset"]["name"]: {m["type"]: m["value"] for m in r["metrics"]}
        for r in meta["model-index"][0]["results"]
    }
    assert results == {
        name: {k: round(v, 2) for k, v in scores.items()} for name, scores in SCORES.items()
    }
    assert meta["model-index"][0]["name"] == "org/tiny"
    assert (
        meta["datasets"] == ["tiny2mix"]
        and meta["license"] == "cc-by-4.0"
        and "arxiv:2404.02063" in meta["tags"]
    )
    for text in (
        "- steps: 1954",
        "- epochs: 14",
        "- batch size: 8",
        "6.9 min",
        "/data/corpus/train",
        "| reverb | si_snr_i | 4.04 |",
        "reverb: 40 mixtures of /data/reverb",
        "arXiv:2404.02063",
        'SPMamba.from_pretrained("org/tiny")',
    ):
        assert text in card, text
    with torch.no_grad():
        x = torch.randn(1, 1200)
        assert torch.equal(load_model(folder)(x), model(x))

    out = tmp_path / "elsewhere"
    assert commands.main(["publish", str(exp), "org/tiny", "--out-dir", str(out), "--push"]) == 0
    assert uploads == [
        ("org/tiny", ["README.md", "config.json", "model.safetensors", "pytorch_model.bin"], out)
    ]
    assert (
        front_matter((out / "README.md").read_text())["license"] == "mit"
    )  # the package's, by default


def test_publish_refuses_scores_of_another_model(experiment, capsys):
    exp, _ = experiment
    summary = json.loads((exp / "eval_reverb" / "summary.json").read_text())
    (exp / "eval_reverb" / "summary.json").write_text(json.dumps({**summary, "n_parameters": 12}))
    assert commands.main(["publish", str(exp), "org/tiny"]) == 1
    assert "eval_reverb/summary.json scores a model of 12 parameters" in capsys.readouterr().err
    (exp / "best_model.pth").unlink()
    assert commands.main(["publish", str(exp), "org/tiny"]) == 1
    assert "no best_model.pth" in capsys.readouterr().err
