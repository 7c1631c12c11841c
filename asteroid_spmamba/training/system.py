"""The Lightning system and what it is built from: model, PIT losses,
optimizer, schedules, callbacks.

Training runs Asteroid's :class:`asteroid.engine.System` under PyTorch Lightning 2.x: permutation
invariant training with a pairwise loss of ``asteroid.losses`` (``PITLossWrapper(...,
pit_from="pw_mtx")``, negative SI-SDR by default), an optimizer by its Asteroid name (Adam by
default, fused where torch has a fused kernel and Lightning accepts it: not under mixed precision
with gradient clipping), ReduceLROnPlateau on the validation loss or a linear decay
over the training budget.

``linear_decay`` warms the learning rate up linearly over ``warmup_steps``, holds it until the
fraction ``decay_start`` of the training budget, and then decays it linearly to ``final_factor``
times its value at the end of the budget: ``training.max_steps`` when it is set, so that a run
gives the same model however fast the machine (``training.max_time`` is then a safety stop: a run
it stops is marked ``cut_short`` in train_summary.json, with a warning); with ``max_time`` alone the
schedule follows the clock of Lightning's Timer, so the rate reaches its floor when training stops.
Decaying to the end of a budget fixed in advance is the usual choice for budgeted training (Li,
Yumer and Ramanan, 2020); a constant rate followed by a short decay (``decay_start`` 0.75,
"warmup-stable-decay", Hu et al., 2024) keeps the high rate for most of a budget too short for
convergence, as in the mini recipe (egs/mini/README.md).

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

import inspect
import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Callable, Optional

import torch

from ..models.registry import model_class


def build_model(model_conf: Mapping) -> torch.nn.Module:
    """Instantiate ``asteroid.models.get(model_conf['name'])(**model_conf['args'])``."""
    name = model_conf["name"]
    cls = model_class(name)
    try:
        return cls(**(model_conf.get("args") or {}))
    except TypeError as err:
        raise TypeError(
            f"Cannot build {name} from model.args: {err}. Check the argument names."
        ) from None


def _init_weights(model: torch.nn.Module, source: str) -> None:
    """Load the weights of the model ``source`` (any :func:`asteroid_spmamba.load_model` argument)
    into ``model``; the two must have the same architecture and configuration."""
    from ..loading import load_model

    init = load_model(source)
    ours, theirs = model.get_model_args(), init.get_model_args()
    if type(init) is not type(model) or {k: theirs.get(k) for k in ours} != ours:
        diff = {k: (v, theirs.get(k)) for k, v in ours.items() if theirs.get(k) != v}
        raise ValueError(
            f"training.init_from={source!r} is a {type(init).__name__} with another "
            f"configuration than model: (this run, init_from): {diff}. Make the model section "
            "the same as the model's, or start without init_from."
        )
    model.load_state_dict(
        {k: v.float() if v.is_floating_point() else v for k, v in init.state_dict().items()}
    )


def apply_training_paths(model: torch.nn.Module, training_conf: Mapping) -> torch.nn.Module:
    """``training.fast_paths`` / ``training.activation_checkpointing`` on a GridNet model (SPMamba,
    TF-GridNet): same function, less time or memory
    (:func:`~asteroid_spmamba.masknn.gridnet.set_fast_paths`).
    The fast paths are on by default and only apply where a model has them; ``fast_paths: false``
    trains on the plain paths (reference runs)."""
    from ..masknn.gridnet import GridNetBlock, set_fast_paths

    fast = bool(training_conf.get("fast_paths", True))
    ckpt = bool(training_conf.get("activation_checkpointing"))
    if not any(isinstance(m, GridNetBlock) for m in model.modules()):
        if ckpt:
            from ..models.registry import specs

            gridnet = ", ".join(s.class_name for s in specs() if s.gridnet)
            raise ValueError(
                f"training.activation_checkpointing applies to GridNet models ({gridnet}), "
                f"not {type(model).__name__}; set it to false."
            )
        return model
    return set_fast_paths(model, fast, checkpoint=ckpt)


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _pit_loss(name: str):
    """PITLossWrapper around the pairwise loss ``name`` of asteroid.losses, or ``mixture_fit_snr``
    (:class:`~asteroid_spmamba.levels.MixtureFitLoss`, which also takes the mixture)."""
    if name == "mixture_fit_snr":
        from ..levels import MixtureFitLoss

        return MixtureFitLoss()
    from asteroid import losses
    from asteroid.losses import PITLossWrapper

    pairwise = getattr(losses, name, None)
    if pairwise is None or not name.startswith("pairwise_"):
        raise ValueError(
            f"Unknown loss {name!r}: use a pairwise loss of asteroid.losses, e.g. "
            "pairwise_neg_sisdr or pairwise_neg_snr."
        )
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

        # A different validation loss (conf loss.val) is set as ``system.val_loss_func``. Not a
        # class attribute: nn.Module keeps a module-valued attribute in ``_modules``, so a class
        # attribute of that name would shadow it and validation would use the training loss.

        def common_step(self, batch, batch_nb, train=True):
            inputs, targets = batch[0], batch[1]
            val_loss_func = getattr(self, "val_loss_func", None)
            loss_func = self.loss_func if train or val_loss_func is None else val_loss_func
            if getattr(loss_func, "wants_mixture", False):
                return loss_func(self(inputs), targets, inputs)
            return loss_func(self(inputs), targets)

        def training_step(self, batch, batch_nb):
            loss = self.common_step(batch, batch_nb, train=True)
            self.log("loss", loss, prog_bar=True, batch_size=batch[0].shape[0])
            return loss

        def validation_step(self, batch, batch_nb):
            loss = self.common_step(batch, batch_nb, train=False)
            self.log(
                "val_loss",
                loss,
                on_epoch=True,
                prog_bar=True,
                batch_size=batch[0].shape[0],
                sync_dist=self.trainer.world_size > 1,
            )

        def on_validation_epoch_end(self):
            if self.trainer.logger is not None and not self.trainer.sanity_checking:
                super().on_validation_epoch_end()

        # Exact resume (see .sampling): the data position and the random generators' states go into
        # every checkpoint; a resumed run restarts the sampler there and the
        # generators where they were.
        epoch_sampler = None  # the training loader's EpochSampler, set by train()
        pending_plateau_metric = (
            None  # set by the last-checkpoint callback while it saves after validation
        )
        _rng_states_to_restore = None
        _plateau_metric_to_apply = None

        def on_save_checkpoint(self, checkpoint):
            super().on_save_checkpoint(checkpoint)
            trainer = self.trainer
            epoch, batches = (
                trainer.current_epoch,
                trainer.fit_loop.epoch_loop.batch_progress.current.processed,
            )
            if (
                batches >= trainer.num_training_batches
            ):  # the epoch is over: the next one starts from its top
                epoch, batches = epoch + 1, 0
            checkpoint["data_position"] = {"epoch": int(epoch), "batches": int(batches)}
            checkpoint["rng_states"] = rng_states()
            if self.pending_plateau_metric is not None:
                checkpoint["pending_plateau_metric"] = float(self.pending_plateau_metric)
            return checkpoint

        def setup(self, stage):
            # the samplers shard the data themselves (Lightning's use_distributed_sampler is off)
            for loader in (self.train_loader, self.val_loader):
                sampler = getattr(loader, "sampler", None)
                if hasattr(sampler, "shard"):
                    sampler.shard(self.trainer.global_rank, self.trainer.world_size)

        def on_load_checkpoint(self, checkpoint):
            position = checkpoint.get("data_position")
            if position is not None and self.epoch_sampler is not None:
                self.epoch_sampler.resume_at(
                    position["epoch"], position["batches"], self.train_loader.batch_size
                )
            self._rng_states_to_restore = checkpoint.get("rng_states")
            self._plateau_metric_to_apply = checkpoint.get("pending_plateau_metric")

        def on_train_start(self):
            if (
                self._plateau_metric_to_apply is not None
            ):  # the step the interrupted run took after saving
                from torch.optim.lr_scheduler import ReduceLROnPlateau

                for config in self.trainer.lr_scheduler_configs:
                    if isinstance(config.scheduler, ReduceLROnPlateau):
                        config.scheduler.step(self._plateau_metric_to_apply)
                self._plateau_metric_to_apply = None
            if self._rng_states_to_restore is not None:
                set_rng_states(self._rng_states_to_restore)
                self._rng_states_to_restore = None

        def configure_optimizers(self):
            out = super().configure_optimizers()
            if isinstance(out, tuple):
                for sched in out[1]:
                    if isinstance(sched, dict):
                        # a run stopped by max_steps/max_time mid-epoch has no val_loss to step on
                        sched.setdefault("strict", False)
            return out

    return SeparationSystem


def rng_states() -> dict:
    """The states of PyTorch's (CPU and every visible GPU), NumPy's and Python's
    global random generators."""
    import random

    import numpy as np

    return {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_states(states: Mapping) -> None:
    """Restore what :func:`rng_states` returned (GPU states only where as many GPUs are visible)."""
    import random

    import numpy as np

    torch.set_rng_state(states["torch"])
    np.random.set_state(states["numpy"])
    random.setstate(states["python"])
    cuda = states.get("cuda") or []
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


def _budget_timer(trainer):
    """Lightning's Timer callback when training has a time limit (``max_time``), else None."""
    from pytorch_lightning.callbacks import Timer

    return next(
        (c for c in trainer.callbacks if isinstance(c, Timer) and c.time_remaining() is not None),
        None,
    )


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
    return bool(
        timer is not None
        and trainer.max_steps is not None
        and 0 < trainer.max_steps
        and trainer.global_step < trainer.max_steps
        and timer.time_remaining() <= 0
    )


# Precisions that Lightning runs through its MixedPrecision plugin (autocast, and a GradScaler for
# float16): the plugin refuses to clip the gradients of an optimizer that unscales them itself
# (fused Adam/AdamW), with bfloat16 too, where nothing is scaled.
MIXED_PRECISIONS = ("16-mixed", "bf16-mixed", "16", "bf16")


def _make_optimizer(
    params, optim_conf: Mapping, precision: str, gradient_clip_val: Optional[float] = None
) -> torch.optim.Optimizer:
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
        raise ValueError(
            f"optim.fused=true: the {name!r} optimizer has no fused implementation; "
            "set optim.fused to auto or false."
        )
    if fused is True and clipped_mixed:
        raise ValueError(
            f"optim.fused=true cannot train under precision {precision!r} with gradient "
            f"clipping (training.gradient_clip_val={gradient_clip_val}): Lightning refuses to "
            "clip the gradients of a fused optimizer under mixed precision. Set optim.fused "
            "to auto (it then uses the unfused update), or gradient_clip_val to null, or "
            "precision to 32-true."
        )
    if fused == "auto":
        fused = has_fused and not clipped_mixed
    if fused:
        kwargs["fused"] = True
    return cls(params, **kwargs)


def _linear_decay_callback(warmup_steps: int, final_factor: float, decay_start: float = 0.0):
    """Lightning callback setting each step's learning rate (see ``linear_decay`` in
    the module docstring)."""
    from pytorch_lightning.callbacks import Callback

    if warmup_steps < 0 or not 0.0 <= final_factor <= 1.0:
        raise ValueError(
            f"scheduler: warmup_steps must be >= 0 and final_factor in [0, 1]; got "
            f"{warmup_steps} and {final_factor}."
        )
    if not 0.0 <= decay_start < 1.0:
        raise ValueError(
            f"scheduler.decay_start is the fraction of the budget where the decay starts, "
            f"in [0, 1); got {decay_start}."
        )

    class LinearDecay(Callback):
        def on_train_start(self, trainer, pl_module):
            if _budget_timer(trainer) is None and not (trainer.max_steps and trainer.max_steps > 0):
                raise ValueError(
                    "scheduler.name=linear_decay decays over the training budget: set "
                    "training.max_steps or training.max_time."
                )

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            progress = max(0.0, _budget_progress(trainer) - decay_start) / (1.0 - decay_start)
            factor = final_factor + (1.0 - final_factor) * (1.0 - progress)
            if trainer.global_step < warmup_steps:
                factor = min(factor, (trainer.global_step + 1) / warmup_steps)
            for optimizer in trainer.optimizers:
                for group in optimizer.param_groups:
                    group.setdefault(
                        "initial_lr", group["lr"]
                    )  # saved in checkpoints: resumes keep it
                    group["lr"] = group["initial_lr"] * factor

    return LinearDecay()


def _last_validated_step_callback():
    """Lightning callback whose ``step`` is the global step of the last validation
    (not the sanity check)."""
    from pytorch_lightning.callbacks import Callback

    class LastValidatedStep(Callback):
        step: Optional[int] = None

        def on_validation_end(self, trainer, pl_module):
            if not trainer.sanity_checking:
                self.step = trainer.global_step

    return LastValidatedStep()


def _last_checkpoint_callback(last_ckpt: str, every_n_steps: Optional[int] = None):
    """Lightning callback writing ``last_ckpt``, the checkpoint a run resumes from: after the
    validation that ends an epoch, every ``every_n_steps`` steps, and at the step where training
    stops within an epoch (step or time budget, a callback's stop).

    These are the states from which Lightning resumes a run exactly (with the system's checkpoint
    hooks): one written after ``fit`` returns mid-epoch counts the epoch as finished, and shifts the
    data order (``train`` writes that one only when nothing here saved the final step). A
    ``Checkpoint``, so that Lightning runs it after its Timer and the other callbacks.
    """
    from pytorch_lightning.callbacks import Checkpoint

    class LastCheckpoint(Checkpoint):
        saved_step: Optional[int] = None

        def _save(self, trainer):
            trainer.save_checkpoint(last_ckpt, weights_only=False)
            self.saved_step = trainer.global_step

        def on_validation_end(self, trainer, pl_module):
            epoch_done = (
                trainer.fit_loop.epoch_loop.batch_progress.current.ready
                >= trainer.num_training_batches
            )
            if trainer.sanity_checking or not epoch_done:
                return
            # Lightning steps the plateau schedule after this hook, and not again on
            # resume: record its input
            pl_module.pending_plateau_metric = trainer.callback_metrics.get("val_loss")
            try:
                self._save(trainer)
            finally:
                pl_module.pending_plateau_metric = None

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            step = trainer.global_step
            budget_spent = trainer.max_steps is not None and 0 < trainer.max_steps <= step
            epoch_end = batch_idx + 1 >= trainer.num_training_batches
            periodic = bool(every_n_steps) and step % every_n_steps == 0
            if (
                periodic or ((trainer.should_stop or budget_spent) and not epoch_end)
            ) and step != self.saved_step:
                self._save(trainer)

    return LastCheckpoint()


def _cuda_graphs_callback(batch_size: int, samples: int, precision: str):
    """Lightning callback graphing the model's training forward/backward once training starts
    (:func:`asteroid_spmamba.cuda_graphs.graph_training_forward`) for ``(batch_size, samples)``
    mixtures, under the precision's autocast dtype; the graphs are released when training ends."""
    from pytorch_lightning.callbacks import Callback

    from ..cuda_graphs import graph_training_forward, ungraph
    from ..precision import autocast_dtype

    autocast = autocast_dtype(str(precision))

    class CudaGraphs(Callback):
        def on_train_start(self, trainer, pl_module):
            example = torch.randn(batch_size, samples, device=pl_module.device)
            graph_training_forward(pl_module.model, example, autocast)

        def on_train_end(self, trainer, pl_module):
            ungraph(pl_module.model)

    return CudaGraphs()


def _snapshot_callback(
    folder: Path, every_s: float, write: Callable[[Path], None], offset_s: float = 0.0
):
    """Lightning callback calling ``write(path)`` every ``every_s`` seconds of training and once at
    its end, and listing the snapshots in ``folder/index.json`` (file, seconds, step): the points of
    a learning curve against training time. Seconds count from the start of ``fit`` (validation
    included, as ``max_time`` counts them), plus ``offset_s`` (the wall time of the runs
    resumed)."""
    from pytorch_lightning.callbacks import Callback

    from ..files import write_text_atomic

    if not every_s or float(every_s) <= 0:
        raise ValueError(
            f"training.snapshot_every_s must be a positive number of seconds, got {every_s}."
        )

    class Snapshots(Callback):
        def __init__(self):
            self.began = None
            self.next_mark = float(every_s)
            index = folder / "index.json"
            self.entries = json.loads(index.read_text()) if index.is_file() else []
            # a resumed run's clock goes on from the runs before it, never
            # behind their last snapshot
            self.offset = max([float(offset_s)] + [e["seconds"] for e in self.entries])

        def _write(self, trainer, seconds: float):
            if not trainer.is_global_zero or any(
                e["step"] == trainer.global_step for e in self.entries
            ):
                return
            name = f"t{int(round(seconds)):06d}s-step{trainer.global_step:07d}.pth"
            write(folder / name)
            self.entries.append(
                {"file": name, "seconds": round(seconds, 2), "step": int(trainer.global_step)}
            )
            write_text_atomic(folder / "index.json", json.dumps(self.entries, indent=1) + "\n")

        def on_train_start(self, trainer, pl_module):
            self.began = time.perf_counter()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            elapsed = time.perf_counter() - self.began
            if elapsed >= self.next_mark:
                self._write(trainer, self.offset + elapsed)
                while self.next_mark <= elapsed:
                    self.next_mark += float(every_s)

        def on_train_end(self, trainer, pl_module):
            self._write(trainer, self.offset + time.perf_counter() - self.began)

    return Snapshots()
