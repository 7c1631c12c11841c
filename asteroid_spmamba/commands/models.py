"""``asteroid-spmamba models``: the models loadable by name, as a table."""

import argparse
import textwrap


def run_models(args: argparse.Namespace) -> int:
    from ..loading import DEFAULT_MODELS, format_pretrained, list_pretrained
    from ..pretrained import HERE as SHIPPED_FOLDER

    models = list_pretrained()
    print(format_pretrained(models))
    print()
    if args.verbose:
        for m in models:
            print(f"{m.name} ({m.kind})")
            details = [("trained on", m.training_data)]
            details += [("scores", ", ".join(f"{k} {v:g}" for k, v in m.scores.items()) or None)]
            details += [("url", m.url), ("sha256", m.sha256 if m.downloads else None)]
            details += [("notes", m.notes)]
            for label, value in details:
                if value:
                    print(
                        textwrap.fill(
                            value, 100, initial_indent=f"  {label}: ", subsequent_indent="    "
                        )
                    )
            print()
    defaults = ", ".join(f"{name} on {kind.upper()}" for kind, name in DEFAULT_MODELS.items())
    lines = [
        "REAL SPEECH: SI-SNRi on real reverberant two-talker recordings never trained on "
        "(egs/realdev).",
        "Use a name with `asteroid-spmamba separate NAME in.wav` or "
        "asteroid_spmamba.load_model(NAME); shipped",
        "models load offline, releases download and convert once. Also accepted: a local folder or",
        "checkpoint file, a checkpoint URL, or a Hugging Face Hub id ORG/NAME[@REVISION].",
        f"Without a name, `separate` uses {defaults}.",
        f"Model cards: {SHIPPED_FOLDER}/NAME/README.md; releases: docs/models.md.",
    ]
    if not args.verbose:
        lines.append(
            "`asteroid-spmamba models --verbose` adds data, scores, URLs and notes in full."
        )
    print("\n".join(lines))
    return 0


def add_subcommand(subparsers) -> None:
    """``asteroid-spmamba models``."""
    parser = subparsers.add_parser(
        "models",
        help="list the models loadable by name (shipped ones and the authors' releases)",
        description="List the models that `separate`, `demo` and load_model take by name: those "
        "shipped in the package (offline) and the original authors' releases (downloaded once).",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="also each model's training data, scores, URL and notes",
    )
    parser.set_defaults(func=run_models)
