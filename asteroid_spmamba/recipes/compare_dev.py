"""The comparison recipe's dev sets and learning curves (:mod:`asteroid_spmamba.recipes.compare`).

A trained model and its training snapshots (``training.snapshot_every_s``) scored on real-speech dev
sets (``egs/realdev``): ``eval_<name>/`` per set, ``curve.csv`` (SI-SNRi against training time) and
``learning_curves.png``.
"""

import csv
import io
import json
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Optional

import torch

from .._stack import user_stacklevel
from .common import PathLike, write_atomic, write_text_atomic


def parse_dev_dirs(spec: str) -> dict[str, Path]:
    """``"real_reverb=/data/realdev/reverb real_anechoic=/data/realdev/anechoic"`` (spaces or
    commas) -> ``{name: folder}``; each folder must hold ``ID/mix.wav`` and
    ``ID/spk{k}_reverb.wav``."""
    out = {}
    for item in spec.replace(",", " ").split():
        name, sep, folder = item.partition("=")
        if not sep or not name or not folder:
            raise ValueError(
                "Dev sets are given as NAME=FOLDER (e.g. real_reverb=data/realdev/reverb), got "
                f"{item!r}."
            )
        if not name.replace("_", "").isalnum():
            raise ValueError(
                f"A dev set's name is letters, digits and '_' (a column name), got {name!r}."
            )
        if not Path(folder).is_dir():
            raise FileNotFoundError(
                f"Dev set {name}: {folder} is not a folder (build it with egs/realdev)."
            )
        out[name] = Path(folder)
    return out


def si_snr_improvement(model: torch.nn.Module, test_dir: PathLike, device: str = "cpu") -> float:
    """Mean SI-SNRi (dB, best permutation) of ``model`` over a folder of ``ID/mix.wav`` and
    ``ID/spk{k}_reverb.wav``: the learning curve's measure, without BSS-eval's SDR (about a second
    per utterance on a CPU, far more than the separation on a GPU)."""
    import numpy as np

    from ..scoring import best_permutation, si_snr
    from ..training.datasets import make_test_set
    from ..training.evaluate import model_data_conf

    dataset, _ = make_test_set(model_data_conf(model), Path(test_dir))
    model = model.to(device).eval()
    gains = []
    with torch.inference_mode():
        for index in range(len(dataset)):
            mix, refs = dataset[index][0].float(), dataset[index][1].double().numpy()
            est = model(mix[None].to(device))[0].double().cpu().numpy()
            est = est[list(best_permutation(refs, est))]
            gains.append(si_snr(refs, est).mean() - si_snr(refs, mix.double().numpy()[None]).mean())
    if not gains:
        raise ValueError(f"{test_dir} holds no mixture (ID/mix.wav).")
    return float(np.mean(gains))


def dev_eval(
    exp_dir: PathLike,
    dev_dirs: Mapping[str, PathLike],
    device: str = "cpu",
    scoring_processes: Optional[int] = 0,
) -> list[dict]:
    """Score the experiment's model on each dev set (SDR, SDRi, SI-SNR, SI-SNRi in ``eval_<name>/``)
    and every training snapshot (``snapshots/``, see ``training.snapshot_every_s``) on each, for the
    learning curve: rows of (seconds, step, ``<name>_si_snr_i``) written to
    ``curve.csv`` and returned.
    ``scoring_processes``: see :func:`asteroid_spmamba.training.evaluate`."""
    from ..training.evaluate import evaluate, load_trained_model

    exp_dir = Path(exp_dir)
    for name, folder in dev_dirs.items():
        evaluate(
            exp_dir,
            folder,
            exp_dir / f"eval_{name}",
            device=device,
            progress=False,
            verbose=False,
            scoring_processes=scoring_processes,
        )
    index = exp_dir / "snapshots" / "index.json"
    rows = []
    for entry in json.loads(index.read_text()) if index.is_file() else []:
        model = load_trained_model(exp_dir / "snapshots" / entry["file"])
        row = {"seconds": entry["seconds"], "step": entry["step"]}
        row.update(
            {
                f"{name}_si_snr_i": si_snr_improvement(model, folder, device)
                for name, folder in dev_dirs.items()
            }
        )
        rows.append(row)
    if rows:
        write_text_atomic(exp_dir / "curve.csv", _csv(rows, list(rows[0])))
    return rows


def _csv(rows: Sequence[Mapping], columns: Sequence[str]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in columns})
    return buf.getvalue()


def read_curve(exp_dir: PathLike) -> list[dict]:
    """``curve.csv`` of an experiment as rows of floats ([] when absent)."""
    path = Path(exp_dir) / "curve.csv"
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return [
            {k: float(v) if v not in ("", None) else None for k, v in row.items()}
            for row in csv.DictReader(f)
        ]


def plot_curves(
    curves: Mapping[str, list[dict]], labels: Mapping[str, str], path: PathLike, title: str = ""
) -> Optional[Path]:
    """Learning curves: one panel per dev set, SI-SNRi against minutes of
    training, one line per model."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        warnings.warn(
            "matplotlib is not installed (pip install matplotlib): no learning-curve plot written.",
            stacklevel=user_stacklevel(),
        )
        return None
    sets = sorted(
        {
            k[: -len("_si_snr_i")]
            for rows in curves.values()
            for r in rows
            for k in r
            if k.endswith("_si_snr_i")
        }
    )
    if not sets:
        warnings.warn(
            "No model has a learning curve (curve.csv): no plot written.",
            stacklevel=user_stacklevel(),
        )
        return None
    fig, axes = plt.subplots(
        1, len(sets), figsize=(5.5 * len(sets), 4.2), sharey=True, squeeze=False
    )
    colors = plt.get_cmap("tab10")
    for ax, dev in zip(axes[0], sets):
        for i, (name, rows) in enumerate(curves.items()):
            points = [
                (r["seconds"] / 60, r[f"{dev}_si_snr_i"])
                for r in rows
                if r.get(f"{dev}_si_snr_i") is not None
            ]
            if points:
                ax.plot(
                    *zip(*points),
                    marker="o",
                    markersize=3,
                    color=colors(i % 10),
                    label=labels.get(name, name),
                )
        ax.set_title(dev)
        ax.set_xlabel("training time (minutes)")
        ax.grid(True, alpha=0.3)
    axes[0][0].set_ylabel("SI-SNRi (dB)")
    axes[0][-1].legend(fontsize=8, loc="lower right")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    out = write_atomic(path, lambda p: fig.savefig(str(p), format="png", dpi=120))
    plt.close(fig)
    return out


def dev_sets(exp_dir: Path) -> list[str]:
    """Names of the dev sets an experiment was scored on (its ``eval_<name>/summary.json``)."""
    return sorted(p.parent.name[len("eval_") :] for p in Path(exp_dir).glob("eval_*/summary.json"))


def _dev_names(rows: Sequence[Mapping]) -> list[str]:
    names = {
        k[: -len("_si_snr_i")]
        for r in rows
        for k in r
        if k.endswith("_si_snr_i") and k != "si_snr_i"
    }
    return sorted(names)
