"""``asteroid-spmamba adapt MODEL RECORDINGS... --out-dir ADAPTED``: a model adapted to unlabelled
recordings without references (:func:`asteroid_spmamba.adapt.adapt`, RemixIT), checked before and
after on mixtures with references, and saved as a pretrained folder with a card."""

import argparse
import tempfile
from pathlib import Path

from .options import add_device_argument


def add_subcommand(subparsers) -> None:
    """Register ``asteroid-spmamba adapt``."""
    p = subparsers.add_parser(
        "adapt",
        help="adapt a model to your own recordings, without references (RemixIT)",
        description="Self-training on unlabelled recordings of your domain: the model separates "
        "chunks of them, its estimates are remixed into new mixtures, and a student learns to undo "
        "the remix (RemixIT, Tzinis et al. 2022). A held-out share of the chunks picks the best "
        "model, without references. The model is scored before and after on mixtures with "
        "references (--check-dir; by default 8 synthetic eSpeak NG mixtures), so what adaptation "
        "costs on other data is said. The result is a model folder: "
        "asteroid-spmamba separate OUT_DIR file.wav.",
    )
    p.add_argument("model", help="a model name (asteroid-spmamba models), folder or file")
    p.add_argument("inputs", nargs="+", metavar="RECORDING", help="audio files or folders")
    p.add_argument("--out-dir", required=True, help="folder for the adapted model")
    # the defaults of asteroid_spmamba.adapt.adapt (a test holds them equal; torch is not imported
    # to build the parser)
    p.add_argument("--steps", type=int, default=100, help="most updates (default 100)")
    p.add_argument("--minutes", type=float, default=None, help="wall-time budget (default: none)")
    p.add_argument("--batch-size", type=int, default=2, help="chunks per update (default 2)")
    p.add_argument("--chunk-seconds", type=float, default=2.0, help="chunk length (default 2)")
    p.add_argument("--lr", type=float, default=3e-4, help="learning rate (default 3e-4)")
    p.add_argument(
        "--held-out", type=float, default=0.15, help="share of chunks that scores (default 0.15)"
    )
    p.add_argument(
        "--check-dir",
        default=None,
        help="mixtures with references (ID/mix.wav, ID/spk1_reverb.wav, ...) scored before and "
        "after; default: 8 synthetic eSpeak NG mixtures",
    )
    p.add_argument("--no-check", action="store_true", help="skip the check before and after")
    p.add_argument("--overwrite", action="store_true", help="replace a model in --out-dir")
    p.add_argument("--seed", type=int, default=0)
    add_device_argument(p)
    p.set_defaults(func=run_adapt)


def _refuse_out_dir(out_dir: Path, overwrite: bool) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"--out-dir {out_dir} is a file; give a folder.")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not overwrite:
        raise FileExistsError(
            f"--out-dir {out_dir} is not empty; give another folder or --overwrite."
        )


def run_adapt(args: argparse.Namespace) -> int:
    from ..adapt import adapt, check_si_snri, read_recordings, synthetic_check_set
    from ..devices import resolve_device
    from ..hub import save_pretrained
    from ..inference import collect_inputs
    from ..loading import load_model

    out_dir = Path(args.out_dir)
    _refuse_out_dir(out_dir, args.overwrite)
    device = resolve_device(args.device)
    files, errors = collect_inputs(args.inputs)
    if errors:
        raise FileNotFoundError(" ".join(errors))
    model = load_model(args.model).to(device).eval()
    rate = int(model.sample_rate)
    recordings = read_recordings([f for f, _ in files], rate)
    seconds = sum(len(r) for r in recordings) / rate
    print(f"{len(files)} recording(s), {seconds / 60:.1f} min at {rate} Hz; device {device}")

    with tempfile.TemporaryDirectory() as tmp:
        check, check_name = None, None
        if not args.no_check:
            check = Path(args.check_dir) if args.check_dir else synthetic_check_set(tmp, rate)
            check_name = str(check) if args.check_dir else "8 synthetic eSpeak NG mixtures"
            before = check_si_snri(model, check, device)
        result = adapt(
            model,
            recordings,
            steps=args.steps,
            max_seconds=None if args.minutes is None else 60 * args.minutes,
            batch_size=args.batch_size,
            chunk_seconds=args.chunk_seconds,
            held_out=args.held_out,
            lr=args.lr,
            device=device,
            seed=args.seed,
        )
        summary = result.summary()
        summary.update(adapted_from=args.model, recordings=len(files), audio_minutes=seconds / 60)
        held = summary["held_out_remix_snr_db"]
        print(
            f"{result.steps} steps in {result.seconds / 60:.1f} min (stopped by "
            f"{result.stopped}); held-out remix score {held['before']:.2f} -> "
            f"{held['after']:.2f} dB (best at step {result.best_step})"
        )
        if check is not None:
            after = check_si_snri(result.model, check, device)
            summary["check"] = {"set": check_name, "si_snri_before": before, "si_snri_after": after}
            print(f"check on {check_name}: SI-SNRi {before:.2f} -> {after:.2f} dB")
            if after < before - 0.5:
                print(
                    f"warning: the adapted model is {before - after:.2f} dB worse on "
                    f"{check_name} than {args.model}: it gained on your recordings at the cost of "
                    "that data (fewer --steps or a lower --lr keep it closer)."
                )
    if result.best_step == 0:
        print(
            "warning: no adapted model beat the given one on the held-out chunks; saved as given."
        )
    names = ", ".join(f.name for f, _ in files[:3]) + (", ..." if len(files) > 3 else "")
    card_lines = {
        "adaptation": summary["method"],
        "steps": result.steps,
        "held-out remix score (dB)": f"{held['before']:.2f} -> {held['after']:.2f}",
        "minutes": f"{result.seconds / 60:.1f} on {device}",
    }
    if check is not None:
        card_lines[f"check SI-SNRi on {check_name} (dB)"] = f"{before:.2f} -> {after:.2f}"
    save_pretrained(
        result.model.cpu(),
        out_dir,
        infos={"adaptation": summary},
        overwrite_card=True,
        description=(
            f"{args.model} adapted without references (RemixIT) on {len(files)} recording(s) "
            f"({seconds / 60:.1f} min: {names})."
        ),
        training=card_lines,
    )
    print(f"adapted model: {out_dir} (asteroid-spmamba separate {out_dir} FILE.wav)")
    return 0
