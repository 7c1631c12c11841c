"""``asteroid-spmamba`` command line: one sub-command per feature module.

Each module listed in ``COMMAND_MODULES`` defines ``add_subcommand(subparsers)``, which adds its
parser and sets ``func`` (called with the parsed arguments, returning an exit code). Modules are
imported only when the command line is built, so a broken optional dependency of one command does
not break the others' ``--help``.
"""
import argparse
import importlib
import sys
from typing import List, Optional

COMMAND_MODULES = [
    "asteroid_spmamba.convert",
    "asteroid_spmamba.inference",
    "asteroid_spmamba.publish",
    "asteroid_spmamba.data.synthetic",
    "asteroid_spmamba.data.speech_bank",
    "asteroid_spmamba.scoring",
    "asteroid_spmamba.engine",
    "asteroid_spmamba.complexity",
    "asteroid_spmamba.benchmark",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="asteroid-spmamba", description="SPMamba and its baselines for Asteroid."
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_subcommand(subparsers)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
