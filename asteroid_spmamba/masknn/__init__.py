"""Building blocks shared by the STFT-domain models."""

from .gridnet import BiLSTM, GridNetBlock, GridNetMasker
from .norms import LayerNorm4D, LayerNorm4DCF
from .stft import STFTDecoder, STFTEncoder

__all__ = [
    "STFTEncoder",
    "STFTDecoder",
    "GridNetBlock",
    "GridNetMasker",
    "BiLSTM",
    "LayerNorm4D",
    "LayerNorm4DCF",
]
