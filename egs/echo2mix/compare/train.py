#!/usr/bin/env python
"""Stage 1 of the comparison recipe: train one model of the paper's table with the shared configuration.

``python train.py --model tfgridnet --size full --conf local/conf.yml --exp-dir exp/echo2mix_full/tfgridnet``;
the model comes from ``asteroid_spmamba.zoo`` (see :mod:`asteroid_spmamba.recipes.compare`).
"""
import sys

from asteroid_spmamba.recipes.compare import train_main

if __name__ == "__main__":
    sys.exit(train_main())
