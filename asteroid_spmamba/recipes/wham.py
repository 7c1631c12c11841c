"""WHAM!: check a generated WHAM! folder and write the json lists of Asteroid's ``WhamDataset``.

The output is Asteroid's WHAM! recipe format (``egs/wham/*/local/preprocess_wham.py``)::

    OUT/tr/mix_both.json  OUT/tr/s1.json  OUT/tr/s2.json   # [[absolute wav path, n_samples], ...]
    OUT/cv/...            OUT/tt/...

with one list per folder the task reads (:data:`WHAM_TASK_FOLDERS`). SPMamba's WHAM! results are on
the noisy separation task (``sep_noisy``: ``mix_both`` -> ``s1, s2``), like
the authors' data module.

Command line (``egs/wham/local/prepare_data.py`` calls
:func:`asteroid_spmamba.commands.prepare.wham_main`)::

    python -m asteroid_spmamba.commands.prepare wham --wham_dir /data/wham \\
        --out_dir data/wav8k/min --task sep_noisy

References:
    G. Wichern et al., "WHAM!: Extending speech separation to noisy environments", Interspeech 2019.
"""

from collections.abc import Sequence
from pathlib import Path

from ..data.asteroid_datasets import WHAM_TASK_FOLDERS, wham_task_folders
from .common import (
    DatasetSource,
    PathLike,
    locate_root,
    prepare_json_lists,
)

SPLITS = ("tr", "cv", "tt")


def source_info(
    task: str = "sep_noisy", sample_rate: int = 8000, mode: str = "min"
) -> DatasetSource:
    rate = f"wav{sample_rate // 1000}k"
    folders = ",".join(WHAM_TASK_FOLDERS.get(task, WHAM_TASK_FOLDERS["sep_noisy"]))
    return DatasetSource(
        name="WHAM!",
        layout=(
            f"  WHAM_DIR/{rate}/{mode}/{{tr,cv,tt}}/{{{folders}}}/*.wav   (task {task})\n"
            f"  (WHAM_DIR may also be the {rate}/{mode}/ folder itself; the same "
            "file names in every folder)"
        ),
        how=(
            "  WHAM! mixes WSJ0-2mix utterances (WSJ0: LDC93S6A, "
            "https://catalog.ldc.upenn.edu/LDC93S6A) with noise\n  recorded by Whisper.ai "
            "(http://wham.whisper.ai/). Download wham_noise.zip and wham_scripts.tar.gz\n  "
            "(https://storage.googleapis.com/whisper-public/wham_scripts.tar.gz), then in "
            "wham_scripts:\n    python create_wham_from_scratch.py --wsj0-root WSJ0_DIR "
            "--wham-noise-root WHAM_NOISE_DIR --output-dir WHAM_DIR"
        ),
    )


def locate(
    wham_dir: PathLike, task: str = "sep_noisy", sample_rate: int = 8000, mode: str = "min"
) -> Path:
    """The folder holding ``tr/ cv/ tt/`` under ``wham_dir``.

    Raises:
        DatasetError: no such folder.
    """
    rate = f"wav{sample_rate // 1000}k"
    return locate_root(
        wham_dir, "WHAM!", [f"{rate}/{mode}", ""], SPLITS, source_info(task, sample_rate, mode)
    )


def prepare_wham(
    wham_dir: PathLike,
    out_dir: PathLike,
    task: str = "sep_noisy",
    sample_rate: int = 8000,
    mode: str = "min",
    splits: Sequence[str] = SPLITS,
    show_progress: bool = True,
) -> dict[str, int]:
    """Check WHAM! for ``task`` and write ``out_dir/<split>/<folder>.json`` for the task's folders
    (:func:`~asteroid_spmamba.recipes.common.prepare_json_lists`).

    Raises:
        DatasetError: missing folders or files (listed, with where WHAM! comes from).
        ValueError: unknown task, a file at another sample rate, parallel
            files of different lengths.
    """
    folders = wham_task_folders(task)
    return prepare_json_lists(
        locate(wham_dir, task, sample_rate, mode),
        out_dir,
        folders,
        splits,
        sample_rate,
        f"WHAM! (task {task})",
        source_info(task, sample_rate, mode),
        show_progress,
    )
