"""The training configuration: one YAML dialect for the Python API,
``asteroid-spmamba train`` and every recipe.

::

    model:     {name: SPMamba, preset: wham, args: {...}}  any model registered with asteroid.models
                                                 (importing asteroid_spmamba registers ours);
                                                 preset: the model's own preset
                                                 (SPMamba.from_preset) or, for a row of the
                                                 paper's table (name: dprnn, ...), its zoo
                                                 preset; args override the preset
    data:      {dataset, task, root, train_dir, valid_dir, test_dir, sample_rate, n_src, segment,
                valid_segment, short_utterances, dynamic_mixing, speed_perturb,
                single_speaker_share}
                                                 dataset: a name of training.datasets.DATASETS
    training:  {batch_size, max_epochs, max_steps, max_time, gpus, cpu_processes, precision,
                accumulate_grad_batches, gradient_clip_val, early_stop_patience, seed, fast_paths,
                activation_checkpointing, cuda_graphs, tensorboard, ...}
    trainer:   {...}                             passed as they are to Lightning's Trainer
    loss:      {train, val}                      PIT losses by their asteroid.losses names
    optim:     {optimizer: adam, lr, weight_decay, fused}
    scheduler: {name: plateau, factor, patience, min_lr}    ReduceLROnPlateau on the validation loss
               {name: linear_decay, warmup_steps, final_factor, decay_start}   budget schedule
               or null for a constant learning rate

Every key is optional; :func:`complete_conf` fills in :data:`DEFAULT_CONF` and refuses unknown keys
(typos). ``section.key=value`` overrides (``--set``) are parsed as YAML.
"""

import copy
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Optional, Union

import torch
import yaml

from ..files import write_text_atomic

PathLike = Union[str, os.PathLike]

DEFAULT_CONF: dict[str, Any] = {
    "model": {"name": "SPMamba", "preset": None, "args": {}},
    "data": {
        "dataset": "echo2mix",  # see training.datasets.DATASETS
        "task": None,  # LibriMix / WHAM! task (Asteroid's names); None: the dataset's default
        "root": None,  # corpus folder holding train/, valid/, test/ (Echo2Mix layout)
        "train_dir": None,  # default: <root>/train
        "valid_dir": None,  # default: <root>/valid
        "test_dir": None,  # default: <root>/test
        "sample_rate": 8000,
        "n_src": 2,
        "segment": 3.0,  # training excerpt length in seconds
        "valid_segment": None,  # None: whole validation mixtures, one at a time
        "short_utterances": "drop",  # training mixtures shorter than segment: "drop" or zero-"pad"
        "dynamic_mixing": False,  # train on new mixtures of sources from different utterances
        "speed_perturb": None,  # e.g. [0.9, 1.1]: each training source resampled by a random factor
        "single_speaker_share": 0.0,  # dynamic mixing: share of training mixtures with one talker,
        # the other targets silent (needs a loss defined for them: mixture_fit_snr)
    },
    "training": {
        "batch_size": 4,
        "valid_batch_size": None,  # default: batch_size with valid_segment, else 1
        "num_workers": 0,
        "max_epochs": 50,
        "max_steps": -1,  # -1: no limit
        "max_time": None,  # seconds (number) or "DD:HH:MM:SS"; None: no limit
        "early_stop_patience": 10,  # epochs without improvement; None disables early stopping
        "gradient_clip_val": 5.0,
        "accumulate_grad_batches": 1,
        "gpus": 0,  # 0: CPU
        "cpu_processes": 1,  # gpus=0: data-parallel training processes (DDP
        # over gloo), threads split
        "precision": "32-true",  # e.g. "bf16-mixed" on recent GPUs
        "fast_paths": True,  # GridNet models: the fast paths of masknn.gridnet.set_fast_paths
        # (false: plain)
        "activation_checkpointing": False,  # GridNet models: recompute each
        # block in the backward pass
        "cuda_graphs": False,  # one GPU: replay the training forward/backward as
        # CUDA graphs (fixed shapes)
        "seed": 0,
        "deterministic": False,
        "limit_train_batches": None,
        "limit_val_batches": None,
        "num_sanity_val_steps": 1,
        "log_every_n_steps": 10,
        "save_top_k": 1,
        "snapshot_every_s": None,  # seconds of training: write the weights to snapshots/ for a
        # learning curve against training time (and at the end)
        "checkpoint_every_n_steps": None,  # also write last.ckpt every N steps (long epochs: a
        # killed run resumes from there, exactly; by default only after each validation)
        "progress_bar": True,
        "tensorboard": True,  # TensorBoard events beside the CSV logs (exp_dir/logs/version_N/),
        # where installed
        "resume": True,  # continue from <exp_dir>/checkpoints/last.ckpt when it exists
        "init_from": None,  # start from these weights (a shipped model's name, a best_model.pth,
        # a save_pretrained folder): training continued on another machine
    },
    # Any other keyword of pytorch_lightning.Trainer (check_val_every_n_epoch, benchmark, ...); the
    # keys that the training section sets cannot be given here too.
    "trainer": {},
    # PIT losses by their asteroid.losses names (pit_from="pw_mtx"); the authors train SPMamba with
    # negative SNR and select on negative SI-SDR. "mixture_fit_snr": the estimates fitted to the
    # mixture as at inference, then a thresholded SNR defined for silent targets
    # (levels.MixtureFitLoss).
    "loss": {"train": "pairwise_neg_sisdr", "val": "pairwise_neg_sisdr"},
    # fused: torch's single-kernel update where the optimizer has one (Adam, AdamW): the same
    # update, 5x faster than the per-parameter loop for a small model on a CPU; "auto" leaves it off
    # under mixed precision (16-mixed, bf16-mixed) with gradient clipping, which
    # Lightning refuses for it
    "optim": {"optimizer": "adam", "lr": 1e-3, "weight_decay": 0.0, "fused": "auto"},
    # name: "plateau" (ReduceLROnPlateau: factor, patience, min_lr) or "linear_decay" (warmup_steps,
    # final_factor, decay_start); the keys of the other schedule are ignored
    "scheduler": {
        "name": "plateau",
        "factor": 0.5,
        "patience": 5,
        "min_lr": 1e-6,
        "warmup_steps": 0,
        "final_factor": 0.0,
        "decay_start": 0.0,
    },
}
SCHEDULERS = ("plateau", "linear_decay")
LOSSES = ("pairwise_neg_snr", "pairwise_neg_sisdr", "pairwise_neg_sdsdr", "mixture_fit_snr")
FREE_FORM = ("args", "trainer")  # sections whose keys belong to someone else (a model, Lightning)


class _YamlLoader(yaml.SafeLoader):
    """Safe YAML loader that also reads ``1e-3`` as a float (YAML 1.1 wants ``1.0e-3``)."""


_YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                    |\.[0-9_]+(?:[eE][-+][0-9]+)?
                    |[-+]?\.(?:inf|Inf|INF)
                    |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def yaml_load(text):
    return yaml.load(text, Loader=_YamlLoader)


def _merge(defaults: Mapping, conf: Mapping, where: str, strict: bool) -> dict:
    out = copy.deepcopy(dict(defaults))
    for key, value in conf.items():
        if strict and key not in defaults:
            raise ValueError(
                f"Unknown configuration key {where}{key!r}; known keys: "
                f"{sorted(defaults)}. Check its spelling."
            )
        if isinstance(out.get(key), dict) and isinstance(value, Mapping):
            out[key] = _merge(out[key], value, f"{where}{key}.", strict and key not in FREE_FORM)
        else:
            out[key] = copy.deepcopy(value)
    return out


def resolve_model(conf: Mapping) -> dict:
    """``model.preset`` resolved into ``model.args``: every constructor argument of the model.

    The preset is the model class's own (``SPMamba.from_preset``) or, for a row name of the paper's
    table (``model.name: dprnn``), that row's configuration (:func:`asteroid_spmamba.zoo.config`);
    ``model.args`` override it. The result names the class (``model.name: DPRNNTasNet``) and holds
    its ``get_model_args()``, so ``exp_dir/conf.yml`` is self-contained. ``data.sample_rate``
    defaults to the model's.
    """
    from .. import zoo
    from ..models.registry import model_class

    conf = copy.deepcopy(dict(conf))
    model = conf.setdefault("model", {})
    preset, overrides = model.get("preset"), dict(model.get("args") or {})
    name = model.get("name", DEFAULT_CONF["model"]["name"])
    if name in zoo.names():  # a row of the paper's table
        cls = model_class(name)
        args = {**zoo.config(name, preset or "echo2mix"), **overrides}
        with torch.device("meta"):
            built = cls(**args)
    elif preset:
        cls = model_class(name)
        if not hasattr(cls, "from_preset"):
            raise ValueError(
                f"model.preset: {name} has no presets; remove model.preset or use a zoo row name."
            )
        with torch.device("meta"):
            built = cls.from_preset(str(preset).lower().replace("_", "-"), **overrides)
    else:
        return conf
    model.update(name=type(built).__name__, preset=None, args=dict(built.get_model_args()))
    rate = model["args"].get("sample_rate")
    data = conf.setdefault("data", {})
    if rate is not None and "sample_rate" not in data:
        data["sample_rate"] = int(rate)
    return conf


def complete_conf(conf: Optional[Mapping] = None) -> dict:
    """``conf`` in today's dialect, its model preset resolved, merged onto :data:`DEFAULT_CONF`,
    with the data folders and sample rate resolved.

    Raises:
        ValueError: an unknown key (a typo), an unknown dataset or loss, or a model whose
            ``sample_rate``/``n_src`` contradicts the data section.
    """
    from .datasets import DATASETS

    conf = resolve_model(conf or {})
    scheduler_off = "scheduler" in conf and conf["scheduler"] is None
    if scheduler_off:
        conf.pop("scheduler")
    out = _merge(DEFAULT_CONF, conf, "", True)
    if scheduler_off:
        out["scheduler"] = None
    if not isinstance(out["model"].get("name"), str):
        raise ValueError("model.name must be a model name such as 'SPMamba' or 'ConvTasNet'.")
    data = out["data"]
    if data["dataset"] not in DATASETS:
        raise ValueError(f"data.dataset must be one of {tuple(DATASETS)}, got {data['dataset']!r}.")
    for stage, name in out["loss"].items():
        if name not in LOSSES:
            raise ValueError(f"loss.{stage} must be one of {LOSSES}, got {name!r}.")
    share = float(data.get("single_speaker_share") or 0.0)
    if share:
        if (
            not 0.0 <= share <= 1.0
            or not data["dynamic_mixing"]
            or data["dataset"] not in ("echo2mix", "synthetic")
        ):
            raise ValueError(
                f"data.single_speaker_share={share} needs 0 <= share <= 1, data.dynamic_mixing: "
                "true and an echo2mix or synthetic dataset."
            )
        if out["loss"]["train"] != "mixture_fit_snr":
            raise ValueError(
                f"data.single_speaker_share={share} gives training mixtures with silent targets, "
                f"for which loss.train={out['loss']['train']!r} is undefined; set "
                "loss.train: mixture_fit_snr."
            )
    for split in ("train", "valid", "test"):
        if data[f"{split}_dir"] is None and data["root"] is not None:
            data[f"{split}_dir"] = str(Path(data["root"]) / split)
    args = out["model"]["args"] = dict(out["model"].get("args") or {})
    for key in ("sample_rate", "n_src"):
        if key not in args:
            args[key] = data[key]
        elif float(args[key]) != float(data[key]):
            raise ValueError(
                f"model.args.{key} ({args[key]}) differs from data.{key} "
                f"({data[key]}); make them equal."
            )
    return out


def load_conf(path: PathLike, overrides: Sequence[str] = ()) -> dict:
    """Read a YAML configuration and apply ``section.key=value`` overrides
    (values parsed as YAML)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Configuration file {path} does not exist.")
    with open(path) as f:
        conf = yaml_load(f) or {}
    if not isinstance(conf, dict):
        raise ValueError(f"{path} must hold a YAML mapping (model:, data:, training:, ...).")
    return apply_overrides(conf, overrides)


def apply_overrides(conf: Mapping, overrides: Sequence[str]) -> dict:
    """Set ``a.b.c=value`` entries in a copy of ``conf`` (``value`` is parsed as YAML:
    3, 1e-3, null, [1, 2])."""
    conf = copy.deepcopy(dict(conf))
    for item in overrides:
        if "=" not in item:
            raise ValueError(
                f"Override {item!r} must look like section.key=value (e.g. training.max_steps=100)."
            )
        dotted, raw = item.split("=", 1)
        keys = dotted.strip().split(".")
        node = conf
        for key in keys[:-1]:
            if node.get(key) is None:
                node[key] = {}
            if not isinstance(node[key], dict):
                raise ValueError(f"Override {item!r}: {key!r} is not a section.")
            node = node[key]
        node[keys[-1]] = yaml_load(raw)
    return conf


def save_conf(conf: Mapping, path: PathLike) -> None:
    write_text_atomic(path, yaml.safe_dump(dict(conf), sort_keys=False))


def read_experiment_conf(exp_dir: PathLike) -> dict:
    """The completed ``conf.yml`` of an experiment folder."""
    exp_dir = Path(exp_dir)
    path = exp_dir / "conf.yml"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} does not exist; train the model first (stage 1 of the recipe)."
        )
    conf = yaml_load(path.read_text()) or {}
    return complete_conf(conf)
