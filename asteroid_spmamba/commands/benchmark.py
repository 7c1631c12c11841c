"""``asteroid-spmamba benchmark``: speed and memory of the zoo's models
(:func:`asteroid_spmamba.benchmark.run_benchmark`). ``benchmarks/benchmark.py`` of a checkout runs
the same options beside the original SPMamba code (:func:`add_arguments`, :func:`run_command`)."""

import argparse
import json
import sys
from typing import TYPE_CHECKING, Callable, Optional

from .help_text import BENCHMARK_DESCRIPTION, BENCHMARK_DTYPES, BENCHMARK_VARIANTS
from .options import add_device_argument

if TYPE_CHECKING:
    import torch.nn as nn


def _csv_list(text: str, cast=str) -> list:
    return [cast(t.strip()) for t in text.split(",") if t.strip()]


def add_subcommand(subparsers) -> None:
    parser = subparsers.add_parser(
        "benchmark",
        help="Inference/training speed and memory of the zoo's models.",
        description=BENCHMARK_DESCRIPTION,
    )
    add_arguments(parser)
    # the original code runs from a checkout (benchmarks/benchmark.py); the option is
    # refused with the way there
    parser.add_argument("--original-dir", default=None, help=argparse.SUPPRESS)
    parser.set_defaults(func=run_command)


def add_arguments(parser) -> None:
    """The options of ``asteroid-spmamba benchmark``."""
    parser.add_argument("--models", default="spmamba,tfgridnet", help="comma-separated zoo names")
    parser.add_argument(
        "--seconds", default="4,16,60", help="inference mixture lengths, comma-separated"
    )
    parser.add_argument(
        "--train-seconds", type=float, default=3.0, help="training segment length (s)"
    )
    parser.add_argument("--train-batches", default="1,4", help="training batch sizes ('' for none)")
    parser.add_argument(
        "--dtypes", default="fp32,bf16", help=f"comma-separated, from {','.join(BENCHMARK_DTYPES)}"
    )
    parser.add_argument(
        "--backends",
        default="auto",
        help="SPMamba scan backends, comma-separated: auto,cuda,triton,torch",
    )
    parser.add_argument(
        "--variants",
        default="default",
        help=f"GridNet fast paths, comma-separated: {','.join(BENCHMARK_VARIANTS)}",
    )
    parser.add_argument("--repeats", type=int, default=10, help="timed runs (median reported)")
    parser.add_argument(
        "--train-repeats", type=int, default=None, help="timed training steps (default --repeats)"
    )
    parser.add_argument(
        "--warmup", type=int, default=2, help="untimed runs first (autotuning, compilation)"
    )
    add_device_argument(parser)
    parser.add_argument("--preset", default="echo2mix", help="zoo preset")
    parser.add_argument("--tiny", action="store_true", help="small configurations (smoke test)")
    parser.add_argument(
        "--overrides",
        default=None,
        help='JSON {"model": {"arg": value}} applied to the zoo configurations',
    )
    parser.add_argument("--out-dir", default="benchmark_results", help="where the result files go")
    parser.add_argument(
        "--time-budget",
        type=float,
        default=None,
        help="seconds; measurements that would start later are skipped",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument(
        "--cudnn-benchmark", action="store_true", help="torch.backends.cudnn.benchmark = True"
    )


def run_command(args, original: Optional[Callable[[dict], "nn.Module"]] = None) -> int:
    """``asteroid-spmamba benchmark`` with the parsed ``args`` (and the original
    code's builder, if any)."""
    import torch

    from ..benchmark import markdown_table, run_benchmark
    from ..devices import resolve_device

    if getattr(args, "original_dir", None) and original is None:
        print(
            "error: timing the original SPMamba code runs from a checkout of this repository: "
            "python benchmarks/benchmark.py --original-dir DIR [the same options]",
            file=sys.stderr,
        )
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        overrides = json.loads(args.overrides) if args.overrides else None
    except json.JSONDecodeError as err:
        raise ValueError(
            f'--overrides is not valid JSON ({err}); example: \'{{"spmamba": {{"n_layers": 2}}}}\''
        ) from err
    result = run_benchmark(
        models=_csv_list(args.models),
        seconds=_csv_list(args.seconds, float),
        train_seconds=args.train_seconds,
        train_batches=_csv_list(args.train_batches, int),
        dtypes=_csv_list(args.dtypes),
        backends=_csv_list(args.backends),
        variants=_csv_list(args.variants),
        repeats=args.repeats,
        warmup=args.warmup,
        train_repeats=args.train_repeats,
        device=str(resolve_device(args.device)),
        preset=args.preset,
        tiny=args.tiny,
        overrides=overrides,
        original=original,
        out_dir=args.out_dir,
        time_budget=args.time_budget,
        cudnn_benchmark=args.cudnn_benchmark,
    )
    meta = result["meta"]
    print(
        f"\nDevice: {meta['device_name']} ({meta['device']}); torch {meta['torch']}, CUDA "
        f"{meta['cuda']}, triton {meta.get('triton')}, mamba_ssm {meta.get('mamba_ssm')}; git "
        f"{meta['git_revision']}; {meta['elapsed_s']:.0f} s\n"
    )
    print(markdown_table(result["rows"]))
    for note in result["notes"]:
        print(f"- {note}")
    for key in ("sdpa_fused_fp32", "triton_autotune"):
        if meta.get(key) is not None:
            print(f"- {key}: {meta[key]}")
    if result["files"]:
        print("\nWrote " + ", ".join(sorted(result["files"].values())))
    return 0
