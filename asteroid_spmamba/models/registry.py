"""The model registry: each model file declares its model once, with :func:`register`.

::

    register(
        TFGridNet,                      # the class (this package's or Asteroid's)
        name="tfgridnet",               # its zoo name (the row of the paper's table)
        order=7,                        # position of the row in the paper's Echo2Mix table
        paper=dict(label="TF-GridNet", params_m=14.43, macs_g=445.56),
        notes="how the configuration was found, how it differs from the paper",
        params=8_382_370,               # exact parameter count of the echo2mix preset (pinned)
        gridnet=True,                   # capabilities: GridNet fast paths (benchmark variants) ...
    )

Every module of :mod:`asteroid_spmamba.models` (but ``base``, ``registry`` and names starting with
``_``, for shared code) is imported by :func:`discover` when the package is imported, and this
package's registered classes are exported there, so a new model is its file (and its tests): the
zoo, ``asteroid.models.get``, the training configuration (``model.name``), the hub loaders, the
benchmark and the comparison recipe find it here (``--help`` texts copy its zoo names and bf16
labels into ``commands/help_text.py``, which a test checks against this registry). Capabilities:
``bf16_inference`` is the class's attribute (instances need it,
:func:`~asteroid_spmamba.models.base.inference_precision`); ``gridnet`` (the GridNet fast paths of
:func:`~asteroid_spmamba.masknn.gridnet.set_fast_paths`), ``scan`` (a choice of Mamba scan backend)
and ``for_sample_rate`` (overrides at other rates) are the registration's.
"""

import difflib
import importlib
import pkgutil
from dataclasses import dataclass
from typing import Any, Callable, Optional, Union

__all__ = [
    "ModelSpec",
    "ModelUnavailable",
    "register",
    "specs",
    "spec",
    "model_class",
    "discover",
    "exports",
    "bf16_labels",
]

# modules of this package that declare no model
_NOT_MODELS = {"base", "registry"}


class ModelUnavailable(ImportError):
    """The class of a registered model cannot be imported (a missing dependency)."""


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: its zoo row and what the tools need to know about it."""

    name: str  # zoo name
    target: Union[type, str]  # the class, or "module:Class" imported when first needed
    order: int  # position in the paper's Echo2Mix table
    paper: dict[str, Any]  # label, params_m, macs_g (and other figures) of the paper's table
    notes: str = ""  # how the echo2mix configuration was found; differences from the paper
    params: Optional[int] = None  # exact parameter count of the echo2mix preset (regression pin)
    # For classes that cannot hold PRESETS (Asteroid's): the paper's configuration ("echo2mix") and
    # the shrunk sizes as overrides of it ("small", "tiny"). None: the class's own PRESETS.
    presets: Optional[dict[str, dict[str, Any]]] = None
    gridnet: bool = False  # GridNet fast paths (the benchmark's variants)
    scan: bool = False  # Mamba scan backend choice (the benchmark's backends)
    # overrides of the echo2mix configuration at another sample rate (e.g. BSRNN's band widths)
    for_sample_rate: Optional[Callable[[dict[str, Any], int], dict[str, Any]]] = None

    @property
    def cls(self) -> type:
        """The model class.

        Raises:
            ModelUnavailable: a ``"module:Class"`` target that cannot be imported.
        """
        if not isinstance(self.target, str):
            return self.target
        module_name, _, class_name = self.target.partition(":")
        try:
            return getattr(importlib.import_module(module_name), class_name)
        except (ImportError, AttributeError) as err:
            raise ModelUnavailable(
                f"Zoo model {self.name!r} needs {module_name}.{class_name}, which cannot be "
                f"imported ({type(err).__name__}: {err})."
            ) from err

    @property
    def class_name(self) -> str:
        return (
            self.target.rpartition(":")[2] if isinstance(self.target, str) else self.target.__name__
        )

    @property
    def label(self) -> str:
        return self.paper.get("label", self.name)

    @property
    def bf16_inference(self) -> bool:
        """Whether "auto" inference precision runs the model under bf16 autocast on GPUs."""
        return bool(getattr(self.cls, "bf16_inference", False))

    def config(self, preset: str = "echo2mix") -> dict[str, Any]:
        """The constructor arguments of ``preset`` (a copy)."""
        if self.presets is None:
            return self.cls.preset(preset)
        full = self.presets["echo2mix"]
        return dict(full) if preset == "echo2mix" else {**full, **self.presets[preset]}


_SPECS: dict[str, ModelSpec] = {}


def _key(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "")


def register(
    cls: Union[type, str], *, name: str, asteroid: bool = True, **fields
) -> Union[type, str]:
    """Declare ``cls`` (a class, or ``"module:Class"`` to import when first needed) as zoo model
    ``name`` (see :class:`ModelSpec` for ``fields``) and, with ``asteroid``, register the class with
    ``asteroid.models`` (``asteroid.models.get(cls.__name__)``, Asteroid's own ``from_pretrained``).
    Returns ``cls``. Registering a name again with the same class name (a module imported again)
    replaces the registration; with another class, a ``ValueError``."""
    from asteroid import models as asteroid_models

    key = _key(name)
    spec = ModelSpec(name=key, target=cls, **fields)
    known = _SPECS.get(key)
    if known is not None and known.class_name != spec.class_name:
        raise ValueError(f"Zoo name {name!r} is taken by {known.class_name}.")
    _SPECS[key] = spec
    if asteroid and isinstance(cls, type):
        try:  # once: asteroid refuses a second registration
            asteroid_models.get(cls.__name__)
        except ValueError:
            asteroid_models.register_model(cls)
    return cls


def discover() -> None:
    """Import every model module of this package (each registers its model on import)."""
    package = importlib.import_module(__package__)
    for info in pkgutil.iter_modules(package.__path__):
        if info.name not in _NOT_MODELS and not info.name.startswith("_"):
            importlib.import_module(f"{__package__}.{info.name}")


def specs() -> list[ModelSpec]:
    """The registered models, in the order of the paper's table."""
    return sorted(_SPECS.values(), key=lambda s: s.order)


def exports() -> dict[str, type]:
    """This package's registered classes by class name (what
    ``asteroid_spmamba.models`` exports)."""
    return {
        s.class_name: s.target
        for s in specs()
        if isinstance(s.target, type) and s.target.__module__.startswith(__package__)
    }


def bf16_labels() -> list[str]:
    """Labels of this package's models that "auto" inference precision runs in bfloat16 on GPUs."""
    own = list(exports().values())
    return [s.label for s in reversed(specs()) if s.target in own and s.bf16_inference]


def spec(name: str) -> ModelSpec:
    """The registration of zoo model ``name`` (case, ``-`` and ``_`` ignored) or of its class name.

    Raises:
        ValueError: no such model, with the closest zoo name.
    """
    found = _find(name)
    if found is None:
        close = difflib.get_close_matches(_key(str(name)), list(_SPECS), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        names = [s.name for s in specs()]
        raise ValueError(f"Unknown zoo model {name!r}; choose one of {names}.{hint}")
    return found


def _find(name: str) -> Optional[ModelSpec]:
    if not isinstance(name, str):
        return None
    key = _key(name)
    for s in _SPECS.values():
        if key == s.name or name == s.class_name:
            return s
    return None


def model_class(name: str) -> type:
    """The class of ``name``: a zoo name (``"dprnn"``), a class name (``"DPRNNTasNet"``) or any
    model registered with ``asteroid.models``. The one name -> class lookup of the package (the
    zoo, ``model.name`` of the training configuration, the hub loaders).

    Raises:
        ValueError: an unknown name; the message lists the zoo names and Asteroid's models.
    """
    import asteroid.models
    import torch

    found = _find(name)
    if found is not None:
        return found.cls
    try:
        cls = asteroid.models.get(name)
    except ValueError:
        cls = None
    if isinstance(cls, type) and issubclass(cls, torch.nn.Module):
        return cls
    known = sorted(
        n
        for n, v in vars(asteroid.models).items()
        if isinstance(v, type) and issubclass(v, torch.nn.Module)
    )
    zoo = [s.name for s in specs()]
    raise ValueError(f"Unknown model {name!r}; choose a zoo name {zoo} or one of {known}.")
