"""``asteroid-spmamba convert``: an original SPMamba checkpoint to this package's model file."""

from .help_text import CONVERT_DESCRIPTION


def add_subcommand(subparsers) -> None:
    parser = subparsers.add_parser(
        "convert",
        help="Convert an original SPMamba checkpoint to an asteroid_spmamba model file.",
        description=CONVERT_DESCRIPTION,
    )
    parser.add_argument("original", help="original best_model.pth or Lightning .ckpt")
    parser.add_argument("out", help="output file (Asteroid serialized model, .pth)")
    parser.add_argument("--hop-length", type=int, default=None, help="STFT hop (default n_fft/4)")
    parser.add_argument(
        "--sample-rate", type=float, default=None, help="sample rate (default from n_fft)"
    )
    parser.set_defaults(func=run_convert)


def run_convert(args) -> int:
    import torch

    from ..files import write_atomic
    from ..models.spmamba_original import convert_original

    model = convert_original(
        args.original, hop_length=args.hop_length, sample_rate=args.sample_rate
    )
    write_atomic(args.out, lambda p: torch.save(model.serialize(), p))  # never a half-written model
    n_params = sum(p.numel() for p in model.parameters())
    print(
        f"Wrote {args.out}: SPMamba, {n_params:,} parameters, {model.sample_rate:g} Hz, "
        f"n_fft {model.encoder.n_fft}, hop {model.encoder.hop_length}"
    )
    return 0
