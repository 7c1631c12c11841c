"""egs/mini/run.sh end to end, shortened: a tiny corpus, two training steps, every stage."""

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

RECIPE = Path(__file__).resolve().parents[1] / "egs" / "mini"

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="run.sh needs bash")


def _run(*args, timeout=600):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        ["bash", str(RECIPE / "run.sh"), "--python", sys.executable, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def test_unknown_option_is_refused():
    result = _run("--n_trian", "3")
    assert result.returncode == 2
    assert "unknown option --n_trian" in result.stderr


def test_all_stages_then_convtasnet_comparison(tmp_path):
    pytest.importorskip("espeakng_loader", reason="the synthetic corpus needs espeakng-loader")
    corpus, exp = tmp_path / "corpus", tmp_path / "exp"
    common = [
        "--corpus_dir",
        corpus,
        "--exp_root",
        exp,
        "--n_train",
        6,
        "--n_valid",
        2,
        "--n_test",
        2,
        "--max_steps",
        2,
        "--batch_size",
        2,
        "--progress_bar",
        "false",
        "--n_save_examples",
        1,
    ]
    result = _run(*common)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log
    for stage in range(4):
        assert f"=== Stage {stage} done in" in result.stdout, log
    # first of all: the shipped model on the bundled real recording, its score printed
    assert "spmamba-small-kokoro2mix: SI-SNRi " in result.stdout.split("=== Stage 0")[0], log
    assert {p.name for p in (exp / "real_demo").iterdir()} == {
        "mixture.wav",
        "spk1.wav",
        "spk2.wav",
    }

    # stage 0: the corpus in the Echo2Mix layout
    assert len(list((corpus / "train").glob("*/mix.wav"))) == 6
    assert (corpus / "metadata" / "test.csv").is_file()

    # stage 1: the experiment folder, 2 optimizer steps
    run = exp / "spmamba"
    summary = json.loads((run / "train_summary.json").read_text())
    assert summary["global_step"] == 2 and summary["model"] == "SPMamba"
    assert (run / "conf.yml").is_file() and (run / "checkpoints" / "last.ckpt").is_file()

    # stage 2: per-utterance CSV (exact columns), summary, one example
    with open(run / "eval" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert (
        list(rows[0]) == ["utt_id", "sdr", "sdr_i", "si_snr", "si_snr_i", "level_db"]
        and len(rows) == 2
    )
    scores = json.loads((run / "eval" / "summary.json").read_text())
    assert scores["si_snr_i"] == pytest.approx(
        np.mean([float(r["si_snr_i"]) for r in rows]), abs=1e-3
    )
    assert f"SI-SNRi {scores['si_snr_i']:.2f} dB" in result.stdout
    assert len(list((run / "eval" / "examples").glob("*/s1_estimate.wav"))) == 1

    # stage 3: the first test mixture separated with best_model.pth, as the model gives
    # it fitted to the mixture
    mix_path = sorted((corpus / "test").glob("*/mix.wav"))[0]
    out = run / "separate" / mix_path.parent.name
    estimates = [sf.read(out / f"mix_spk{k}.wav", dtype="float32")[0] for k in (1, 2)]
    assert str(out / "mix_spk1.wav") in result.stdout
    from asteroid.models import BaseModel

    import asteroid_spmamba  # noqa: F401

    model = BaseModel.from_pretrained(str(run / "best_model.pth")).eval()
    from asteroid_spmamba.levels import match_mixture, remove_dc

    mix = remove_dc(torch.from_numpy(sf.read(mix_path, dtype="float32")[0])[None])
    with torch.no_grad():
        expected = match_mixture(model(mix), mix)[0][0].numpy()
    np.testing.assert_allclose(np.stack(estimates), expected, atol=1e-4)

    # a second model in the same recipe (stages 1-2); the comparison lists both
    result = _run(*common, "--stage", 1, "--stop_stage", 2, "--model", "convtasnet")
    assert result.returncode == 0, result.stdout + result.stderr
    table = result.stdout[result.stdout.index("experiment ") :]
    assert "convtasnet" in table and "spmamba" in table and "ConvTasNet" in table
