"""Synthetic two-speaker corpus in the Echo2Mix layout, spoken by eSpeak NG.

The corpus is a small, fully reproducible stand-in for Echo2Mix that needs no download: every
utterance is real synthetic speech produced by the eSpeak NG formant synthesizer (shipped with its
voice data by the PyPI package ``espeakng-loader``, driven here through ``ctypes``), optionally
reverberated in a random shoebox room simulated with ``pyroomacoustics``.

Each mixture holds two different voices. A voice is an English accent (``en-us``, ``en``,
``en-gb-scotland``, ...) combined with a voice variant (eSpeak NG's ``m1``..``m8``, ``f1``..``f5``
and named variants such as ``Andy`` or ``belinda``, which change formants, pitch and breathiness),
plus a speaking rate (140-200 words/min), a pitch (30-70) and a pitch range (30-80), drawn per
utterance; the sex of each voice is drawn with probability 1/2. Sentences are random phrases of
6-14 words (``DET [ADJ] NOUN VERB DET [ADJ] NOUN (PREP DET [ADJ] NOUN)* [ADV]``) from the word list
in :mod:`asteroid_spmamba.data.wordlist`.

With ``random_voices=p`` (``--random-voices p``), each train/valid voice is, with probability
``p``, a random variant written on the fly (:func:`random_variant`: pitch base and range, the
frequencies, heights and widths of formants 0-8, flutter and roughness, drawn around each sex's
shipped variants) instead of a shipped one; the test split stays on the held-out shipped variants
(byte-identical to the corpus without random voices).

Mixing: leading/trailing silence is trimmed, the shorter utterance is placed at a random offset
inside the longer one (overlap ratio = shorter / longer; sentences are redrawn until it reaches
``min_overlap``, 0.7 by default, and the longer utterance is cut as a last resort), the mixture
spans their union (or exactly ``duration`` seconds when given: a random window of the union, or
zero padding at the end). With ``reverb=True`` both sources are convolved with the impulse
responses of one random room (size 3-10 x 3-8 x 2.5-4 m, RT60 0.2-0.6 s, two sources and one
microphone) and, as in Echo2Mix, the *reverberant* sources are the targets; with
``anechoic_share=p`` as well, each mixture stays dry (dry targets) with probability ``p``, drawn
from a stream of its own (``p=0`` is byte-identical to the corpus made before). The level of speaker 1
relative to speaker 2 is drawn in [-5, 5] dB (RMS over the whole utterance), and the peak of the
mixture in [0.25, 0.9]. Sources are quantised to 16 bits first and the mixture is their integer
sum, so ``mix == spk1_reverb + spk2_reverb`` holds exactly in the 16-bit PCM files.

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
    OUT/metadata/{split}.csv             mixture_ID, mixture_path, source_1_path, source_2_path, length
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

import atexit
import csv
import ctypes
import importlib.metadata
import json
import math
import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Union

import numpy as np

from ..files import remove_litter, work_in_progress, work_path
from . import wordlist

if TYPE_CHECKING:
    from .speech_bank import SpeechBank

GENERATOR_VERSION = 1
SPLITS = ("train", "valid", "test")
_SPLIT_CODE = {"train": 0, "valid": 1, "test": 2}
ESPEAK_RATE = 22050
SUBTYPE = "PCM_16"

ACCENTS: tuple[str, ...] = (
    "en-us",
    "en",
    "en-gb-scotland",
    "en-gb-x-rp",
    "en-029",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
    "en-us-nyc",
)
TRAIN_VARIANTS: dict[str, tuple[str, ...]] = {
    "male": (
        "m1",
        "m2",
        "m4",
        "m5",
        "m6",
        "Diogo",
        "Henrique",
        "Hugo",
        "michel",
        "miguel",
        "Denis",
        "Marco",
        "antonio",
        "travis",
        "paul",
        "iven",
        "ed",
        "Michael",
        "Mario",
        "gustave",
        "Gene",
        "grandpa",
        "david",
        "edward",
        "benjamin",
    ),
    "female": ("f1", "f3", "Alicia", "Andrea", "Annie", "anika", "steph", "steph2", "grandma"),
}
TEST_VARIANTS: dict[str, tuple[str, ...]] = {
    "male": ("m3", "m7", "m8", "rob", "robert", "quincy", "Andy", "Lee"),
    "female": ("f2", "f4", "f5", "aunty", "belinda", "linda"),
}
# Random voice variants (train/valid only, with random_voices > 0): eSpeak NG variant files with
# drawn pitch (Hz, base and top of the range), formant frequencies/heights/widths (percent of the
# phoneme tables' values), flutter and roughness, around each sex's shipped variants.
RANDOM_VARIANT = "rndv"  # short: eSpeak NG keeps voice names in small fixed buffers
RANDOM_PITCH_BASE = {"male": (65, 105), "female": (125, 190)}
RANDOM_PITCH_SPAN = {"male": (20, 55), "female": (40, 95)}
RANDOM_FORMANT_CENTRE = {"male": 97, "female": 110}
RANDOM_FORMANT_SPREAD = 9  # +- percent around the centre, drawn per formant
RANDOM_HEIGHT = (65, 115)
RANDOM_WIDTH = (80, 160)
RATE_WPM = (140, 200)
PITCH = (30, 70)
PITCH_RANGE = (30, 80)
LEVEL_DB = (-5.0, 5.0)
PEAK = (0.25, 0.9)
ROOM_SIZE = ((3.0, 10.0), (3.0, 8.0), (2.5, 4.0))
RT60 = (0.2, 0.6)
MAX_SENTENCE_TRIES = 8
TRIM_THRESHOLD = 0.02  # fraction of the peak below which leading/trailing samples count as silence
TRIM_MARGIN_S = 0.01

# espeak-ng API constants (speak_lib.h)
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_PARAM_RATE, _PARAM_VOLUME, _PARAM_PITCH, _PARAM_RANGE = 1, 2, 3, 4
_VOLUME = 60  # below the default 100: some variants saturate 16 bits at full volume


def variants_for(split: str) -> dict[str, tuple[str, ...]]:
    """Voice variants (by sex) that ``split`` draws from."""
    return TEST_VARIANTS if split == "test" else TRAIN_VARIANTS


# --------------------------------------------------------------------------------------------
# eSpeak NG through ctypes
# --------------------------------------------------------------------------------------------
def _require_espeak():
    try:
        import espeakng_loader
    except ImportError as err:
        raise ImportError(
            "The synthetic corpus needs eSpeak NG from the PyPI package espeakng-loader: "
            "pip install espeakng-loader"
        ) from err
    return espeakng_loader


def _require_pyroomacoustics():
    try:
        import pyroomacoustics
    except ImportError as err:
        raise ImportError(
            "reverb=True (--reverb) needs pyroomacoustics: pip install pyroomacoustics"
        ) from err
    return pyroomacoustics


_SYNTH_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


class _Espeak:
    """Synthesizes each utterance with a freshly loaded, private copy of libespeak-ng.

    libespeak-ng keeps wave-generator state in static variables that survive
    ``espeak_Terminate``, so the same text comes out slightly differently depending on what was
    synthesized before in the process, and ``espeak_Initialize`` seeds its noise generator from
    the clock. Loading a private copy of the library (no one else holds it), seeding it
    explicitly and unloading it after each utterance gives the same samples every time. One
    instance per process; calls are serialised by a lock since the library is global.
    """

    def __init__(self, copy_dir: Optional[str] = None):
        loader = _require_espeak()
        # worker processes copy into a folder their parent removes (pool workers skip atexit)
        self._tmpdir = tempfile.mkdtemp(prefix="espeak-copy-", dir=copy_dir)
        if copy_dir is None:
            atexit.register(shutil.rmtree, self._tmpdir, True)
        self._lib_path = os.path.join(self._tmpdir, os.path.basename(loader.get_library_path()))
        shutil.copyfile(loader.get_library_path(), self._lib_path)
        data_parent, self._variants_dir = _private_data_dir(loader.get_data_path(), self._tmpdir)
        self._data_parent = data_parent.encode()
        self._chunks: list[np.ndarray] = []
        self._callback = _SYNTH_CALLBACK(self._on_audio)
        self._lock = threading.Lock()
        self._can_unload = _dlclose is not None
        self.version = self._query_version()
        self._check_fresh_state()

    def _on_audio(self, wav, n, _events):
        if n > 0 and wav:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        return 0

    def _load(self):
        path = self._lib_path
        if not self._can_unload:  # no dlclose: a new file gives a new library instance
            path = os.path.join(self._tmpdir, f"lib-{uuid.uuid4().hex}.so")
            shutil.copyfile(self._lib_path, path)
        lib = ctypes.CDLL(path)
        lib.espeak_Initialize.restype = ctypes.c_int
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, self._data_parent, 0)
        if rate != ESPEAK_RATE:
            raise RuntimeError(f"espeak_Initialize failed or returned an unexpected rate ({rate}).")
        lib.espeak_SetSynthCallback(self._callback)
        if not hasattr(lib, "espeak_ng_SetRandSeed"):
            raise RuntimeError(
                "This libespeak-ng has no espeak_ng_SetRandSeed (needs eSpeak NG >= 1.52), so its output "
                "would change with the clock. Upgrade: pip install -U espeakng-loader"
            )
        return lib

    def _unload(self, lib) -> None:
        lib.espeak_Terminate()
        if self._can_unload:
            _dlclose(lib._handle)

    def _query_version(self) -> str:
        lib = self._load()
        try:
            lib.espeak_Info.restype = ctypes.c_char_p
            return lib.espeak_Info(None).decode()
        finally:
            self._unload(lib)

    def _check_fresh_state(self) -> None:
        probe = ("one quiet morning", "en-us+m1", 170, 50, 50)
        first = self.synth(*probe)
        self.synth("another sentence", "en+f2", 190, 60, 40)
        if not np.array_equal(first, self.synth(*probe)):
            raise RuntimeError(
                "libespeak-ng could not be restarted from a clean state in this process (its copy "
                "is held elsewhere), so the corpus would not be reproducible. Generate it in a "
                "fresh Python process (asteroid-spmamba make-corpus ...)."
            )

    def synth(
        self,
        text: str,
        voice: str,
        rate: int,
        pitch: int,
        pitch_range: int,
        seed: int = 0,
        variant_spec: Optional[str] = None,
    ) -> np.ndarray:
        """Speak ``text`` with ``voice`` (e.g. ``"en-us+m3"``); returns int16 samples at 22050 Hz.

        ``seed`` seeds eSpeak NG's noise generator, which espeak_Initialize otherwise seeds
        from the clock. ``variant_spec``: the text of a voice variant file (see
        :func:`random_variant`), spoken as ``"<accent>+<RANDOM_VARIANT>"``.
        """
        with self._lock:
            if variant_spec is not None:
                with open(os.path.join(self._variants_dir, RANDOM_VARIANT), "w") as f:
                    f.write(variant_spec)
            lib = self._load()
            try:
                self._chunks = []
                lib.espeak_ng_SetRandSeed(ctypes.c_long(int(seed)))
                _libc_srand(int(seed) & 0x7FFFFFFF)  # the library also calls libc rand()
                if lib.espeak_SetVoiceByName(voice.encode()) != 0:
                    raise ValueError(f"eSpeak NG has no voice {voice!r}.")
                for param, value in (
                    (_PARAM_RATE, rate),
                    (_PARAM_PITCH, pitch),
                    (_PARAM_RANGE, pitch_range),
                    (_PARAM_VOLUME, _VOLUME),
                ):
                    lib.espeak_SetParameter(param, int(value), 0)
                data = text.encode("utf-8") + b"\0"
                err = lib.espeak_Synth(
                    data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None
                )
                if err != 0:
                    raise RuntimeError(
                        f"espeak_Synth failed with code {err} on {text!r} ({voice})."
                    )
                chunks = self._chunks
            finally:
                self._unload(lib)
        return np.concatenate(chunks) if chunks else np.zeros(0, np.int16)


def _private_data_dir(data_path: str, tmpdir: str) -> tuple[str, str]:
    """A folder holding an ``espeak-ng-data`` made of links to ``data_path``'s entries, except for
    the voice-variant folder ``voices/!v``, which is a real folder (links to every shipped variant)
    where random variants can be written. Returns the folder to pass to espeak_Initialize and that
    variant folder."""
    root = os.path.join(tmpdir, "data")
    src, dst = data_path, os.path.join(root, "espeak-ng-data")
    # real folders down to voices/!v, links to everything beside them
    for real_child in ("voices", "!v", None):
        os.makedirs(dst)
        for entry in os.listdir(src):
            if entry != real_child:
                os.symlink(os.path.join(src, entry), os.path.join(dst, entry))
        if real_child is not None:
            src, dst = os.path.join(src, real_child), os.path.join(dst, real_child)
    return root, dst


try:  # POSIX; elsewhere each utterance loads a new copy of the library instead
    from _ctypes import dlclose as _dlclose
except ImportError:  # pragma: no cover
    _dlclose = None

try:
    _libc_srand = ctypes.CDLL(None).srand
except (OSError, AttributeError):  # pragma: no cover

    def _libc_srand(_seed: int) -> None:
        pass


_ENGINE: Optional[_Espeak] = None
_COPY_DIR: Optional[str] = None


def _engine() -> _Espeak:
    global _ENGINE
    if _ENGINE is None:
        _ENGINE = _Espeak(_COPY_DIR)
    return _ENGINE


def _init_worker(copy_dir: str) -> None:
    """Pool initializer: keep this worker's copy of libespeak-ng under ``copy_dir``."""
    global _COPY_DIR
    _COPY_DIR = copy_dir


# --------------------------------------------------------------------------------------------
# Sentences, voices, mixing
# --------------------------------------------------------------------------------------------
def make_sentence(rng: np.random.Generator, n_words: int, split: str) -> str:
    """A random sentence of exactly ``n_words`` (>= 5) words from ``split``'s vocabulary."""
    if n_words < 5:
        raise ValueError(f"Sentences have at least 5 words (got n_words={n_words}).")
    words = wordlist.content_words(split)
    extra = n_words - 5  # the core clause DET NOUN VERB DET NOUN has 5 words
    # k prepositional phrases (3 words each) leave extra - 3k words for adjectives (one per noun
    # phrase at most, 2 + k noun phrases) and one optional adverb.
    feasible = [k for k in range(extra // 3 + 1) if extra - 3 * k <= 3 + k]
    n_pp = int(rng.choice(feasible))
    rest = extra - 3 * n_pp
    n_np = 2 + n_pp
    adverb = rest > n_np or (rest > 0 and rng.random() < 0.3)
    n_adj = rest - int(adverb)
    adj_slots = set(rng.choice(n_np, size=n_adj, replace=False).tolist()) if n_adj else set()

    def pick(group):
        return str(rng.choice(group))

    def noun_phrase(i):
        out = [pick(wordlist.DETERMINERS)]
        if i in adj_slots:
            out.append(pick(words["adjective"]))
        return out + [pick(words["noun"])]

    sentence = noun_phrase(0) + [pick(words["verb"])] + noun_phrase(1)
    for i in range(n_pp):
        sentence += [pick(wordlist.PREPOSITIONS)] + noun_phrase(2 + i)
    if adverb:
        sentence.append(pick(words["adverb"]))
    assert len(sentence) == n_words
    return " ".join(sentence)


def random_variant(rng: np.random.Generator, sex: str) -> str:
    """Text of a random eSpeak NG voice variant file for ``sex`` ("male" or "female")."""
    base = int(rng.integers(*RANDOM_PITCH_BASE[sex], endpoint=True))
    top = base + int(rng.integers(*RANDOM_PITCH_SPAN[sex], endpoint=True))
    lines = [
        "language variant",
        f"name {RANDOM_VARIANT}",
        f"gender {sex}",
        "",
        f"pitch {base} {top}",
        f"flutter {int(rng.integers(0, 11))}",
        f"roughness {int(rng.integers(0, 5))}",
    ]
    centre = RANDOM_FORMANT_CENTRE[sex]
    for k in range(9):
        freq = (
            centre + int(rng.integers(-RANDOM_FORMANT_SPREAD, RANDOM_FORMANT_SPREAD + 1))
            if k < 6
            else 100
        )
        height = int(rng.integers(*RANDOM_HEIGHT, endpoint=True))
        width = int(rng.integers(*RANDOM_WIDTH, endpoint=True))
        lines.append(f"formant {k} {freq} {height} {width}")
    return "\n".join(lines) + "\n"


def _draw_voice(
    rng: np.random.Generator, split: str, exclude: Optional[str] = None, random_voices: float = 0.0
) -> dict:
    pool = variants_for(split)
    sex = "female" if rng.random() < 0.5 else "male"
    variants = [v for v in pool[sex] if v != exclude]
    voice = {
        "sex": sex,
        "accent": str(rng.choice(ACCENTS)),
        "variant": str(rng.choice(variants)),
        "rate": int(rng.integers(RATE_WPM[0], RATE_WPM[1] + 1)),
        "pitch": int(rng.integers(PITCH[0], PITCH[1] + 1)),
        "pitch_range": int(rng.integers(PITCH_RANGE[0], PITCH_RANGE[1] + 1)),
        "noise_seed": int(rng.integers(0, 2**31 - 1)),
        "variant_spec": None,
    }
    # drawn after the fields above, so that random_voices=0 draws exactly what it always drew
    if random_voices > 0 and split != "test" and rng.random() < random_voices:
        voice["variant_spec"] = random_variant(rng, sex)
        voice["variant"] = "random-" + uuid.uuid5(uuid.NAMESPACE_OID, voice["variant_spec"]).hex[:8]
    return voice


def _speak(voice: dict, text: str, sample_rate: int) -> np.ndarray:
    spec = voice.get("variant_spec")
    name = RANDOM_VARIANT if spec else voice["variant"]
    raw = _engine().synth(
        text,
        f"{voice['accent']}+{name}",
        voice["rate"],
        voice["pitch"],
        voice["pitch_range"],
        voice["noise_seed"],
        variant_spec=spec,
    )
    wav = raw.astype(np.float64) / 32768.0
    return trim_silence(resample(wav, ESPEAK_RATE, sample_rate), sample_rate)


def resample(wav: np.ndarray, orig: int, new: int) -> np.ndarray:
    """``wav`` from ``orig`` Hz to ``new`` Hz (polyphase filter over the reduced ratio)."""
    if orig == new:
        return wav
    from scipy.signal import resample_poly

    g = math.gcd(int(orig), int(new))
    return resample_poly(wav, int(new) // g, int(orig) // g)


def trim_silence(wav: np.ndarray, sample_rate: int) -> np.ndarray:
    """``wav`` without leading/trailing silence (so that "overlap" means overlapping speech)."""
    active = np.flatnonzero(np.abs(wav) > TRIM_THRESHOLD * np.abs(wav).max())
    margin = int(TRIM_MARGIN_S * sample_rate)
    start, stop = max(active[0] - margin, 0), min(active[-1] + 1 + margin, len(wav))
    return wav[start:stop]


def _room_rirs(rng: np.random.Generator, sample_rate: int) -> tuple[list[np.ndarray], dict]:
    pra = _require_pyroomacoustics()
    pra.constants.set(
        "num_threads", 1
    )  # one thread per worker process; keeps sums in a fixed order
    dims = [float(rng.uniform(lo, hi)) for lo, hi in ROOM_SIZE]
    rt60 = float(rng.uniform(*RT60))

    def position():
        return [
            float(rng.uniform(0.5, dims[0] - 0.5)),
            float(rng.uniform(0.5, dims[1] - 0.5)),
            float(rng.uniform(1.0, min(2.0, dims[2] - 0.3))),
        ]

    mic = position()
    sources = []
    for _ in range(2):
        for _try in range(100):  # keep each talker at least 0.5 m from the microphone
            pos = position()
            if np.linalg.norm(np.subtract(pos, mic)) >= 0.5:
                break
        sources.append(pos)
    absorption, max_order = pra.inverse_sabine(rt60, dims)
    room = pra.ShoeBox(
        dims, fs=sample_rate, materials=pra.Material(absorption), max_order=max_order
    )
    for pos in sources:
        room.add_source(pos)
    room.add_microphone(mic)
    room.compute_rir()
    rirs = [np.asarray(room.rir[0][k], dtype=np.float64) for k in range(2)]
    info = {"room": "x".join(f"{d:.2f}" for d in dims), "rt60": round(rt60, 3)}
    return rirs, info


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x**2)) + 1e-12)


def make_mixture(
    seed_key: Sequence[int],
    split: str,
    sample_rate: int = 8000,
    reverb: bool = False,
    duration: Optional[float] = None,
    words: tuple[int, int] = (6, 14),
    min_overlap: float = 0.7,
    random_voices: float = 0.0,
    speech_bank: Optional[str] = None,
    anechoic_share: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Build one mixture from its seed key (``random_voices``, ``speech_bank``: see :func:`make_corpus`).

    Returns ``(mix, sources, info)``: int16 arrays ``(time,)`` and ``(2, time)`` with
    ``mix == sources.sum(0)``, and a dict describing voices, sentences and mixing.
    """
    rng = np.random.default_rng(np.random.SeedSequence(list(seed_key)))
    if reverb and anechoic_share > 0:  # a stream of its own: the main one draws what it always drew
        reverb = (
            np.random.default_rng(np.random.SeedSequence([*seed_key, ANECHOIC_KEY])).random()
            >= anechoic_share
        )
    if speech_bank is not None:
        utt1, utt2, voice_info = _bank_utterances(rng, split, sample_rate, min_overlap, speech_bank)
    else:
        utt1, utt2, voice_info = _espeak_utterances(
            rng, split, sample_rate, words, min_overlap, random_voices
        )
    if not _overlap_reached(utt1, utt2, min_overlap):  # last resort: cut the longer
        limit = int(math.ceil(min(len(utt1), len(utt2)) / min_overlap))
        utt1, utt2 = utt1[:limit], utt2[:limit]

    long_first = len(utt1) >= len(utt2)
    union = max(len(utt1), len(utt2))
    offset = int(rng.integers(0, union - min(len(utt1), len(utt2)) + 1))
    dry = np.zeros((2, union))
    offsets = (0, offset) if long_first else (offset, 0)
    dry[0, offsets[0] : offsets[0] + len(utt1)] = utt1
    dry[1, offsets[1] : offsets[1] + len(utt2)] = utt2
    overlap_ratio = min(len(utt1), len(utt2)) / union

    info = {}
    if reverb:
        from scipy.signal import fftconvolve

        rirs, room_info = _room_rirs(rng, sample_rate)
        wet = np.stack([fftconvolve(dry[k], rirs[k])[:union] for k in range(2)])
        info.update(room_info)
    else:
        wet = dry
        info.update({"room": "", "rt60": ""})

    if duration is not None:
        n = int(round(duration * sample_rate))
        if union > n:
            # random window that keeps as much of the overlapping part as possible
            ov_start = max(offsets)
            ov_stop = min(offsets[0] + len(utt1), offsets[1] + len(utt2))
            if ov_stop - ov_start >= n:
                lo, hi = ov_start, ov_stop - n
            else:
                lo, hi = max(0, ov_stop - n), min(ov_start, union - n)
            start = int(rng.integers(lo, hi + 1))
            wet = wet[:, start : start + n]
        else:
            wet = np.pad(wet, ((0, 0), (0, n - union)))

    level_db = float(rng.uniform(*LEVEL_DB))
    gains = (10 ** (level_db / 40) / _rms(wet[0]), 10 ** (-level_db / 40) / _rms(wet[1]))
    wet = wet * np.asarray(gains)[:, None]
    peak = float(rng.uniform(*PEAK))
    scale = peak / max(np.abs(wet).max(), np.abs(wet.sum(0)).max())
    sources = np.round(wet * scale * 32767).astype(np.int32)
    mix = sources.sum(0)
    if np.abs(mix).max() > 32767:  # cannot happen with peak <= 0.9, kept as a guard
        raise AssertionError("mixture overflow")
    info.update(voice_info)
    info.update(
        {
            "level_db": round(level_db, 3),
            "offset1": offsets[0],
            "offset2": offsets[1],
            "overlap_ratio": round(overlap_ratio, 4),
        }
    )
    return mix.astype(np.int16), sources.astype(np.int16), info


def _overlap_reached(utt1: np.ndarray, utt2: np.ndarray, min_overlap: float) -> bool:
    """Whether the shorter utterance is at least ``min_overlap`` of the longer one."""
    return min(len(utt1), len(utt2)) >= min_overlap * max(len(utt1), len(utt2))


def _espeak_utterances(rng, split, sample_rate, words, min_overlap, random_voices):
    """Two eSpeak NG voices of ``split`` speaking random sentences; sentence 2 is redrawn until
    the overlap ratio is reached (up to MAX_SENTENCE_TRIES times)."""
    voice1 = _draw_voice(rng, split, random_voices=random_voices)
    voice2 = _draw_voice(rng, split, exclude=voice1["variant"], random_voices=random_voices)
    n1 = int(rng.integers(words[0], words[1] + 1))
    text1 = make_sentence(rng, n1, split)
    utt1 = _speak(voice1, text1, sample_rate)
    for _ in range(MAX_SENTENCE_TRIES):
        n2 = int(np.clip(n1 + rng.integers(-2, 3), words[0], words[1]))
        text2 = make_sentence(rng, n2, split)
        utt2 = _speak(voice2, text2, sample_rate)
        if _overlap_reached(utt1, utt2, min_overlap):
            break
    info = {
        "voice1": f"{voice1['accent']}+{voice1['variant']}",
        "sex1": voice1["sex"],
        "rate1": voice1["rate"],
        "pitch1": voice1["pitch"],
        "range1": voice1["pitch_range"],
        "text1": text1,
        "voice2": f"{voice2['accent']}+{voice2['variant']}",
        "sex2": voice2["sex"],
        "rate2": voice2["rate"],
        "pitch2": voice2["pitch"],
        "range2": voice2["pitch_range"],
        "text2": text2,
    }
    return utt1, utt2, info


_BANKS: dict[str, "SpeechBank"] = {}


def _bank_utterances(rng, split, sample_rate, min_overlap, bank_dir):
    """Utterances of two different speakers of ``split`` in the speech bank ``bank_dir``; the second
    is redrawn (same speaker) until the overlap ratio is reached (up to MAX_SENTENCE_TRIES times)."""
    from .speech_bank import SpeechBank

    bank = _BANKS.get(bank_dir)
    if bank is None:
        bank = _BANKS[bank_dir] = SpeechBank(bank_dir)
    bank.check_mixable(split)
    speakers = bank.speakers(split)
    first, second = (speakers[i] for i in rng.choice(len(speakers), 2, replace=False))
    rows1, rows2 = bank.by_speaker[split][first], bank.by_speaker[split][second]
    row1 = rows1[int(rng.integers(len(rows1)))]
    utt1 = bank.load(row1, sample_rate)
    for _ in range(MAX_SENTENCE_TRIES):
        row2 = rows2[int(rng.integers(len(rows2)))]
        utt2 = bank.load(row2, sample_rate)
        if _overlap_reached(utt1, utt2, min_overlap):
            break
    info = {
        "voice1": first,
        "sex1": "",
        "rate1": "",
        "pitch1": "",
        "range1": "",
        "text1": row1["text"],
        "voice2": second,
        "sex2": "",
        "rate2": "",
        "pitch2": "",
        "range2": "",
        "text2": row2["text"],
    }
    return utt1, utt2, info


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
    )
    mid = _mixture_id(split, index)
    folder = Path(root) / split / mid
    folder.mkdir(parents=True, exist_ok=True)
    for name, wav in (("mix", mix), ("spk1_reverb", sources[0]), ("spk2_reverb", sources[1])):
        sf.write(str(folder / f"{name}.wav"), wav, params["sample_rate"], subtype=SUBTYPE)
    info["mixture_ID"] = mid
    info["length"] = int(len(mix))
    return info


def package_versions(names: Sequence[str]) -> dict[str, Optional[str]]:
    """Installed version of each distribution in ``names`` (None where it is not installed)."""
    out: dict[str, Optional[str]] = {}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


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
    )
    bank_dir = None
    if speech_bank is not None:
        from .speech_bank import SpeechBank

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
                    f"{out} exists and is not a synthetic corpus (no readable corpus.json). Choose another "
                    "folder or delete this one."
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
        _require_pyroomacoustics()
    espeak_version = None
    if bank_dir is None:
        _require_espeak()
        espeak_version = _engine().version

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
                # an executor, not a Pool: a worker that dies raises BrokenProcessPool instead of hanging
                with ProcessPoolExecutor(
                    num_workers,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_init_worker,
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
            "description": f"Synthetic two-speaker mixtures ({'the speech bank ' + bank_dir if bank_dir else 'eSpeak NG voices'}) "
            "in the Echo2Mix layout, made by asteroid_spmamba.data.synthetic.",
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
