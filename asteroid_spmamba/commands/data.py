"""``asteroid-spmamba make-corpus`` (the synthetic two-speaker corpus,
:func:`asteroid_spmamba.data.synthetic.make_corpus`) and ``asteroid-spmamba make-speech-bank``
(:func:`asteroid_spmamba.data.speech_bank.make_speech_bank`)."""

from .help_text import VOICE_SOURCES


def add_subcommand(subparsers) -> None:
    """``asteroid-spmamba make-corpus`` and ``asteroid-spmamba make-speech-bank``."""
    add_make_corpus(subparsers)
    add_make_speech_bank(subparsers)


def add_make_corpus(subparsers) -> None:
    """Register ``asteroid-spmamba make-corpus``."""
    p = subparsers.add_parser(
        "make-corpus",
        help="generate the synthetic two-speaker corpus (eSpeak NG voices, Echo2Mix layout)",
        description="Generate a reproducible two-speaker corpus spoken by eSpeak NG voices, in the "
        "Echo2Mix layout (OUT/{train,valid,test}/ID/{mix,spk1_reverb,spk2_reverb}.wav) with "
        "LibriMix-style metadata CSVs. The test split uses voices and content "
        "words unseen in train/valid.",
    )
    p.add_argument("out", help="output folder (must not exist, or hold the same corpus)")
    p.add_argument("--n-train", type=int, required=True, help="training mixtures")
    p.add_argument("--n-valid", type=int, required=True, help="validation mixtures")
    p.add_argument("--n-test", type=int, required=True, help="test mixtures")
    p.add_argument("--sample-rate", type=int, default=8000, choices=(8000, 16000))
    p.add_argument(
        "--reverb", action="store_true", help="random shoebox room per mixture (pyroomacoustics)"
    )
    p.add_argument(
        "--anechoic-share",
        type=float,
        default=0.0,
        help="with --reverb: probability that a mixture stays dry, with dry targets (default 0)",
    )
    p.add_argument(
        "--rt60-max",
        type=float,
        default=0.6,
        help="with --reverb: rooms' RT60 drawn in [0.2, RT60_MAX] s (default 0.6)",
    )
    p.add_argument(
        "--level-spread-db",
        type=float,
        default=5.0,
        help="speaker 1's level relative to speaker 2's drawn in [-X, X] dB (default 5)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--duration",
        type=float,
        default=None,
        help="fixed mixture length in seconds (default: union of the two utterances)",
    )
    p.add_argument("--min-words", type=int, default=6)
    p.add_argument("--max-words", type=int, default=14)
    p.add_argument("--min-overlap", type=float, default=0.7)
    p.add_argument(
        "--random-voices",
        type=float,
        default=0.0,
        help="probability that a train/valid voice is a random eSpeak NG variant (pitch, formants)",
    )
    p.add_argument(
        "--speech-bank",
        default=None,
        help="mix utterances of a speech bank (asteroid-spmamba "
        "make-speech-bank) instead of eSpeak NG",
    )
    p.add_argument(
        "--workers", type=int, default=None, help="worker processes (default: all cores)"
    )
    p.set_defaults(func=run_make_corpus)


def run_make_corpus(args) -> int:
    from ..data.synthetic import make_corpus

    # input problems become "error: ..." with exit status 1 in commands.main
    out = make_corpus(
        args.out,
        args.n_train,
        args.n_valid,
        args.n_test,
        sample_rate=args.sample_rate,
        reverb=args.reverb,
        seed=args.seed,
        duration=args.duration,
        words=(args.min_words, args.max_words),
        min_overlap=args.min_overlap,
        num_workers=args.workers,
        random_voices=args.random_voices,
        speech_bank=args.speech_bank,
        anechoic_share=args.anechoic_share,
        rt60_max=args.rt60_max,
        level_spread_db=args.level_spread_db,
    )
    print(f"Corpus ready in {out}")
    return 0


def add_make_speech_bank(subparsers) -> None:
    """Register ``asteroid-spmamba make-speech-bank``."""
    p = subparsers.add_parser(
        "make-speech-bank",
        help="synthesize single-speaker utterances by many synthetic "
        "speakers (Kokoro-82M, eSpeak NG)",
        description="Synthesize a bank of utterances by new synthetic speakers, to be mixed by "
        "make-corpus --speech-bank. Resumable: run the same command again after an interruption.",
    )
    p.add_argument("out", help="output folder")
    p.add_argument("--train-speakers", type=int, required=True)
    p.add_argument("--valid-speakers", type=int, required=True)
    p.add_argument("--test-speakers", type=int, required=True)
    p.add_argument("--utterances", type=int, required=True, help="utterances per speaker")
    p.add_argument(
        "--voices", default="kokoro", help=f"comma-separated voice sources from {VOICE_SOURCES}"
    )
    p.add_argument("--sample-rate", type=int, default=16000, choices=(8000, 16000, 24000))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--workers", type=int, default=None, help="worker processes (default: all cores)"
    )
    p.add_argument(
        "--reuse",
        default=None,
        metavar="BANK",
        help="a bank with the same seed and voices but other counts: its utterances are linked, "
        "not synthesized again (grow a bank)",
    )
    p.add_argument(
        "--male-share",
        type=float,
        default=None,
        metavar="P",
        help="share of men among Kokoro speakers, e.g. 0.5 (default: the draw of earlier banks, "
        "mostly women)",
    )
    p.set_defaults(func=run_make_speech_bank)


def run_make_speech_bank(args) -> int:
    from ..data.speech_bank import make_speech_bank

    # input problems become "error: ..." with exit status 1 in commands.main
    out = make_speech_bank(
        args.out,
        {"train": args.train_speakers, "valid": args.valid_speakers, "test": args.test_speakers},
        args.utterances,
        voices=[v.strip() for v in args.voices.split(",") if v.strip()],
        sample_rate=args.sample_rate,
        seed=args.seed,
        num_workers=args.workers,
        reuse=args.reuse,
        male_share=args.male_share,
    )
    print(f"Speech bank ready in {out}")
    return 0
