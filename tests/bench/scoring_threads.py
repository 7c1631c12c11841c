"""Scoring (BSS-eval SDR and SI-SNR) of a test folder's utterances in spawned processes, with one
BLAS/OpenMP thread per process (what ``training.evaluate.scoring_pool`` starts) or with the
libraries' defaults (every core per process: oversubscribed). Prints a markdown table.

    python tests/bench/scoring_threads.py DIR [--processes 2] [--utterances 16]

DIR holds ``ID/mix.wav`` and ``ID/spk{1,2}_reverb.wav`` (e.g. egs/realdev's ``reverb``); the
estimates are the references swapped and noised, so no model is needed.
"""

import argparse
import multiprocessing
import os
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from asteroid_spmamba.scoring import score_utterance
from asteroid_spmamba.training.evaluate import THREAD_VARIABLES, scoring_pool


def _item(folder: Path):
    mix, rate = sf.read(folder / "mix.wav", dtype="float32")
    refs = np.stack([sf.read(folder / f"spk{k}_reverb.wav", dtype="float32")[0] for k in (1, 2)])
    noise = np.random.default_rng(0).standard_normal(refs.shape).astype(np.float32)
    return mix, refs, refs[::-1] + 0.3 * noise, rate


def _timed(pool, items) -> float:
    pool.apply(score_utterance, items[0])  # the imports, outside the timing
    began = time.perf_counter()
    for result in [pool.apply_async(score_utterance, item) for item in items]:
        result.get()
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=Path)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--utterances", type=int, default=16)
    args = parser.parse_args()
    items = [
        _item(f) for f in sorted(p for p in args.dir.iterdir() if p.is_dir())[: args.utterances]
    ]
    print(f"{len(items)} utterances, {args.processes} processes, {os.cpu_count()} cores\n")
    print("| threads per process | seconds | per utterance |\n|---|---:|---:|")
    for label in ("one (scoring_pool)", "library default"):
        if label.startswith("one"):
            pool = scoring_pool(args.processes)
        else:
            for name in THREAD_VARIABLES:
                os.environ.pop(name, None)
            pool = multiprocessing.get_context("spawn").Pool(args.processes)
        try:
            seconds = _timed(pool, items)
        finally:
            pool.terminate()
        print(f"| {label} | {seconds:.1f} | {seconds / len(items):.2f} |")


if __name__ == "__main__":
    main()
