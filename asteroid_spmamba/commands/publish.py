"""``asteroid-spmamba publish EXP_DIR ORG/NAME``: a model folder and its card from an experiment
folder (:func:`asteroid_spmamba.publish.publish`)."""

import argparse
import sys


def run_publish(args: argparse.Namespace) -> int:
    from ..publish import publish

    try:
        folder = publish(
            args.exp_dir, args.repo_id, args.out_dir, args.push, args.license, args.dataset
        )
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(
        f"Wrote {folder} (card: {folder / 'README.md'})"
        + ("" if args.push else "; upload it with --push.")
    )
    return 0


def add_subcommand(subparsers) -> None:
    """``asteroid-spmamba publish``."""
    p = subparsers.add_parser(
        "publish",
        help="write a model folder with a filled-in card from an experiment "
        "folder; --push uploads it",
        description="Write a save_pretrained folder for ORG/NAME from an experiment folder: the "
        "model of its best_model.pth and a card with the training data and settings (conf.yml), "
        "steps (train_summary.json) and the scores of every eval*/summary.json (the folder name "
        "after eval_ names the test set, also in the card's model-index). "
        "Uploads it only with --push.",
    )
    p.add_argument(
        "exp_dir", metavar="EXP_DIR", help="experiment folder (best_model.pth, conf.yml, ...)"
    )
    p.add_argument("repo_id", metavar="ORG/NAME", help="Hugging Face Hub repository")
    p.add_argument(
        "--out-dir",
        default=None,
        help="where to write the folder (default EXP_DIR/publish/ORG--NAME)",
    )
    p.add_argument(
        "--dataset",
        default=None,
        help="training data's name for the card (default: data.train_dir)",
    )
    p.add_argument(
        "--license", default=None, help="licence id of the weights (default mit, the package's)"
    )
    p.add_argument(
        "--push", action="store_true", help="upload to the Hub (needs a token: hf auth login)"
    )
    p.set_defaults(func=run_publish)
