#!/usr/bin/env python
"""Deprecated: run.sh runs `asteroid-spmamba train` (python -m asteroid_spmamba train) with these arguments."""

import sys

from asteroid_spmamba.commands.train import deprecated_script

if __name__ == "__main__":
    sys.exit(deprecated_script("train"))
