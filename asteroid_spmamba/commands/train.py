"""``asteroid-spmamba train`` and ``asteroid-spmamba evaluate``: the commands that every recipe's
stages 1 and 2 run (:func:`asteroid_spmamba.training.train`,
:func:`asteroid_spmamba.training.evaluate`)."""

import argparse
import json
import sys
from pathlib import Path

from .options import add_device_argument, add_shifts_argument

_TRAINING_FLAGS = (
    # flag, conf key, type, help
    ("--gpus", "training.gpus", int, "GPUs to train on (0: CPU, the default)"),
    (
        "--precision",
        "training.precision",
        str,
        "Lightning precision, e.g. 32-true (default) or bf16-mixed",
    ),
    ("--accumulate-grad-batches", "training.accumulate_grad_batches", int, "gradient accumulation"),
    ("--batch-size", "training.batch_size", int, "training batch size"),
    ("--max-epochs", "training.max_epochs", int, "maximum number of epochs"),
    ("--max-steps", "training.max_steps", int, "maximum number of optimizer steps (-1: no limit)"),
    ("--max-time", "training.max_time", float, "maximum training time in seconds"),
    ("--lr", "optim.lr", float, "learning rate"),
    ("--seed", "training.seed", int, "random seed"),
)


def add_training_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``train``: the configuration, the experiment folder and common overrides."""
    parser.add_argument(
        "--conf", required=True, help="YAML configuration (model:, data:, training:, optim:)"
    )
    parser.add_argument(
        "--exp-dir",
        "--exp_dir",
        dest="exp_dir",
        required=True,
        help="experiment folder (exp/<tag>); resumed from its checkpoints/last.ckpt if present",
    )
    parser.add_argument(
        "--corpus", default=None, help="corpus folder holding train/valid/test (sets data.root)"
    )
    for flag, key, typ, help_text in _TRAINING_FLAGS:
        parser.add_argument(
            flag,
            dest=key,
            type=typ,
            default=None,
            help=help_text,
            metavar=key.rsplit(".", 1)[-1].upper(),
        )
    parser.add_argument(
        "--no-resume", action="store_true", help="start over even if last.ckpt exists"
    )
    parser.add_argument(
        "--no-progress-bar", action="store_true", help="no progress bars (e.g. in CI logs)"
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any configuration override, e.g. --set model.args.emb_dim=16 (repeatable)",
    )


def conf_from_args(args: argparse.Namespace) -> dict:
    from ..training.config import load_conf

    overrides = list(args.overrides)
    if args.corpus is not None:
        overrides.append(f"data.root={json.dumps(str(Path(args.corpus).absolute()))}")
    for _, key, _, _ in _TRAINING_FLAGS:
        value = getattr(args, key)
        if value is not None:
            overrides.append(f"{key}={json.dumps(value)}")
    if args.no_resume:
        overrides.append("training.resume=false")
    if args.no_progress_bar:
        overrides.append("training.progress_bar=false")
    return load_conf(args.conf, overrides)


def add_evaluation_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``evaluate``: what to score, where, and the table of
    experiments printed after it."""
    parser.add_argument(
        "model",
        metavar="EXP_DIR_OR_MODEL",
        help="experiment folder (uses its best_model.pth) or a serialized model .pth",
    )
    parser.add_argument(
        "--test-dir",
        "--test_dir",
        dest="test_dir",
        default=None,
        help="test folder (default: data.test_dir of the experiment's conf.yml)",
    )
    parser.add_argument(
        "--out-dir",
        "--out_dir",
        dest="out_dir",
        default=None,
        help="output folder (default: EXP_DIR/eval)",
    )
    parser.add_argument(
        "--n-save-examples",
        "--n_save_examples",
        dest="n_save_examples",
        type=int,
        default=0,
        help="write wav files of the first N utterances (default 0)",
    )
    add_device_argument(parser)
    add_shifts_argument(parser)
    parser.add_argument(
        "--no-progress-bar", "--no_progress_bar", dest="no_progress_bar", action="store_true"
    )
    parser.add_argument(
        "--compare-dir",
        "--compare_dir",
        dest="compare_dir",
        default=None,
        help="then print every experiment under this folder scored on the same test set (e.g. exp)",
    )
    parser.add_argument(
        "--reference",
        default=None,
        help="with --compare-dir: YAML of stored results printed beside them",
    )


def train_main(args: argparse.Namespace) -> int:
    from ..training.fit import train

    try:
        conf = conf_from_args(args)
        summary = train(conf, args.exp_dir)
    except (FileNotFoundError, ValueError, TypeError, ImportError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if "rank" in summary:  # a data-parallel helper process: the first process reports
        return 0
    best_val_loss = summary["best_val_loss"]
    print(
        f"Trained {summary['model']} ({summary['n_parameters']:,} parameters): "
        f"{summary['global_step']} steps, {summary['epochs']} epochs in "
        f"{summary['wall_time_s']:.0f} s; best val loss "
        f"{best_val_loss if best_val_loss is None else round(best_val_loss, 3)}. "
        f"Model: {Path(args.exp_dir) / 'best_model.pth'}"
    )
    return 0


def evaluate_main(args: argparse.Namespace) -> int:
    from ..devices import resolve_device
    from ..training.evaluate import compare_experiments, evaluate

    try:
        summary = evaluate(
            args.model,
            args.test_dir,
            args.out_dir,
            args.n_save_examples,
            str(resolve_device(args.device)),
            progress=not args.no_progress_bar,
            scoring_processes=None,
            shifts=args.shifts,
        )  # a command: processes where the cores pay off
        if args.compare_dir:
            print(
                compare_experiments(
                    args.compare_dir, test_dir=summary["test_dir"], reference=args.reference
                )
            )
    except (FileNotFoundError, ValueError, TypeError, ImportError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


def add_subcommand(subparsers) -> None:
    """``asteroid-spmamba train`` and ``asteroid-spmamba evaluate``."""
    p = subparsers.add_parser(
        "train",
        help="train a separation model from a YAML configuration",
        description="Train a separation model (PIT, negative SI-SDR) from a YAML configuration "
        "into an experiment folder: conf.yml, checkpoints/, logs/, best_model.pth.",
    )
    add_training_arguments(p)
    p.set_defaults(func=train_main)
    p = subparsers.add_parser(
        "evaluate",
        help="score a trained model on a test folder (SDR, SI-SNR and improvements)",
        description="Separate every ID/mix.wav of a test folder and score it against "
        "ID/spk{k}_reverb.wav: metrics.csv (per utterance) and summary.json (means).",
    )
    add_evaluation_arguments(p)
    p.set_defaults(func=evaluate_main)
