#!/usr/bin/env python
"""Stage 1 of the mini recipe: train a separation model from a YAML configuration.

Thin wrapper around :func:`asteroid_spmamba.engine.train`; ``python train.py --help`` lists the
options (``--conf``, ``--exp-dir``, ``--corpus``, ``--gpus``, ``--precision``, ``--max-steps``, ...).
"""
import argparse
import sys

from asteroid_spmamba import engine

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    engine.add_training_arguments(parser)
    sys.exit(engine.train_main(parser.parse_args()))
