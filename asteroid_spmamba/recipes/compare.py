"""The comparison recipe (``egs/echo2mix/compare``): the SPMamba paper's Echo2Mix table, rebuilt.

Every model of the table (:func:`asteroid_spmamba.zoo.names`) is trained with the same data,
segment, optimiser, schedule, epochs and seed (one configuration file, the model section aside),
evaluated on the same test split, and measured the same way; :func:`collect` then gathers:

=================  ===========================================================================
SDR, SDRi          BSS-eval SDR and its improvement over the mixture (dB, test-set mean)
SI-SNR, SI-SNRi    scale-invariant SNR and its improvement (dB)
Params (M)         parameters of the trained model
MACs (G/s)         multiply-accumulates per second of audio (:mod:`asteroid_spmamba.complexity`,
                   1 s at the model's rate, the Mamba scan counted as the authors did)
Train s/epoch      training wall time per epoch: the training's per-epoch times when it records
                   them, else the run's wall time over the epochs done (validation and start-up
                   included; marked ``~``)
RTF                inference real-time factor: seconds of computation per second of audio
                   (median of a few runs on a ``bench_seconds`` mixture, batch 1)
Peak mem (MB)      peak memory of that inference (weights included): CUDA's peak allocation on
                   GPU, the process's peak resident memory on CPU (``/proc``'s VmHWM, reset first)
Train step (ms)    one training step as the model was trained (batch, excerpt, precision, loss,
                   Adam; median after a warm-up) and its peak memory (Train mem)
Train min, Steps   the training's wall time and optimizer steps
<dev> SDR ...      with dev sets (``dev``): the four scores on each, in a second table
=================  ===========================================================================

into ``results.md`` (Markdown), ``results.csv``, ``results.png`` (SI-SNRi against MACs and against
Params, bubble area proportional to inference memory) and, where the runs took snapshots
(``training.snapshot_every_s``), ``learning_curves.png`` (dev-set SI-SNRi against training minutes);
the plots need matplotlib.

Model sizes: ``full`` is the zoo's ``echo2mix`` preset of each row (the paper's configuration);
``small`` and ``tiny`` are the models' presets of those names (``zoo.config(name, "tiny")``), which
shrink every model for CPU runs and smoke tests, keeping its architecture. With another sample rate
than 16 kHz the band-split widths of BSRNN are scaled.

Command line (stages 1, 2 (dev sets), 3 and 4 of the recipe's run.sh;
:mod:`asteroid_spmamba.commands.compare`)::

    python -m asteroid_spmamba.commands.compare train --model spmamba --size tiny \\
        --conf local/conf.yml --exp-dir exp/x/spmamba
    python -m asteroid_spmamba.commands.compare dev exp/x/spmamba \\
        --dev "real_reverb=DIR real_anechoic=DIR"
    python -m asteroid_spmamba.commands.compare bench exp/x/spmamba [--seconds 4] [--device cpu]
    python -m asteroid_spmamba.commands.compare collect exp/x --models spmamba,tfgridnet

References:
    K. Li, G. Chen, R. Yang, X. Hu, "SPMamba: State-space model is all you need in speech
    separation", arXiv:2404.02063, 2024 (Table: Echo2Mix).
"""

import copy
import json
import math
import statistics
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Optional

import torch
import yaml

from ..measure import device_name, measure_inference, measure_train_step, resident_kb
from ..models import registry
from .common import PathLike, write_atomic, write_text_atomic
from .compare_dev import (  # noqa: F401  (the recipe's dev sets and learning curves)
    _csv,
    _dev_names,
    dev_eval,
    dev_sets,
    parse_dev_dirs,
    plot_curves,
    read_curve,
    si_snr_improvement,
)

SIZE_NAMES = ("full", "small", "tiny")

# results.csv columns (and the keys of each row of collect()).
COLUMNS = [
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
DEV_METRICS = ("sdr", "sdr_i", "si_snr", "si_snr_i")  # per dev set: columns <name>_<metric>


def parse_models(models: str) -> list[str]:
    """``"spmamba,tfgridnet"`` (or ``"all"``) -> zoo names in the order of the paper's table.

    Raises:
        ValueError: an unknown name (with the closest zoo name), or none given.
    """
    from .. import zoo

    if models.strip().lower() in ("all", ""):
        return zoo.names()
    names = []
    for raw in models.replace(" ", ",").split(","):
        if raw:
            name = raw.lower().replace("-", "").replace("_", "")
            zoo.presets(name)  # ValueError naming the closest zoo model
            if name not in names:
                names.append(name)
    if not names:
        raise ValueError("No model given; use e.g. --models spmamba,tfgridnet (or all).")
    order = zoo.names()
    return sorted(names, key=order.index)


def size_overrides(name: str, size: str, sample_rate: int = 16000) -> dict[str, Any]:
    """Constructor overrides of zoo row ``name`` for ``size`` at ``sample_rate``."""
    from .. import zoo

    if size not in SIZE_NAMES:
        raise ValueError(f"Unknown size {size!r}; choose one of {SIZE_NAMES}.")
    overrides = {}
    if size != "full":  # the model's small/tiny preset, as overrides of its full (echo2mix) one
        full = zoo.config(name)
        overrides = {
            k: v for k, v in zoo.config(name, size).items() if k not in full or full[k] != v
        }
    overrides["sample_rate"] = int(sample_rate)
    rescale = registry.spec(name).for_sample_rate  # e.g. BSRNN's band widths, in Hz
    if rescale is not None and int(sample_rate) != 16000:
        overrides.update(rescale({**zoo.config(name), **overrides}, int(sample_rate)))
    return overrides


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------
def model_conf(conf: Mapping, name: str, size: str) -> dict:
    """``conf`` with its model section set for zoo row ``name`` at ``size``
    (``data.sample_rate``)."""
    conf = copy.deepcopy(dict(conf))
    rate = int((conf.get("data") or {}).get("sample_rate") or 16000)
    extra = dict((conf.get("model") or {}).get("args") or {})
    conf["model"] = {
        "name": name,
        "preset": "echo2mix",
        "args": {**size_overrides(name, size, rate), **extra},
    }
    return conf


def make_loadable(model_path: PathLike) -> bool:
    """Store the software versions of a serialized model as strings; True if the file was rewritten.

    Asteroid's own classes (ConvTasNet, DPRNNTasNet, SuDORMRFNet) serialize ``torch.__version__`` as
    a ``TorchVersion`` object, which ``torch.load(weights_only=True)`` (the default of
    ``BaseModel.from_pretrained`` since torch 2.6) refuses; this package's
    models already store strings.
    """
    model_path = Path(model_path)
    package = torch.load(
        model_path, map_location="cpu", weights_only=False
    )  # written by this recipe
    versions = (package.get("infos") or {}).get("software_versions") or {}
    bad = {
        k: v
        for k, v in versions.items()
        if v is not None and not isinstance(v, (str, int, float, bool))
    }
    if not bad:
        return False
    for key, value in bad.items():
        versions[key] = str(value)
    write_atomic(model_path, lambda p: torch.save(package, p))
    return True


def train_model(conf: Mapping, name: str, size: str, exp_dir: PathLike) -> dict:
    """Train the zoo model ``name`` at ``size`` with the recipe's configuration ``conf`` (its model
    section aside) into ``exp_dir``; the main process then makes ``best_model.pth`` loadable and
    writes ``train_summary.json`` with the size (for :func:`collect`). Returns the training
    summary."""
    from ..training.fit import is_main_process, train

    conf = model_conf(conf, name, size)
    exp_dir = Path(exp_dir)
    summary = train(conf, exp_dir)
    if is_main_process():
        make_loadable(exp_dir / "best_model.pth")
        summary["size"] = size  # for collect
        write_text_atomic(exp_dir / "train_summary.json", json.dumps(summary, indent=2) + "\n")
    return summary


# --------------------------------------------------------------------------------------------
# Benchmark: Params, MACs, real-time factor, peak memory
# --------------------------------------------------------------------------------------------
def bench(
    exp_dir: PathLike,
    seconds: float = 4.0,
    device: str = "cpu",
    repeats: int = 3,
    macs_seconds: float = 1.0,
    measure_training: bool = True,
) -> dict:
    """Measure the trained model of ``exp_dir``: Params, MACs/s, inference RTF and peak memory, and
    with ``measure_training`` the time and memory of a training step (:func:`train_step`).

    Writes ``exp_dir/bench.json`` and returns it. Run it in a fresh process for the CPU memory
    figure (the resident memory before the model is loaded is its baseline).
    """
    from ..complexity import measure
    from ..training.evaluate import load_trained_model

    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' was asked for but CUDA is not available; use device='cpu'.")
    if seconds <= 0 or repeats < 1:
        raise ValueError(f"seconds must be > 0 and repeats >= 1 (got {seconds}, {repeats}).")
    exp_dir = Path(exp_dir)
    baseline_kb = resident_kb()
    if device == "cuda":
        torch.cuda.empty_cache()
        base_alloc = torch.cuda.memory_allocated()
    model = load_trained_model(exp_dir).eval().to(device)
    rate = int(model.sample_rate)
    wav = torch.randn(1, int(round(seconds * rate)), generator=torch.Generator().manual_seed(0))
    wav = wav.to(device)
    timing = measure_inference(
        model, wav.shape[-1], "fp32", device, repeats, warmup=1, wav=wav, baseline_kb=baseline_kb
    )
    peak_mb = timing["peak_mb"]
    if device == "cuda" and peak_mb is not None:
        peak_mb -= base_alloc / 2**20
    model = model.cpu()
    del wav
    train = train_step(exp_dir, device, repeats=repeats) if measure_training else {}
    complexity = measure(model, seconds=macs_seconds, sample_rate=rate)
    result = {
        "params": int(complexity.params),
        "params_m": complexity.params_m,
        "macs_g_per_s": complexity.macs_g_per_s,
        "macs_no_scan_g_per_s": complexity.macs_no_scan_g_per_s,
        "rtf": timing["time_ms"] / 1000 / seconds,
        "peak_mem_mb": peak_mb,
        "memory_method": timing["memory_method"],
        "device": device if device == "cpu" else device_name(device),
        "threads": torch.get_num_threads(),
        "seconds": seconds,
        "repeats": repeats,
        "sample_rate": rate,
        **train,
    }
    write_text_atomic(exp_dir / "bench.json", json.dumps(result, indent=2) + "\n")
    return result


def train_step(exp_dir: PathLike, device: str = "cpu", repeats: int = 3) -> dict:
    """Time and peak memory of one training step of the experiment's model as it was trained: its
    batch size, excerpt length, precision, fast paths, training loss and Adam (median of ``repeats``
    after a warm-up, random data). Peak memory on CUDA: everything allocated (weights, optimizer
    state, activations); on CPU: the process's peak resident memory above the start of the step."""
    from ..training.config import read_experiment_conf
    from ..training.evaluate import load_trained_model, model_n_src
    from ..training.system import _pit_loss, apply_training_paths

    conf = read_experiment_conf(exp_dir)
    tr, data = conf["training"], conf["data"]
    batch, seconds = int(tr["batch_size"]), float(data["segment"] or 3.0)
    precision = str(tr["precision"]) if device != "cpu" else "32-true"
    model = apply_training_paths(load_trained_model(exp_dir), tr).to(device).train()
    sources = torch.randn(
        batch,
        model_n_src(model),
        int(round(seconds * model.sample_rate)),
        generator=torch.Generator().manual_seed(0),
    ).to(device)
    timing = measure_train_step(
        model,
        batch,
        sources.shape[-1],
        sources.shape[1],
        precision,
        device,
        repeats,
        warmup=1,  # kernel choice, optimizer state
        loss=_pit_loss(conf["loss"]["train"]),
        targets=sources,
        mixture=sources.sum(1),
        lr=1e-3,
        baseline_kb=resident_kb(),
    )
    return {
        "train_step_ms": timing["time_ms"],
        "train_peak_mem_mb": timing["peak_mb"],
        "train_batch": batch,
        "train_seconds": seconds,
        "train_precision": precision,
    }


# --------------------------------------------------------------------------------------------
# Collecting the table
# --------------------------------------------------------------------------------------------
def _read_json(path: Path) -> Optional[dict]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _read_yaml(path: Path) -> Optional[dict]:
    return yaml.safe_load(path.read_text()) if path.is_file() else None


def train_seconds_per_epoch(exp_dir: Path) -> tuple:
    """``(seconds per epoch, estimated?)`` from ``train_summary.json``
    (``(None, False)`` if absent).

    Uses the training's per-epoch times when recorded (``epoch_times_s``); otherwise the run's wall
    time over the number of epochs done (fractional: optimizer steps x accumulation x batch size /
    training examples), which includes validation and start-up.
    """
    summary = _read_json(exp_dir / "train_summary.json")
    if not summary:
        return None, False
    times = summary.get("epoch_times_s") or summary.get("train_epoch_times_s")
    if times:
        return float(statistics.mean(times)), False
    conf = _read_yaml(exp_dir / "conf.yml") or {}
    training = conf.get("training", {})
    n_train = summary.get("n_train")
    steps = summary.get("global_step") or 0
    if not n_train or not steps:
        return None, True
    batches_per_epoch = math.ceil(n_train / int(training.get("batch_size", 1)))
    limit = training.get("limit_train_batches")
    if isinstance(limit, int) and not isinstance(limit, bool):
        batches_per_epoch = min(batches_per_epoch, limit)
    elif isinstance(limit, float):
        batches_per_epoch = max(1, int(batches_per_epoch * limit))
    epochs_done = steps * int(training.get("accumulate_grad_batches", 1)) / batches_per_epoch
    return float(summary["wall_time_s"]) / epochs_done, True


def collect(exp_root: PathLike, models: Sequence[str]) -> list[dict]:
    """One row per model of ``models`` trained under ``exp_root/<model>`` (see :data:`COLUMNS`).

    Missing pieces (not trained, not evaluated, not benchmarked) leave empty cells; a model
    without any of them is reported as not run.
    """
    from .. import zoo

    exp_root = Path(exp_root)
    rows = []
    for name in models:
        exp = exp_root / name
        paper = zoo.PAPER_TABLE.get(name, {})
        evaluation = _read_json(exp / "eval" / "summary.json") or {}
        measured = _read_json(exp / "bench.json") or {}
        trained = _read_json(exp / "train_summary.json") or {}
        per_epoch, estimated = train_seconds_per_epoch(exp)
        training = (_read_yaml(exp / "conf.yml") or {}).get("training", {})
        not_trained = exp / "not_trained.txt"  # budget_run.sh: no batch fitted in GPU memory
        row = {
            "model": name,
            "label": paper.get("label", name),
            "size": trained.get("size", ""),
            "sdr": evaluation.get("sdr"),
            "sdr_i": evaluation.get("sdr_i"),
            "si_snr": evaluation.get("si_snr"),
            "si_snr_i": evaluation.get("si_snr_i"),
            "params_m": measured.get("params_m", (trained.get("n_parameters") or 0) / 1e6 or None),
            "macs_g_per_s": measured.get("macs_g_per_s"),
            "macs_no_scan_g_per_s": measured.get("macs_no_scan_g_per_s"),
            "train_s_per_epoch": per_epoch,
            "train_s_per_epoch_estimated": estimated,
            "rtf": measured.get("rtf"),
            "peak_mem_mb": measured.get("peak_mem_mb"),
            "bench_device": measured.get("device", ""),
            "epochs": trained.get("epochs"),
            "global_step": trained.get("global_step"),
            "n_test": evaluation.get("n_utterances"),
            "paper_params_m": paper.get("params_m"),
            "paper_macs_g_per_s": paper.get("macs_g"),
            "train_step_ms": measured.get("train_step_ms"),
            "train_peak_mem_mb": measured.get("train_peak_mem_mb"),
            "train_minutes": trained.get("total_wall_time_s", trained.get("wall_time_s", 0)) / 60
            or None,
            "batch_size": training.get("batch_size") if trained else None,
            "accumulate_grad_batches": training.get("accumulate_grad_batches", 1)
            if trained
            else None,
            "not_trained": not_trained.read_text().strip() if not_trained.is_file() else None,
        }
        for name_dev in dev_sets(exp):
            scores = _read_json(exp / f"eval_{name_dev}" / "summary.json") or {}
            row.update({f"{name_dev}_{k}": scores.get(k) for k in DEV_METRICS})
        rows.append(row)
    return rows


def _fmt(value, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _fmt_small(value) -> str:
    """Params/MACs: 2 decimals, more for tiny models (so they do not all print 0.00)."""
    if value is None:
        return "–"
    return f"{value:.2f}" if abs(value) >= 1 else f"{value:.3g}"


def markdown_table(rows: Sequence[Mapping], title: str = "", notes: Sequence[str] = ()) -> str:
    """The paper's table (SDR, SDRi, SI-SNR, SI-SNRi, Params, MACs) plus timing
    and memory, in Markdown."""
    head = [
        "Model",
        "SDR",
        "SDRi",
        "SI-SNR",
        "SI-SNRi",
        "Params (M)",
        "MACs (G/s)",
        "Train s/epoch",
        "RTF",
        "Peak mem (MB)",
        "Train step (ms)",
        "Train mem (MB)",
        "Train min",
        "Steps",
    ]
    lines = []
    if title:
        lines += [f"### {title}", ""]
    lines += [
        "| " + " | ".join(head) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|",
    ]
    for r in rows:
        per_epoch = _fmt(r["train_s_per_epoch"], 1)
        if r["train_s_per_epoch"] is not None and r.get("train_s_per_epoch_estimated"):
            per_epoch = "~" + per_epoch
        cells = [
            r["label"],
            _fmt(r["sdr"]),
            _fmt(r["sdr_i"]),
            _fmt(r["si_snr"]),
            _fmt(r["si_snr_i"]),
            _fmt_small(r["params_m"]),
            _fmt_small(r["macs_g_per_s"]),
            per_epoch,
            _fmt(r["rtf"], 3),
            _fmt(r["peak_mem_mb"], 1),
            _fmt(r.get("train_step_ms"), 1),
            _fmt(r.get("train_peak_mem_mb"), 0),
            _fmt(r.get("train_minutes"), 1),
            _fmt(r.get("global_step")),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    devs = _dev_names(rows)
    if devs:  # the real-speech dev sets: one table, four metrics per set
        lines += [
            "",
            "| Model | "
            + " | ".join(f"{d} {m}" for d in devs for m in ("SDR", "SDRi", "SI-SNR", "SI-SNRi"))
            + " |",
            "|---" + "|---:" * (4 * len(devs)) + "|",
        ]
        for r in rows:
            lines.append(
                "| "
                + " | ".join(
                    [r["label"]] + [_fmt(r.get(f"{d}_{k}")) for d in devs for k in DEV_METRICS]
                )
                + " |"
            )
    notes = (
        [f"{r['label']}: not trained ({r['not_trained']})." for r in rows if r.get("not_trained")]
        + [
            f"{r['label']}: batch {r['batch_size']} x {r['accumulate_grad_batches']} accumulated "
            "per update."
            for r in rows
            if (r.get("accumulate_grad_batches") or 1) > 1
        ]
        + list(notes)
    )
    if notes:
        lines.append("")
        lines += [f"- {note}" for note in notes]
    return "\n".join(lines) + "\n"


def csv_text(rows: Sequence[Mapping]) -> str:
    return _csv(rows, COLUMNS + [f"{d}_{k}" for d in _dev_names(rows) for k in DEV_METRICS])


def plot(rows: Sequence[Mapping], path: PathLike, title: str = "") -> Optional[Path]:
    """SI-SNRi against MACs and against Params (log axes), bubble area proportional to peak memory.

    Returns the PNG path, or ``None`` (with a warning) when matplotlib is missing or no row has
    both a score and a complexity figure.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import FuncFormatter, NullFormatter
    except ImportError:
        warnings.warn(
            "matplotlib is not installed (pip install matplotlib): no plot written.", stacklevel=2
        )
        return None
    points = [
        r
        for r in rows
        if r.get("si_snr_i") is not None and r.get("macs_g_per_s") and r.get("params_m")
    ]
    if not points:
        warnings.warn(
            "No model has both scores and complexity figures: no plot written.", stacklevel=2
        )
        return None
    mems = [r["peak_mem_mb"] for r in points if r.get("peak_mem_mb")]
    top = max(mems) if mems else 1.0

    def area(r):  # 60..1500 pt^2, proportional to memory
        mem = r.get("peak_mem_mb") or 0.0
        return 60 + 1440 * max(mem, 0.0) / top

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6), sharey=True)
    colors = plt.get_cmap("tab10")
    for ax, key, xlabel in (
        (axes[0], "macs_g_per_s", "MACs (G/s, log scale)"),
        (axes[1], "params_m", "Parameters (M, log scale)"),
    ):
        for i, r in enumerate(points):
            ax.scatter(
                r[key],
                r["si_snr_i"],
                s=area(r),
                alpha=0.55,
                color=colors(i % 10),
                edgecolors="black",
                linewidths=0.6,
                label=r["label"],
            )
            ax.annotate(
                r["label"],
                (r[key], r["si_snr_i"]),
                textcoords="offset points",
                xytext=(6, 6),
                fontsize=8,
            )
        ax.set_xscale("log")
        # at least a decade wide (so a major tick shows), bubbles kept inside
        values = [r[key] for r in points]
        lo, hi = min(values), max(values)
        centre, half = math.sqrt(lo * hi), max(math.sqrt(hi / lo), math.sqrt(10.0)) * 1.8
        ax.set_xlim(centre / half, centre * half)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(xlabel)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("SI-SNRi (dB)")
    axes[0].margins(y=0.2)
    fig.suptitle(
        (title + "\n" if title else "")
        + f"bubble area ∝ inference peak memory (largest: {top:.0f} MB)",
        fontsize=10,
    )
    fig.tight_layout()
    out = write_atomic(path, lambda p: fig.savefig(str(p), format="png", dpi=120))
    plt.close(fig)
    return out


def write_results(
    rows: Sequence[Mapping],
    out_dir: PathLike,
    title: str = "",
    notes: Sequence[str] = (),
    curves: Optional[Mapping[str, list[dict]]] = None,
) -> dict[str, Optional[Path]]:
    """``results.md``, ``results.csv``, ``results.png`` and, given ``curves`` ({model: curve rows}),
    ``learning_curves.png`` in ``out_dir`` (each written atomically)."""
    out_dir = Path(out_dir)
    md = write_text_atomic(out_dir / "results.md", markdown_table(rows, title, notes))
    table = write_text_atomic(out_dir / "results.csv", csv_text(rows))
    png = plot(rows, out_dir / "results.png", title)
    paths = {"md": md, "csv": table, "png": png}
    if curves and any(curves.values()):
        labels = {r["model"]: r["label"] for r in rows}
        paths["curves"] = plot_curves(curves, labels, out_dir / "learning_curves.png", title)
    return paths
