#!/usr/bin/env python
"""Deprecated: run.sh runs `python -m asteroid_spmamba.commands.compare train` with these arguments."""

import sys
import warnings

from asteroid_spmamba.commands.compare import train_main

if __name__ == "__main__":
    warnings.warn(
        "train.py is deprecated: run python -m asteroid_spmamba.commands.compare train",
        DeprecationWarning,
        stacklevel=2,
    )
    sys.exit(train_main())
