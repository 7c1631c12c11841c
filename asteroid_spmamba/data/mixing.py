"""One two-speaker mixture from its seed key: two utterances, their overlap, a room, their levels.

Mixing: leading/trailing silence is trimmed, the shorter utterance is placed at a random offset
inside the longer one (overlap ratio = shorter / longer; sentences are redrawn until it reaches
``min_overlap``, 0.7 by default, and the longer utterance is cut as a last resort), the mixture
spans their union (or exactly ``duration`` seconds when given: a random window of the union, or
zero padding at the end). With ``reverb=True`` both sources are convolved with the impulse
responses of one random room (size 3-10 x 3-8 x 2.5-4 m, RT60 0.2 s to ``rt60_max``, 0.6 s by
default, two sources and one microphone) and, as in Echo2Mix, the *reverberant* sources are the
targets; with ``anechoic_share=p`` as well, each mixture stays dry (dry targets) with probability
``p``, drawn from a stream of its own (``p=0`` is byte-identical to the corpus made before). The
level of speaker 1 relative to speaker 2 is drawn in [-``level_spread_db``, +``level_spread_db``]
(5 dB by default; RMS over the whole utterance), and the peak of the mixture in [0.25, 0.9]. Other
ranges draw as many numbers, so a corpus's other choices stay those of the defaults. Sources are
quantised to 16 bits first and the mixture is their integer
sum, so ``mix == spk1_reverb + spk2_reverb`` holds exactly in the 16-bit PCM files.

The utterances are spoken by :mod:`asteroid_spmamba.data.speech` (eSpeak NG) or read from a speech
bank (:class:`asteroid_spmamba.data.speech_bank.SpeechBank`).

References:
    R. Scheibler, E. Bezzam, I. Dokmanic, "Pyroomacoustics: A Python package for audio room
    simulations and array processing algorithms", ICASSP 2018.
"""

import math
from collections.abc import Sequence
from typing import Optional

import numpy as np
from scipy.signal import fftconvolve

from .speech import draw_voice, make_sentence, speak
from .speech_bank import SpeechBank

LEVEL_DB = (-5.0, 5.0)
PEAK = (0.25, 0.9)
ROOM_SIZE = ((3.0, 10.0), (3.0, 8.0), (2.5, 4.0))
RT60 = (0.2, 0.6)
MAX_SENTENCE_TRIES = 8
ANECHOIC_KEY = (
    0xA7EC  # appended to a mixture's seed key: the stream that decides whether it stays dry
)


def require_pyroomacoustics():
    try:
        import pyroomacoustics
    except ImportError as err:
        raise ImportError(
            "reverb=True (--reverb) needs pyroomacoustics: pip install pyroomacoustics"
        ) from err
    return pyroomacoustics


def _room_rirs(
    rng: np.random.Generator, sample_rate: int, rt60_max: float = RT60[1]
) -> tuple[list[np.ndarray], dict]:
    pra = require_pyroomacoustics()
    pra.constants.set(
        "num_threads", 1
    )  # one thread per worker process; keeps sums in a fixed order
    dims = [float(rng.uniform(lo, hi)) for lo, hi in ROOM_SIZE]
    rt60 = float(rng.uniform(RT60[0], rt60_max))  # one draw whatever the range: the rest unchanged

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
    rt60_max: float = RT60[1],
    level_spread_db: float = LEVEL_DB[1],
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Build one mixture from its seed key (``random_voices``, ``speech_bank``, ``rt60_max``,
    ``level_spread_db``: see :func:`make_corpus`).

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
        rirs, room_info = _room_rirs(rng, sample_rate, rt60_max)
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

    level_db = float(rng.uniform(-level_spread_db, level_spread_db))
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
    voice1 = draw_voice(rng, split, random_voices=random_voices)
    voice2 = draw_voice(rng, split, exclude=voice1["variant"], random_voices=random_voices)
    n1 = int(rng.integers(words[0], words[1] + 1))
    text1 = make_sentence(rng, n1, split)
    utt1 = speak(voice1, text1, sample_rate)
    for _ in range(MAX_SENTENCE_TRIES):
        n2 = int(np.clip(n1 + rng.integers(-2, 3), words[0], words[1]))
        text2 = make_sentence(rng, n2, split)
        utt2 = speak(voice2, text2, sample_rate)
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


_BANKS: dict[str, SpeechBank] = {}


def _bank_utterances(rng, split, sample_rate, min_overlap, bank_dir):
    """Utterances of two different speakers of ``split`` in the speech bank ``bank_dir``; the second
    is redrawn (same speaker) until the overlap ratio is reached (up to MAX_SENTENCE_TRIES
    times)."""
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
