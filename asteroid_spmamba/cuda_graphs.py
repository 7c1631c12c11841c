"""CUDA graphs for training: a model's forward and backward passes replayed as two captured graphs.

A training step of SPMamba launches about 1,500 kernels, many of them short (norms, residual
additions, layout copies around the scans). On an H100 the GPU then waits on Python and the
launch queue for a sizeable part of the step. :func:`graph_training_forward` captures the forward
and backward passes once, with ``torch.cuda.make_graphed_callables``, for one input shape; each
training step then replays them with one launch each. The optimizer step and the loss stay eager.

Limits (those of CUDA graphs): every training batch must have the example's shape and dtype (fixed
segments, ``drop_last``); the model's training forward is replaced, and in ``eval()`` mode the
original forward runs (validation, inference); the input checks of the forward run once, at
capture, not on every replay; the precision settings (autocast dtype, TF32) are those at capture.
Triton autotuning happens during the warm-up iterations that precede the capture.
"""

from typing import Optional

import torch
import torch.nn as nn

from .precision import autocast


def graph_training_forward(
    model: nn.Module,
    example_input: torch.Tensor,
    autocast_dtype: Optional[torch.dtype] = None,
    warmup_iters: int = 3,
) -> nn.Module:
    """Replace ``model``'s training forward (and its backward) by CUDA graphs captured for inputs
    shaped like ``example_input``; returns ``model``. Undo with :func:`ungraph`.

    Args:
        model: a module on a CUDA device, in training mode.
        example_input: an input of the shape, dtype and device of every training batch.
        autocast_dtype: capture under ``torch.autocast`` to this dtype (e.g. ``torch.bfloat16``);
            replays then run the captured low-precision kernels whatever the context.
        warmup_iters: eager iterations before the capture (autotuning, lazy initialisation).

    The warm-up and capture run backward passes on ``example_input``: gradients left in the
    parameters' ``.grad`` are set to ``None`` before returning.
    """
    if not torch.cuda.is_available() or example_input.device.type != "cuda":
        raise ValueError(
            "CUDA graphs need a CUDA device: move the model and the example input to the GPU "
            f"(got an input on {example_input.device})."
        )
    if any(p.device.type != "cuda" for p in model.parameters()):
        raise ValueError("CUDA graphs need the model on the GPU: call model.cuda() first.")
    if not model.training:
        raise ValueError(
            "graph_training_forward captures the training forward: call model.train() first."
        )
    # autocast's weight cache cannot live across graph replays
    with autocast(autocast_dtype, "cuda", cache_enabled=False):
        torch.cuda.make_graphed_callables(model, (example_input,), num_warmup_iters=warmup_iters)
    for parameter in model.parameters():
        parameter.grad = None
    return model


def is_graphed(model: nn.Module) -> bool:
    """Whether ``model``'s forward was replaced by :func:`graph_training_forward`."""
    return "forward" in vars(model)


def ungraph(model: nn.Module) -> nn.Module:
    """Restore the eager forward of a model graphed by :func:`graph_training_forward` (the graphs
    and their memory are released with the last reference to them)."""
    if is_graphed(model):
        del model.forward
    return model
