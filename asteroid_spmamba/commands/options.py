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


def _passes(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(
            f"expected a whole number of passes, 1 or more, got {text!r}"
        )
    return value


def add_shifts_argument(parser: argparse.ArgumentParser) -> None:
    """``--shifts N``, the shift trick of ``separate`` and ``evaluate``
    (:func:`asteroid_spmamba.inference.running.shift_averaged`)."""
    parser.add_argument(
        "--shifts",
        type=_passes,
        default=1,
        help="passes averaged per mixture, each on the mixture delayed by another fraction of the "
        "model's analysis hop: N times the compute for a little more quality (README); "
        "default 1",
    )
