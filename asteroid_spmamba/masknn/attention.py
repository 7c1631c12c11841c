"""Full-band self-attention across frames: the last stage of a GridNet block.

TF-GridNet's attention: per head, 1x1 convolutions (each followed by an activation and a
:class:`LayerNorm4DCF` over channels and frequencies) project every frame to a query, a key and a
value of ``channels x F`` features; each frame attends to every frame (causal: to the past ones
and itself, with ``attn_window`` only to the last ``attn_window``), and a last projection of the
concatenated heads is added to the input.

:class:`FullBandAttention` is a base class of :class:`~asteroid_spmamba.masknn.gridnet.GridNetBlock`
that registers its projections on the block itself, so that their parameter names stay
TF-GridNet's (``attn_conv_Q_0``, ..., ``attn_concat_proj``) and the checkpoints of the original
SPMamba and of ESPnet's TF-GridNet keep loading.
"""

import math
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from .norms import LayerNorm4DCF, _normalize

_ACTIVATIONS = {"prelu": nn.PReLU, "relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "elu": nn.ELU}


def activation_layer(name: str) -> nn.Module:
    try:
        return _ACTIVATIONS[name.lower()]()
    except KeyError:
        raise ValueError(
            f"Unknown activation {name!r}; choose one of {sorted(_ACTIVATIONS)}"
        ) from None


class FullBandAttention(nn.Module):
    """Multi-head self-attention across the frames of ``(batch, emb_dim, frames, freqs)`` features,
    with the input added back (a base class: the module calls :meth:`_build_attention` in its
    ``__init__``, then :meth:`_attention` on whole sequences, :meth:`_attention_step` on streams).
    """

    # Fast paths (see :func:`asteroid_spmamba.masknn.gridnet.set_fast_paths`).
    batched_heads = True  # all heads' Q/K/V 1x1 convolutions as one convolution, norms group-wise
    fused_attention = True  # 4D, 8-aligned SDPA inputs: fused kernels instead of a T x T matrix

    def _build_attention(
        self,
        emb_dim: int,
        n_freqs: int,
        n_head: int,
        approx_qk_dim: int,
        activation: str,
        eps: float,
        causal: bool,
        attn_window: Optional[int],
    ) -> None:
        """Register the projections ``attn_conv_{Q,K,V}_<head>`` and ``attn_concat_proj``.

        ``approx_qk_dim``: query/key size per head is ``ceil(approx_qk_dim / n_freqs)`` channels x
        F; ``causal``: attend to past frames only, within the last ``attn_window`` if not ``None``.
        """
        self.n_head = n_head
        self.causal_attention = causal  # masks attention to past frames
        self.attn_window = None if attn_window is None else int(attn_window)
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

    def _qkv(self, x: torch.Tensor):
        """Per-frame projections, heads stacked on the batch axis:
        ``(n_head * B, T, channels * F)``."""
        if self.batched_heads:
            return self._qkv_batched(x)
        heads = range(self.n_head)
        q = torch.cat([getattr(self, f"attn_conv_Q_{h}")(x) for h in heads], dim=0)
        k = torch.cat([getattr(self, f"attn_conv_K_{h}")(x) for h in heads], dim=0)
        v = torch.cat([getattr(self, f"attn_conv_V_{h}")(x) for h in heads], dim=0)
        v_channels = v.shape[1]
        q, k, v = (t.transpose(1, 2).flatten(start_dim=2) for t in (q, k, v))
        return q, k, v, v_channels

    def _qkv_batched(self, x: torch.Tensor):
        """:meth:`_qkv` with every head's Q, K and V projection in one 1x1 convolution (the heads'
        weights stacked: same parameters), the PReLU per channel and the per-head LayerNorm4DCF as
        a normalisation over each head's channel group."""
        n_head = self.n_head
        convs = [getattr(self, f"attn_conv_{kind}_{h}") for kind in "QKV" for h in range(n_head)]
        y = F.conv2d(
            x, torch.cat([m[0].weight for m in convs]), torch.cat([m[0].bias for m in convs])
        )
        if isinstance(convs[0][1], nn.PReLU):
            y = F.prelu(y, torch.cat([m[1].weight.expand(m[0].out_channels) for m in convs]))
        else:  # parameter-free activation: the same for every head
            y = convs[0][1](y)
        batch, _, frames, freqs = y.shape
        qk_channels, v_channels = convs[0][0].out_channels, convs[-1][0].out_channels
        split = 2 * n_head * qk_channels
        outs = []
        for group, channels, mods in (
            (y[:, :split], qk_channels, convs[: 2 * n_head]),
            (y[:, split:], v_channels, convs[2 * n_head :]),
        ):
            norms = [m[2] for m in mods]
            group = _normalize(
                group.reshape(batch, len(mods), channels, frames, freqs),
                (2, 4),
                torch.stack([n.gamma[0] for n in norms]),
                torch.stack([n.beta[0] for n in norms]),
                norms[0].eps,
            )
            # (B, groups, C, T, F) -> (groups * B, T, C * F), the heads stacked on the batch axis
            outs.append(
                group.permute(1, 0, 3, 2, 4).reshape(len(mods) * batch, frames, channels * freqs)
            )
        (qk, v) = outs
        q, k = qk.split(n_head * batch)
        return q, k, v, v_channels

    def _sdpa(self, q, k, v, attn_mask=None, is_causal: bool = False) -> torch.Tensor:
        """Scaled dot-product attention over ``(heads * B, T, E)`` inputs, scale ``1/sqrt(E)``.

        With :attr:`fused_attention` the inputs go to SDPA as 4D tensors with their last sizes
        padded with zeros to multiples of 8 (the scale kept): the fused kernels (memory-efficient,
        cuDNN, flash) take only such inputs, so no ``T x T`` matrix is formed on
        the GPU, in float32 too.
        """
        if not self.fused_attention:
            return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, is_causal=is_causal)
        dim, v_dim = q.shape[-1], v.shape[-1]
        pad, v_pad = -dim % 8, -v_dim % 8
        if pad:
            q, k = F.pad(q, (0, pad)), F.pad(k, (0, pad))
        if v_pad:
            v = F.pad(v, (0, v_pad))
        out = F.scaled_dot_product_attention(
            q[:, None],
            k[:, None],
            v[:, None],
            attn_mask=attn_mask,
            is_causal=is_causal,
            scale=1.0 / math.sqrt(dim),
        )[:, 0]
        return out[..., :v_dim] if v_pad else out

    def _attention_out(self, out: torch.Tensor, x: torch.Tensor, v_channels: int) -> torch.Tensor:
        batch, _, frames, freqs = x.shape
        out = out.view(self.n_head, batch, frames, v_channels, freqs)
        out = out.permute(1, 0, 3, 2, 4).reshape(batch, self.n_head * v_channels, frames, freqs)
        return self.attn_concat_proj(out) + x

    def _window_mask(self, q_start: int, n_q: int, k_start: int, n_k: int, device) -> torch.Tensor:
        """Boolean ``(n_q, n_k)`` mask: query frame i sees key frame j iff
        ``i - attn_window < j <= i``."""
        q = torch.arange(q_start, q_start + n_q, device=device)[:, None]
        k = torch.arange(k_start, k_start + n_k, device=device)[None, :]
        mask = k <= q
        if self.attn_window is not None:
            mask &= k > q - self.attn_window
        return mask

    def _attention(self, x: torch.Tensor) -> torch.Tensor:
        frames = x.shape[2]
        q, k, v, v_channels = self._qkv(x)
        # Scale 1/sqrt(channels * F), as in TF-GridNet; fused kernels avoid the T x T matrix on GPU.
        if self.attn_window is not None and self.attn_window < frames:
            mask = self._window_mask(0, frames, 0, frames, x.device)
            out = self._sdpa(q, k, v, attn_mask=mask)
        else:
            out = self._sdpa(q, k, v, is_causal=self.causal_attention)
        return self._attention_out(out, x, v_channels)

    def _attention_step(
        self, x: torch.Tensor, past_k: Optional[torch.Tensor], past_v: Optional[torch.Tensor], start
    ):
        """:meth:`_attention` on ``n`` new frames ``x`` (frames ``start ..`` of a stream) over the
        keys and values of the past frames (``past_k``, ``past_v``; ``None`` at the start).

        Returns ``(output, keys, values)``, the keys and values being those that the next frames
        attend to: all, or the last ``attn_window - 1``.
        """
        n = x.shape[2]
        q, k, v, v_channels = self._qkv(x)
        if past_k is not None:
            k = torch.cat([past_k, k], dim=1)
            v = torch.cat([past_v, v], dim=1)
        k_start = start + n - k.shape[1]
        mask = self._window_mask(start, n, k_start, k.shape[1], x.device)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=None if bool(mask.all()) else mask)
        out = self._attention_out(out, x, v_channels)
        keep = k.shape[1] if self.attn_window is None else min(k.shape[1], self.attn_window - 1)
        return out, k[:, k.shape[1] - keep :], v[:, v.shape[1] - keep :]
