"""The notebooks of ``notebooks/``: stored without outputs, and run top to
bottom with their CI settings.

Each notebook is executed with nbclient in a temporary working directory (``CI=true`` selects the
small settings of its parameter cell); any cell error fails the test. The notebooks assert their own
key facts (streaming == offline, ``separate_file`` == the model call, ...); the files they write are
checked here against what the package computes from them.
"""

import json
import math
from pathlib import Path

import pytest

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = [
    "01_quickstart.ipynb",
    "02_training_on_synthetic_corpus.ipynb",
    "03_comparison_table.ipynb",
    "04_streaming.ipynb",
]
CELL_TIMEOUT_S = 300
# results.csv columns of the comparison recipe (asteroid_spmamba.recipes.compare.COLUMNS)
RESULTS_COLUMNS = [
    "model",
    "label",
    "size",
    "sdr",
    "sdr_i",
    "si_snr",
    "si_snr_i",
    "params_m",
    "macs_g_per_s",
    "macs_no_scan_g_per_s",
    "train_s_per_epoch",
    "train_s_per_epoch_estimated",
    "rtf",
    "peak_mem_mb",
    "bench_device",
    "epochs",
    "global_step",
    "n_test",
    "paper_params_m",
    "paper_macs_g_per_s",
    "train_step_ms",
    "train_peak_mem_mb",
    "train_minutes",
    "batch_size",
    "accumulate_grad_batches",
    "not_trained",
]


def _load_json(name):
    return json.loads((NOTEBOOK_DIR / name).read_text(encoding="utf-8"))


def test_the_four_notebooks_exist():
    assert sorted(p.name for p in NOTEBOOK_DIR.glob("*.ipynb")) == NOTEBOOKS


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_stored_without_outputs_and_with_a_parameter_cell(name):
    nb = _load_json(name)
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code, f"{name} has no code cell"
    dirty = [
        i
        for i, c in enumerate(nb["cells"])
        if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count") is not None)
    ]
    assert not dirty, (
        f"{name}: cells {dirty} hold outputs or execution counts; clear them "
        "(jupyter nbconvert --clear-output --inplace notebooks/*.ipynb)"
    )
    params = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(params) == 1, f"{name} must have exactly one cell tagged 'parameters'"
    source = "".join(params[0]["source"])
    assert 'FAST = os.environ.get("CI", "").lower() == "true"' in source
    assert nb["metadata"]["kernelspec"]["name"] == "python3"


def _execute(name, workdir, monkeypatch):
    nbformat = pytest.importorskip("nbformat", reason="notebook tests need nbformat (test extras)")
    nbclient = pytest.importorskip("nbclient", reason="notebook tests need nbclient (test extras)")
    pytest.importorskip("ipykernel", reason="notebook tests need ipykernel (test extras)")
    pytest.importorskip("matplotlib", reason="the notebooks plot with matplotlib (test extras)")
    # the kernel inherits this environment: CI settings, one thread, no network, no user overrides
    monkeypatch.setenv("CI", "true")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    for var in ("SPMAMBA_PRETRAINED", "SPMAMBA_RESULTS_CSV"):
        monkeypatch.delenv(var, raising=False)
    nb = nbformat.read(str(NOTEBOOK_DIR / name), as_version=4)
    client = nbclient.NotebookClient(
        nb,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(workdir)}},
    )
    client.execute()  # raises CellExecutionError, naming the cell, on any error
    return nb


def _printed(nb):
    return "".join(
        o.get("text", "")
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if o.get("output_type") == "stream" and o.get("name") == "stdout"
    )


def test_01_quickstart(tmp_path, monkeypatch):
    import soundfile as sf
    import torch

    from asteroid_spmamba import SPMamba

    nb = _execute("01_quickstart.ipynb", tmp_path, monkeypatch)
    work = tmp_path / "exp" / "01_quickstart"
    folder = work / "my-spmamba"
    assert sorted(p.name for p in folder.iterdir()) == [
        "README.md",
        "config.json",
        "model.safetensors",
        "pytorch_model.bin",
    ]
    model = SPMamba.from_pretrained(folder)
    assert (model.n_src, model.sample_rate) == (2, 8000)
    mix, rate = sf.read(str(work / "mix.wav"), dtype="float32")
    assert rate == 8000 and len(mix) == 2 * 8000
    with torch.no_grad():
        assert model(torch.from_numpy(mix)).shape == (1, 2, len(mix))
    assert "largest difference from separate_file" in _printed(nb)


def test_02_training(tmp_path, monkeypatch):
    import numpy as np
    import pandas as pd

    from asteroid_spmamba import SPMamba

    _execute("02_training_on_synthetic_corpus.ipynb", tmp_path, monkeypatch)
    root = tmp_path / "exp" / "02_training"
    assert len(list((root / "corpus" / "test").iterdir())) == 3
    for tag, arch in (("spmamba", "SPMamba"), ("convtasnet", "ConvTasNet")):
        exp = root / "exp" / tag
        trained = json.loads((exp / "train_summary.json").read_text())
        assert trained["model"] == arch and 0 < trained["global_step"] <= 6
        metrics = pd.read_csv(exp / "eval" / "metrics.csv")
        summary = json.loads((exp / "eval" / "summary.json").read_text())
        assert len(metrics) == summary["n_utterances"] == 3
        for key in (
            "sdr",
            "sdr_i",
            "si_snr",
            "si_snr_i",
        ):  # the summary is the mean of the table (4 decimals)
            assert summary[key] == pytest.approx(metrics[key].mean(), abs=1e-4)
            assert np.isfinite(metrics[key]).all()
    hub = SPMamba.from_pretrained(root / "exp" / "spmamba" / "hub")
    assert hub.get_model_args()["n_fft"] == 128


def test_03_comparison_table(tmp_path, monkeypatch):
    import pandas as pd

    from asteroid_spmamba import zoo

    _execute("03_comparison_table.ipynb", tmp_path, monkeypatch)
    work = tmp_path / "exp" / "03_comparison"
    results = pd.read_csv(work / "results" / "results.csv")
    assert list(results.columns) == RESULTS_COLUMNS
    try:
        from asteroid_spmamba.recipes.compare import COLUMNS
    except ImportError:
        pass
    else:
        assert list(results.columns) == list(COLUMNS), (
            "the notebook's CSV must keep the recipe's format"
        )
    assert list(results["model"]) == zoo.names()
    for row in results.itertuples():
        summary = json.loads((work / "eval" / row.model / "summary.json").read_text())
        assert row.si_snr_i == pytest.approx(summary["si_snr_i"], abs=1e-9)
        assert row.n_test == summary["n_utterances"] == 3
        assert row.params_m * 1e6 == pytest.approx(summary["n_parameters"], abs=0.5)
        assert row.paper_params_m == zoo.PAPER_TABLE[row.model]["params_m"]
        assert row.macs_g_per_s > 0 and row.rtf > 0 and row.global_step == 8
        assert math.isnan(row.peak_mem_mb) or row.peak_mem_mb > 0


def test_04_streaming(tmp_path, monkeypatch):
    nb = _execute("04_streaming.ipynb", tmp_path, monkeypatch)
    printed = _printed(nb)
    # causal-8k: 16 ms window, 4 ms hop; 1 s of audio = 250 hops
    assert "algorithmic latency 128 samples = 16 ms" in printed
    assert "250 process() calls, 8000 output samples for 8000 input samples" in printed
