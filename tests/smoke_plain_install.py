"""Smoke test of a plain ``pip install .`` (no constraints file: whatever a fresh resolver picks).

Run by ``.ci/run`` with the interpreter of that environment, from the repository root:
serialize and reload a model, train one step (asteroid_spmamba.training),
separate a file with the CLI.
"""

import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fake_datasets  # noqa: E402

from asteroid_spmamba import SPMamba, commands, training  # noqa: E402

TINY = dict(
    n_layers=1,
    emb_dim=8,
    emb_ks=2,
    n_head=2,
    approx_qk_dim=32,
    d_state=4,
    expand=1,
    n_fft=256,
    hop_length=64,
    sample_rate=16000,
)


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = SPMamba(**TINY).eval()
        x = torch.randn(1, 8000)
        reloaded = SPMamba.from_pretrained(
            model.serialize()
        ).eval()  # Asteroid's format (pkg_resources)
        with torch.no_grad():
            assert torch.equal(model(x), reloaded(x))
        model.save_pretrained(tmp / "saved")
        with torch.no_grad():
            assert torch.equal(model(x), SPMamba.from_pretrained(tmp / "saved")(x))
        corpus = tmp / "corpus"
        raw = fake_datasets.make_echo2mix(tmp / "echo2mix", n_per_split=2, seconds=0.8)
        for split, name in (("train", "train"), ("valid", "val"), ("test", "test")):
            for i, folder in enumerate(sorted(p.parent for p in (raw / name).rglob("mix.wav"))):
                dest = corpus / split / f"{split}-{i}"
                dest.mkdir(parents=True)
                for wav in folder.glob("*.wav"):
                    (dest / wav.name).write_bytes(wav.read_bytes())
        conf = {
            "model": {"name": "SPMamba", "args": TINY},
            "data": {"root": str(corpus), "sample_rate": 16000, "segment": 0.5},
            "training": {
                "batch_size": 2,
                "max_steps": 1,
                "max_epochs": 1,
                "progress_bar": False,
                "num_sanity_val_steps": 0,
            },
        }
        summary = training.train(conf, tmp / "exp")
        assert summary["global_step"] == 1, summary
        mix = tmp / "mix.wav"
        sf.write(
            mix, np.random.default_rng(0).standard_normal(8000).astype(np.float32) * 0.1, 16000
        )
        assert (
            commands.main(
                [
                    "separate",
                    str(tmp / "exp" / "best_model.pth"),
                    str(mix),
                    "--out-dir",
                    str(tmp / "out"),
                    "-q",
                ]
            )
            == 0
        )
        assert len(list((tmp / "out").glob("*.wav"))) == 2
        # the shipped model and the bundled real recording are in the installed package
        assert commands.main(["demo", "--out-dir", str(tmp / "demo"), "--device", "cpu"]) == 0
        assert len(list((tmp / "demo").glob("spk*.wav"))) == 2
        versions = {
            name: __import__(name).__version__ for name in ("torch", "torchaudio", "asteroid")
        }
        print("plain install works:", json.dumps(versions))
    return 0


if __name__ == "__main__":
    sys.exit(main())
