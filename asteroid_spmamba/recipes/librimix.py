"""Libri2Mix: check a generated LibriMix folder and write the CSVs of
Asteroid's ``LibriMix`` dataset.

The output follows Asteroid's LibriMix recipe (``egs/librimix/*/local/create_local_metadata.py``)::

    OUT/train-100/mixture_train-100_mix_clean.csv
    OUT/dev/mixture_dev_mix_clean.csv
    OUT/test/mixture_test_mix_clean.csv

with LibriMix's columns ``mixture_ID, mixture_path, source_1_path, source_2_path, length`` (absolute
paths), read by :class:`asteroid.data.LibriMix` (``csv_dir=OUT/<split>``). The paths are rebuilt
under the given folder, so a LibriMix folder moved after its generation (whose own metadata CSVs
hold the old absolute paths) still works. When LibriMix's ``metadata/`` CSVs are present they give
the list of expected mixtures (so missing mixture files are found too) and the lengths; otherwise
the wav folders are scanned.

SPMamba's Libri2Mix results use the clean task (``sep_clean``), 8 kHz, ``min`` mode, trained on
``train-100`` (the authors' ``configs/spmamba-librimix.yml``).

Command line (``egs/librimix/local/prepare_data.py`` calls
:func:`asteroid_spmamba.commands.prepare.librimix_main`)::

    python -m asteroid_spmamba.commands.prepare librimix --librimix_dir /data/Libri2Mix \\
        --out_dir data/wav8k/min

References:
    J. Cosentino, M. Pariente, S. Cornell, A. Deleforge, E. Vincent, "LibriMix: An open-source
    dataset for generalizable speech separation", arXiv:2005.11262, 2020.
"""

import csv
from collections.abc import Sequence
from pathlib import Path

from ..data.asteroid_datasets import LIBRIMIX_TASK_FOLDERS, librimix_task_folders
from .common import (
    DatasetSource,
    PathLike,
    check_parallel_folders,
    commit_all,
    csv_writer,
    index_parallel_split,
    locate_root,
    missing_error,
    progress,
    wav_frames,
    wav_names,
)

SPLITS = ("train-100", "dev", "test")
ALL_SPLITS = ("train-100", "train-360", "dev", "test")


def source_info(
    task: str = "sep_clean", sample_rate: int = 8000, mode: str = "min"
) -> DatasetSource:
    rate = f"wav{sample_rate // 1000}k"
    folders = ",".join(LIBRIMIX_TASK_FOLDERS.get(task, LIBRIMIX_TASK_FOLDERS["sep_clean"]))
    return DatasetSource(
        name="Libri2Mix",
        layout=(
            f"  LIBRIMIX_DIR/{rate}/{mode}/{{train-100,dev,test}}/{{{folders}}}/*.wav   (task "
            f"{task})\n  LIBRIMIX_DIR/{rate}/{mode}/metadata/mixture_<split>_<mixture "
            "folder>.csv   (optional)\n  (LIBRIMIX_DIR is the Libri2Mix/ folder; its parent or the "
            f"{rate}/{mode}/ folder are found too)"
        ),
        how=(
            "  LibriMix is generated from LibriSpeech (https://www.openslr.org/12) and WHAM! "
            "noise\n  (http://wham.whisper.ai/) by the scripts of https://github.com/JorisCos/LibriMix:\n"
            "    git clone https://github.com/JorisCos/LibriMix && cd LibriMix && "
            "./generate_librimix.sh STORAGE_DIR\n  which downloads both and writes "
            "STORAGE_DIR/Libri2Mix (and Libri3Mix)."
        ),
    )


def csv_name(split: str, task: str) -> str:
    """The CSV file name for ``split`` and ``task`` (Asteroid's ``LibriMix`` finds it
    by its mixture folder)."""
    return f"mixture_{split}_{librimix_task_folders(task)[0]}.csv"


def columns_for(task: str) -> list[str]:
    n_sources = len(librimix_task_folders(task)) - 1
    return (
        ["mixture_ID", "mixture_path"]
        + [f"source_{k + 1}_path" for k in range(n_sources)]
        + ["length"]
    )


def locate(
    librimix_dir: PathLike,
    task: str = "sep_clean",
    sample_rate: int = 8000,
    mode: str = "min",
    splits: Sequence[str] = SPLITS,
) -> Path:
    """The folder holding the split folders (``<rate>/<mode>/`` of Libri2Mix).

    Raises:
        DatasetError: no such folder.
    """
    rate = f"wav{sample_rate // 1000}k"
    return locate_root(
        librimix_dir,
        "LibriMix",
        [f"{rate}/{mode}", f"Libri2Mix/{rate}/{mode}", ""],
        splits,
        source_info(task, sample_rate, mode),
    )


def _read_metadata(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if rows and not {"mixture_ID", "length"} <= set(rows[0]):
        raise ValueError(
            f"{path} is not a LibriMix mixture metadata file (no mixture_ID/length columns)."
        )
    return rows


def _split_rows(
    base: Path, split: str, folders: list[str], sample_rate: int, show_progress: bool
) -> list[dict]:
    """Rows of the output CSV for one (complete) split."""
    split_dir = base / split
    metadata = base / "metadata" / f"mixture_{split}_{folders[0]}.csv"
    rows = []
    if metadata.is_file():
        md = _read_metadata(metadata)
        if md:  # one header read: the rate of the whole split
            wav_frames(split_dir / folders[0] / f"{md[0]['mixture_ID']}.wav", sample_rate)
        for entry in md:
            name = f"{entry['mixture_ID']}.wav"
            row = {
                "mixture_ID": entry["mixture_ID"],
                "mixture_path": str((split_dir / folders[0] / name).absolute()),
            }
            for k, folder in enumerate(folders[1:]):
                row[f"source_{k + 1}_path"] = str((split_dir / folder / name).absolute())
            row["length"] = int(entry["length"])
            rows.append(row)
        return rows
    index = index_parallel_split(split_dir, folders, sample_rate, show_progress)
    for i, (mix_path, frames) in enumerate(index[folders[0]]):
        row = {"mixture_ID": Path(mix_path).stem, "mixture_path": mix_path}
        for k, folder in enumerate(folders[1:]):
            row[f"source_{k + 1}_path"] = index[folder][i][0]
        row["length"] = frames
        rows.append(row)
    return rows


def _missing_in_split(base: Path, split: str, folders: list[str]) -> list[str]:
    split_dir = base / split
    if not split_dir.is_dir():
        return [f"{split}/"]
    metadata = base / "metadata" / f"mixture_{split}_{folders[0]}.csv"
    if not metadata.is_file():
        return check_parallel_folders(split_dir, folders)[1]
    expected = [f"{row['mixture_ID']}.wav" for row in _read_metadata(metadata)]
    missing = []
    for folder in folders:
        if not (split_dir / folder).is_dir():
            missing.append(f"{split}/{folder}/")
            continue
        present = set(wav_names(split_dir / folder))
        missing += [f"{split}/{folder}/{name}" for name in expected if name not in present]
    return missing


def prepare_librimix(
    librimix_dir: PathLike,
    out_dir: PathLike,
    task: str = "sep_clean",
    sample_rate: int = 8000,
    mode: str = "min",
    splits: Sequence[str] = SPLITS,
    show_progress: bool = True,
) -> dict[str, int]:
    """Check Libri2Mix for ``task`` and write ``out_dir/<split>/mixture_<split>_<mixture
    folder>.csv``.

    Nothing is written unless every split is complete and consistent.

    Returns:
        The number of mixtures per split.

    Raises:
        DatasetError: missing folders or files (listed, with where LibriMix comes from).
        ValueError: unknown task, a file at another sample rate, parallel
            files of different lengths.
    """
    folders = librimix_task_folders(task)
    source = source_info(task, sample_rate, mode)
    base = locate(librimix_dir, task, sample_rate, mode, splits)
    missing: list[str] = []
    for split in progress(splits, "checking", show_progress):
        missing += _missing_in_split(base, split, folders)
    if missing:
        raise missing_error(f"Libri2Mix in {base} is incomplete for task {task}", missing, source)

    writes, counts = [], {}
    columns = columns_for(task)
    for split in splits:
        rows = _split_rows(base, split, folders, sample_rate, show_progress)
        counts[split] = len(rows)
        writes.append((Path(out_dir) / split / csv_name(split, task), csv_writer(columns, rows)))
    commit_all(writes)
    return counts
