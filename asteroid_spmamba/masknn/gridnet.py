"""TF-GridNet block and masker with a pluggable sequence module.

One GridNet block = intra-frame sequence modelling (along frequency) -> inter-frame sequence
modelling (along time) -> full-band self-attention across frames. The sequence module is what
distinguishes TF-GridNet (a BiLSTM) from SPMamba (a bidirectional Mamba);
everything else is shared here, the attention in :mod:`asteroid_spmamba.masknn.attention`.

Parameter names follow TF-GridNet's (``intra_norm``, ``intra_linear``, ``attn_conv_Q_0``, ...) so
that checkpoints of the original SPMamba and of ESPnet's TF-GridNet load by a short key map
(``intra_mamba``/``intra_rnn`` -> ``intra_seq``, see
:mod:`asteroid_spmamba.models.spmamba_original`).

With ``causal=True`` every operation along time only looks back: the time-axis unfold is padded
with ``emb_ks - 1`` past frames and the transposed convolution after it is trimmed so that frame
``t`` only uses windows ending at or before ``t``; attention is masked to past frames (optionally
to the last ``attn_window`` frames); the masker's 3x3 convolutions take two past frames and no
future one, and its input normalisation is per frame. The ``step`` methods run the same
computation on a few frames at a time, carrying the state (used by
:class:`asteroid_spmamba.streaming.StreamingSeparator`).
"""

import math
from typing import Callable, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint

from ..precision import autocast as _autocast  # set_fast_paths takes an argument "autocast"
from .attention import FullBandAttention
from .norms import LayerNorm4D, LayerNorm4DCF

# A sequence module maps (batch, length, in_dim) -> (batch, length, module.output_dim).
SequenceFactory = Callable[[int], nn.Module]


@torch.compiler.disable
def _run_eager(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Call ``module`` outside ``torch.compile``'s graph (the sequence modules of a compiled block:
    their scans are custom kernels or long Python loops that compiling would only slow down)."""
    return module(x)


class BiLSTM(nn.LSTM):
    """Bidirectional one-layer LSTM returning only its output sequence
    (TF-GridNet's sequence module).

    Being an ``nn.LSTM`` its parameters are named ``weight_ih_l0``, ..., as in ESPnet's TF-GridNet.
    """

    def __init__(self, input_size: int, hidden_size: int, bidirectional: bool = True):
        super().__init__(input_size, hidden_size, 1, batch_first=True, bidirectional=bidirectional)
        self.output_dim = hidden_size * (2 if bidirectional else 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x)[0]


class GridNetBlock(FullBandAttention):
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
        inter_sequence_factory: builds the inter-frame (time-axis) sequence module; ``None`` uses
            ``sequence_factory`` for both.
        causal: make every time-axis operation causal, the attention included.
        attn_window: attend only to the last ``attn_window`` frames (the current one included);
            ``None`` attends to all past frames. Needs causal attention.
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
        inter_sequence_factory: Optional[SequenceFactory] = None,
        causal: bool = False,
        attn_window: Optional[int] = None,
    ):
        super().__init__()
        if emb_dim % n_head:
            raise ValueError(f"emb_dim ({emb_dim}) must be divisible by n_head ({n_head})")
        if attn_window is not None and (not causal or int(attn_window) < 1):
            raise ValueError(
                f"attn_window={attn_window} needs causal attention and must be >= 1 frame; pass "
                "causal=True, or attn_window=None."
            )
        in_channels = emb_dim * emb_ks
        self.emb_dim, self.emb_ks, self.emb_hs = emb_dim, emb_ks, emb_hs
        self.causal = causal

        self.intra_norm = LayerNorm4D(emb_dim, eps=eps)
        self.intra_seq = sequence_factory(in_channels)
        self.intra_linear = nn.ConvTranspose1d(
            self.intra_seq.output_dim, emb_dim, emb_ks, stride=emb_hs
        )
        self.inter_norm = LayerNorm4D(emb_dim, eps=eps)
        self.inter_seq = (inter_sequence_factory or sequence_factory)(in_channels)
        self.inter_linear = nn.ConvTranspose1d(
            self.inter_seq.output_dim, emb_dim, emb_ks, stride=emb_hs
        )

        self._build_attention(
            emb_dim, n_freqs, n_head, approx_qk_dim, activation, eps, causal, attn_window
        )

    # Fast paths, on by default however the model was built or loaded (they hold no parameters);
    # each computes the same function as the plain path, up to float rounding
    # (tests/test_fast_paths.py).
    # ``set_fast_paths(model, False)`` switches back to the plain paths.
    fast_unfold = True  # unfold by a strided view + one copy instead of F.unfold (im2col)
    fast_fold = (
        True  # the transposed convolution as one matrix product and emb_ks / emb_hs shifted sums
    )
    # (and the attention's: FullBandAttention.batched_heads, FullBandAttention.fused_attention)
    compiled = False  # set when the block is compiled (its sequence modules then run eagerly)

    def _sequence(self, x, norm, seq, linear, axis_last: bool, causal: bool = False):
        """Unfold along one axis, run the sequence module on it, fold back, add the residual.

        ``causal`` (time axis only): pad ``emb_ks - 1`` zero frames in the past, and keep the first
        ``frames`` outputs of the transposed convolution, so that output frame ``t`` gathers windows
        ending at frames ``t - emb_ks + 1 .. t`` only.
        """
        batch, channels, frames, freqs = x.shape
        y = norm(x)
        if axis_last:  # along frequency: one sequence per (batch, frame)
            y = y.transpose(1, 2).reshape(batch * frames, channels, freqs)
        else:  # along time: one sequence per (batch, freq)
            y = y.permute(0, 3, 1, 2).reshape(batch * freqs, channels, frames)
        if causal:
            y = F.pad(y, (self.emb_ks - 1, 0))
        if self.fast_unfold:
            # (N, C, L) -> (N, L', C * ks), feature c * ks + k as F.unfold's, by a view and one copy
            y = y.unfold(-1, self.emb_ks, self.emb_hs).transpose(1, 2).flatten(start_dim=2)
        else:
            y = F.unfold(y[..., None], (self.emb_ks, 1), stride=(self.emb_hs, 1)).transpose(1, 2)
        y = _run_eager(seq, y) if self.compiled else seq(y)  # (N, L', seq.output_dim)
        if self.fast_fold and self.emb_ks % self.emb_hs == 0:
            y = self._fold(y, linear)  # (N, L, C)
        else:
            y = linear(y.transpose(1, 2)).transpose(1, 2)  # (N, L, C)
        if causal:
            y = y[:, :frames]
        if axis_last:
            y = y.view(batch, frames, freqs, channels).permute(0, 3, 1, 2)
        else:
            y = y.view(batch, freqs, frames, channels).permute(0, 3, 2, 1)
        return x + y

    def _fold(self, y: torch.Tensor, linear: nn.ConvTranspose1d) -> torch.Tensor:
        """``linear`` (a transposed convolution, kernel ``emb_ks``, stride ``emb_hs``, ``emb_ks`` a
        multiple of ``emb_hs``) on time-major ``y`` ``(N, L', C_in)``, returning
        time-major ``(N, L, C_out)``.

        One matrix product gives every window's ``emb_ks`` output frames; window ``l``'s frames
        ``j * emb_hs ...`` land on output block ``l + j``, so the overlap-add is ``emb_ks / emb_hs``
        shifted sums. On a CPU, forward and backward together take 2-3x less time than the
        transposed convolution's, whose backward is slow there (the forward alone is not faster).
        """
        n, length, _ = y.shape
        blocks, hop = self.emb_ks // self.emb_hs, self.emb_hs
        out_channels = linear.out_channels
        weight = linear.weight.permute(0, 2, 1).reshape(
            linear.in_channels, self.emb_ks * out_channels
        )
        frames = torch.matmul(y, weight).view(n, length, blocks, hop, out_channels)
        out = F.pad(frames[:, :, 0], (0, 0, 0, 0, 0, blocks - 1))
        for j in range(1, blocks):
            out = out + F.pad(frames[:, :, j], (0, 0, 0, 0, j, blocks - 1 - j))
        out = out.view(n, (length + blocks - 1) * hop, out_channels)
        return out if linear.bias is None else out + linear.bias

    def _pad_freqs(self, x: torch.Tensor) -> torch.Tensor:
        old_freqs = x.shape[-1]
        freqs = math.ceil((old_freqs - self.emb_ks) / self.emb_hs) * self.emb_hs + self.emb_ks
        return F.pad(x, (0, freqs - old_freqs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, _, old_frames, old_freqs = x.shape
        if self.causal:  # the causal time path pads in the past itself
            x = self._pad_freqs(x)
        else:
            # Pad so that the unfold tiles both axes exactly.
            frames = math.ceil((old_frames - self.emb_ks) / self.emb_hs) * self.emb_hs + self.emb_ks
            freqs = math.ceil((old_freqs - self.emb_ks) / self.emb_hs) * self.emb_hs + self.emb_ks
            x = F.pad(x, (0, freqs - old_freqs, 0, frames - old_frames))
        x = self._sequence(x, self.intra_norm, self.intra_seq, self.intra_linear, axis_last=True)
        x = self._sequence(
            x,
            self.inter_norm,
            self.inter_seq,
            self.inter_linear,
            axis_last=False,
            causal=self.causal,
        )
        return self._attention(x[..., :old_frames, :old_freqs])

    def _check_streamable(self) -> None:
        if not self.causal:
            raise ValueError("Only a causal GridNet block (causal=True) can be run frame by frame.")
        if self.emb_hs != 1:
            raise ValueError(
                f"Frame-by-frame processing supports emb_hs=1 only, got emb_hs={self.emb_hs}."
            )

    def step(self, x: torch.Tensor, state: Optional[dict] = None):
        """Continue a stream with the next ``(batch, emb_dim, n, freqs)``
        frames -> ``(output, state)``.

        Frames fed in consecutive calls, each given the state returned by the previous one, give the
        frames of :meth:`forward` on the whole sequence (up to float rounding). ``state`` holds the
        last ``emb_ks - 1`` normalised frames and sequence-module outputs of the time path, the
        time-axis Mamba states, the attention keys/values (all past frames, or the last
        ``attn_window - 1``) and the frame count; ``None`` starts a stream.
        """
        self._check_streamable()
        batch, channels, n, old_freqs = x.shape
        ks = self.emb_ks
        x = self._pad_freqs(x)
        freqs = x.shape[-1]
        # intra-frame path: frames are independent
        x = self._sequence(x, self.intra_norm, self.intra_seq, self.intra_linear, axis_last=True)
        # inter-frame path: unfold over [past ks - 1 frames, new frames], carry the Mamba state
        y = self.inter_norm(x).permute(0, 3, 1, 2).reshape(batch * freqs, channels, n)
        if state is None:
            state = {
                "inter_in": y.new_zeros(batch * freqs, channels, ks - 1),
                "inter_seq": None,
                "inter_out": y.new_zeros(batch * freqs, self.inter_seq.output_dim, ks - 1),
                "k": None,
                "v": None,
                "frames": 0,
            }
        y = torch.cat([state["inter_in"], y], dim=-1)
        new_in = y[..., y.shape[-1] - (ks - 1) :]
        y = F.unfold(y[..., None], (ks, 1))  # (B*F, C*ks, n): windows ending at each new frame
        y, seq_state = self.inter_seq.step(y.transpose(1, 2), state["inter_seq"])
        y = torch.cat([state["inter_out"], y.transpose(1, 2)], dim=-1)
        new_out = y[..., y.shape[-1] - (ks - 1) :]
        y = self.inter_linear(y)[..., ks - 1 : ks - 1 + n]  # frame t sums windows t-ks+1 .. t
        x = y.reshape(batch, freqs, channels, n).permute(0, 2, 3, 1) + x
        x = x[..., :old_freqs]
        # attention over cached keys/values
        out, k, v = self._attention_step(x, state["k"], state["v"], state["frames"])
        new_state = {
            "inter_in": new_in,
            "inter_seq": seq_state,
            "inter_out": new_out,
            "k": k,
            "v": v,
            "frames": state["frames"] + n,
        }
        return out, new_state


class GridNetMasker(nn.Module):
    """Stack of GridNet blocks between a 3x3 input convolution and a 3x3
    transposed output convolution.

    It maps the encoder's ``(batch, 2 * in_channels, frames, freqs)`` real/imaginary spectrum to
    ``(batch, n_src, 2, frames, freqs)``: the sources' spectra (complex spectral mapping) or, with
    ``SPMamba(output="mask")``, complex masks that the model's ``apply_masks`` applies to the
    mixture.

    Args:
        n_src: number of sources.
        n_freqs: frequency bins.
        sequence_factory: builds each block's sequence modules.
        in_channels: microphones.
        n_layers: GridNet blocks.
        emb_dim, emb_ks, emb_hs, n_head, approx_qk_dim, activation, eps, inter_sequence_factory,
            attn_window: see :class:`GridNetBlock`.
        causal: causal along time: the 3x3 convolutions see the current and two past frames (none
            ahead), the input normalisation is per frame (:class:`LayerNorm4DCF` over channels and
            frequencies instead of ``GroupNorm(1, emb_dim)``), and the blocks are causal.
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
        inter_sequence_factory: Optional[SequenceFactory] = None,
        causal: bool = False,
        attn_window: Optional[int] = None,
    ):
        super().__init__()
        self.n_src = n_src
        self.causal = causal
        if causal:
            # 3 frames (t-2, t-1, t) x 3 bins: past padding only along time, added in forward.
            self.conv = nn.Sequential(
                nn.Conv2d(2 * in_channels, emb_dim, (3, 3), padding=(0, 1)),
                LayerNorm4DCF(emb_dim, n_freqs, eps=eps),
            )
        else:
            # (3, 3) kernels: 3 frames x 3 bins, "same" padding.
            self.conv = nn.Sequential(
                nn.Conv2d(2 * in_channels, emb_dim, (3, 3), padding=(1, 1)),
                nn.GroupNorm(1, emb_dim, eps=eps),
            )
        self.blocks = nn.ModuleList(
            GridNetBlock(
                emb_dim,
                emb_ks,
                emb_hs,
                n_freqs,
                sequence_factory,
                n_head=n_head,
                approx_qk_dim=approx_qk_dim,
                activation=activation,
                eps=eps,
                inter_sequence_factory=inter_sequence_factory,
                causal=causal,
                attn_window=attn_window,
            )
            for _ in range(n_layers)
        )
        # Causal: no time padding, so output frame t (of T + 2) gathers input frames t-2 .. t;
        # the first T are kept.
        self.deconv = nn.ConvTranspose2d(
            emb_dim, n_src * 2, (3, 3), padding=(0, 1) if causal else (1, 1)
        )

    # Mixed precision of the masker (see :func:`set_fast_paths`): None = the input's dtype.
    autocast_dtype: Optional[torch.dtype] = None
    # Recompute each block's activations in the backward pass (see :func:`set_fast_paths`).
    checkpoint_blocks: bool = False

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        if self.autocast_dtype is not None and not torch.is_autocast_enabled(spec.device.type):
            # Matrix products and convolutions in autocast_dtype; the normalisations and the Mamba
            # scans compute in float32 anyway, the STFT/iSTFT around the masker stay in float32.
            with _autocast(self.autocast_dtype, spec.device):
                return self.forward(spec).to(spec.dtype)
        batch, _, frames, freqs = spec.shape
        if self.causal:
            spec = F.pad(spec, (0, 0, 2, 0))
        x = self.conv(spec)
        checkpointed = self.checkpoint_blocks and torch.is_grad_enabled()
        for block in self.blocks:
            # Only the block's input is kept for the backward pass; its
            # activations are rebuilt then.
            x = (
                torch.utils.checkpoint.checkpoint(block, x, use_reentrant=False)
                if checkpointed
                else block(x)
            )
        x = self.deconv(x)
        if self.causal:
            x = x[:, :, :frames]
        return x.reshape(batch, self.n_src, 2, frames, freqs)

    def step(self, spec: torch.Tensor, state: Optional[dict] = None):
        """Continue a stream with the next ``(batch, 2 * in_channels, n, freqs)`` spectrum frames.

        Returns ``(spectra (batch, n_src, 2, n, freqs), state)``; consecutive calls reproduce
        :meth:`forward` on the whole sequence (causal masker only). ``state`` holds the last two
        input frames of each 3x3 convolution and the blocks' states; ``None`` starts a stream.
        """
        if not self.causal:
            raise ValueError(
                "Only a causal GridNet masker (causal=True) can be run frame by frame."
            )
        batch, _, n, freqs = spec.shape
        if state is None:
            state = {
                "conv_in": spec.new_zeros(batch, spec.shape[1], 2, freqs),
                "blocks": [None] * len(self.blocks),
                "deconv_in": None,
            }
        x = torch.cat([state["conv_in"], spec], dim=2)
        new_conv_in = x[:, :, -2:]
        x = self.conv(x)
        block_states = []
        for block, block_state in zip(self.blocks, state["blocks"]):
            x, block_state = block.step(x, block_state)
            block_states.append(block_state)
        past = (
            state["deconv_in"]
            if state["deconv_in"] is not None
            else x.new_zeros(batch, x.shape[1], 2, freqs)
        )
        x = torch.cat([past, x], dim=2)
        new_deconv_in = x[:, :, -2:]
        x = self.deconv(x)[:, :, 2 : 2 + n]
        new_state = {"conv_in": new_conv_in, "blocks": block_states, "deconv_in": new_deconv_in}
        return x.reshape(batch, self.n_src, 2, n, freqs), new_state


_AUTOCAST_DTYPES = {
    "bf16": torch.bfloat16,
    "bfloat16": torch.bfloat16,
    "fp16": torch.float16,
    "float16": torch.float16,
}


def set_fast_paths(
    model: nn.Module,
    enabled: bool = True,
    *,
    unfold: bool = True,
    fold: bool = True,
    heads: bool = True,
    attention: bool = True,
    autocast=None,
    compile: bool = False,
    compile_mode: Optional[str] = None,
    checkpoint: bool = False,
) -> nn.Module:
    """Switch the fast paths of every GridNet block/masker in ``model`` (SPMamba, TF-GridNet).

    The four fast paths below are on by default in every GridNet block; this function switches them
    (``set_fast_paths(model, False)``: the plain paths) and the opt-in extras: autocast, compile,
    activation checkpointing. Each path computes the same function as the plain one (tested to float
    rounding):

    Args:
        model: any module containing :class:`GridNetBlock`/:class:`GridNetMasker` modules.
        enabled: ``False`` turns the four fast paths off whatever their flags say (reference runs).
        unfold: unfold for the sequence modules by a strided view and one copy instead of
            ``F.unfold``, which on CUDA runs ``im2col`` once per sequence
            (thousands of tiny launches).
        fold: fold back (the transposed convolution after each sequence module) by one matrix
            product on the sequence module's time-major output and ``emb_ks / emb_hs`` shifted sums,
            with no transpose; where ``emb_ks`` is not a multiple of ``emb_hs`` the convolution
            runs.
        heads: compute all attention heads' 1x1 projections as one convolution (stacked weights,
            same parameters) with the PReLU and LayerNorm4DCF applied per head group.
        attention: pass 4D, 8-aligned inputs to SDPA so that its fused kernels run (memory-efficient
            attention in float32): no ``T x T`` matrix.
        autocast: ``None``, ``torch.bfloat16``/``"bf16"`` or ``torch.float16``/``"fp16"``: run the
            masker under autocast (matrix products in that dtype; normalisations, scan states, STFT
            and iSTFT in float32; float32 output).
        compile: ``torch.compile`` each GridNet block (its sequence modules stay eager); ``False``
            undoes an earlier compile.
        compile_mode: ``mode`` passed to ``torch.compile`` (e.g. ``"max-autotune-no-cudagraphs"``).
        checkpoint: activation checkpointing in training: each GridNet block keeps only its input
            and recomputes its activations during the backward pass (``torch.utils.checkpoint``), so
            training memory is about one block's activations instead of all of them, for a second
            forward pass of the blocks. Same gradients.

    Returns:
        ``model``, modified in place.
    """
    if isinstance(autocast, str):
        if autocast.lower() not in _AUTOCAST_DTYPES:
            raise ValueError(
                f"Unknown autocast dtype {autocast!r}; choose one of "
                f"{sorted(_AUTOCAST_DTYPES)} or None."
            )
        autocast = _AUTOCAST_DTYPES[autocast.lower()]
    if autocast is not None and autocast not in (torch.bfloat16, torch.float16):
        raise ValueError(
            f"autocast must be None, torch.bfloat16 or torch.float16, got {autocast!r}."
        )
    found = False
    for module in model.modules():
        if isinstance(module, GridNetBlock):
            found = True
            module.fast_unfold, module.fast_fold = enabled and bool(unfold), enabled and bool(fold)
            module.batched_heads, module.fused_attention = (
                enabled and bool(heads),
                enabled and bool(attention),
            )
            if compile:
                module.compiled = True
                module.compile(mode=compile_mode)
            elif module.compiled:
                module.compiled = False
                module._compiled_call_impl = None
        elif isinstance(module, GridNetMasker):
            module.autocast_dtype = autocast
            module.checkpoint_blocks = bool(checkpoint)
    if not found:
        raise ValueError(
            f"{type(model).__name__} has no GridNet blocks; fast paths apply "
            "to SPMamba and TF-GridNet."
        )
    return model
