"""Models of asteroid_spmamba. Importing this module registers each one with ``asteroid.models``
and lets Asteroid's ``BaseModel.from_pretrained`` read folders (:func:`~asteroid_spmamba.hub.teach_asteroid_folders`)."""

from asteroid import models as _asteroid_models

from ..hub import teach_asteroid_folders
from .afrcnn import AFRCNN
from .bsrnn import BSRNN
from .spmamba import SPMamba
from .tdanet import TDANet
from .tfgridnet import TFGridNet

__all__ = ["SPMamba", "TFGridNet", "AFRCNN", "BSRNN", "TDANet"]


def _register(*classes) -> None:
    """Register with asteroid.models.get (once: asteroid refuses a second registration)."""
    for cls in classes:
        try:
            _asteroid_models.get(cls.__name__)
        except ValueError:
            _asteroid_models.register_model(cls)


_register(SPMamba, TFGridNet, AFRCNN, BSRNN, TDANet)
teach_asteroid_folders()
