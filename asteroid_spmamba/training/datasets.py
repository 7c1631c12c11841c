"""The datasets that training and evaluation read, by their ``data.dataset`` name.

A row of :data:`DATASETS` says which class reads a prepared split, the task it defaults to, and how
to name an utterance. Stage 0 of a recipe (:mod:`asteroid_spmamba.recipes`) prepares a split; the
classes are Asteroid's (``LibriMix``, ``Wsj0mixDataset``, ``WhamDataset``, read by
:mod:`asteroid_spmamba.data.asteroid_datasets`) or this package's
:class:`~asteroid_spmamba.data.echo2mix.Echo2MixDataset` (Echo2Mix, and the synthetic corpus of
``asteroid-spmamba make-corpus``, which has its layout). Items are ``(mixture (time,), sources
(n_src, time), ...)``.
"""

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from torch.utils.data import Dataset

from ..data.asteroid_datasets import (
    build_librimix,
    build_wham,
    build_wsj0mix,
    json_list_utterance_ids,
    librimix_utterance_ids,
)
from ..data.echo2mix import Echo2MixDataset
from ..levels import DEFAULT_TASKS


@dataclass(frozen=True)
class DatasetSpec:
    """How to read one dataset.

    Args:
        build: ``build(split_dir, data_conf, segment, train)`` -> the dataset of one prepared split
            (``segment=None``: whole utterances; ``train``: random excerpts, augmentation).
        utterance_ids: the ID of every item of a built dataset, in order.
        default_task: the task when ``data.task`` is not set (LibriMix, WHAM!).
    """

    build: Callable[[Path, Mapping, Optional[float], bool], Dataset]
    utterance_ids: Callable[[Dataset], list[str]]
    default_task: Optional[str] = None


def _echo2mix(split_dir: Path, data: Mapping, segment: Optional[float], train: bool) -> Dataset:
    if not split_dir.is_dir():
        raise FileNotFoundError(
            f"{split_dir} does not exist. Generate the corpus first "
            "(asteroid-spmamba make-corpus, or stage 0 of the recipe) or fix data.root."
        )
    common = dict(
        n_src=data["n_src"],
        sample_rate=data["sample_rate"],
        short_utterances=data["short_utterances"],
    )
    if not train:  # validation and test: excerpts start at 0, the same samples every epoch
        return Echo2MixDataset(str(split_dir), segment=segment, random_segments=False, **common)
    return Echo2MixDataset(
        str(split_dir),
        segment=segment,
        random_segments=True,
        dynamic_mixing=bool(data.get("dynamic_mixing")),
        speed_perturb=data.get("speed_perturb"),
        single_speaker_share=float(data.get("single_speaker_share") or 0.0),
        **common,
    )


def _librimix(split_dir: Path, data: Mapping, segment: Optional[float], train: bool) -> Dataset:
    return build_librimix(
        split_dir,
        data["task"] or DEFAULT_TASKS["librimix"],
        int(data["sample_rate"]),
        int(data["n_src"]),
        segment,
    )


def _wsj0mix(split_dir: Path, data: Mapping, segment: Optional[float], train: bool) -> Dataset:
    return build_wsj0mix(split_dir, int(data["n_src"]), int(data["sample_rate"]), segment)


def _wham(split_dir: Path, data: Mapping, segment: Optional[float], train: bool) -> Dataset:
    return build_wham(
        split_dir, data["task"] or DEFAULT_TASKS["wham"], int(data["sample_rate"]), segment
    )


def _echo2mix_ids(dataset) -> list[str]:
    return list(dataset.ids)


DATASETS: dict[str, DatasetSpec] = {
    "echo2mix": DatasetSpec(_echo2mix, _echo2mix_ids),
    "synthetic": DatasetSpec(_echo2mix, _echo2mix_ids),  # make-corpus writes the Echo2Mix layout
    "librimix": DatasetSpec(_librimix, librimix_utterance_ids, DEFAULT_TASKS["librimix"]),
    "wsj0-2mix": DatasetSpec(_wsj0mix, json_list_utterance_ids),
    "wham": DatasetSpec(_wham, json_list_utterance_ids, DEFAULT_TASKS["wham"]),
}


def _split_dir(data: Mapping, split: str) -> Path:
    path = data.get(f"{split}_dir")
    if not path:
        raise ValueError(
            f"No {split} folder: set data.root (holding train/valid/test) or data.{split}_dir; "
            "for a dataset recipe, run stage 0 (data preparation) and check local/conf.yml."
        )
    return Path(path)


def build_split(data: Mapping, split: str, split_dir: Optional[Path] = None) -> Dataset:
    """The dataset of ``split`` (train, valid or test) of the data section (``split_dir``
    overrides its folder)."""
    spec = DATASETS[data["dataset"]]
    segment = {"train": data["segment"], "valid": data["valid_segment"], "test": None}[split]
    with warnings.catch_warnings():
        warnings.simplefilter(
            "ignore", FutureWarning
        )  # Asteroid's dataset classes on recent pandas
        return spec.build(
            Path(split_dir) if split_dir else _split_dir(data, split),
            data,
            segment,
            split == "train",
        )


def make_datasets(data: Mapping) -> tuple[Dataset, Dataset]:
    """Training and validation datasets of a (completed) data section."""
    return build_split(data, "train"), build_split(data, "valid")


def make_test_set(data: Mapping, test_dir: Optional[Path] = None) -> tuple[Dataset, list[str]]:
    """The test dataset (whole utterances) and its utterance IDs."""
    dataset = build_split(data, "test", test_dir)
    return dataset, DATASETS[data["dataset"]].utterance_ids(dataset)
