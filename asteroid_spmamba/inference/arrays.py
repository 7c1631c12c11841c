"""Separation of in-memory waveforms: :func:`separate_array` (what ``model.separate`` runs on
arrays and tensors)."""

from typing import Optional, Union

import numpy as np
import torch

from .running import ModelLike, _as_rate, _PreparedModel
from .separation import CHUNK_SECONDS, SpeakerActivity, _activity, _separate_source
from .streams import _ArraySink, _ArraySource

# Integer PCM -> float in [-1, 1): the scale of each sample format (as soundfile reads them)
_PCM_SCALE = {np.dtype(np.int16): 2.0**15, np.dtype(np.int32): 2.0**31, np.dtype(np.int8): 2.0**7}


def _float_waveform(wav) -> np.ndarray:
    """A numpy or torch waveform of any float precision or integer PCM format -> float32 numpy."""
    if isinstance(wav, torch.Tensor):
        wav = wav.detach().cpu()
        wav = (wav.float() if wav.is_floating_point() else wav).numpy()  # numpy has no bfloat16
    wav = np.asarray(wav)
    if wav.dtype in _PCM_SCALE:
        return (wav / _PCM_SCALE[wav.dtype]).astype(np.float32)
    if wav.dtype == np.uint8:  # 8-bit PCM is unsigned, centred on 128
        return ((wav.astype(np.float32) - 128) / 128).astype(np.float32)
    if not np.issubdtype(wav.dtype, np.floating):
        raise TypeError(
            f"The waveform has dtype {wav.dtype}; pass float samples, or 8/16/32-bit integer PCM."
        )
    return wav.astype(np.float32, copy=False)


def _as_batch(wav: np.ndarray, what: str) -> np.ndarray:
    """The shapes ``model(x)`` takes -> ``(batch, time)``: ``(time,)``, ``(batch, time)`` or
    ``(batch, 1, time)``."""
    if wav.ndim == 3:
        if wav.shape[1] != 1:
            raise ValueError(
                f"{what} is shaped {wav.shape}: (batch, channels, time) with {wav.shape[1]} "
                "channels; the models separate one channel: pass wav[:, c] for channel c."
            )
        wav = wav[:, 0]
    if wav.ndim == 1:
        return wav[None]
    if wav.ndim != 2:
        raise ValueError(
            f"{what} must be shaped (time,), (batch, time) or (batch, 1, time), as model(x) takes; "
            f"got {wav.shape}."
        )
    if wav.shape[0] > wav.shape[1]:
        raise ValueError(
            f"{what} is shaped {wav.shape}, which looks like (time, channels), the layout "
            "soundfile.read returns; pass one channel: wav[:, 0] (a batch is (batch, time))."
        )
    return wav


def separate_array(
    wav: Union[np.ndarray, torch.Tensor],
    sample_rate: float,
    model: ModelLike,
    chunk_seconds: Optional[float] = CHUNK_SECONDS,
    overlap_seconds: float = 1.0,
    batch_size: int = 1,
    device: Optional[Union[str, torch.device]] = None,
    progress: bool = False,
    precision: str = "auto",
    return_activity: bool = False,
    shifts: int = 1,
) -> Union[np.ndarray, tuple[np.ndarray, Union[SpeakerActivity, list[SpeakerActivity]]]]:
    """Separate in-memory waveforms at ``sample_rate``, shaped as ``model(x)`` takes them.

    ``(time,)`` gives ``(n_src, time)``; a batch ``(batch, time)`` (or ``(batch, 1, time)``) gives
    ``(batch, n_src, time)``, each item separated on its own. Float samples of any precision, or
    integer PCM (int16, int32, int8, uint8: scaled to [-1, 1) as soundfile reads them); a
    multichannel recording is separated one channel at a time (``wav[c]`` of soundfile's
    ``(time, channels)``: ``wav[:, c]``). Other arguments as :func:`separate_file`. Returns float32
    at ``sample_rate``, at the level and polarity of each source in the mixture (and, with
    ``return_activity``, the :class:`SpeakerActivity`, a list of them for a batch).
    """
    samples = _float_waveform(wav)
    batch = _as_batch(samples, "The waveform")
    if not np.isfinite(batch).all():
        raise ValueError("The waveform contains NaN or Inf samples.")
    prepared = _PreparedModel(model, device, precision, shifts)
    rate = _as_rate(sample_rate, "sample_rate")
    results, activities = [], []
    for k, item in enumerate(batch):
        what = "The waveform" if len(batch) == 1 else f"Item {k} of the batch"
        sink = _ArraySink(item.shape[-1])
        joiner = _separate_source(
            prepared,
            _ArraySource(item),
            rate,
            sink,
            chunk_seconds,
            overlap_seconds,
            batch_size,
            progress,
            "chunks",
            what,
        )
        results.append(sink.result())
        activities.append(_activity(joiner, prepared.rate))
    if samples.ndim == 1:
        out, activity = results[0], activities[0]
    else:
        out, activity = np.stack(results), activities
    return (out, activity) if return_activity else out
