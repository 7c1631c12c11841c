"""Normalisations of 4D ``(batch, channels, frames, freqs)`` feature maps used by TF-GridNet."""
from typing import Tuple

import torch
import torch.nn as nn


def _normalize(x: torch.Tensor, dims: Tuple[int, ...], gamma, beta, eps: float) -> torch.Tensor:
    mean = x.mean(dim=dims, keepdim=True)
    var = x.var(dim=dims, unbiased=False, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * gamma + beta


class LayerNorm4D(nn.Module):
    """Normalise over channels at every (frame, freq) point; per-channel gain and bias.

    Parameters ``gamma``/``beta`` are shaped ``(1, C, 1, 1)`` (TF-GridNet's ``LayerNormalization4D``).
    """

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.gamma = nn.Parameter(torch.ones(1, channels, 1, 1))
        self.beta = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4:
            raise ValueError(f"Expected a 4D (batch, channels, frames, freqs) tensor, got {x.ndim}D")
        return _normalize(x, (1,), self.gamma, self.beta, self.eps)


class LayerNorm4DCF(nn.Module):
    """Normalise over channels and frequencies for every frame; gain and bias per (channel, freq).

    Parameters are shaped ``(1, C, 1, F)`` (TF-GridNet's ``LayerNormalization4DCF``).
    """

    def __init__(self, channels: int, n_freqs: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.gamma = nn.Parameter(torch.ones(1, channels, 1, n_freqs))
        self.beta = nn.Parameter(torch.zeros(1, channels, 1, n_freqs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4:
            raise ValueError(f"Expected a 4D (batch, channels, frames, freqs) tensor, got {x.ndim}D")
        return _normalize(x, (1, 3), self.gamma, self.beta, self.eps)
