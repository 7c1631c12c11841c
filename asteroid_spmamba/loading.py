"""Load a model by any name: a local folder or file, a model shipped with the package, a release of
the original authors or a URL, one of Asteroid's Zenodo names, or a Hugging Face Hub repository.

Names are tried in that order (:func:`resolve_package`). Local files are read by
:mod:`asteroid_spmamba.checkpoints`; shipped models are the folders of
:mod:`asteroid_spmamba.pretrained`; releases and URLs are downloaded, converted once and cached by
:mod:`asteroid_spmamba.releases`; Asteroid's Zenodo names still go through Asteroid's
``cached_download``; Hub repositories are downloaded by :mod:`asteroid_spmamba.hub`.

This module sits above the models (releases convert into an ``SPMamba``), so the models' own
``from_pretrained`` (:class:`asteroid_spmamba.hub.AsteroidHubMixin`) reaches it through
:func:`asteroid_spmamba.hub.set_resolver`, called when this module is imported (the package's
``__init__`` imports it).
"""

import os
from pathlib import Path
from typing import Optional, Union

import torch
from asteroid.utils import hub_utils as asteroid_hub  # Asteroid's Zenodo names
from huggingface_hub import constants
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id

from . import releases
from .checkpoints import (
    Package,
    PathOrConf,
    local_package,
    model_from_package,
    package_from_file,
    package_from_folder,
)
from .hub import AsteroidHubMixin, offline, package_from_hub, set_resolver
from .pretrained import list_shipped, pretrained_folder

__all__ = ["from_pretrained", "load_model", "list_pretrained", "resolve_package"]


_WEIGHT_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt", ".safetensors")


def resolve_package(
    repo_id_or_path: PathOrConf,
    revision: Optional[str] = None,
    cache_dir: Optional[Union[str, os.PathLike]] = None,
    force_download: bool = False,
    token: Optional[Union[str, bool]] = None,
    local_files_only: bool = False,
) -> Package:
    """What ``repo_id_or_path`` names (see :func:`from_pretrained`), read into a package."""
    local = local_package(repo_id_or_path)  # a dict, an existing folder or file
    if local is not None:
        return local
    name = os.fspath(repo_id_or_path)
    shipped = None if Path(name).expanduser().exists() else pretrained_folder(name)
    if shipped is not None:  # a model shipped with the package (asteroid_spmamba.list_pretrained())
        return package_from_folder(shipped, f"the shipped model {name!r}")
    for prefix in (constants.HUGGINGFACE_CO_URL_HOME, constants.ENDPOINT.rstrip("/") + "/"):
        if name.startswith(prefix):
            name = name[len(prefix) :].strip("/")
            break
    if name in releases.RELEASES or name.startswith(("http://", "https://")):
        folder = releases.fetch(name, cache_dir, force_download, local_files_only or offline())
        return package_from_folder(folder, f"{name} (cached in {folder})")
    if name in asteroid_hub.MODELS_URLS_HASHTABLE:
        downloaded = asteroid_hub.cached_download(name)
        return package_from_file(Path(downloaded), name, asteroid_hub.SR_HASHTABLE.get(name))
    repo_id = name.partition("@")[0]
    looks_like_path = (
        isinstance(repo_id_or_path, Path)
        or name.startswith((".", "/", "~", "\\"))
        or repo_id.endswith(_WEIGHT_SUFFIXES)
        or repo_id.count("/") > 1
        or "\\" in repo_id
    )
    try:
        if looks_like_path:
            raise HFValidationError("path-like")
        validate_repo_id(repo_id)
    except HFValidationError:
        raise FileNotFoundError(
            f"{name!r} is neither an existing local file or folder nor a Hugging Face Hub repository id "
            "(ORG/NAME). Check the path."
        ) from None
    return package_from_hub(name, revision, cache_dir, force_download, token, local_files_only)


def from_pretrained(
    cls: Optional[type],
    repo_id_or_path: PathOrConf,
    revision: Optional[str] = None,
    cache_dir: Optional[Union[str, os.PathLike]] = None,
    force_download: bool = False,
    token: Optional[Union[str, bool]] = None,
    local_files_only: bool = False,
    **overrides,
) -> torch.nn.Module:
    """Load a pretrained model (in eval mode, on the CPU).

    Args:
        cls: the class it is called on. The file's architecture must be ``cls`` or a subclass;
            ``None`` (or :class:`AsteroidHubMixin`) accepts any registered architecture.
        repo_id_or_path: a Hub repository id (``ORG/NAME``, optionally ``ORG/NAME@REVISION`` or a
            ``https://huggingface.co/ORG/NAME`` URL), a local folder (``config.json`` +
            ``model.safetensors``, or a legacy ``pytorch_model.bin``/``model.pth``/``best_model.pth``),
            a single file (``.safetensors`` of this package, or Asteroid's serialized ``.pth``/``.bin``),
            a dict as returned by ``model.serialize()``, a shipped model's name
            (:func:`asteroid_spmamba.list_pretrained`), a release name or a URL of a ``.zip``/``.pth``/
            ``.ckpt`` (downloaded, converted and cached, see :mod:`asteroid_spmamba.releases`), or one of
            Asteroid's Zenodo model names.
        revision: Hub branch, tag or commit.
        cache_dir: Hub cache folder (default: huggingface_hub's, ``HF_HUB_CACHE``); for releases and
            URLs, the releases cache (default ``$ASTEROID_SPMAMBA_CACHE/releases``).
        force_download: fetch the files again even if cached.
        token: Hub token for private or gated repositories.
        local_files_only: never touch the network (also implied by ``HF_HUB_OFFLINE=1``).
        **overrides: constructor arguments that replace the saved ones (e.g. ``scan_backend="torch"``).

    Returns:
        The model, weights loaded, in eval mode.

    Raises:
        FileNotFoundError: no such file/folder/repository, or none of the expected files in it.
        ValueError: corrupted or unsafe file, unknown or mismatched architecture, or weights that
            do not fit the configuration (the message lists missing/unexpected keys and shapes).
    """
    package = resolve_package(
        repo_id_or_path, revision, cache_dir, force_download, token, local_files_only
    )
    return model_from_package(None if cls is AsteroidHubMixin else cls, package, **overrides)


def load_model(repo_id_or_path: PathOrConf, **kwargs) -> torch.nn.Module:
    """Load a model of any registered architecture (see :func:`from_pretrained`)."""
    return from_pretrained(None, repo_id_or_path, **kwargs)


def list_pretrained() -> list[dict[str, object]]:
    """Every model loadable by name: name, architecture, sample rate, parameters, training data, scores.

    First the shipped models (``"downloads": False``), then the named releases of
    :mod:`asteroid_spmamba.releases` (``"downloads": True``, with their ``url``, ``sha256`` (None:
    not checked) and ``notes`` saying what is unverified).
    """
    return list_shipped() + releases.list_releases()


set_resolver(from_pretrained)
