"""Deprecated: the training engine is :mod:`asteroid_spmamba.training`.

Every name of this module still imports from here (with a DeprecationWarning): ``train``,
``evaluate``, ``complete_conf``, ``DEFAULT_CONF``, ``compare_experiments``, ``build_model``, ...
"""

import importlib
import warnings

_WHERE = {
    "config": (
        "DEFAULT_CONF",
        "SCHEDULERS",
        "PathLike",
        "apply_overrides",
        "complete_conf",
        "load_conf",
        "save_conf",
    ),
    "datasets": ("make_datasets",),
    "system": (
        "MIXED_PRECISIONS",
        "_budget_progress",
        "_budget_timer",
        "_cuda_graphs_callback",
        "_cut_short",
        "_init_weights",
        "_last_validated_step_callback",
        "_linear_decay_callback",
        "_make_optimizer",
        "_pit_loss",
        "_system_class",
        "apply_training_paths",
        "build_model",
        "count_parameters",
    ),
    "fit": ("_accelerator", "_check_resumable", "_max_time", "export_best_model", "train"),
    "evaluate": (
        "METRIC_COLUMNS",
        "compare_experiments",
        "evaluate",
        "format_summary",
        "load_trained_model",
    ),
    "cli": (
        "add_evaluation_arguments",
        "add_training_arguments",
        "conf_from_args",
        "evaluate_main",
        "train_main",
    ),
}
_MODULE_OF = {name: module for module, names in _WHERE.items() for name in names}

warnings.warn(
    "asteroid_spmamba.engine is deprecated; use asteroid_spmamba.training.",
    DeprecationWarning,
    stacklevel=2,
)


def __getattr__(name: str):
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"asteroid_spmamba.training.{_MODULE_OF[name]}"), name)


def __dir__():
    return sorted(_MODULE_OF)
