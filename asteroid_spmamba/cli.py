"""``asteroid-spmamba`` command line: one sub-command per feature module.

Each module listed in ``COMMAND_MODULES`` defines ``add_subcommand(subparsers)``, which adds its
parser and sets ``func`` (called with the parsed arguments, returning an exit code). Modules are
imported only when the command line is built, so a broken optional dependency of one command does
not break the others' ``--help``.
"""

import argparse
import importlib
import sys
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
    import torch

COMMAND_MODULES = [
    "asteroid_spmamba.models.spmamba_original",
    "asteroid_spmamba.inference",
    "asteroid_spmamba.demo",
    "asteroid_spmamba.publish",
    "asteroid_spmamba.data.synthetic",
    "asteroid_spmamba.data.speech_bank",
    "asteroid_spmamba.scoring",
    "asteroid_spmamba.training.cli",
    "asteroid_spmamba.complexity",
    "asteroid_spmamba.benchmark",
]


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    """``--device auto|cpu|cuda|cuda:N``, the same in every command (read it with :func:`resolve_device`)."""
    parser.add_argument(
        "--device",
        default="auto",
        help="auto (default: the GPU when there is one), cpu, cuda or cuda:N",
    )


def resolve_device(spec: str) -> "torch.device":
    """``"auto"`` -> the first GPU when CUDA is available, else the CPU; other names are checked."""
    import torch

    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise ValueError(
            f"--device {spec!r} is not a device; use auto, cpu, cuda or cuda:N."
        ) from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"--device {spec} was given but CUDA is not available; use --device cpu (or auto)."
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(
                f"--device {spec}: only {torch.cuda.device_count()} GPU(s) are visible."
            )
    elif device.type != "cpu":
        raise ValueError(f"--device {spec}: only auto, cpu, cuda and cuda:N are supported.")
    return device


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="asteroid-spmamba", description="SPMamba and its baselines for Asteroid."
    )
    from ._version import __version__

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


if __name__ == "__main__":
    sys.exit(main())
