"""Helpers shared by the recipes' data preparation: checking a downloaded dataset.

Every ``prepare_*`` function of :mod:`asteroid_spmamba.recipes` follows the same rules:

* the whole dataset is checked before anything is written; a missing or incomplete folder raises
  :class:`DatasetError` (a ``FileNotFoundError``) that lists what is missing (the first
  :data:`MAX_LISTED` entries and a count) and says where the dataset comes from;
* metadata files are written atomically (:mod:`asteroid_spmamba.files`): an interrupted preparation
  leaves either the previous file or the new one, never half of one.

The prepared splits are read by :mod:`asteroid_spmamba.data.asteroid_datasets`.
"""

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import soundfile as sf

from ..files import (  # noqa: F401  (the recipes' atomic writes, imported from here before)
    PathLike,
    commit_all,
    csv_writer,
    json_writer,
    symlink_atomic,
    write_atomic,
    write_csv_atomic,
    write_json_atomic,
    write_text_atomic,
)

MAX_LISTED = 20


@dataclass(frozen=True)
class DatasetSource:
    """Where a dataset comes from, for error messages and ``--help``.

    Args:
        name: dataset name as written in papers (``"WSJ0-2mix"``).
        layout: the folder layout the preparation expects.
        how: how to obtain it (URLs, generation scripts).
    """

    name: str
    layout: str
    how: str

    def describe(self) -> str:
        return (
            f"Expected layout of {self.name}:\n{self.layout}\nHow to get {self.name}:\n{self.how}"
        )


class DatasetError(FileNotFoundError):
    """A downloaded dataset is missing, incomplete or not laid out as expected."""


def listing(items: Sequence[str], limit: int = MAX_LISTED) -> str:
    """The first ``limit`` items, one per line, then ``... and N more``."""
    items = list(items)
    shown = "\n".join(f"  {item}" for item in items[:limit])
    if len(items) > limit:
        shown += f"\n  ... and {len(items) - limit} more"
    return shown


def missing_error(what: str, missing: Sequence[str], source: DatasetSource) -> DatasetError:
    """The error for ``missing`` files or folders of a dataset: a count, a
    listing, and the source."""
    return DatasetError(
        f"{what}: {len(missing)} missing file(s) or "
        f"folder(s):\n{listing(missing)}\n\n{source.describe()}"
    )


# --------------------------------------------------------------------------------------------
# Checking folders of parallel wav files (mixture and sources with the same file names)
# --------------------------------------------------------------------------------------------
def wav_names(folder: Path) -> list[str]:
    """Sorted ``*.wav`` file names of ``folder`` (empty if the folder does not exist)."""
    if not folder.is_dir():
        return []
    return sorted(name for name in os.listdir(folder) if name.endswith(".wav"))


def check_parallel_folders(
    split_dir: Path, folders: Sequence[str], reference: Optional[str] = None
) -> tuple[list[str], list[str]]:
    """File names shared by ``split_dir/<folder>/`` for every folder, and what is missing.

    The expected names are those of ``reference`` (default: the first folder) and, so that a
    mixture missing beside its sources is found too, of every other folder.

    Returns:
        ``(names, missing)``: the sorted names of the reference folder, and the missing entries as
        paths relative to ``split_dir.parent`` (``tt/s2/x.wav``, or ``tt/s2/`` for a whole folder).
    """
    reference = reference or folders[0]
    present = {folder: set(wav_names(split_dir / folder)) for folder in folders}
    expected = set().union(*present.values())
    missing: list[str] = []
    prefix = split_dir.name
    for folder in folders:
        if not (split_dir / folder).is_dir():
            missing.append(f"{prefix}/{folder}/")
            continue
        missing += [f"{prefix}/{folder}/{name}" for name in sorted(expected - present[folder])]
    if not expected and not missing:
        missing.append(f"{prefix}/{reference}/*.wav (the folder is empty)")
    return sorted(present[reference]), missing


def wav_frames(path: Path, sample_rate: Optional[int] = None) -> int:
    """Number of samples of a wav file, checking its sample rate and channel count.

    Raises:
        ValueError: another sample rate than ``sample_rate``, or not mono.
    """
    info = sf.info(str(path))
    if sample_rate is not None and info.samplerate != sample_rate:
        raise ValueError(
            f"{path} is sampled at {info.samplerate} Hz, but this recipe expects {sample_rate} Hz. "
            f"Point to the {sample_rate // 1000} kHz version of the dataset (e.g. "
            f"wav{sample_rate // 1000}k/) or change --sample_rate."
        )
    if info.channels != 1:
        raise ValueError(
            f"{path} has {info.channels} channels; separation recipes expect mono files."
        )
    return int(info.frames)


def progress(iterable, desc: str, enabled: bool = True, total: Optional[int] = None):
    """tqdm over ``iterable`` (plain iteration when disabled or tqdm is missing)."""
    if not enabled:
        return iterable
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency
        return iterable
    return tqdm(iterable, desc=desc, total=total, unit="file", leave=False)


def _or_list(items: Sequence[str]) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} or {items[-1]}"


def locate_root(
    root: PathLike,
    name: str,
    candidates: Sequence[str],
    splits: Sequence[str],
    source: DatasetSource,
) -> Path:
    """The folder holding the split folders: ``root/<candidate>`` for the first candidate that has
    one (``""`` is ``root`` itself).

    Raises:
        DatasetError: ``root`` does not exist, or no candidate holds a split folder.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{name} folder {root} does not exist.\n\n{source.describe()}")
    base = find_layout_root(root, candidates, splits)
    if base is None:
        places = [str(root) if not c else f"{root}/{c}" for c in sorted(candidates, key=bool)]
        raise DatasetError(
            f"No {_or_list([f'{s}/' for s in splits])} folder found in {_or_list(places)}."
            f"\n\n{source.describe()}"
        )
    return base


def prepare_json_lists(
    base: Path,
    out_dir: PathLike,
    folders: Sequence[str],
    splits: Sequence[str],
    sample_rate: int,
    what: str,
    source: DatasetSource,
    show_progress: bool = True,
) -> dict[str, int]:
    """Check ``base/<split>/<folder>/*.wav`` and write ``out_dir/<split>/<folder>.json`` (Asteroid's
    ``[[absolute wav path, n_samples], ...]`` lists) for every split; nothing is written unless
    every split is complete and consistent. Returns the number of mixtures per split.

    Raises:
        DatasetError: missing folders or files (listed, with where the dataset comes from).
        ValueError: a file at another sample rate, or parallel files of different lengths.
    """
    missing: list[str] = []
    for split in splits:
        if not (base / split).is_dir():
            missing.append(f"{split}/")
            continue
        missing += check_parallel_folders(base / split, folders)[1]
    if missing:
        raise missing_error(f"{what} in {base} is incomplete", missing, source)
    writes, counts = [], {}
    for split in splits:
        index = index_parallel_split(base / split, folders, sample_rate, show_progress)
        counts[split] = len(index[folders[0]])
        writes += [
            (Path(out_dir) / split / f"{folder}.json", json_writer(index[folder]))
            for folder in folders
        ]
    commit_all(writes)
    return counts


def find_layout_root(
    root: PathLike, candidates: Sequence[str], splits: Sequence[str]
) -> Optional[Path]:
    """The first ``root/<candidate>`` that holds at least one of ``splits``
    (``""`` is ``root`` itself)."""
    root = Path(root)
    for candidate in candidates:
        base = root / candidate if candidate else root
        if any((base / split).is_dir() for split in splits):
            return base
    return None


def index_parallel_split(
    split_dir: Path, folders: Sequence[str], sample_rate: Optional[int], show_progress: bool = True
) -> dict[str, list[list]]:
    """``{folder: [[absolute path, n_samples], ...]}`` for the files shared by all ``folders``.

    The caller checks completeness first (:func:`check_parallel_folders`); this reads every header
    (sample rate, channels, length) and checks that parallel files have the same length.

    Raises:
        ValueError: a file at another sample rate, not mono, or parallel files of different lengths.
    """
    names, _ = check_parallel_folders(split_dir, folders)
    index: dict[str, list[list]] = {folder: [] for folder in folders}
    for name in progress(names, f"{split_dir.name}", show_progress):
        frames = {}
        for folder in folders:
            path = (split_dir / folder / name).absolute()
            frames[folder] = wav_frames(path, sample_rate)
            index[folder].append([str(path), frames[folder]])
        if len(set(frames.values())) != 1:
            raise ValueError(
                f"Parallel files {split_dir.name}/*/{name} have different lengths ({frames} "
                "samples); mixtures and sources must be aligned sample by sample. "
                "Regenerate this utterance."
            )
    return index
