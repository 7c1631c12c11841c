"""Data order and data randomness that a resumed run replays exactly.

Every training item is drawn by a seed of its own, a function of ``(training.seed, epoch, position
in the epoch)``: :class:`EpochSampler` shuffles each epoch by ``(seed, epoch)`` and hands each index
out with its item seed, and :class:`SeededItems` runs the dataset's ``__getitem__`` with PyTorch's,
NumPy's and Python's random generators seeded by it (their states outside are left as they were).
Random excerpts, speed perturbation and dynamic mixing then depend neither on the number of
DataLoader workers nor on where a run was interrupted: a run resumed from a checkpoint taken after
``b`` batches of epoch ``e`` (:meth:`EpochSampler.resume_at`) sees the same items
as the run that went on.
Validation items get a fixed seed per index, so a validation loss is the same in every epoch.
"""

import math
import random
from collections.abc import Iterator
from typing import Optional

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

VALIDATION_EPOCH = -1  # the "epoch" of the validation items' seeds


def _mixed_seed(*numbers: int) -> int:
    """A 63-bit seed from small integers (NumPy's SeedSequence mixes them;
    negatives wrap to uint32)."""
    words = np.random.SeedSequence([int(n) & 0xFFFFFFFF for n in numbers]).generate_state(
        2, dtype=np.uint32
    )
    return (int(words[0]) << 31 | int(words[1]) >> 1) & 0x7FFFFFFFFFFFFFFF


def item_seed(seed: int, epoch: int, position: int) -> int:
    """The seed of the item drawn at ``position`` of ``epoch``."""
    return _mixed_seed(seed, epoch, position, 1)


class SeededItems(Dataset):
    """``dataset`` read by ``(index, seed)`` keys: each item drawn with the random
    generators seeded by ``seed``."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]):
        index, seed = key
        py_state, np_state = random.getstate(), np.random.get_state()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            random.seed(seed)
            np.random.seed(seed % 2**32)
            try:
                return self.dataset[index]
            finally:
                random.setstate(py_state)
                np.random.set_state(np_state)


class EpochSampler(Sampler):
    """``(index, item seed)`` pairs of one epoch: shuffled by ``(seed, epoch)`` (or in order with
    ``shuffle=False``), each with :func:`item_seed`.

    Lightning calls :meth:`set_epoch` before each epoch. :meth:`resume_at` makes the next pass over
    epoch ``e`` start after the ``b`` batches that the interrupted run had trained on.
    """

    def __init__(self, n_items: int, seed: int, shuffle: bool = True):
        self.n_items, self.seed, self.shuffle = int(n_items), int(seed), shuffle
        self.epoch = 0
        self.rank, self.world_size = 0, 1
        self._resume: Optional[tuple[int, int]] = None  # (epoch, items of this process to skip)

    def shard(self, rank: int, world_size: int) -> None:
        """Data-parallel training: this process takes every ``world_size``-th item of each epoch's
        order from ``rank`` on (the order padded with its first items to a multiple of
        ``world_size``)."""
        self.rank, self.world_size = int(rank), int(world_size)

    def __len__(self) -> int:
        return math.ceil(self.n_items / self.world_size)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def resume_at(self, epoch: int, batches: int, batch_size: int) -> None:
        """Start the next pass over ``epoch`` after its first ``batches``
        batches of ``batch_size``."""
        self.epoch = int(epoch)
        self._resume = (int(epoch), int(batches) * int(batch_size))

    def order(self, epoch: int) -> torch.Tensor:
        """The item indices of ``epoch``, in the order they are drawn."""
        if not self.shuffle:
            return torch.arange(self.n_items)
        generator = torch.Generator().manual_seed(_mixed_seed(self.seed, epoch, 0, 0))
        return torch.randperm(self.n_items, generator=generator)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch, start = self.epoch, 0
        if self._resume is not None and self._resume[0] == epoch:
            start = self._resume[1]
            self._resume = None
        order = self.order(epoch).tolist()
        order += order[: len(self) * self.world_size - len(order)]
        seed_epoch = epoch if self.shuffle else VALIDATION_EPOCH
        for position in range(self.rank + start * self.world_size, len(order), self.world_size):
            index = order[position]
            yield index, item_seed(self.seed, seed_epoch, index if not self.shuffle else position)
