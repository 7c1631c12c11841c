"""The comparison recipe's table: the results in each model's experiment folder gathered into one
row (:func:`collect`, columns :data:`COLUMNS`, what each measures in
:mod:`asteroid_spmamba.recipes.compare`), and the rows written as ``results.md``, ``results.csv``
and ``results.png`` (:func:`write_results`).
"""

import json
import math
import statistics
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Optional

import yaml

from .._stack import user_stacklevel
from .common import PathLike, write_atomic, write_text_atomic
from .compare_dev import _csv, _dev_names, dev_sets, plot_curves

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


def _counted_complexity(conf: Mapping) -> dict:
    """Params and MACs counted here from an experiment's configuration when the benchmark (stage 3)
    did not run: a count of the model's operations, the same on any device (unlike the timings and
    memory, which stay empty). ``{}`` without a ``model`` section."""
    if "model" not in conf:
        return {}
    from ..complexity import measure
    from ..training.system import build_model

    model = build_model(conf["model"])
    row = measure(model, seconds=1.0, sample_rate=int(getattr(model, "sample_rate", 16000)))
    return {
        "params_m": row.params_m,
        "macs_g_per_s": row.macs_g_per_s,
        "macs_no_scan_g_per_s": row.macs_no_scan_g_per_s,
    }


def collect(exp_root: PathLike, models: Sequence[str]) -> list[dict]:
    """One row per model of ``models`` trained under ``exp_root/<model>`` (see :data:`COLUMNS`).

    Missing pieces (not trained, not evaluated, not benchmarked) leave empty cells, except Params
    and MACs, which are counted from the model's ``conf.yml`` when the benchmark is missing; a
    model without any of them is reported as not run.
    """
    from .. import zoo

    exp_root = Path(exp_root)
    rows = []
    for name in models:
        exp = exp_root / name
        paper = zoo.PAPER_TABLE.get(name, {})
        evaluation = _read_json(exp / "eval" / "summary.json") or {}
        conf = _read_yaml(exp / "conf.yml") or {}
        measured = _read_json(exp / "bench.json") or {}
        if not measured.get("macs_g_per_s"):
            measured.update(_counted_complexity(conf))
        trained = _read_json(exp / "train_summary.json") or {}
        per_epoch, estimated = train_seconds_per_epoch(exp)
        training = conf.get("training", {})
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
            "matplotlib is not installed (pip install matplotlib): no plot written.",
            stacklevel=user_stacklevel(),
        )
        return None
    points = [
        r
        for r in rows
        if r.get("si_snr_i") is not None and r.get("macs_g_per_s") and r.get("params_m")
    ]
    if not points:
        warnings.warn(
            "No model has both scores and complexity figures: no plot written.",
            stacklevel=user_stacklevel(),
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
            measured = bool(r.get("peak_mem_mb"))
            ax.scatter(
                r[key],
                r["si_snr_i"],
                s=area(r) if measured else 120,
                alpha=0.55 if measured else 0.9,
                facecolors=colors(i % 10) if measured else "none",
                edgecolors="black" if measured else colors(i % 10),
                linewidths=0.6 if measured else 1.5,
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
        + f"bubble area ∝ inference peak memory (largest: {top:.0f} MB)"
        + ("; hollow: memory not measured" if len(mems) < len(points) else ""),
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
