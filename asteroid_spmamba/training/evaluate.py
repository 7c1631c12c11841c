"""``evaluate``: separate and score every mixture of a test set;
``compare_experiments``: the table of runs.

Evaluation scores each utterance with :func:`asteroid_spmamba.scoring.score_utterance` and writes
``metrics.csv`` (one row per utterance: ``utt_id, sdr, sdr_i, si_snr, si_snr_i``), ``summary.json``
(their means, the model, the test folder, the real-time factor of the separation alone) and,
optionally, a few example wav files.
"""

import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Optional, Union

import numpy as np
import torch

from ..files import write_text_atomic, write_wav_atomic
from ..scoring import METRICS
from .config import PathLike, yaml_load
from .system import count_parameters

METRIC_COLUMNS = METRICS  # sdr, sdr_i, si_snr, si_snr_i (CSV_COLUMNS adds utt_id first)


def load_trained_model(path: PathLike) -> torch.nn.Module:
    """A model from an experiment folder (its ``best_model.pth``), a model file or folder, or a name
    that :func:`asteroid_spmamba.loading.load_model` knows (a shipped model, a release, a Hub
    id)."""
    from ..loading import load_model

    path = Path(path)
    if path.is_dir() and (path / "best_model.pth").is_file():
        path = path / "best_model.pth"
    elif path.is_dir() and not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"{path / 'best_model.pth'} does not exist; train the model "
            "first (stage 1 of the recipe)."
        )
    elif not path.exists() and (
        path.suffix in (".pth", ".ckpt", ".bin", ".safetensors") or os.sep in str(path)
    ):
        raise FileNotFoundError(
            f"{path} does not exist; train the model first (stage 1 of the recipe)."
        )
    return load_model(str(path))


def evaluate(
    model_or_exp_dir: Union[PathLike, torch.nn.Module],
    test_dir: Optional[PathLike] = None,
    out_dir: Optional[PathLike] = None,
    n_save_examples: int = 0,
    device: str = "cpu",
    progress: bool = True,
    verbose: bool = True,
    dataset: Optional[str] = None,
    scoring_processes: Optional[int] = 0,
    shifts: int = 1,
) -> dict:
    """Separate and score every mixture of a test set.

    Args:
        model_or_exp_dir: a separation model, an experiment folder (its ``best_model.pth`` is used,
            and its ``conf.yml`` gives the dataset and the default ``test_dir``) or
            a serialized model file.
        test_dir: the prepared test split (for Echo2Mix and the synthetic corpus: a folder of
            ``ID/mix.wav, ID/spk{k}_reverb.wav``).
        out_dir: where ``metrics.csv``, ``summary.json`` and ``examples/`` go (default:
            ``<exp_dir>/eval``; required when a model object is given).
        n_save_examples: write the mixture, references and (permutation-aligned) estimates of the
            first ``n`` utterances to ``out_dir/examples/<utt_id>/``.
        device: ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        dataset: the test set's ``data.dataset`` name (default: the
            experiment's, else ``echo2mix``).
        scoring_processes: processes that score utterances while the model separates the next ones
            (BSS-eval's SDR takes about a second per 4 s utterance on one core); 0 scores in line,
            None chooses (:func:`scoring_workers`). The processes are spawned: a script calling
            this at top level with processes needs the ``if __name__ == "__main__":`` guard (the
            ``evaluate`` command uses them).
        shifts: passes averaged per mixture, as ``separate --shifts``
            (:func:`asteroid_spmamba.inference.running.shift_averaged`).

    Returns:
        The summary (mean of each metric, number of utterances, ...), also in ``summary.json``.
    """
    from ..levels import mixture_has_noise, removes_noise
    from .config import read_experiment_conf
    from .datasets import make_test_set

    exp_dir = None
    if isinstance(model_or_exp_dir, torch.nn.Module):
        model = model_or_exp_dir
        source = type(model).__name__
    else:
        path = Path(model_or_exp_dir)
        exp_dir = path if path.is_dir() else None
        model = load_trained_model(path)
        source = str(path)
    has_conf = exp_dir is not None and (exp_dir / "conf.yml").is_file()
    data = read_experiment_conf(exp_dir)["data"] if has_conf else model_data_conf(model)
    if dataset is not None:
        data["dataset"] = dataset
    test_dir = test_dir or data["test_dir"]
    if not test_dir:
        raise ValueError(
            "Give test_dir (no experiment conf.yml with data.test_dir to read it from)."
        )
    if out_dir is None:
        if exp_dir is None:
            raise ValueError("Give out_dir (where to write metrics.csv and summary.json).")
        out_dir = exp_dir / "eval"
    test_set, ids = make_test_set(data, Path(test_dir))
    summary = score_dataset(
        model,
        test_set,
        ids,
        Path(out_dir),
        n_save_examples,
        device,
        progress,
        scoring_processes,
        keep_residual=not (mixture_has_noise(data) or removes_noise(model)),
        shifts=shifts,
    )
    summary.update(source=source, test_dir=str(Path(test_dir).absolute()))
    write_text_atomic(Path(out_dir) / "summary.json", json.dumps(summary, indent=2) + "\n")
    if verbose:
        print(format_summary(summary))
        print(
            f"Per-utterance scores: {Path(out_dir) / 'metrics.csv'}; summary: "
            f"{Path(out_dir) / 'summary.json'}"
        )
    return summary


def model_n_src(model: torch.nn.Module) -> int:
    """How many sources ``model`` separates (Asteroid's models hold it on the
    model or its masker)."""
    return int(getattr(model, "n_src", None) or getattr(getattr(model, "masker", None), "n_src", 2))


def model_data_conf(model: torch.nn.Module) -> dict:
    """The ``data`` section for scoring ``model`` without an experiment's ``conf.yml``: its sample
    rate and number of sources, the rest defaults (an Echo2Mix-layout test folder)."""
    from .config import complete_conf

    return complete_conf(
        {
            "data": {"sample_rate": int(model.sample_rate), "n_src": model_n_src(model)},
            "model": {"name": type(model).__name__},
        }
    )["data"]


def scoring_workers(n_items: int) -> int:
    """How many scoring processes pay off: BSS-eval's SDR takes about a second per 4 s utterance on
    one core, more than the separation on a GPU; none (scoring in line) on machines of under 4 cores
    or for fewer than 16 utterances."""
    cores = os.cpu_count() or 1
    return min(8, cores // 2) if cores >= 4 and n_items >= 16 else 0


# read by BLAS and OpenMP when they load: they must be set while a scoring process starts
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def scoring_pool(workers: int):
    """``workers`` spawned processes of one BLAS/OpenMP thread each, all started now. BSS-eval's
    least squares run in BLAS, whose thread pools default to every core: N processes of N threads
    oversubscribe the machine and score several times slower than one thread each (README of
    ``egs/echo2mix/compare``). Spawned, since a fork of a process holding a CUDA context is unsafe;
    this process's environment is restored once they have started."""
    import multiprocessing

    saved = {name: os.environ.get(name) for name in THREAD_VARIABLES}
    os.environ.update(dict.fromkeys(THREAD_VARIABLES, "1"))
    try:
        return multiprocessing.get_context("spawn").Pool(workers)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _result(pending, utt_id: str, timeout_s: float = 600.0) -> dict:
    """The scores of a pooled utterance; a pool does not notice a dead worker, hence the timeout."""
    import multiprocessing

    try:
        return pending.get(timeout_s)
    except multiprocessing.TimeoutError:
        raise RuntimeError(
            f"{utt_id}: no scores from the scoring processes after {timeout_s:.0f} s (one may "
            "have died); score in line with scoring_processes=0."
        ) from None


def score_dataset(
    model: torch.nn.Module,
    dataset,
    ids: list[str],
    out_dir: Path,
    n_save_examples: int = 0,
    device: str = "cpu",
    progress: bool = True,
    scoring_processes: Optional[int] = 0,
    keep_residual: bool = True,
    shifts: int = 1,
) -> dict:
    """The evaluation loop: separate and score every item ``(mixture, sources, ...)`` of
    ``dataset``, write ``out_dir/metrics.csv`` and the first ``n_save_examples``
    examples; returns the means.
    ``scoring_processes``: see :func:`evaluate`; ``keep_residual``: see
    :func:`~asteroid_spmamba.levels.match_mixture` (``evaluate`` sets it from the task);
    ``shifts``: see :func:`evaluate`."""
    from tqdm import tqdm

    from ..inference.running import analysis_hop, shift_averaged
    from ..levels import match_mixture, remove_dc
    from ..scoring import best_permutation, score_utterance, write_scores_csv

    if len(ids) != len(dataset):
        raise ValueError(f"{len(ids)} utterance IDs for {len(dataset)} test items.")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} was asked for but CUDA is not available; use device='cpu'."
        )
    rate = int(model.sample_rate)
    was_training = model.training
    model = model.to(device).eval()
    separate = shift_averaged(model, shifts, analysis_hop(model))
    rows, separate_s, audio_s = [], 0.0, 0.0
    began = time.perf_counter()
    workers = scoring_workers(len(dataset)) if scoring_processes is None else int(scoring_processes)
    pool = scoring_pool(workers) if workers else None
    try:
        with torch.inference_mode():
            for index in tqdm(
                range(len(dataset)), desc="evaluating", unit="utt", disable=not progress
            ):
                item = dataset[index]
                mix, refs, utt_id = remove_dc(item[0].float()), item[1].float(), str(ids[index])
                t0 = time.perf_counter()
                est = separate(mix[None].to(device))[0]
                if str(device).startswith("cuda"):
                    torch.cuda.synchronize()
                separate_s += time.perf_counter() - t0
                audio_s += mix.shape[-1] / rate
                # scored as users get them: at the mixture's level, absent speakers silent
                est = match_mixture(est.float().cpu(), mix, keep_residual=keep_residual)[0]
                if est.shape != refs.shape:
                    raise ValueError(
                        f"{utt_id}: the model returned {tuple(est.shape)} for references "
                        f"{tuple(refs.shape)}."
                    )
                args = (mix.numpy(), refs.numpy(), est.numpy(), rate)
                rows.append(
                    (
                        utt_id,
                        score_utterance(*args)
                        if pool is None
                        else pool.apply_async(score_utterance, args),
                    )
                )
                if index < n_save_examples:
                    # one folder per utterance, estimates in the order of the references
                    folder = out_dir / "examples" / utt_id.replace("/", "_")
                    ordered = est[list(best_permutation(refs.numpy(), est.numpy()))]
                    write_wav_atomic(folder / "mixture.wav", mix.numpy(), rate)
                    for k in range(refs.shape[0]):
                        write_wav_atomic(folder / f"s{k + 1}.wav", refs[k].numpy(), rate)
                        write_wav_atomic(
                            folder / f"s{k + 1}_estimate.wav", ordered[k].numpy(), rate
                        )
        rows = [
            {
                "utt_id": utt_id,
                **{
                    k: float((scores if pool is None else _result(scores, utt_id))[k])
                    for k in METRIC_COLUMNS
                },
            }
            for utt_id, scores in rows
        ]
    finally:
        model.train(was_training)
        if pool is not None:
            pool.terminate()
    if not rows:
        raise ValueError("The test set is empty.")
    write_scores_csv(rows, out_dir / "metrics.csv")
    summary = {k: float(np.mean([r[k] for r in rows])) for k in METRIC_COLUMNS}
    summary.update(
        {
            "n_utterances": len(rows),
            "model": type(model).__name__,
            "n_parameters": count_parameters(model),
            "sample_rate": rate,
            "device": str(device),
            "rtf": separate_s / audio_s if audio_s else None,  # the separation alone
            "shifts": shifts,
            "scoring_processes": workers,
            "residual_to_outputs": keep_residual,
            "wall_time_s": round(time.perf_counter() - began, 1),
        }
    )
    return summary


def format_summary(summary: Mapping) -> str:
    """One-line, human-readable summary of :func:`evaluate`'s result."""
    return (
        f"{summary['model']} ({summary['n_parameters']:,} parameters) on {summary['n_utterances']} "
        f"test mixtures: SI-SNRi {summary['si_snr_i']:.2f} dB, SDRi {summary['sdr_i']:.2f} dB "
        f"(SI-SNR {summary['si_snr']:.2f} dB, SDR {summary['sdr']:.2f} dB)"
    )


def compare_experiments(
    root: PathLike, test_dir: Optional[PathLike] = None, reference: Optional[PathLike] = None
) -> str:
    """A table of every experiment ``root/<tag>/`` evaluated
    (``eval/summary.json``), best SI-SNRi first.

    With ``test_dir``, only the experiments scored on that test folder are listed. Training steps
    and wall time come from ``train_summary.json`` when present. ``reference`` is a YAML list of
    stored results (keys ``experiment, model, n_parameters, global_step, wall_time_s, si_snr_i,
    sdr_i, n_utterances, how``): those whose experiment is not under ``root`` are listed too, marked
    ``*``, so that a run of one model is printed beside the figure of a model not trained here.
    """
    root = Path(root)
    wanted = None if test_dir is None else str(Path(test_dir).absolute())
    rows = []
    for path in sorted(root.glob("*/eval/summary.json")):
        try:
            summary = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if wanted is not None and summary.get("test_dir") != wanted:
            continue
        exp = path.parent.parent
        try:
            trained = json.loads((exp / "train_summary.json").read_text())
        except (OSError, ValueError):
            trained = {}
        rows.append((exp.name, summary, trained))
    stored = _reference_rows(reference, {name for name, _, _ in rows}) if reference else []
    if not rows and not stored:
        return f"No evaluated experiment under {root}."
    rows += [(f"{r['experiment']}*", r, r) for r in stored]
    rows.sort(key=lambda r: -r[1]["si_snr_i"])
    lines = [
        f"{'experiment':<20} {'model':<12} {'params':>9} {'steps':>6} {'train s':>8} "
        f"{'SI-SNRi':>8} {'SDRi':>7} {'utts':>5}"
    ]
    cut = [name for name, _, t in rows if t.get("cut_short")]
    for name, s, t in rows:
        steps = f"{t.get('global_step', '')}{'!' if name in cut else ''}"
        wall = t.get("total_wall_time_s", t.get("wall_time_s", ""))
        lines.append(
            f"{name:<20} {s['model']:<12} {s['n_parameters']:>9,} {steps:>6} {wall!s:>8} "
            f"{s['si_snr_i']:>8.2f} {s['sdr_i']:>7.2f} {s['n_utterances']:>5}"
        )
    if cut:
        lines.append(
            f"! CUT SHORT: training.max_time stopped {', '.join(cut)} before training.max_steps "
            "(a busy or slow machine); not comparable with full runs"
        )
    for r in stored:
        lines.append(
            f"* {r['experiment']}: not run here; stored figure from {reference}"
            + (f" (to run it: {r['how']})" if r.get("how") else "")
        )
    return "\n".join(lines)


def _reference_rows(path: PathLike, present: set) -> list[dict]:
    """The stored results of ``path`` (see :func:`compare_experiments`) not among ``present``."""
    try:
        entries = yaml_load(Path(path).read_text())
    except OSError as err:
        raise FileNotFoundError(f"Reference results {path} cannot be read ({err}).") from None
    needed = ("experiment", "model", "n_parameters", "si_snr_i", "sdr_i", "n_utterances")
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ValueError(f"Reference results {path}: expected a YAML list of mappings.")
    for entry in entries:
        missing = [key for key in needed if key not in entry]
        if missing:
            raise ValueError(
                f"Reference results {path}: entry {entry.get('experiment', entry)!r} lacks "
                f"{missing}."
            )
    return [e for e in entries if e["experiment"] not in present]
