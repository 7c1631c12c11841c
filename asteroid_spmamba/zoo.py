"""Model zoo: the eight models of the SPMamba paper's Echo2Mix table, by name and preset.

::

    from asteroid_spmamba import zoo
    zoo.names()                       # ['convtasnet', 'dprnn', 'sudormrf', 'afrcnn', 'tdanet', ...]
    model = zoo.build("dprnn")        # the configuration of the paper's row (16 kHz, 2 speakers)
    zoo.config("dprnn")               # its keyword arguments (also "small", "tiny": shrunk for
                                      # CPU runs)
    zoo.PAPER_TABLE["dprnn"]          # {'label': 'DPRNN', 'params_m': 2.72, 'macs_g': 85.32}
    zoo.notes("dprnn")                # how the configuration was found, differences from the paper

Conv-TasNet, DPRNN-TasNet and SuDoRM-RF are Asteroid's own classes (``asteroid.models``);
A-FRCNN, TDANet, BSRNN, TF-GridNet and SPMamba are this package's.

Each row is declared once, in its model's file (:func:`asteroid_spmamba.models.registry.register`:
the class, the paper's figures, the notes, the pinned parameter count; Asteroid's classes in
``models/asteroid_classes.py``, which also tells how their configurations were found); the zoo reads
the registry.

References
    [1] K. Li, G. Chen, R. Yang, X. Hu, "SPMamba: State-space model is all you need in speech
    separation", arXiv:2404.02063, 2024 (Table: Echo2Mix).
"""

import inspect
from typing import Any, Optional

import torch.nn as nn

from .models import registry

__all__ = [
    "PAPER_TABLE",
    "ModelUnavailable",
    "names",
    "presets",
    "config",
    "build",
    "notes",
    "model_class",
    "expected_params",
]

# The SPMamba paper's Echo2Mix table: Params (M) and MACs (G per second of 16 kHz audio). The
# authors later corrected SPMamba's MACs to 238.21 G/s, counting the selective scan.
PAPER_TABLE: dict[str, dict[str, Any]] = {s.name: dict(s.paper) for s in registry.specs()}


ModelUnavailable = registry.ModelUnavailable  # a row's class cannot be imported


def names() -> list[str]:
    """The zoo's model names, in the order of the paper's table."""
    return [s.name for s in registry.specs()]


PAPER_PRESETS = ("echo2mix",)  # the configurations of the paper's tables (16 kHz, 2 speakers)
SIZES = ("small", "tiny")  # every row shrunk, same architecture, for CPU runs and smoke tests


def presets(name: str) -> list[str]:
    """The paper's presets of ``name`` (:func:`config` also takes the :data:`SIZES`)."""
    registry.spec(name)
    return list(PAPER_PRESETS)


def _preset_key(name: str, preset: str) -> str:
    registry.spec(name)
    key = preset.lower().replace("_", "-") if isinstance(preset, str) else preset
    if key not in PAPER_PRESETS + SIZES:
        raise ValueError(
            f"Unknown preset {preset!r} for zoo model {name!r}; available: "
            f"{list(PAPER_PRESETS + SIZES)}. Pass the configuration explicitly as keyword "
            "arguments of build() to use other settings."
        )
    return key


def config(name: str, preset: str = "echo2mix") -> dict[str, Any]:
    """The keyword arguments that :func:`build` passes to the model class (a copy): the class's own
    preset (``Class.PRESETS``) or, for Asteroid's classes, the registration's."""
    return registry.spec(name).config(_preset_key(name, preset))


def notes(name: str, preset: str = "echo2mix") -> str:
    """How the configuration of ``name`` was chosen and how it differs from the paper."""
    return registry.spec(name).notes if _preset_key(name, preset) == "echo2mix" else ""


def expected_params(name: str, preset: str = "echo2mix") -> Optional[int]:
    """Exact parameter count of the preset with this package's classes (``None`` if not pinned)."""
    return registry.spec(name).params if _preset_key(name, preset) == "echo2mix" else None


def model_class(name: str) -> type:
    """Import and return the model class of ``name``.

    Raises:
        ModelUnavailable: the class cannot be imported; the message says why.
    """
    return registry.spec(name).cls


def build(name: str, preset: str = "echo2mix", **overrides) -> nn.Module:
    """Build the model of the paper's row ``name`` with the ``preset`` configuration.

    Args:
        name: one of :func:`names`.
        preset: configuration set (``"echo2mix"``: 16 kHz, 2 speakers, the paper's table).
        **overrides: keyword arguments replacing those of the preset (e.g. ``n_src=3``).

    Returns:
        An Asteroid ``BaseModel`` (freshly initialised).

    Raises:
        ValueError: unknown name or preset.
        TypeError: an override the class does not take.
        ModelUnavailable: the model class cannot be imported.
    """
    kwargs = config(name, preset)
    cls = model_class(name)
    accepted = {
        p.name
        for p in inspect.signature(cls.__init__).parameters.values()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self"
    }
    unknown = sorted(set(overrides) - accepted)
    if unknown:
        raise TypeError(
            f"{cls.__name__} (zoo model {name!r}) takes no argument(s) {unknown}; "
            f"it takes {sorted(accepted)}."
        )
    kwargs.update(overrides)
    return cls(**kwargs)
