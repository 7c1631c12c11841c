"""Models of asteroid_spmamba. Importing this module imports every model module of the package; each
declares its model once (:func:`~asteroid_spmamba.models.registry.register`: zoo row, presets,
capabilities, registration with ``asteroid.models``), and this package's classes are exported here.
It also lets Asteroid's ``BaseModel.from_pretrained`` read folders
(:func:`~asteroid_spmamba.hub.teach_asteroid_folders`). Until it is imported, Asteroid's loader
imports it when it needs it (:mod:`asteroid_spmamba._lazy_asteroid`, whose wrappers go now)."""

from .. import _lazy_asteroid
from ..hub import teach_asteroid_folders
from . import registry

_lazy_asteroid.uninstall()
registry.discover()
globals().update(registry.exports())
__all__ = list(registry.exports())  # SPMamba, TFGridNet, AFRCNN, BSRNN, TDANet, ...

teach_asteroid_folders()
