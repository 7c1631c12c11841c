"""Asteroid finds this package's models once ``asteroid_spmamba`` is imported, without importing
torch or Asteroid at ``import asteroid_spmamba``.

Asteroid's loader (``asteroid.models.get``, ``BaseModel.from_pretrained``, ``asteroid-infer``)
knows only the classes registered in the running process, and importing
:mod:`asteroid_spmamba.models` registers them (and lets Asteroid's loader read folders,
:func:`asteroid_spmamba.hub.teach_asteroid_folders`). That import costs torch and Asteroid, so
the package's ``__init__`` calls :func:`install` instead, which imports nothing: when
``asteroid.models`` is (or has been) imported, its ``get``, ``base_models.cached_download`` and a
module ``__getattr__`` (``from asteroid.models import SPMamba``) are wrapped so that their first
use imports :mod:`asteroid_spmamba.models` (a ``get`` only when Asteroid does not know the name).
The wrappers are removed as soon as :mod:`asteroid_spmamba.models` is imported
(:func:`uninstall`), by them or by anything else, so Asteroid then runs its own functions again.

A stdlib-only leaf: it imports :mod:`asteroid_spmamba.models` by name, at call time only.
"""

import importlib
import importlib.abc
import sys
import threading
from typing import Any, Optional

_MODELS = "asteroid_spmamba.models"
_TARGET = "asteroid.models"
_lock = threading.RLock()
# what was replaced: (module, attribute name, original value or _ABSENT, wrapper)
_patched: list[tuple[Any, str, Any, Any]] = []
_ABSENT = object()


def _register_models() -> None:
    """Import :mod:`asteroid_spmamba.models`, which registers the models (and calls
    :func:`uninstall` first)."""
    importlib.import_module(_MODELS)
    uninstall()  # in case the import above failed half-way, Asteroid keeps working


def _lazy_get(identifier):
    if _patched:  # nothing registered yet: Asteroid's own names need no import
        try:
            return _original("get")(identifier)
        except ValueError:
            pass
        _register_models()
    return sys.modules[_TARGET].get(identifier)


def _lazy_cached_download(filename_or_url):
    _register_models()  # then Asteroid's function, taught to read folders
    return sys.modules[f"{_TARGET}.base_models"].cached_download(filename_or_url)


def _lazy_getattr(name: str):
    if name.startswith("__") or not _patched:
        raise AttributeError(f"module {_TARGET!r} has no attribute {name!r}")
    _register_models()
    try:
        return sys.modules[_TARGET].__dict__[name]
    except KeyError:
        raise AttributeError(f"module {_TARGET!r} has no attribute {name!r}") from None


def _original(name: str) -> Any:
    for _, attribute, original, _ in _patched:
        if attribute == name:
            return original
    raise KeyError(name)


def _patch(asteroid_models) -> None:
    """Wrap ``asteroid.models`` (fully imported) unless this package's models are registered."""
    with _lock:
        if _patched or _MODELS in sys.modules:
            return
        base_models = sys.modules[f"{_TARGET}.base_models"]
        for module, attribute, wrapper in (
            (asteroid_models, "get", _lazy_get),
            (base_models, "cached_download", _lazy_cached_download),
            (asteroid_models, "__getattr__", _lazy_getattr),
        ):
            _patched.append((module, attribute, module.__dict__.get(attribute, _ABSENT), wrapper))
            setattr(module, attribute, wrapper)


def uninstall() -> None:
    """Restore what :func:`install` wrapped (where nothing else replaced it since) and stop
    watching for ``asteroid.models``. Called by :mod:`asteroid_spmamba.models` on import."""
    with _lock:
        sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _Finder)]
        while _patched:
            module, attribute, original, wrapper = _patched.pop()
            if module.__dict__.get(attribute) is not wrapper:
                continue
            if original is _ABSENT:
                delattr(module, attribute)
            else:
                setattr(module, attribute, original)


class _Loader(importlib.abc.Loader):
    """``asteroid.models``' own loader, then :func:`_patch`."""

    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        try:
            self.loader.exec_module(module)
        finally:  # the module keeps its own loader
            module.__loader__ = self.loader
            if module.__spec__ is not None:
                module.__spec__.loader = self.loader
        _patch(module)


class _Finder(importlib.abc.MetaPathFinder):
    """Finds ``asteroid.models`` with the other finders and hands it :class:`_Loader`."""

    def find_spec(self, fullname: str, path, target=None) -> Optional[Any]:
        if fullname != _TARGET:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _Loader(spec.loader)
                return spec
        return None


def install() -> None:
    """Make Asteroid's loader find this package's models (see the module docstring)."""
    with _lock:
        if _MODELS in sys.modules or _patched:
            return
        module = sys.modules.get(_TARGET)
        initializing = getattr(getattr(module, "__spec__", None), "_initializing", False)
        if module is not None and not initializing:
            _patch(module)
        elif not any(isinstance(f, _Finder) for f in sys.meta_path):
            sys.meta_path.insert(0, _Finder())
