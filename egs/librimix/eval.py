#!/usr/bin/env python
"""Stage 2: score the best model of an experiment on the Libri2Mix test split.

Writes ``EXP_DIR/eval/metrics.csv`` (SDR, SDRi, SI-SNR, SI-SNRi per utterance) and
``EXP_DIR/eval/summary.json`` (their means); see :mod:`asteroid_spmamba.recipes.training`.
"""
import sys

from asteroid_spmamba.recipes.training import eval_main

if __name__ == "__main__":
    sys.exit(eval_main(description=__doc__))
