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
the plots need matplotlib. Collecting and writing the table is
:mod:`asteroid_spmamba.recipes.compare_table`'s part, the dev sets and learning curves
:mod:`asteroid_spmamba.recipes.compare_dev`'s; their functions are importable from here too.

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
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ..measure import device_name, measure_inference, measure_train_step, resident_kb
from ..models import registry
from .common import PathLike, write_atomic, write_text_atomic
from .compare_dev import (  # noqa: F401  (the recipe's dev sets and learning curves)
    dev_eval,
    dev_sets,
    parse_dev_dirs,
    plot_curves,
    read_curve,
    si_snr_improvement,
)
from .compare_table import (  # noqa: F401  (the recipe's table)
    COLUMNS,
    DEV_METRICS,
    collect,
    csv_text,
    markdown_table,
    plot,
    train_seconds_per_epoch,
    write_results,
)

SIZE_NAMES = ("full", "small", "tiny")


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
