#!/usr/bin/env python
"""``asteroid-spmamba benchmark`` beside the original SPMamba code, with the same weights.

    python benchmarks/benchmark.py --original-dir /path/to/SPMamba
        [options of asteroid-spmamba benchmark]

``--original-dir`` (default ``$SPMAMBA_ORIGINAL_DIR``) is a checkout of JusperLee/SPMamba; the
original is built with this package's SPMamba configuration (:mod:`original_code`) and timed in the
same run, on the GPU with the mamba_ssm kernels, on a CPU with upstream's reference scan.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # original_code, beside this file

from asteroid_spmamba.commands import benchmark  # noqa: E402
from asteroid_spmamba.devices import resolve_device  # noqa: E402


def original_builder(original_dir: str, device: str):
    """``build(config)``: the original SPMamba with the architecture of our SPMamba ``config``."""
    from original_code import build_original, import_original_spmamba

    def build(config):
        return build_original(import_original_spmamba(original_dir, resolve_device(device)), config)

    return build


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--original-dir",
        default=os.environ.get("SPMAMBA_ORIGINAL_DIR"),
        help="checkout of JusperLee/SPMamba to time beside ours (default $SPMAMBA_ORIGINAL_DIR)",
    )
    benchmark.add_arguments(parser)
    args = parser.parse_args(argv)
    original = original_builder(args.original_dir, args.device) if args.original_dir else None
    return benchmark.run_command(args, original=original)


if __name__ == "__main__":
    sys.exit(main())
