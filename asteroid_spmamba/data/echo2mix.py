"""Echo2Mix dataset: reverberant two-speaker mixtures stored one folder per utterance.

Echo2Mix is the reverberant speech-separation benchmark that SPMamba reports on. It is simulated
with SonicSim (https://github.com/JusperLee/SonicSim) and the original SPMamba recipe indexes it
with ``process_echoset.py`` of https://github.com/JusperLee/SPMamba. Each split folder holds one
folder per utterance (possibly nested, e.g. ``record/room/speakers/``) with::

    mix.wav  spk1_reverb.wav  spk2_reverb.wav

The targets are the reverberant sources, and ``mix = spk1_reverb + spk2_reverb``. The synthetic
corpus of :mod:`asteroid_spmamba.data.synthetic` uses the same layout.

Known bug of the original preparation: ``process_echoset.py`` derives the speaker-2 path with
``path.replace("spk1_raw", "spk2_reverb")`` on a path that contains ``spk1_reverb``, so its
speaker-2 list points at ``spk1_reverb.wav`` and every example built from it has speaker 1 twice.
The dataset refuses such data (see ``Echo2MixDataset``).
"""

import hashlib
import os
import warnings
from pathlib import Path
from typing import Optional, Union

import numpy as np
import soundfile as sf
import torch
from torch.utils.data import Dataset

from .._stack import user_stacklevel

MIX_FILE = "mix.wav"
MAX_LISTED = 20
MAX_EXCERPT_TRIES = 5
SPEED_DENOMINATOR = 40  # speed factors are multiples of 1/40


def source_files(n_src: int) -> list[str]:
    """File names of the ``n_src`` reverberant sources: ``spk1_reverb.wav``,
    ``spk2_reverb.wav``, ..."""
    return [f"spk{k + 1}_reverb.wav" for k in range(n_src)]


def _listing(items: list[str]) -> str:
    shown = "\n  ".join(items[:MAX_LISTED])
    more = f"\n  ... and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else ""
    return f"  {shown}{more}"


def find_utterances(root: Union[str, os.PathLike], n_src: int = 2) -> list[str]:
    """Utterance IDs under ``root``: relative paths (``/``-separated) of the
    folders holding the files.

    A folder counts as an utterance when it holds ``mix.wav`` or any ``spk{k}_reverb.wav``; every
    such folder must hold all of them. Symbolic links to folders are followed.

    Raises:
        FileNotFoundError: ``root`` is missing, holds no utterance, or some utterance folders are
            incomplete (one error listing every missing file, the first 20 and a count).
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(
            f"Echo2Mix split folder {root} does not exist. Echo2Mix is simulated with SonicSim "
            "(https://github.com/JusperLee/SonicSim) and indexed by process_echoset.py of "
            "https://github.com/JusperLee/SPMamba; point to a split folder (train/val/test) "
            "holding one folder per utterance with mix.wav, spk1_reverb.wav and spk2_reverb.wav. "
            "For a small synthetic stand-in in the same layout run: asteroid-spmamba make-corpus "
            "OUT --n-train N --n-valid N --n-test N"
        )
    expected = [MIX_FILE] + source_files(n_src)
    ids, missing = [], []
    seen = set()
    # Symbolic links are followed (a split assembled from links to another corpus's folders); a
    # folder reached twice, e.g. through a link cycle, is walked once.
    for folder, dirs, files in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:
            dirs.clear()
            continue
        seen.add(real)
        present = set(files)
        if not present.intersection(expected):
            continue
        rel = Path(folder).relative_to(root).as_posix()
        ids.append(rel)
        missing += [f"{rel}/{name}" for name in expected if name not in present]
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} file(s) missing in the utterance folders of {root} (each needs "
            f"{', '.join(expected)}):\n{_listing(sorted(missing))}"
        )
    if not ids:
        raise FileNotFoundError(
            f"No utterance folder (holding {', '.join(expected)}) found under {root}. Is this an "
            "Echo2Mix split folder? It must hold one folder per utterance."
        )
    return sorted(ids)


def identical_sources_error(utt: str) -> ValueError:
    """The error raised when both sources of an utterance are the same signal."""
    return ValueError(
        f"Both sources of utterance {utt!r} are identical (spk1_reverb.wav == spk2_reverb.wav). "
        "This is the known bug of the original Echo2Mix preparation: process_echoset.py of "
        "JusperLee/SPMamba builds the speaker-2 path with .replace('spk1_raw', 'spk2_reverb'), "
        "which never matches, so speaker 1 is used as both sources. Rebuild the folder from the "
        "original SonicSim/Echo2Mix files (spk2_reverb.wav must be the second speaker); training "
        "on it would teach the model to output speaker 1 twice."
    )


def _file_digest(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


class Echo2MixDataset(Dataset):
    """Echo2Mix-layout split folder as a torch Dataset, like Asteroid's ``LibriMix``.

    Args:
        split_dir: split folder (e.g. ``Echo2Mix/train``) holding one folder per utterance.
        n_src: number of sources (``spk1_reverb.wav`` .. ``spk{n_src}_reverb.wav``).
        sample_rate: expected sample rate of every file; a file at another rate is an error.
        segment: training segment length in seconds; ``None`` returns whole utterances
            (validation/test).
        random_segments: draw the segment start at random (``torch.randint``: PyTorch's global
            generator, which training seeds for each item, see
            :mod:`asteroid_spmamba.training.sampling`); ``False`` starts at 0.
        short_utterances: what to do with utterances shorter than ``segment``: ``"drop"`` them
            (as the original SPMamba recipe does; a warning gives the count) or ``"pad"`` them
            with zeros at the end.
        normalize_audio: divide mixture and sources by the mixture's standard deviation after
            removing each signal's mean (the original recipe's option).
        check_identical: number of utterances (evenly spaced) whose two source files are compared
            at construction; every loaded item is checked too.
        return_id: also return the utterance ID.
        dynamic_mixing: training only (needs ``segment``): every item is a new mixture whose source
            ``k`` is a random excerpt of one source of a different random utterance (so voices are
            paired anew every epoch), at a random level within +-2.5 dB of the others (RMS), the
            mixture's peak drawn in [0.25, 0.9]; excerpts where a source is
            nearly silent are redrawn.
            ``mix`` is the sum of the returned sources.
        speed_perturb: training only (needs ``segment``): ``(low, high)`` range of speed factors,
            e.g. ``(0.9, 1.1)``; each source of an item is resampled by its own factor drawn in
            that range (in steps of 1/40), which moves its pitch and formants together, as a new
            voice would, and the mixture is rebuilt as the sum of the perturbed sources.
            ``None`` (default) leaves the audio as it is.
        single_speaker_share: dynamic mixing only: the share of items in which one talker speaks
            alone; the other sources are all zeros (absent speakers) and the mixture is that talker.

    Returns per item ``(mix, sources)``: float32 tensors ``(time,)`` and ``(n_src, time)``
    (plus the ID with ``return_id``).

    Raises at construction:
        FileNotFoundError: missing split folder (with where Echo2Mix comes from), or incomplete
            utterance folders (one error listing the missing files).
        ValueError: a file at another sample rate (naming file and rates), sources and mixture of
            different lengths, identical sources (the known preparation bug), every utterance
            shorter than ``segment`` with ``short_utterances="drop"``.

    References:
        K. Li, G. Chen, R. Yang, X. Hu, "SPMamba: State-space model is all you need in speech
        separation", arXiv:2404.02063, 2024.
        K. Li et al., "SonicSim: A customizable simulation platform for speech processing in moving
        sound source scenarios", arXiv:2410.01481, 2024.
    """

    dataset_name = "Echo2Mix"

    def __init__(
        self,
        split_dir: Union[str, os.PathLike],
        n_src: int = 2,
        sample_rate: int = 16000,
        segment: Optional[float] = 3.0,
        random_segments: bool = True,
        short_utterances: str = "drop",
        normalize_audio: bool = False,
        check_identical: int = 8,
        return_id: bool = False,
        dynamic_mixing: bool = False,
        speed_perturb: Optional[tuple[float, float]] = None,
        single_speaker_share: float = 0.0,
    ):
        super().__init__()
        if n_src < 1:
            raise ValueError(f"n_src must be >= 1, got {n_src}.")
        if short_utterances not in ("drop", "pad"):
            raise ValueError(f"short_utterances must be 'drop' or 'pad', got {short_utterances!r}.")
        if segment is not None and segment <= 0:
            raise ValueError(f"segment must be positive (seconds) or None, got {segment}.")
        self.root = Path(split_dir)
        self.n_src = n_src
        self.sample_rate = sample_rate
        self.segment = segment
        self.seg_len = None if segment is None else int(round(segment * sample_rate))
        self.random_segments = random_segments
        self.short_utterances = short_utterances
        self.normalize_audio = normalize_audio
        self.return_id = return_id
        self.dynamic_mixing = dynamic_mixing
        if not 0.0 <= single_speaker_share <= 1.0 or (single_speaker_share and not dynamic_mixing):
            raise ValueError(
                f"single_speaker_share must be in [0, 1] and needs dynamic_mixing=True; got "
                f"{single_speaker_share} with dynamic_mixing={dynamic_mixing}."
            )
        self.single_speaker_share = float(single_speaker_share)
        self.speed_steps = None
        if speed_perturb is not None:
            low, high = (float(v) for v in speed_perturb)
            if not 0.5 <= low <= high <= 2.0 or segment is None:
                raise ValueError(
                    "speed_perturb must be (low, high) with 0.5 <= low <= high <= 2 and a "
                    f"training segment; got {speed_perturb!r} with segment={segment}."
                )
            # factors k / SPEED_DENOMINATOR: resample_poly with small integer ratios
            self.speed_steps = (
                int(np.ceil(low * SPEED_DENOMINATOR)),
                int(np.floor(high * SPEED_DENOMINATOR)),
            )
            if self.speed_steps[0] > self.speed_steps[1]:
                raise ValueError(
                    f"speed_perturb {speed_perturb!r} holds no factor k/{SPEED_DENOMINATOR}."
                )
        self.files = [MIX_FILE] + source_files(n_src)

        ids = find_utterances(self.root, n_src)
        lengths = []
        for utt in ids:
            frames = []
            for name in self.files:
                path = self.root / utt / name
                try:
                    info = sf.info(str(path))
                except (
                    RuntimeError
                ) as err:  # soundfile's LibsndfileError: empty, truncated header, not audio
                    raise ValueError(
                        f"{path} cannot be read as audio ({str(err).strip()}); replace it, or "
                        "remove its utterance folder."
                    ) from None
                if info.samplerate != sample_rate:
                    raise ValueError(
                        f"{path} is sampled at {info.samplerate} Hz but the dataset expects "
                        f"{sample_rate} Hz. Pass sample_rate={info.samplerate} or resample the "
                        "corpus."
                    )
                if info.channels != 1:
                    raise ValueError(
                        f"{path} has {info.channels} channels; Echo2Mix files are mono."
                    )
                frames.append(info.frames)
            if len(set(frames)) != 1:
                raise ValueError(
                    f"Utterance {utt!r} has files of different lengths "
                    f"({dict(zip(self.files, frames))} samples); mixture and sources must be "
                    "aligned sample by sample."
                )
            lengths.append(frames[0])

        if n_src >= 2 and check_identical > 0:
            for i in np.unique(
                np.linspace(0, len(ids) - 1, min(check_identical, len(ids))).round().astype(int)
            ):
                self._check_files_differ(ids[i])

        self.dropped = 0
        if self.seg_len is not None and short_utterances == "drop":
            keep = [i for i, n in enumerate(lengths) if n >= self.seg_len]
            self.dropped = len(ids) - len(keep)
            if not keep:
                raise ValueError(
                    f"All {len(ids)} utterances of {self.root} are shorter than segment={segment} "
                    f"s ({self.seg_len} samples). Use a shorter segment or short_utterances='pad'."
                )
            if self.dropped:
                warnings.warn(
                    f"Echo2MixDataset: dropped {self.dropped} of {len(ids)} utterances of "
                    f"{self.root} shorter than {segment} s (short_utterances='drop').",
                    stacklevel=user_stacklevel(),
                )
            ids, lengths = [ids[i] for i in keep], [lengths[i] for i in keep]
        self.ids: list[str] = ids
        self.lengths: list[int] = lengths
        if dynamic_mixing and (self.seg_len is None or len(ids) < n_src):
            raise ValueError(
                "dynamic_mixing needs a training segment and at least n_src utterances."
            )

    def _check_files_differ(self, utt: str) -> None:
        paths = [self.root / utt / name for name in source_files(self.n_src)]
        sizes = [p.stat().st_size for p in paths]
        for a in range(len(paths)):
            for b in range(a + 1, len(paths)):
                # equal sizes are the norm (aligned sources); only then compare contents
                if sizes[a] == sizes[b] and _file_digest(paths[a]) == _file_digest(paths[b]):
                    raise identical_sources_error(utt)

    def __len__(self) -> int:
        return len(self.ids)

    def _dynamic_mixture(self, idx: int):
        """Sources drawn from ``n_src`` different utterances (``idx`` first),
        mixed at random levels."""
        others = torch.randperm(len(self.ids) - 1)[: self.n_src - 1]
        picks = [idx] + [o + (o >= idx) for o in others.tolist()]  # skip idx itself
        sources = []
        for utt_idx in picks:
            utt, length = self.ids[utt_idx], self.lengths[utt_idx]
            name = source_files(self.n_src)[int(torch.randint(0, self.n_src, ()))]
            full = sf.read(str(self.root / utt / name), dtype="float32", always_2d=False)[0]
            if self.speed_steps is not None:
                full = self._perturb(full)
                length = len(full)
            threshold = 0.1 * np.sqrt(np.mean(full**2))  # a tenth of the utterance's RMS
            for _ in range(MAX_EXCERPT_TRIES):  # prefer an excerpt where this source speaks
                start = int(torch.randint(0, max(length - self.seg_len, 0) + 1, ()))
                excerpt = full[start : start + self.seg_len]
                if np.sqrt(np.mean(excerpt**2)) > threshold:
                    break
            gain_db = float(torch.empty(()).uniform_(-2.5, 2.5))
            excerpt = excerpt / (np.sqrt(np.mean(excerpt**2)) + 1e-8) * 10 ** (gain_db / 20)
            sources.append(np.pad(excerpt, (0, self.seg_len - len(excerpt))))
        src = np.stack(sources)
        # drawn only with a share, so that runs without one keep their draws
        if self.single_speaker_share and float(torch.rand(())) < self.single_speaker_share:
            src[1:] = 0.0
        # the mixture's peak at a random level in [0.25, 0.9], as in the synthetic corpus
        src *= float(torch.empty(()).uniform_(0.25, 0.9)) / (np.abs(src.sum(0)).max() + 1e-8)
        src_t = torch.from_numpy(src.astype(np.float32))
        return src_t.sum(0), src_t, "+".join(self.ids[i] for i in picks)

    def __getitem__(self, idx: int):
        if self.dynamic_mixing:
            mix_t, src_t, utt = self._dynamic_mixture(idx)
            return self._finish(mix_t, src_t, utt)
        if self.speed_steps is not None:
            return self._finish(*self._perturbed_item(idx))
        utt, length = self.ids[idx], self.lengths[idx]
        start, stop, pad = 0, None, 0
        if self.seg_len is not None:
            if length > self.seg_len and self.random_segments:
                start = int(torch.randint(0, length - self.seg_len + 1, ()).item())
            stop = start + min(self.seg_len, length)
            pad = max(self.seg_len - length, 0)
        signals = [
            sf.read(
                str(self.root / utt / name),
                start=start,
                stop=stop,
                dtype="float32",
                always_2d=False,
            )[0]
            for name in self.files
        ]
        mix, sources = signals[0], np.stack(signals[1:])
        self._check_loaded_sources(sources, utt)
        if pad:
            mix = np.pad(mix, (0, pad))
            sources = np.pad(sources, ((0, 0), (0, pad)))
        mix_t, src_t = (
            torch.from_numpy(np.ascontiguousarray(mix)),
            torch.from_numpy(np.ascontiguousarray(sources)),
        )
        return self._finish(mix_t, src_t, utt)

    def _check_loaded_sources(self, sources, utt: str) -> None:
        """The identical-sources guard on every loaded item (silent excerpts may be equal)."""
        for a in range(self.n_src):
            for b in range(a + 1, self.n_src):
                if np.array_equal(sources[a], sources[b]) and np.any(sources[a]):
                    raise identical_sources_error(utt)

    def _perturb(self, wav: np.ndarray) -> np.ndarray:
        """``wav`` played ``k / SPEED_DENOMINATOR`` times faster, ``k`` drawn in ``speed_steps``."""
        from scipy.signal import resample_poly

        k = int(torch.randint(self.speed_steps[0], self.speed_steps[1] + 1, ()))
        if k == SPEED_DENOMINATOR:
            return wav
        return resample_poly(wav, SPEED_DENOMINATOR, k).astype(np.float32)

    def _perturbed_item(self, idx: int):
        """Utterance ``idx`` with each source speed-perturbed; a random common excerpt, re-mixed."""
        utt = self.ids[idx]
        raw = [
            sf.read(str(self.root / utt / name), dtype="float32", always_2d=False)[0]
            for name in source_files(self.n_src)
        ]
        self._check_loaded_sources(raw, utt)
        sources = [self._perturb(x) for x in raw]
        length = min(len(x) for x in sources)
        start = (
            int(torch.randint(0, max(length - self.seg_len, 0) + 1, ()))
            if self.random_segments
            else 0
        )
        src = np.zeros((self.n_src, self.seg_len), dtype=np.float32)
        for k, x in enumerate(sources):
            excerpt = x[start : start + self.seg_len]
            src[k, : len(excerpt)] = excerpt
        src_t = torch.from_numpy(src)
        return src_t.sum(0), src_t, utt

    def _finish(self, mix_t: torch.Tensor, src_t: torch.Tensor, utt: str):
        if self.normalize_audio:
            std = mix_t.std() + 1e-8
            mix_t = (mix_t - mix_t.mean()) / std
            src_t = (src_t - src_t.mean(-1, keepdim=True)) / std
        if self.return_id:
            return mix_t, src_t, utt
        return mix_t, src_t

    def get_infos(self) -> dict:
        """Dataset infos for publishing models (keys ``dataset``, ``task``,
        ``licenses``), as in Asteroid."""
        return {
            "dataset": self.dataset_name,
            "task": "sep_reverb",
            "licenses": [echo2mix_license],
        }


echo2mix_license = dict(
    title="Echo2Mix (simulated with SonicSim)",
    title_link="https://github.com/JusperLee/SonicSim",
    author="Kai Li et al.",
    author_link="https://github.com/JusperLee",
    license="see the SonicSim/Echo2Mix release",
    license_link="https://github.com/JusperLee/SonicSim",
    non_commercial=None,
)
