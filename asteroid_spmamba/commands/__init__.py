"""``asteroid-spmamba`` command line: every command of the package, one module per family.

Each module listed in ``COMMAND_MODULES`` defines ``add_subcommand(subparsers)``, which adds its
parser(s) and sets ``func`` (called with the parsed arguments, returning an exit code). Building the
command line imports no library module that needs torch, numpy or Lightning: each command imports
what it runs inside its ``func``, and what its ``--help`` shows of the library comes from
:mod:`.help_text` (checked against the library by the tests). So ``--help`` is quick, and a broken
optional dependency of one command breaks neither the others nor any ``--help``.

This package is the only place that parses command lines: the library modules never import it.
Besides ``asteroid-spmamba`` (:func:`main`), it holds ``asteroid-spmamba-infer``
(:mod:`.infer`), the comparison recipe's commands (:mod:`.compare`), the dataset recipes' stage 0
(:mod:`.prepare`) and the streaming benchmark (:mod:`.bench_streaming`).
"""

import argparse
import importlib
import sys
from typing import Optional

COMMAND_MODULES = [
    "asteroid_spmamba.commands.convert",
    "asteroid_spmamba.commands.separate",
    "asteroid_spmamba.commands.models",
    "asteroid_spmamba.commands.publish",
    "asteroid_spmamba.commands.data",
    "asteroid_spmamba.commands.score",
    "asteroid_spmamba.commands.train",
    "asteroid_spmamba.commands.complexity",
    "asteroid_spmamba.commands.benchmark",
    "asteroid_spmamba.commands.adapt",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="asteroid-spmamba", description="SPMamba and its baselines for Asteroid."
    )
    from .. import __version__

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_subcommand(subparsers)
    return parser


# What a command reports as a message, not a traceback: problems with the user's input or files.
USER_ERRORS = (
    FileNotFoundError,
    FileExistsError,
    NotADirectoryError,
    IsADirectoryError,
    PermissionError,
    ValueError,
    TypeError,
    ImportError,
)


def main(argv: Optional[list[str]] = None) -> int:
    """Run one command; a problem with the input (a missing, unreadable or wrong file, a bad value)
    is printed as ``error: <what, and what to do>`` with exit status 1, never as a traceback."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except USER_ERRORS as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except OSError as err:  # e.g. a truncated or unreadable file: name it
        where = f" ({err.filename})" if getattr(err, "filename", None) else ""
        print(f"error: {err.strerror or err}{where}", file=sys.stderr)
        return 1
