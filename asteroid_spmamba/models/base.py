"""What every model of the package shares: input checks, inference precision, named presets and the
STFT-domain separator skeleton."""

import copy
import inspect
import os
from typing import Any, Optional

import torch
from asteroid.models.base_models import BaseEncoderMaskerDecoder, BaseModel

from .._stack import user_stacklevel
from ..files import write_wav_atomic
from ..hub import AsteroidHubMixin
from ..inference import separate_array, separate_file
from ..inference.running import inference_precision as inference_precision  # documented here
from ..inference.running import written_sources


def check_waveform(
    wav,
    in_channels: Optional[int] = 1,
    min_length: int = 1,
    sample_rate: Optional[float] = None,
    model_sample_rate: Optional[float] = None,
    model_name: str = "model",
    dtype: Optional[torch.dtype] = None,
) -> torch.Tensor:
    """Validate a waveform batch and return it as ``(batch, channels, time)`` in ``dtype``.

    Floating-point input of another precision (numpy's and soundfile's float64, float16, bfloat16)
    is cast to ``dtype``, the model's (default: kept as it is). Raises ``TypeError`` for non-tensors
    and non-float tensors, ``ValueError`` for a wrong rank, an empty batch, a channel count the
    model does not take, NaN/Inf samples, too few samples, or an explicitly given ``sample_rate``
    that differs from the model's. Each message says what to do instead.
    """
    if not isinstance(wav, torch.Tensor):
        raise TypeError(
            f"{model_name} expects a torch.Tensor waveform, got {type(wav).__name__}. Use "
            "torch.from_numpy(array), or model.separate(...) which takes "
            "numpy arrays and file names."
        )
    if not wav.is_floating_point():
        raise TypeError(
            f"{model_name} expects a floating-point waveform, got {wav.dtype}. Convert integer PCM "
            "with wav.float() / 32768 (16-bit) or load audio as float32."
        )
    if (
        sample_rate is not None
        and model_sample_rate is not None
        and float(sample_rate) != float(model_sample_rate)
    ):
        raise ValueError(
            f"{model_name} runs at {model_sample_rate:g} Hz but the input is {sample_rate:g} Hz. "
            f"Resample it first (torchaudio.functional.resample(wav, {sample_rate:g}, "
            f"{model_sample_rate:g})) or use model.file_separate(path, resample=True)."
        )
    if wav.ndim == 1:
        wav = wav[None, None]
    elif wav.ndim == 2:
        wav = wav[:, None]
    elif wav.ndim != 3:
        raise ValueError(
            f"{model_name} expects a waveform shaped (time), (batch, time) or (batch, channels, "
            f"time); got {wav.ndim} dimensions {tuple(wav.shape)}."
        )
    if wav.shape[0] == 0:
        raise ValueError(
            f"{model_name} got an empty batch (shape {tuple(wav.shape)}); "
            "pass at least one mixture."
        )
    if dtype is not None and wav.dtype != dtype:
        wav = wav.to(dtype)
    if in_channels is not None and wav.shape[1] != in_channels:
        hint = (
            " For a stereo file pick one channel (wav[:, :1]) or average them "
            "(wav.mean(1, keepdim=True))."
            if in_channels == 1
            else ""
        )
        raise ValueError(
            f"{model_name} takes {in_channels}-channel input but got {wav.shape[1]} channels "
            f"(shape {tuple(wav.shape)}).{hint}"
        )
    if wav.shape[-1] < min_length:
        raise ValueError(
            f"{model_name} needs at least {min_length} samples (one analysis window) but got "
            f"{wav.shape[-1]}. Pad the input or use a longer excerpt."
        )
    # (not while a CUDA graph is captured: the check synchronises; graph replays skip Python anyway)
    if (
        not (wav.is_cuda and torch.cuda.is_current_stream_capturing())
        and not torch.isfinite(wav).all()
    ):
        raise ValueError(
            f"{model_name} got a waveform containing NaN or Inf samples; clean the input first."
        )
    return wav


def apply_complex_masks(tf_rep: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Complex (ratio) masking of the first microphone's spectrum.

    ``tf_rep``: ``(batch, 2 * channels, frames, freqs)`` real parts then imaginary parts (the STFT
    encoder's layout); ``masks``: ``(batch, n_src, 2, frames, freqs)`` real/imaginary masks. Returns
    the ``(batch, n_src, 2, frames, freqs)`` source spectra ``mask * mixture``.
    """
    channels = tf_rep.shape[1] // 2
    mix_re, mix_im = tf_rep[:, None, 0], tf_rep[:, None, channels]
    mask_re, mask_im = masks[:, :, 0], masks[:, :, 1]
    return torch.stack(
        [mix_re * mask_re - mix_im * mask_im, mix_re * mask_im + mix_im * mask_re], dim=2
    )


class Presets:
    """Named configurations that a model class holds itself: ``PRESETS = {name:
    constructor arguments}``.

    ``echo2mix`` is the model's row of the SPMamba paper's table (16 kHz, two speakers); ``small``
    and ``tiny`` shrink it, same architecture, for CPU runs and smoke tests. Arguments a preset
    leaves out take the constructor's defaults.
    """

    PRESETS: dict[str, dict[str, Any]] = {}

    @classmethod
    def preset(cls, name: str) -> dict[str, Any]:
        """Every constructor argument of preset ``name`` (the constructor's defaults filled in)."""
        key = name.lower().replace("_", "-")
        if key not in cls.PRESETS:
            raise ValueError(
                f"Unknown {cls.__name__} preset {name!r}; choose one of {sorted(cls.PRESETS)}"
            )
        defaults = {
            p.name: p.default
            for p in inspect.signature(cls.__init__).parameters.values()
            if p.default is not inspect.Parameter.empty
        }
        return copy.deepcopy({**defaults, **cls.PRESETS[key]})

    @classmethod
    def from_preset(cls, name: str, **overrides):
        """The model of preset ``name`` of :attr:`PRESETS` (keyword arguments override it)."""
        return cls(**{**cls.preset(name), **overrides})


class SafeSerializeMixin(Presets, AsteroidHubMixin):
    """Asteroid's ``serialize`` stores ``torch.__version__``, a ``TorchVersion`` object that
    ``torch.load(weights_only=True)`` (the default since torch 2.6) refuses, so Asteroid's own
    ``from_pretrained`` cannot read its files back. Store plain strings instead.

    Through :class:`~asteroid_spmamba.hub.AsteroidHubMixin` every model also gets the Hugging Face
    Hub ``from_pretrained``/``save_pretrained``/``push_to_hub``."""

    bf16_inference = True  # "auto" inference precision may run it under bf16 autocast on
    # GPUs (inference_precision)

    @property
    def input_dtype(self) -> torch.dtype:
        """The dtype of the model's floating-point parameters, to which inputs are cast."""
        return next((p.dtype for p in self.parameters() if p.is_floating_point()), torch.float32)

    def forward_wav(
        self, wav: torch.Tensor, *args, precision: str = "auto", **kwargs
    ) -> torch.Tensor:
        """Asteroid's ``separate`` entry point: :meth:`forward` on the DC-free mixture in the
        inference precision (:func:`inference_precision`; ``precision="fp32"`` keeps float32),
        float32 estimates at the level and polarity of each source in the mixture, absent speakers
        silent (:func:`asteroid_spmamba.levels.match_mixture`), through the same
        :func:`asteroid_spmamba.inference.running.written_sources` as every inference entry point.
        :meth:`forward` returns the raw network output."""
        network = super().forward_wav

        def run(mix: torch.Tensor) -> torch.Tensor:
            return network(mix.to(wav.dtype), *args, **kwargs)

        return written_sources(self, wav, run, wav.device, precision)[0]

    def separate(
        self, wav, output_dir=None, force_overwrite: bool = False, resample: bool = False, **kwargs
    ):
        """Asteroid's ``separate``, with one shape convention and usable levels.

        A file name or path: ``NAME_est1.wav``, ... (:meth:`file_separate`). A waveform (numpy or
        torch, float or integer PCM) shaped as ``model(x)`` takes it, ``(time,)`` or
        ``(batch, time)``: the estimates, ``(n_src, time)`` or ``(batch, n_src, time)``, as numpy or
        as a tensor on the input's device (:func:`asteroid_spmamba.inference.separate_array`:
        chunked, DC removed, each source at its level in the mixture; ``kwargs`` are its
        arguments, and ``sample_rate`` the waveform's, resampled with ``resample=True``). Asteroid's
        final renormalization, which scales all outputs together to the mixture's L1 norm and so
        moves each source off its level, is not applied."""
        if isinstance(wav, (str, os.PathLike)):
            return self.file_separate(
                os.fspath(wav), output_dir, force_overwrite, resample, **kwargs
            )
        rate = kwargs.pop("sample_rate", None) or self.sample_rate
        if rate != self.sample_rate and not resample:
            raise ValueError(
                f"The waveform is at {rate:g} Hz and the model at {self.sample_rate:g} Hz: pass "
                "resample=True to resample it to the model's rate and back."
            )
        out = separate_array(wav, rate, self, **kwargs)
        if isinstance(wav, torch.Tensor):
            return torch.from_numpy(out).to(wav.device)
        return out

    def file_separate(
        self,
        filename,
        output_dir=None,
        force_overwrite: bool = False,
        resample: bool = False,
        **kwargs,
    ) -> None:
        """Asteroid's ``file_separate`` (``NAME_est1.wav``, ... beside the file or in
        ``output_dir``; a rate other than the model's needs ``resample=True``) through
        :func:`asteroid_spmamba.inference.separate_file`:
        the file at once, each source at its level in the mixture, files written whole."""
        import warnings

        import soundfile as sf

        base = os.path.splitext(os.fspath(filename))[0]
        if output_dir is not None:
            base = os.path.join(output_dir, os.path.basename(base))
        first = base + "_est1.wav"
        if os.path.isfile(first) and not force_overwrite:
            warnings.warn(
                f"File {first} already exists, pass `force_overwrite=True` to overwrite it",
                UserWarning,
                stacklevel=user_stacklevel(),
            )
            return
        rate = sf.info(os.fspath(filename)).samplerate
        if rate != self.sample_rate and not resample:
            raise RuntimeError(
                f"Received a signal with a sampling rate of {rate}Hz for a model of "
                f"{self.sample_rate}Hz. You can pass `resample=True` to resample automatically."
            )
        estimates, rate = separate_file(filename, self, **kwargs)
        for k, estimate in enumerate(estimates, 1):
            write_wav_atomic(f"{base}_est{k}.wav", estimate, rate)

    def serialize(self) -> dict:
        conf = super().serialize()
        versions = conf.get("infos", {}).get("software_versions", {})
        for key, value in versions.items():
            versions[key] = str(value) if value is not None else None
        return conf


class TimeDomainMasker(SafeSerializeMixin, BaseModel):
    """Learned encoder -> masks from a separation module -> transposed-convolution decoder, in the
    time domain (A-FRCNN, TDANet). A subclass builds ``encoder``, ``ln``, ``bottleneck``, ``sm``,
    ``mask_net`` and ``decoder``, and pads the input as its authors do in ``forward``."""

    @property
    def min_length(self) -> int:
        """Shortest input in samples: one encoder window."""
        return self.kernel_size

    def separate_padded(self, wav: torch.Tensor) -> torch.Tensor:
        """``(batch, n_src, padded time)`` estimates of a checked, padded
        ``(batch, 1, time)`` mixture."""
        batch = wav.shape[0]
        feats = self.encoder(wav)
        x = self.sm(self.bottleneck(self.ln(feats)))
        masks = torch.relu(self.mask_net(x)).view(batch, self.n_src, self.n_filters, -1)
        masked = (masks * feats.unsqueeze(1)).view(batch, self.n_src * self.n_filters, -1)
        return self.decoder(masked)

    def get_model_args(self) -> dict:
        return dict(self._config)


class STFTSeparator(SafeSerializeMixin, BaseEncoderMaskerDecoder):
    """Encoder -> masker -> decoder model in the STFT domain, for maskers that return spectra.

    The forward pass validates the input, divides each mixture by its standard deviation (as the
    original TF-GridNet/SPMamba do), runs the STFT encoder, the masker and the iSTFT decoder with
    the input length, and restores the scale. ``apply_masks`` returns the
    masker's spectra as they are.

    Subclasses build ``encoder``/``masker``/``decoder`` and implement ``get_model_args``.
    """

    def __init__(self, encoder, masker, decoder, sample_rate: float, in_channels: int = 1):
        encoder.sample_rate = (
            sample_rate  # BaseEncoderMaskerDecoder reads the rate from the encoder
        )
        super().__init__(encoder, masker, decoder)
        self.in_channels = in_channels

    @property
    def n_src(self) -> int:
        return self.masker.n_src

    def apply_masks(self, tf_rep: torch.Tensor, est_masks: torch.Tensor) -> torch.Tensor:
        """The masker maps to the sources' spectra directly (complex spectral mapping)."""
        return est_masks

    def forward(self, wav: torch.Tensor, sample_rate: Optional[float] = None) -> torch.Tensor:
        """Separate ``(time)``, ``(batch, time)`` or ``(batch, channels, time)`` waveforms.

        Args:
            wav: mixture waveform(s), float.
            sample_rate: optional rate of ``wav``; checked against the model's.

        Returns:
            ``(batch, n_src, time)`` estimates, same length as the input.
        """
        wav = check_waveform(
            wav,
            self.in_channels,
            self.encoder.min_length,
            sample_rate,
            self.sample_rate,
            type(self).__name__,
            self.input_dtype,
        )
        length = wav.shape[-1]
        # Guard against silent inputs: the original divides by the raw std (NaN on silence).
        std = wav.std(dim=(1, 2), keepdim=True).clamp_min(1e-8)
        spec = self.forward_encoder(wav / std)
        est = self.apply_masks(spec, self.forward_masker(spec))
        return self.decoder(est, length) * std
