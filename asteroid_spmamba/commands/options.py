"""Options shared by several commands."""

import argparse


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    """``--device auto|cpu|cuda|cuda:N``, the same in every command (read it with
    :func:`asteroid_spmamba.devices.resolve_device`)."""
    parser.add_argument(
        "--device",
        default="auto",
        help="auto (default: the GPU when there is one), cpu, cuda or cuda:N",
    )
