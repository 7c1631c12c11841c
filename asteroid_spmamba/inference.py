"""Separation of audio files of any length (what ``asteroid-spmamba separate`` runs).

Long recordings are cut into chunks of ``chunk_seconds`` that overlap by ``overlap_seconds``;
chunks of equal length are separated ``batch_size`` at a time. Separation models return their
sources in an arbitrary order, and that order may change from one chunk to the next, so each
chunk's sources are reordered to match the previous chunk: the permutation that maximises the
summed inner products between the previous and the current estimates over their shared samples
(equivalently, that minimises their squared error). The overlap is then cross-faded with
complementary raised-cosine weights (``sin^2`` fading in, ``cos^2`` fading out, summing to one).

Everything streams: a chunk is read (and resampled) only when it is separated, and samples are
written out as soon as no later chunk overlaps them, so the memory used by the model and the
buffers is bounded by the chunk and batch size, not by the file's length. Only
:func:`separate_file` / :func:`separate_array`, which return the whole result, hold it in memory;
:func:`separate_to_files` (used by the command line) writes it block by block.

Resampling to the model's rate and back uses ``torchaudio.functional.resample`` on blocks cut
at multiples of the rate ratio with enough margin for the filter, which gives the same samples
(to float rounding) as resampling the whole signal at once.

Multichannel files: one channel (``channel``, default 0, the first) is separated; channels are
not mixed down, since summing microphones with different delays can comb-filter the speech.
"""

import math
import os
import re
import warnings
from collections.abc import Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Union

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF
from tqdm import tqdm

from .files import remove_litter, work_path
from .hub import AsteroidHubMixin
from .levels import match_mixture, remove_dc
from .precision import autocast

# Extensions picked up when scanning folders (explicitly named files are tried whatever their name).
AUDIO_EXTENSIONS = frozenset(
    {
        ".wav",
        ".wave",
        ".flac",
        ".ogg",
        ".oga",
        ".opus",
        ".mp3",
        ".aif",
        ".aiff",
        ".aifc",
        ".au",
        ".snd",
        ".caf",
        ".w64",
        ".rf64",
        ".sph",
        ".nist",
        ".voc",
        ".htk",
        ".sd2",
        ".mat",
    }
)
ModelLike = Union[str, os.PathLike, torch.nn.Module]

__all__ = [
    "separate_file",
    "separate_array",
    "separate_to_files",
    "SpeakerActivity",
    "check_chunking",
    "AUDIO_EXTENSIONS",
]


# --------------------------------------------------------------------------------------------
# Sources: read samples [a, b) of one channel, zeros outside the signal
# --------------------------------------------------------------------------------------------
class _ArraySource:
    def __init__(self, samples: np.ndarray):
        self.samples = np.ascontiguousarray(samples, dtype=np.float32)
        self.length = self.samples.shape[-1]

    def read(self, start: int, stop: int) -> np.ndarray:
        out = np.zeros(stop - start, dtype=np.float32)
        lo, hi = max(start, 0), min(stop, self.length)
        if hi > lo:
            out[lo - start : hi - start] = self.samples[lo:hi]
        return out


class _SoundFileSource:
    """Reads one channel of an open ``soundfile.SoundFile`` on demand (bounded memory)."""

    def __init__(self, handle: sf.SoundFile, channel: int):
        self.handle, self.channel, self.length = handle, channel, handle.frames

    def read(self, start: int, stop: int) -> np.ndarray:
        out = np.zeros(stop - start, dtype=np.float32)
        lo, hi = max(start, 0), min(stop, self.length)
        if hi > lo:
            self.handle.seek(lo)
            block = self.handle.read(hi - lo, dtype="float32", always_2d=True)[:, self.channel]
            out[lo - start : lo - start + len(block)] = block
        return out


def _resample_geometry(orig: int, new: int) -> tuple[int, int, int]:
    """Reduced rates (o, n) and a margin P (multiple of o) that covers torchaudio's sinc filter."""
    gcd = math.gcd(orig, new)
    o, n = orig // gcd, new // gcd
    # Same width as torchaudio.functional.resample (lowpass_filter_width=6, rolloff=0.99).
    width = math.ceil(6 * o / (min(o, n) * 0.99))
    return o, n, o * math.ceil(width / o) + o


def _resample_blocks(
    read: Callable[[int, int], np.ndarray], b0: int, b1: int, orig: int, new: int
) -> np.ndarray:
    """Output samples of blocks [b0, b1) (a block is ``o`` input and ``n`` output samples), the
    same as resampling the whole signal would give. ``read(a, b)`` returns ``(..., b - a)``."""
    o, n, margin = _resample_geometry(orig, new)
    segment = torch.from_numpy(np.ascontiguousarray(read(b0 * o - margin, b1 * o + margin)))
    out = AF.resample(segment, orig, new)
    first = (margin // o) * n
    return out[..., first : first + (b1 - b0) * n].numpy()


class _ResampledSource:
    """A source seen at another rate; reads resample just the blocks they need."""

    def __init__(self, source, orig: int, new: int):
        self.source, self.orig, self.new = source, orig, new
        self.length = math.ceil(source.length * new / orig)

    def read(self, start: int, stop: int) -> np.ndarray:
        _, n, _ = _resample_geometry(self.orig, self.new)
        b0, b1 = start // n, -(-stop // n)
        out = _resample_blocks(self.source.read, b0, b1, self.orig, self.new)[
            start - b0 * n : stop - b0 * n
        ]
        out = out.copy()
        out[: max(0, -start)] = 0.0  # zeros outside the signal, as for the other sources
        if stop > self.length:
            out[max(0, self.length - start) :] = 0.0
        return out


# --------------------------------------------------------------------------------------------
# Sinks: receive (n_src, k) blocks in order
# --------------------------------------------------------------------------------------------
class _ArraySink:
    """Collects ``length`` samples per source into one preallocated array."""

    def __init__(self, length: int):
        self.length, self.filled = length, 0
        self.array: Optional[np.ndarray] = None

    def write(self, block: np.ndarray) -> None:
        if self.array is None:  # the number of sources is known from the first block
            self.array = np.empty((block.shape[0], self.length), dtype=np.float32)
        self.array[:, self.filled : self.filled + block.shape[-1]] = block
        self.filled += block.shape[-1]

    def result(self) -> np.ndarray:
        if self.array is None or self.filled != self.length:
            raise RuntimeError(f"Separation produced {self.filled} of {self.length} samples.")
        return self.array


class _TrimSink:
    """Passes on the first ``length`` samples only."""

    def __init__(self, sink, length: int):
        self.sink, self.left = sink, length

    def write(self, block: np.ndarray) -> None:
        block = block[:, : self.left]
        self.left -= block.shape[-1]
        if block.shape[-1]:
            self.sink.write(block)


class _ResamplingSink:
    """Streams blocks at ``orig`` Hz out at ``new`` Hz (same samples as one-shot resampling)."""

    def __init__(self, sink, orig: int, new: int):
        self.sink, self.orig, self.new = sink, orig, new
        self.o, self.n, self.margin = _resample_geometry(orig, new)
        self.buffer: Optional[np.ndarray] = None  # input samples from buffer_start on
        self.buffer_start = 0
        self.received = 0
        self.next_block = 0

    def _read(self, start: int, stop: int) -> np.ndarray:
        out = np.zeros((self.buffer.shape[0], stop - start), dtype=np.float32)
        lo, hi = max(start, self.buffer_start), min(stop, self.received)
        if hi > lo:
            out[:, lo - start : hi - start] = self.buffer[
                :, lo - self.buffer_start : hi - self.buffer_start
            ]
        return out

    def _emit(self, last_block: int) -> None:
        if last_block <= self.next_block:
            return
        self.sink.write(
            _resample_blocks(self._read, self.next_block, last_block, self.orig, self.new)
        )
        self.next_block = last_block
        keep_from = last_block * self.o - self.margin  # earlier input is no longer needed
        if keep_from > self.buffer_start:
            self.buffer = self.buffer[:, keep_from - self.buffer_start :]
            self.buffer_start = keep_from

    def write(self, block: np.ndarray) -> None:
        self.buffer = (
            block if self.buffer is None else np.concatenate([self.buffer, block], axis=-1)
        )
        self.received += block.shape[-1]
        self._emit((self.received - self.margin) // self.o)

    def close(self) -> None:
        if self.buffer is not None:
            self._emit(-(-self.received // self.o))


@dataclass(frozen=True)
class SpeakerActivity:
    """Which outputs of a separation hold a speaker: per chunk and for the whole input.

    An output is absent in a chunk when, fitted to the mixture, it lies more than
    :data:`asteroid_spmamba.levels.GATE_DB` below it; it is then written as silence.

    Attributes:
        chunk_starts: start of each chunk, seconds.
        per_chunk: (n_chunks, n_src) bool, in the order of the written outputs.
    """

    chunk_starts: tuple[float, ...]
    per_chunk: np.ndarray

    @property
    def present(self) -> np.ndarray:
        """(n_src,) bool: the outputs that hold a speaker somewhere."""
        return self.per_chunk.any(0)

    @property
    def n_speakers(self) -> int:
        return int(self.present.sum())

    def describe(self) -> str:
        """E.g. ``"2 speakers"``, ``"1 speaker (spk2 silent)"``,
        ``"2 speakers (1 alone in 3 of 12 chunks)"``."""
        n = self.n_speakers
        text = f"{n} speaker{'s' if n != 1 else ''}"
        silent = [f"spk{k + 1}" for k in np.flatnonzero(~self.present)]
        counts = self.per_chunk.sum(1)
        notes = [f"{', '.join(silent)} silent"] if silent else []
        fewer = int((counts < n).sum())
        if n > 1 and fewer:
            notes.append(f"fewer than {n} in {fewer} of {len(counts)} chunks")
        return text + (f" ({'; '.join(notes)})" if notes else "")


# --------------------------------------------------------------------------------------------
# Chunked separation with permutation alignment and cross-fade
# --------------------------------------------------------------------------------------------
def _best_permutation(previous: np.ndarray, current: np.ndarray) -> np.ndarray:
    """Order of ``current``'s sources that best matches ``previous`` (max summed inner product)."""
    from scipy.optimize import linear_sum_assignment

    scores = previous.astype(np.float64) @ current.astype(np.float64).T  # (n_src, n_src)
    _, order = linear_sum_assignment(scores, maximize=True)
    return order


def _fade_in(length: int) -> np.ndarray:
    t = (np.arange(length, dtype=np.float64) + 0.5) / max(length, 1)
    return (np.sin(0.5 * np.pi * t) ** 2).astype(np.float32)


class _OverlapAdd:
    """Joins chunk estimates (given in order) and writes out every sample no later chunk touches."""

    def __init__(self, sink):
        self.sink = sink
        self.tail: Optional[np.ndarray] = None  # previous chunk's samples from the current start on
        self.permutations: list[np.ndarray] = []
        self.active: list[
            np.ndarray
        ] = []  # per chunk, in the output order: which speakers are present

    def add(
        self, estimate: np.ndarray, hop: Optional[int], active: Optional[np.ndarray] = None
    ) -> None:
        """``estimate``: (n_src, length) of a chunk starting where the tail starts; ``hop``: samples
        to the next chunk's start (``None`` for the last chunk); ``active``: (n_src,) present
        speakers."""
        order = np.arange(estimate.shape[0])
        if self.tail is not None and self.tail.shape[-1]:
            overlap = self.tail.shape[-1]
            order = _best_permutation(self.tail, estimate[:, :overlap])
            estimate = estimate[order].copy()
            fade = _fade_in(overlap)
            estimate[:, :overlap] = self.tail * (1.0 - fade) + estimate[:, :overlap] * fade
        self.permutations.append(order)
        self.active.append(
            np.ones(estimate.shape[0], bool) if active is None else np.asarray(active)[order]
        )
        done = estimate.shape[-1] if hop is None else hop
        self.sink.write(estimate[:, :done])
        self.tail = estimate[:, done:]


def _model_device_dtype(model) -> tuple[torch.device, torch.dtype]:
    params = list(model.parameters()) if hasattr(model, "parameters") else []
    if params:
        return params[0].device, params[0].dtype if params[0].is_floating_point() else torch.float32
    return torch.device("cpu"), torch.float32


def _min_length(model) -> int:
    encoder = getattr(model, "encoder", None)
    return int(getattr(model, "min_length", None) or getattr(encoder, "min_length", None) or 1)


def _run_model(
    model, chunks: np.ndarray, device, dtype, min_length: int, precision: str = "auto"
) -> tuple[np.ndarray, np.ndarray]:
    """(batch, time) -> sources (batch, n_src, time) float32 numpy at the level and polarity they
    have in the chunk (DC removed: :func:`asteroid_spmamba.levels.match_mixture`), and which are
    present (batch, n_src) bool."""
    length = chunks.shape[-1]
    batch = remove_dc(torch.from_numpy(chunks))
    mix = batch
    if length < min_length:  # too short for one analysis window: pad, then cut the output back
        batch = torch.nn.functional.pad(batch, (0, min_length - length))
    with torch.inference_mode(), inference_precision(model, device, precision):
        out = model(batch.to(device=device, dtype=dtype))
    if not isinstance(out, torch.Tensor) or out.ndim != 3 or out.shape[0] != chunks.shape[0]:
        raise ValueError(
            f"The model must return a (batch, n_src, time) tensor; got "
            f"{tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__} for "
            f"input {tuple(batch.shape)}."
        )
    if out.shape[-1] < length:
        raise ValueError(f"The model returned {out.shape[-1]} samples for a {length}-sample input.")
    sources, active = match_mixture(out[..., :length].float().cpu(), mix)
    return sources.numpy(), active.numpy()


def _chunk_plan(length: int, chunk: Optional[int], overlap: int) -> tuple[list[int], int]:
    """Chunk starts (every ``chunk - overlap``) and the chunk size.

    The last chunk is moved back, to give it as much context as possible, but not past the end
    of the last-but-two chunk: at most two chunks ever overlap. It may be shorter than the others.
    """
    if chunk is None or chunk >= length:
        return [0], length
    hop = chunk - overlap
    count = 1 + -(-(length - chunk) // hop)
    starts = [i * hop for i in range(count)]
    starts[-1] = max(length - chunk, starts[-3] + chunk if count > 2 else 0)
    return starts, chunk


def _separate_stream(
    model,
    source,
    sink,
    chunk: Optional[int],
    overlap: int,
    batch_size: int,
    progress: bool = False,
    description: str = "chunks",
    precision: str = "auto",
) -> _OverlapAdd:
    """Separate ``source`` (model rate) chunk by chunk into ``sink``."""
    device, dtype = _model_device_dtype(model)
    min_length = _min_length(model)
    starts, size = _chunk_plan(source.length, chunk, overlap)
    joiner = _OverlapAdd(sink)
    joiner.starts = starts
    # Full-size chunks go in batches; a shorter last chunk runs on its own.
    full = [i for i, start in enumerate(starts) if start + size <= source.length]
    groups = [full[i : i + batch_size] for i in range(0, len(full), batch_size)]
    if len(full) < len(starts):
        groups.append([len(starts) - 1])
    bar = tqdm(
        total=len(starts),
        desc=description,
        unit="chunk",
        leave=False,
        disable=not progress or len(starts) == 1,
    )
    try:
        for group in groups:
            stops = [min(starts[i] + size, source.length) for i in group]
            chunks = np.stack([source.read(starts[i], stop) for i, stop in zip(group, stops)])
            estimates, active = _run_model(model, chunks, device, dtype, min_length, precision)
            for i, estimate, present in zip(group, estimates, active):
                hop = starts[i + 1] - starts[i] if i + 1 < len(starts) else None
                joiner.add(estimate, hop, present)
            bar.update(len(group))
    finally:
        bar.close()
    return joiner


def _as_rate(value, what: str) -> int:
    if value is None or float(value) <= 0 or abs(float(value) - round(float(value))) > 1e-6:
        raise ValueError(f"{what} must be a positive whole number of Hz, got {value!r}.")
    return int(round(float(value)))


def _chunk_sizes(
    rate: int, chunk_seconds: Optional[float], overlap_seconds: float, min_length: int = 2
) -> tuple[Optional[int], int]:
    """Chunk and overlap in samples; ``min_length``: the model's shortest input
    (one analysis window)."""
    if chunk_seconds is None or chunk_seconds == 0:
        return None, 0
    if chunk_seconds < 0 or overlap_seconds < 0:
        raise ValueError(
            "chunk_seconds and overlap_seconds must be positive (0 or None: the whole file at "
            f"once), got {chunk_seconds} and {overlap_seconds}."
        )
    chunk = int(round(chunk_seconds * rate))
    overlap = int(round(overlap_seconds * rate))
    shortest = max(2, int(min_length))
    if chunk < shortest:
        raise ValueError(
            f"chunk_seconds={chunk_seconds} is shorter than the model's shortest input, {shortest} "
            f"samples ({shortest / rate:.3g} s at {rate} Hz); use a longer chunk (a few seconds)."
        )
    if 2 * overlap > chunk:
        raise ValueError(
            f"overlap_seconds ({overlap_seconds}) must be at most half of chunk_seconds "
            f"({chunk_seconds}) so that only two chunks ever overlap; use a longer "
            "chunk or a shorter overlap."
        )
    if overlap == 0:
        warnings.warn(
            "overlap_seconds=0: speakers cannot be matched across chunks and "
            "may swap at chunk borders.",
            stacklevel=2,
        )
    return chunk, overlap


def check_chunking(model, chunk_seconds: Optional[float], overlap_seconds: float) -> None:
    """Raise ``ValueError`` (saying what to change) when ``model`` cannot separate in chunks of
    ``chunk_seconds`` overlapping by ``overlap_seconds`` (0 or None: the whole file at once), or
    when its ``sample_rate`` is not a whole number of Hz: the checks of :func:`separate_file`,
    made before any file is read."""
    _chunk_sizes(
        _as_rate(model.sample_rate, "The model's sample_rate"),
        chunk_seconds,
        overlap_seconds,
        _min_length(model),
    )


INFERENCE_PRECISIONS = ("auto", "fp32", "bf16")

# Chunk length of every separation entry point (the API, ``model.separate`` and the command line):
# memory then depends on the chunk, not on the recording; shorter recordings go in one pass.
CHUNK_SECONDS = 8.0


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


class _PreparedModel:
    """Puts a model in eval mode (and on ``device``) for the duration of a separation."""

    def __init__(
        self, model: ModelLike, device: Optional[Union[str, torch.device]], precision: str = "auto"
    ):
        if precision not in INFERENCE_PRECISIONS:
            raise ValueError(f"precision must be one of {INFERENCE_PRECISIONS}, got {precision!r}.")
        self.precision = precision
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


def _check_length(length: int, rate: int, prepared: "_PreparedModel", what: str) -> None:
    """Refuse a recording shorter than one analysis window of the model: nothing to separate."""
    shortest = _min_length(prepared.model)
    if length == 0:
        raise ValueError(f"{what} has no samples.")
    if length * prepared.rate < shortest * rate:
        raise ValueError(
            f"{what} is too short to separate: {length} sample(s) ({1000 * length / rate:.3g} ms "
            f"at {rate} Hz); the model needs at least {shortest} samples "
            f"({1000 * shortest / prepared.rate:.3g} ms at {prepared.rate} Hz)."
        )


def _separate_source(
    prepared: _PreparedModel,
    source,
    rate: int,
    sink,
    chunk_seconds,
    overlap_seconds,
    batch_size: int,
    progress: bool,
    description: str,
    what: str,
) -> _OverlapAdd:
    """Separate ``source`` (at ``rate``) into ``sink``; ``what`` names it in errors."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
    chunk, overlap = _chunk_sizes(
        prepared.rate, chunk_seconds, overlap_seconds, _min_length(prepared.model)
    )
    length = source.length
    _check_length(length, rate, prepared, what)
    out = _TrimSink(sink, length)
    resampler = None
    if rate != prepared.rate:
        source = _ResampledSource(source, rate, prepared.rate)
        out = resampler = _ResamplingSink(out, prepared.rate, rate)
    with prepared as model:
        joiner = _separate_stream(
            model,
            source,
            out,
            chunk,
            overlap,
            batch_size,
            progress,
            description,
            prepared.precision,
        )
    if resampler is not None:
        resampler.close()
    return joiner


def _activity(joiner: _OverlapAdd, rate: int) -> SpeakerActivity:
    return SpeakerActivity(tuple(start / rate for start in joiner.starts), np.stack(joiner.active))


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
    prepared = _PreparedModel(model, device, precision)
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


def _open_audio(path: Union[str, os.PathLike]) -> sf.SoundFile:
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(
            f"{path} is a folder; this function separates one file (the separate command "
            "takes folders: asteroid-spmamba separate MODEL FOLDER)."
        )
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file.")
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: empty file.")
    try:
        handle = sf.SoundFile(str(path))
    except Exception as e:  # LibsndfileError and friends: unreadable or unsupported
        raise ValueError(
            f"{path}: cannot read audio ({str(e).strip() or type(e).__name__})."
        ) from e
    if handle.frames == 0:
        handle.close()
        raise ValueError(f"{path}: the file holds no samples.")
    _warn_if_truncated(handle, path)
    return handle


class TruncatedAudioWarning(UserWarning):
    """An audio file holds fewer samples than its header announces (an interrupted copy or
    recording): what is there is separated."""


def _warn_if_truncated(handle: sf.SoundFile, path: Path) -> None:
    # libsndfile reads what a cut WAV/AIFF holds and notes the header's claim in its log:
    # "data : 64000 (should be 31960)", in bytes
    found = re.search(
        r"^\s*(?:data|SSND)\s*:\s*(\d+)\s*\(should be (\d+)\)", handle.extra_info, re.M
    )
    if found and int(found[2]) < int(found[1]):
        share = int(found[2]) / int(found[1])
        seconds = handle.frames / handle.samplerate
        warnings.warn(
            f"{path} looks truncated: it holds {seconds:.2f} s, {100 * share:.0f} % of the "
            f"{seconds / share:.2f} s its header announces (an interrupted copy or recording?); "
            "separating what is there.",
            TruncatedAudioWarning,
            stacklevel=3,
        )


def _file_source(handle: sf.SoundFile, channel: int, path) -> object:
    if not -handle.channels <= channel < handle.channels:
        raise ValueError(
            f"{path} has {handle.channels} channel(s); --channel {channel} does not exist."
        )
    channel %= handle.channels
    if handle.seekable():
        return _SoundFileSource(handle, channel)
    data = handle.read(dtype="float32", always_2d=True)[:, channel]
    return _ArraySource(data)


def separate_file(
    path: Union[str, os.PathLike],
    model: ModelLike,
    chunk_seconds: Optional[float] = CHUNK_SECONDS,
    overlap_seconds: float = 1.0,
    batch_size: int = 1,
    device: Optional[Union[str, torch.device]] = None,
    channel: int = 0,
    progress: bool = False,
    precision: str = "auto",
    return_activity: bool = False,
    resample: bool = True,
) -> Union[tuple[np.ndarray, int], tuple[np.ndarray, int, SpeakerActivity]]:
    """Separate an audio file.

    The mixture's DC offset is removed, and each chunk's estimates are given the level and polarity
    they have in the mixture (:func:`asteroid_spmamba.levels.match_mixture`): an output more than
    20 dB below the mixture is an absent speaker and is silent, and the outputs add up to the
    mixture. ``model(x)`` itself returns the network's raw output, whose scale means nothing.

    Args:
        path: audio file (anything soundfile reads: wav, flac, ogg/opus, mp3, aiff, ...).
        model: a separation model (``forward`` maps ``(batch, time)`` to ``(batch, n_src, time)``
            and it has a ``sample_rate``), or a Hub id / folder / checkpoint file to load one from.
        chunk_seconds: chunk length (default :data:`CHUNK_SECONDS`: memory then depends on the
            chunk, not on the file; a shorter file goes in one pass); ``None`` (or 0) separates
            the whole file in one pass, whatever its length.
        overlap_seconds: overlap between consecutive chunks (at most half a chunk), used to match
            the speakers' order across chunks and to cross-fade.
        batch_size: chunks separated together.
        device: where to run (the model is moved there); default: where the model is.
        channel: channel of a multichannel file to separate (default 0, the first).
        progress: show a progress bar over chunks.
        precision: ``"auto"`` (bfloat16 autocast on GPUs that support it, for the models whose bf16
            output agrees with float32 (``bf16_inference``); float32 otherwise), ``"fp32"`` or
            ``"bf16"`` (:func:`asteroid_spmamba.models.base.inference_precision`).
        return_activity: also return the :class:`SpeakerActivity` (which outputs hold a speaker,
            per chunk).
        resample: a file at another rate than the model's is resampled to it and back (default,
            as ``model.separate(..., resample=True)``); ``False`` refuses such a file.

    Returns:
        ``(estimates, sample_rate)``: float32 ``(n_src, time)`` at the file's rate and length
        (``(estimates, sample_rate, activity)`` with ``return_activity``).
    """
    with _open_audio(path) as handle:
        rate = handle.samplerate
        source = _file_source(handle, channel, path)
        prepared = _PreparedModel(model, device, precision)
        if not resample and rate != prepared.rate:
            raise ValueError(
                f"{path} is sampled at {rate} Hz, the model at {prepared.rate} Hz; pass "
                "resample=True to resample it to the model's rate and back."
            )
        sink = _ArraySink(source.length)
        joiner = _separate_source(
            prepared,
            source,
            rate,
            sink,
            chunk_seconds,
            overlap_seconds,
            batch_size,
            progress,
            Path(path).name,
            str(path),
        )
    if return_activity:
        return sink.result(), rate, _activity(joiner, prepared.rate)
    return sink.result(), rate


class _WavFilesSink:
    """Writes source k to ``NAME_spk{k+1}.wav`` through temporary files renamed at the end."""

    def __init__(self, path: Path, outdir: Optional[Path], rate: int):
        self.path, self.outdir, self.rate = path, outdir, rate
        self.paths: list[Path] = []
        self.handles: list[sf.SoundFile] = []
        self.temps: list[Path] = []

    def write(self, block: np.ndarray) -> None:
        if not self.handles:  # the number of sources is known from the first block
            self.paths = output_paths(self.path, self.outdir, block.shape[0])
            for path in self.paths:
                path.parent.mkdir(parents=True, exist_ok=True)
                remove_litter(path)  # temporary files of a separation that was killed
                temp = work_path(path)
                self.temps.append(temp)
                self.handles.append(
                    sf.SoundFile(str(temp), "w", self.rate, 1, subtype="FLOAT", format="WAV")
                )
        for handle, row in zip(self.handles, block):
            handle.write(row)

    def commit(self) -> list[Path]:
        for handle in self.handles:
            handle.close()
        done = []
        for temp, path in zip(self.temps, self.paths):
            os.replace(temp, path)
            done.append(path)
        self.temps = []
        return done

    def abort(self) -> None:
        for handle in self.handles:
            try:
                handle.close()
            except Exception:
                pass
        for temp in self.temps:
            temp.unlink(missing_ok=True)


def output_paths(
    path: Union[str, os.PathLike], outdir: Optional[Union[str, os.PathLike]], n_src: int
) -> list[Path]:
    """``NAME_spk1.wav`` ... ``NAME_spk{n_src}.wav`` in ``outdir`` (default: beside ``path``)."""
    path = Path(path)
    folder = Path(outdir) if outdir is not None else path.parent
    return [folder / f"{path.stem}_spk{k + 1}.wav" for k in range(n_src)]


def separate_to_files(
    path: Union[str, os.PathLike],
    model: ModelLike,
    outdir: Optional[Union[str, os.PathLike]] = None,
    chunk_seconds: Optional[float] = CHUNK_SECONDS,
    overlap_seconds: float = 1.0,
    batch_size: int = 1,
    device: Optional[Union[str, torch.device]] = None,
    channel: int = 0,
    progress: bool = False,
    precision: str = "auto",
    return_activity: bool = False,
) -> Union[tuple[list[Path], float], tuple[list[Path], float, SpeakerActivity]]:
    """Separate ``path`` into ``NAME_spk1.wav``, ... (32-bit float WAV at the file's rate, at the
    level of each source in the mixture; an absent speaker's file is silent).

    Streams from the input file to the outputs (bounded memory), writing temporary files that are
    renamed when complete. Arguments as :func:`separate_file`; ``outdir`` defaults to the input's
    folder. Returns the written paths and the input's duration in seconds (and the
    :class:`SpeakerActivity` with ``return_activity``).
    """
    prepared = _PreparedModel(model, device, precision)
    with _open_audio(path) as handle:
        rate = handle.samplerate
        source = _file_source(handle, channel, path)
        sink = _WavFilesSink(Path(path), None if outdir is None else Path(outdir), rate)
        try:
            joiner = _separate_source(
                prepared,
                source,
                rate,
                sink,
                chunk_seconds,
                overlap_seconds,
                batch_size,
                progress,
                Path(path).name,
                str(path),
            )
            written = sink.commit()
        except BaseException:
            sink.abort()
            raise
        if return_activity:
            return written, handle.frames / rate, _activity(joiner, prepared.rate)
        return written, handle.frames / rate


# --------------------------------------------------------------------------------------------
# Input files
# --------------------------------------------------------------------------------------------
def _is_earlier_output(path: Path) -> bool:
    """``NAME_spkN.*`` (this command's outputs) or ``NAME_estN.*`` (``model.separate``'s)."""
    for marker in ("_spk", "_est"):
        head, sep, tail = path.stem.rpartition(marker)
        if sep and head and tail.isdigit():
            return True
    return False


def collect_inputs(
    inputs: Iterable[Union[str, os.PathLike]],
) -> tuple[list[tuple[Path, Path]], list[str]]:
    """Files to separate as ``(file, root)`` pairs (``root``: the folder it was found under, or
    its own folder), and errors for inputs that do not exist. Folders are scanned recursively for
    :data:`AUDIO_EXTENSIONS`, skipping earlier outputs (``*_spkN.*``, ``*_estN.*``)."""
    found: list[tuple[Path, Path]] = []
    errors: list[str] = []
    seen = set()
    for item in inputs:
        item = Path(item)
        if item.is_dir():
            audio = [
                p
                for p in item.rglob("*")
                if p.is_file()
                and p.suffix.lower() in AUDIO_EXTENSIONS
                and not p.name.startswith(".")
            ]
            pairs = [(p, item) for p in sorted(p for p in audio if not _is_earlier_output(p))]
            earlier = len(audio) - len(pairs)
            if not pairs and earlier:
                errors.append(
                    f"{item}: nothing to separate; skipped {earlier} earlier "
                    "output(s) (*_spkN, *_estN)."
                )
            elif not pairs:
                errors.append(
                    f"{item}: no audio files found (extensions "
                    f"{', '.join(sorted(AUDIO_EXTENSIONS))})."
                )
        elif item.exists():
            pairs = [(item, item.parent)]
        else:
            errors.append(f"{item}: no such file or folder.")
            pairs = []
        for file, root in pairs:
            key = file.resolve()
            if key not in seen:
                seen.add(key)
                found.append((file, root))
    return found, errors
