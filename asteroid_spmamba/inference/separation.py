"""One recording through the model, chunk by chunk: the pipeline that the array and file entry
points share.

A chunk is read (and resampled) only when it is separated; chunks of equal length are separated
``batch_size`` at a time, and samples are written out as soon as no later chunk overlaps them.
"""

from dataclasses import dataclass
from typing import Optional

import numpy as np
from tqdm import tqdm

from .chunking import _chunk_plan, _chunk_sizes, _OverlapAdd
from .running import _as_rate, _min_length, _model_device_dtype, _PreparedModel, _run_model
from .streams import _ResampledSource, _ResamplingSink, _TrimSink

# Chunk length of every separation entry point (the API, ``model.separate`` and the command line):
# memory then depends on the chunk, not on the recording; shorter recordings go in one pass.
CHUNK_SECONDS = 8.0


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
    shifts: int = 1,
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
            estimates, active = _run_model(
                model, chunks, device, dtype, min_length, precision, shifts
            )
            for i, estimate, present in zip(group, estimates, active):
                hop = starts[i + 1] - starts[i] if i + 1 < len(starts) else None
                joiner.add(estimate, hop, present)
            bar.update(len(group))
    finally:
        bar.close()
    return joiner


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
            prepared.shifts,
        )
    if resampler is not None:
        resampler.close()
    return joiner


def _activity(joiner: _OverlapAdd, rate: int) -> SpeakerActivity:
    return SpeakerActivity(tuple(start / rate for start in joiner.starts), np.stack(joiner.active))
