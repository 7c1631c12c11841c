"""Streaming benchmark of the causal SPMamba: processing time per hop and real-time factor, one stream.

Feeds ``--seconds`` of noise to :class:`asteroid_spmamba.streaming.StreamingSeparator` in blocks of
``--block-hops`` hops and times every ``process`` call. Reported per thread count:

* median / 95th-percentile processing time per call, next to the block's duration (a stream keeps
  up only if the time per call stays below it; the output of a block is then ready after the
  algorithmic latency plus that time);
* real-time factor RTF = total processing time / audio duration (< 1: faster than real time);
* the algorithmic latency (``n_fft`` samples) and the machine's load average before/after, since
  other processes sharing the CPU inflate the times.

Usage::

    python -m asteroid_spmamba.bench.streaming [--preset causal-16k] [--seconds 1] [--threads 1 2]
        [--block-hops 1 8] [--set n_layers=4 expand=2 ...] [--json results.json]
"""

import argparse
import json
import os
import statistics
import time
from collections.abc import Sequence
from typing import Optional

import torch

from ..files import write_json_atomic
from ..models.spmamba import CAUSAL_PRESETS, SPMamba
from ..streaming import StreamingSeparator


def _parse_value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_overrides(items: Sequence[str]) -> dict[str, object]:
    """``["n_layers=4", "attn_window=null"]`` -> ``{"n_layers": 4, "attn_window": None}``."""
    overrides = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set takes KEY=VALUE pairs (e.g. n_layers=4), got {item!r}")
        overrides[key] = _parse_value(value)
    return overrides


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def bench_stream(
    model: SPMamba, seconds: float, block_hops: int, warmup_hops: int = 10, progress: bool = True
) -> dict[str, float]:
    """Time ``StreamingSeparator.process`` on ``seconds`` of audio fed ``block_hops`` hops at a time."""
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


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m asteroid_spmamba.bench.streaming",
        description="Per-hop processing time and real-time factor of the streaming causal SPMamba (one stream, CPU).",
    )
    parser.add_argument("--preset", default="causal-16k", choices=sorted(CAUSAL_PRESETS))
    parser.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="override constructor arguments of the preset (values parsed as JSON)",
    )
    parser.add_argument("--seconds", type=float, default=1.0, help="audio streamed per measurement")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument(
        "--block-hops", type=int, nargs="+", default=[1], help="hops per process() call"
    )
    parser.add_argument("--warmup-hops", type=int, default=10)
    parser.add_argument(
        "--no-offline", action="store_true", help="skip the offline causal model's RTF"
    )
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or min(args.threads) < 1 or min(args.block_hops) < 1:
        parser.error("--seconds, --threads and --block-hops must be positive")

    torch.manual_seed(0)
    overrides = parse_overrides(args.set)
    model = SPMamba.from_preset(args.preset, **overrides).eval()
    enc = model.encoder
    n_params = sum(p.numel() for p in model.parameters())
    print(
        f"{args.preset} {overrides or ''}: {n_params:,} parameters, {model.sample_rate:g} Hz, n_fft {enc.n_fft}, "
        f"hop {enc.hop_length} ({1000 * enc.hop_length / model.sample_rate:g} ms), algorithmic latency "
        f"{enc.latency} samples = {1000 * enc.latency / model.sample_rate:g} ms"
    )
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    results = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        for block_hops in args.block_hops:
            row = bench_stream(model, args.seconds, block_hops, args.warmup_hops)
            if not args.no_offline and block_hops == args.block_hops[0]:
                row["offline_rtf"] = bench_offline(model, args.seconds)
            results.append(row)
            offline = f", offline RTF {row['offline_rtf']:.2f}" if "offline_rtf" in row else ""
            print(
                f"threads {threads}, {block_hops} hop(s)/call ({row['block_ms']:g} ms): per call median "
                f"{row['median_ms']:.1f} ms, p95 {row['p95_ms']:.1f} ms, max {row['max_ms']:.1f} ms; "
                f"RTF {row['rtf']:.2f}{offline}"
            )
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    if args.json:
        write_json_atomic(
            args.json,
            {
                "preset": args.preset,
                "overrides": overrides,
                "parameters": n_params,
                "latency_ms": 1000 * enc.latency / model.sample_rate,
                "results": results,
            },
            indent=2,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
