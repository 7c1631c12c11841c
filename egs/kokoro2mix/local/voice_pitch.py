#!/usr/bin/env python
"""How the voices of a speech bank compare with real talkers in pitch: median F0 per speaker.

A model learns the voices it is shown; men speak at a median F0 of roughly 85-155 Hz, women at
165-255 Hz. This prints, for a speech bank (``make-speech-bank``, one utterance per speaker) and for
folders of real recordings, the percentiles of the speakers' median F0 and the share of speakers in
the male range, and with ``--plot`` draws their histograms on one axis.

    python egs/kokoro2mix/local/voice_pitch.py --bank ../shared/data/kokoro-bank16k-500 \\
        --real /data/realspk_src --plot pitch.png

F0 is estimated with YIN (de Cheveigne & Kawahara, JASA 2002) on 8 kHz audio, 40 ms frames every
10 ms; a frame is voiced when its cumulative mean normalized difference falls below 0.2 between
60 and 400 Hz.
"""

import argparse
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

MALE_RANGE_HZ = 160.0  # a speaker whose median F0 is below this is counted in the male range
AUDIO_SUFFIXES = (".wav", ".flac")


def median_f0(
    x: np.ndarray, sample_rate: int, fmin: float = 60.0, fmax: float = 400.0, threshold: float = 0.2
) -> float:
    """Median F0 (Hz) of the voiced frames of mono ``x``; NaN below 6 voiced frames."""
    from scipy.signal import resample_poly

    rate = 8000
    x = resample_poly(np.asarray(x, dtype=np.float64), rate, sample_rate)
    x = x - x.mean()
    n, hop, max_lag = int(0.04 * rate), int(0.01 * rate), int(rate / fmin) + 1
    if len(x) < n + max_lag:
        return float("nan")
    frames = np.lib.stride_tricks.sliding_window_view(x, n + max_lag)[::hop]
    energy = (frames[:, :n] ** 2).sum(axis=1)
    frames = frames[energy > 1e-3 * energy.max()]  # within 30 dB of the loudest frame
    lags = np.arange(1, max_lag)
    # difference function d(t) = sum_j (x_j - x_{j+t})^2 over the first n samples of each frame
    windows = np.lib.stride_tricks.sliding_window_view(frames, n, axis=1)  # (F, max_lag + 1, n)
    d = ((windows[:, :1, :] - windows[:, 1:max_lag, :]) ** 2).sum(axis=2)
    cmnd = d * lags / np.maximum(np.cumsum(d, axis=1), 1e-12)
    first = int(rate / fmax) - 1
    f0 = []
    for row in cmnd:
        below = np.flatnonzero(row[first:] < threshold)
        if below.size == 0:
            continue
        t = below[0] + first
        while t + 1 < len(row) and row[t + 1] < row[t]:  # down to the dip's minimum
            t += 1
        f0.append(rate / lags[t])
    return float(np.median(f0)) if len(f0) > 5 else float("nan")


def _file_f0(path: str) -> float:
    import soundfile as sf

    x, sr = sf.read(path, dtype="float64", always_2d=True)
    return median_f0(x[:, 0], sr)


def bank_speakers(bank: Path, split: str = "train") -> list[tuple[str, str]]:
    """(speaker, first utterance path) for every speaker of ``split`` in a speech bank."""
    from asteroid_spmamba.data.speech_bank import SpeechBank

    bank = SpeechBank(bank)
    return [
        (speaker, str(bank.root / bank.by_speaker[split][speaker][0]["path"]))
        for speaker in bank.speakers(split)
    ]


def summarize(name: str, f0: np.ndarray) -> str:
    f0 = f0[~np.isnan(f0)]
    p5, p25, p50, p75, p95 = np.percentile(f0, [5, 25, 50, 75, 95])
    male = (f0 < MALE_RANGE_HZ).mean()
    return (
        f"| {name} | {len(f0)} | {p5:.0f} | {p25:.0f} | {p50:.0f} | {p75:.0f} | {p95:.0f} "
        f"| {100 * male:.0f} % |"
    )


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bank", nargs="*", default=[], help="speech bank folders (train speakers)")
    p.add_argument(
        "--real",
        nargs="*",
        default=[],
        help="folders of real recordings, a talker each (files named mix.* are skipped)",
    )
    p.add_argument("--plot", default=None, help="write the histograms to this PNG")
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args(argv)
    groups = {}
    for bank in map(Path, args.bank):
        if not (bank / "utterances.csv").is_file():
            print(f"error: {bank} is not a speech bank (no utterances.csv)", file=sys.stderr)
            return 1
        groups[f"bank {bank.name}"] = [path for _, path in bank_speakers(bank)]
    for folder in map(Path, args.real):
        files = sorted(  # an Echo2Mix-layout folder: its sources, not its mixtures
            str(f)
            for f in folder.rglob("*")
            if f.suffix.lower() in AUDIO_SUFFIXES and f.stem != "mix"
        )
        if not files:
            print(f"error: no .wav or .flac file under {folder}", file=sys.stderr)
            return 1
        groups[f"real {folder.name}"] = files
    if not groups:
        p.error("give --bank and/or --real folders")
    f0 = {}
    if args.workers <= 1:
        f0 = {name: np.array([_file_f0(f) for f in files]) for name, files in groups.items()}
    else:
        with ProcessPoolExecutor(args.workers) as pool:
            for name, files in groups.items():
                f0[name] = np.array(list(pool.map(_file_f0, files, chunksize=4)))
    below = f"below {MALE_RANGE_HZ:.0f} Hz"
    print(f"| voices | speakers | F0 p5 | p25 | median | p75 | p95 | {below} |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, values in f0.items():
        print(summarize(name, values))
    if args.plot:
        import matplotlib
        import matplotlib.ticker

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 3.5))
        bins = np.geomspace(70, 400, 31)
        for name, values in f0.items():
            values = values[~np.isnan(values)]
            ax.hist(values, bins=bins, density=True, histtype="step", lw=2, label=name)
        ax.axvline(MALE_RANGE_HZ, color="grey", ls=":", lw=1)
        ax.set_xscale("log")
        ax.set_xticks([80, 100, 130, 160, 200, 250, 320])
        ax.set_xticklabels(["80", "100", "130", "160", "200", "250", "320"])
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel("median F0 of a speaker (Hz)")
        ax.set_ylabel("density")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(args.plot, dpi=120)
        print(f"Histograms in {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
