"""WHAM!: check a generated WHAM! folder and write the json lists of Asteroid's ``WhamDataset``.

The output is Asteroid's WHAM! recipe format (``egs/wham/*/local/preprocess_wham.py``)::

    OUT/tr/mix_both.json  OUT/tr/s1.json  OUT/tr/s2.json   # [[absolute wav path, n_samples], ...]
    OUT/cv/...            OUT/tt/...

with one list per folder the task reads (:data:`TASK_FOLDERS`). SPMamba's WHAM! results are on the
noisy separation task (``sep_noisy``: ``mix_both`` -> ``s1, s2``), like the authors' data module.

Command line (``egs/wham/local/prepare_data.py`` calls it)::

    python -m asteroid_spmamba.recipes.wham --wham_dir /data/wham --out_dir data/wav8k/min --task sep_noisy

References:
    G. Wichern et al., "WHAM!: Extending speech separation to noisy environments", Interspeech 2019.
"""
import argparse
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from .common import (
    DatasetError, DatasetSource, PathLike, check_parallel_folders, commit_all, find_layout_root,
    index_parallel_split, json_list_utterance_ids, json_writer, missing_error,
)

SPLITS = ("tr", "cv", "tt")
# Mixture folder first, then the targets (as in asteroid.data.wham_dataset.WHAM_TASKS).
TASK_FOLDERS = {
    "sep_clean": ["mix_clean", "s1", "s2"],
    "sep_noisy": ["mix_both", "s1", "s2"],
    "enh_single": ["mix_single", "s1"],
    "enh_both": ["mix_both", "mix_clean"],
}


def source_info(task: str = "sep_noisy", sample_rate: int = 8000, mode: str = "min") -> DatasetSource:
    rate = f"wav{sample_rate // 1000}k"
    folders = ",".join(TASK_FOLDERS.get(task, TASK_FOLDERS["sep_noisy"]))
    return DatasetSource(
        name="WHAM!",
        layout=(
            f"  WHAM_DIR/{rate}/{mode}/{{tr,cv,tt}}/{{{folders}}}/*.wav   (task {task})\n"
            f"  (WHAM_DIR may also be the {rate}/{mode}/ folder itself; the same file names in every folder)"
        ),
        how=(
            "  WHAM! mixes WSJ0-2mix utterances (WSJ0: LDC93S6A, https://catalog.ldc.upenn.edu/LDC93S6A) with noise\n"
            "  recorded by Whisper.ai (http://wham.whisper.ai/). Download wham_noise.zip and wham_scripts.tar.gz\n"
            "  (https://storage.googleapis.com/whisper-public/wham_scripts.tar.gz), then in wham_scripts:\n"
            "    python create_wham_from_scratch.py --wsj0-root WSJ0_DIR --wham-noise-root WHAM_NOISE_DIR "
            "--output-dir WHAM_DIR"
        ),
    )


def _check_task(task: str) -> List[str]:
    if task not in TASK_FOLDERS:
        raise ValueError(f"Unknown WHAM! task {task!r}; choose one of {sorted(TASK_FOLDERS)}.")
    return TASK_FOLDERS[task]


def locate(wham_dir: PathLike, task: str = "sep_noisy", sample_rate: int = 8000, mode: str = "min") -> Path:
    """The folder holding ``tr/ cv/ tt/`` under ``wham_dir``.

    Raises:
        DatasetError: no such folder.
    """
    rate = f"wav{sample_rate // 1000}k"
    source = source_info(task, sample_rate, mode)
    root = Path(wham_dir)
    if not root.is_dir():
        raise DatasetError(f"WHAM! folder {root} does not exist.\n\n{source.describe()}")
    base = find_layout_root(root, [f"{rate}/{mode}", ""], SPLITS)
    if base is None:
        raise DatasetError(f"No tr/, cv/ or tt/ folder found in {root} or {root}/{rate}/{mode}.\n\n{source.describe()}")
    return base


def prepare_wham(wham_dir: PathLike, out_dir: PathLike, task: str = "sep_noisy", sample_rate: int = 8000,
                 mode: str = "min", splits: Sequence[str] = SPLITS, show_progress: bool = True) -> Dict[str, int]:
    """Check WHAM! for ``task`` and write ``out_dir/<split>/<folder>.json`` for the task's folders.

    Nothing is written unless every split is complete and consistent.

    Returns:
        The number of mixtures per split.

    Raises:
        DatasetError: missing folders or files (listed, with where WHAM! comes from).
        ValueError: unknown task, a file at another sample rate, parallel files of different lengths.
    """
    folders = _check_task(task)
    source = source_info(task, sample_rate, mode)
    base = locate(wham_dir, task, sample_rate, mode)
    missing: List[str] = []
    for split in splits:
        if not (base / split).is_dir():
            missing.append(f"{split}/")
            continue
        missing += check_parallel_folders(base / split, folders)[1]
    if missing:
        raise missing_error(f"WHAM! in {base} is incomplete for task {task}", missing, source)

    writes, counts = [], {}
    for split in splits:
        index = index_parallel_split(base / split, folders, sample_rate, show_progress)
        counts[split] = len(index[folders[0]])
        writes += [(Path(out_dir) / split / f"{folder}.json", json_writer(index[folder])) for folder in folders]
    commit_all(writes)
    return counts


def build_dataset(json_dir: PathLike, task: str, sample_rate: int, segment: Optional[float]):
    """Asteroid's ``WhamDataset`` on a prepared split (``segment=None``: whole utterances)."""
    from .common import asteroid_dataset_class

    json_dir = Path(json_dir)
    absent = [str(json_dir / f"{name}.json") for name in _check_task(task) if not (json_dir / f"{name}.json").is_file()]
    if absent:
        raise FileNotFoundError(
            f"Prepared WHAM! lists missing: {', '.join(absent)}. Run stage 0 of the recipe "
            f"(local/prepare_data.py --wham_dir ... --task {task}) first."
        )
    return asteroid_dataset_class("WhamDataset")(str(json_dir), task, sample_rate=sample_rate, segment=segment)


utterance_ids = json_list_utterance_ids


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description="Check a WHAM! folder and write the json lists of asteroid.data.WhamDataset.",
        epilog=source_info().describe(), formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--wham_dir", "--wham-dir", required=True, help="generated WHAM! folder")
    parser.add_argument("--out_dir", "--out-dir", required=True, help="where {tr,cv,tt}/*.json go")
    parser.add_argument("--task", default="sep_noisy", choices=sorted(TASK_FOLDERS))
    parser.add_argument("--sample_rate", "--sample-rate", type=int, default=8000)
    parser.add_argument("--mode", default="min", choices=("min", "max"))
    parser.add_argument("--no_progress", "--no-progress", action="store_true")
    args = parser.parse_args(argv)
    try:
        counts = prepare_wham(args.wham_dir, args.out_dir, args.task, args.sample_rate, args.mode,
                              show_progress=not args.no_progress)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"WHAM! ({args.task}) lists written to {args.out_dir}: "
          + ", ".join(f"{split} {n} mixtures" for split, n in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
