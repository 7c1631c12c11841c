"""Real-time separation with a causal SPMamba: audio in, separated audio out, a hop at a time.

:class:`StreamingSeparator` wraps ``SPMamba(causal=True)`` (e.g.
``SPMamba.from_preset("causal-16k")``) and runs it on consecutive blocks of a stream, of any size,
carrying everything the causal model looks back at:

* the last ``n_fft - hop`` input samples (STFT framing) and the samples of an incomplete hop;
* the running level estimate used for input normalisation;
* the two past frames of the masker's 3x3 input convolution and of its
  transposed output convolution;
* per GridNet block: the last ``emb_ks - 1`` normalised frames and sequence-module outputs of the
  time-axis unfold/transposed convolution, every time-axis Mamba block's depthwise-convolution
  buffer and SSM state, and the attention keys/values (all past frames, or the
  model's ``attn_window - 1``);
* the ``n_fft - hop`` samples of the inverse STFT's overlap-add still waiting for later frames.

Levels: by default (``match_levels=True``) the input's DC offset is followed and removed before the
model, and every output block is given the level and polarity of its source in the mixture, causally
(:class:`~asteroid_spmamba.levels.StreamingMixtureFit`: gains from the last seconds of statistics;
an absent speaker's output is silent; :attr:`~StreamingSeparator.active` says which are present).
``match_levels=False`` returns the network's raw output, whose scale means nothing.

Alignment: with ``match_levels=False`` the concatenated outputs of
    :meth:`~StreamingSeparator.process` followed by
:meth:`~StreamingSeparator.flush` equal the offline causal model's output on the whole input
(``model(wav)``, up to float rounding). While streaming, output sample ``s`` is returned by the call
that completes input hop ``floor((s + n_fft - hop) / hop)``: the output lags the input by
``delay = n_fft - hop`` samples, and the first ``delay`` samples of the frame grid (before the
signal starts) are not returned. Counting the wait for a full hop, the algorithmic latency is
``n_fft`` samples (16 ms for the causal presets), plus the time to process a hop.

Example::

    model = SPMamba.from_preset("causal-16k").eval()
    stream = StreamingSeparator(model)
    for block in blocks:                 # (samples,) or (batch, samples) tensors
        out = stream.process(block)      # (batch, n_src, samples ready so far)
    out = stream.flush()                 # the last n_fft - hop samples
"""

from typing import Optional

import torch

from .levels import StreamingMixtureFit, removes_noise
from .models.spmamba import SPMamba


class StreamingSeparator:
    """Run a causal :class:`~asteroid_spmamba.SPMamba` on a stream, block by block.

    Args:
        model: ``SPMamba(causal=True)`` (its ``emb_hs`` must be 1). It is used as it is (not
            copied); gradients are not tracked.
        max_frames_per_call: process at most this many frames per masker call (bounds the memory
            of a very long block); ``None``: all complete hops of a block at once.
        match_levels: DC removed before the model and outputs at their level in the mixture
            (default); ``False``: the raw network output (equal to the offline ``model(wav)``).

    Methods ``process(block)`` / ``flush()`` return ``(batch, n_src, samples)`` tensors; ``reset()``
    starts a new stream (``flush()`` does it too).
    """

    def __init__(
        self, model: SPMamba, max_frames_per_call: Optional[int] = None, match_levels: bool = True
    ):
        if not getattr(model, "causal", False):
            raise ValueError(
                "StreamingSeparator needs a causal model: build it with SPMamba(causal=True) or "
                "SPMamba.from_preset('causal-16k'). A non-causal model looks at future frames."
            )
        for block in model.masker.blocks:
            block._check_streamable()
        if max_frames_per_call is not None and max_frames_per_call < 1:
            raise ValueError(f"max_frames_per_call must be >= 1 or None, got {max_frames_per_call}")
        self.model = model
        self.max_frames_per_call = max_frames_per_call
        self.n_fft = model.encoder.n_fft
        self.hop = model.encoder.hop_length
        self._levels = (
            StreamingMixtureFit(model.sample_rate, keep_residual=not removes_noise(model))
            if match_levels
            else None
        )
        self.reset()

    @property
    def n_src(self) -> int:
        return self.model.n_src

    @property
    def delay(self) -> int:
        """Samples by which the output lags the input: ``n_fft - hop_length``."""
        return self.model.encoder.delay

    @property
    def latency(self) -> int:
        """Algorithmic latency in samples (``n_fft``: a hop of buffering plus :attr:`delay`)."""
        return self.model.encoder.latency

    @property
    def latency_ms(self) -> float:
        return 1000.0 * self.latency / self.model.sample_rate

    def reset(self) -> None:
        """Forget the stream: the next :meth:`process` call starts a new one (any batch size)."""
        self._batch = None
        self._pending = None  # samples of the incomplete hop, (B, C, r)
        self._past = None  # last n_fft - hop samples, (B, C, n_fft - hop)
        self._level_state = None
        self._masker_state = None
        self._ola = None  # overlap-add buffer aligned to the next frame's start, (B, S, n_fft)
        self._n_in = 0  # samples received
        self._n_grid = 0  # frame-grid samples emitted (the first `delay` precede the signal)
        self._mix = None  # DC-free input samples not yet matched with an output, (B, r)
        self.active = None  # (batch, n_src) bool: the speakers present in the last output block
        if self._levels is not None:
            self._levels.reset()

    def _matched(self, out: torch.Tensor) -> torch.Tensor:
        """Raw output samples -> at their level in the mixture (the input
        samples they align with)."""
        if self._levels is None or out.shape[-1] == 0:
            return out
        mix, self._mix = self._mix[:, : out.shape[-1]], self._mix[:, out.shape[-1] :]
        out, self.active = self._levels(out, mix)
        return out

    def _as_batch(self, block: torch.Tensor) -> torch.Tensor:
        if not isinstance(block, torch.Tensor):
            raise TypeError(
                "StreamingSeparator.process expects a torch.Tensor block, got "
                f"{type(block).__name__}; use torch.from_numpy(array)."
            )
        if not block.is_floating_point():
            raise TypeError(
                f"Expected a floating-point block, got {block.dtype}; convert PCM "
                "with block.float() / 32768."
            )
        if block.ndim == 1:
            block = block[None, None]
        elif block.ndim == 2:
            block = block[:, None]
        elif block.ndim != 3:
            raise ValueError(
                "Expected a block shaped (samples), (batch, samples) or (batch, channels, "
                f"samples); got {tuple(block.shape)}."
            )
        if block.shape[1] != self.model.in_channels:
            raise ValueError(
                f"The model takes {self.model.in_channels}-channel input, the "
                f"block has {block.shape[1]}."
            )
        if self._batch is not None and block.shape[0] != self._batch:
            raise ValueError(
                f"This stream has batch size {self._batch} but the block has {block.shape[0]}; "
                "call reset() to start a stream with another batch size."
            )
        if not torch.isfinite(block).all():
            raise ValueError("The block contains NaN or Inf samples.")
        param = next(self.model.parameters())
        return block.to(device=param.device, dtype=param.dtype)

    def _start(self, block: torch.Tensor) -> None:
        batch, channels, _ = block.shape
        self._batch = batch
        self._pending = block.new_zeros(batch, channels, 0)
        self._past = block.new_zeros(batch, channels, self.n_fft - self.hop)
        self._ola = block.new_zeros(batch, self.n_src, self.n_fft)

    def _run(self, n_frames: int) -> torch.Tensor:
        """Turn ``n_frames`` hops of ``_pending`` into output; returns the frame-grid samples."""
        hop, model = self.hop, self.model
        outs = []
        step = self.max_frames_per_call or n_frames
        for start in range(0, n_frames, step):
            n = min(step, n_frames - start)
            x = torch.cat([self._past, self._pending[..., : n * hop]], dim=-1)
            self._pending = self._pending[..., n * hop :]
            self._past = x[..., n * hop :]
            spec = model.encoder.frames_to_spec(x.unfold(-1, self.n_fft, hop))  # (B, 2C, n, F)
            gain, self._level_state = model.level_gain(spec, self._level_state)
            gain = gain[:, None, :, None]
            spec = spec / gain
            est, self._masker_state = model.masker.step(spec, self._masker_state)
            est = model.apply_masks(spec, est)
            frames = model.decoder.spec_to_frames(est * gain[:, None])  # (B, S, n, n_fft)
            for i in range(n):
                ola = self._ola + frames[:, :, i]
                outs.append(ola[..., :hop])  # no later frame reaches these samples
                self._ola = torch.cat(
                    [ola[..., hop:], ola.new_zeros(ola.shape[:-1] + (hop,))], dim=-1
                )
        grid = torch.cat(outs, dim=-1)
        first = self._n_grid - self.delay  # output-sample index of grid[..., 0]
        self._n_grid += grid.shape[-1]
        grid = grid / model.decoder.envelope(first, grid.shape[-1]).to(grid.dtype)
        return grid[..., max(0, -first) :]

    @torch.inference_mode()
    def process(self, block: torch.Tensor) -> torch.Tensor:
        """Feed the next samples; returns the ``(batch, n_src, m)`` output
        samples that became final.

        ``block`` is ``(samples,)``, ``(batch, samples)`` or ``(batch, channels, samples)``, any
        length (zero included). Every complete hop is processed; the remainder
        waits for the next call.
        """
        block = self._as_batch(block)
        if self._batch is None:
            self._start(block)
        if self._levels is not None:
            block = self._levels.remove_dc(block[:, 0])[:, None]
            self._mix = (
                block[:, 0] if self._mix is None else torch.cat([self._mix, block[:, 0]], dim=-1)
            )
        self._n_in += block.shape[-1]
        self._pending = torch.cat([self._pending, block], dim=-1)
        n_frames = self._pending.shape[-1] // self.hop
        if n_frames == 0:
            return block.new_zeros(self._batch, self.n_src, 0)
        return self._matched(self._run(n_frames))

    @torch.inference_mode()
    def flush(self) -> torch.Tensor:
        """End the stream: pad with zeros as the offline model does, return the remaining output
        (so that all outputs together have as many samples as the input), and :meth:`reset`."""
        if self._batch is None or self._n_in == 0:
            batch = self._batch or 1
            self.reset()
            return torch.zeros(batch, self.n_src, 0, dtype=next(self.model.parameters()).dtype)
        total_frames = self.model.encoder.n_frames(self._n_in)
        done = self._n_grid // self.hop
        pad = (total_frames - done) * self.hop - self._pending.shape[-1]
        self._pending = torch.cat(
            [self._pending, self._pending.new_zeros(self._pending.shape[:-1] + (pad,))], dim=-1
        )
        emitted = max(0, self._n_grid - self.delay)
        out = self._run(total_frames - done)
        out = self._matched(out[..., : self._n_in - emitted])
        active = self.active
        self.reset()
        self.active = active
        return out
