"""``python -m asteroid_spmamba.commands.bench_streaming``: the streaming benchmark of the causal
SPMamba (:mod:`asteroid_spmamba.bench.streaming`), processing time per hop and real-time factor."""

import argparse
import json
import os
from collections.abc import Sequence
from typing import Optional

import torch

from ..bench.streaming import bench_offline, bench_stream
from ..files import write_json_atomic
from ..models.spmamba import CAUSAL_PRESETS, SPMamba


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


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m asteroid_spmamba.commands.bench_streaming",
        description="Per-hop processing time and real-time factor of the streaming causal "
        "SPMamba (one stream, CPU).",
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
        f"{args.preset} {overrides or ''}: {n_params:,} parameters, {model.sample_rate:g} Hz, "
        f"n_fft {enc.n_fft}, hop {enc.hop_length} ({1000 * enc.hop_length / model.sample_rate:g} "
        f"ms), algorithmic latency {enc.latency} samples = "
        f"{1000 * enc.latency / model.sample_rate:g} ms"
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
                f"threads {threads}, {block_hops} hop(s)/call ({row['block_ms']:g} ms): per call "
                f"median {row['median_ms']:.1f} ms, p95 {row['p95_ms']:.1f} ms, max "
                f"{row['max_ms']:.1f} ms; RTF {row['rtf']:.2f}{offline}"
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
