"""Hugging Face Hub integration: load, save and publish separation models.

Formats
    * **This package's format** (a folder, or a Hub repository): ``model.safetensors`` (the state
      dict) + ``config.json``::

          {"architecture": "SPMamba", "model_args": {...}, "sample_rate": 8000,
           "asteroid_spmamba_version": "0.1.0", "software_versions": {...}}

      plus a model card ``README.md`` and, for Asteroid's own loader, ``pytorch_model.bin``: the
      same weights as Asteroid's package dict (``model_name``, ``model_args``, ``state_dict``, plain
      strings in ``infos``, so ``torch.load(weights_only=True)`` reads it). It doubles the folder's
      size; this package's loader never reads it when ``model.safetensors`` is there. The
      configuration is also stored in the safetensors header (key ``asteroid_spmamba_config``) so
      a lone ``.safetensors`` file is self-contained.
    * **Asteroid's legacy single file** (what ``model.serialize()`` + ``torch.save`` write, e.g. a
      recipe's ``best_model.pth``, or ``pytorch_model.bin`` in the Hub repositories published for
      Asteroid): a dict with ``model_name``, ``state_dict`` and ``model_args``.

    The architecture named in the file decides the class (through ``asteroid.models.get``, where
    this package registers its models). ``SPMamba.from_pretrained`` on a file holding another
    architecture raises a ``ValueError``; :func:`load_model` (or ``from_pretrained(None, ...)``)
    accepts any registered architecture.

Releases and URLs
    Names of :data:`asteroid_spmamba.releases.RELEASES` (the original authors' checkpoints) and
    plain ``http(s)://`` URLs of ``.zip``/``.pth``/``.ckpt`` files are downloaded, converted once
    and cached by :mod:`asteroid_spmamba.releases`; Asteroid's Zenodo model names still go through
    Asteroid's ``cached_download``.

Asteroid's own loader (``asteroid.models.BaseModel.from_pretrained``, used by ``asteroid-infer``)
    It reads a file through ``asteroid.models.base_models.cached_download`` (a local file, a URL,
    or ``pytorch_model.bin`` of a Hub repository), then ``torch.load``, ``asteroid.models.get(
    model_name)`` and ``load_state_dict``. It has no plugin hook, and ``torch.load(weights_only=True)``
    can import nothing, so a file alone cannot make it find this package's classes: they exist for
    it once ``asteroid_spmamba`` is imported (``asteroid_spmamba.models`` registers them). What it
    does not do at all is read a folder (it takes any non-file for a Hub id and fails validating
    it); importing ``asteroid_spmamba.models`` therefore wraps that one ``cached_download`` name
    (:func:`teach_asteroid_folders`) so that a folder resolves to its ``pytorch_model.bin`` (or
    ``model.pth``/``best_model.pth``); everything else, and the rest of Asteroid's loader, is
    unchanged. Hub repositories written by :func:`push_to_hub` hold ``pytorch_model.bin``, which
    is what Asteroid downloads.

Safety
    Downloads are never unpickled with code execution: weights are read with ``safetensors`` or
    ``torch.load(..., weights_only=True)``. A legacy file that needs full unpickling is refused
    with an explanation.

Hub access
    Files come from ``huggingface_hub.hf_hub_download``, so the Hub cache (``HF_HUB_CACHE`` /
    ``cache_dir``), ``HF_HUB_OFFLINE`` (read at call time too, not only at import) and tokens
    behave as in every other Hub library. Missing repositories or files raise
    ``FileNotFoundError`` naming the repository, the revision and the files looked for.

Asteroid's ``asteroid.utils.hub_utils`` and the installed ``huggingface_hub`` (2.x)
    Asteroid 0.7 reads ``huggingface_hub.HUGGINGFACE_CO_URL_HOME``,
    ``huggingface_hub.PYTORCH_WEIGHTS_NAME`` and calls ``huggingface_hub.hf_hub_download(repo_id=,
    filename=, cache_dir=, revision=, library_name=, library_version=)``. In huggingface_hub 2.4
    both constants are still re-exported at the top level (``"https://huggingface.co/"`` and
    ``"pytorch_model.bin"``) and those ``hf_hub_download`` arguments still exist, so
    ``asteroid.utils.hub_utils`` imports and works. What is gone from huggingface_hub is its own
    ``cached_download`` (and ``Repository``/``HfFolder``), which Asteroid does not use: Asteroid
    has a ``cached_download`` of its own. Its remaining weak points are elsewhere: it caches Hub
    files in ``~/.cache/torch/asteroid`` instead of the Hub cache, only knows
    ``pytorch_model.bin``, relies on ``requests`` (no longer a huggingface_hub dependency) for
    ``model_list``, and Asteroid's ``BaseModel.from_pretrained`` passes no ``weights_only`` flag.
    This module therefore calls ``hf_hub_download`` itself for Hub ids (never Asteroid's
    ``cached_download``), reads the constants from ``huggingface_hub.constants`` and keeps
    Asteroid's ``cached_download`` only for what only Asteroid knows: its Zenodo model names
    (plain URLs go through :mod:`asteroid_spmamba.releases`: progress bar, atomic, converted once).

Why ``ModelHubMixin`` is used only in part
    :class:`AsteroidHubMixin` subclasses ``huggingface_hub.ModelHubMixin``: it declares the
    library metadata through the mixin's class keywords (``library_name``, ``tags``,
    ``pipeline_tag``, used by the model card), implements the ``_save_pretrained`` and
    ``_from_pretrained`` hooks (so ``ModelHubMixin.from_pretrained`` and tools built on the hooks
    work) and ``generate_model_card``. The public methods are overridden because the mixin's
    versions do not fit Asteroid's ``BaseModel``:

    * ``from_pretrained``: the mixin maps top-level keys of ``config.json`` onto ``__init__``
      arguments of the class it is called on and only knows Hub ids and folders. Asteroid models
      are rebuilt from ``get_model_args()`` under ``model_args``, the class comes from the file
      (``architecture``/``model_name``), and single legacy files, serialized dicts, Asteroid's
      Zenodo names and URLs must keep working (``BaseModel.from_pretrained`` accepted them).
    * ``save_pretrained``: the mixin writes straight into the target folder; here the files are
      written to a temporary folder and renamed into place, so a crash never leaves a
      half-written model behind. The configuration is always ``get_model_args()`` (the mixin's
      ``config`` argument is stored under ``"infos"``).
    * ``push_to_hub`` does what the mixin's does (save into a temporary folder, ``create_repo`` +
      ``upload_folder`` in one commit) but also puts the repository id in the card's usage snippet.
"""

import contextlib
import json
import math
import os
import pickle
import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Optional, Union

import torch
from huggingface_hub import (
    HfApi,
    ModelCard,
    ModelCardData,
    ModelHubMixin,
    constants,
    hf_hub_download,
)
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    HFValidationError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.utils import validate_repo_id

from .files import set_new_file_mode, work_path

CONFIG_NAME = constants.CONFIG_NAME  # "config.json"
WEIGHTS_NAME = constants.SAFETENSORS_SINGLE_FILE  # "model.safetensors"
LEGACY_WEIGHTS_NAME = constants.PYTORCH_WEIGHTS_NAME  # "pytorch_model.bin" (Asteroid's Hub repos)
CARD_NAME = constants.REPOCARD_NAME  # "README.md"
# Legacy file names tried, in order, in a local folder without our format.
LEGACY_FOLDER_FILES = (LEGACY_WEIGHTS_NAME, "model.pth", "best_model.pth")
SAFETENSORS_CONFIG_KEY = "asteroid_spmamba_config"
CARD_TAGS = ("asteroid", "audio", "audio-to-audio", "speech-separation")
PAPER = (
    'K. Li, G. Chen, R. Yang, X. Hu, "SPMamba: State-space model is all you need in speech separation", '
    "[arXiv:2404.02063](https://arxiv.org/abs/2404.02063), 2024"
)
PAPER_TAG = "arxiv:2404.02063"  # the Hub links the paper page from this tag
DEFAULT_LICENSE = "mit"  # the package's licence, for cards whose caller names none
_LEGACY_KEYS = ("model_name", "state_dict", "model_args")

PathOrConf = Union[str, os.PathLike, Mapping[str, Any]]

__all__ = [
    "AsteroidHubMixin",
    "from_pretrained",
    "load_model",
    "save_pretrained",
    "push_to_hub",
    "upload_folder",
    "make_model_card",
    "teach_asteroid_folders",
    "model_config",
]


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------
@dataclass
class _Package:
    """What a model file holds, whatever its format."""

    architecture: str
    model_args: dict[str, Any]
    state_dict: dict[str, torch.Tensor]
    source: str  # for error messages: where it came from


def _package_version() -> str:
    try:
        from . import __version__

        return __version__
    except ImportError:  # during the package's own import
        from importlib.metadata import version

        return version("asteroid-spmamba")


def _offline() -> bool:
    """``HF_HUB_OFFLINE`` as huggingface_hub read it at import, or as set since."""
    env = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return bool(constants.HF_HUB_OFFLINE) or env.strip().upper() in constants.ENV_VARS_TRUE_VALUES


def _first_line(err: BaseException, limit: int = 240) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _read_json(path: Union[str, Path], source: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(
            f"{CONFIG_NAME} of {source} is not readable JSON ({_first_line(e)})."
        ) from e
    if not isinstance(data, dict):
        raise ValueError(
            f"{CONFIG_NAME} of {source} must hold a JSON object, got {type(data).__name__}."
        )
    return data


def _is_our_config(config: Mapping[str, Any]) -> bool:
    return "architecture" in config and "model_args" in config


def _read_safetensors(path: Union[str, Path], source: str):
    """Tensors and header metadata of a safetensors file, with a clear error if it is damaged."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            metadata = dict(f.metadata() or {})
            tensors = {key: f.get_tensor(key) for key in f.keys()}
    except Exception as e:  # SafetensorError, OSError, ... all mean the same to the user
        raise ValueError(
            f"{source}: {Path(path).name} is not a valid safetensors file ({_first_line(e)}). It is "
            "truncated or corrupted: download it again (from_pretrained(..., force_download=True)) "
            "or save the model again with save_pretrained."
        ) from e
    return tensors, metadata


def _package_from_config(config: Mapping[str, Any], state_dict, source: str) -> _Package:
    if not _is_our_config(config):
        raise ValueError(
            f"{CONFIG_NAME} of {source} lacks 'architecture' and/or 'model_args' (found keys "
            f"{sorted(config)}); it was not written by asteroid_spmamba.hub.save_pretrained."
        )
    model_args = dict(config["model_args"] or {})
    if "sample_rate" not in model_args and config.get("sample_rate") is not None:
        model_args["sample_rate"] = config["sample_rate"]
    return _Package(str(config["architecture"]), model_args, state_dict, source)


def _package_from_legacy_dict(conf: Mapping[str, Any], source: str, sample_rate=None) -> _Package:
    if not isinstance(conf, Mapping):
        raise ValueError(
            f"{source} holds a {type(conf).__name__}, not an Asteroid model package (a dict with keys "
            f"{', '.join(_LEGACY_KEYS)})."
        )
    missing = [k for k in _LEGACY_KEYS if k not in conf]
    if missing:
        hint = (
            " It looks like a PyTorch Lightning checkpoint: export the model with "
            "model.serialize() or save_pretrained() first."
            if "hyper_parameters" in conf
            else ""
        )
        raise ValueError(
            f"{source} is not an Asteroid model package: missing key(s) {missing} (found "
            f"{sorted(map(str, conf))}); expected {list(_LEGACY_KEYS)} as written by "
            f"model.serialize().{hint}"
        )
    model_args = dict(conf["model_args"] or {})
    if "sample_rate" not in model_args and sample_rate is not None:
        model_args["sample_rate"] = sample_rate
    return _Package(str(conf["model_name"]), model_args, dict(conf["state_dict"]), source)


def torch_file_problem(path: Union[str, os.PathLike]) -> Optional[str]:
    """Why ``path`` cannot be a ``torch.save`` file (empty, a truncated zip archive, not a zip archive
    nor a pickle), judged from its bytes; ``None`` when it may be one."""
    import zipfile

    path = Path(path)
    if path.is_dir():
        return "is a folder, not a checkpoint file"
    with open(path, "rb") as f:
        head = f.read(4)
    if not head:
        return "is an empty file"
    if head == b"PK\x03\x04":  # torch.save's zip format
        return None if zipfile.is_zipfile(path) else "is truncated (its zip archive ends early)"
    if head[:1] == b"\x80":  # the legacy format: a pickle (protocol 2+)
        return None
    return "is not a PyTorch checkpoint (neither torch.save's zip format nor a pickle)"


def _torch_load(path: Union[str, Path, BinaryIO], source: str):
    from torch.torch_version import TorchVersion

    if not hasattr(path, "read"):
        problem = torch_file_problem(path)
        if problem:
            raise ValueError(
                f"{source} is not a readable PyTorch file: it {problem}; download or copy it again, "
                "or check the path."
            )
    try:
        # Asteroid's serialize() stores torch.__version__, a str subclass that weights_only
        # refuses by default; allowing just that class keeps its files loadable.
        safe_globals = getattr(torch.serialization, "safe_globals", None)  # torch >= 2.5
        with safe_globals([TorchVersion]) if safe_globals else contextlib.nullcontext():
            return torch.load(
                path if hasattr(path, "read") else str(path), map_location="cpu", weights_only=True
            )
    except pickle.UnpicklingError as e:
        if "weights_only" in str(e) or "Weights only load failed" in str(e):
            raise ValueError(
                f"{source} contains pickled Python objects besides tensors and plain containers; it "
                "is not loaded because unpickling them can run arbitrary code. If you trust the file, "
                "load it yourself (torch.load(path, weights_only=False)) and pass the resulting dict "
                "to from_pretrained, or re-save it with save_pretrained."
            ) from e
        raise ValueError(f"{source} is not a readable PyTorch file ({_first_line(e)}).") from e
    except Exception as e:
        raise ValueError(
            f"{source} is not a readable PyTorch file ({_first_line(e)}); it may be truncated or "
            "corrupted: download or copy it again."
        ) from e


def _package_from_file(path: Path, source: str, sample_rate=None) -> _Package:
    """A single file: our ``.safetensors`` (config in its header or beside it) or a legacy dict."""
    if path.stat().st_size == 0:
        raise ValueError(f"{source} is an empty file; download or copy it again.")
    if path.suffix == ".safetensors":
        tensors, metadata = _read_safetensors(path, source)
        if SAFETENSORS_CONFIG_KEY in metadata:
            try:
                config = json.loads(metadata[SAFETENSORS_CONFIG_KEY])
            except json.JSONDecodeError as e:
                raise ValueError(
                    f"{source}: the configuration in the safetensors header is not JSON."
                ) from e
        elif (path.parent / CONFIG_NAME).is_file():
            config = _read_json(path.parent / CONFIG_NAME, source)
        else:
            raise FileNotFoundError(
                f"{source} has no model configuration: neither a '{SAFETENSORS_CONFIG_KEY}' entry in its "
                f"header nor a {CONFIG_NAME} beside it. Keep the {CONFIG_NAME} written by save_pretrained "
                "next to the weights."
            )
        return _package_from_config(config, tensors, source)
    return _package_from_legacy_dict(_torch_load(path, source), source, sample_rate)


def _package_from_folder(folder: Path, source: str) -> _Package:
    config_path, weights_path = folder / CONFIG_NAME, folder / WEIGHTS_NAME
    config = _read_json(config_path, source) if config_path.is_file() else None
    if config is not None and _is_our_config(config):
        if not weights_path.is_file():
            raise FileNotFoundError(f"{source} has {CONFIG_NAME} but no {WEIGHTS_NAME} next to it.")
        tensors, _ = _read_safetensors(weights_path, source)
        return _package_from_config(config, tensors, source)
    for name in LEGACY_FOLDER_FILES:
        if (folder / name).is_file():
            return _package_from_file(folder / name, f"{source}/{name}")
    if weights_path.is_file():  # the safetensors header carries the configuration too
        return _package_from_file(weights_path, f"{source}/{WEIGHTS_NAME}")
    if config is not None:
        _package_from_config(config, {}, source)  # raises: says which keys config.json lacks
    raise FileNotFoundError(
        f"No model found in folder {source}: looked for {CONFIG_NAME} + {WEIGHTS_NAME} (asteroid_spmamba "
        f"format) and {', '.join(LEGACY_FOLDER_FILES)} (Asteroid format)."
    )


def _grouped(reasons: Sequence[tuple]) -> str:
    """``[(file, why), ...]`` -> ``"a, b: why"`` with files that failed for the same reason together."""
    by_reason: dict[str, list[str]] = {}
    for name, why in reasons:
        by_reason.setdefault(why, []).append(name)
    return "; ".join(f"{', '.join(names)}: {why}" for why, names in by_reason.items())


def _split_revision(repo_id: str, revision: Optional[str]):
    """Asteroid accepts ``org/name@revision``; keep doing so."""
    if "@" in repo_id:
        repo_id, _, at_revision = repo_id.partition("@")
        if revision is not None and revision != at_revision:
            raise ValueError(
                f"Two revisions given for {repo_id!r}: {at_revision!r} and revision={revision!r}."
            )
        revision = at_revision
    return repo_id, revision


def _package_from_hub(
    repo_id: str, revision, cache_dir, force_download, token, local_files_only
) -> _Package:
    repo_id, revision = _split_revision(repo_id, revision)
    offline = local_files_only or _offline()
    where = f"Hugging Face Hub repository {repo_id!r} (revision {revision or 'main'})"
    download_kwargs = dict(
        repo_id=repo_id,
        revision=revision,
        cache_dir=cache_dir,
        force_download=force_download,
        token=token,
        local_files_only=offline,
        library_name="asteroid-spmamba",
        library_version=_package_version(),
    )
    looked: list[str] = []
    reasons: list[tuple] = []
    cache_hint = (
        f" Offline mode (HF_HUB_OFFLINE or local_files_only) is on, so only the local cache "
        f"({cache_dir or constants.HF_HUB_CACHE}) was searched: download the model once with network "
        "access, or pass the path of a local copy."
        if offline
        else ""
    )

    def fetch(name: str) -> Optional[str]:
        looked.append(name)
        try:
            return hf_hub_download(filename=name, **download_kwargs)
        except GatedRepoError as e:
            raise FileNotFoundError(
                f"{where} is gated or private (looked for {', '.join(looked)}): accept its conditions on "
                "the Hub and pass token=... or log in with `hf auth login`."
            ) from e
        except (RepositoryNotFoundError, RevisionNotFoundError) as e:
            raise FileNotFoundError(
                f"{where} was not found (looked for {', '.join(looked)}): check the name and revision, "
                f"and pass token=... for a private repository ({_first_line(e)})."
            ) from e
        except (
            EntryNotFoundError,
            OSError,
        ) as e:  # missing file, not cached offline, network errors
            reasons.append((name, _first_line(e)))
            return None

    config_path = fetch(CONFIG_NAME)
    if config_path is not None:
        config = _read_json(config_path, where)
        if _is_our_config(config):
            weights_path = fetch(WEIGHTS_NAME)
            if weights_path is None:
                raise FileNotFoundError(
                    f"{where} has {CONFIG_NAME} but {WEIGHTS_NAME} could not be fetched ({_grouped(reasons)})."
                    + cache_hint
                )
            tensors, _ = _read_safetensors(weights_path, where)
            return _package_from_config(config, tensors, where)
    legacy_path = fetch(LEGACY_WEIGHTS_NAME)
    if legacy_path is not None:
        return _package_from_file(Path(legacy_path), f"{where}, file {LEGACY_WEIGHTS_NAME}")
    raise FileNotFoundError(
        f"Could not load a model from {where}: looked for {CONFIG_NAME} + {WEIGHTS_NAME} "
        f"(asteroid_spmamba format) and {LEGACY_WEIGHTS_NAME} (Asteroid format); "
        f"{_grouped(reasons)}.{cache_hint}"
    )


_WEIGHT_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt", ".safetensors")


def _resolve_package(
    repo_id_or_path: PathOrConf, revision, cache_dir, force_download, token, local_files_only
) -> _Package:
    if isinstance(repo_id_or_path, Mapping):
        return _package_from_legacy_dict(repo_id_or_path, "the given model dict")
    if not isinstance(repo_id_or_path, (str, os.PathLike)):
        raise TypeError(
            "from_pretrained expects a Hub repository id, a local folder or file, or a serialized model "
            f"dict; got {type(repo_id_or_path).__name__}."
        )
    name = os.fspath(repo_id_or_path)
    path = Path(name).expanduser()
    if path.is_dir():
        return _package_from_folder(path, str(path))
    from .pretrained import pretrained_folder

    shipped = None if path.exists() else pretrained_folder(name)
    if shipped is not None:  # a model shipped with the package (asteroid_spmamba.list_pretrained())
        return _package_from_folder(shipped, f"the shipped model {name!r}")
    if path.is_file():
        return _package_from_file(path, str(path))
    from asteroid.utils import hub_utils as asteroid_hub  # Asteroid's Zenodo names

    from . import releases

    for prefix in (constants.HUGGINGFACE_CO_URL_HOME, constants.ENDPOINT.rstrip("/") + "/"):
        if name.startswith(prefix):
            name = name[len(prefix) :].strip("/")
            break
    if name in releases.RELEASES or name.startswith(("http://", "https://")):
        folder = releases.fetch(name, cache_dir, force_download, local_files_only or _offline())
        return _package_from_folder(folder, f"{name} (cached in {folder})")
    if name in asteroid_hub.MODELS_URLS_HASHTABLE:
        local = asteroid_hub.cached_download(name)
        return _package_from_file(Path(local), name, asteroid_hub.SR_HASHTABLE.get(name))
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
    return _package_from_hub(name, revision, cache_dir, force_download, token, local_files_only)


def _resolve_class(architecture: str, cls: Optional[type], source: str) -> type:
    from .models.registry import model_class  # the package's one name -> class lookup

    if (
        cls is not None
        and cls is not AsteroidHubMixin
        and cls.__name__.lower() == architecture.lower()
    ):
        return cls
    try:
        found = model_class(architecture)
    except ValueError:
        found = None
    if not (isinstance(found, type) and issubclass(found, torch.nn.Module)):
        raise ValueError(
            f"{source} holds a model of architecture {architecture!r}, which is not registered with "
            "asteroid.models: import the package that defines it (it must call "
            "asteroid.models.register_model) before loading."
        )
    if cls is not None and cls is not AsteroidHubMixin and not issubclass(found, cls):
        raise ValueError(
            f"{source} contains a model of class {found.__name__}; {cls.__name__}.from_pretrained loads "
            f"only {cls.__name__} (and its subclasses). Load it with {found.__name__}.from_pretrained(...) "
            "or asteroid_spmamba.hub.load_model(...), which take the class from the file."
        )
    return found


def _limited(items: Sequence[str], limit: int = 8) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f", ... ({len(items) - limit} more)" if len(items) > limit else "")


def _load_state_checked(
    model: torch.nn.Module, state_dict: Mapping[str, torch.Tensor], source: str
) -> None:
    """``load_state_dict`` that first says, in one message, everything that does not match."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    shapes = [
        f"{k}: file {tuple(state_dict[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in expected
        if k in state_dict and tuple(state_dict[k].shape) != tuple(expected[k].shape)
    ]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing keys ({len(missing)}): {_limited(missing)}")
        if unexpected:
            parts.append(f"unexpected keys ({len(unexpected)}): {_limited(unexpected)}")
        if shapes:
            parts.append(f"shape mismatches ({len(shapes)}): {_limited(shapes)}")
        raise ValueError(
            f"The weights of {source} do not match the {type(model).__name__} built from its configuration; "
            + "; ".join(parts)
            + ". The configuration and the weights come from different models: fix model_args (or the "
            "keyword overrides) or save the model again with save_pretrained."
        )
    model.load_state_dict(state_dict, strict=True)


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
    package = _resolve_package(
        repo_id_or_path, revision, cache_dir, force_download, token, local_files_only
    )
    target = _resolve_class(package.architecture, cls, package.source)
    model_args = {**package.model_args, **overrides}
    try:
        model = target(**model_args)
    except TypeError as e:
        raise TypeError(
            f"Could not build {target.__name__} from the configuration of {package.source}: {e}. "
            "The saved model_args do not fit this version of the class."
        ) from e
    _load_state_checked(model, package.state_dict, package.source)
    return model.eval()


def load_model(repo_id_or_path: PathOrConf, **kwargs) -> torch.nn.Module:
    """Load a model of any registered architecture (see :func:`from_pretrained`)."""
    return from_pretrained(None, repo_id_or_path, **kwargs)


# --------------------------------------------------------------------------------------------
# Saving
# --------------------------------------------------------------------------------------------
def _software_versions() -> dict[str, str]:
    import asteroid
    import huggingface_hub

    return {  # str(): torch.__version__ is a TorchVersion, which torch.load(weights_only=True) refuses
        "asteroid_spmamba": _package_version(),
        "asteroid": str(asteroid.__version__),
        "torch": str(torch.__version__),
        "huggingface_hub": str(huggingface_hub.__version__),
    }


def model_config(
    model: torch.nn.Module, infos: Optional[Mapping[str, Any]] = None
) -> dict[str, Any]:
    """The ``config.json`` content of ``model`` (raises ``TypeError`` if its arguments are not JSON)."""
    if not hasattr(model, "get_model_args"):
        raise TypeError(
            f"{type(model).__name__} has no get_model_args(); only Asteroid models (BaseModel "
            "subclasses) can be saved in this format."
        )
    model_args = dict(model.get_model_args())
    sample_rate = model_args.get("sample_rate", getattr(model, "sample_rate", None))
    config = {
        "architecture": type(model).__name__,
        "model_args": model_args,
        "sample_rate": sample_rate,
        "asteroid_spmamba_version": _package_version(),
        "software_versions": _software_versions(),
    }
    if infos:
        config["infos"] = dict(infos)
    try:
        json.dumps(config)
    except (TypeError, ValueError) as e:
        raise TypeError(
            f"{type(model).__name__}.get_model_args() (or infos) returned values that are not plain JSON "
            f"({e}); return only numbers, strings, booleans, None, lists and dicts."
        ) from e
    return config


def _plain_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Contiguous CPU tensors; tensors sharing storage are copied (safetensors refuses aliasing)."""
    state = model.get_state_dict() if hasattr(model, "get_state_dict") else model.state_dict()
    seen = set()
    out = {}
    for key, tensor in state.items():
        tensor = tensor.detach().to("cpu").contiguous()
        ptr = tensor.untyped_storage().data_ptr()
        if tensor.numel() and ptr in seen:
            tensor = tensor.clone()
        seen.add(ptr)
        out[key] = tensor
    return out


def _write_model_files(
    model: torch.nn.Module,
    folder: Path,
    infos: Optional[Mapping[str, Any]] = None,
    asteroid_file: bool = True,
) -> dict[str, Any]:
    """Write ``model.safetensors``, ``config.json`` and (``asteroid_file``) Asteroid's
    ``pytorch_model.bin`` into an existing folder."""
    from safetensors.torch import save_file

    config = model_config(model, infos)
    config_text = json.dumps(config, indent=2, sort_keys=False)
    state = _plain_state_dict(model)
    save_file(
        state,
        str(folder / WEIGHTS_NAME),
        metadata={"format": "pt", SAFETENSORS_CONFIG_KEY: json.dumps(config)},
    )
    set_new_file_mode(folder / WEIGHTS_NAME)  # safetensors creates it with mode 0600
    if asteroid_file:  # what asteroid.models.BaseModel.from_pretrained reads: plain types only
        package = {
            "model_name": config["architecture"],
            "model_args": config["model_args"],
            "state_dict": state,
            "infos": {k: config[k] for k in ("software_versions", "infos") if k in config},
        }
        torch.save(package, folder / LEGACY_WEIGHTS_NAME)
    (folder / CONFIG_NAME).write_text(config_text + "\n", encoding="utf-8")
    return config


def _import_line(model: torch.nn.Module) -> str:
    name = type(model).__name__
    module = type(model).__module__
    if module.startswith("asteroid_spmamba"):
        return f"from asteroid_spmamba.models import {name}"
    if module.startswith("asteroid."):
        return f"from asteroid.models import {name}"
    return f"from {module} import {name}"


def _format_metric(value: Any) -> str:
    return f"{value:.2f}" if isinstance(value, float) and math.isfinite(value) else str(value)


def _results_by_test_set(metrics: Optional[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """``{metric: value}`` (one test set) or ``{test set: {metric: value}}`` -> the second form."""
    if not metrics:
        return {}
    if all(isinstance(v, Mapping) for v in metrics.values()):
        return {str(k): dict(v) for k, v in metrics.items()}
    return {"test set": dict(metrics)}


def _eval_results(results: Mapping[str, Mapping[str, Any]]) -> list:
    from huggingface_hub import EvalResult

    out = []
    for test_set, values in results.items():
        for metric, value in values.items():
            if (
                isinstance(value, (int, float))
                and not isinstance(value, bool)
                and math.isfinite(value)
            ):
                out.append(
                    EvalResult(
                        task_type="audio-to-audio",
                        task_name="Speech separation",
                        dataset_name=test_set,
                        dataset_type=test_set.lower().replace(" ", "-"),
                        metric_type=metric,
                        metric_value=value,
                    )
                )
    return out


def make_model_card(
    model: torch.nn.Module,
    repo_id: Optional[str] = None,
    datasets: Optional[Union[str, Iterable[str]]] = None,
    metrics: Optional[Mapping[str, Any]] = None,
    license: Optional[str] = None,
    description: Optional[str] = None,
    language: Optional[Union[str, list[str]]] = None,
    tags: Optional[Iterable[str]] = None,
    training: Optional[Mapping[str, Any]] = None,
) -> ModelCard:
    """Model card (``README.md``): Hub metadata with a ``model-index`` of the results, training data
    and steps, results, usage, configuration, the paper and the licence.

    Args:
        model: the model.
        repo_id: Hub id shown in the usage snippet (``ORG/NAME`` placeholder if unknown).
        datasets: training data (names or Hub dataset ids), e.g. ``"Libri2Mix"``.
        metrics: ``{metric: value}`` (e.g. ``{"si_sdr": 15.3}``), or ``{test set: {metric: value}}``
            for several test sets; shown as a table and in the ``model-index``.
        license: license id (e.g. ``"cc-by-sa-4.0"``; default ``"mit"``, the package's).
        description: free text placed under the title.
        language: spoken language(s) of the training data.
        tags: extra tags.
        training: how it was trained, ``{"steps": 1954, "epochs": 14, ...}``, listed in the card.
    """
    name = type(model).__name__
    datasets = [datasets] if isinstance(datasets, str) else list(datasets or [])
    results = _results_by_test_set(metrics)
    info = getattr(type(model), "_hub_mixin_info", None)
    base = info.model_card_data.to_dict() if info is not None else {}
    license = license or base.get("license") or DEFAULT_LICENSE
    all_tags = sorted(
        set(CARD_TAGS) | {name.lower(), PAPER_TAG} | set(tags or []) | set(base.get("tags") or [])
    )
    repo = repo_id or "ORG/NAME"
    eval_results = _eval_results(results)
    card_data = ModelCardData(
        library_name="asteroid",
        pipeline_tag="audio-to-audio",
        tags=all_tags,
        datasets=datasets or None,
        license=license,
        language=language,
        metrics=sorted({m for values in results.values() for m in values}) or None,
        model_name=repo_id or name,
        eval_results=eval_results or None,
    )
    config = model_config(model)
    n_src = config["model_args"].get("n_src", getattr(model, "n_src", None))
    rate = config["sample_rate"]
    training = dict(training or {})
    steps = training.pop("steps", None)
    lines = [
        f"# {name}" + (f" ({', '.join(datasets)})" if datasets else ""),
        "",
        description
        or (
            f"A {name} speech separation model"
            + (f" for {n_src} speakers" if n_src else "")
            + (f" at {rate:g} Hz" if isinstance(rate, (int, float)) else "")
            + ", for the [Asteroid](https://github.com/asteroid-team/asteroid) toolkit, saved with "
            f"asteroid-spmamba {config['asteroid_spmamba_version']}."
        ),
        "",
        "## Training",
        "",
        "Data: " + ("; ".join(datasets) if datasets else "not specified") + ".",
        "",
        f"- steps: {steps if steps is not None else 'not recorded'}",
        *[f"- {k}: {v}" for k, v in training.items()],
        "",
        "## Evaluation results",
        "",
    ]
    if not results:
        lines += ["No evaluation results were recorded with this model.", ""]
    elif list(results) == ["test set"]:
        lines += ["| Metric | Value |", "| --- | --- |"]
        lines += [f"| {k} | {_format_metric(v)} |" for k, v in results["test set"].items()]
        lines.append("")
    else:
        lines += ["| Test set | Metric | Value |", "| --- | --- | --- |"]
        lines += [
            f"| {t} | {k} | {_format_metric(v)} |"
            for t, values in results.items()
            for k, v in values.items()
        ]
        lines.append("")
    lines += [
        "## Usage",
        "",
        "```python",
        _import_line(model),
        "from asteroid_spmamba import separate_file",
        "",
        f'model = {name}.from_pretrained("{repo}")',
        'estimates, rate = separate_file("mixture.wav", model=model, chunk_seconds=8.0)',
        "```",
        "",
        "or from the command line:",
        "",
        "```bash",
        f"asteroid-spmamba separate {repo} mixture.wav -o separated/",
        "```",
        "",
        "## Configuration",
        "",
        "```json",
        json.dumps(config["model_args"], indent=2),
        "```",
        "",
        "## Paper",
        "",
        PAPER
        + ("." if name == "SPMamba" else f"; {name} is one of the baselines of its comparison."),
        "",
        "## Licence",
        "",
        f"`{license}`",
        "",
    ]
    content = f"---\n{card_data.to_yaml()}\n---\n\n" + "\n".join(lines)
    return ModelCard(content)


def save_pretrained(
    model: torch.nn.Module,
    folder: Union[str, os.PathLike],
    *,
    infos: Optional[Mapping[str, Any]] = None,
    overwrite_card: bool = False,
    asteroid_file: bool = True,
    **card_kwargs,
) -> Path:
    """Write ``model.safetensors``, ``config.json``, ``README.md`` and Asteroid's ``pytorch_model.bin``
    into ``folder``, atomically.

    Everything is written to a temporary folder beside ``folder`` first. A new (or empty) ``folder``
    is then renamed into place in one step; into an existing folder each file is moved with
    ``os.replace`` (weights first, ``config.json`` last), other files there are left alone. On
    any error the temporary folder is removed and ``folder`` is untouched.

    Args:
        model: an Asteroid model (``get_model_args`` + ``state_dict``).
        folder: destination folder.
        infos: extra JSON metadata stored under ``"infos"`` in ``config.json``.
        overwrite_card: replace an existing ``README.md`` (by default a hand-edited card is kept).
        asteroid_file: also write ``pytorch_model.bin`` for Asteroid's own loader (twice the bytes;
            the models shipped inside the package leave it out).
        **card_kwargs: :func:`make_model_card` arguments (``repo_id``, ``datasets``, ``metrics``,
            ``license``, ``description``, ``language``, ``tags``, ``training``).

    Returns:
        The folder's path.
    """
    folder = Path(folder).expanduser()
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = work_path(folder, "partial")
    tmp.mkdir()  # mkdir (not mkdtemp) so permissions follow the umask
    try:
        _write_model_files(model, tmp, infos, asteroid_file)
        make_model_card(model, **card_kwargs).save(str(tmp / CARD_NAME))
        try:
            os.rmdir(folder)  # an empty destination may be replaced by the rename below
        except OSError:
            pass
        if not folder.exists():
            os.replace(tmp, folder)
            return folder
        keep_card = (folder / CARD_NAME).exists() and not overwrite_card
        if not asteroid_file and (folder / LEGACY_WEIGHTS_NAME).exists():
            os.remove(folder / LEGACY_WEIGHTS_NAME)  # an older model's: Asteroid would load it
        for name in (WEIGHTS_NAME, LEGACY_WEIGHTS_NAME, CARD_NAME, CONFIG_NAME):
            if (name == CARD_NAME and keep_card) or not (tmp / name).exists():
                continue
            os.replace(tmp / name, folder / name)
        return folder
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def push_to_hub(
    model: torch.nn.Module,
    repo_id: str,
    *,
    commit_message: str = "Upload asteroid model",
    private: Optional[bool] = None,
    token: Optional[str] = None,
    branch: Optional[str] = None,
    create_pr: Optional[bool] = None,
    infos: Optional[Mapping[str, Any]] = None,
    **card_kwargs,
) -> str:
    """Save ``model`` (see :func:`save_pretrained`) and upload it to the Hub in one commit.

    Creates the repository if needed. ``card_kwargs`` go to :func:`make_model_card` (``repo_id``
    defaults to this one). Returns the commit URL.
    """
    import tempfile

    card_kwargs.setdefault("repo_id", repo_id)
    with tempfile.TemporaryDirectory() as tmp:
        saved = save_pretrained(model, Path(tmp) / "model", infos=infos, **card_kwargs)
        return upload_folder(
            saved,
            repo_id,
            commit_message=commit_message,
            private=private,
            token=token,
            branch=branch,
            create_pr=create_pr,
        )


def upload_folder(
    folder: Union[str, os.PathLike],
    repo_id: str,
    *,
    commit_message: str = "Upload asteroid model",
    private: Optional[bool] = None,
    token: Optional[str] = None,
    branch: Optional[str] = None,
    create_pr: Optional[bool] = None,
) -> str:
    """Upload a :func:`save_pretrained` folder to the Hub in one commit (creating the repository if
    needed); returns the commit URL."""
    api = HfApi(token=token)
    repo_id = api.create_repo(repo_id=repo_id, private=private, exist_ok=True).repo_id
    commit = api.upload_folder(
        repo_id=repo_id,
        repo_type="model",
        folder_path=str(folder),
        commit_message=commit_message,
        revision=branch,
        create_pr=create_pr,
    )
    return str(getattr(commit, "commit_url", commit))


# --------------------------------------------------------------------------------------------
# Asteroid's own loader
# --------------------------------------------------------------------------------------------
def teach_asteroid_folders() -> None:
    """Let ``asteroid.models.BaseModel.from_pretrained`` take a folder (see the module docstring).

    Wraps the ``cached_download`` that ``asteroid.models.base_models`` imported: a local folder
    resolves to its Asteroid-format file; anything else goes to Asteroid's function unchanged.
    Idempotent.
    """
    from asteroid.models import base_models

    original = base_models.cached_download
    if getattr(original, "_reads_folders", False):
        return

    def cached_download(filename_or_url):
        path = (
            Path(os.fspath(filename_or_url)).expanduser()
            if isinstance(filename_or_url, (str, os.PathLike))
            else None
        )
        if path is not None and path.is_dir():
            for name in LEGACY_FOLDER_FILES:
                if (path / name).is_file():
                    return str(path / name)
            raise FileNotFoundError(
                f"Asteroid's loader found none of {', '.join(LEGACY_FOLDER_FILES)} in {path}. A folder "
                f"holding only {WEIGHTS_NAME} (saved by an earlier asteroid_spmamba, or a shipped model) loads "
                "with asteroid_spmamba.load_model(folder); save it again with save_pretrained to add "
                f"{LEGACY_WEIGHTS_NAME} for Asteroid."
            )
        if path is not None and path.suffix == ".safetensors" and path.is_file():
            raise ValueError(
                f"Asteroid's loader reads PyTorch files only, not {path.name}: pass the folder (Asteroid then "
                f"reads its {LEGACY_WEIGHTS_NAME}) or load it with asteroid_spmamba.load_model."
            )
        return original(filename_or_url)

    cached_download._reads_folders = True
    cached_download.__wrapped__ = original
    base_models.cached_download = cached_download


# --------------------------------------------------------------------------------------------
# Mixin for the package's models
# --------------------------------------------------------------------------------------------
class AsteroidHubMixin(
    ModelHubMixin,
    library_name="asteroid",
    tags=list(CARD_TAGS),
    pipeline_tag="audio-to-audio",
    repo_url="https://github.com/asteroid-team/asteroid",
):
    """Hub methods for Asteroid models: ``from_pretrained``, ``save_pretrained``, ``push_to_hub``.

    List it first among the bases of a model class (before Asteroid's ``BaseModel``), so its
    ``from_pretrained`` replaces Asteroid's. See the module docstring for formats and for which
    ``ModelHubMixin`` methods are reused or overridden.
    """

    @classmethod
    def from_pretrained(
        cls,
        pretrained_model_conf_or_path: PathOrConf,
        *,
        revision: Optional[str] = None,
        cache_dir: Optional[Union[str, os.PathLike]] = None,
        force_download: bool = False,
        token: Optional[Union[str, bool]] = None,
        local_files_only: bool = False,
        **overrides,
    ):
        """Load a pretrained model; see :func:`asteroid_spmamba.hub.from_pretrained`."""
        return from_pretrained(
            cls,
            pretrained_model_conf_or_path,
            revision=revision,
            cache_dir=cache_dir,
            force_download=force_download,
            token=token,
            local_files_only=local_files_only,
            **overrides,
        )

    @classmethod
    def _from_pretrained(
        cls,
        *,
        model_id,
        revision,
        cache_dir,
        force_download,
        local_files_only,
        token,
        **model_kwargs,
    ):
        return from_pretrained(
            cls,
            model_id,
            revision=revision,
            cache_dir=cache_dir,
            force_download=force_download,
            token=token,
            local_files_only=local_files_only,
            **model_kwargs,
        )

    def _save_pretrained(self, save_directory: Path) -> None:
        _write_model_files(self, Path(save_directory))

    def save_pretrained(
        self,
        save_directory: Union[str, os.PathLike],
        *,
        config: Optional[Mapping[str, Any]] = None,
        repo_id: Optional[str] = None,
        push_to_hub: bool = False,
        model_card_kwargs: Optional[dict[str, Any]] = None,
        **push_to_hub_kwargs,
    ) -> Optional[str]:
        """Save atomically (see :func:`asteroid_spmamba.hub.save_pretrained`); optionally push.

        ``config`` is stored under ``"infos"`` in ``config.json``; ``model_card_kwargs`` go to
        :func:`make_model_card`.
        """
        card_kwargs = dict(model_card_kwargs or {})
        if repo_id is not None:
            card_kwargs.setdefault("repo_id", repo_id)
        save_pretrained(self, save_directory, infos=config, **card_kwargs)
        if push_to_hub:
            return self.push_to_hub(
                repo_id or Path(save_directory).name,
                config=config,
                model_card_kwargs=card_kwargs,
                **push_to_hub_kwargs,
            )
        return None

    def push_to_hub(
        self,
        repo_id: str,
        *,
        config: Optional[Mapping[str, Any]] = None,
        commit_message: str = "Upload asteroid model",
        private: Optional[bool] = None,
        token: Optional[str] = None,
        branch: Optional[str] = None,
        create_pr: Optional[bool] = None,
        model_card_kwargs: Optional[dict[str, Any]] = None,
    ) -> str:
        """Upload to the Hub (see :func:`asteroid_spmamba.hub.push_to_hub`); returns the commit URL."""
        return push_to_hub(
            self,
            repo_id,
            commit_message=commit_message,
            private=private,
            token=token,
            branch=branch,
            create_pr=create_pr,
            infos=config,
            **dict(model_card_kwargs or {}),
        )

    def generate_model_card(self, *args, **kwargs) -> ModelCard:
        return make_model_card(self, *args, **kwargs)
