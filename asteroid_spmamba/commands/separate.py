"""``asteroid-spmamba separate`` (audio files with any model) and ``asteroid-spmamba demo`` (the
bundled real recording with a shipped model)."""

import argparse
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Optional

from .help_text import (
    BF16_LABELS,
    CHUNK_SECONDS,
    DEFAULT_MODELS,
    DEMO_MODEL,
    INFERENCE_PRECISIONS,
)
from .options import add_device_argument, add_shifts_argument


def add_subcommand(subparsers) -> None:
    """``asteroid-spmamba separate`` and ``asteroid-spmamba demo``."""
    add_separate(subparsers)
    add_demo(subparsers)


def _output_folder_problem(outdir: str) -> Optional[str]:
    """Why the separated files could not be written in ``outdir`` (None: they can), found before
    any separation: the nearest existing folder of the path must be writable."""
    path = Path(outdir)
    if path.exists() and not path.is_dir():
        return f"-o {outdir} is a file; give a folder (it is created if needed)."
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir():
        return f"-o {outdir}: {existing} is a file, so the folder cannot be created."
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"-o {outdir}: {existing} is not writable; choose another output folder."
    return None


def _is_input(item: str, audio_extensions, model_files) -> bool:
    """Whether the first argument is something to separate rather than a model: an audio file
    (existing or not: then the error says it is missing) or a folder without any of the files
    the loader reads a model from (``model_files``)."""
    path = Path(item)
    if path.suffix.lower() in audio_extensions:
        return True
    return path.is_dir() and not any((path / name).is_file() for name in model_files)


def run_separate(args: argparse.Namespace) -> int:
    import soundfile as sf
    from tqdm import tqdm

    from ..checkpoints import CONFIG_NAME, LEGACY_FOLDER_FILES, WEIGHTS_NAME
    from ..devices import resolve_device
    from ..inference import (
        AUDIO_EXTENSIONS,
        check_chunking,
        collect_inputs,
        output_paths,
        separate_to_files,
    )
    from ..loading import default_model

    try:
        device = resolve_device(args.device)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    model_files = (CONFIG_NAME, WEIGHTS_NAME, *LEGACY_FOLDER_FILES)
    if _is_input(args.model, AUDIO_EXTENSIONS, model_files):  # no model named: the shipped default
        args.inputs, args.model = [args.model, *args.inputs], default_model(device)
        print(f"model: {args.model} (the default on {device.type}; name another before the inputs)")
    elif not args.inputs:
        print(
            f"error: nothing to separate: give audio files or folders after the model "
            f"(asteroid-spmamba separate [MODEL] INPUT...); {args.model!r} is taken as the model.",
            file=sys.stderr,
        )
        return 2
    problem = args.outdir and _output_folder_problem(args.outdir)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    files, errors = collect_inputs(args.inputs)
    for message in errors:
        print(f"error: {message}", file=sys.stderr)
    if not files:  # said before a model is loaded (a release would be downloaded first)
        print("separated 0 file(s); nothing to separate", file=sys.stderr)
        return 1
    try:
        from ..loading import load_model

        model = load_model(args.model).to(device)
    except Exception as e:
        # the loaders' messages name the model already
        message = str(e) if args.model in str(e) else f"cannot load model {args.model!r}: {e}"
        print(f"error: {message}", file=sys.stderr)
        return 2
    chunk = (
        args.chunk_seconds or None
    )  # 0: the whole file at once; a negative value is refused below
    try:
        check_chunking(model, chunk, args.overlap)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.adapt and files:
        model = _adapted(model, [path for path, _ in files], args, device)
    failed = len(errors)
    done = 0
    audio_seconds = 0.0
    planned = set()
    began = time.perf_counter()
    bar = tqdm(files, desc="separating", unit="file", disable=args.quiet)
    for path, root in bar:
        bar.set_postfix_str(path.name, refresh=False)
        outdir = None if args.outdir is None else Path(args.outdir) / path.parent.relative_to(root)
        targets = output_paths(path, outdir, 1)[0]
        if targets in planned:  # e.g. a.wav and a.flac in one folder
            tqdm.write(
                f"error: {path}: its outputs would overwrite those of another input "
                "with the same name; skipped.",
                file=sys.stderr,
            )
            failed += 1
            continue
        planned.add(targets)
        try:
            channels = sf.info(str(path)).channels
            if channels > 1:
                tqdm.write(
                    f"{path}: {channels} channels; separating channel "
                    f"{args.channel % channels} (--channel)"
                )
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                _, seconds, activity = separate_to_files(
                    path,
                    model,
                    outdir,
                    chunk,
                    args.overlap,
                    args.batch_size,
                    None,
                    args.channel,
                    progress=not args.quiet,
                    precision=args.precision,
                    return_activity=True,
                    shifts=args.shifts,
                )
            for warning in caught:
                tqdm.write(f"warning: {warning.message}", file=sys.stderr)
            tqdm.write(f"{path}: {activity.describe()}")
        except KeyboardInterrupt:
            raise
        except Exception as e:
            tqdm.write(
                f"error: {e}" if str(path) in str(e) else f"error: {path}: {e}", file=sys.stderr
            )
            failed += 1
            continue
        done += 1
        audio_seconds += seconds
    bar.close()
    wall = time.perf_counter() - began
    rtf = f"{wall / audio_seconds:.3f}" if audio_seconds > 0 else "n/a"
    print(
        f"separated {done} file(s), {audio_seconds:.1f} s of audio in {wall:.1f} s (RTF {rtf}); "
        f"{failed} failed"
    )
    return 1 if failed else 0


def _adapted(model, paths: list, args: argparse.Namespace, device):
    """``--adapt``: the model adapted without references on the files it is about to separate."""
    from ..adapt import adapt, read_recordings

    recordings = read_recordings(paths, int(model.sample_rate), args.channel)
    result = adapt(
        model.eval(), recordings, steps=args.adapt_steps, device=device, progress=not args.quiet
    )
    held = result.summary()["held_out_remix_snr_db"]
    print(
        f"adapted on {len(paths)} file(s): {result.steps} steps in {result.seconds:.0f} s, "
        f"held-out remix score {held['before']:.2f} -> {held['after']:.2f} dB"
        + ("" if result.best_step else " (no gain: the model as given is used)")
    )
    return result.model


def add_separate(subparsers) -> None:
    """``asteroid-spmamba separate``."""
    parser = subparsers.add_parser(
        "separate",
        usage="%(prog)s [options] [MODEL] INPUT [INPUT ...]",
        help="separate audio files with a pretrained model",
        description=(
            "Separate audio files into NAME_spk1.wav, NAME_spk2.wav, ... (32-bit float WAV, at the "
            "input's sample rate and length, each source at its level in the mixture; the output "
            "of a speaker who is absent is silent, and each file's line says how many speakers "
            "were found). Inputs are resampled to the model's rate and back. Multichannel files: "
            "one channel is separated (--channel, default 0 = the first). Folders are scanned "
            "recursively; files named *_spkN.* are taken as earlier outputs and skipped. "
            "Unreadable files are reported and skipped; the exit status is then 1."
        ),
    )
    parser.add_argument(
        "model",
        metavar="MODEL",
        help="optional: shipped model or release name (asteroid-spmamba models lists them; "
        "releases download once), URL of a .zip/.pth/.ckpt (downloaded, converted and cached "
        "once), Hugging Face Hub id (ORG/NAME[@REVISION]), pretrained folder, or checkpoint "
        "file (model.safetensors, or Asteroid's serialized best_model.pth). Without it (the "
        "first argument an audio file or a folder of them): the best shipped model for the "
        f"device ({', '.join(f'{k}: {v}' for k, v in DEFAULT_MODELS.items())})",
    )
    parser.add_argument("inputs", metavar="INPUT", nargs="*", help="audio files or folders")
    parser.add_argument(
        "--out-dir",
        "-o",
        "--outdir",
        dest="outdir",
        default=None,
        help="output folder (default: beside each input; folder inputs keep their sub-folders)",
    )
    add_device_argument(parser)
    parser.add_argument(
        "--precision",
        choices=INFERENCE_PRECISIONS,
        default="auto",
        help="auto (default): bfloat16 autocast on GPUs that support it for the models whose bf16 "
        f"output agrees with float32 ({', '.join(BF16_LABELS)}), else float32; "
        "fp32 keeps float32",
    )
    add_shifts_argument(parser)
    parser.add_argument(
        "--chunk-seconds",
        type=float,
        default=CHUNK_SECONDS,
        help=f"chunk length in seconds (default {CHUNK_SECONDS:g}; 0 = whole file at once)",
    )
    parser.add_argument(
        "--overlap",
        type=float,
        default=1.0,
        help="overlap between chunks in seconds, at most half a chunk (default 1)",
    )
    parser.add_argument(
        "--batch-size", type=int, default=1, help="chunks separated together (default 1)"
    )
    parser.add_argument(
        "--channel",
        type=int,
        default=0,
        help="channel of multichannel files to separate (default 0, the first)",
    )
    parser.add_argument(
        "--adapt",
        action="store_true",
        help="first adapt the model to the inputs themselves, without references "
        "(asteroid-spmamba adapt; slow on a CPU), then separate them",
    )
    parser.add_argument(
        "--adapt-steps", type=int, default=100, help="updates of --adapt (default 100)"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=run_separate)


def run_demo(args) -> int:
    from ..demo import demo
    from ..devices import resolve_device

    scores = demo(args.model, Path(args.out_dir), str(resolve_device(args.device)))
    print(
        "A real recording, never trained on: two CMU ARCTIC talkers (a woman, a man) in a "
        f"simulated room (RT60 0.24 s).\n{args.model}: SI-SNRi {scores['si_snr_i']:.2f} dB, SDRi "
        f"{scores['sdr_i']:.2f} dB, level {scores['level_db']:+.1f} dB from the references'; "
        f"separated into {Path(args.out_dir) / 'spk1.wav'} and spk2.wav"
    )
    return 0


def add_demo(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="separate a bundled real two-speaker recording with a shipped model and score it",
        description="Separate the bundled real recording (two CMU ARCTIC talkers in a simulated "
        "room, asteroid_spmamba/data/real_mixture) and print its SI-SNRi and SDRi.",
    )
    parser.add_argument(
        "model",
        nargs="?",
        default=DEMO_MODEL,
        help=f"shipped name, model file or folder (default: {DEMO_MODEL})",
    )
    parser.add_argument(
        "-o",
        "--out-dir",
        "--out_dir",
        default="separated_demo",
        help="where the mixture and the two estimates go (default: separated_demo)",
    )
    add_device_argument(parser)
    parser.set_defaults(func=run_demo)
