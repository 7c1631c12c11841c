#!/usr/bin/env python
"""Stage 4 of the comparison recipe: the paper's table (SDR, SDRi, SI-SNR, SI-SNRi, Params, MACs) with
training time per epoch, real-time factor and peak memory, as results.md, results.csv and results.png."""
import sys

from asteroid_spmamba.recipes.compare import collect_main

if __name__ == "__main__":
    sys.exit(collect_main())
