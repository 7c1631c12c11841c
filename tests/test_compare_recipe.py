"""The comparison recipe egs/echo2mix/compare: model sizes, measurements, the table, and the recipe
end to end on a tiny synthetic corpus with two small models."""

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from asteroid_spmamba import zoo
from asteroid_spmamba.recipes import compare

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "egs" / "echo2mix" / "compare"
LEASE_TOOLS = REPO / "tools" / "lease"


def test_parse_models_orders_like_the_paper_and_rejects_typos():
    assert compare.parse_models("spmamba,conv-tasnet") == ["convtasnet", "spmamba"]
    assert compare.parse_models("all") == zoo.names()
    with pytest.raises(ValueError, match="Did you mean 'tfgridnet'"):
        compare.parse_models("tfgridnt")


@pytest.mark.parametrize("size", ["tiny", "small"])
@pytest.mark.parametrize("rate", [16000, 8000])
def test_every_model_builds_and_separates_at_each_size(size, rate):
    torch.manual_seed(0)
    wav = torch.randn(1, rate // 4)
    counts = {}
    for name in zoo.names():
        model = zoo.build(name, **compare.size_overrides(name, size, rate)).eval()
        assert model.sample_rate == rate
        with torch.no_grad():
            out = model(wav)
        assert out.shape == (1, 2, wav.shape[-1]), name
        counts[name] = sum(p.numel() for p in model.parameters())
    # shrunk well below the paper's models (the smallest, SuDoRM-RF/TDANet, have 2.3-2.7 M)
    assert max(counts.values()) < (60_000 if size == "tiny" else 400_000), counts


def test_bsrnn_bands_scale_with_the_sample_rate():
    full = compare.size_overrides("bsrnn", "full", 8000)
    # the authors' split (20 x 50 Hz, 10 x 100, 8 x 250, 8 x 500) at half the rate
    assert full["bands"] == [[25.0, 20], [50.0, 10], [125.0, 8], [250.0, 8]]
    assert compare.size_overrides("bsrnn", "full", 16000) == {"sample_rate": 16000}
    with pytest.raises(ValueError, match="size"):
        compare.size_overrides("bsrnn", "huge")


def test_peak_memory_sees_an_allocation():
    # In a fresh process and with pages from an anonymous mmap: inside the long pytest process the
    # allocator can hand back memory that is already resident, and the peak then does not move.
    code = (
        "import mmap\n"
        "from asteroid_spmamba import measure\n"
        "with measure.PeakMemory('cpu', measure.resident_kb()) as peak:\n"
        "    block = mmap.mmap(-1, 40 * 2**20)\n"
        "    for i in range(0, len(block), 4096):\n"
        "        block[i] = 1\n"
        "print(peak.method or 'none', peak.mb)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    method, mb = out.stdout.split("\n")[-2].rsplit(" ", 1)
    if method == "none":
        pytest.skip("/proc/self/status not readable here")
    assert 38 <= float(mb) < 200, out.stdout


def _fake_exp(
    folder: Path, wall: float, steps: int, batch: int, n_train: int, accumulate: int = 1, **extra
):
    folder.mkdir(parents=True)
    (folder / "train_summary.json").write_text(
        json.dumps(
            {
                "wall_time_s": wall,
                "global_step": steps,
                "epochs": 1,
                "n_parameters": 1000,
                "n_train": n_train,
                "size": "tiny",
                **extra,
            }
        )
    )
    (folder / "conf.yml").write_text(
        yaml.safe_dump({"training": {"batch_size": batch, "accumulate_grad_batches": accumulate}})
    )


def test_train_seconds_per_epoch(tmp_path):
    # 7 examples, batches of 2 -> 4 batches an epoch; 6 optimizer steps x 2 accumulated = 3 epochs
    _fake_exp(tmp_path / "a", wall=30.0, steps=6, batch=2, n_train=7, accumulate=2)
    assert compare.train_seconds_per_epoch(tmp_path / "a") == (10.0, True)
    _fake_exp(tmp_path / "b", wall=30.0, steps=6, batch=2, n_train=7, epoch_times_s=[4.0, 6.0])
    assert compare.train_seconds_per_epoch(tmp_path / "b") == (5.0, False)
    assert compare.train_seconds_per_epoch(tmp_path / "absent") == (None, False)


def test_table_marks_missing_and_estimated_values(tmp_path):
    _fake_exp(tmp_path / "spmamba", wall=20.0, steps=4, batch=1, n_train=4)
    (tmp_path / "dprnn").mkdir()  # budget_run.sh: no batch fitted
    (tmp_path / "dprnn" / "not_trained.txt").write_text("out of GPU memory at batch 1 (x 4)\n")
    (tmp_path / "spmamba" / "eval").mkdir()
    (tmp_path / "spmamba" / "eval" / "summary.json").write_text(
        json.dumps({"sdr": 5.0, "sdr_i": 4.5, "si_snr": 4.0, "si_snr_i": 3.25, "n_utterances": 3})
    )
    rows = compare.collect(tmp_path, ["convtasnet", "spmamba"])
    assert [r["label"] for r in rows] == ["Conv-TasNet", "SPMamba"]
    table = compare.markdown_table(rows, "T")
    lines = table.splitlines()
    assert lines[2].startswith(
        "| Model | SDR | SDRi | SI-SNR | SI-SNRi | Params (M) | MACs (G/s) |"
    )
    assert lines[4].startswith("| Conv-TasNet | – | – | – | – |")
    assert "| SPMamba | 5.00 | 4.50 | 4.00 | 3.25 | 0.001 | – | ~20.0 | – | – |" in table
    parsed = list(csv.DictReader(compare.csv_text(rows).splitlines()))
    assert parsed[1]["si_snr_i"] == "3.25" and parsed[0]["si_snr_i"] == ""
    assert parsed[1]["paper_params_m"] == "6.14"
    assert (parsed[1]["batch_size"], parsed[1]["accumulate_grad_batches"]) == ("1", "1")
    assert parsed[0]["batch_size"] == parsed[0]["not_trained"] == ""  # not run at all: nothing said

    rows = compare.collect(tmp_path, ["dprnn", "spmamba"])
    assert rows[0]["not_trained"] == "out of GPU memory at batch 1 (x 4)"
    assert "- DPRNN: not trained (out of GPU memory at batch 1 (x 4))." in compare.markdown_table(
        rows
    )
    assert "accumulated" not in compare.markdown_table(rows)
    (tmp_path / "spmamba" / "conf.yml").write_text(
        yaml.safe_dump({"training": {"batch_size": 2, "accumulate_grad_batches": 2}})
    )
    table = compare.markdown_table(
        compare.collect(tmp_path, ["dprnn", "spmamba"]), notes=["general"]
    )
    assert table.endswith(
        "- DPRNN: not trained (out of GPU memory at batch 1 (x 4)).\n"
        "- SPMamba: batch 2 x 2 accumulated per update.\n- general\n"
    )


def test_params_and_macs_are_counted_when_the_benchmark_is_missing(tmp_path):
    # a lease that ended before stage 3: counts from conf.yml, timings and memory stay empty
    from asteroid_spmamba.complexity import measure

    model_conf = {"name": "SPMamba", "args": zoo.config("spmamba", "tiny")}
    _fake_exp(tmp_path / "spmamba", wall=20.0, steps=4, batch=1, n_train=4)
    (tmp_path / "spmamba" / "conf.yml").write_text(yaml.safe_dump({"model": model_conf}))
    row = compare.collect(tmp_path, ["spmamba"])[0]
    counted = measure(zoo.build("spmamba", preset="tiny"), seconds=1.0, sample_rate=16000)
    assert row["macs_g_per_s"] == pytest.approx(counted.macs_g_per_s) and row["macs_g_per_s"] > 0
    assert row["params_m"] == pytest.approx(counted.params_m)
    assert row["rtf"] is None and row["peak_mem_mb"] is None and row["train_step_ms"] is None


@pytest.mark.slow
def test_compare_recipe_end_to_end_on_a_tiny_synthetic_corpus(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    cmd = [
        "bash",
        str(RECIPE / "run.sh"),
        "--data",
        "synthetic",
        "--size",
        "tiny",
        "--models",
        "spmamba,convtasnet",
        "--data_dir",
        str(tmp_path / "corpus"),
        "--exp_root",
        str(tmp_path / "exp"),
        "--n_train",
        "4",
        "--n_valid",
        "2",
        "--n_test",
        "2",
        "--synthetic_duration",
        "1.0",
        "--synthetic_reverb",
        "false",
        "--segment",
        "1.0",
        "--max_steps",
        "2",
        "--num_workers",
        "0",
        "--progress_bar",
        "false",
        "--bench_seconds",
        "0.5",
        "--python",
        sys.executable,
        "--overrides",
        "training.limit_val_batches=1 training.num_sanity_val_steps=0",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    root = tmp_path / "exp" / "synthetic_tiny"
    results = root / "results"
    with open(results / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["model"] for r in rows] == ["convtasnet", "spmamba"]  # the paper's order
    for row in rows:
        name = row["model"]
        exp = root / name
        # same shared configuration for both, except the model
        conf = yaml.safe_load((exp / "conf.yml").read_text())
        assert (
            conf["optim"]["lr"] == 1e-3
            and conf["data"]["segment"] == 1.0
            and conf["training"]["seed"] == 0
        )
        assert conf["model"]["name"] == zoo.model_class(name).__name__
        # Params: the tiny model built from the zoo with the size overrides
        model = zoo.build(name, **compare.size_overrides(name, "tiny", 16000))
        assert float(row["params_m"]) == pytest.approx(
            sum(p.numel() for p in model.parameters()) / 1e6, rel=1e-9
        )
        # scores: the means of the per-utterance metrics
        with open(exp / "eval" / "metrics.csv", newline="") as f:
            utts = list(csv.DictReader(f))
        assert len(utts) == 2
        for key in ("sdr", "sdr_i", "si_snr", "si_snr_i"):
            assert float(row[key]) == pytest.approx(
                np.mean([float(u[key]) for u in utts]), abs=1e-3
            )
        assert (
            float(row["macs_g_per_s"]) > 0
            and float(row["rtf"]) > 0
            and float(row["peak_mem_mb"]) > 0
        )
        assert float(row["train_s_per_epoch"]) > 0 and row["global_step"] == "2"
    # MACs per second follow the architectures: the tiny SPMamba costs more
    # than the tiny Conv-TasNet
    assert float(rows[1]["macs_g_per_s"]) > float(rows[0]["macs_g_per_s"])
    table = (results / "results.md").read_text()
    assert "| Conv-TasNet |" in table and "| SPMamba |" in table and "SI-SNRi" in table
    try:
        import matplotlib  # noqa: F401  (only whether it imports)
    except ImportError:
        assert not (results / "results.png").exists()
    else:
        png = (results / "results.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


# --------------------------------------------------------------------------------------------
# One GPU, one budget: snapshots, dev sets, learning curves, the training step
# --------------------------------------------------------------------------------------------
BUDGET_RATE = 8000


@pytest.fixture(scope="module")
def snapshot_run(tmp_path_factory):
    """A tiny SPMamba trained 5 steps with a snapshot after every step, and a corpus whose test
    split serves as a dev set."""
    import soundfile as sf
    from conftest import tiny_spmamba_args

    from asteroid_spmamba import training

    root = tmp_path_factory.mktemp("budget")
    rng = np.random.default_rng(1)
    for split, n in (("train", 4), ("valid", 2), ("test", 3)):
        for i in range(n):
            folder = root / "corpus" / split / f"{split}-{i}"
            folder.mkdir(parents=True)
            srcs = (rng.standard_normal((2, 2400)) * 0.1).astype(np.float32)
            for k in range(2):
                sf.write(folder / f"spk{k + 1}_reverb.wav", srcs[k], BUDGET_RATE, subtype="FLOAT")
            sf.write(folder / "mix.wav", srcs.sum(0), BUDGET_RATE, subtype="FLOAT")
    conf = {
        "model": {"name": "SPMamba", "args": tiny_spmamba_args()},
        "data": {
            "dataset": "synthetic",
            "root": str(root / "corpus"),
            "sample_rate": BUDGET_RATE,
            "segment": 0.25,
            "valid_segment": None,
        },
        "training": {
            "batch_size": 2,
            "max_steps": 5,
            "max_epochs": 100,
            "progress_bar": False,
            "num_sanity_val_steps": 0,
            "snapshot_every_s": 1e-6,
        },
        "optim": {"lr": 1e-3},
    }
    exp = root / "exp" / "spmamba"
    summary = training.train(conf, exp)
    return root, exp, summary


def test_snapshots_follow_training_time_and_end_with_the_final_weights(snapshot_run, tmp_path):
    from asteroid_spmamba import training
    from asteroid_spmamba.training.evaluate import load_trained_model

    root, exp, summary = snapshot_run
    index = json.loads((exp / "snapshots" / "index.json").read_text())
    # a mark passed at every step, none written twice for a step (the end of training adds none)
    assert (
        [e["step"] for e in index] == [1, 2, 3, 4, 5] == list(range(1, summary["global_step"] + 1))
    )
    seconds = [e["seconds"] for e in index]
    assert (
        seconds == sorted(seconds) and seconds[-1] <= summary["wall_time_s"] + 0.05
    )  # that one is rounded to 0.1
    final = torch.load(exp / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)[
        "state_dict"
    ]
    last = load_trained_model(exp / "snapshots" / index[-1]["file"]).state_dict()
    assert all(torch.equal(last[k], final["model." + k]) for k in last)
    first = load_trained_model(exp / "snapshots" / index[0]["file"]).state_dict()
    assert not all(torch.equal(first[k], last[k]) for k in last)  # the weights moved between them
    # a mark far beyond the run: only the end of training writes one, at its last step
    conf = yaml.safe_load((exp / "conf.yml").read_text())
    conf["training"].update(snapshot_every_s=3600, max_steps=2)
    training.train(conf, tmp_path / "once")
    once = json.loads((tmp_path / "once" / "snapshots" / "index.json").read_text())
    assert [e["step"] for e in once] == [2]
    # resumed with a larger budget: the index goes on, in time after the first run
    conf["training"]["max_steps"] = 3
    training.train(conf, tmp_path / "once")
    resumed = json.loads((tmp_path / "once" / "snapshots" / "index.json").read_text())
    assert [e["step"] for e in resumed] == [2, 3] and resumed[1]["seconds"] > resumed[0]["seconds"]
    # started over: the old curve goes with the old checkpoints
    conf["training"].update(resume=False, max_steps=1)
    training.train(conf, tmp_path / "once")
    assert [
        e["step"] for e in json.loads((tmp_path / "once" / "snapshots" / "index.json").read_text())
    ] == [1]
    assert (
        tmp_path / "once" / "checkpoints-replaced-1" / "snapshots" / "index.json"
    ).read_text() == json.dumps(resumed, indent=1) + "\n"
    conf["training"]["resume"] = True
    conf["training"]["snapshot_every_s"] = 0
    with pytest.raises(ValueError, match="snapshot_every_s must be a positive"):
        training.train(conf, tmp_path / "zero")


def _si_snr(est: np.ndarray, ref: np.ndarray) -> float:
    est, ref = est - est.mean(), ref - ref.mean()
    proj = (est @ ref) / (ref @ ref) * ref
    return 10 * np.log10((proj @ proj) / ((est - proj) @ (est - proj)))


def test_dev_sets_and_the_learning_curve(snapshot_run):
    import soundfile as sf

    from asteroid_spmamba.training.evaluate import load_trained_model

    root, exp, _ = snapshot_run
    dev = root / "corpus" / "test"
    rows = compare.dev_eval(exp, compare.parse_dev_dirs(f"realish={dev}"), device="cpu")
    index = json.loads((exp / "snapshots" / "index.json").read_text())
    assert [r["step"] for r in rows] == [e["step"] for e in index]
    assert compare.read_curve(exp)[2]["realish_si_snr_i"] == pytest.approx(
        rows[2]["realish_si_snr_i"]
    )
    # the curve's SI-SNRi of a snapshot, recomputed in float64 from its separations
    model = load_trained_model(exp / "snapshots" / index[2]["file"]).eval()
    gains = []
    for folder in sorted(dev.iterdir()):
        mix = sf.read(folder / "mix.wav", dtype="float32")[0]
        refs = np.stack(
            [sf.read(folder / f"spk{k}_reverb.wav", dtype="float64")[0] for k in (1, 2)]
        )
        with torch.no_grad():
            est = model(torch.from_numpy(mix)[None])[0].double().numpy()
        best = max(
            np.mean([_si_snr(est[p[k]], refs[k]) for k in range(2)]) for p in ((0, 1), (1, 0))
        )
        gains.append(best - np.mean([_si_snr(mix.astype(np.float64), r) for r in refs]))
    assert rows[2]["realish_si_snr_i"] == pytest.approx(np.mean(gains), abs=1e-3)
    # the final model on the dev set, in the table
    table_rows = compare.collect(root / "exp", ["spmamba"])
    summary = json.loads((exp / "eval_realish" / "summary.json").read_text())
    assert table_rows[0]["realish_si_snr_i"] == summary["si_snr_i"] and summary["n_utterances"] == 3
    md = compare.markdown_table(table_rows)
    assert "| Model | realish SDR | realish SDRi | realish SI-SNR | realish SI-SNRi |" in md
    header = compare.csv_text(table_rows).splitlines()[0].split(",")
    assert header[-4:] == ["realish_sdr", "realish_sdr_i", "realish_si_snr", "realish_si_snr_i"]
    paths = compare.write_results(
        table_rows, root / "results", curves={"spmamba": compare.read_curve(exp)}
    )
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert "curves" in paths and paths["curves"] is None
    else:
        assert paths["curves"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_dev_sets_are_named_and_checked(tmp_path):
    assert compare.parse_dev_dirs(f"a={tmp_path}, b_2={tmp_path}") == {
        "a": tmp_path,
        "b_2": tmp_path,
    }
    with pytest.raises(ValueError, match="NAME=FOLDER"):
        compare.parse_dev_dirs(str(tmp_path))
    with pytest.raises(ValueError, match="letters, digits"):
        compare.parse_dev_dirs(f"real-reverb={tmp_path}")
    with pytest.raises(FileNotFoundError, match="egs/realdev"):
        compare.parse_dev_dirs(f"a={tmp_path / 'missing'}")


def test_the_training_step_is_measured_as_the_run_trained(snapshot_run):
    _, exp, _ = snapshot_run
    result = compare.bench(exp, seconds=0.25, device="cpu", repeats=1)
    assert (result["train_batch"], result["train_seconds"], result["train_precision"]) == (
        2,
        0.25,
        "32-true",
    )
    assert result["train_step_ms"] > 0
    assert json.loads((exp / "bench.json").read_text())["train_step_ms"] == result["train_step_ms"]
    assert "train_step_ms" not in compare.bench(
        exp, seconds=0.25, device="cpu", repeats=1, measure_training=False
    )


@pytest.mark.slow
def test_one_lease_of_the_budget_comparison_on_the_cpu(tmp_path):
    """A lease of the budget comparison, shrunk for a CPU (tiny models, a few seconds each), on a
    machine of two "GPUs" (tools/lease/budget_gpus.sh: one local/budget_run.sh per GPU, at once):
    each model runs with its own CUDA_VISIBLE_DEVICES, the corpus is built once, what comes back
    holds every measurement and no weights, and collect builds the tables and the learning curves
    from it."""
    import tarfile

    import soundfile as sf

    from asteroid_spmamba.mamba import cpu_scan

    # the kernel is built once per machine; built inside the 6 s budgets, it would eat them
    cpu_scan.cpu_kernel_available()

    rng = np.random.default_rng(2)
    for condition in ("reverb", "anechoic"):
        for i in range(2):
            folder = tmp_path / "realdev" / condition / f"{i:03d}_a_b"
            folder.mkdir(parents=True)
            srcs = (rng.standard_normal((2, 16000)) * 0.1).astype(np.float32)
            for k in range(2):
                sf.write(folder / f"spk{k + 1}_reverb.wav", srcs[k], 16000, subtype="FLOAT")
            sf.write(folder / "mix.wav", srcs.sum(0), 16000, subtype="FLOAT")
    # SPMamba's first training "runs out of GPU memory" (the lease trains it again at 2 x 2);
    # Conv-TasNet's always does (the lease reports it and goes on)
    python = tmp_path / "python"
    python.write_text(f"""#!/usr/bin/env bash
echo "${{CUDA_VISIBLE_DEVICES:-unset}} $*" >> {tmp_path}/calls.txt
oom() {{ echo "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB" >&2; exit 1; }}
if [[ "$*" == *"compare train --model spmamba"* && ! -e {tmp_path}/oom_done ]]; then
  touch {tmp_path}/oom_done; oom
fi
[[ "$*" == *"compare train --model convtasnet"* ]] && oom
exec {sys.executable} "$@"
""")  # noqa: E501
    python.chmod(0o755)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    env.pop("CUDA_VISIBLE_DEVICES", None)  # the GPUs are then 0 and 1
    out_dir = tmp_path / "out"
    cmd = [
        "bash",
        str(LEASE_TOOLS / "budget_gpus.sh"),
        "2",
        "spmamba,convtasnet",
        "",
        str(tmp_path / "realdev"),
        str(tmp_path / "work"),
        str(out_dir),
        "--size",
        "tiny",
        "--gpus",
        "0",
        "--n_train",
        "4",
        "--n_valid",
        "2",
        "--n_test",
        "2",
        "--synthetic_duration",
        "1.0",
        "--synthetic_reverb",
        "false",
        "--segment",
        "0.5",
        "--max_time",
        "6",
        "--num_workers",
        "0",
        "--bench_seconds",
        "0.5",
        "--python",
        str(python),
        "--overrides",
        "training.snapshot_every_s=2 training.limit_val_batches=1 training.num_sanity_val_steps=0 "
        "data.valid_segment=null",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "GPU 0: spmamba: exit 0" in out.stdout and "GPU 1: convtasnet: exit 0" in out.stdout
    logs = [(tmp_path / "work" / f"gpu{g}.log").read_text() for g in (0, 1)]
    assert "spmamba ran out of GPU memory at batch 4 x 1" in logs[0]
    assert "spmamba ran out of GPU memory at batch 2 x 2" not in logs[0]
    assert all(
        f"convtasnet ran out of GPU memory at batch {b}" in logs[1]
        for b in ("4 x 1", "2 x 2", "1 x 4")
    )
    assert "Reusing the synthetic corpus" in logs[1]  # built once, by GPU 0's queue
    calls = (tmp_path / "calls.txt").read_text().splitlines()
    # spmamba: two trainings, evaluate, dev, bench; convtasnet: three
    # trainings that run out of memory
    for model, gpu, n_calls in (("spmamba", "0", 5), ("convtasnet", "1", 3)):
        mine = [c for c in calls if re.search(rf"(--model |/budget/){model}(\s|$)", c)]
        assert len(mine) == n_calls and {c.split()[0] for c in mine} == {gpu}, mine
    back = tmp_path / "back"
    for model in ("spmamba", "convtasnet"):
        with tarfile.open(out_dir / f"budget_{model}.tgz") as tar:
            names = tar.getnames()
            tar.extractall(back, filter="data")
        assert not [n for n in names if n.endswith((".pth", ".ckpt"))], names
        assert f"train_{model}.log" in names
    assert (back / "convtasnet" / "not_trained.txt").read_text().startswith("out of GPU memory")
    exp = back / "spmamba"
    for part in (
        "train_summary.json",
        "bench.json",
        "curve.csv",
        "eval/summary.json",
        "eval_real_reverb/summary.json",
        "eval_real_anechoic/summary.json",
    ):
        assert (exp / part).is_file(), part
    trained = json.loads((exp / "train_summary.json").read_text())
    conf = yaml.safe_load((exp / "conf.yml").read_text())
    assert conf["training"]["max_time"] == 6 and conf["scheduler"]["name"] == "linear_decay"
    assert conf["optim"]["lr"] == 1e-3
    assert (conf["training"]["batch_size"], conf["training"]["accumulate_grad_batches"]) == (2, 2)
    curve = compare.read_curve(exp)
    assert len(curve) >= 2 and curve[-1]["step"] == trained["global_step"]
    assert all(r["real_reverb_si_snr_i"] is not None for r in curve)
    assert json.loads((exp / "bench.json").read_text())["train_step_ms"] > 0
    assert (back / "corpus.fingerprint").read_text().strip()
    rows = compare.collect(back, ["spmamba", "convtasnet"])
    table = compare.markdown_table(rows)
    assert "real_anechoic SI-SNRi" in table and "real_reverb SI-SNRi" in table
    assert rows[0]["real_reverb_si_snr_i"] is not None and rows[0]["train_step_ms"]
    assert (
        rows[1]["model"] == "convtasnet" and rows[1]["si_snr_i"] is None
    )  # not trained: empty cells
    assert "| Conv-TasNet | – | – | – | – |" in table
    assert "- Conv-TasNet: not trained (out of GPU memory at batch 1 (x 4))." in table
    assert "- SPMamba: batch 2 x 2 accumulated per update." in table


def test_scoring_in_worker_processes_gives_the_same_scores(snapshot_run, tmp_path):
    import importlib

    evaluation = importlib.import_module(
        "asteroid_spmamba.training.evaluate"
    )  # the module, not the function

    root, exp, _ = snapshot_run
    inline = evaluation.evaluate(
        exp, root / "corpus" / "test", tmp_path / "inline", progress=False, verbose=False
    )
    assert evaluation.scoring_workers(3) == 0  # a small test set is scored in line
    pooled = evaluation.evaluate(
        exp,
        root / "corpus" / "test",
        tmp_path / "pooled",
        progress=False,
        verbose=False,
        scoring_processes=2,
    )
    assert (tmp_path / "pooled" / "metrics.csv").read_text() == (
        tmp_path / "inline" / "metrics.csv"
    ).read_text()
    # BSS-eval's least squares with one BLAS thread (the workers) or several
    # (here) differ in the last bits
    assert {k: pooled[k] for k in evaluation.METRIC_COLUMNS} == pytest.approx(
        {k: inline[k] for k in evaluation.METRIC_COLUMNS}, rel=1e-9, abs=1e-9
    )
    assert (inline["scoring_processes"], pooled["scoring_processes"]) == (0, 2)


def test_scoring_processes_run_one_blas_thread_each(monkeypatch):
    """N scoring processes of N BLAS threads each oversubscribe the machine (BSS-eval is least
    squares in BLAS): each process starts with one thread; this process's environment is kept."""
    import importlib

    evaluation = importlib.import_module("asteroid_spmamba.training.evaluate")
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    pool = evaluation.scoring_pool(2)
    try:
        seen = [
            pool.apply_async(os.getenv, (name,))
            for name in evaluation.THREAD_VARIABLES
            for _ in range(4)
        ]
        assert {r.get(timeout=120) for r in seen} == {"1"}
    finally:
        pool.terminate()
    assert os.environ["OMP_NUM_THREADS"] == "7" and "OPENBLAS_NUM_THREADS" not in os.environ


def test_a_scoring_process_that_never_answers_is_named():
    import importlib
    import multiprocessing

    evaluation = importlib.import_module("asteroid_spmamba.training.evaluate")

    class Lost:  # what a pool returns for a task whose worker died: never ready
        def get(self, timeout=None):
            raise multiprocessing.TimeoutError

    with pytest.raises(RuntimeError, match="utt7: no scores .* scoring_processes=0"):
        evaluation._result(Lost(), "utt7", timeout_s=1)
