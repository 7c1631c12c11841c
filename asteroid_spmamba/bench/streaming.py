"""Streaming benchmark of the causal SPMamba: processing time per hop and
real-time factor, one stream.

Feeds ``--seconds`` of noise to :class:`asteroid_spmamba.streaming.StreamingSeparator` in blocks of
``--block-hops`` hops and times every ``process`` call. Reported per thread count:

* median / 95th-percentile processing time per call, next to the block's duration (a stream keeps
  up only if the time per call stays below it; the output of a block is then ready after the
  algorithmic latency plus that time);
* real-time factor RTF = total processing time / audio duration (< 1: faster than real time);
* the algorithmic latency (``n_fft`` samples) and the machine's load average before/after, since
  other processes sharing the CPU inflate the times.

Usage (:mod:`asteroid_spmamba.commands.bench_streaming`)::

    python -m asteroid_spmamba.commands.bench_streaming [--preset causal-16k] [--seconds 1]
        [--threads 1 2] [--block-hops 1 8] [--set n_layers=4 expand=2 ...] [--json results.json]
"""

import statistics
import time

import torch

from ..models.spmamba import SPMamba
from ..streaming import StreamingSeparator


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def bench_stream(
    model: SPMamba, seconds: float, block_hops: int, warmup_hops: int = 10, progress: bool = True
) -> dict[str, float]:
    """Time ``StreamingSeparator.process`` on ``seconds`` of audio fed
    ``block_hops`` hops at a time."""
    hop = model.encoder.hop_length
    block = hop * block_hops
    n_blocks = max(1, int(seconds * model.sample_rate) // block)
    gen = torch.Generator().manual_seed(0)
    audio = 0.1 * torch.randn(warmup_hops * hop + n_blocks * block, generator=gen)
    stream = StreamingSeparator(model)
    stream.process(audio[: warmup_hops * hop])  # first calls allocate; not timed
    times = []
    blocks = range(n_blocks)
    if progress:
        from tqdm import tqdm

        blocks = tqdm(
            blocks,
            desc=f"{torch.get_num_threads()} thread(s), {block_hops} hop(s)/call",
            leave=False,
        )
    for i in blocks:
        chunk = audio[warmup_hops * hop + i * block : warmup_hops * hop + (i + 1) * block]
        start = time.perf_counter()
        stream.process(chunk)
        times.append(time.perf_counter() - start)
    block_s = block / model.sample_rate
    return {
        "threads": torch.get_num_threads(),
        "block_hops": block_hops,
        "block_ms": 1000 * block_s,
        "calls": len(times),
        "median_ms": 1000 * statistics.median(times),
        "p95_ms": 1000 * _percentile(times, 0.95),
        "max_ms": 1000 * max(times),
        "rtf": sum(times) / (len(times) * block_s),
    }


def bench_offline(model: SPMamba, seconds: float) -> float:
    """Real-time factor of the offline causal model on one ``seconds``-long utterance."""
    wav = 0.1 * torch.randn(
        1, int(seconds * model.sample_rate), generator=torch.Generator().manual_seed(0)
    )
    with torch.inference_mode():
        model(wav[:, : model.encoder.n_fft])
        start = time.perf_counter()
        model(wav)
    return (time.perf_counter() - start) / seconds
