"""Models of asteroid_spmamba. Importing this module imports every model module of the package; each
declares its model once (:func:`~asteroid_spmamba.models.registry.register`: zoo row, presets,
capabilities, registration with ``asteroid.models``), and this package's classes are exported here.
It also lets Asteroid's ``BaseModel.from_pretrained`` read folders
(:func:`~asteroid_spmamba.hub.teach_asteroid_folders`)."""

from ..hub import teach_asteroid_folders
from . import registry

registry.discover()
globals().update(registry.exports())
__all__ = list(registry.exports())  # SPMamba, TFGridNet, AFRCNN, BSRNN, TDANet, ...

teach_asteroid_folders()
