"""Readers of the prepared LibriMix, WSJ0-mix and WHAM! splits: Asteroid's dataset classes
(``LibriMix``, ``Wsj0mixDataset``, ``WhamDataset``) on what stage 0 of a recipe
(:mod:`asteroid_spmamba.recipes`) wrote, and the folders each task reads.

Asteroid's dataset classes are loaded with :func:`asteroid_data`: ``import asteroid.data`` imports
every dataset module, and its AVSpeech module needs ``librosa``, which separation does not use. When
``librosa`` is missing, the needed module files are loaded directly, without the package's
``__init__``.
"""

import importlib
import importlib.util
import os
import sys
import types
from pathlib import Path
from typing import Optional, Union

PathLike = Union[str, os.PathLike]

# Mixture folder, then the target folders (as asteroid.data.LibriMix reads them).
LIBRIMIX_TASK_FOLDERS = {
    "sep_clean": ["mix_clean", "s1", "s2"],
    "sep_noisy": ["mix_both", "s1", "s2"],
    "enh_single": ["mix_single", "s1"],
}
# Mixture folder first, then the targets (as in asteroid.data.wham_dataset.WHAM_TASKS).
WHAM_TASK_FOLDERS = {
    "sep_clean": ["mix_clean", "s1", "s2"],
    "sep_noisy": ["mix_both", "s1", "s2"],
    "enh_single": ["mix_single", "s1"],
    "enh_both": ["mix_both", "mix_clean"],
}


def librimix_task_folders(task: str) -> list[str]:
    if task not in LIBRIMIX_TASK_FOLDERS:
        raise ValueError(
            f"Unknown LibriMix task {task!r}; choose one of {sorted(LIBRIMIX_TASK_FOLDERS)}."
        )
    return LIBRIMIX_TASK_FOLDERS[task]


def wham_task_folders(task: str) -> list[str]:
    if task not in WHAM_TASK_FOLDERS:
        raise ValueError(f"Unknown WHAM! task {task!r}; choose one of {sorted(WHAM_TASK_FOLDERS)}.")
    return WHAM_TASK_FOLDERS[task]


def wsj0mix_folders(n_src: int) -> list[str]:
    return ["mix"] + [f"s{k + 1}" for k in range(n_src)]


_PRIVATE_PACKAGE = "asteroid_spmamba.data._asteroid_data"


def asteroid_data(module: str) -> types.ModuleType:
    """A module of ``asteroid.data`` (e.g. ``"librimix_dataset"``), importable without librosa.

    ``asteroid/data/__init__.py`` imports every dataset, among which AVSpeech needs librosa. Where
    ``import asteroid.data`` works, its module is returned; otherwise the module file is loaded as
    part of a private package that skips that ``__init__`` (the module's relative imports of its
    siblings still work).
    """
    try:
        importlib.import_module("asteroid.data")
        return importlib.import_module(f"asteroid.data.{module}")
    except ImportError as err:
        if "librosa" not in str(err):
            raise
    package = sys.modules.get(_PRIVATE_PACKAGE)
    if package is None:
        spec = importlib.util.find_spec("asteroid")
        if spec is None or not spec.submodule_search_locations:
            raise ImportError("asteroid is not installed: pip install asteroid")
        data_dir = os.path.join(list(spec.submodule_search_locations)[0], "data")
        package = types.ModuleType(_PRIVATE_PACKAGE)
        package.__path__ = [data_dir]
        package.__package__ = _PRIVATE_PACKAGE
        sys.modules[_PRIVATE_PACKAGE] = package
    return importlib.import_module(f"{_PRIVATE_PACKAGE}.{module}")


def asteroid_dataset_class(name: str) -> type:
    """``LibriMix``, ``Wsj0mixDataset`` or ``WhamDataset`` from Asteroid (see
    :func:`asteroid_data`)."""
    modules = {
        "LibriMix": "librimix_dataset",
        "Wsj0mixDataset": "wsj0_mix",
        "WhamDataset": "wham_dataset",
    }
    if name not in modules:
        raise ValueError(f"Unknown Asteroid dataset {name!r}; known: {sorted(modules)}.")
    return getattr(asteroid_data(modules[name]), name)


def build_librimix(
    csv_dir: PathLike, task: str, sample_rate: int, n_src: int, segment: Optional[float]
):
    """Asteroid's ``LibriMix`` on a prepared split (``segment=None``: whole utterances)."""
    csv_dir = Path(csv_dir)
    mixture_folder = librimix_task_folders(task)[0]
    if not csv_dir.is_dir() or not any(
        mixture_folder in p.name for p in csv_dir.glob("mixture_*.csv")
    ):
        raise FileNotFoundError(
            f"No prepared LibriMix CSV for task {task} in {csv_dir}. Run stage 0 of the recipe "
            f"(local/prepare_data.py --librimix_dir ... --task {task}) first."
        )
    return asteroid_dataset_class("LibriMix")(
        str(csv_dir), task=task, sample_rate=sample_rate, n_src=n_src, segment=segment
    )


def librimix_utterance_ids(dataset) -> list[str]:
    """Utterance IDs of a ``LibriMix`` dataset: its ``mixture_ID`` column."""
    return [str(x) for x in dataset.df["mixture_ID"]]


def build_wsj0mix(json_dir: PathLike, n_src: int, sample_rate: int, segment: Optional[float]):
    """Asteroid's ``Wsj0mixDataset`` on a prepared split (``segment=None``: whole utterances)."""
    json_dir = Path(json_dir)
    needed = [json_dir / f"{name}.json" for name in wsj0mix_folders(n_src)]
    absent = [str(p) for p in needed if not p.is_file()]
    if absent:
        raise FileNotFoundError(
            f"Prepared WSJ0-2mix lists missing: {', '.join(absent)}. Run stage 0 of the recipe "
            "(local/prepare_data.py --wsj0mix_dir ...) first."
        )
    return asteroid_dataset_class("Wsj0mixDataset")(
        str(json_dir), n_src=n_src, sample_rate=sample_rate, segment=segment
    )


def build_wham(json_dir: PathLike, task: str, sample_rate: int, segment: Optional[float]):
    """Asteroid's ``WhamDataset`` on a prepared split (``segment=None``: whole utterances)."""
    json_dir = Path(json_dir)
    absent = [
        str(json_dir / f"{name}.json")
        for name in wham_task_folders(task)
        if not (json_dir / f"{name}.json").is_file()
    ]
    if absent:
        raise FileNotFoundError(
            f"Prepared WHAM! lists missing: {', '.join(absent)}. Run stage 0 of the recipe "
            f"(local/prepare_data.py --wham_dir ... --task {task}) first."
        )
    return asteroid_dataset_class("WhamDataset")(
        str(json_dir), task, sample_rate=sample_rate, segment=segment
    )


def json_list_utterance_ids(dataset) -> list[str]:
    """Utterance IDs of an Asteroid dataset built from json lists (``WhamDataset``,
    ``Wsj0mixDataset``): the mixture file names without ``.wav``."""
    return [Path(entry[0]).stem for entry in dataset.mix]
