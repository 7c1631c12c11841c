"""SPMamba: TF-GridNet with bidirectional Mamba sequence modules."""
from functools import partial
from typing import Optional

from ..mamba import BiMamba
from ..masknn.gridnet import GridNetMasker
from ..masknn.stft import STFTDecoder, STFTEncoder
from .base import STFTSeparator

# The authors' published configurations (JusperLee/SPMamba, configs/spmamba-*.yml).
PRESETS = {
    "echo2mix": dict(sample_rate=16000, n_fft=512, hop_length=128),
    "libri2mix": dict(sample_rate=8000, n_fft=256, hop_length=64),
    "wsj0-2mix": dict(sample_rate=8000, n_fft=256, hop_length=64),
    "wham": dict(sample_rate=8000, n_fft=256, hop_length=64),
}


class SPMamba(STFTSeparator):
    """SPMamba speech separation model.

    STFT encoder -> GridNet masker whose intra-frame (frequency) and inter-frame (time) sequence
    modules are bidirectional Mamba stacks -> iSTFT decoder. The masker maps the mixture's complex
    spectrum to each source's spectrum. Defaults are the authors' Echo2Mix configuration
    (6,141,826 parameters).

    Args:
        n_src: number of sources.
        sample_rate: operating rate in Hz.
        n_fft: STFT size (window length).
        hop_length: STFT hop.
        window: STFT window name.
        in_channels: microphones (the published models use 1).
        n_layers: GridNet blocks.
        emb_dim: channels of the GridNet feature map.
        emb_ks: unfold kernel of the sequence modules (frames/bins).
        emb_hs: unfold hop.
        n_head: attention heads.
        approx_qk_dim: approximate query/key size per head.
        activation: activation of the attention projections.
        eps: normalisation epsilon.
        d_state: Mamba state size.
        d_conv: Mamba convolution width.
        expand: Mamba inner expansion.
        mamba_layers: residual Mamba blocks per direction in each sequence module.
        bidirectional: run each Mamba stack on the reversed sequence too. ``False`` makes every
            sequence module causal (it only looks back along its axis).
        scan_backend: selective-scan backend (``"auto"``, ``"torch"``, ``"cuda"``, ``"sequential"``);
            ``None`` reads ``$ASTEROID_SPMAMBA_SCAN_BACKEND``. Not part of the saved configuration.

    References
        [1] K. Li, G. Chen, R. Yang, X. Hu, "SPMamba: State-space model is all you need in speech
        separation", arXiv:2404.02063, 2024.
        [2] Z.-Q. Wang et al., "TF-GridNet: Integrating full- and sub-band modeling for speech
        separation", IEEE/ACM TASLP, 2023.
        [3] A. Gu, T. Dao, "Mamba: Linear-time sequence modeling with selective state spaces",
        arXiv:2312.00752, 2023.
    """

    def __init__(
        self,
        n_src: int = 2,
        sample_rate: float = 16000,
        n_fft: int = 512,
        hop_length: int = 128,
        window: str = "hann",
        in_channels: int = 1,
        n_layers: int = 6,
        emb_dim: int = 16,
        emb_ks: int = 8,
        emb_hs: int = 1,
        n_head: int = 4,
        approx_qk_dim: int = 512,
        activation: str = "prelu",
        eps: float = 1e-5,
        d_state: int = 16,
        d_conv: int = 4,
        expand: int = 4,
        mamba_layers: int = 1,
        bidirectional: bool = True,
        scan_backend: Optional[str] = None,
    ):
        config = {k: v for k, v in locals().items() if k not in ("self", "__class__", "scan_backend")}
        sequence = partial(
            BiMamba, n_layers=mamba_layers, bidirectional=bidirectional, d_state=d_state,
            d_conv=d_conv, expand=expand, backend=scan_backend,
        )
        encoder = STFTEncoder(n_fft, hop_length, window)
        masker = GridNetMasker(
            n_src, encoder.n_freqs, sequence, in_channels=in_channels, n_layers=n_layers,
            emb_dim=emb_dim, emb_ks=emb_ks, emb_hs=emb_hs, n_head=n_head,
            approx_qk_dim=approx_qk_dim, activation=activation, eps=eps,
        )
        super().__init__(encoder, masker, STFTDecoder(n_fft, hop_length, window), sample_rate, in_channels)
        self._config = config

    @classmethod
    def from_preset(cls, name: str, **overrides) -> "SPMamba":
        """The authors' configuration for ``name`` in :data:`PRESETS` (keyword arguments override it)."""
        key = name.lower().replace("_", "-")
        if key not in PRESETS:
            raise ValueError(f"Unknown SPMamba preset {name!r}; choose one of {sorted(PRESETS)}")
        return cls(**{**PRESETS[key], **overrides})

    def get_model_args(self) -> dict:
        return dict(self._config)
