"""SPMamba and its baselines for the Asteroid speech-separation toolkit."""

from ._version import __version__
from .inference import separate_array, separate_file
from .loading import list_pretrained, load_model
from .mamba import set_scan_backend
from .models import SPMamba
from .models.spmamba_original import convert_original
from .streaming import StreamingSeparator

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
