"""SPMamba and its baselines for the Asteroid speech-separation toolkit."""

from .convert import convert_original
from .hub import load_model
from .inference import separate_array, separate_file
from .mamba import set_scan_backend
from .models import SPMamba
from .pretrained import list_pretrained
from .streaming import StreamingSeparator

__version__ = "0.1.0"
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
