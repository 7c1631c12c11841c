#!/usr/bin/env python
"""Stage 2 of the mini recipe: score a trained model on the test split and compare experiments.

Thin wrapper around :func:`asteroid_spmamba.engine.evaluate`: writes ``EXP_DIR/eval/metrics.csv``
(one row per utterance) and ``EXP_DIR/eval/summary.json``, then prints every experiment of
``--compare-dir`` evaluated on the same test folder side by side, with the stored figures of
``--reference`` for the models not trained here (in a fresh clone: the Conv-TasNet comparison).
"""
import argparse
import sys

from asteroid_spmamba import engine

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    engine.add_evaluation_arguments(parser)
    parser.add_argument("--compare-dir", default=None, help="print all experiments under this folder (e.g. exp)")
    parser.add_argument("--reference", default=None,
                        help="YAML of stored results printed beside them (e.g. local/reference_results.yml)")
    args = parser.parse_args()
    status = engine.evaluate_main(args)
    if status == 0 and args.compare_dir:
        print(engine.compare_experiments(args.compare_dir, test_dir=args.test_dir, reference=args.reference))
    sys.exit(status)
