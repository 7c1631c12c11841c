"""Configuration-driven training and evaluation shared by the recipes, and ``asteroid-spmamba train|evaluate``.

Training runs Asteroid's :class:`asteroid.engine.System` under PyTorch Lightning 2.x: permutation
invariant training with the negative SI-SDR (``PITLossWrapper(pairwise_neg_sisdr, pit_from="pw_mtx")``),
an optimizer by its Asteroid name (Adam by default, fused where torch has a fused kernel and Lightning
accepts it: not under mixed precision with gradient clipping), ReduceLROnPlateau
on the validation loss (or a linear decay over the training budget), gradient clipping, early
stopping and checkpointing. An experiment folder ``exp/<tag>/`` holds::

    conf.yml                 the complete configuration (defaults filled in)
    checkpoints/*.ckpt       Lightning checkpoints: the best ones and last.ckpt (resumed from)
    logs/version_N/          Lightning CSV logs (metrics.csv, hparams.yaml)
    best_model.pth           the best model in Asteroid's serialized format (no optimizer state),
                             loadable with asteroid.models.BaseModel.from_pretrained; a run that
                             its budget stops between validations also validates its final
                             weights, which are exported if they beat the best checkpoint
    train_summary.json       steps, epochs, wall time, best validation loss

Evaluation separates every mixture of a test folder in the Echo2Mix layout
(``ID/mix.wav``, ``ID/spk1_reverb.wav``, ...), scores it with
:func:`asteroid_spmamba.scoring.score_utterance` and writes ``metrics.csv`` (one row per utterance:
``utt_id, sdr, sdr_i, si_snr, si_snr_i``), ``summary.json`` (their means) and, optionally, a few
example wav files.

Configuration (YAML), every key optional except where noted; see :data:`DEFAULT_CONF`::

    model:    {name: SPMamba, args: {...}}     any model registered with asteroid.models
                                               (importing asteroid_spmamba registers ours)
    data:     {root, train_dir, valid_dir, test_dir, sample_rate, n_src, segment, valid_segment,
               dynamic_mixing, speed_perturb}
    training: {batch_size, max_epochs, max_steps, max_time, gpus, cpu_processes, precision,
               accumulate_grad_batches, gradient_clip_val, early_stop_patience, seed, fast_paths,
               activation_checkpointing, cuda_graphs, ...}
    optim:    {optimizer: adam, lr, weight_decay, fused}
    scheduler: {name: plateau, factor, patience, min_lr}    ReduceLROnPlateau on the validation loss
               {name: linear_decay, warmup_steps, final_factor, decay_start}   the budget schedule below
               or null for a constant learning rate

``linear_decay`` warms the learning rate up linearly over ``warmup_steps``, holds it until the
fraction ``decay_start`` of the training budget, and then decays it linearly to ``final_factor``
times its value at the end of the budget: ``training.max_steps`` when it is set, so that a run
gives the same model however fast the machine (``training.max_time`` is then a safety stop: a run
it stops is marked ``cut_short`` in train_summary.json, with a warning); with ``max_time`` alone the
schedule follows the clock of Lightning's Timer, so the rate reaches its floor when training stops.
Decaying to the end of a budget fixed in advance is the usual choice for budgeted training (Li, Yumer and Ramanan, 2020); a constant rate
followed by a short decay (``decay_start`` 0.75, "warmup-stable-decay", Hu et al., 2024) keeps the
high rate for most of a budget too short for convergence, as in the mini recipe (egs/mini/README.md).

References:
    M. Pariente et al., "Asteroid: the PyTorch-based audio source separation toolkit for
    researchers", Interspeech 2020.
    D. Yu, M. Kolbaek, Z.-H. Tan, J. Jensen, "Permutation invariant training of deep models for
    speaker-independent multi-talker speech separation", ICASSP 2017.
    J. Le Roux, S. Wisdom, H. Erdogan, J. R. Hershey, "SDR - half-baked or well done?", ICASSP 2019.
    M. Li, E. Yumer, D. Ramanan, "Budgeted training: rethinking deep neural network training under
    resource constraints", ICLR 2020.
    S. Hu et al., "MiniCPM: unveiling the potential of small language models with scalable training
    strategies", arXiv:2404.06395, 2024 (the warmup-stable-decay schedule).
"""
import argparse
import copy
import datetime
import inspect
import json
import math
import os
import re
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import soundfile as sf
import torch
import yaml

from .scoring import METRICS

PathLike = Union[str, os.PathLike]

DEFAULT_CONF: Dict[str, Any] = {
    "model": {"name": "SPMamba", "args": {}},
    "data": {
        "root": None,            # corpus folder holding train/, valid/, test/ (Echo2Mix layout)
        "train_dir": None,       # default: <root>/train
        "valid_dir": None,       # default: <root>/valid
        "test_dir": None,        # default: <root>/test
        "sample_rate": 8000,
        "n_src": 2,
        "segment": 3.0,          # training excerpt length in seconds
        "valid_segment": None,   # None: whole validation mixtures, one at a time
        "short_utterances": "drop",  # training mixtures shorter than segment: "drop" or zero-"pad"
        "dynamic_mixing": False,  # train on new mixtures of sources from different utterances
        "speed_perturb": None,    # e.g. [0.9, 1.1]: each training source resampled by a random factor
    },
    "training": {
        "batch_size": 4,
        "valid_batch_size": None,  # default: batch_size with valid_segment, else 1
        "num_workers": 0,
        "max_epochs": 50,
        "max_steps": -1,           # -1: no limit
        "max_time": None,          # seconds (number) or "DD:HH:MM:SS"; None: no limit
        "early_stop_patience": 10,  # epochs without improvement; None disables early stopping
        "gradient_clip_val": 5.0,
        "accumulate_grad_batches": 1,
        "gpus": 0,                 # 0: CPU
        "cpu_processes": 1,        # gpus=0: data-parallel training processes (DDP over gloo), threads split
        "precision": "32-true",    # e.g. "bf16-mixed" on recent GPUs
        "fast_paths": True,        # GridNet models: the fast paths of masknn.gridnet.set_fast_paths (false: plain)
        "activation_checkpointing": False,  # GridNet models: recompute each block in the backward pass
        "cuda_graphs": False,      # one GPU: replay the training forward/backward as CUDA graphs (fixed shapes)
        "seed": 0,
        "deterministic": False,
        "limit_train_batches": None,
        "limit_val_batches": None,
        "num_sanity_val_steps": 1,
        "log_every_n_steps": 10,
        "save_top_k": 1,
        "progress_bar": True,
        "resume": True,            # continue from <exp_dir>/checkpoints/last.ckpt when it exists
        "init_from": None,         # start from these weights (a shipped model's name, a best_model.pth,
                                   # a save_pretrained folder): training continued on another machine
    },
    # PIT losses by their asteroid.losses names (pit_from="pw_mtx"); the authors train SPMamba with
    # negative SNR and select on negative SI-SDR.
    "loss": {"train": "pairwise_neg_sisdr", "val": "pairwise_neg_sisdr"},
    # fused: torch's single-kernel update where the optimizer has one (Adam, AdamW): the same update,
    # 5x faster than the per-parameter loop for a small model on a CPU; "auto" leaves it off under
    # mixed precision (16-mixed, bf16-mixed) with gradient clipping, which Lightning refuses for it
    "optim": {"optimizer": "adam", "lr": 1e-3, "weight_decay": 0.0, "fused": "auto"},
    # name: "plateau" (ReduceLROnPlateau: factor, patience, min_lr) or "linear_decay" (warmup_steps,
    # final_factor, decay_start); the keys of the other schedule are ignored
    "scheduler": {"name": "plateau", "factor": 0.5, "patience": 5, "min_lr": 1e-6,
                  "warmup_steps": 0, "final_factor": 0.0, "decay_start": 0.0},
}
SCHEDULERS = ("plateau", "linear_decay")

METRIC_COLUMNS = METRICS  # sdr, sdr_i, si_snr, si_snr_i (CSV_COLUMNS adds utt_id first)


# --------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------
class _YamlLoader(yaml.SafeLoader):
    """Safe YAML loader that also reads ``1e-3`` as a float (YAML 1.1 wants ``1.0e-3``)."""


_YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                    |\.[0-9_]+(?:[eE][-+][0-9]+)?
                    |[-+]?\.(?:inf|Inf|INF)
                    |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."),
)


def _yaml_load(text):
    return yaml.load(text, Loader=_YamlLoader)


def _merge(defaults: Mapping, conf: Mapping, where: str, strict: bool) -> dict:
    out = copy.deepcopy(dict(defaults))
    for key, value in conf.items():
        if strict and key not in defaults:
            raise ValueError(
                f"Unknown configuration key {where}{key!r}; known keys: {sorted(defaults)}. Check its spelling."
            )
        if isinstance(out.get(key), dict) and isinstance(value, Mapping):
            # model.args is free-form: whatever the model's constructor takes
            out[key] = _merge(out[key], value, f"{where}{key}.", strict and key != "args")
        else:
            out[key] = copy.deepcopy(value)
    return out


def complete_conf(conf: Optional[Mapping] = None) -> dict:
    """``conf`` merged onto :data:`DEFAULT_CONF`, with the data folders and sample rate resolved.

    Raises:
        ValueError: an unknown key (a typo), or a model whose ``sample_rate``/``n_src`` contradicts
            the data section.
    """
    conf = dict(conf or {})
    if "scheduler" in conf and conf["scheduler"] is None:
        conf.pop("scheduler")
        out = _merge(DEFAULT_CONF, conf, "", True)
        out["scheduler"] = None
    else:
        out = _merge(DEFAULT_CONF, conf, "", True)
    if not isinstance(out["model"].get("name"), str):
        raise ValueError("model.name must be a model name such as 'SPMamba' or 'ConvTasNet'.")
    data = out["data"]
    for split in ("train", "valid", "test"):
        if data[f"{split}_dir"] is None and data["root"] is not None:
            data[f"{split}_dir"] = str(Path(data["root"]) / split)
    args = out["model"]["args"] = dict(out["model"].get("args") or {})
    for key in ("sample_rate", "n_src"):
        if key not in args:
            args[key] = data[key]
        elif float(args[key]) != float(data[key]):
            raise ValueError(
                f"model.args.{key} ({args[key]}) differs from data.{key} ({data[key]}); make them equal."
            )
    return out


def load_conf(path: PathLike, overrides: Sequence[str] = ()) -> dict:
    """Read a YAML configuration and apply ``section.key=value`` overrides (values parsed as YAML)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Configuration file {path} does not exist.")
    with open(path) as f:
        conf = _yaml_load(f) or {}
    if not isinstance(conf, dict):
        raise ValueError(f"{path} must hold a YAML mapping (model:, data:, training:, ...).")
    return apply_overrides(conf, overrides)


def apply_overrides(conf: Mapping, overrides: Sequence[str]) -> dict:
    """Set ``a.b.c=value`` entries in a copy of ``conf`` (``value`` is parsed as YAML: 3, 1e-3, null, [1, 2])."""
    conf = copy.deepcopy(dict(conf))
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"Override {item!r} must look like section.key=value (e.g. training.max_steps=100).")
        dotted, raw = item.split("=", 1)
        keys = dotted.strip().split(".")
        node = conf
        for key in keys[:-1]:
            if node.get(key) is None:
                node[key] = {}
            if not isinstance(node[key], dict):
                raise ValueError(f"Override {item!r}: {key!r} is not a section.")
            node = node[key]
        node[keys[-1]] = _yaml_load(raw)
    return conf


def _write_atomic(path: Path, write) -> None:
    """Write through ``write(tmp_path)`` then rename, so that ``path`` is never half-written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _write_text(path: Path, text: str) -> None:
    _write_atomic(path, lambda p: p.write_text(text))


def save_conf(conf: Mapping, path: PathLike) -> None:
    _write_text(Path(path), yaml.safe_dump(dict(conf), sort_keys=False))


# --------------------------------------------------------------------------------------------
# Model and data
# --------------------------------------------------------------------------------------------
def build_model(model_conf: Mapping) -> torch.nn.Module:
    """Instantiate ``asteroid.models.get(model_conf['name'])(**model_conf['args'])``."""
    import asteroid.models

    import asteroid_spmamba.models  # noqa: F401  (registers our models with asteroid.models)

    name = model_conf["name"]
    try:
        cls = asteroid.models.get(name)
    except ValueError:
        known = sorted(n for n, v in vars(asteroid.models).items()
                       if isinstance(v, type) and issubclass(v, torch.nn.Module))
        raise ValueError(f"Unknown model {name!r}; choose one of {known}.") from None
    try:
        return cls(**(model_conf.get("args") or {}))
    except TypeError as err:
        raise TypeError(f"Cannot build {name} from model.args: {err}. Check the argument names.") from None


def _init_weights(model: torch.nn.Module, source: str) -> None:
    """Load the weights of the model ``source`` (any :func:`asteroid_spmamba.load_model` argument)
    into ``model``; the two must have the same architecture and configuration."""
    from .hub import load_model

    init = load_model(source)
    ours, theirs = model.get_model_args(), init.get_model_args()
    if type(init) is not type(model) or {k: theirs.get(k) for k in ours} != ours:
        diff = {k: (v, theirs.get(k)) for k, v in ours.items() if theirs.get(k) != v}
        raise ValueError(f"training.init_from={source!r} is a {type(init).__name__} with another "
                         f"configuration than model: (this run, init_from): {diff}. Make the model section "
                         "the same as the model's, or start without init_from.")
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in init.state_dict().items()})


def apply_training_paths(model: torch.nn.Module, training_conf: Mapping) -> torch.nn.Module:
    """``training.fast_paths`` / ``training.activation_checkpointing`` on a GridNet model (SPMamba,
    TF-GridNet): same function, less time or memory (:func:`~asteroid_spmamba.masknn.gridnet.set_fast_paths`).
    The fast paths are on by default and only apply where a model has them; ``fast_paths: false``
    trains on the plain paths (reference runs)."""
    from .masknn.gridnet import GridNetBlock, set_fast_paths

    fast = bool(training_conf.get("fast_paths", True))
    ckpt = bool(training_conf.get("activation_checkpointing"))
    if not any(isinstance(m, GridNetBlock) for m in model.modules()):
        if ckpt:
            raise ValueError(f"training.activation_checkpointing applies to GridNet models (SPMamba, TFGridNet), "
                             f"not {type(model).__name__}; set it to false.")
        return model
    return set_fast_paths(model, fast, checkpoint=ckpt)


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _require_dir(path: Optional[str], what: str) -> Path:
    if path is None:
        raise ValueError(f"No {what} folder: set data.root (holding train/valid/test) or data.{what}_dir.")
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(
            f"{what} folder {path} does not exist. Generate the corpus first "
            "(asteroid-spmamba make-corpus, or stage 0 of the recipe) or fix data.root."
        )
    return path


def make_datasets(data_conf: Mapping) -> Tuple[torch.utils.data.Dataset, torch.utils.data.Dataset]:
    """Training and validation :class:`~asteroid_spmamba.data.echo2mix.Echo2MixDataset` from the data section."""
    from .data.echo2mix import Echo2MixDataset

    common = dict(n_src=data_conf["n_src"], sample_rate=data_conf["sample_rate"],
                  short_utterances=data_conf["short_utterances"])
    train = Echo2MixDataset(str(_require_dir(data_conf["train_dir"], "train")), segment=data_conf["segment"],
                            random_segments=True, dynamic_mixing=bool(data_conf.get("dynamic_mixing")),
                            speed_perturb=data_conf.get("speed_perturb"),
                            **common)
    # validation excerpts start at 0: the same samples every epoch
    valid = Echo2MixDataset(str(_require_dir(data_conf["valid_dir"], "valid")),
                            segment=data_conf["valid_segment"], random_segments=False, **common)
    return train, valid


# --------------------------------------------------------------------------------------------
# Lightning system
# --------------------------------------------------------------------------------------------
def _pit_loss(name: str):
    """PITLossWrapper around the pairwise loss ``name`` of asteroid.losses."""
    from asteroid import losses
    from asteroid.losses import PITLossWrapper

    pairwise = getattr(losses, name, None)
    if pairwise is None or not name.startswith("pairwise_"):
        raise ValueError(f"Unknown loss {name!r}: use a pairwise loss of asteroid.losses, e.g. "
                         "pairwise_neg_sisdr or pairwise_neg_snr.")
    return PITLossWrapper(pairwise, pit_from="pw_mtx")


def _system_class():
    from asteroid.engine import System

    class SeparationSystem(System):
        """Asteroid's System with Lightning 2.x conveniences.

        The training loss goes to the progress bar, batch sizes are given to ``self.log`` (variable
        length validation mixtures otherwise make Lightning guess), and ``hp_metric`` is only logged
        when a logger exists (Asteroid's ``on_validation_epoch_end`` assumes one). Datasets may
        return extra items after ``(mixture, sources)``; they are ignored.
        """

        val_loss_func = None  # a different validation loss (conf loss.val), if any

        def common_step(self, batch, batch_nb, train=True):
            inputs, targets = batch[0], batch[1]
            loss_func = self.loss_func if train or self.val_loss_func is None else self.val_loss_func
            return loss_func(self(inputs), targets)

        def training_step(self, batch, batch_nb):
            loss = self.common_step(batch, batch_nb, train=True)
            self.log("loss", loss, prog_bar=True, batch_size=batch[0].shape[0])
            return loss

        def validation_step(self, batch, batch_nb):
            loss = self.common_step(batch, batch_nb, train=False)
            self.log("val_loss", loss, on_epoch=True, prog_bar=True, batch_size=batch[0].shape[0],
                     sync_dist=self.trainer.world_size > 1)

        def on_validation_epoch_end(self):
            if self.trainer.logger is not None and not self.trainer.sanity_checking:
                super().on_validation_epoch_end()

        def configure_optimizers(self):
            out = super().configure_optimizers()
            if isinstance(out, tuple):
                for sched in out[1]:
                    if isinstance(sched, dict):
                        # a run stopped by max_steps/max_time mid-epoch has no val_loss to step on
                        sched.setdefault("strict", False)
            return out

    return SeparationSystem


def _budget_timer(trainer):
    """Lightning's Timer callback when training has a time limit (``max_time``), else None."""
    from pytorch_lightning.callbacks import Timer

    return next((c for c in trainer.callbacks if isinstance(c, Timer) and c.time_remaining() is not None), None)


def _budget_progress(trainer) -> float:
    """Fraction of the training budget spent: steps/max_steps when training has a step budget
    (``max_time`` is then only a safety stop), else time/max_time."""
    if trainer.max_steps is not None and trainer.max_steps > 0:
        return min(1.0, trainer.global_step / trainer.max_steps)
    timer = _budget_timer(trainer)
    if timer is None:
        return 0.0
    elapsed = timer.time_elapsed()
    total = elapsed + timer.time_remaining()
    return min(1.0, elapsed / total if total > 0 else 1.0)


def _cut_short(trainer) -> bool:
    """Whether ``max_time`` stopped a run that has a step budget before it was reached."""
    timer = _budget_timer(trainer)
    return bool(timer is not None and trainer.max_steps is not None and 0 < trainer.max_steps
                and trainer.global_step < trainer.max_steps and timer.time_remaining() <= 0)


# Precisions that Lightning runs through its MixedPrecision plugin (autocast, and a GradScaler for
# float16): the plugin refuses to clip the gradients of an optimizer that unscales them itself
# (fused Adam/AdamW), with bfloat16 too, where nothing is scaled.
MIXED_PRECISIONS = ("16-mixed", "bf16-mixed", "16", "bf16")


def _make_optimizer(params, optim_conf: Mapping, precision: str,
                    gradient_clip_val: Optional[float] = None) -> torch.optim.Optimizer:
    """The optimizer of ``optim_conf`` (Asteroid's names), fused where torch has a fused kernel for
    it and Lightning accepts one: not under mixed precision with gradient clipping."""
    from asteroid.engine.optimizers import get as get_optimizer

    kwargs = dict(optim_conf)
    name, fused = kwargs.pop("optimizer"), kwargs.pop("fused", "auto")
    if fused not in ("auto", True, False):
        raise ValueError(f"optim.fused must be auto, true or false; got {fused!r}.")
    cls = get_optimizer(name)
    has_fused = "fused" in inspect.signature(cls).parameters
    clipped_mixed = str(precision) in MIXED_PRECISIONS and bool(gradient_clip_val)
    if fused is True and not has_fused:
        raise ValueError(f"optim.fused=true: the {name!r} optimizer has no fused implementation; "
                         "set optim.fused to auto or false.")
    if fused is True and clipped_mixed:
        raise ValueError(f"optim.fused=true cannot train under precision {precision!r} with gradient "
                         f"clipping (training.gradient_clip_val={gradient_clip_val}): Lightning refuses to "
                         "clip the gradients of a fused optimizer under mixed precision. Set optim.fused "
                         "to auto (it then uses the unfused update), or gradient_clip_val to null, or "
                         "precision to 32-true.")
    if fused == "auto":
        fused = has_fused and not clipped_mixed
    if fused:
        kwargs["fused"] = True
    return cls(params, **kwargs)


def _linear_decay_callback(warmup_steps: int, final_factor: float, decay_start: float = 0.0):
    """Lightning callback setting each step's learning rate (see ``linear_decay`` in the module docstring)."""
    from pytorch_lightning.callbacks import Callback

    if warmup_steps < 0 or not 0.0 <= final_factor <= 1.0:
        raise ValueError(f"scheduler: warmup_steps must be >= 0 and final_factor in [0, 1]; got "
                         f"{warmup_steps} and {final_factor}.")
    if not 0.0 <= decay_start < 1.0:
        raise ValueError(f"scheduler.decay_start is the fraction of the budget where the decay starts, "
                         f"in [0, 1); got {decay_start}.")

    class LinearDecay(Callback):
        def on_train_start(self, trainer, pl_module):
            if _budget_timer(trainer) is None and not (trainer.max_steps and trainer.max_steps > 0):
                raise ValueError("scheduler.name=linear_decay decays over the training budget: set "
                                 "training.max_steps or training.max_time.")

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            progress = max(0.0, _budget_progress(trainer) - decay_start) / (1.0 - decay_start)
            factor = final_factor + (1.0 - final_factor) * (1.0 - progress)
            if trainer.global_step < warmup_steps:
                factor = min(factor, (trainer.global_step + 1) / warmup_steps)
            for optimizer in trainer.optimizers:
                for group in optimizer.param_groups:
                    group.setdefault("initial_lr", group["lr"])  # saved in checkpoints: resumes keep it
                    group["lr"] = group["initial_lr"] * factor

    return LinearDecay()


def _last_validated_step_callback():
    """Lightning callback whose ``step`` is the global step of the last validation (not the sanity check)."""
    from pytorch_lightning.callbacks import Callback

    class LastValidatedStep(Callback):
        step: Optional[int] = None

        def on_validation_end(self, trainer, pl_module):
            if not trainer.sanity_checking:
                self.step = trainer.global_step

    return LastValidatedStep()


def _cuda_graphs_callback(batch_size: int, samples: int, precision: str):
    """Lightning callback graphing the model's training forward/backward once training starts
    (:func:`asteroid_spmamba.cuda_graphs.graph_training_forward`) for ``(batch_size, samples)``
    mixtures, under the precision's autocast dtype; the graphs are released when training ends."""
    from pytorch_lightning.callbacks import Callback

    from .cuda_graphs import graph_training_forward, ungraph

    autocast = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}.get(str(precision))

    class CudaGraphs(Callback):
        def on_train_start(self, trainer, pl_module):
            example = torch.randn(batch_size, samples, device=pl_module.device)
            graph_training_forward(pl_module.model, example, autocast)

        def on_train_end(self, trainer, pl_module):
            ungraph(pl_module.model)

    return CudaGraphs()


def _max_time(value) -> Optional[Union[str, datetime.timedelta]]:
    if value is None:
        return None
    if isinstance(value, (int, float)):
        if value <= 0:
            raise ValueError(f"training.max_time must be positive seconds, got {value}.")
        return datetime.timedelta(seconds=float(value))
    return str(value)  # Lightning's "DD:HH:MM:SS"


def _accelerator(training: Mapping) -> dict:
    gpus = int(training["gpus"] or 0)
    if gpus < 0:
        raise ValueError(f"training.gpus must be 0 (CPU) or a number of GPUs, got {gpus}.")
    if gpus == 0:
        processes = int(training.get("cpu_processes") if training.get("cpu_processes") is not None else 1)
        if processes < 1:
            raise ValueError(f"training.cpu_processes must be >= 1, got {processes}.")
        if processes == 1:
            return {"accelerator": "cpu", "devices": 1}
        # Lightning starts the other processes by running this script again (not possible from an
        # interactive session: use 1 there)
        return {"accelerator": "cpu", "devices": processes, "strategy": "ddp"}
    if not torch.cuda.is_available():
        raise ValueError(f"training.gpus={gpus} but CUDA is not available; use --gpus 0 to train on CPU.")
    if gpus > torch.cuda.device_count():
        raise ValueError(f"training.gpus={gpus} but only {torch.cuda.device_count()} GPU(s) are visible.")
    return {"accelerator": "gpu", "devices": gpus, "strategy": "ddp" if gpus > 1 else "auto"}


def _check_resumable(exp_dir: Path, conf: Mapping) -> None:
    """A checkpoint can only be resumed with the same model."""
    old_path = exp_dir / "conf.yml"
    if not old_path.is_file():
        return
    with open(old_path) as f:
        old = _yaml_load(f) or {}
    if old.get("model") != conf["model"]:
        raise ValueError(
            f"{exp_dir} holds a run of another model configuration ({old.get('model')}); its "
            f"checkpoints/last.ckpt cannot be resumed with {conf['model']}. Use another --exp-dir/--tag, "
            "or set training.resume=false to start over in this folder."
        )


def export_best_model(system, checkpoint_path: Optional[str], out_path: PathLike, conf: Mapping,
                      extra_infos: Optional[Mapping] = None) -> Path:
    """Write the model of ``checkpoint_path`` (or the system's current weights) as Asteroid's ``best_model.pth``.

    The file is ``model.serialize()`` (model_name, model_args, state_dict, infos) without optimizer
    state; ``infos`` also holds the training configuration.
    """
    model = system.model
    if checkpoint_path:
        state = torch.load(checkpoint_path, map_location="cpu", weights_only=False)["state_dict"]
        system.load_state_dict(state)
    to_save = model.serialize()
    # Asteroid stores torch.__version__ (a TorchVersion) that torch.load(weights_only=True), and so
    # Asteroid's own from_pretrained, refuses under torch >= 2.6: keep plain strings only.
    versions = to_save.get("infos", {}).get("software_versions", {})
    for key, value in versions.items():
        versions[key] = None if value is None else str(value)
    to_save["state_dict"] = {k: v.detach().cpu() for k, v in to_save["state_dict"].items()}
    to_save["infos"]["training_config"] = copy.deepcopy(dict(conf))
    if extra_infos:
        to_save["infos"].update(copy.deepcopy(dict(extra_infos)))
    out_path = Path(out_path)
    _write_atomic(out_path, lambda p: torch.save(to_save, p))
    return out_path


def train(conf: Mapping, exp_dir: PathLike, train_set=None, valid_set=None) -> dict:
    """Train the model of ``conf`` into ``exp_dir`` (see the module docstring for the layout).

    Args:
        conf: configuration (missing keys take :data:`DEFAULT_CONF`'s values).
        exp_dir: experiment folder; with ``training.resume`` (default) an existing
            ``checkpoints/last.ckpt`` is resumed, continuing the step and epoch counts.
        train_set, valid_set: datasets returning ``(mixture (time,), sources (n_src, time))``;
            by default Echo2MixDataset on ``data.train_dir``/``data.valid_dir``.

    Returns:
        The training summary also written to ``exp_dir/train_summary.json``.
    """
    import pytorch_lightning as pl
    from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint
    from pytorch_lightning.loggers import CSVLogger
    from torch.optim.lr_scheduler import ReduceLROnPlateau

    conf = complete_conf(conf)
    exp_dir = Path(exp_dir)
    tr = conf["training"]
    began = time.perf_counter()
    accelerator = _accelerator(tr)
    processes = accelerator["devices"] if accelerator["accelerator"] == "cpu" else 1
    if processes > 1:
        # every process (this one and those Lightning starts) takes its share of the threads:
        # on a small CPU, processes of one thread each train faster than one process of many
        torch.set_num_threads(max(1, torch.get_num_threads() // processes))
    pl.seed_everything(int(tr["seed"]), workers=True, verbose=False)

    last_ckpt = exp_dir / "checkpoints" / "last.ckpt"
    resume = bool(tr["resume"]) and last_ckpt.is_file()
    previous_wall = 0.0  # wall time of the runs this one resumes
    if resume:
        _check_resumable(exp_dir, conf)
        try:
            old = json.loads((exp_dir / "train_summary.json").read_text())
            previous_wall = float(old.get("total_wall_time_s", old.get("wall_time_s", 0.0)))
        except (OSError, ValueError, TypeError):
            pass
    exp_dir.mkdir(parents=True, exist_ok=True)
    save_conf(conf, exp_dir / "conf.yml")

    if train_set is None or valid_set is None:
        default_train, default_valid = make_datasets(conf["data"])
        train_set = default_train if train_set is None else train_set
        valid_set = default_valid if valid_set is None else valid_set
    if len(train_set) == 0 or len(valid_set) == 0:
        raise ValueError(f"Empty dataset (train: {len(train_set)}, valid: {len(valid_set)} examples).")
    valid_bs = tr["valid_batch_size"] or (tr["batch_size"] if conf["data"]["valid_segment"] else 1)
    loader_args = dict(num_workers=int(tr["num_workers"]), persistent_workers=int(tr["num_workers"]) > 0)
    graphs = bool(tr["cuda_graphs"])
    if graphs:
        if int(tr["gpus"] or 0) != 1:
            raise ValueError("training.cuda_graphs needs training.gpus=1 (one GPU).")
        if not conf["data"]["segment"]:
            raise ValueError("training.cuda_graphs needs fixed-length training excerpts (data.segment).")
    train_loader = torch.utils.data.DataLoader(
        train_set, batch_size=int(tr["batch_size"]), shuffle=True, drop_last=graphs,  # graphs: one shape
        generator=torch.Generator().manual_seed(int(tr["seed"])), **loader_args,
    )
    valid_loader = torch.utils.data.DataLoader(valid_set, batch_size=int(valid_bs), shuffle=False, **loader_args)

    model = build_model(conf["model"])
    if tr["init_from"] and not resume:
        _init_weights(model, tr["init_from"])
    model = apply_training_paths(model, tr)
    optimizer = _make_optimizer(model.parameters(), conf["optim"], str(tr["precision"]),
                                tr["gradient_clip_val"])
    scheduler, lr_callbacks = None, []
    sched = conf["scheduler"]
    if sched:
        if sched["name"] not in SCHEDULERS:
            raise ValueError(f"scheduler.name must be one of {SCHEDULERS}, got {sched['name']!r}.")
        if sched["name"] == "plateau":
            scheduler = ReduceLROnPlateau(optimizer, mode="min", factor=sched["factor"],
                                          patience=sched["patience"], min_lr=sched["min_lr"])
        else:
            lr_callbacks.append(_linear_decay_callback(int(sched["warmup_steps"]), float(sched["final_factor"]),
                                                       float(sched["decay_start"])))
    loss_func, val_loss_func = (_pit_loss(conf["loss"][stage]) for stage in ("train", "val"))
    system = _system_class()(model, optimizer, loss_func, train_loader, valid_loader, scheduler, config=conf)
    system.val_loss_func = val_loss_func

    checkpoint = ModelCheckpoint(
        dirpath=str(exp_dir / "checkpoints"), filename="{epoch}-{step}", monitor="val_loss", mode="min",
        save_top_k=int(tr["save_top_k"]), save_last=True, verbose=False,
    )
    last_validated = _last_validated_step_callback()
    callbacks: List[Any] = [checkpoint, last_validated, *lr_callbacks]
    if graphs:
        samples = int(round(float(conf["data"]["segment"]) * float(conf["data"]["sample_rate"])))
        callbacks.append(_cuda_graphs_callback(int(tr["batch_size"]), samples, tr["precision"]))
    early_stop = None
    if tr["early_stop_patience"] is not None:
        early_stop = EarlyStopping(monitor="val_loss", mode="min", patience=int(tr["early_stop_patience"]),
                                   strict=False)
        callbacks.append(early_stop)
    n_batches = math.ceil(len(train_set) / int(tr["batch_size"]))
    trainer = pl.Trainer(
        **accelerator,
        precision=tr["precision"],
        max_epochs=int(tr["max_epochs"]),
        max_steps=int(tr["max_steps"] if tr["max_steps"] is not None else -1),
        max_time=_max_time(tr["max_time"]),
        gradient_clip_val=tr["gradient_clip_val"],
        accumulate_grad_batches=int(tr["accumulate_grad_batches"]),
        deterministic=bool(tr["deterministic"]),
        limit_train_batches=tr["limit_train_batches"],
        limit_val_batches=tr["limit_val_batches"],
        num_sanity_val_steps=int(tr["num_sanity_val_steps"]),
        log_every_n_steps=max(1, min(int(tr["log_every_n_steps"]), n_batches)),
        callbacks=callbacks,
        logger=CSVLogger(str(exp_dir), name="logs"),
        default_root_dir=str(exp_dir),
        enable_progress_bar=bool(tr["progress_bar"]),
        enable_model_summary=bool(tr["progress_bar"]),
    )
    with warnings.catch_warnings():
        # On CPU, loading in the main process is deliberate (a 2-core laptop gains nothing from workers).
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=".*Checkpoint directory .* exists and is not empty.*")
        trainer.fit(system, ckpt_path=str(last_ckpt) if resume else None, weights_only=False if resume else None)
        # ModelCheckpoint writes last.ckpt after validation only; a run stopped by max_steps/max_time
        # mid-epoch would otherwise resume from an older state.
        trainer.save_checkpoint(str(last_ckpt), weights_only=False)
        best_path = checkpoint.best_model_path or None
        best_score = None if checkpoint.best_model_score is None else float(checkpoint.best_model_score)
        if last_validated.step != trainer.global_step and trainer.global_step > 0:
            # Stopped by the budget between validations: the steps since the last one (up to an
            # epoch) count too. The final weights are validated and kept if they beat the best checkpoint.
            final = float(trainer.validate(system, verbose=False)[0]["val_loss"])
            if best_score is None or final < best_score:
                best_path, best_score = str(last_ckpt), final

    if not trainer.is_global_zero:  # data-parallel helper process: the first one writes the results
        return {"model": conf["model"]["name"], "global_step": int(trainer.global_step), "rank": trainer.global_rank}
    summary = {
        "model": conf["model"]["name"],
        "n_parameters": count_parameters(model),
        "global_step": int(trainer.global_step),
        "epochs": int(trainer.current_epoch),
        "best_val_loss": best_score,
        "stopped_early": bool(early_stop is not None and early_stop.stopped_epoch > 0),
        "best_checkpoint": best_path,
        "resumed_from": str(last_ckpt) if resume else None,
        "wall_time_s": round(time.perf_counter() - began, 1),
        # max_time stopped the run before its step budget: the model is not the configured one
        "cut_short": _cut_short(trainer),
    }
    if summary["cut_short"]:
        print(f"WARNING: training.max_time ({tr['max_time']} s) stopped training at step {trainer.global_step} "
              f"of training.max_steps={trainer.max_steps}: this result is CUT SHORT and not comparable with "
              "full runs (the machine was slower than the budget assumes). Raise training.max_time or "
              "run on a less busy machine.", file=sys.stderr)
    summary["total_wall_time_s"] = round(previous_wall + summary["wall_time_s"], 1)
    export_best_model(system, best_path, exp_dir / "best_model.pth", conf,
                      {"best_val_loss": summary["best_val_loss"], "global_step": summary["global_step"]})
    _write_text(exp_dir / "train_summary.json", json.dumps(summary, indent=2) + "\n")
    return summary


# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------
def load_trained_model(path: PathLike) -> torch.nn.Module:
    """A model from an experiment folder (its ``best_model.pth``) or a serialized ``.pth`` file."""
    from asteroid.models import BaseModel

    import asteroid_spmamba.models  # noqa: F401  (registration, for from_pretrained)

    path = Path(path)
    if path.is_dir():
        path = path / "best_model.pth"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; train the model first (stage 1 of the recipe).")
    return BaseModel.from_pretrained(str(path))


def _write_wav(path: Path, wav: np.ndarray, rate: int) -> None:
    # float WAV: estimates may exceed [-1, 1]
    _write_atomic(path, lambda p: sf.write(str(p), wav, rate, subtype="FLOAT", format="WAV"))


def evaluate(
    model_or_exp_dir: Union[PathLike, torch.nn.Module],
    test_dir: Optional[PathLike] = None,
    out_dir: Optional[PathLike] = None,
    n_save_examples: int = 0,
    device: str = "cpu",
    progress: bool = True,
    verbose: bool = True,
) -> dict:
    """Separate and score every mixture of ``test_dir``.

    Args:
        model_or_exp_dir: a separation model, an experiment folder (its ``best_model.pth`` is used,
            and its ``conf.yml`` gives the default ``test_dir``) or a serialized model file.
        test_dir: folder of ``ID/mix.wav, ID/spk{k}_reverb.wav``.
        out_dir: where ``metrics.csv``, ``summary.json`` and ``examples/`` go (default:
            ``<exp_dir>/eval``; required when a model object is given).
        n_save_examples: write the mixture, references and (permutation-aligned) estimates of the
            first ``n`` utterances to ``out_dir/examples/<utt_id>/``.
        device: ``"cpu"`` or ``"cuda"``.

    Returns:
        The summary (mean of each metric, number of utterances, ...), also in ``summary.json``.
    """
    from tqdm import tqdm

    from .data.echo2mix import Echo2MixDataset
    from .scoring import best_permutation, score_utterance, write_scores_csv

    exp_dir = None
    if isinstance(model_or_exp_dir, torch.nn.Module):
        model = model_or_exp_dir
        source = type(model).__name__
    else:
        path = Path(model_or_exp_dir)
        exp_dir = path if path.is_dir() else None
        model = load_trained_model(path)
        source = str(path)
    if test_dir is None:
        conf_path = exp_dir / "conf.yml" if exp_dir is not None else None
        if conf_path is None or not conf_path.is_file():
            raise ValueError("Give test_dir (no experiment conf.yml to read data.test_dir from).")
        with open(conf_path) as f:
            test_dir = complete_conf(_yaml_load(f))["data"]["test_dir"]
    if out_dir is None:
        if exp_dir is None:
            raise ValueError("Give out_dir (where to write metrics.csv and summary.json).")
        out_dir = exp_dir / "eval"
    out_dir = Path(out_dir)
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' was asked for but CUDA is not available; use device='cpu'.")

    rate = int(model.sample_rate)
    n_src = int(getattr(model, "n_src", None) or getattr(getattr(model, "masker", None), "n_src", 2))
    test_set = Echo2MixDataset(str(test_dir), n_src=n_src, sample_rate=rate, segment=None, return_id=True)
    was_training = model.training
    model = model.to(device).eval()
    rows = []
    began = time.perf_counter()
    try:
        with torch.inference_mode():
            for index in tqdm(range(len(test_set)), desc="evaluating", unit="utt", disable=not progress):
                mix, refs, utt_id = test_set[index]
                est = model(mix[None].to(device))[0].float().cpu()
                if est.shape != refs.shape:
                    raise ValueError(f"{utt_id}: the model returned {tuple(est.shape)} for references "
                                     f"{tuple(refs.shape)}.")
                scores = score_utterance(mix, refs, est, rate)
                rows.append({"utt_id": utt_id, **{k: float(scores[k]) for k in METRIC_COLUMNS}})
                if index < n_save_examples:
                    # one folder per utterance, estimates in the order of the references
                    folder = out_dir / "examples" / utt_id.replace("/", "_")
                    ordered = est[list(best_permutation(refs.numpy(), est.numpy()))]
                    _write_wav(folder / "mixture.wav", mix.numpy(), rate)
                    for k in range(n_src):
                        _write_wav(folder / f"s{k + 1}.wav", refs[k].numpy(), rate)
                        _write_wav(folder / f"s{k + 1}_estimate.wav", ordered[k].numpy(), rate)
    finally:
        model.train(was_training)

    write_scores_csv(rows, out_dir / "metrics.csv")
    summary = {k: float(np.mean([r[k] for r in rows])) for k in METRIC_COLUMNS}
    summary.update({
        "n_utterances": len(rows),
        "model": type(model).__name__,
        "n_parameters": count_parameters(model),
        "source": source,
        "test_dir": str(Path(test_dir).absolute()),
        "sample_rate": rate,
        "wall_time_s": round(time.perf_counter() - began, 1),
    })
    _write_text(out_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
    if verbose:
        print(format_summary(summary))
        print(f"Per-utterance scores: {out_dir / 'metrics.csv'}; summary: {out_dir / 'summary.json'}")
    return summary


def format_summary(summary: Mapping) -> str:
    """One-line, human-readable summary of :func:`evaluate`'s result."""
    return (
        f"{summary['model']} ({summary['n_parameters']:,} parameters) on {summary['n_utterances']} test mixtures: "
        f"SI-SNRi {summary['si_snr_i']:.2f} dB, SDRi {summary['sdr_i']:.2f} dB "
        f"(SI-SNR {summary['si_snr']:.2f} dB, SDR {summary['sdr']:.2f} dB)"
    )


def compare_experiments(root: PathLike, test_dir: Optional[PathLike] = None,
                        reference: Optional[PathLike] = None) -> str:
    """A table of every experiment ``root/<tag>/`` evaluated (``eval/summary.json``), best SI-SNRi first.

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
    lines = [f"{'experiment':<20} {'model':<12} {'params':>9} {'steps':>6} {'train s':>8} "
             f"{'SI-SNRi':>8} {'SDRi':>7} {'utts':>5}"]
    cut = [name for name, _, t in rows if t.get("cut_short")]
    for name, s, t in rows:
        steps = f"{t.get('global_step', '')}{'!' if name in cut else ''}"
        wall = t.get("total_wall_time_s", t.get("wall_time_s", ""))
        lines.append(f"{name:<20} {s['model']:<12} {s['n_parameters']:>9,} {steps:>6} {wall!s:>8} "
                     f"{s['si_snr_i']:>8.2f} {s['sdr_i']:>7.2f} {s['n_utterances']:>5}")
    if cut:
        lines.append(f"! CUT SHORT: training.max_time stopped {', '.join(cut)} before training.max_steps "
                     "(a busy or slow machine); not comparable with full runs")
    for r in stored:
        lines.append(f"* {r['experiment']}: not run here; stored figure from {reference}"
                     + (f" (to run it: {r['how']})" if r.get("how") else ""))
    return "\n".join(lines)


def _reference_rows(path: PathLike, present: set) -> List[dict]:
    """The stored results of ``path`` (see :func:`compare_experiments`) not among ``present``."""
    try:
        entries = _yaml_load(Path(path).read_text())
    except OSError as err:
        raise FileNotFoundError(f"Reference results {path} cannot be read ({err}).") from None
    needed = ("experiment", "model", "n_parameters", "si_snr_i", "sdr_i", "n_utterances")
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ValueError(f"Reference results {path}: expected a YAML list of mappings.")
    for entry in entries:
        missing = [key for key in needed if key not in entry]
        if missing:
            raise ValueError(f"Reference results {path}: entry {entry.get('experiment', entry)!r} lacks {missing}.")
    return [e for e in entries if e["experiment"] not in present]


# --------------------------------------------------------------------------------------------
# Command line (also used by the recipes' train.py / eval.py)
# --------------------------------------------------------------------------------------------
_TRAINING_FLAGS = (
    # flag, conf key, type, help
    ("--gpus", "training.gpus", int, "GPUs to train on (0: CPU, the default)"),
    ("--precision", "training.precision", str, "Lightning precision, e.g. 32-true (default) or bf16-mixed"),
    ("--accumulate-grad-batches", "training.accumulate_grad_batches", int, "gradient accumulation"),
    ("--batch-size", "training.batch_size", int, "training batch size"),
    ("--max-epochs", "training.max_epochs", int, "maximum number of epochs"),
    ("--max-steps", "training.max_steps", int, "maximum number of optimizer steps (-1: no limit)"),
    ("--max-time", "training.max_time", float, "maximum training time in seconds"),
    ("--lr", "optim.lr", float, "learning rate"),
    ("--seed", "training.seed", int, "random seed"),
)


def add_training_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``train``: the configuration, the experiment folder and common overrides."""
    parser.add_argument("--conf", required=True, help="YAML configuration (model:, data:, training:, optim:)")
    parser.add_argument("--exp-dir", "--exp_dir", dest="exp_dir", required=True,
                        help="experiment folder (exp/<tag>); resumed from its checkpoints/last.ckpt if present")
    parser.add_argument("--corpus", default=None, help="corpus folder holding train/valid/test (sets data.root)")
    for flag, key, typ, help_text in _TRAINING_FLAGS:
        parser.add_argument(flag, dest=key, type=typ, default=None, help=help_text,
                            metavar=key.rsplit(".", 1)[-1].upper())
    parser.add_argument("--no-resume", action="store_true", help="start over even if last.ckpt exists")
    parser.add_argument("--no-progress-bar", action="store_true", help="no progress bars (e.g. in CI logs)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="any configuration override, e.g. --set model.args.emb_dim=16 (repeatable)")


def conf_from_args(args: argparse.Namespace) -> dict:
    overrides = list(args.overrides)
    if args.corpus is not None:
        overrides.append(f"data.root={json.dumps(str(Path(args.corpus).absolute()))}")
    for _, key, _, _ in _TRAINING_FLAGS:
        value = getattr(args, key)
        if value is not None:
            overrides.append(f"{key}={json.dumps(value)}")
    if args.no_resume:
        overrides.append("training.resume=false")
    if args.no_progress_bar:
        overrides.append("training.progress_bar=false")
    return load_conf(args.conf, overrides)


def add_evaluation_arguments(parser: argparse.ArgumentParser) -> None:
    from .cli import add_device_argument

    parser.add_argument("model", metavar="EXP_DIR_OR_MODEL",
                        help="experiment folder (uses its best_model.pth) or a serialized model .pth")
    parser.add_argument("--test-dir", "--test_dir", dest="test_dir", default=None,
                        help="test folder (default: data.test_dir of the experiment's conf.yml)")
    parser.add_argument("--out-dir", "--out_dir", dest="out_dir", default=None,
                        help="output folder (default: EXP_DIR/eval)")
    parser.add_argument("--n-save-examples", "--n_save_examples", dest="n_save_examples", type=int, default=0,
                        help="write wav files of the first N utterances (default 0)")
    add_device_argument(parser)
    parser.add_argument("--no-progress-bar", action="store_true")


def train_main(args: argparse.Namespace) -> int:
    try:
        conf = conf_from_args(args)
        summary = train(conf, args.exp_dir)
    except (FileNotFoundError, ValueError, TypeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if "rank" in summary:  # a data-parallel helper process: the first process reports
        return 0
    print(
        f"Trained {summary['model']} ({summary['n_parameters']:,} parameters): {summary['global_step']} steps, "
        f"{summary['epochs']} epochs in {summary['wall_time_s']:.0f} s; best val loss "
        f"{summary['best_val_loss'] if summary['best_val_loss'] is None else round(summary['best_val_loss'], 3)}. "
        f"Model: {Path(args.exp_dir) / 'best_model.pth'}"
    )
    return 0


def evaluate_main(args: argparse.Namespace) -> int:
    from .cli import resolve_device

    try:
        evaluate(args.model, args.test_dir, args.out_dir, args.n_save_examples, str(resolve_device(args.device)),
                 progress=not args.no_progress_bar)
    except (FileNotFoundError, ValueError, TypeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


def add_subcommand(subparsers) -> None:
    """``asteroid-spmamba train`` and ``asteroid-spmamba evaluate``."""
    p = subparsers.add_parser(
        "train", help="train a separation model from a YAML configuration",
        description="Train a separation model (PIT, negative SI-SDR) from a YAML configuration into an "
                    "experiment folder: conf.yml, checkpoints/, logs/, best_model.pth.",
    )
    add_training_arguments(p)
    p.set_defaults(func=train_main)
    p = subparsers.add_parser(
        "evaluate", help="score a trained model on a test folder (SDR, SI-SNR and improvements)",
        description="Separate every ID/mix.wav of a test folder and score it against ID/spk{k}_reverb.wav: "
                    "metrics.csv (per utterance) and summary.json (means).",
    )
    add_evaluation_arguments(p)
    p.set_defaults(func=evaluate_main)
