"""``asteroid-spmamba score REF_DIR EST_DIR [-o CSV]``: separated folders scored against their
references (:func:`asteroid_spmamba.scoring.score_folders`)."""

import sys


def add_subcommand(subparsers) -> None:
    """Register ``asteroid-spmamba score``."""
    p = subparsers.add_parser(
        "score",
        help="score separated folders against Echo2Mix-layout references "
        "(SDR, SDRi, SI-SNR, SI-SNRi)",
        description="Score estimates against references with the best permutation. REF_DIR: one "
        "folder per utterance with mix.wav, spk1_reverb.wav, spk2_reverb.wav. EST_DIR: one folder "
        "per utterance ID with one wav per source (sorted names).",
    )
    p.add_argument("ref_dir", help="reference split folder (Echo2Mix layout)")
    p.add_argument("est_dir", help="folder of estimates, one sub-folder per utterance ID")
    p.add_argument("-o", "--output", default=None, help="per-utterance CSV to write")
    p.add_argument("--n-src", type=int, default=2)
    p.set_defaults(func=run_score)


def run_score(args) -> int:
    from ..scoring import METRICS, score_folders

    try:
        rows, means = score_folders(
            args.ref_dir, args.est_dir, n_src=args.n_src, output_csv=args.output
        )
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"{len(rows)} utterances")
    for k in METRICS:
        print(f"{k:>9}: {means[k]:7.2f} dB")
    if args.output:
        print(f"per-utterance scores written to {args.output}")
    return 0
