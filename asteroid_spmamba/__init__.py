"""SPMamba and its baselines for the Asteroid speech-separation toolkit.

The names below are imported when first used (PEP 562), so ``import asteroid_spmamba`` imports
neither torch nor Asteroid; ``asteroid_spmamba.NAME`` also imports submodule ``NAME``. Asteroid's
loader finds this package's models as soon as it needs them (:mod:`._lazy_asteroid`).
"""

import importlib
import importlib.util

from . import _lazy_asteroid
from ._version import __version__

# public name -> the module that defines it
_EXPORTS = {
    "SPMamba": ".models",
    "convert_original": ".models.spmamba_original",
    "set_scan_backend": ".mamba",
    "load_model": ".loading",
    "separate_file": ".inference",
    "separate_array": ".inference",
    "StreamingSeparator": ".streaming",
    "list_pretrained": ".loading",
}

__all__ = [
    "SPMamba",
    "convert_original",
    "set_scan_backend",
    "load_model",
    "separate_file",
    "separate_array",
    "StreamingSeparator",
    "list_pretrained",
    "__version__",
]

_lazy_asteroid.install()


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is not None:
        value = getattr(importlib.import_module(module, __name__), name)
        globals()[name] = value
        return value
    if not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        return importlib.import_module(f"{__name__}.{name}")  # e.g. asteroid_spmamba.loading
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
