"""The speech engine of the synthetic corpora: eSpeak NG voices, random sentences, synthesis.

Speech is produced by the eSpeak NG formant synthesizer (shipped with its voice data by the PyPI
package ``espeakng-loader``, driven here through ``ctypes``). Every utterance is synthesised by a
freshly loaded private copy of libespeak-ng (its wave generator keeps state between calls otherwise)
whose noise generator is seeded explicitly, so the same voice and text give the same samples.

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

Split rule: train and valid draw their voices from ``TRAIN_VARIANTS``, test from ``TEST_VARIANTS``
(see :func:`variants_for`), and their sentences from disjoint content words
(:func:`asteroid_spmamba.data.wordlist.content_words`).

Used by :mod:`asteroid_spmamba.data.mixing` (eSpeak NG mixtures) and
:mod:`asteroid_spmamba.data.speech_bank` (speech banks, whose ``espeak`` voices and phonemes come
from here).

References:
    eSpeak NG, https://github.com/espeak-ng/espeak-ng
"""

import atexit
import ctypes
import importlib.metadata
import math
import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Sequence
from typing import Optional

import numpy as np

from . import wordlist

ESPEAK_RATE = 22050

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
TRIM_THRESHOLD = 0.02  # fraction of the peak below which leading/trailing samples count as silence
TRIM_MARGIN_S = 0.01

# espeak-ng API constants (speak_lib.h)
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
CHARS_UTF8 = 1
_PARAM_RATE, _PARAM_VOLUME, _PARAM_PITCH, _PARAM_RANGE = 1, 2, 3, 4
_VOLUME = 60  # below the default 100: some variants saturate 16 bits at full volume


def variants_for(split: str) -> dict[str, tuple[str, ...]]:
    """Voice variants (by sex) that ``split`` draws from."""
    return TEST_VARIANTS if split == "test" else TRAIN_VARIANTS


# --------------------------------------------------------------------------------------------
# eSpeak NG through ctypes
# --------------------------------------------------------------------------------------------
def require_espeak():
    try:
        import espeakng_loader
    except ImportError as err:
        raise ImportError(
            "The synthetic corpus needs eSpeak NG from the PyPI package espeakng-loader: "
            "pip install espeakng-loader"
        ) from err
    return espeakng_loader


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
        loader = require_espeak()
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
                "This libespeak-ng has no espeak_ng_SetRandSeed (needs eSpeak NG >= 1.52), so its "
                "output would change with the clock. Upgrade: pip install -U espeakng-loader"
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
                    data, len(data), 0, _POS_CHARACTER, 0, CHARS_UTF8, None, None
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


def engine() -> _Espeak:
    global _ENGINE
    if _ENGINE is None:
        _ENGINE = _Espeak(_COPY_DIR)
    return _ENGINE


def init_worker(copy_dir: str) -> None:
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


def draw_voice(
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


def speak(voice: dict, text: str, sample_rate: int) -> np.ndarray:
    spec = voice.get("variant_spec")
    name = RANDOM_VARIANT if spec else voice["variant"]
    raw = engine().synth(
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


def package_versions(names: Sequence[str]) -> dict[str, Optional[str]]:
    """Installed version of each distribution in ``names`` (None where it is not installed)."""
    out: dict[str, Optional[str]] = {}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out
