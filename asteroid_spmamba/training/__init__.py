"""Training and evaluation: one configuration dialect, one Lightning system, one evaluation loop.

* :mod:`.config`: the YAML configuration (``model``, ``data``, ``training``, ``trainer``, ``loss``,
  ``optim``, ``scheduler``), its defaults and ``section.key=value`` overrides;
* :mod:`.datasets`: the datasets by ``data.dataset`` name (Echo2Mix, the synthetic corpus, LibriMix,
  WSJ0-2mix, WHAM!);
* :mod:`.system`: the Lightning system, PIT losses, optimizer, schedules and callbacks;
* :mod:`.fit`: :func:`train`, a configuration in, an experiment folder out;
* :mod:`.evaluate`: :func:`evaluate` and :func:`compare_experiments`;
* ``asteroid-spmamba train`` and ``asteroid-spmamba evaluate`` (stages 1 and 2 of every recipe) are
  :mod:`asteroid_spmamba.commands.train`.

::

    from asteroid_spmamba import training
    conf = training.load_conf("egs/mini/local/conf.yml", ["training.max_steps=10"])
    training.train({**conf, "data": {**conf["data"], "root": "data/corpus"}}, "exp/spmamba")
    training.evaluate("exp/spmamba")
"""

from .config import DEFAULT_CONF, apply_overrides, complete_conf, load_conf
from .datasets import DATASETS
from .evaluate import (
    METRIC_COLUMNS,
    compare_experiments,
    evaluate,
    format_summary,
    load_trained_model,
)
from .fit import train
from .system import build_model

__all__ = [
    "DEFAULT_CONF",
    "DATASETS",
    "METRIC_COLUMNS",
    "apply_overrides",
    "build_model",
    "compare_experiments",
    "complete_conf",
    "evaluate",
    "format_summary",
    "load_conf",
    "load_trained_model",
    "train",
]
