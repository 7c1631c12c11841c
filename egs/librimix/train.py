#!/usr/bin/env python
"""Stage 1: train SPMamba on Libri2Mix (asteroid.data.LibriMix) with the shared engine.

``python train.py --help`` lists the options (``--conf``, ``--exp-dir``, ``--gpus``, ``--precision``,
``--accumulate-grad-batches``, ``--set key=value``, ...); see :mod:`asteroid_spmamba.recipes.training`.
"""
import sys

from asteroid_spmamba.recipes.training import train_main

if __name__ == "__main__":
    sys.exit(train_main(description=__doc__))
