"""What a listener gets from a model on real speech: levels, polarity, peaks, one talker alone,
noise, silence, DC offsets. Every separation goes through ``separate_array``, the path of the
``separate`` command, so these are the files users write.

    python egs/realdev/local/level_goals.py MODEL REALDEV_DIR [--device cpu] [--limit N]
        [--json OUT]

MODEL: a shipped name, a best_model.pth or a model folder. REALDEV_DIR: the output of
``make_dev_set.py`` (anechoic/ and reverb/). Prints one table: each measure, its goal, and whether
it is met. Two talkers: each mixture of both conditions and the bundled demo recording. One talker:
each reference of the dev set alone (reverberant and dry). Noise: white noise at
-30 dBFS (4 s, 8 seeds).
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from asteroid_spmamba.demo import REAL_MIXTURE
from asteroid_spmamba.inference import separate_array
from asteroid_spmamba.scoring import best_permutation, si_snr
from asteroid_spmamba.training.evaluate import load_trained_model


def _db(energy_ratio):
    return 10 * np.log10(np.maximum(energy_ratio, 1e-30))


def _energy(x):
    return np.sum(np.asarray(x, np.float64) ** 2, -1)


def two_talkers(model, folders, device):
    """Per source: level minus reference level (dB), correlation with it; per mixture: the sum's SNR
    against the mixture, the highest output peak, SI-SNRi."""
    level, corr, sum_snr, peak, peak_in, si_snri = [], [], [], [], [], []
    for folder in folders:
        mix, rate = sf.read(
            folder / "mix.wav" if (folder / "mix.wav").exists() else folder / "mix.flac",
            dtype="float32",
        )
        refs = np.stack(
            [sf.read(next(folder.glob(f"spk{k}_reverb.*")), dtype="float32")[0] for k in (1, 2)]
        )
        est = separate_array(mix, rate, model, device=device)
        est = est[list(best_permutation(refs, est))]
        level += list(_db(_energy(est) / _energy(refs)))
        corr += [np.corrcoef(r, e)[0, 1] if _energy(e) > 0 else 0.0 for r, e in zip(refs, est)]
        mix0 = mix - mix.mean()
        sum_snr.append(_db(_energy(mix0) / _energy(mix0 - est.sum(0))))
        peak.append(float(np.abs(est).max()))
        peak_in.append(float(np.abs(mix).max()))
        si_snri.append(float(si_snr(refs, est).mean() - si_snr(refs, mix[None]).mean()))
    return dict(
        level_db_median=float(np.median(level)),
        level_db_within_3=float(np.mean(np.abs(level) <= 3)),
        positively_correlated=float(np.mean(np.array(corr) > 0)),
        sum_snr_db_min=float(np.min(sum_snr)),
        peak_max=float(np.max(peak)),
        input_peak_max=float(np.max(peak_in)),
        si_snri=float(np.mean(si_snri)),
        n=len(folders),
    )


def one_talker(model, files, device):
    """Each file alone: SI-SNR of the loudest output against the input; the
    others' level under it."""
    best, others = [], []
    for path in files:
        wav, rate = sf.read(path, dtype="float32")
        est = separate_array(wav, rate, model, device=device)
        order = np.argsort(-_energy(est))
        best.append(float(si_snr(wav, est[order[0]])))
        others.append(
            float(_db(_energy(est[order[1:]]).max() / max(_energy(est[order[0]]), 1e-30)))
        )
    whole = (np.array(best) >= 20) & (np.array(others) <= -25)
    return dict(
        best_si_snr_db_min=float(np.min(best)),
        best_si_snr_db_median=float(np.median(best)),
        other_below_db_max=float(np.max(others)),
        other_below_db_median=float(np.median(others)),
        share_kept_whole=float(np.mean(whole)),
        n=len(files),
    )


def noise_and_silence(model, rate, device):
    louder = []
    for seed in range(8):
        noise = np.random.default_rng(seed).standard_normal(4 * rate).astype(np.float32)
        noise *= 10 ** (-30 / 20) / np.sqrt(np.mean(noise**2))
        est = separate_array(noise, rate, model, device=device)
        louder.append(float(_db(_energy(est).max() / _energy(noise))))
    silent = separate_array(np.zeros(4 * rate, np.float32), rate, model, device=device)
    return dict(
        noise_output_minus_input_db_max=max(louder), silence_output_peak=float(np.abs(silent).max())
    )


def dc_offset_cost(model, folders, device, offset=0.3):
    cost = []
    for folder in folders:
        mix, rate = sf.read(folder / "mix.wav", dtype="float32")
        refs = np.stack(
            [sf.read(folder / f"spk{k}_reverb.wav", dtype="float32")[0] for k in (1, 2)]
        )
        scores = []
        for x in (mix, mix + offset):
            est = separate_array(x, rate, model, device=device)
            est = est[list(best_permutation(refs, est))]
            scores.append(si_snr(refs, est).mean())
        cost.append(float(scores[0] - scores[1]))
    return dict(si_snr_cost_db_mean=float(np.mean(cost)), n=len(folders))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("model")
    parser.add_argument("realdev", type=Path)
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--limit", type=int, default=None, help="first N mixtures per condition (quick looks)"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    model = load_trained_model(args.model)
    rate = int(model.sample_rate)
    out = {}
    for condition in ("reverb", "anechoic"):
        folders = sorted(p for p in (args.realdev / condition).iterdir() if p.is_dir())[
            : args.limit
        ]
        out[f"two_{condition}"] = two_talkers(model, folders, args.device)
        files = [f for d in folders for f in sorted(d.glob("spk*_reverb.wav"))]
        out[f"one_{condition}"] = one_talker(model, files, args.device)
    out["two_demo"] = two_talkers(model, [REAL_MIXTURE], args.device)
    out["noise"] = noise_and_silence(model, rate, args.device)
    folders = sorted(p for p in (args.realdev / "reverb").iterdir() if p.is_dir())[: args.limit]
    out["dc"] = dc_offset_cost(model, folders, args.device)

    goals = []
    for key in ("two_reverb", "two_anechoic", "two_demo"):
        r = out[key]
        goals += [
            (
                f"{key}: median level minus reference (dB)",
                r["level_db_median"],
                abs(r["level_db_median"]) <= 3,
            ),
            (f"{key}: sources within 3 dB of their level", r["level_db_within_3"], None),
            (
                f"{key}: sources positively correlated",
                r["positively_correlated"],
                r["positively_correlated"] == 1,
            ),
            (
                f"{key}: worst SNR of the sum against the mixture (dB)",
                r["sum_snr_db_min"],
                r["sum_snr_db_min"] >= 10,
            ),
            (
                f"{key}: highest output peak (inputs up to {r['input_peak_max']:.2f})",
                r["peak_max"],
                r["peak_max"] <= 1.0 or r["input_peak_max"] > 0.5,
            ),
            (f"{key}: SI-SNRi (dB)", r["si_snri"], None),
        ]
    for key in ("one_reverb", "one_anechoic"):
        r = out[key]
        goals += [
            (
                f"{key}: worst best-output SI-SNR vs input (dB, goal >= 20)",
                r["best_si_snr_db_min"],
                r["best_si_snr_db_min"] >= 20,
            ),
            (f"{key}: median best-output SI-SNR (dB)", r["best_si_snr_db_median"], None),
            (
                f"{key}: loudest other output under the best (dB, goal <= -25)",
                r["other_below_db_max"],
                r["other_below_db_max"] <= -25,
            ),
            (
                f"{key}: share of talkers kept whole, the other output silent",
                r["share_kept_whole"],
                None,
            ),
        ]
    goals += [
        (
            "noise alone: loudest output minus input (dB, goal <= 0)",
            out["noise"]["noise_output_minus_input_db_max"],
            out["noise"]["noise_output_minus_input_db_max"] <= 0,
        ),
        (
            "silence alone: output peak",
            out["noise"]["silence_output_peak"],
            out["noise"]["silence_output_peak"] == 0,
        ),
        (
            "DC offset 0.3: SI-SNR cost (dB, goal < 0.5)",
            out["dc"]["si_snr_cost_db_mean"],
            out["dc"]["si_snr_cost_db_mean"] < 0.5,
        ),
    ]
    print(f"{args.model} on {args.realdev} ({out['two_reverb']['n']} mixtures per condition)")
    print("| measure | value | goal met |\n|---|---:|---|")
    for name, value, ok in goals:
        print(f"| {name} | {value:.2f} | {'' if ok is None else ('yes' if ok else 'NO')} |")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return 0 if all(ok is not False for _, _, ok in goals) else 1


if __name__ == "__main__":
    sys.exit(main())
