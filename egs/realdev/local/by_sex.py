#!/usr/bin/env python
"""Scores of a real-speech set by the sexes of each mixture's talkers: mixed, two women, two men.

Reads the per-mixture scores that ``asteroid-spmamba evaluate`` writes (``metrics.csv``) and the
speakers' sexes from the set's ``dev_set.json`` (``make_dev_set.py``), and prints a Markdown table:

    asteroid-spmamba evaluate spmamba-small-kokoro2mix --test-dir /data/realdev/reverb \
        --out-dir ev/reverb          # and likewise ev/anechoic
    python egs/realdev/local/by_sex.py /data/realdev ev/reverb/metrics.csv ev/anechoic/metrics.csv

The goal of a flagship model is same-sex pairs within 1.5 dB of mixed-sex ones.
"""

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np

GROUPS = {"mixed-sex": {"female", "male"}, "two women": {"female"}, "two men": {"male"}}
METRICS = ("si_snr_i", "sdr_i")


def by_sex(dev_set: dict, rows: list[dict]) -> dict[str, dict[str, float]]:
    """Mean of each metric per pair group (and ``all``), with the group's mixture count ``n``."""
    sexes = {m["id"]: set(m["sexes"]) for m in dev_set["mixtures"]}
    unknown = [r["utt_id"] for r in rows if r["utt_id"] not in sexes]
    if unknown:
        raise ValueError(
            f"{len(unknown)} scored mixtures are not in dev_set.json (first: {unknown[0]}); "
            "score the set that this dev_set.json describes."
        )
    out = {}
    for group, wanted in [("all", None), *GROUPS.items()]:
        members = [r for r in rows if wanted is None or sexes[r["utt_id"]] == wanted]
        if members:
            out[group] = {m: float(np.mean([float(r[m]) for r in members])) for m in METRICS}
            out[group]["n"] = len(members)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("dev_set", type=Path, help="the set's folder (holding dev_set.json)")
    p.add_argument(
        "metrics", type=Path, nargs="+", help="metrics.csv of evaluate, one per condition"
    )
    p.add_argument("--names", nargs="*", default=None, help="a column name per metrics.csv")
    args = p.parse_args(argv)
    manifest = args.dev_set / "dev_set.json"
    if not manifest.is_file():
        print(
            f"error: {manifest} not found; give the folder make_dev_set.py wrote", file=sys.stderr
        )
        return 1
    dev_set = json.loads(manifest.read_text())
    names = args.names or [m.parent.name for m in args.metrics]
    if len(names) != len(args.metrics):
        p.error("give one --names entry per metrics.csv")
    tables = []
    for path in args.metrics:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        try:
            tables.append(by_sex(dev_set, rows))
        except ValueError as err:
            print(f"error: {path}: {err}", file=sys.stderr)
            return 1
    print("| pairs | mixtures | " + " | ".join(f"{n} SI-SNRi / SDRi" for n in names) + " |")
    print("|---|---:|" + "---:|" * len(names))
    for group in ["all", *GROUPS]:
        if group not in tables[0]:
            continue
        cells = [f"{t[group]['si_snr_i']:.2f} / {t[group]['sdr_i']:.2f}" for t in tables]
        print(f"| {group} | {tables[0][group]['n']} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
