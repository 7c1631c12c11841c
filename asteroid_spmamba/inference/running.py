"""Running a separation model: its precision, its preparation, and the one place where a mixture
becomes the sources users get (DC removed, network run, outputs fitted to the mixture).
"""

import os
from contextlib import AbstractContextManager
from typing import Callable, Optional, Union

import numpy as np
import torch

from ..hub import AsteroidHubMixin
from ..levels import match_mixture, remove_dc, removes_noise
from ..precision import autocast
from .chunking import _best_permutation

INFERENCE_PRECISIONS = ("auto", "fp32", "bf16")

# A model, or a Hub id / folder / checkpoint file to load one from
ModelLike = Union[str, os.PathLike, torch.nn.Module]


def inference_precision(
    model: torch.nn.Module, device: Union[str, torch.device], precision: str = "auto"
) -> AbstractContextManager:
    """The autocast context in which the inference entry points (``separate``, ``separate_file``,
    the ``separate`` command) run ``model`` on ``device``.

    ``"auto"``: bfloat16 autocast on a GPU that supports it for the models whose ``bf16_inference``
    is true (their bf16 output agrees with float32 to 35 dB SI-SNR or more, checked by
    tests/test_gpu.py), float32 otherwise; ``"fp32"``: float32; ``"bf16"``: bfloat16 autocast
    wherever PyTorch has it. Normalisations, STFT/iSTFT and scan states stay
    in float32 under autocast.
    """
    if precision not in INFERENCE_PRECISIONS:
        raise ValueError(f"precision must be one of {INFERENCE_PRECISIONS}, got {precision!r}.")
    device = torch.device(device)
    if precision == "auto":
        bf16 = (
            device.type == "cuda"
            and getattr(model, "bf16_inference", False)
            and torch.cuda.is_available()
            and torch.cuda.is_bf16_supported()
        )
        precision = "bf16" if bf16 else "fp32"
    return autocast(precision, device)


def analysis_hop(model) -> int:
    """Samples between the analysis frames of ``model``'s encoder (its STFT hop or its convolution
    stride); 1 for a model that does not tell."""
    encoder = getattr(model, "encoder", None)
    for owner in (encoder, getattr(encoder, "filterbank", None)):
        for name in ("hop_length", "stride"):
            value = getattr(owner, name, None)
            value = value[0] if isinstance(value, (tuple, list)) and value else value
            if isinstance(value, int) and value > 0:
                return value
    return 1


def _in_order_of(estimates: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """``estimates`` (batch, n_src, time) with each item's sources reordered to best match
    ``reference``'s (as chunks are matched across their overlap)."""
    orders = [
        _best_permutation(r.detach().double().cpu().numpy(), e.detach().double().cpu().numpy())
        for r, e in zip(reference, estimates)
    ]
    return torch.stack([e[torch.as_tensor(o, device=e.device)] for e, o in zip(estimates, orders)])


def check_shifts(shifts) -> None:
    """Refuse anything but a whole number of passes, 1 or more."""
    if isinstance(shifts, bool) or not isinstance(shifts, int) or shifts < 1:
        raise ValueError(
            f"shifts must be a whole number of passes, 1 or more (1: one pass), got {shifts!r}."
        )


def shift_averaged(
    run: Callable[[torch.Tensor], torch.Tensor], shifts: int, hop: int
) -> Callable[[torch.Tensor], torch.Tensor]:
    """``run`` averaged over ``shifts`` passes (the shift trick): pass ``k`` sees the mixture
    delayed by ``k * hop / shifts`` samples, so that each pass cuts it into analysis frames
    differently, and its output is advanced back; each pass's sources are put in the order of the
    passes before them, then averaged. ``shifts=1``: ``run`` itself."""
    check_shifts(shifts)
    if shifts == 1:
        return run
    step = max(hop, shifts) / shifts
    offsets = [int(round(k * step)) for k in range(shifts)]

    def averaged(mix: torch.Tensor) -> torch.Tensor:
        length, total = mix.shape[-1], None
        for offset in offsets:
            out = run(torch.nn.functional.pad(mix, (offset, 0)))[..., offset : offset + length]
            out = out.float()
            total = out if total is None else total + _in_order_of(out, total)
        return total / len(offsets)

    return averaged


def written_sources(
    model,
    wav: torch.Tensor,
    run: Callable[[torch.Tensor], torch.Tensor],
    device: Union[str, torch.device],
    precision: str = "auto",
    shifts: int = 1,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The sources users get from a mixture, as every inference entry point writes them.

    ``wav`` (batch, [channels,] time) loses its DC offset
    (:func:`~asteroid_spmamba.levels.remove_dc`) and goes through ``run`` (the network: DC-free
    float32 mixture -> raw ``(batch, n_src, time')`` output) under :func:`inference_precision` for
    ``model`` on ``device``, averaged over ``shifts`` delayed copies of the mixture
    (:func:`shift_averaged`); the raw output is then fitted to the mixture's first channel
    (:func:`~asteroid_spmamba.levels.match_mixture`). Returns the float32 ``(batch, n_src, time')``
    sources at the level and polarity they have in the mixture (absent speakers silent) and which
    are present, ``(batch, n_src)`` bool.
    """
    mix = remove_dc(wav.float())
    with inference_precision(model, device, precision):
        raw = shift_averaged(run, shifts, analysis_hop(model))(mix).float()
    first_channel = mix.reshape(raw.shape[0], -1, mix.shape[-1])[:, 0, : raw.shape[-1]]
    return match_mixture(raw, first_channel, keep_residual=not removes_noise(model))


def _as_rate(value, what: str) -> int:
    if value is None or float(value) <= 0 or abs(float(value) - round(float(value))) > 1e-6:
        raise ValueError(f"{what} must be a positive whole number of Hz, got {value!r}.")
    return int(round(float(value)))


def _model_device_dtype(model) -> tuple[torch.device, torch.dtype]:
    params = list(model.parameters()) if hasattr(model, "parameters") else []
    if params:
        return params[0].device, params[0].dtype if params[0].is_floating_point() else torch.float32
    return torch.device("cpu"), torch.float32


def _min_length(model) -> int:
    encoder = getattr(model, "encoder", None)
    return int(getattr(model, "min_length", None) or getattr(encoder, "min_length", None) or 1)


class _PreparedModel:
    """Puts a model in eval mode (and on ``device``) for the duration of a separation."""

    def __init__(
        self,
        model: ModelLike,
        device: Optional[Union[str, torch.device]],
        precision: str = "auto",
        shifts: int = 1,
    ):
        if precision not in INFERENCE_PRECISIONS:
            raise ValueError(f"precision must be one of {INFERENCE_PRECISIONS}, got {precision!r}.")
        check_shifts(shifts)
        self.precision, self.shifts = precision, shifts
        if isinstance(model, (str, os.PathLike)):
            # any registered architecture, by every name asteroid_spmamba.loading resolves
            model = AsteroidHubMixin.from_pretrained(model)
        if device is not None:
            device = torch.device(device)
            if device.type == "cuda" and not torch.cuda.is_available():
                raise ValueError(
                    "device='cuda' was asked for but CUDA is not available; use device='cpu'."
                )
            if hasattr(model, "to"):
                model = model.to(device)  # the caller's module is moved (as nn.Module.to does)
        self.model = model
        self.rate = _as_rate(getattr(model, "sample_rate", None), "The model's sample_rate")

    def __enter__(self):
        self.was_training = bool(getattr(self.model, "training", False))
        if hasattr(self.model, "eval"):
            self.model.eval()
        return self.model

    def __exit__(self, *exc):
        if self.was_training:
            self.model.train()


def _run_model(
    model,
    chunks: np.ndarray,
    device,
    dtype,
    min_length: int,
    precision: str = "auto",
    shifts: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """(batch, time) -> sources (batch, n_src, time) float32 numpy at the level and polarity they
    have in the chunk (:func:`written_sources`), and which are present (batch, n_src) bool."""

    def network(mix: torch.Tensor) -> torch.Tensor:
        batch, length = mix, mix.shape[-1]
        if length < min_length:  # too short for one analysis window: pad, then cut the output back
            batch = torch.nn.functional.pad(batch, (0, min_length - length))
        with torch.inference_mode():
            out = model(batch.to(device=device, dtype=dtype))
        if not isinstance(out, torch.Tensor) or out.ndim != 3 or out.shape[0] != chunks.shape[0]:
            raise ValueError(
                f"The model must return a (batch, n_src, time) tensor; got "
                f"{tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__} for "
                f"input {tuple(batch.shape)}."
            )
        if out.shape[-1] < length:
            raise ValueError(
                f"The model returned {out.shape[-1]} samples for a {length}-sample input."
            )
        return out[..., :length].float().cpu()

    sources, active = written_sources(
        model, torch.from_numpy(chunks), network, device, precision, shifts
    )
    return sources.numpy(), active.numpy()
