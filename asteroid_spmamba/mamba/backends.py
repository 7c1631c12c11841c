"""The scan-backend table: every backend by name, and which one ``"auto"`` means on a device.

A backend registers itself once, from the module that holds its kernels, with :func:`register`:

* ``name``: what ``backend=`` / ``scan_backend=`` / ``$ASTEROID_SPMAMBA_SCAN_BACKEND`` take;
* ``scan``: its selective scan, with the signature of
  :func:`~asteroid_spmamba.mamba.scan.selective_scan` (without ``backend``);
* ``require(device)``: raises, with the reason and the fix, unless it can run on tensors on
  ``device`` (``None``: runs everywhere); ``available()``: whether its kernels load on this machine,
  without raising (``"auto"`` asks it);
* ``auto``: ``{device type: rank}`` where ``"auto"`` may pick it, lowest rank first (the first whose
  kernels load wins; ``"torch"`` when none does);
* ``block`` (optional): its fused path for a whole Mamba block, ``block(mamba, xz, A, D, dt_bias)``
  with ``xz = mamba.in_proj(hidden_states)`` ``(batch, length, 2 * d_inner)``, returning the block's
  output; without it :class:`~asteroid_spmamba.mamba.Mamba` runs its own convolution and projections
  around ``scan``;
* ``stateful_scan`` (optional): the scan :meth:`Mamba.step` uses (it takes ``initial_state``);
  without it, the chunked PyTorch scan.

:func:`resolve` turns a requested name into the :class:`ScanBackend` that runs; ``Mamba`` calls it
once per requested name and device and keeps the result. A new backend is one module that registers
itself, named in :data:`BACKEND_MODULES`.
"""

import dataclasses
import importlib
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Optional

import torch

BACKEND_ENV_VAR = "ASTEROID_SPMAMBA_SCAN_BACKEND"
AUTO = "auto"
# the backend "auto" falls back to: it runs on any device
FALLBACK = "torch"
# the modules that register backends (imported on the table's first use)
BACKEND_MODULES = ("scan", "cpu_scan", "cuda_scan", "triton_block")


def _always() -> bool:
    return True


@dataclass(frozen=True, eq=False)
class ScanBackend:
    """One row of the table (see the module docstring)."""

    name: str
    scan: Callable
    require: Optional[Callable[[torch.device], None]] = None
    available: Callable[[], bool] = _always
    auto: dict = field(default_factory=dict)
    block: Optional[Callable] = None
    stateful_scan: Optional[Callable] = None

    def __reduce__(self):  # pickled (a model saved whole) and deep-copied by name
        return (get_backend, (self.name,))

    def __repr__(self) -> str:
        return f"ScanBackend({self.name!r})"


_TABLE: dict[str, ScanBackend] = {}
_loaded = False


def register(name: str, scan: Callable, **kwargs) -> ScanBackend:
    """Add (or replace) the backend ``name``; keyword arguments as the fields of
    :class:`ScanBackend`."""
    backend = ScanBackend(name, scan, **kwargs)
    _TABLE[name] = backend
    return backend


@contextmanager
def replaced(name: str, **changes):
    """Within the ``with`` block, the row ``name`` with ``changes`` (fields of
    :class:`ScanBackend`), for instrumentation (:func:`asteroid_spmamba.complexity.count_macs`
    counts the scans this way). A
    :class:`~asteroid_spmamba.mamba.Mamba` bound to the row before the block keeps it until its
    backend is set again."""
    old = _table()[name]
    _TABLE[name] = dataclasses.replace(old, **changes)
    try:
        yield _TABLE[name]
    finally:
        _TABLE[name] = old


def _table() -> dict[str, ScanBackend]:
    global _loaded
    if not _loaded:
        for module in BACKEND_MODULES:
            importlib.import_module(f"{__package__}.{module}")
        _loaded = True
    return _TABLE


def backend_names() -> tuple[str, ...]:
    """Every name ``backend=`` takes, ``"auto"`` first."""
    return (AUTO, *sorted(_table()))


def get_backend(name: str) -> ScanBackend:
    """The registered backend ``name`` (no availability check)."""
    return _table()[name]


def requested(backend: Optional[str]) -> str:
    """The name asked for: ``backend``, else ``$ASTEROID_SPMAMBA_SCAN_BACKEND``, else ``"auto"``."""
    if backend is None:
        backend = os.environ.get(BACKEND_ENV_VAR, AUTO) or AUTO
    return backend.lower()


def resolve(backend: Optional[str], device: torch.device) -> ScanBackend:
    """The backend that runs ``backend`` (a name, ``"auto"`` or ``None``) on tensors on ``device``.

    ``"auto"`` picks, among the backends registered for ``device.type``, the first whose kernels
    load; an explicit name raises (``ValueError``, ``ImportError``, ...) when it cannot run there.
    """
    name = requested(backend)
    table = _table()
    if name == AUTO:
        candidates = sorted(
            (b for b in table.values() if device.type in b.auto), key=lambda b: b.auto[device.type]
        )
        return next((b for b in candidates if b.available()), table[FALLBACK])
    if name not in table:
        raise ValueError(f"Unknown scan backend {name!r}; choose one of {backend_names()}.")
    chosen = table[name]
    if chosen.require is not None:
        chosen.require(device)
    return chosen


def resolve_backend(backend: Optional[str], device: torch.device) -> str:
    """Turn ``None``/``"auto"``/an explicit name into the name of the backend that will run on
    ``device`` (see :func:`resolve`)."""
    return resolve(backend, device).name
