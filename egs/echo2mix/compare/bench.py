#!/usr/bin/env python
"""Stage 3 of the comparison recipe: Params, MACs/s, inference real-time factor and peak memory of one
trained model, written to ``EXP_DIR/bench.json`` (run once per model, in its own process)."""
import sys

from asteroid_spmamba.recipes.compare import bench_main

if __name__ == "__main__":
    sys.exit(bench_main())
