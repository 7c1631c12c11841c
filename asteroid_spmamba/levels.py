"""Separated sources at the level and polarity they have in the mixture.

A separation network trained with a scale-invariant loss (SI-SNR) returns estimates of arbitrary
scale and sign: every score of the field is blind to both, a listener is not. What users hear goes
through :func:`match_mixture`:

1. the mixture's DC offset is removed before the network sees it (:func:`remove_dc`);
2. each estimate gets the gain (of either sign) that lets the estimates' sum best explain the
   mixture (:func:`fit_to_mixture`: least squares, slightly regularized so that two estimates of
   one talker share it instead of cancelling each other with huge opposite gains);
3. an estimate more than ``gate_db`` below the mixture is an absent speaker: it is set to silence
   (:func:`active_sources`);
4. what the estimates leave of the mixture goes to the present speakers in proportion to their
   energy (mixture consistency, Wisdom et al. 2019), so the written sources add up to the mixture
   and a talker alone comes out whole, as the mixture itself. Not for a model that removes noise
   (trained on a task of :data:`NOISY_TASKS`, ``model.removes_noise``): what its estimates leave
   is mostly that noise, so only what the silenced estimates held goes to the present ones.

:class:`MixtureFitLoss` trains through step 2 with a thresholded SNR that is defined for absent
(all-zero) references, as in MixIT: the model then learns outputs whose fitted level means
something, and silence where a speaker is absent.

References:
    S. Wisdom et al., "Differentiable consistency constraints for improved deep speech enhancement",
    ICASSP 2019 (mixture consistency).
    S. Wisdom et al., "Unsupervised sound separation using mixture invariant training", NeurIPS 2020
    (the thresholded SNR and its form for silent references).
"""

from collections.abc import Mapping

import torch

# Tasks whose mixtures hold noise that the targets do not (the model learns to remove it), and the
# task of the datasets that have a default one.
NOISY_TASKS = ("sep_noisy", "enh_single", "enh_both")
DEFAULT_TASKS = {"librimix": "sep_clean", "wham": "sep_noisy"}
# an output this far below the mixture is an absent speaker (real SIRs stay above -15 dB)
GATE_DB = -20.0
RIDGE = 1e-3  # regularization of the least-squares gains, relative to each estimate's energy
SNR_MAX_DB = 30.0  # the thresholded SNR of the training loss saturates here
_EPS = 1e-12


def mixture_has_noise(data: Mapping) -> bool:
    """Whether the mixtures of a training configuration's ``data`` section (``dataset``, ``task``)
    hold noise that the model learns to remove."""
    task = data.get("task") or DEFAULT_TASKS.get(str(data.get("dataset")))
    return task in NOISY_TASKS


def removes_noise(model) -> bool:
    """Whether ``model`` was trained to remove noise from its mixtures: its ``removes_noise``
    attribute, set when it is loaded from a file whose training configuration or ``config.json``
    says so."""
    return bool(getattr(model, "removes_noise", False))


def remove_dc(mix: torch.Tensor) -> torch.Tensor:
    """``mix`` (..., time) minus its mean over time."""
    return mix - mix.mean(-1, keepdim=True)


def _solve_gains(gram: torch.Tensor, proj: torch.Tensor, ridge: float) -> torch.Tensor:
    """Regularized least-squares gains from the estimates' Gram matrix (..., n_src, n_src) and their
    inner products with the mixture (..., n_src); solved on unit-norm estimates, so ``ridge`` is
    relative to each estimate's energy."""
    norms = torch.diagonal(gram, dim1=-2, dim2=-1).clamp_min(0).sqrt()
    unit_gram = gram / (norms.unsqueeze(-1) * norms.unsqueeze(-2) + _EPS)
    unit_gram = unit_gram + ridge * torch.eye(gram.shape[-1], dtype=gram.dtype, device=gram.device)
    coef = torch.linalg.solve(unit_gram, (proj / (norms + _EPS)).unsqueeze(-1)).squeeze(-1)
    return coef / (norms + _EPS)


def _to_present(
    fitted: torch.Tensor,
    active: torch.Tensor,
    weights: torch.Tensor,
    mix: torch.Tensor,
    keep_residual: bool,
) -> torch.Tensor:
    """The present outputs of ``fitted`` (..., n_src, time; present where ``active``), the silenced
    ones zero, each present one given a share, in proportion to ``weights`` (..., n_src), of: with
    ``keep_residual``, all that they leave of ``mix`` (mixture consistency); without, only what the
    silenced outputs held (the rest is noise the model removes)."""
    mask = active.unsqueeze(-1)
    kept = fitted * mask
    rest = mix - kept.sum(-2) if keep_residual else (fitted * ~mask).sum(-2)
    weights = weights * active
    share = weights / weights.sum(-1, keepdim=True).clamp_min(_EPS)
    return kept + share.unsqueeze(-1) * rest.unsqueeze(-2)


def fitted_gains(est: torch.Tensor, mix: torch.Tensor, ridge: float = RIDGE) -> torch.Tensor:
    """Gains ``g`` (..., n_src) minimizing ``||mix - sum_i g_i est_i||^2 + ridge
    sum_i g_i^2 ||est_i||^2``.

    Args:
        est: (..., n_src, time) estimates.
        mix: (..., time) mixture.
        ridge: regularization relative to each estimate's energy (0: plain least squares).
    """
    return _solve_gains(est @ est.transpose(-1, -2), (est @ mix.unsqueeze(-1)).squeeze(-1), ridge)


def fit_to_mixture(est: torch.Tensor, mix: torch.Tensor, ridge: float = RIDGE) -> torch.Tensor:
    """``est`` (..., n_src, time) scaled by :func:`fitted_gains` (sign included)."""
    return est * fitted_gains(est, mix, ridge).unsqueeze(-1)


def levels_db(est: torch.Tensor, mix: torch.Tensor) -> torch.Tensor:
    """Energy of each estimate relative to the mixture's, dB (..., n_src); -inf for silence."""
    ratio = est.pow(2).sum(-1) / mix.pow(2).sum(-1, keepdim=True).clamp_min(_EPS)
    return 10 * torch.log10(ratio)


def active_sources(est: torch.Tensor, mix: torch.Tensor, gate_db: float = GATE_DB) -> torch.Tensor:
    """Boolean (..., n_src): the fitted estimates no more than ``gate_db`` below the mixture.
    A silent mixture has no active source."""
    silent = mix.pow(2).sum(-1, keepdim=True) <= _EPS
    return (levels_db(est, mix) >= gate_db) & ~silent


def match_mixture(
    est: torch.Tensor,
    mix: torch.Tensor,
    gate_db: float = GATE_DB,
    ridge: float = RIDGE,
    keep_residual: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Raw network estimates -> what a listener should get, and which speakers are present.

    Args:
        est: (..., n_src, time) raw estimates of the DC-free mixture ``mix``.
        mix: (..., time) the mixture the network saw (after :func:`remove_dc`).
        gate_db: estimates this far below the mixture after fitting are silenced.
        ridge: see :func:`fitted_gains`.
        keep_residual: give the present speakers what the fitted outputs leave of the mixture, so
            that the outputs add up to it. ``False`` for mixtures with noise that the model was
            trained to remove (WHAM! and LibriMix ``sep_noisy``, ``enh_*``): the residual is then
            mostly that noise, and only what silenced outputs held is passed on.

    Returns:
        ``(sources, active)``: sources (..., n_src, time) at the mixture's level and polarity that
        add up to ``mix`` wherever a speaker is present, and the boolean mask (..., n_src) of
        present speakers. Computed in float64.
    """
    dtype = est.dtype
    est, mix = est.double(), mix.double()
    fitted = fit_to_mixture(est, mix, ridge)
    active = active_sources(fitted, mix, gate_db)
    sources = _to_present(fitted, active, fitted.pow(2).sum(-1), mix, keep_residual)
    return sources.to(dtype), active


def pairwise_thresholded_snr(
    est: torch.Tensor, targets: torch.Tensor, mix: torch.Tensor, snr_max_db: float = SNR_MAX_DB
) -> torch.Tensor:
    """Negative thresholded SNR (dB) of every (estimate, target) pair: (batch, n_est, n_tgt).

    For a target with energy: ``10 log10((||t - e||^2 + tau ||t||^2) / ||t||^2)``; for a silent
    target (energy below -50 dB of the mixture's): ``10 log10((||e||^2 + tau
        ||mix||^2) / ||mix||^2)``,
    the estimate's level under the mixture. ``tau = 10^(-snr_max_db / 10)``: both saturate at
    ``-snr_max_db``.
    """
    tau = 10 ** (-snr_max_db / 10)
    t_energy = targets.pow(2).sum(-1).unsqueeze(1)  # (batch, 1, n_tgt)
    m_energy = mix.pow(2).sum(-1)[:, None, None]  # (batch, 1, 1)
    error = (targets.unsqueeze(1) - est.unsqueeze(2)).pow(2).sum(-1)  # (batch, n_est, n_tgt)
    e_energy = est.pow(2).sum(-1).unsqueeze(2).expand_as(error)
    present = t_energy > 1e-5 * m_energy
    loud = 10 * torch.log10(error + tau * t_energy + _EPS) - 10 * torch.log10(t_energy + _EPS)
    quiet = 10 * torch.log10(e_energy + tau * m_energy + _EPS) - 10 * torch.log10(m_energy + _EPS)
    return torch.where(present, loud, quiet)


class MixtureFitLoss(torch.nn.Module):
    """Permutation-invariant negative thresholded SNR of the estimates fitted to the mixture.

    ``loss(est (batch, n_src, time), targets (batch, n_src, time), mix (batch, time))``: the
    estimates are scaled by :func:`fit_to_mixture` (differentiably), every pair scored by
    :func:`pairwise_thresholded_snr`, and the best permutation's mean taken per item. Targets may be
    all zeros (a speaker absent from the mixture). Computed in float32 whatever the autocast.
    """

    wants_mixture = True

    def __init__(self, snr_max_db: float = SNR_MAX_DB, ridge: float = RIDGE):
        super().__init__()
        self.snr_max_db, self.ridge = snr_max_db, ridge

    def forward(self, est: torch.Tensor, targets: torch.Tensor, mix: torch.Tensor) -> torch.Tensor:
        from asteroid.losses import PITLossWrapper

        with torch.autocast(device_type=est.device.type, enabled=False):
            est, targets, mix = est.float(), targets.float(), mix.float()
            if mix.ndim == 3:  # (batch, 1, time)
                mix = mix[:, 0]
            fitted = fit_to_mixture(est, mix, self.ridge)
            pairwise = pairwise_thresholded_snr(fitted, targets, mix, self.snr_max_db)
            best, _ = PITLossWrapper.find_best_perm(pairwise)
            return best.mean()


class StreamingMixtureFit:
    """:func:`match_mixture` for a stream, block by block, causally.

    The mixture's DC offset is followed by a running mean; the gains come from exponentially
    weighted statistics of the estimates and the mixture (time constant ``memory_s``) instead of the
    whole signal; a speaker is absent while its fitted running level lies ``gate_db`` under the
    mixture's. Feed each block of mixture to :meth:`remove_dc` before the model, and the model's
    output with the same (DC-free) mixture samples to :meth:`__call__`.
    """

    def __init__(
        self,
        sample_rate: float,
        memory_s: float = 2.0,
        gate_db: float = GATE_DB,
        ridge: float = RIDGE,
        keep_residual: bool = True,
    ):
        self.samples = float(memory_s) * float(sample_rate)
        self.gate_db, self.ridge, self.keep_residual = gate_db, ridge, keep_residual
        self.reset()

    def reset(self) -> None:
        self.mean = None  # running mean of the input, (batch, 1)
        self.gram = None  # (batch, n_src, n_src)
        self.proj = None  # (batch, n_src)
        self.energy = None  # (batch,)

    def _decay(self, n: int) -> float:
        return float(torch.exp(torch.tensor(-n / self.samples)))

    def remove_dc(self, block: torch.Tensor) -> torch.Tensor:
        """(batch, time) -> the block minus the running mean of everything seen so far."""
        if block.shape[-1] == 0:
            return block
        block_mean = block.double().mean(-1, keepdim=True)
        if self.mean is None:
            self.mean = block_mean
        else:
            keep = self._decay(block.shape[-1])
            self.mean = keep * self.mean + (1 - keep) * block_mean
        return (block - self.mean).to(block.dtype)

    def __call__(self, est: torch.Tensor, mix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``est`` (batch, n_src, time) raw output aligned with ``mix`` (batch, time) ->
        ``(sources, active)`` as :func:`match_mixture` returns them."""
        dtype, n = est.dtype, est.shape[-1]
        est, mix = est.double(), mix.double()
        keep = self._decay(n)
        gram, proj, energy = (
            est @ est.transpose(-1, -2),
            (est @ mix.unsqueeze(-1)).squeeze(-1),
            mix.pow(2).sum(-1),
        )
        if self.gram is None:
            self.gram, self.proj, self.energy = gram, proj, energy
        else:
            self.gram = keep * self.gram + gram
            self.proj = keep * self.proj + proj
            self.energy = keep * self.energy + energy
        gains = _solve_gains(self.gram, self.proj, self.ridge)
        fitted_energy = gains.pow(2) * torch.diagonal(
            self.gram, dim1=-2, dim2=-1
        )  # running, per output
        level = 10 * torch.log10(
            fitted_energy.clamp_min(1e-30) / self.energy.clamp_min(_EPS).unsqueeze(-1)
        )
        active = (level >= self.gate_db) & (self.energy > _EPS).unsqueeze(-1)
        fitted = est * gains.unsqueeze(-1)
        sources = _to_present(fitted, active, fitted_energy, mix, self.keep_residual)
        return sources.to(dtype), active
