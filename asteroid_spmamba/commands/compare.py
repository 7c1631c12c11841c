"""The comparison recipe's commands (``egs/echo2mix/compare/run.sh``, stages 1 to 4), on the
functions of :mod:`asteroid_spmamba.recipes.compare`::

    python -m asteroid_spmamba.commands.compare train --model spmamba --size tiny \\
        --conf local/conf.yml --exp-dir exp/x/spmamba
    python -m asteroid_spmamba.commands.compare dev exp/x/spmamba \\
        --dev "real_reverb=DIR real_anechoic=DIR"
    python -m asteroid_spmamba.commands.compare bench exp/x/spmamba [--seconds 4] [--device cpu]
    python -m asteroid_spmamba.commands.compare collect exp/x --models spmamba,tfgridnet
"""

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

from ..devices import resolve_device
from ..recipes.compare import (
    SIZE_NAMES,
    bench,
    collect,
    dev_eval,
    markdown_table,
    parse_dev_dirs,
    parse_models,
    read_curve,
    train_model,
    write_results,
)
from .options import add_device_argument
from .train import add_training_arguments, conf_from_args


def train_main(argv: Optional[Sequence[str]] = None) -> int:
    """``train``: one zoo model with the shared configuration of the comparison recipe."""
    parser = argparse.ArgumentParser(
        description="Train one model of the paper's table with the shared "
        "configuration of the comparison recipe."
    )
    parser.add_argument("--model", required=True, help="zoo name (spmamba, tfgridnet, bsrnn, ...)")
    parser.add_argument(
        "--size",
        default="full",
        choices=SIZE_NAMES,
        help="full: the paper's configuration; small/tiny: shrunk for CPU runs",
    )
    add_training_arguments(parser)
    args = parser.parse_args(argv)
    try:
        (name,) = parse_models(args.model)
        summary = train_model(conf_from_args(args), name, args.size, args.exp_dir)
    except (FileNotFoundError, ValueError, TypeError, ImportError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(
        f"Trained {name} ({summary['n_parameters']:,} parameters, size {args.size}): "
        f"{summary['global_step']} steps in {summary['wall_time_s']:.0f} s."
    )
    return 0


def collect_main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description="Gather the comparison recipe's results into a table and a plot."
    )
    parser.add_argument(
        "exp_root", help="folder holding one experiment folder per model (exp/<tag>)"
    )
    parser.add_argument(
        "--models", default="all", help="comma-separated zoo names (default: all eight)"
    )
    parser.add_argument("--out_dir", "--out-dir", default=None, help="default: EXP_ROOT/results")
    parser.add_argument("--title", default="")
    parser.add_argument(
        "--note", action="append", default=[], help="line under the table (repeatable)"
    )
    args = parser.parse_args(argv)
    try:
        models = parse_models(args.models)
        rows = collect(args.exp_root, models)
        curves = {name: read_curve(Path(args.exp_root) / name) for name in models}
        paths = write_results(
            rows, args.out_dir or Path(args.exp_root) / "results", args.title, args.note, curves
        )
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(markdown_table(rows, args.title, args.note))
    print("Written: " + ", ".join(str(p) for p in paths.values() if p is not None))
    return 0


def bench_main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description="Params, MACs, real-time factor and peak memory of a trained model."
    )
    parser.add_argument("exp_dir", help="experiment folder holding best_model.pth")
    parser.add_argument(
        "--seconds", type=float, default=4.0, help="length of the benchmark mixture (s)"
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--no-train-step",
        "--no_train_step",
        action="store_true",
        help="skip the training step's time and memory",
    )
    add_device_argument(parser)
    args = parser.parse_args(argv)
    try:
        result = bench(
            args.exp_dir,
            args.seconds,
            str(resolve_device(args.device)),
            args.repeats,
            measure_training=not args.no_train_step,
        )
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    mem = "–" if result["peak_mem_mb"] is None else f"{result['peak_mem_mb']:.1f} MB"
    print(
        f"{args.exp_dir}: {result['params_m']:.3f} M params, {result['macs_g_per_s']:.3f} G "
        f"MACs/s, RTF {result['rtf']:.3f} ({result['device']}), peak memory {mem}"
    )
    if "train_step_ms" in result:
        train_mem = (
            "–" if result["train_peak_mem_mb"] is None else f"{result['train_peak_mem_mb']:.0f} MB"
        )
        print(
            f"  training step (batch {result['train_batch']} x {result['train_seconds']:g} s, "
            f"{result['train_precision']}): {result['train_step_ms']:.1f} "
            f"ms, peak memory {train_mem}"
        )
    return 0


def dev_main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description="Score a trained model and its training snapshots on dev sets."
    )
    parser.add_argument("exp_dir", help="experiment folder holding best_model.pth (and snapshots/)")
    parser.add_argument(
        "--dev",
        required=True,
        help="NAME=FOLDER pairs, e.g. 'real_reverb=data/realdev/reverb "
        "real_anechoic=data/realdev/anechoic'",
    )
    add_device_argument(parser)
    args = parser.parse_args(argv)
    try:
        dev_dirs = parse_dev_dirs(args.dev)
        rows = dev_eval(
            args.exp_dir, dev_dirs, str(resolve_device(args.device)), scoring_processes=None
        )
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    for name in dev_dirs:
        summary = json.loads((Path(args.exp_dir) / f"eval_{name}" / "summary.json").read_text())
        print(
            f"{args.exp_dir} on {name}: SI-SNRi {summary['si_snr_i']:.2f} dB, SDRi "
            f"{summary['sdr_i']:.2f} dB"
        )
    if rows:
        print(f"learning curve: {len(rows)} snapshots in {Path(args.exp_dir) / 'curve.csv'}")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {"train": train_main, "dev": dev_main, "bench": bench_main, "collect": collect_main}
    if not argv or argv[0] not in commands:
        print(
            f"usage: python -m asteroid_spmamba.commands.compare {{{','.join(commands)}}} ...",
            file=sys.stderr,
        )
        return 2
    return commands[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main())
