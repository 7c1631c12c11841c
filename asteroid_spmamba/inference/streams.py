"""Where separation reads its samples and where it writes them, at any sample rate.

A source gives samples ``[start, stop)`` of one channel, zeros outside the signal; a sink takes
``(n_src, k)`` blocks in order. Both stream: nothing holds more than the block it is given plus
the resampling filter's margin.

Resampling to the model's rate and back uses ``torchaudio.functional.resample`` on blocks cut
at multiples of the rate ratio with enough margin for the filter, which gives the same samples
(to float rounding) as resampling the whole signal at once.
"""

import math
from typing import Callable, Optional

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF


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

    def commit(self) -> np.ndarray:
        """The whole array, as :meth:`result` (what the file writers' ``commit`` stands for)."""
        return self.result()

    def abort(self) -> None:
        """Nothing to undo: the array is dropped with the sink."""


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
