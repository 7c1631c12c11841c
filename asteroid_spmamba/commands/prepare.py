"""Stage 0 of the dataset recipes: check a downloaded or generated dataset and write the lists the
training reads (:mod:`asteroid_spmamba.recipes`). Each recipe's ``local/prepare_data.py`` runs one
of these, e.g. ``egs/librimix/local/prepare_data.py --librimix_dir /data/Libri2Mix --out_dir
data/wav8k/min``; the same as ``python -m asteroid_spmamba.commands.prepare librimix ...``.
"""

import argparse
import sys
from collections.abc import Sequence
from typing import Callable, Optional

from ..data.asteroid_datasets import LIBRIMIX_TASK_FOLDERS, WHAM_TASK_FOLDERS
from ..recipes import echo2mix, librimix, wham, wsj0mix
from ..recipes.common import DatasetSource


def preparation_parser(dataset_option: str, description: str, source: DatasetSource):
    """The command line of a dataset's stage 0: ``--<dataset>_dir``, ``--out_dir``,
    ``--sample_rate``, ``--mode``, ``--no_progress`` (dashes or underscores); the dataset adds its
    own."""
    parser = argparse.ArgumentParser(
        description=description,
        epilog=source.describe(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        f"--{dataset_option}_dir",
        f"--{dataset_option}-dir",
        dest="dataset_dir",
        required=True,
        help="the generated or downloaded dataset folder",
    )
    parser.add_argument("--out_dir", "--out-dir", required=True, help="where the lists go")
    parser.add_argument("--sample_rate", "--sample-rate", type=int, default=8000)
    parser.add_argument("--mode", default="min", choices=("min", "max"))
    parser.add_argument("--no_progress", "--no-progress", action="store_true")
    return parser


def run_preparation(prepare: Callable[[], dict[str, int]], written: str) -> int:
    """Run ``prepare()`` for a command line: the counts per split, or the
    error, and an exit code."""
    try:
        counts = prepare()
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"{written}: " + ", ".join(f"{split} {n} mixtures" for split, n in counts.items()))
    return 0


def echo2mix_main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description="Check an Echo2Mix folder and link its splits as OUT/{train,valid,test}.",
        epilog=echo2mix.SOURCE.describe(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--echo2mix_dir", "--echo2mix-dir", required=True, help="downloaded Echo2Mix folder"
    )
    parser.add_argument(
        "--out_dir", "--out-dir", required=True, help="where the split links and index.json go"
    )
    parser.add_argument("--sample_rate", "--sample-rate", type=int, default=16000)
    parser.add_argument("--n_src", "--n-src", type=int, default=2)
    args = parser.parse_args(argv)
    try:
        counts = echo2mix.prepare_echo2mix(
            args.echo2mix_dir, args.out_dir, args.sample_rate, args.n_src
        )
    except (FileNotFoundError, FileExistsError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(
        f"Echo2Mix splits linked in {args.out_dir}: "
        + ", ".join(f"{s} {n} utterances" for s, n in counts.items())
    )
    return 0


def librimix_main(argv: Optional[Sequence[str]] = None) -> int:
    parser = preparation_parser(
        "librimix",
        "Check a Libri2Mix folder and write the CSVs of asteroid.data.LibriMix.",
        librimix.source_info(),
    )
    parser.add_argument("--task", default="sep_clean", choices=sorted(LIBRIMIX_TASK_FOLDERS))
    parser.add_argument(
        "--splits",
        nargs="+",
        default=list(librimix.SPLITS),
        choices=librimix.ALL_SPLITS,
        help="splits to prepare (default: train-100 dev test, as the authors)",
    )
    args = parser.parse_args(argv)
    return run_preparation(
        lambda: librimix.prepare_librimix(
            args.dataset_dir,
            args.out_dir,
            args.task,
            args.sample_rate,
            args.mode,
            args.splits,
            show_progress=not args.no_progress,
        ),
        f"Libri2Mix ({args.task}) CSVs written to {args.out_dir}",
    )


def wsj0mix_main(argv: Optional[Sequence[str]] = None) -> int:
    parser = preparation_parser(
        "wsj0mix",
        "Check a WSJ0-2mix folder and write the json lists of asteroid.data.Wsj0mixDataset.",
        wsj0mix.source_info(),
    )
    parser.add_argument("--n_src", "--n-src", type=int, default=2)
    args = parser.parse_args(argv)
    return run_preparation(
        lambda: wsj0mix.prepare_wsj0mix(
            args.dataset_dir,
            args.out_dir,
            args.n_src,
            args.sample_rate,
            args.mode,
            show_progress=not args.no_progress,
        ),
        f"WSJ0-{args.n_src}mix lists written to {args.out_dir}",
    )


def wham_main(argv: Optional[Sequence[str]] = None) -> int:
    parser = preparation_parser(
        "wham",
        "Check a WHAM! folder and write the json lists of asteroid.data.WhamDataset.",
        wham.source_info(),
    )
    parser.add_argument("--task", default="sep_noisy", choices=sorted(WHAM_TASK_FOLDERS))
    args = parser.parse_args(argv)
    return run_preparation(
        lambda: wham.prepare_wham(
            args.dataset_dir,
            args.out_dir,
            args.task,
            args.sample_rate,
            args.mode,
            show_progress=not args.no_progress,
        ),
        f"WHAM! ({args.task}) lists written to {args.out_dir}",
    )


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {
        "echo2mix": echo2mix_main,
        "librimix": librimix_main,
        "wsj0mix": wsj0mix_main,
        "wham": wham_main,
    }
    if not argv or argv[0] not in commands:
        print(
            f"usage: python -m asteroid_spmamba.commands.prepare {{{','.join(commands)}}} ...",
            file=sys.stderr,
        )
        return 2
    return commands[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main())
