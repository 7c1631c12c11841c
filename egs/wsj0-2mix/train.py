#!/usr/bin/env python
"""Deprecated: run.sh runs `asteroid-spmamba train` (python -m asteroid_spmamba.cli train) with these arguments."""

import sys

from asteroid_spmamba.training.cli import deprecated_script

if __name__ == "__main__":
    sys.exit(deprecated_script("train"))
