"""Models shipped inside the package: loadable by name, offline.

Each shipped model is a folder beside this file holding what
:func:`asteroid_spmamba.hub.save_pretrained` writes (``config.json``, ``model.safetensors`` in
float16, and a model card ``README.md`` that states its training data, steps and scores).
``SPMamba.from_pretrained(NAME)``, ``asteroid_spmamba.load_model(NAME)`` and ``asteroid-spmamba
separate NAME in.wav`` take these names (:mod:`asteroid_spmamba.loading`);
``asteroid_spmamba.list_pretrained`` lists them with the named releases, which download.
"""

import copy
import json
from pathlib import Path
from typing import Optional

import torch
from huggingface_hub import metadata_load

from ..hub import save_pretrained

HERE = Path(__file__).resolve().parent


def pretrained_folder(name: str) -> Optional[Path]:
    """The folder of the shipped model ``name``, or None when no shipped model has that name."""
    if not isinstance(name, str) or "/" in name or name.startswith("."):
        return None
    folder = HERE / name
    return folder if (folder / "config.json").is_file() else None


def _card_datasets(folder: Path) -> Optional[str]:
    """The ``datasets`` of the model card's metadata, joined (a short label
    of the training data)."""
    card = folder / "README.md"
    meta = (metadata_load(card) if card.is_file() else None) or {}
    datasets = meta.get("datasets") or []
    return "; ".join(map(str, [datasets] if isinstance(datasets, str) else datasets)) or None


def list_shipped() -> list[dict[str, object]]:
    """The shipped models (``"downloads": False``): name, architecture, sample rate, parameters,
    training data (in full, and the card's short ``data`` label), scores, and the ``use_when``
    advice of its ``infos`` if it has one."""
    out = []
    for folder in sorted(filter(None, (pretrained_folder(p.name) for p in HERE.iterdir()))):
        config = json.loads((folder / "config.json").read_text())
        infos = config.get("infos") or {}
        out.append(
            {
                "name": folder.name,
                "architecture": config["architecture"],
                "sample_rate": config.get("sample_rate"),
                "n_parameters": infos.get("n_parameters"),
                "training_data": infos.get("training_data"),
                "scores": infos.get("scores", {}),
                "downloads": False,
                "data": _card_datasets(folder),
                "use_when": infos.get("use_when"),
            }
        )
    return out


def save_shipped(
    model: torch.nn.Module, name: str, infos: dict[str, object], **card_kwargs
) -> Path:
    """Write ``model`` as the shipped model ``name``: float16 weights (half the bytes; the forward
    runs in float32 after loading) and a card from ``infos`` (training data, steps, scores)."""
    half = copy.deepcopy(model).half()
    # no pytorch_model.bin: it would double the package's size (Asteroid's
    # loader is for saved folders)
    return save_pretrained(
        half, HERE / name, infos=infos, overwrite_card=True, asteroid_file=False, **card_kwargs
    )
