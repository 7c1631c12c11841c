#!/usr/bin/env python
"""Deprecated: run.sh runs `asteroid-spmamba evaluate` (python -m asteroid_spmamba evaluate) with these arguments."""

import sys

from asteroid_spmamba.commands.train import deprecated_script

if __name__ == "__main__":
    sys.exit(deprecated_script("evaluate"))
