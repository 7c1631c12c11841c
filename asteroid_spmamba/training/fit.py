"""``train``: a configuration in, an experiment folder out.

An experiment folder ``exp/<tag>/`` holds::

    conf.yml                 the complete configuration (defaults filled in, model preset resolved)
    checkpoints/*.ckpt       Lightning checkpoints: the best ones and last.ckpt (resumed from,
                             exactly: written after the validation ending each epoch, every
                             training.checkpoint_every_n_steps steps, and where training stops)
    logs/version_N/          Lightning CSV logs (metrics.csv, hparams.yaml) and TensorBoard events
    best_model.pth           the best model in Asteroid's serialized format (no optimizer state),
                             loadable with asteroid.models.BaseModel.from_pretrained; a run that
                             its budget stops between validations also validates its final
                             weights, which are exported if they beat the best checkpoint
    train_summary.json       steps, epochs, wall time, best validation loss, dataset sizes
    snapshots/               with training.snapshot_every_s: the weights every so many seconds
                             of training and at its end (best_model.pth's format), index.json
                             lists them
"""

import copy
import datetime
import json
import math
import os
import sys
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Optional, Union

import torch

from .._stack import user_stacklevel
from ..files import write_atomic, write_text_atomic
from .config import SCHEDULERS, PathLike, complete_conf, save_conf, yaml_load
from .datasets import make_datasets
from .sampling import EpochSampler, SeededItems
from .system import (
    _cuda_graphs_callback,
    _cut_short,
    _init_weights,
    _last_checkpoint_callback,
    _last_validated_step_callback,
    _linear_decay_callback,
    _make_optimizer,
    _pit_loss,
    _snapshot_callback,
    _system_class,
    apply_training_paths,
    build_model,
    count_parameters,
)


def is_main_process() -> bool:
    """False in the extra processes that Lightning's DDP launcher starts
    (they re-run the script)."""
    return int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0")) or 0) == 0


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
        processes = int(
            training.get("cpu_processes") if training.get("cpu_processes") is not None else 1
        )
        if processes < 1:
            raise ValueError(f"training.cpu_processes must be >= 1, got {processes}.")
        if processes == 1:
            return {"accelerator": "cpu", "devices": 1}
        # Lightning starts the other processes by running this script again (not possible from an
        # interactive session: use 1 there)
        return {"accelerator": "cpu", "devices": processes, "strategy": "ddp"}
    if not torch.cuda.is_available():
        raise ValueError(
            f"training.gpus={gpus} but CUDA is not available; use --gpus 0 to train on CPU."
        )
    if gpus > torch.cuda.device_count():
        raise ValueError(
            f"training.gpus={gpus} but only {torch.cuda.device_count()} GPU(s) are visible."
        )
    return {"accelerator": "gpu", "devices": gpus, "strategy": "ddp" if gpus > 1 else "auto"}


# What may change when a run is resumed: how long it runs, where and how it is run, where the data
# lie, and how it is logged and validated; not what it learns from or how.
RESUME_MAY_CHANGE = {
    "training": {
        "max_epochs",
        "max_steps",
        "max_time",
        "resume",
        "num_workers",
        "progress_bar",
        "log_every_n_steps",
        "tensorboard",
        "init_from",
        "early_stop_patience",
        "gpus",
        "cpu_processes",
        "cuda_graphs",
        "fast_paths",
        "activation_checkpointing",
        "deterministic",
        "valid_batch_size",
        "limit_val_batches",
        "num_sanity_val_steps",
        "save_top_k",
        "checkpoint_every_n_steps",
        "snapshot_every_s",
    },
    "data": {"root", "train_dir", "valid_dir", "test_dir"},
}


def _differences(old: Mapping, new: Mapping, prefix: str = "") -> list[str]:
    keys = sorted(set(old) | set(new), key=str)
    out = []
    for key in keys:
        a, b = old.get(key), new.get(key)
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            out += _differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: {a!r} -> {b!r}")
    return out


def _check_resumable(exp_dir: Path, conf: Mapping, last_ckpt: Path) -> None:
    """A checkpoint is resumed only when it is readable and the run would learn the same way: same
    model, data, loss, optimizer, schedule and training settings (budgets and logging may
    change)."""
    from ..checkpoints import torch_file_problem

    problem = torch_file_problem(last_ckpt)
    if problem:
        others = sorted(p.name for p in last_ckpt.parent.glob("*.ckpt") if p != last_ckpt)
        raise ValueError(
            f"{last_ckpt} {problem}, so the run cannot be resumed from it. Start over with "
            f"--no-resume (training.resume=false)"
            + (
                f", or resume from an intact checkpoint: copy one of {others} onto last.ckpt."
                if others
                else "."
            )
        )
    old_path = exp_dir / "conf.yml"
    if not old_path.is_file():
        return
    with open(old_path) as f:
        old = yaml_load(f) or {}

    def learning(c: Mapping) -> dict:
        return {
            k: (
                {kk: vv for kk, vv in v.items() if kk not in RESUME_MAY_CHANGE.get(k, ())}
                if isinstance(v, Mapping)
                else v
            )
            for k, v in c.items()
            if k in ("model", "data", "loss", "optim", "scheduler", "training")
        }

    changed = _differences(learning(old), learning(conf))
    if changed:
        raise ValueError(
            f"{exp_dir} holds a run whose checkpoints/{last_ckpt.name} cannot be resumed with this "
            "configuration: it differs in "
            f"{'; '.join(changed[:6])}{' ...' if len(changed) > 6 else ''}. A resumed run keeps "
            "what it learned with; change only the budget (max_steps, max_time, max_epochs) when "
            "resuming, or start over with --no-resume (its checkpoints are set aside), or "
            "use another --exp-dir/--tag."
        )


def _set_aside_checkpoints(exp_dir: Path) -> Optional[Path]:
    """Starting over in a used experiment folder: move its checkpoints (and snapshots) to
    ``checkpoints-replaced-N``, so that neither Lightning's ``last-v1.ckpt`` naming nor a later
    resume can pick the old run, nor its learning curve run on into the new one."""

    def used(name: str) -> bool:
        return (exp_dir / name).is_dir() and any((exp_dir / name).iterdir())

    if not used("checkpoints") and not used("snapshots"):
        return None
    n = 1
    while (exp_dir / f"checkpoints-replaced-{n}").exists():
        n += 1
    target = exp_dir / f"checkpoints-replaced-{n}"
    if used("checkpoints"):
        os.replace(exp_dir / "checkpoints", target)
    else:
        target.mkdir()
    if used("snapshots"):  # the old run's learning curve goes with its checkpoints
        os.replace(exp_dir / "snapshots", target / "snapshots")
    return target


def export_best_model(
    system,
    checkpoint_path: Optional[str],
    out_path: PathLike,
    conf: Mapping,
    extra_infos: Optional[Mapping] = None,
) -> Path:
    """Write the model of ``checkpoint_path`` (or the system's current weights) as
    Asteroid's ``best_model.pth``.

    The file is ``model.serialize()`` (model_name, model_args, state_dict, infos) without optimizer
    state; ``infos`` also holds the training configuration.
    """
    if checkpoint_path:
        state = torch.load(checkpoint_path, map_location="cpu", weights_only=False)["state_dict"]
        system.load_state_dict(state)
    return write_atomic(
        out_path, lambda p: torch.save(_serialized(system.model, conf, extra_infos), p)
    )


def _serialized(
    model: torch.nn.Module, conf: Mapping, extra_infos: Optional[Mapping] = None
) -> dict:
    """``model.serialize()`` with plain-string versions, CPU tensors and the
    training configuration."""
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
    return to_save


def train(conf: Mapping, exp_dir: PathLike, train_set=None, valid_set=None) -> dict:
    """Train the model of ``conf`` into ``exp_dir`` (see the module docstring for the layout).

    Args:
        conf: configuration (:mod:`.config`; missing keys take
            :data:`~.config.DEFAULT_CONF`'s values).
        exp_dir: experiment folder; with ``training.resume`` (default) an existing
            ``checkpoints/last.ckpt`` is resumed, continuing the step and epoch counts.
        train_set, valid_set: datasets returning ``(mixture (time,), sources (n_src, time), ...)``;
            by default those of ``data.dataset`` (:mod:`.datasets`) on
            ``data.train_dir``/``data.valid_dir``.

    Returns:
        The training summary also written to ``exp_dir/train_summary.json``.
    """
    import pytorch_lightning as pl
    from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint
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
    if not resume and is_main_process():
        set_aside = _set_aside_checkpoints(exp_dir)
        if set_aside is not None:
            print(
                f"Starting over in {exp_dir}: the previous run's checkpoints "
                f"were moved to {set_aside}."
            )
    if resume:
        _check_resumable(exp_dir, conf, last_ckpt)
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
        raise ValueError(
            f"Empty dataset (train: {len(train_set)}, valid: {len(valid_set)} examples)."
        )
    valid_bs = tr["valid_batch_size"] or (tr["batch_size"] if conf["data"]["valid_segment"] else 1)
    loader_args = dict(
        num_workers=int(tr["num_workers"]), persistent_workers=int(tr["num_workers"]) > 0
    )
    graphs = bool(tr["cuda_graphs"])
    if graphs:
        if int(tr["gpus"] or 0) != 1:
            raise ValueError("training.cuda_graphs needs training.gpus=1 (one GPU).")
        if not conf["data"]["segment"]:
            raise ValueError(
                "training.cuda_graphs needs fixed-length training excerpts (data.segment)."
            )
    # items drawn by seeds of their own (.sampling): a resumed run sees the data
    # the uninterrupted one saw
    train_sampler = EpochSampler(len(train_set), int(tr["seed"]))
    train_loader = torch.utils.data.DataLoader(
        SeededItems(train_set),
        batch_size=int(tr["batch_size"]),
        sampler=train_sampler,
        drop_last=graphs,
        **loader_args,  # graphs: one shape
    )
    valid_loader = torch.utils.data.DataLoader(
        SeededItems(valid_set),
        batch_size=int(valid_bs),
        sampler=EpochSampler(len(valid_set), int(tr["seed"]), shuffle=False),
        **loader_args,
    )

    model = build_model(conf["model"])
    if tr["init_from"] and not resume:
        _init_weights(model, tr["init_from"])
    share = float(conf["data"].get("single_speaker_share") or 0.0)
    if share and not tr["init_from"] and not resume:
        # measured twice (egs/kokoro2mix/README.md, "The flagship"): the one-talker items reward
        # copying the mixture long before two talkers are told apart
        warnings.warn(
            f"data.single_speaker_share={share} from random weights: models trained so from "
            "scratch learned to copy the mixture instead of separating it. Train "
            "with data.single_speaker_share: 0 until the model separates, then continue from its "
            "weights with the share and training.init_from.",
            stacklevel=user_stacklevel(),
        )
    model = apply_training_paths(model, tr)
    optimizer = _make_optimizer(
        model.parameters(), conf["optim"], str(tr["precision"]), tr["gradient_clip_val"]
    )
    scheduler, lr_callbacks = None, []
    sched = conf["scheduler"]
    if sched:
        if sched["name"] not in SCHEDULERS:
            raise ValueError(f"scheduler.name must be one of {SCHEDULERS}, got {sched['name']!r}.")
        if sched["name"] == "plateau":
            scheduler = ReduceLROnPlateau(
                optimizer,
                mode="min",
                factor=sched["factor"],
                patience=sched["patience"],
                min_lr=sched["min_lr"],
            )
        else:
            lr_callbacks.append(
                _linear_decay_callback(
                    int(sched["warmup_steps"]),
                    float(sched["final_factor"]),
                    float(sched["decay_start"]),
                )
            )
    loss_func, val_loss_func = (_pit_loss(conf["loss"][stage]) for stage in ("train", "val"))
    system = _system_class()(
        model, optimizer, loss_func, train_loader, valid_loader, scheduler, config=conf
    )
    system.val_loss_func = val_loss_func
    system.epoch_sampler = train_sampler

    checkpoint = ModelCheckpoint(
        dirpath=str(exp_dir / "checkpoints"),
        filename="{epoch}-{step}",
        monitor="val_loss",
        mode="min",
        save_top_k=int(tr["save_top_k"]),
        verbose=False,
    )
    every = tr["checkpoint_every_n_steps"]
    if every is not None and int(every) < 1:
        raise ValueError(
            f"training.checkpoint_every_n_steps must be a positive number of steps, got {every}."
        )
    last_checkpoint = _last_checkpoint_callback(
        str(last_ckpt), None if every is None else int(every)
    )
    last_validated = _last_validated_step_callback()
    callbacks: list[Any] = [checkpoint, last_checkpoint, last_validated, *lr_callbacks]
    if tr["snapshot_every_s"] is not None:

        def write_snapshot(path: Path) -> None:
            write_atomic(path, lambda p: torch.save(_serialized(system.model, conf), p))

        # a resumed run continues the index of the runs it resumes (their wall time before its own)
        callbacks.append(
            _snapshot_callback(
                exp_dir / "snapshots", float(tr["snapshot_every_s"]), write_snapshot, previous_wall
            )
        )
    if graphs:
        samples = int(round(float(conf["data"]["segment"]) * float(conf["data"]["sample_rate"])))
        callbacks.append(_cuda_graphs_callback(int(tr["batch_size"]), samples, tr["precision"]))
    early_stop = None
    if tr["early_stop_patience"] is not None:
        early_stop = EarlyStopping(
            monitor="val_loss", mode="min", patience=int(tr["early_stop_patience"]), strict=False
        )
        callbacks.append(early_stop)
    n_batches = math.ceil(len(train_set) / int(tr["batch_size"]))
    trainer_args = dict(
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
        logger=_loggers(exp_dir, bool(tr["tensorboard"])),
        default_root_dir=str(exp_dir),
        enable_progress_bar=bool(tr["progress_bar"]),
        use_distributed_sampler=False,  # the EpochSamplers shard themselves
        # (resumable, seeded items)
        enable_model_summary=bool(tr["progress_bar"]),
    )
    both = sorted(set(trainer_args) & set(conf["trainer"]))
    if both:
        raise ValueError(
            f"trainer: {both} are set by the training section; set them there (training.<key>)."
        )
    trainer = pl.Trainer(**trainer_args, **conf["trainer"])
    with warnings.catch_warnings():
        # On CPU, loading in the main process is deliberate (a 2-core laptop
        # gains nothing from workers).
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        warnings.filterwarnings(
            "ignore", message=".*Checkpoint directory .* exists and is not empty.*"
        )
        # the loaders are not Lightning-stateful: the system's checkpoint hooks
        # restore the data position
        warnings.filterwarnings("ignore", message=".*your dataloader is not resumable.*")
        trainer.fit(
            system,
            ckpt_path=str(last_ckpt) if resume else None,
            weights_only=False if resume else None,
        )
        # the last checkpoint is written at the step where training stopped; any other way out
        # (an interrupt) keeps the state it reached here
        if last_checkpoint.saved_step != trainer.global_step:
            trainer.save_checkpoint(str(last_ckpt), weights_only=False)
        best_path = checkpoint.best_model_path or None
        best_score = (
            None if checkpoint.best_model_score is None else float(checkpoint.best_model_score)
        )
        if last_validated.step != trainer.global_step and trainer.global_step > 0:
            # Stopped by the budget between validations: the steps since the last one (up to an
            # epoch) count too. The final weights are validated and kept if they
            # beat the best checkpoint.
            final = float(trainer.validate(system, verbose=False)[0]["val_loss"])
            if best_score is None or final < best_score:
                best_path, best_score = str(last_ckpt), final

    if not trainer.is_global_zero:  # data-parallel helper process: the first one writes the results
        return {
            "model": conf["model"]["name"],
            "global_step": int(trainer.global_step),
            "rank": trainer.global_rank,
        }
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
        "n_train": len(train_set),
        "n_valid": len(valid_set),
    }
    if summary["cut_short"]:
        print(
            f"WARNING: training.max_time ({tr['max_time']} s) stopped training at step "
            f"{trainer.global_step} of training.max_steps={trainer.max_steps}: this result is CUT "
            "SHORT and not comparable with full runs (the machine was slower than the budget "
            "assumes). Raise training.max_time or run on a less busy machine.",
            file=sys.stderr,
        )
    summary["total_wall_time_s"] = round(previous_wall + summary["wall_time_s"], 1)
    export_best_model(
        system,
        best_path,
        exp_dir / "best_model.pth",
        conf,
        {"best_val_loss": summary["best_val_loss"], "global_step": summary["global_step"]},
    )
    write_text_atomic(exp_dir / "train_summary.json", json.dumps(summary, indent=2) + "\n")
    return summary


def _loggers(exp_dir: Path, tensorboard: bool) -> list:
    """Lightning's CSV logger and, where tensorboard (or tensorboardX) is installed, its TensorBoard
    logger, both in one ``exp_dir/logs/version_N`` folder."""
    from pytorch_lightning.loggers import CSVLogger, TensorBoardLogger

    loggers = [CSVLogger(str(exp_dir), name="logs")]
    if tensorboard:
        try:
            loggers.append(
                TensorBoardLogger(
                    str(exp_dir), name="logs", version=loggers[0].version, default_hp_metric=False
                )
            )
        except ModuleNotFoundError:
            pass  # the CSV logs hold the same metrics
    return loggers
