"""Model files: read and write a model's configuration and weights, in every
format the package reads.

Formats
    * **This package's format** (a folder): ``model.safetensors`` (the state
      dict) + ``config.json``::

          {"architecture": "SPMamba", "model_args": {...}, "sample_rate": 8000,
           "asteroid_spmamba_version": "0.1.0", "software_versions": {...}}

      plus, for Asteroid's own loader, ``pytorch_model.bin``: the same weights as Asteroid's package
      dict (``model_name``, ``model_args``, ``state_dict``, plain strings in ``infos``, so
      ``torch.load(weights_only=True)`` reads it). It doubles the folder's size; this package's
      loader never reads it when ``model.safetensors`` is there. The configuration is also stored in
      the safetensors header (key ``asteroid_spmamba_config``) so a lone ``.safetensors`` file is
      self-contained.
    * **Asteroid's legacy single file** (what ``model.serialize()`` + ``torch.save`` write, e.g. a
      recipe's ``best_model.pth``, or ``pytorch_model.bin`` in the Hub repositories published for
      Asteroid): a dict with ``model_name``, ``state_dict`` and ``model_args``.

    The architecture named in the file decides the class (through ``asteroid.models.get``, where
    this package registers its models): :func:`model_from_package` refuses a file of another
    architecture than the class asked for, and takes any registered one when no class is given.

Safety
    Files are never unpickled with code execution: weights are read with ``safetensors`` or
    ``torch.load(..., weights_only=True)``. A legacy file that needs full unpickling is refused
    with an explanation.

This module reads local files only; downloads are :mod:`asteroid_spmamba.hub`'s (Hub repositories)
and :mod:`asteroid_spmamba.releases`' (the original authors' checkpoints, URLs), and names are
resolved by :mod:`asteroid_spmamba.loading`.
"""

import contextlib
import json
import os
import pickle
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Optional, Union

import asteroid
import huggingface_hub
import torch
from asteroid import models as asteroid_models
from huggingface_hub import constants
from safetensors import safe_open
from safetensors.torch import save_file
from torch.torch_version import TorchVersion

from ._version import __version__
from .files import set_new_file_mode
from .levels import mixture_has_noise, removes_noise

CONFIG_NAME = constants.CONFIG_NAME  # "config.json"
WEIGHTS_NAME = constants.SAFETENSORS_SINGLE_FILE  # "model.safetensors"
LEGACY_WEIGHTS_NAME = constants.PYTORCH_WEIGHTS_NAME  # "pytorch_model.bin" (Asteroid's Hub repos)
# Legacy file names tried, in order, in a local folder without our format.
LEGACY_FOLDER_FILES = (LEGACY_WEIGHTS_NAME, "model.pth", "best_model.pth")
SAFETENSORS_CONFIG_KEY = "asteroid_spmamba_config"
_LEGACY_KEYS = ("model_name", "state_dict", "model_args")

PathOrConf = Union[str, os.PathLike, Mapping[str, Any]]


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------
@dataclass
class Package:
    """What a model file holds, whatever its format."""

    architecture: str
    model_args: dict[str, Any]
    state_dict: dict[str, torch.Tensor]
    source: str  # for error messages: where it came from
    # trained on noisy mixtures: levels.match_mixture then gives the outputs no residual
    removes_noise: bool = False


def first_line(err: BaseException, limit: int = 240) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def read_json(path: Union[str, Path], source: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(
            f"{CONFIG_NAME} of {source} is not readable JSON ({first_line(e)})."
        ) from e
    if not isinstance(data, dict):
        raise ValueError(
            f"{CONFIG_NAME} of {source} must hold a JSON object, got {type(data).__name__}."
        )
    return data


def is_our_config(config: Mapping[str, Any]) -> bool:
    return "architecture" in config and "model_args" in config


def read_safetensors(path: Union[str, Path], source: str):
    """Tensors and header metadata of a safetensors file, with a clear error if it is damaged."""
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            metadata = dict(f.metadata() or {})
            tensors = {key: f.get_tensor(key) for key in f.keys()}
    except Exception as e:  # SafetensorError, OSError, ... all mean the same to the user
        raise ValueError(
            f"{source}: {Path(path).name} is not a valid safetensors file ({first_line(e)}). It is "
            "truncated or corrupted: download it again (from_pretrained(..., force_download=True)) "
            "or save the model again with save_pretrained."
        ) from e
    return tensors, metadata


def package_from_config(config: Mapping[str, Any], state_dict, source: str) -> Package:
    if not is_our_config(config):
        raise ValueError(
            f"{CONFIG_NAME} of {source} lacks 'architecture' and/or 'model_args' (found keys "
            f"{sorted(config)}); it was not written by asteroid_spmamba.hub.save_pretrained."
        )
    model_args = dict(config["model_args"] or {})
    if "sample_rate" not in model_args and config.get("sample_rate") is not None:
        model_args["sample_rate"] = config["sample_rate"]
    return Package(
        str(config["architecture"]),
        model_args,
        state_dict,
        source,
        removes_noise=bool(config.get("removes_noise", False)),
    )


def package_from_dict(conf: Mapping[str, Any], source: str, sample_rate=None) -> Package:
    if not isinstance(conf, Mapping):
        raise ValueError(
            f"{source} holds a {type(conf).__name__}, not an Asteroid model package (a dict with "
            f"keys {', '.join(_LEGACY_KEYS)})."
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
    infos = conf.get("infos") if isinstance(conf.get("infos"), Mapping) else {}
    data = (infos.get("training_config") or {}).get("data") or {}  # written by training.train
    return Package(
        str(conf["model_name"]),
        model_args,
        dict(conf["state_dict"]),
        source,
        removes_noise=bool(infos.get("removes_noise")) or mixture_has_noise(data),
    )


def torch_file_problem(path: Union[str, os.PathLike]) -> Optional[str]:
    """Why ``path`` cannot be a ``torch.save`` file (empty, a truncated zip archive, not a zip
    archive nor a pickle), judged from its bytes; ``None`` when it may be one."""
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


def torch_load(path: Union[str, Path, BinaryIO], source: str):
    if not hasattr(path, "read"):
        problem = torch_file_problem(path)
        if problem:
            raise ValueError(
                f"{source} is not a readable PyTorch file: it {problem}; download or copy it "
                "again, or check the path."
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
                f"{source} contains pickled Python objects besides tensors and plain containers; "
                "it is not loaded because unpickling them can run arbitrary code. If you trust the "
                "file, load it yourself (torch.load(path, weights_only=False)) and pass the "
                "resulting dict to from_pretrained, or re-save it with save_pretrained."
            ) from e
        raise ValueError(f"{source} is not a readable PyTorch file ({first_line(e)}).") from e
    except Exception as e:
        raise ValueError(
            f"{source} is not a readable PyTorch file ({first_line(e)}); it may be truncated or "
            "corrupted: download or copy it again."
        ) from e


def package_from_file(path: Path, source: str, sample_rate=None) -> Package:
    """A single file: our ``.safetensors`` (config in its header or beside it) or a legacy dict."""
    if path.stat().st_size == 0:
        raise ValueError(f"{source} is an empty file; download or copy it again.")
    if path.suffix == ".safetensors":
        tensors, metadata = read_safetensors(path, source)
        if SAFETENSORS_CONFIG_KEY in metadata:
            try:
                config = json.loads(metadata[SAFETENSORS_CONFIG_KEY])
            except json.JSONDecodeError as e:
                raise ValueError(
                    f"{source}: the configuration in the safetensors header is not JSON."
                ) from e
        elif (path.parent / CONFIG_NAME).is_file():
            config = read_json(path.parent / CONFIG_NAME, source)
        else:
            raise FileNotFoundError(
                f"{source} has no model configuration: neither a '{SAFETENSORS_CONFIG_KEY}' entry "
                f"in its header nor a {CONFIG_NAME} beside it. Keep the {CONFIG_NAME} written by "
                "save_pretrained next to the weights."
            )
        return package_from_config(config, tensors, source)
    return package_from_dict(torch_load(path, source), source, sample_rate)


def package_from_folder(folder: Path, source: str) -> Package:
    config_path, weights_path = folder / CONFIG_NAME, folder / WEIGHTS_NAME
    config = read_json(config_path, source) if config_path.is_file() else None
    if config is not None and is_our_config(config):
        if not weights_path.is_file():
            raise FileNotFoundError(f"{source} has {CONFIG_NAME} but no {WEIGHTS_NAME} next to it.")
        tensors, _ = read_safetensors(weights_path, source)
        return package_from_config(config, tensors, source)
    for name in LEGACY_FOLDER_FILES:
        if (folder / name).is_file():
            return package_from_file(folder / name, f"{source}/{name}")
    if weights_path.is_file():  # the safetensors header carries the configuration too
        return package_from_file(weights_path, f"{source}/{WEIGHTS_NAME}")
    if config is not None:
        package_from_config(config, {}, source)  # raises: says which keys config.json lacks
    raise FileNotFoundError(
        f"No model found in folder {source}: looked for {CONFIG_NAME} + {WEIGHTS_NAME} "
        f"(asteroid_spmamba format) and {', '.join(LEGACY_FOLDER_FILES)} (Asteroid format)."
    )


def _resolve_class(architecture: str, cls: Optional[type], source: str) -> type:
    # importing asteroid_spmamba.models registers this package's models with asteroid.models; until
    # then, asteroid.models.get imports it when it does not know a name (the package's __init__
    # wraps it, asteroid_spmamba._lazy_asteroid, before any function of this module can run)
    if cls is not None and cls.__name__.lower() == architecture.lower():
        return cls
    try:
        found = asteroid_models.get(architecture)
    except ValueError:
        found = None
    if not (isinstance(found, type) and issubclass(found, torch.nn.Module)):
        raise ValueError(
            f"{source} holds a model of architecture {architecture!r}, which is not registered "
            "with asteroid.models: import the package that defines it (it must call "
            "asteroid.models.register_model) before loading."
        )
    if cls is not None and not issubclass(found, cls):
        raise ValueError(
            f"{source} contains a model of class {found.__name__}; {cls.__name__}.from_pretrained "
            f"loads only {cls.__name__} (and its subclasses). Load it with "
            f"{found.__name__}.from_pretrained(...) or asteroid_spmamba.load_model(...), which "
            "take the class from the file."
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
            f"The weights of {source} do not match the {type(model).__name__} "
            "built from its configuration; "
            + "; ".join(parts)
            + ". The configuration and the weights come from different models: fix model_args (or "
            "the keyword overrides) or save the model again with save_pretrained."
        )
    model.load_state_dict(state_dict, strict=True)


def model_from_package(cls: Optional[type], package: Package, **overrides) -> torch.nn.Module:
    """The model that ``package`` describes, weights loaded, in eval mode.

    ``cls`` is the class asked for: the package's architecture must be it or a subclass; ``None``
    accepts any architecture registered with ``asteroid.models``. ``overrides`` replace saved
    constructor arguments (e.g. ``scan_backend="torch"``).
    """
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
    if package.removes_noise:
        model.removes_noise = True
    return model.eval()


def local_package(source: PathOrConf) -> Optional[Package]:
    """The package of a serialized model dict, or of an existing local folder or file; ``None`` for
    anything else (a name: see :mod:`asteroid_spmamba.loading`)."""
    if isinstance(source, Mapping):
        return package_from_dict(source, "the given model dict")
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(
            "from_pretrained expects a Hub repository id, a local folder or file, or a serialized "
            f"model dict; got {type(source).__name__}."
        )
    path = Path(os.fspath(source)).expanduser()
    if path.is_dir():
        return package_from_folder(path, str(path))
    if path.is_file():
        return package_from_file(path, str(path))
    return None


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------
def software_versions() -> dict[str, str]:
    return {  # str(): torch.__version__ is a TorchVersion, which
        # torch.load(weights_only=True) refuses
        "asteroid_spmamba": __version__,
        "asteroid": str(asteroid.__version__),
        "torch": str(torch.__version__),
        "huggingface_hub": str(huggingface_hub.__version__),
    }


def model_config(
    model: torch.nn.Module, infos: Optional[Mapping[str, Any]] = None
) -> dict[str, Any]:
    """The ``config.json`` content of ``model`` (raises ``TypeError`` if its
    arguments are not JSON)."""
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
        "asteroid_spmamba_version": __version__,
        "software_versions": software_versions(),
    }
    if removes_noise(model):
        config["removes_noise"] = True
    if infos:
        config["infos"] = dict(infos)
    try:
        json.dumps(config)
    except (TypeError, ValueError) as e:
        raise TypeError(
            f"{type(model).__name__}.get_model_args() (or infos) returned values that are not "
            f"plain JSON ({e}); return only numbers, strings, booleans, None, lists and dicts."
        ) from e
    return config


def plain_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
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


def write_model_files(
    model: torch.nn.Module,
    folder: Path,
    infos: Optional[Mapping[str, Any]] = None,
    asteroid_file: bool = True,
) -> dict[str, Any]:
    """Write ``model.safetensors``, ``config.json`` and (``asteroid_file``) Asteroid's
    ``pytorch_model.bin`` into an existing folder."""
    config = model_config(model, infos)
    config_text = json.dumps(config, indent=2, sort_keys=False)
    state = plain_state_dict(model)
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
            "infos": {
                k: config[k] for k in ("software_versions", "infos", "removes_noise") if k in config
            },
        }
        torch.save(package, folder / LEGACY_WEIGHTS_NAME)
    (folder / CONFIG_NAME).write_text(config_text + "\n", encoding="utf-8")
    return config
