"""Normalisations of 4D ``(batch, channels, frames, freqs)`` feature maps used by TF-GridNet."""

from typing import Optional

import torch
import torch.nn as nn


def _normalize(x: torch.Tensor, dims: tuple[int, ...], gamma, beta, eps: float) -> torch.Tensor:
    dtype = x.dtype
    if dtype in (torch.float16, torch.bfloat16):  # statistics in float32 (as under autocast)
        x = x.float()
    # Two passes over the centred values rather than ``x.var``: the same numbers, but torch's CPU
    # ``var`` over a non-innermost axis is about 6x slower than this forward and backward.
    centred = x - x.mean(dim=dims, keepdim=True)
    var = centred.square().mean(dim=dims, keepdim=True)
    return (centred * torch.rsqrt(var + eps) * gamma.to(x.dtype) + beta.to(x.dtype)).to(dtype)


class LayerNorm4D(nn.Module):
    """Normalise over channels at every (frame, freq) point; per-channel gain and bias.

    Parameters ``gamma``/``beta`` are shaped ``(1, C, 1, 1)`` (TF-GridNet's
    ``LayerNormalization4D``).
    """

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.gamma = nn.Parameter(torch.ones(1, channels, 1, 1))
        self.beta = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4:
            raise ValueError(
                f"Expected a 4D (batch, channels, frames, freqs) tensor, got {x.ndim}D"
            )
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
            raise ValueError(
                f"Expected a 4D (batch, channels, frames, freqs) tensor, got {x.ndim}D"
            )
        return _normalize(x, (1, 3), self.gamma, self.beta, self.eps)


def leaky_mean(
    x: torch.Tensor, alpha: float, state: Optional[tuple[torch.Tensor, torch.Tensor]] = None
) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """Bias-corrected exponential running mean along the last axis (causal).

    ``m_t = a_t / c_t`` with ``a_t = alpha a_{t-1} + (1 - alpha) x_t`` and ``c_t = alpha c_{t-1} +
    (1 - alpha)`` (``a_{-1} = c_{-1} = 0``): ``m_0 = x_0``, and later an average over about ``1 / (1
    - alpha)`` past steps. The recursion runs one step at a time so that a stream cut into any
    blocks (passing ``state`` on) computes exactly the same numbers as one
    call on the whole sequence.

    Args:
        x: ``(..., T)`` values (e.g. frame mean squares).
        alpha: forgetting factor in ``[0, 1)``; 0 uses each step alone.
        state: ``(a, c)`` returned by the previous call, ``None`` at the start.

    Returns:
        ``(m, state)``: running means shaped as ``x``, and the state after the last step.
    """
    if not 0.0 <= alpha < 1.0:
        raise ValueError(f"alpha must be in [0, 1), got {alpha}")
    if state is None:
        a = x.new_zeros(x.shape[:-1])
        c = x.new_zeros(x.shape[:-1])
    else:
        a, c = state
    out = []
    for t in range(x.shape[-1]):
        a = alpha * a + (1.0 - alpha) * x[..., t]
        c = alpha * c + (1.0 - alpha)
        out.append(a / c)
    m = torch.stack(out, dim=-1) if out else x.new_zeros(x.shape)
    return m, (a, c)
