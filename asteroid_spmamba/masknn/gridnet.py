"""TF-GridNet block and masker with a pluggable sequence module.

One GridNet block = intra-frame sequence modelling (along frequency) -> inter-frame sequence modelling
(along time) -> full-band self-attention across frames. The sequence module is what distinguishes
TF-GridNet (a BiLSTM) from SPMamba (a bidirectional Mamba); everything else is shared here.

Parameter names follow TF-GridNet's (``intra_norm``, ``intra_linear``, ``attn_conv_Q_0``, ...) so that
checkpoints of the original SPMamba and of ESPnet's TF-GridNet load by a short key map
(``intra_mamba``/``intra_rnn`` -> ``intra_seq``, see :mod:`asteroid_spmamba.convert`).
"""
import math
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from .norms import LayerNorm4D, LayerNorm4DCF

# A sequence module maps (batch, length, in_dim) -> (batch, length, module.output_dim).
SequenceFactory = Callable[[int], nn.Module]

_ACTIVATIONS = {"prelu": nn.PReLU, "relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "elu": nn.ELU}


def activation_layer(name: str) -> nn.Module:
    try:
        return _ACTIVATIONS[name.lower()]()
    except KeyError:
        raise ValueError(f"Unknown activation {name!r}; choose one of {sorted(_ACTIVATIONS)}") from None


class BiLSTM(nn.LSTM):
    """Bidirectional one-layer LSTM returning only its output sequence (TF-GridNet's sequence module).

    Being an ``nn.LSTM`` its parameters are named ``weight_ih_l0``, ..., as in ESPnet's TF-GridNet.
    """

    def __init__(self, input_size: int, hidden_size: int, bidirectional: bool = True):
        super().__init__(input_size, hidden_size, 1, batch_first=True, bidirectional=bidirectional)
        self.output_dim = hidden_size * (2 if bidirectional else 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x)[0]


class GridNetBlock(nn.Module):
    """One TF-GridNet block on ``(batch, emb_dim, frames, freqs)`` features.

    Args:
        emb_dim: channels D of the feature map.
        emb_ks: kernel (in frames/bins) of the unfold before and transposed conv after each
            sequence module; the sequence modules see ``emb_dim * emb_ks`` features.
        emb_hs: hop of that unfold.
        n_freqs: number of frequency bins F (the attention normalises over it).
        sequence_factory: builds the sequence module from its input size.
        n_head: attention heads.
        approx_qk_dim: query/key size per head is ``ceil(approx_qk_dim / n_freqs)`` channels x F.
        activation: activation after the attention 1x1 convolutions.
        eps: normalisation epsilon.
        causal_attention: mask attention to past frames.
    """

    def __init__(
        self,
        emb_dim: int,
        emb_ks: int,
        emb_hs: int,
        n_freqs: int,
        sequence_factory: SequenceFactory,
        n_head: int = 4,
        approx_qk_dim: int = 512,
        activation: str = "prelu",
        eps: float = 1e-5,
        causal_attention: bool = False,
    ):
        super().__init__()
        if emb_dim % n_head:
            raise ValueError(f"emb_dim ({emb_dim}) must be divisible by n_head ({n_head})")
        in_channels = emb_dim * emb_ks
        self.emb_dim, self.emb_ks, self.emb_hs, self.n_head = emb_dim, emb_ks, emb_hs, n_head
        self.causal_attention = causal_attention

        self.intra_norm = LayerNorm4D(emb_dim, eps=eps)
        self.intra_seq = sequence_factory(in_channels)
        self.intra_linear = nn.ConvTranspose1d(self.intra_seq.output_dim, emb_dim, emb_ks, stride=emb_hs)
        self.inter_norm = LayerNorm4D(emb_dim, eps=eps)
        self.inter_seq = sequence_factory(in_channels)
        self.inter_linear = nn.ConvTranspose1d(self.inter_seq.output_dim, emb_dim, emb_ks, stride=emb_hs)

        qk_channels = math.ceil(approx_qk_dim / n_freqs)  # approx_qk_dim is only approximate

        def projection(out_channels):
            return nn.Sequential(
                nn.Conv2d(emb_dim, out_channels, 1),
                activation_layer(activation),
                LayerNorm4DCF(out_channels, n_freqs, eps=eps),
            )

        for h in range(n_head):
            self.add_module(f"attn_conv_Q_{h}", projection(qk_channels))
            self.add_module(f"attn_conv_K_{h}", projection(qk_channels))
            self.add_module(f"attn_conv_V_{h}", projection(emb_dim // n_head))
        self.attn_concat_proj = projection(emb_dim)

    def _sequence(self, x, norm, seq, linear, axis_last: bool):
        """Unfold along one axis, run the sequence module on it, fold back, add the residual."""
        batch, channels, frames, freqs = x.shape
        y = norm(x)
        if axis_last:  # along frequency: one sequence per (batch, frame)
            y = y.transpose(1, 2).reshape(batch * frames, channels, freqs)
        else:  # along time: one sequence per (batch, freq)
            y = y.permute(0, 3, 1, 2).reshape(batch * freqs, channels, frames)
        y = F.unfold(y[..., None], (self.emb_ks, 1), stride=(self.emb_hs, 1))  # (N, C*ks, L')
        y = seq(y.transpose(1, 2)).transpose(1, 2)
        y = linear(y)  # (N, C, L)
        if axis_last:
            y = y.view(batch, frames, channels, freqs).transpose(1, 2)
        else:
            y = y.view(batch, freqs, channels, frames).permute(0, 2, 3, 1)
        return y + x

    def _attention(self, x: torch.Tensor) -> torch.Tensor:
        batch, _, frames, freqs = x.shape
        heads = range(self.n_head)
        # Heads are stacked on the batch axis: (n_head * B, T, channels * F).
        q = torch.cat([getattr(self, f"attn_conv_Q_{h}")(x) for h in heads], dim=0)
        k = torch.cat([getattr(self, f"attn_conv_K_{h}")(x) for h in heads], dim=0)
        v = torch.cat([getattr(self, f"attn_conv_V_{h}")(x) for h in heads], dim=0)
        v_channels = v.shape[1]
        q, k, v = (t.transpose(1, 2).flatten(start_dim=2) for t in (q, k, v))
        # Scale 1/sqrt(channels * F), as in TF-GridNet; fused kernels avoid the T x T matrix on GPU.
        out = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal_attention)
        out = out.view(self.n_head, batch, frames, v_channels, freqs)
        out = out.permute(1, 0, 3, 2, 4).reshape(batch, self.n_head * v_channels, frames, freqs)
        return self.attn_concat_proj(out) + x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, _, old_frames, old_freqs = x.shape
        # Pad so that the unfold tiles both axes exactly.
        frames = math.ceil((old_frames - self.emb_ks) / self.emb_hs) * self.emb_hs + self.emb_ks
        freqs = math.ceil((old_freqs - self.emb_ks) / self.emb_hs) * self.emb_hs + self.emb_ks
        x = F.pad(x, (0, freqs - old_freqs, 0, frames - old_frames))
        x = self._sequence(x, self.intra_norm, self.intra_seq, self.intra_linear, axis_last=True)
        x = self._sequence(x, self.inter_norm, self.inter_seq, self.inter_linear, axis_last=False)
        return self._attention(x[..., :old_frames, :old_freqs])


class GridNetMasker(nn.Module):
    """Stack of GridNet blocks between a 3x3 input convolution and a 3x3 transposed output convolution.

    It maps the encoder's ``(batch, 2 * in_channels, frames, freqs)`` real/imaginary spectrum to the
    sources' spectra ``(batch, n_src, 2, frames, freqs)`` (complex spectral mapping, not masks).

    Args:
        n_src: number of sources.
        n_freqs: frequency bins.
        sequence_factory: builds each block's sequence modules.
        in_channels: microphones.
        n_layers: GridNet blocks.
        emb_dim, emb_ks, emb_hs, n_head, approx_qk_dim, activation, eps, causal_attention:
            see :class:`GridNetBlock`.
    """

    def __init__(
        self,
        n_src: int,
        n_freqs: int,
        sequence_factory: SequenceFactory,
        in_channels: int = 1,
        n_layers: int = 6,
        emb_dim: int = 16,
        emb_ks: int = 8,
        emb_hs: int = 1,
        n_head: int = 4,
        approx_qk_dim: int = 512,
        activation: str = "prelu",
        eps: float = 1e-5,
        causal_attention: bool = False,
    ):
        super().__init__()
        self.n_src = n_src
        # (3, 3) kernels: 3 frames x 3 bins, "same" padding.
        self.conv = nn.Sequential(
            nn.Conv2d(2 * in_channels, emb_dim, (3, 3), padding=(1, 1)),
            nn.GroupNorm(1, emb_dim, eps=eps),
        )
        self.blocks = nn.ModuleList(
            GridNetBlock(
                emb_dim, emb_ks, emb_hs, n_freqs, sequence_factory, n_head=n_head,
                approx_qk_dim=approx_qk_dim, activation=activation, eps=eps,
                causal_attention=causal_attention,
            )
            for _ in range(n_layers)
        )
        self.deconv = nn.ConvTranspose2d(emb_dim, n_src * 2, (3, 3), padding=(1, 1))

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        batch, _, frames, freqs = spec.shape
        x = self.conv(spec)
        for block in self.blocks:
            x = block(x)
        return self.deconv(x).view(batch, self.n_src, 2, frames, freqs)
