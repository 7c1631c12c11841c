"""Tiny fake copies of Echo2Mix, Libri2Mix, WSJ0-2mix and WHAM!, laid out like the real datasets.

Sources are short bursts of band-limited noise with a speech-like envelope, different per speaker;
mixtures are their sums (plus noise for WHAM!'s ``mix_both``). Used by tests/test_recipes.py.
"""

import csv
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import soundfile as sf


def _source(rng: np.random.Generator, n: int, rate: int) -> np.ndarray:
    t = np.arange(n) / rate
    carrier = np.sin(2 * np.pi * rng.uniform(120, 300) * t) + 0.3 * rng.standard_normal(n)
    envelope = 0.5 * (1 + np.sin(2 * np.pi * rng.uniform(2, 5) * t + rng.uniform(0, 6)))
    return (0.2 * carrier * envelope).astype(np.float32)


def _write(path: Path, wav: np.ndarray, rate: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), wav, rate, subtype="FLOAT")


def _utterance(rng, seconds: float, rate: int) -> dict[str, np.ndarray]:
    n = int(seconds * rate)
    s1, s2 = _source(rng, n, rate), _source(rng, n, rate)
    noise = (0.05 * rng.standard_normal(n)).astype(np.float32)
    return {
        "s1": s1,
        "s2": s2,
        "noise": noise,
        "mix_clean": s1 + s2,
        "mix_both": s1 + s2 + noise,
        "mix_single": s1 + noise,
    }


def make_wsj0mix(
    root, n_per_split: int = 2, seconds: float = 0.6, rate: int = 8000, seed: int = 0
) -> Path:
    """``root/2speakers/wav8k/min/{tr,cv,tt}/{mix,s1,s2}/*.wav``; returns ``root``."""
    rng = np.random.default_rng(seed)
    base = Path(root) / "2speakers" / f"wav{rate // 1000}k" / "min"
    for split in ("tr", "cv", "tt"):
        for i in range(n_per_split):
            name = f"01{split}{i:02d}_0.5_02{split}{i:02d}_-0.5.wav"
            u = _utterance(rng, seconds + 0.1 * i, rate)
            for folder, key in (("mix", "mix_clean"), ("s1", "s1"), ("s2", "s2")):
                _write(base / split / folder / name, u[key], rate)
    return Path(root)


def make_wham(
    root, n_per_split: int = 2, seconds: float = 0.6, rate: int = 8000, seed: int = 1
) -> Path:
    """``root/wav8k/min/{tr,cv,tt}/{mix_both,mix_clean,mix_single,s1,s2,noise}/*.wav``; returns
    ``root``."""
    rng = np.random.default_rng(seed)
    base = Path(root) / f"wav{rate // 1000}k" / "min"
    for split in ("tr", "cv", "tt"):
        for i in range(n_per_split):
            name = f"40{split}{i:02d}_1.2_41{split}{i:02d}_-1.2.wav"
            u = _utterance(rng, seconds + 0.1 * i, rate)
            for folder in ("mix_both", "mix_clean", "mix_single", "s1", "s2", "noise"):
                _write(base / split / folder / name, u[folder], rate)
    return Path(root)


def make_librimix(
    root,
    n_per_split: int = 2,
    seconds: float = 0.6,
    rate: int = 8000,
    seed: int = 2,
    metadata: bool = True,
    stale_prefix: str = "/somewhere/else",
) -> Path:
    """``root/Libri2Mix/wav8k/min/{train-100,dev,test}/{mix_clean,mix_both,s1,s2,noise}/*.wav`` and
    ``metadata/mixture_<split>_mix_clean.csv`` whose paths point under ``stale_prefix`` (as after
    moving a generated LibriMix). Returns the ``Libri2Mix`` folder."""
    rng = np.random.default_rng(seed)
    libri = Path(root) / "Libri2Mix"
    base = libri / f"wav{rate // 1000}k" / "min"
    for split in ("train-100", "dev", "test"):
        rows: list[dict] = []
        for i in range(n_per_split):
            mix_id = f"{100 + i}-{2000 + i}-{i:04d}_{300 + i}-{4000 + i}-{i:04d}"
            u = _utterance(rng, seconds + 0.1 * i, rate)
            for folder in ("mix_clean", "mix_both", "s1", "s2", "noise"):
                _write(base / split / folder / f"{mix_id}.wav", u[folder], rate)
            stale = f"{stale_prefix}/Libri2Mix/wav{rate // 1000}k/min/{split}"
            rows.append(
                {
                    "mixture_ID": mix_id,
                    "mixture_path": f"{stale}/mix_clean/{mix_id}.wav",
                    "source_1_path": f"{stale}/s1/{mix_id}.wav",
                    "source_2_path": f"{stale}/s2/{mix_id}.wav",
                    "length": len(u["mix_clean"]),
                }
            )
        if metadata:
            (base / "metadata").mkdir(parents=True, exist_ok=True)
            with open(base / "metadata" / f"mixture_{split}_mix_clean.csv", "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=list(rows[0]))
                writer.writeheader()
                writer.writerows(rows)
    return libri


def make_echo2mix(
    root, n_per_split: int = 2, seconds: float = 0.6, rate: int = 16000, seed: int = 3
) -> Path:
    """``root/{train,val,test}/<room>/<speakers>/{mix,spk1_reverb,spk2_reverb}.wav``; returns
    ``root``."""
    rng = np.random.default_rng(seed)
    root = Path(root)
    for split in ("train", "val", "test"):
        for i in range(n_per_split):
            folder = root / split / f"room{i % 2}" / f"{split}_{i:03d}_spk{i}_spk{i + 5}"
            u = _utterance(rng, seconds + 0.1 * i, rate)
            _write(folder / "mix.wav", u["mix_clean"], rate)
            _write(folder / "spk1_reverb.wav", u["s1"], rate)
            _write(folder / "spk2_reverb.wav", u["s2"], rate)
    return root


# recipe folder under egs/ -> (its run.sh option naming the dataset folder,
# the fake dataset's maker)
RECIPES = {
    "wsj0-2mix": ("--wsj0mix_dir", make_wsj0mix),
    "wham": ("--wham_dir", make_wham),
    "librimix": ("--librimix_dir", make_librimix),
    "echo2mix": ("--echo2mix_dir", make_echo2mix),
}


def remove(paths: Sequence[Path]) -> None:
    for path in paths:
        os.unlink(path)
