"""Deprecated: the recipes train and evaluate with :mod:`asteroid_spmamba.training`
(``asteroid-spmamba train`` / ``asteroid-spmamba evaluate``), whose configuration holds what the
``recipe:`` section held (``data.dataset``, ``data.task``, ``model.preset``, ``loss``)."""

import copy
import sys
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, Optional

from ..training import config as _config
from ..training.config import LOSSES  # noqa: F401
from ..training.datasets import DATASETS as _DATASETS
from ..training.fit import is_main_process, train  # noqa: F401

warnings.warn(
    "asteroid_spmamba.recipes.training is deprecated; use asteroid_spmamba.training.",
    DeprecationWarning,
    stacklevel=2,
)

DATASETS = tuple(_DATASETS)
RECIPE_DEFAULTS: dict[str, Any] = {
    "dataset": "echo2mix",
    "task": None,
    "model_preset": None,
    "zoo_model": None,
    "zoo_preset": "echo2mix",
    "loss": {"train": "pairwise_neg_sisdr", "val": "pairwise_neg_sisdr"},
}


def split_conf(conf: Mapping) -> tuple[dict, dict]:
    """``(configuration without its recipe section, recipe section)`` (defaults filled in)."""
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


def prepare_engine_conf(conf: Mapping) -> tuple[dict, dict]:
    """``(configuration with its model resolved, recipe view: dataset, task, loss)``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        conf = _config.resolve_model(_config.upgrade_legacy(conf))
    data = conf.get("data") or {}
    recipe = {
        **copy.deepcopy(RECIPE_DEFAULTS),
        "dataset": data.get("dataset", "echo2mix"),
        "task": data.get("task"),
        "loss": {**RECIPE_DEFAULTS["loss"], **(conf.get("loss") or {})},
    }
    return conf, recipe


def evaluate(
    exp_dir,
    test_dir=None,
    out_dir=None,
    n_save_examples: int = 0,
    device: str = "cpu",
    show_progress: bool = True,
) -> dict:
    from ..training.evaluate import evaluate as _evaluate

    return _evaluate(exp_dir, test_dir, out_dir, n_save_examples, device, progress=show_progress)


def train_main(argv: Optional[Sequence[str]] = None, description: str = "") -> int:
    from ..cli import main

    return main(["train", *(sys.argv[1:] if argv is None else argv)])


def eval_main(argv: Optional[Sequence[str]] = None, description: str = "") -> int:
    from ..cli import main

    return main(["evaluate", *(sys.argv[1:] if argv is None else argv)])
