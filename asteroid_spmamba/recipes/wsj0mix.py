"""WSJ0-2mix: check a generated wsj0-mix folder and write the json lists of
Asteroid's ``Wsj0mixDataset``.

The output is Asteroid's wsj0-mix recipe format (``egs/wsj0-mix/*/local/preprocess_wsj0mix.py``)::

    OUT/tr/mix.json  OUT/tr/s1.json  OUT/tr/s2.json   # [[absolute wav path, n_samples], ...]
    OUT/cv/...       OUT/tt/...

read by :class:`asteroid.data.Wsj0mixDataset` (lists aligned by index, sorted by file name).

Command line (``egs/wsj0-2mix/local/prepare_data.py`` calls
:func:`asteroid_spmamba.commands.prepare.wsj0mix_main`)::

    python -m asteroid_spmamba.commands.prepare wsj0mix --wsj0mix_dir /data/wsj0-mix \\
        --out_dir data/2speakers/wav8k/min

References:
    J. R. Hershey, Z. Chen, J. Le Roux, S. Watanabe, "Deep clustering: Discriminative embeddings for
    segmentation and separation", ICASSP 2016.
"""

from collections.abc import Sequence
from pathlib import Path

from ..data.asteroid_datasets import wsj0mix_folders
from .common import (
    DatasetSource,
    PathLike,
    locate_root,
    prepare_json_lists,
)

SPLITS = ("tr", "cv", "tt")


def source_info(n_src: int = 2, sample_rate: int = 8000, mode: str = "min") -> DatasetSource:
    rate = f"wav{sample_rate // 1000}k"
    folders = ", ".join(["mix"] + [f"s{k + 1}" for k in range(n_src)])
    return DatasetSource(
        name=f"WSJ0-{n_src}mix",
        layout=(
            f"  WSJ0MIX_DIR/{n_src}speakers/{rate}/{mode}/{{tr,cv,tt}}/{{{folders}}}/*.wav\n"
            f"  (WSJ0MIX_DIR may also be the {n_src}speakers/ or {rate}/{mode}/ folder itself; the "
            "same file names in every folder)"
        ),
        how=(
            "  WSJ0-mix is generated from WSJ0 (LDC93S6A, https://catalog.ldc.upenn.edu/LDC93S6A, "
            "licensed by the LDC)\n  with the original MATLAB scripts (create-speaker-mixtures, https://www.merl.com/demos/deep-clustering/)\n"
            "  or their Python port https://github.com/mpariente/pywsj0-mix:\n"
            "    python generate_wsjmix.py -p WSJ0_PARENT_DIR -o WSJ0MIX_DIR -n "
            f"{n_src} -sr {sample_rate}"
        ),
    )


def locate(
    wsj0mix_dir: PathLike, n_src: int = 2, sample_rate: int = 8000, mode: str = "min"
) -> Path:
    """The folder holding ``tr/ cv/ tt/`` under ``wsj0mix_dir`` (see
    :func:`source_info` for the layouts).

    Raises:
        DatasetError: no such folder.
    """
    rate = f"wav{sample_rate // 1000}k"
    return locate_root(
        wsj0mix_dir,
        f"WSJ0-{n_src}mix",
        [f"{n_src}speakers/{rate}/{mode}", f"{rate}/{mode}", ""],
        SPLITS,
        source_info(n_src, sample_rate, mode),
    )


def prepare_wsj0mix(
    wsj0mix_dir: PathLike,
    out_dir: PathLike,
    n_src: int = 2,
    sample_rate: int = 8000,
    mode: str = "min",
    splits: Sequence[str] = SPLITS,
    show_progress: bool = True,
) -> dict[str, int]:
    """Check WSJ0-``n_src``mix and write ``out_dir/<split>/{mix,s1,..}.json``
    (:func:`~asteroid_spmamba.recipes.common.prepare_json_lists`).

    Raises:
        DatasetError: missing folders or files (listed, with where WSJ0-mix comes from).
        ValueError: a file at another sample rate, or parallel files of different lengths.
    """
    return prepare_json_lists(
        locate(wsj0mix_dir, n_src, sample_rate, mode),
        out_dir,
        wsj0mix_folders(n_src),
        splits,
        sample_rate,
        f"WSJ0-{n_src}mix",
        source_info(n_src, sample_rate, mode),
        show_progress,
    )
