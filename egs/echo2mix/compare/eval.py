#!/usr/bin/env python
"""Stage 2 of the comparison recipe: score one trained model on the test split (SDR, SDRi, SI-SNR, SI-SNRi)."""
import sys

from asteroid_spmamba.recipes.training import eval_main

if __name__ == "__main__":
    sys.exit(eval_main(description=__doc__))
