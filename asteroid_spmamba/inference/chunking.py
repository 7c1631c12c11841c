"""How a long recording is cut into chunks and how their estimates are joined again.

Long recordings are cut into chunks of ``chunk_seconds`` that overlap by ``overlap_seconds``.
Separation models return their sources in an arbitrary order, and that order may change from one
chunk to the next, so each chunk's sources are reordered to match the previous chunk: the
permutation that maximises the summed inner products between the previous and the current
estimates over their shared samples (equivalently, that minimises their squared error). The
overlap is then cross-faded with complementary raised-cosine weights (``sin^2`` fading in,
``cos^2`` fading out, summing to one).
"""

import warnings
from typing import Optional

import numpy as np

from .._stack import user_stacklevel


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
            stacklevel=user_stacklevel(),
        )
    return chunk, overlap


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
