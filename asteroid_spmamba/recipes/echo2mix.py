"""Echo2Mix: check a downloaded Echo2Mix folder and link its splits where the engine reads them.

Echo2Mix holds one folder per utterance (``mix.wav, spk1_reverb.wav, spk2_reverb.wav``) under
``train/``, ``val/`` and ``test/``; :class:`asteroid_spmamba.data.Echo2MixDataset` reads it
directly, so preparing it means checking every split (complete utterance folders, 16 kHz mono files
of equal lengths, no copy of speaker 1 as speaker 2: the known bug of the original
``process_echoset.py``) and writing::

    OUT/train -> ECHO2MIX_DIR/train      (symbolic links, the engine's train/valid/test layout)
    OUT/valid -> ECHO2MIX_DIR/val
    OUT/test  -> ECHO2MIX_DIR/test
    OUT/index.json                       {split: [[utterance ID, n_samples], ...]}

Command line (``egs/echo2mix/local/prepare_data.py`` calls
:func:`asteroid_spmamba.commands.prepare.echo2mix_main`)::

    python -m asteroid_spmamba.commands.prepare echo2mix --echo2mix_dir /data/Echo2Mix \\
        --out_dir data/echo2mix

References:
    K. Li, G. Chen, R. Yang, X. Hu, "SPMamba: State-space model is all you need in speech
    separation", arXiv:2404.02063, 2024.
    K. Li et al., "SonicSim: A customizable simulation platform for speech processing in moving
    sound source scenarios", arXiv:2410.01481, 2024.
"""

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

from .common import (
    DatasetError,
    DatasetSource,
    PathLike,
    commit_all,
    json_writer,
    listing,
    symlink_atomic,
)

# Engine split name -> accepted folder names in a downloaded Echo2Mix (first: the release's).
SPLIT_NAMES = {
    "train": ("train", "tr"),
    "valid": ("val", "valid", "dev", "cv"),
    "test": ("test", "tt"),
}

SOURCE = DatasetSource(
    name="Echo2Mix",
    layout=(
        "  ECHO2MIX_DIR/{train,val,test}/<utterance folders, possibly "
        "nested>/{mix,spk1_reverb,spk2_reverb}.wav  (16 kHz)"
    ),
    how=(
        "  Echo2Mix is released by the SPMamba authors (https://github.com/JusperLee/SPMamba, "
        "'Release Datasets':\n  "
        "https://drive.google.com/file/d/1nJ9ujAbf4LxXEFzFwEpr9CwJOeNHghw0/view) and simulated "
        "with SonicSim\n  (https://github.com/JusperLee/SonicSim). Without it, asteroid-spmamba "
        "make-corpus OUT --sample-rate 16000\n  --reverb ... writes a small synthetic "
        "corpus in the same layout."
    ),
)


def _find_split(root: Path, split: str) -> Optional[Path]:
    for name in SPLIT_NAMES[split]:
        if (root / name).is_dir():
            return root / name
    return None


def prepare_echo2mix(
    echo2mix_dir: PathLike,
    out_dir: PathLike,
    sample_rate: int = 16000,
    n_src: int = 2,
    splits: Sequence[str] = ("train", "valid", "test"),
    check_identical: int = 8,
) -> dict[str, int]:
    """Check Echo2Mix and link its splits as ``out_dir/{train,valid,test}`` (+ ``index.json``).

    Nothing is written unless every split is complete and consistent.

    Returns:
        The number of utterances per split.

    Raises:
        DatasetError: missing split folders or utterance files (listed, with
            where Echo2Mix comes from).
        ValueError: files at another sample rate, of different lengths, or identical sources.
    """
    from ..data.echo2mix import Echo2MixDataset

    root = Path(echo2mix_dir)
    if not root.is_dir():
        raise DatasetError(f"Echo2Mix folder {root} does not exist.\n\n{SOURCE.describe()}")
    found, missing = {}, []
    for split in splits:
        folder = _find_split(root, split)
        if folder is None:
            missing.append(f"{SPLIT_NAMES[split][0]}/ (or {', '.join(SPLIT_NAMES[split][1:])})")
        else:
            found[split] = folder
    if missing:
        raise DatasetError(
            f"Echo2Mix in {root} lacks {len(missing)} split folder(s):\n{listing(missing)}\n\n"
            f"{SOURCE.describe()}"
        )
    index, errors = {}, []
    for split, folder in found.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                dataset = Echo2MixDataset(
                    folder,
                    n_src=n_src,
                    sample_rate=sample_rate,
                    segment=None,
                    check_identical=check_identical,
                )
        except FileNotFoundError as err:  # incomplete utterance folders: gather every split's
            errors.append(f"[{split}: {folder}] {err}")
            continue
        index[split] = [[utt, int(n)] for utt, n in zip(dataset.ids, dataset.lengths)]
    if errors:
        raise DatasetError(
            "Echo2Mix is incomplete:\n" + "\n".join(errors) + f"\n\n{SOURCE.describe()}"
        )
    out_dir = Path(out_dir)
    commit_all(
        [
            (
                out_dir / "index.json",
                json_writer(
                    {"root": str(root.absolute()), "sample_rate": sample_rate, "splits": index}
                ),
            )
        ]
    )
    for split, folder in found.items():
        symlink_atomic(folder, out_dir / split)
    return {split: len(items) for split, items in index.items()}
