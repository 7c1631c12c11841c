"""STFT encoder and iSTFT decoder for TF-domain separators (TF-GridNet, SPMamba, BSRNN).

The encoder maps ``(batch, channels, time)`` waveforms to real/imaginary feature maps
``(batch, 2 * channels, frames, freqs)``; the decoder maps ``(batch, n_src, 2, frames, freqs)`` spectra
back to ``(batch, n_src, time)``. Framing is centred (``center=True``, reflect padding), so every
sample is covered by a frame and the decoder returns exactly the requested length.
"""
import torch
import torch.nn as nn


class _STFTBase(nn.Module):
    def __init__(self, n_fft: int = 512, hop_length: int = 128, window: str = "hann"):
        super().__init__()
        if n_fft % 2:
            raise ValueError(f"n_fft must be even, got {n_fft}")
        if not 0 < hop_length <= n_fft // 2:
            raise ValueError(f"hop_length must be in (0, n_fft/2] for full coverage, got {hop_length}")
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
    ordered ``[re_1, ..., re_C, im_1, ..., im_C]``. Half-precision inputs are transformed in float32.
    """

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        batch, channels, length = wav.shape
        dtype = wav.dtype
        x = wav.reshape(batch * channels, length)
        x = x.float() if dtype in (torch.float16, torch.bfloat16) else x
        spec = torch.stft(
            x, self.n_fft, self.hop_length, window=self._window(x.dtype), center=True,
            pad_mode="reflect", normalized=False, onesided=True, return_complex=True,
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
        wav = torch.istft(
            spec.transpose(1, 2), self.n_fft, self.hop_length, window=self._window(spec.real.dtype),
            center=True, normalized=False, onesided=True, length=length,
        )
        return wav.reshape(batch, n_src, length).to(dtype)
