"""Adaptation without references, measured on real speech: adapt a model on the mixtures of one
real set (their references never read), then score SI-SNRi before and after on that set
(transductive: what ``separate --adapt`` does) and on other sets (inductive), and the listener's
checks of ``level_goals.py`` (levels, one talker alone) before and after.

    python egs/realdev/local/adapt_eval.py MODEL ADAPT_DIR [--score NAME=DIR ...] [--steps N]
        [--minutes M] [--device auto] [--save ADAPTED_DIR] [--json OUT] [--one-talker N]

ADAPT_DIR and each scoring DIR: folders ``ID/mix.wav, ID/spk1_reverb.wav, ID/spk2_reverb.wav``
(``egs/realdev`` conditions, ``make_echo2mix_demo.py``'s mixtures). Only ``mix.wav`` of ADAPT_DIR
is given to the adaptation.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import soundfile as sf
import torch
import torchaudio.functional as AF

sys.path.insert(0, str(Path(__file__).parent))
from level_goals import one_talker, two_talkers  # noqa: E402

from asteroid_spmamba import adapt as A  # noqa: E402
from asteroid_spmamba.devices import resolve_device  # noqa: E402
from asteroid_spmamba.training.evaluate import load_trained_model  # noqa: E402


def _folders(root: Path) -> list[Path]:
    return sorted(p.parent for p in root.glob("*/mix.*"))


def _scores(model, sets: dict, device, one_talker_files) -> dict:
    out = {name: two_talkers(model, folders, device)["si_snri"] for name, folders in sets.items()}
    if one_talker_files:
        kept = one_talker(model, one_talker_files, device)
        out["one talker kept whole (share)"] = kept["share_kept_whole"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("adapt_dir", type=Path)
    parser.add_argument("--score", nargs="*", default=[], metavar="NAME=DIR")
    parser.add_argument("--steps", type=int, default=A.STEPS)
    parser.add_argument("--minutes", type=float, default=None)
    parser.add_argument("--batch-size", type=int, default=A.BATCH_SIZE)
    parser.add_argument("--lr", type=float, default=A.LR)
    parser.add_argument("--chunk-seconds", type=float, default=A.CHUNK_SECONDS)
    parser.add_argument("--eval-every", type=int, default=A.EVAL_EVERY)
    parser.add_argument("--teacher-decay", type=float, default=A.TEACHER_DECAY)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--one-talker", type=int, default=0, help="reference files alone to check")
    parser.add_argument("--save", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    device = resolve_device(args.device)
    model = load_trained_model(args.model).to(device).eval()
    adapt_folders = _folders(args.adapt_dir)
    sets = {"adapted on (" + args.adapt_dir.name + ")": adapt_folders}
    for item in args.score:
        name, path = item.split("=", 1)
        sets[name] = _folders(Path(path))
    refs = sorted(f for d in adapt_folders for f in d.glob("spk*_reverb.*"))[: args.one_talker]

    before = _scores(model, sets, device, refs)
    mixtures = []
    for folder in adapt_folders:
        wav, rate = sf.read(folder / "mix.wav", dtype="float32")
        mixtures.append(AF.resample(torch.from_numpy(wav), rate, int(model.sample_rate)))
    t0 = time.time()
    result = A.adapt(
        model,
        mixtures,
        steps=args.steps,
        batch_size=args.batch_size,
        chunk_seconds=args.chunk_seconds,
        eval_every=args.eval_every,
        lr=args.lr,
        teacher_decay=args.teacher_decay,
        max_seconds=None if args.minutes is None else 60 * args.minutes,
        device=device,
    )
    seconds = time.time() - t0
    after = _scores(result.model, sets, device, refs)

    print(
        f"\nadapted on {len(mixtures)} mixtures of {args.adapt_dir} "
        f"({sum(map(len, mixtures)) / model.sample_rate / 60:.1f} min), {result.steps} steps, "
        f"best at {result.best_step}, {seconds / 60:.1f} min on {device}"
    )
    print(
        f"held-out remix score: {result.scores[0][1]:.2f} -> "
        f"{dict(result.scores)[result.best_step]:.2f} dB"
    )
    print(f"{'SI-SNRi (dB)':<40} {'before':>8} {'after':>8} {'gain':>7}")
    for name in before:
        b, a = before[name], after[name]
        if isinstance(b, float):
            print(f"{name:<40} {b:8.2f} {a:8.2f} {a - b:+7.2f}")
        else:
            print(f"{name:<40} {b!s:>8} {a!s:>8}")
    if args.save:
        result.model.cpu().save_pretrained(str(args.save))
    if args.json:
        args.json.write_text(
            json.dumps(
                dict(
                    before=before,
                    after=after,
                    seconds=seconds,
                    device=str(device),
                    summary=result.summary(),
                    scores=result.scores,
                    settings={
                        k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()
                    },
                ),
                indent=2,
                default=float,
            )
            + "\n"
        )


if __name__ == "__main__":
    main()
