"""STFT encoder and iSTFT decoder for TF-domain separators (TF-GridNet, SPMamba, BSRNN).

The encoder maps ``(batch, channels, time)`` waveforms to real/imaginary feature maps
``(batch, 2 * channels, frames, freqs)``; the decoder maps ``(batch, n_src, 2, frames, freqs)``
spectra back to ``(batch, n_src, time)``. Framing is centred (``center=True``, reflect padding), so
every sample is covered by a frame and the decoder returns exactly the requested length.
"""

import torch
import torch.nn as nn


class _STFTBase(nn.Module):
    def __init__(self, n_fft: int = 512, hop_length: int = 128, window: str = "hann"):
        super().__init__()
        if n_fft % 2:
            raise ValueError(f"n_fft must be even, got {n_fft}")
        if not 0 < hop_length <= n_fft // 2:
            raise ValueError(
                f"hop_length must be in (0, n_fft/2] for full coverage, got {hop_length}"
            )
        window_fn = getattr(torch, f"{window}_window", None)
        if window_fn is None:
            raise ValueError(f"Unknown window {window!r} (torch.{window}_window does not exist)")
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.window_name = window
        # A buffer so that it follows .to(device); not persistent: not part of the state dict.
        self.register_buffer("window", window_fn(n_fft), persistent=False)

    @property
    def n_freqs(self) -> int:
        return self.n_fft // 2 + 1

    @property
    def min_length(self) -> int:
        """Shortest input (samples): one whole analysis window."""
        return self.n_fft

    def n_frames(self, length: int) -> int:
        return 1 + length // self.hop_length

    def _window(self, dtype):
        return self.window.to(dtype)


class STFTEncoder(_STFTBase):
    """Waveform -> stacked real/imaginary STFT.

    Args:
        n_fft: FFT size = window length.
        hop_length: frame shift in samples.
        window: name of a ``torch.*_window`` function.

    Forward: ``(batch, channels, time) -> (batch, 2 * channels, frames, n_fft // 2 + 1)``, channels
    ordered ``[re_1, ..., re_C, im_1, ..., im_C]``. Half-precision inputs
    are transformed in float32.
    """

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        batch, channels, length = wav.shape
        dtype = wav.dtype
        x = wav.reshape(batch * channels, length)
        x = x.float() if dtype in (torch.float16, torch.bfloat16) else x
        spec = torch.stft(
            x,
            self.n_fft,
            self.hop_length,
            window=self._window(x.dtype),
            center=True,
            pad_mode="reflect",
            normalized=False,
            onesided=True,
            return_complex=True,
        )  # (B*C, F, T)
        spec = spec.transpose(1, 2).reshape(batch, channels, -1, self.n_freqs)
        return torch.cat([spec.real, spec.imag], dim=1).to(dtype)


class STFTDecoder(_STFTBase):
    """Stacked real/imaginary spectra -> waveforms (inverse of :class:`STFTEncoder`).

    Forward: ``(batch, n_src, 2, frames, freqs), length -> (batch, n_src, length)``.
    """

    def forward(self, spec: torch.Tensor, length: int) -> torch.Tensor:
        batch, n_src, _, frames, freqs = spec.shape
        dtype = spec.dtype
        spec = spec.float() if dtype in (torch.float16, torch.bfloat16) else spec
        spec = torch.complex(spec[:, :, 0], spec[:, :, 1]).reshape(batch * n_src, frames, freqs)
        window = self._window(spec.real.dtype)
        if spec.is_cuda and torch.cuda.is_current_stream_capturing():
            # torch.istft reads its window-envelope check back to the host:
            # not allowed in a CUDA graph
            wav = istft_overlap_add(spec, self.n_fft, self.hop_length, window, length)
        else:
            wav = torch.istft(
                spec.transpose(1, 2),
                self.n_fft,
                self.hop_length,
                window=window,
                center=True,
                normalized=False,
                onesided=True,
                length=length,
            )
        return wav.reshape(batch, n_src, length).to(dtype)


def overlap_add(frames: torch.Tensor, hop_length: int) -> torch.Tensor:
    """``(batch, n_frames, frame_length)`` frames, frame ``i`` starting at sample ``i *
    hop_length``, summed into ``(batch, (n_frames - 1) * hop_length + frame_length)`` samples."""
    batch, n_frames, frame_length = frames.shape
    total = (n_frames - 1) * hop_length + frame_length
    out = torch.nn.functional.fold(
        frames.transpose(1, 2), (1, total), (1, frame_length), stride=(1, hop_length)
    )
    return out.reshape(batch, total)


def istft_overlap_add(
    spec: torch.Tensor, n_fft: int, hop_length: int, window: torch.Tensor, length: int
) -> torch.Tensor:
    """``torch.istft(spec.transpose(1, 2), ..., center=True, onesided=True, length=length)`` for
    ``spec (batch, frames, n_fft // 2 + 1)``, by inverse FFT, windowed overlap-add and division by
    the squared-window envelope, without a host synchronisation (usable in CUDA graph capture; the
    window is assumed to satisfy NOLA, which the STFT modules' hop limit guarantees)."""
    frames = spec.shape[1]
    wav = overlap_add(torch.fft.irfft(spec, n=n_fft, dim=-1) * window, hop_length)
    envelope = overlap_add(window.square().expand(1, frames, n_fft), hop_length)[0]
    start = n_fft // 2
    wav = (wav / envelope.clamp_min(1e-11))[:, start : start + length]
    if wav.shape[1] < length:  # as torch.istft: zeros past the last frame
        wav = torch.nn.functional.pad(wav, (0, length - wav.shape[1]))
    return wav


class _CausalSTFTBase(_STFTBase):
    """Causal framing shared by :class:`CausalSTFTEncoder` and :class:`CausalSTFTDecoder`.

    Frame ``t`` covers samples ``[(t + 1) * hop - n_fft, (t + 1) * hop)``: it ends with hop ``t`` of
    the input, so it can be computed as soon as that hop has arrived (``n_fft - hop`` zeros stand
    for the samples before the start). Frames continue past the end (on zeros) until every input
    sample is covered by ``ceil(n_fft / hop)`` frames, so the inverse divides by the full, periodic
    window envelope everywhere. Sample ``s`` of the output is final once frame ``floor((s + n_fft) /
    hop) - 1`` has been added, i.e. ``n_fft - hop`` samples after sample ``s`` arrived at the input:

    * algorithmic latency: ``n_fft`` samples (a hop is buffered, then the output lags the input by
      ``n_fft - hop`` samples); see :attr:`latency` and :attr:`delay`.
    """

    def __init__(self, n_fft: int = 256, hop_length: int = 64, window: str = "hann"):
        super().__init__(n_fft, hop_length, window)
        envelope = self.steady_envelope()
        if float(envelope.min()) < 1e-8:
            raise ValueError(
                f"The {window} window with n_fft={n_fft} and hop_length={hop_length} does not "
                "overlap-add to a nonzero envelope (NOLA); pick a smaller hop_length."
            )

    @property
    def min_length(self) -> int:
        """Any input of one sample or more can be framed causally."""
        return 1

    @property
    def delay(self) -> int:
        """Samples by which the streamed output lags the input (``n_fft - hop_length``)."""
        return self.n_fft - self.hop_length

    @property
    def latency(self) -> int:
        """Algorithmic latency in samples: one window, ``n_fft`` (hop buffering + :attr:`delay`)."""
        return self.n_fft

    def n_frames(self, length: int) -> int:
        """Frames until the last sample is covered by as many frames as any other sample."""
        return (length - 1 + self.delay) // self.hop_length + 1

    def steady_envelope(self) -> torch.Tensor:
        """``(hop,)`` overlap-added squared window on a fully covered stretch of the frame grid.

        The frame grid starts :attr:`delay` samples before the signal, so output sample ``s``
        divides by entry ``(s + delay) % hop`` (see :meth:`envelope`).
        """
        w2 = self.window.double() ** 2
        hop, n_fft = self.hop_length, self.n_fft
        n = -(-n_fft // hop)
        env = torch.zeros((n + 1) * hop + n_fft, dtype=torch.float64)
        for t in range(2 * n + 1):
            start = t * hop
            if start + n_fft > env.numel():
                break
            env[start : start + n_fft] += w2
        # positions [n * hop, (n + 1) * hop) of the frame grid are covered by all possible frames
        return env[n * hop : (n + 1) * hop].to(self.window.dtype)

    def envelope(self, start: int, length: int) -> torch.Tensor:
        """Overlap-added squared window for output samples ``start .. start + length - 1``."""
        index = (
            torch.arange(start, start + length, device=self.window.device) + self.delay
        ) % self.hop_length
        return self.steady_envelope().to(self.window.device)[index]


class CausalSTFTEncoder(_CausalSTFTBase):
    """Causal waveform -> stacked real/imaginary STFT (see
    :class:`_CausalSTFTBase` for the framing).

    Args:
        n_fft: FFT size = window length.
        hop_length: frame shift in samples.
        window: name of a ``torch.*_window`` function.

    Forward: ``(batch, channels, time) -> (batch, 2 * channels, n_frames(time), n_fft // 2 + 1)``,
    channels ordered ``[re_1, ..., re_C, im_1, ..., im_C]``, as :class:`STFTEncoder`.
    """

    def frames_to_spec(self, frames: torch.Tensor) -> torch.Tensor:
        """``(batch, channels, n, n_fft)`` sample frames -> ``(batch, 2 * channels, n, freqs)``."""
        dtype = frames.dtype
        x = frames.float() if dtype in (torch.float16, torch.bfloat16) else frames
        spec = torch.fft.rfft(x * self._window(x.dtype), dim=-1)
        return torch.cat([spec.real, spec.imag], dim=1).to(dtype)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        length = wav.shape[-1]
        total = self.n_frames(length) * self.hop_length
        x = torch.nn.functional.pad(wav, (self.delay, total - length))
        frames = x.unfold(-1, self.n_fft, self.hop_length)  # (B, C, n_frames, n_fft)
        return self.frames_to_spec(frames)

    def frame_power(self, spec: torch.Tensor) -> torch.Tensor:
        """``(batch, 2C, n, freqs) -> (batch, n)``: each frame's mean square, scaled so that white
        noise of variance ``s**2`` gives about ``s**2`` (the squared window sum is divided out)."""
        w2 = self.window.to(spec.dtype).square().sum()
        return (
            spec.square().mean(dim=(1, 3)) * 2 / w2
        )  # re and im channels: mean over 2C = |X|^2 / 2


class CausalSTFTDecoder(_CausalSTFTBase):
    """Inverse of :class:`CausalSTFTEncoder`: overlap-add of windowed inverse FFTs.

    Forward: ``(batch, n_src, 2, frames, freqs), length -> (batch, n_src,
        length)``; ``frames`` must be
    ``n_frames(length)``.
    """

    def spec_to_frames(self, spec: torch.Tensor) -> torch.Tensor:
        """``(batch, n_src, 2, n, freqs)`` -> windowed time frames ``(batch, n_src, n, n_fft)``."""
        dtype = spec.dtype
        spec = spec.float() if dtype in (torch.float16, torch.bfloat16) else spec
        frames = torch.fft.irfft(torch.complex(spec[:, :, 0], spec[:, :, 1]), n=self.n_fft, dim=-1)
        return frames * self._window(frames.dtype)

    def forward(self, spec: torch.Tensor, length: int) -> torch.Tensor:
        batch, n_src, _, frames, _ = spec.shape
        if frames != self.n_frames(length):
            raise ValueError(
                f"{frames} frames do not match {length} samples (expected "
                f"{self.n_frames(length)}); use CausalSTFTEncoder's output."
            )
        dtype = spec.dtype
        wav = overlap_add(
            self.spec_to_frames(spec).reshape(batch * n_src, frames, self.n_fft), self.hop_length
        )
        wav = wav.reshape(batch, n_src, -1)[..., self.delay : self.delay + length]
        return (wav / self.envelope(0, length).to(wav.dtype)).to(dtype)
