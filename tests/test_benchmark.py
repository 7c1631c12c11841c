"""``asteroid-spmamba benchmark`` on CPU with tiny models: files, table, OOM handling, ratios."""

import csv
import importlib.util
import json
import os

import original_code  # benchmarks/original_code.py (conftest puts benchmarks/ on the path)
import pytest
import torch

from asteroid_spmamba import benchmark, commands
from asteroid_spmamba.mamba import resolve_backend


def _run_cli(tmp_path, *extra):
    out = tmp_path / "bench"
    argv = [
        "benchmark",
        "--tiny",
        "--device",
        "cpu",
        "--seconds",
        "0.1",
        "--train-seconds",
        "0.1",
        "--train-batches",
        "1",
        "--repeats",
        "2",
        "--warmup",
        "1",
        "--out-dir",
        str(out),
        *extra,
    ]
    return commands.main(argv), out


def test_cli_runs_on_cpu_and_writes_files(tmp_path, capsys):
    code, out = _run_cli(
        tmp_path,
        "--models",
        "spmamba,tfgridnet",
        "--dtypes",
        "fp32,bf16",
        "--variants",
        "plain,fast",
        "--original-dir",
        "",
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "| model | scan | paths | dtype | task |" in printed
    data = json.loads((out / "benchmark.json").read_text())
    meta, rows = data["meta"], data["rows"]
    for key in ("device_name", "torch", "cuda", "git_revision", "triton", "repeats"):
        assert key in meta
    assert meta["device"] == "cpu" and meta["repeats"] == 2
    # spmamba: 2 variants x 2 dtypes x (1 inference + 1 training); tfgridnet the same
    assert len(rows) == 16
    assert {r["model"] for r in rows} == {"spmamba", "tfgridnet"}
    assert {(r["task"], r["batch"]) for r in rows} == {("inference", 1), ("train", 1)}
    cpu_bf16 = torch.ops.mkldnn._is_mkldnn_bf16_supported()  # False on AVX2-only CPUs: no bf16 LSTM
    for r in rows:
        if r["status"] == "unsupported: no bfloat16 oneDNN kernels on this CPU":
            assert r["model"] == "tfgridnet" and r["dtype"] == "bf16" and not cpu_bf16, r
            continue
        assert r["status"] == "ok", r
        assert r["runs"] == 2 and len(r["times_ms"]) == 2 and r["time_ms"] > 0
        assert r["rtf"] == pytest.approx(r["time_ms"] / 1000 / 0.1)
    auto = "auto->" + resolve_backend(None, torch.device("cpu"))
    assert {r["backend"] for r in rows if r["model"] == "spmamba"} == {auto}
    assert any("SI-SNR of the bf16 output" in n for n in data["notes"])
    with open(out / "benchmark.csv") as f:
        table = list(csv.DictReader(f))
    assert len(table) == 16 and table[0]["device_name"] == meta["device_name"]
    assert (
        f"| spmamba | {auto} | fast | bf16 | train | 0.1 | 1 |"
        in (out / "benchmark.md").read_text()
    )
    assert (out / "benchmark.png").exists() == (importlib.util.find_spec("matplotlib") is not None)


def test_oom_is_reported_not_raised(tmp_path, monkeypatch):
    def out_of_memory(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(benchmark, "measure_train_step", out_of_memory)
    result = benchmark.run_benchmark(
        models=["spmamba"],
        seconds=[0.1],
        train_seconds=0.1,
        train_batches=[4],
        dtypes=["fp32"],
        variants=["fast"],
        repeats=1,
        warmup=0,
        device="cpu",
        tiny=True,
        out_dir=str(tmp_path),
        log=lambda s: None,
    )
    status = {r.task: r.status for r in result["rows"]}
    assert status == {"inference": "ok", "train": "OOM"}
    assert "| OOM |" in benchmark.markdown_table(result["rows"])
    saved = json.loads((tmp_path / "benchmark.json").read_text())["rows"]
    assert [r["status"] for r in saved] == ["ok", "OOM"]


def test_time_budget_skips_the_rest(tmp_path):
    result = benchmark.run_benchmark(
        models=["spmamba"],
        seconds=[0.1, 0.1],
        train_batches=[],
        dtypes=["fp32"],
        variants=["plain"],
        repeats=1,
        warmup=0,
        device="cpu",
        tiny=True,
        time_budget=0.0,
        log=lambda s: None,
    )
    assert [r.status for r in result["rows"]] == ["skipped: time budget"] * 2
    assert "skipped: time budget" in benchmark.markdown_table(result["rows"])


@pytest.mark.parametrize(
    "variant,train_status", [("checkpointed", "ok"), ("graphed", "skipped: CUDA only")]
)
def test_training_only_variants(variant, train_status):
    """checkpointed and graphed rows measure training only; graphed needs CUDA."""
    result = benchmark.run_benchmark(
        models=["spmamba"],
        seconds=[0.1],
        train_seconds=0.1,
        train_batches=[2],
        dtypes=["fp32"],
        variants=[variant],
        repeats=1,
        warmup=0,
        device="cpu",
        tiny=True,
        log=lambda s: None,
    )
    status = {r.task: r.status for r in result["rows"]}
    assert status == {"inference": "skipped: training only", "train": train_status}


def test_graph_training_forward_refuses_cpu():
    from asteroid_spmamba.cuda_graphs import graph_training_forward

    with pytest.raises(ValueError, match="CUDA"):
        graph_training_forward(torch.nn.Linear(2, 2), torch.zeros(1, 2))


def test_tf32_train_step_keeps_tf32_in_the_backward_pass():
    seen = []

    class Probe(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(8, 8)

        def forward(self, x):  # (batch, time) -> (batch, n_src, time)
            y = self.linear(x.reshape(x.shape[0], -1, 8)).reshape(x.shape[0], 1, -1)
            y.register_hook(lambda g: seen.append(torch.backends.cuda.matmul.allow_tf32))
            return y.expand(-1, 2, -1)

    before = torch.backends.cuda.matmul.allow_tf32
    benchmark.measure_train_step(
        Probe(), 1, 64, 2, "tf32", torch.device("cpu"), repeats=1, warmup=0
    )
    assert seen == [True]
    assert torch.backends.cuda.matmul.allow_tf32 == before


def test_ratios_against_the_original():
    rows = [
        benchmark.Row(
            "original", "mamba_ssm", "original", "fp32", "inference", 4.0, 1, time_ms=200.0
        ),
        benchmark.Row("spmamba", "cuda", "fast", "fp32", "inference", 4.0, 1, time_ms=150.0),
        benchmark.Row("spmamba", "cuda", "fast", "bf16", "inference", 4.0, 1, time_ms=100.0),
        benchmark.Row("spmamba", "cuda", "fast", "fp32", "train", 3.0, 1, status="OOM"),
    ]
    benchmark.add_ratios(rows)
    assert [r.vs_original for r in rows] == [1.0, 0.75, None, None]


def test_bad_arguments(tmp_path, capsys):
    with pytest.raises(ValueError, match="dtype"):
        benchmark.run_benchmark(models=["spmamba"], dtypes=["fp64"], device="cpu", tiny=True)
    with pytest.raises(ValueError, match="variant"):
        benchmark.run_benchmark(models=["spmamba"], variants=["fastest"], device="cpu", tiny=True)
    assert (
        _run_cli(tmp_path, "--overrides", "{not json")[0] == 1
    )  # the CLI prints the error, exit 1
    assert "overrides" in capsys.readouterr().err
    with pytest.raises(FileNotFoundError, match="JusperLee/SPMamba"):
        original_code.import_original_spmamba(str(tmp_path), torch.device("cpu"))


@pytest.mark.skipif(
    not os.environ.get("SPMAMBA_ORIGINAL_DIR"),
    reason="set SPMAMBA_ORIGINAL_DIR to a checkout of JusperLee/SPMamba",
)
def test_original_code_with_the_same_weights(tmp_path):
    for package in ("torch_complex", "mamba_ssm"):  # mamba_ssm is imported by the benchmark's shim
        if importlib.util.find_spec(package) is None:
            pytest.skip(f"the original code needs {package}")
    original_cls = original_code.import_original_spmamba(
        os.environ["SPMAMBA_ORIGINAL_DIR"], torch.device("cpu")
    )
    result = benchmark.run_benchmark(
        models=["spmamba"],
        seconds=[0.1],
        train_batches=[],
        dtypes=["fp32"],
        variants=["plain"],
        repeats=1,
        warmup=0,
        device="cpu",
        tiny=True,
        original=lambda config: original_code.build_original(original_cls, config),
        log=lambda s: None,
    )
    diff = [n for n in result["notes"] if "vs original" in n]
    assert diff and float(diff[0].rsplit(" ", 1)[1]) < 1e-4, result["notes"]
    original = [r for r in result["rows"] if r.model == "original"]
    assert original and original[0].status == "ok" and original[0].vs_original == 1.0
    ours = [r for r in result["rows"] if r.model == "spmamba"][0]
    assert ours.vs_original == pytest.approx(ours.time_ms / original[0].time_ms)
