"""The recipes' ``train.py`` and ``eval.py``: dataset-specific glue over :mod:`asteroid_spmamba.engine`.

A recipe configuration is the engine's (``model``, ``data``, ``training``, ``optim``, ``scheduler``;
see :data:`asteroid_spmamba.engine.DEFAULT_CONF`) plus a ``recipe`` section that the engine does not
read::

    recipe:
      dataset: wsj0-2mix          # echo2mix | synthetic | librimix | wsj0-2mix | wham
      task: sep_clean             # LibriMix / WHAM! task (Asteroid's task names)
      model_preset: wsj0-2mix     # SPMamba.from_preset(...): the authors' configuration for the dataset;
                                  # model.args override it
      loss: {train: pairwise_neg_snr, val: pairwise_neg_sisdr}   # PIT losses (asteroid.losses names)

:func:`train` splits the two, resolves the model arguments, builds the dataset classes (Asteroid's
``LibriMix``, ``Wsj0mixDataset``, ``WhamDataset``; this package's ``Echo2MixDataset`` through the
engine) and calls :func:`asteroid_spmamba.engine.train`. The ``recipe`` section is saved as
``exp_dir/recipe.yml`` so that :func:`evaluate` knows how to read the test set.

Evaluation writes the engine's files (``eval/metrics.csv``: ``utt_id, sdr, sdr_i, si_snr, si_snr_i``;
``eval/summary.json``: their means), with the Echo2Mix layout scored by
:func:`asteroid_spmamba.engine.evaluate` and the other datasets by :func:`evaluate_dataset`.
"""
import argparse
import copy
import json
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch
import yaml

from ..cli import add_device_argument, resolve_device
from .common import PathLike, write_atomic, write_text_atomic

DATASETS = ("echo2mix", "synthetic", "librimix", "wsj0-2mix", "wham")
RECIPE_DEFAULTS: Dict[str, Any] = {
    "dataset": "echo2mix",
    "task": None,
    "model_preset": None,
    "zoo_model": None,
    "zoo_preset": "echo2mix",
    "loss": {"train": "pairwise_neg_sisdr", "val": "pairwise_neg_sisdr"},
}
# Training losses the recipes accept (asteroid.losses pairwise functions, with PITLossWrapper).
LOSSES = ("pairwise_neg_snr", "pairwise_neg_sisdr", "pairwise_neg_sdsdr")


# --------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------
def split_conf(conf: Mapping) -> Tuple[dict, dict]:
    """``(engine configuration, recipe section)`` of a recipe configuration (defaults filled in)."""
    conf = copy.deepcopy(dict(conf))
    recipe = {**copy.deepcopy(RECIPE_DEFAULTS), **(conf.pop("recipe", None) or {})}
    unknown = sorted(set(recipe) - set(RECIPE_DEFAULTS))
    if unknown:
        raise ValueError(f"Unknown recipe key(s) {unknown}; known: {sorted(RECIPE_DEFAULTS)}.")
    if recipe["dataset"] not in DATASETS:
        raise ValueError(f"recipe.dataset must be one of {DATASETS}, got {recipe['dataset']!r}.")
    loss = {**RECIPE_DEFAULTS["loss"], **(recipe.get("loss") or {})}
    for stage, name in loss.items():
        if name not in LOSSES:
            raise ValueError(f"recipe.loss.{stage} must be one of {LOSSES}, got {name!r}.")
    recipe["loss"] = loss
    return conf, recipe


def resolve_model(conf: dict, recipe: Mapping) -> dict:
    """Fill ``conf['model']`` from ``recipe.model_preset`` (SPMamba) or ``recipe.zoo_model`` (zoo rows).

    ``model.args`` of the configuration override the preset; the result holds every constructor
    argument of the model (its ``get_model_args()``), so ``exp_dir/conf.yml`` is self-contained.
    """
    conf = copy.deepcopy(conf)
    model = conf.setdefault("model", {})
    overrides = dict(model.get("args") or {})
    if recipe.get("model_preset") and recipe.get("zoo_model"):
        raise ValueError("Set recipe.model_preset (SPMamba presets) or recipe.zoo_model, not both.")
    if recipe.get("model_preset"):
        from ..models.spmamba import CAUSAL_PRESETS, PRESETS, SPMamba

        key = str(recipe["model_preset"]).lower().replace("_", "-")
        if key not in {**PRESETS, **CAUSAL_PRESETS}:
            raise ValueError(f"Unknown SPMamba preset {recipe['model_preset']!r}; choose one of "
                             f"{sorted({**PRESETS, **CAUSAL_PRESETS})}.")
        if model.get("name", "SPMamba") != "SPMamba":
            raise ValueError(f"recipe.model_preset is an SPMamba preset, but model.name is {model['name']!r}.")
        model["name"] = "SPMamba"
        with torch.device("meta"):
            built = SPMamba.from_preset(key, **overrides)
        model["args"] = dict(built.get_model_args())
    elif recipe.get("zoo_model"):
        from .. import zoo

        cls = zoo.model_class(recipe["zoo_model"])
        args = {**zoo.config(recipe["zoo_model"], recipe.get("zoo_preset") or "echo2mix"), **overrides}
        with torch.device("meta"):
            built = cls(**args)
        model["name"] = cls.__name__
        model["args"] = dict(built.get_model_args())
    data = conf.setdefault("data", {})
    rate = model.get("args", {}).get("sample_rate")
    if rate is not None and "sample_rate" not in data:
        data["sample_rate"] = int(rate)
    return conf


def _engine():
    from .. import engine

    return engine


def engine_supports(section: str) -> bool:
    """Whether the engine's configuration has a top-level ``section`` (e.g. ``loss``)."""
    return section in _engine().DEFAULT_CONF


# --------------------------------------------------------------------------------------------
# Datasets
# --------------------------------------------------------------------------------------------
def build_split(recipe: Mapping, data: Mapping, split_dir: PathLike, segment: Optional[float]):
    """The dataset of one split (``segment=None``: whole utterances); ``None`` for the Echo2Mix layout."""
    kind = recipe["dataset"]
    rate, n_src = int(data["sample_rate"]), int(data.get("n_src", 2))
    if kind in ("echo2mix", "synthetic"):
        return None
    if kind == "librimix":
        from .librimix import build_dataset

        return build_dataset(split_dir, recipe.get("task") or "sep_clean", rate, n_src, segment)
    if kind == "wsj0-2mix":
        from .wsj0mix import build_dataset

        return build_dataset(split_dir, n_src, rate, segment)
    if kind == "wham":
        from .wham import build_dataset

        return build_dataset(split_dir, recipe.get("task") or "sep_noisy", rate, segment)
    raise ValueError(f"Unknown recipe.dataset {kind!r}; choose one of {DATASETS}.")


def utterance_ids(recipe: Mapping, dataset) -> List[str]:
    kind = recipe["dataset"]
    if kind == "librimix":
        from .librimix import utterance_ids as ids
    elif kind == "wsj0-2mix":
        from .wsj0mix import utterance_ids as ids
    elif kind == "wham":
        from .wham import utterance_ids as ids
    else:
        raise ValueError(f"No utterance IDs for recipe.dataset {kind!r}.")
    return ids(dataset)


def _require(path: Optional[str], what: str) -> str:
    if not path:
        raise ValueError(f"data.{what}_dir is not set; run stage 0 (data preparation) and check local/conf.yml.")
    return path


def make_datasets(recipe: Mapping, data: Mapping):
    """Training and validation datasets, or ``(None, None)`` to let the engine read the Echo2Mix layout."""
    if recipe["dataset"] in ("echo2mix", "synthetic"):
        return None, None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        train = build_split(recipe, data, _require(data.get("train_dir"), "train"), data.get("segment"))
        valid = build_split(recipe, data, _require(data.get("valid_dir"), "valid"), data.get("valid_segment"))
    return train, valid


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------
def prepare_engine_conf(conf: Mapping) -> Tuple[dict, dict]:
    """Split a recipe configuration and resolve its model: ``(engine conf, recipe section)``."""
    engine_conf, recipe = split_conf(conf)
    engine_conf = resolve_model(engine_conf, recipe)
    if engine_supports("loss"):
        engine_conf["loss"] = dict(recipe["loss"])
    elif recipe["loss"]["train"] != "pairwise_neg_sisdr" or recipe["loss"]["val"] != "pairwise_neg_sisdr":
        warnings.warn(
            f"recipe.loss asks for {recipe['loss']}, but this engine trains and validates with PIT "
            "negative SI-SDR only (no 'loss' section in engine.DEFAULT_CONF); training uses neg-SI-SDR.",
            stacklevel=2,
        )
    return engine_conf, recipe


def train(conf: Mapping, exp_dir: PathLike) -> dict:
    """Train the recipe configuration ``conf`` into ``exp_dir``; returns the engine's training summary."""
    engine = _engine()
    engine_conf, recipe = prepare_engine_conf(conf)
    full = engine.complete_conf(engine_conf)
    train_set, valid_set = make_datasets(recipe, full["data"])
    if train_set is None:
        train_set, valid_set = engine.make_datasets(full["data"])
    exp_dir = Path(exp_dir)
    exp_dir.mkdir(parents=True, exist_ok=True)
    if is_main_process():
        recipe_out = {**recipe, "n_train": len(train_set), "n_valid": len(valid_set)}
        write_text_atomic(exp_dir / "recipe.yml", yaml.safe_dump(recipe_out, sort_keys=False))
    return engine.train(engine_conf, exp_dir, train_set=train_set, valid_set=valid_set)


def is_main_process() -> bool:
    """False in the extra processes that Lightning's DDP launcher starts (they re-run the script)."""
    return int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0")) or 0) == 0


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    _engine().add_training_arguments(parser)


def train_main(argv: Optional[Sequence[str]] = None, description: str = "") -> int:
    """``train.py`` of a recipe: the engine's training flags on a recipe configuration."""
    engine = _engine()
    parser = argparse.ArgumentParser(description=description or __doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_train_arguments(parser)
    args = parser.parse_args(argv)
    try:
        conf = engine.conf_from_args(args)
        summary = train(conf, args.exp_dir)
    except (FileNotFoundError, ValueError, TypeError, ImportError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    best = summary.get("best_val_loss")
    print(f"Trained {summary['model']} ({summary['n_parameters']:,} parameters): {summary['global_step']} steps "
          f"in {summary['wall_time_s']:.0f} s; best val loss {best if best is None else round(best, 3)}. "
          f"Model: {Path(args.exp_dir) / 'best_model.pth'}")
    return 0


# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------
def read_exp(exp_dir: PathLike) -> Tuple[dict, dict]:
    """``(conf.yml, recipe.yml)`` of an experiment folder (recipe defaults when absent)."""
    exp_dir = Path(exp_dir)
    conf_path = exp_dir / "conf.yml"
    if not conf_path.is_file():
        raise FileNotFoundError(f"{conf_path} does not exist; train the model first (stage 1 of the recipe).")
    conf = yaml.safe_load(conf_path.read_text()) or {}
    recipe_path = exp_dir / "recipe.yml"
    recipe = yaml.safe_load(recipe_path.read_text()) if recipe_path.is_file() else {}
    return conf, {**RECIPE_DEFAULTS, **(recipe or {})}


def _write_wav(path: Path, wav: np.ndarray, rate: int) -> None:
    import soundfile as sf

    write_atomic(path, lambda p: sf.write(str(p), wav, rate, subtype="FLOAT", format="WAV"))


def evaluate_dataset(model: torch.nn.Module, dataset, ids: Sequence[str], out_dir: PathLike,
                     test_dir: Optional[PathLike] = None, n_save_examples: int = 0, device: str = "cpu",
                     show_progress: bool = True, verbose: bool = True, source: str = "") -> dict:
    """Separate and score every item ``(mixture, sources)`` of ``dataset``, as the engine's ``evaluate``.

    Writes ``out_dir/metrics.csv`` (one row per utterance) and ``out_dir/summary.json`` (means,
    number of utterances, model, parameters, test folder, wall time and the real-time factor of the
    separation alone).
    """
    from tqdm import tqdm

    from ..scoring import METRICS, best_permutation, score_utterance, write_scores_csv

    if len(ids) != len(dataset):
        raise ValueError(f"{len(ids)} utterance IDs for {len(dataset)} test items.")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' was asked for but CUDA is not available; use device='cpu'.")
    out_dir = Path(out_dir)
    rate = int(model.sample_rate)
    was_training = model.training
    model = model.to(device).eval()
    rows, separate_s, audio_s = [], 0.0, 0.0
    began = time.perf_counter()
    try:
        with torch.inference_mode():
            for index in tqdm(range(len(dataset)), desc="evaluating", unit="utt", disable=not show_progress):
                item = dataset[index]
                mix, refs = item[0].float(), item[1].float()
                t0 = time.perf_counter()
                est = model(mix[None].to(device))[0]
                if device == "cuda":
                    torch.cuda.synchronize()
                separate_s += time.perf_counter() - t0
                audio_s += mix.shape[-1] / rate
                est = est.float().cpu()
                if est.shape != refs.shape:
                    raise ValueError(f"{ids[index]}: the model returned {tuple(est.shape)} for references "
                                     f"{tuple(refs.shape)}.")
                scores = score_utterance(mix, refs, est, rate)
                rows.append({"utt_id": ids[index], **{k: float(scores[k]) for k in METRICS}})
                if index < n_save_examples:
                    folder = out_dir / "examples" / str(ids[index]).replace("/", "_")
                    ordered = est[list(best_permutation(refs.numpy(), est.numpy()))]
                    _write_wav(folder / "mixture.wav", mix.numpy(), rate)
                    for k in range(refs.shape[0]):
                        _write_wav(folder / f"s{k + 1}.wav", refs[k].numpy(), rate)
                        _write_wav(folder / f"s{k + 1}_estimate.wav", ordered[k].numpy(), rate)
    finally:
        model.train(was_training)
    if not rows:
        raise ValueError("The test set is empty.")
    write_scores_csv(rows, out_dir / "metrics.csv")
    summary = {k: float(np.mean([r[k] for r in rows])) for k in METRICS}
    summary.update({
        "n_utterances": len(rows),
        "model": type(model).__name__,
        "n_parameters": int(sum(p.numel() for p in model.parameters())),
        "source": source,
        "test_dir": str(Path(test_dir).absolute()) if test_dir is not None else None,
        "sample_rate": rate,
        "device": device,
        "rtf": separate_s / audio_s if audio_s else None,
        "wall_time_s": round(time.perf_counter() - began, 1),
    })
    write_text_atomic(out_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
    if verbose:
        print(_engine().format_summary(summary))
        print(f"Per-utterance scores: {out_dir / 'metrics.csv'}; summary: {out_dir / 'summary.json'}")
    return summary


def evaluate(exp_dir: PathLike, test_dir: Optional[PathLike] = None, out_dir: Optional[PathLike] = None,
             n_save_examples: int = 0, device: str = "cpu", show_progress: bool = True) -> dict:
    """Score the best model of ``exp_dir`` on its test split (``data.test_dir`` unless ``test_dir``)."""
    engine = _engine()
    exp_dir = Path(exp_dir)
    conf, recipe = read_exp(exp_dir)
    data = engine.complete_conf(conf)["data"]
    test_dir = test_dir or data.get("test_dir")
    if not test_dir:
        raise ValueError(f"No test folder: give --test_dir or set data.test_dir in {exp_dir / 'conf.yml'}.")
    out_dir = Path(out_dir) if out_dir else exp_dir / "eval"
    if recipe["dataset"] in ("echo2mix", "synthetic"):
        return engine.evaluate(exp_dir, test_dir, out_dir, n_save_examples, device, progress=show_progress)
    model = engine.load_trained_model(exp_dir)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        dataset = build_split(recipe, data, test_dir, None)
    return evaluate_dataset(model, dataset, utterance_ids(recipe, dataset), out_dir, test_dir, n_save_examples,
                            device, show_progress, source=str(exp_dir))


def eval_main(argv: Optional[Sequence[str]] = None, description: str = "") -> int:
    """``eval.py`` of a recipe: score an experiment on its test split and compare experiments."""
    engine = _engine()
    parser = argparse.ArgumentParser(description=description or "Score a trained recipe experiment.")
    parser.add_argument("exp_dir", help="experiment folder (exp/<tag>) holding best_model.pth, conf.yml, recipe.yml")
    parser.add_argument("--test_dir", "--test-dir", default=None, help="test split (default: data.test_dir)")
    parser.add_argument("--out_dir", "--out-dir", default=None, help="output folder (default: EXP_DIR/eval)")
    parser.add_argument("--n_save_examples", "--n-save-examples", type=int, default=0,
                        help="write the wavs of the first N utterances")
    add_device_argument(parser)
    parser.add_argument("--compare_dir", "--compare-dir", default=None,
                        help="print every experiment under this folder evaluated on the same test split")
    parser.add_argument("--no_progress_bar", "--no-progress-bar", action="store_true")
    args = parser.parse_args(argv)
    try:
        summary = evaluate(args.exp_dir, args.test_dir, args.out_dir, args.n_save_examples,
                           str(resolve_device(args.device)),
                           show_progress=not args.no_progress_bar)
    except (FileNotFoundError, ValueError, TypeError, ImportError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if args.compare_dir:
        print(engine.compare_experiments(args.compare_dir, test_dir=summary.get("test_dir")))
    return 0
