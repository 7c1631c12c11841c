"""``asteroid-spmamba complexity``: Params and MACs per second of audio of the zoo's models, beside
the SPMamba paper's table (:mod:`asteroid_spmamba.complexity`)."""

from .help_text import ZOO_NAMES


def add_subcommand(subparsers) -> None:
    parser = subparsers.add_parser(
        "complexity",
        help="Params and MACs per second of audio of the zoo's models, beside "
        "the SPMamba paper's table.",
        description=(
            "Count parameters and multiply-accumulates per second of audio (convolutions, linear "
            "layers, attention, RNN cells and the Mamba selective scan) for the models of "
            "asteroid_spmamba.zoo, print a Markdown table beside the SPMamba paper's "
            "figures and write CSV + JSON."
        ),
    )
    parser.add_argument(
        "--models",
        nargs="+",
        default=None,
        metavar="NAME",
        help=f"zoo names (default: all of {', '.join(ZOO_NAMES)})",
    )
    parser.add_argument("--preset", default="echo2mix", help="zoo preset (default: echo2mix)")
    parser.add_argument(
        "--seconds", type=float, default=1.0, help="input length in seconds (default 1)"
    )
    parser.add_argument(
        "--sample-rate",
        type=int,
        default=None,
        help="rate in Hz at which --seconds is converted to samples; the models keep "
        "their configuration (default: each model's rate, 16000 for echo2mix)",
    )
    parser.add_argument(
        "--out-dir",
        "--output-dir",
        dest="output_dir",
        default=None,
        help="write complexity.csv and complexity.json here",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.set_defaults(func=run_complexity)


def run_complexity(args) -> int:
    import torch

    from ..complexity import markdown_table, write_results, zoo_complexity

    if args.threads:
        torch.set_num_threads(args.threads)
    rows = zoo_complexity(args.models, args.preset, args.seconds, args.sample_rate)
    rate = rows[0].sample_rate if rows else args.sample_rate
    print(
        f"Params and MACs per second of audio ({args.seconds:g} s input at {rate} Hz, preset "
        f"{args.preset}; paper: SPMamba arXiv:2404.02063, Echo2Mix)\n"
    )
    print(markdown_table(rows))
    for r in rows:
        if r.status != "ok":
            print(f"\n{r.model}: {r.note}")
    if args.output_dir:
        paths = write_results(rows, args.output_dir)
        print(f"\nWrote {paths['csv']} and {paths['json']}")
    return 0
