"""Output levels (asteroid_spmamba.levels): fitting estimates to the mixture, gating absent
speakers, mixture consistency, and the training loss defined for silent targets."""

import itertools

import numpy as np
import pytest
import torch

from asteroid_spmamba.levels import (
    MixtureFitLoss,
    fit_to_mixture,
    fitted_gains,
    match_mixture,
    pairwise_thresholded_snr,
    remove_dc,
)


def _sources(seed=0, n=2, length=8000):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(n, length, generator=g, dtype=torch.float64) * torch.tensor([[0.1], [0.05]])[:n]
    )


def test_gains_recover_scale_and_sign_in_float64():
    src = _sources()
    mix = src.sum(0)
    raw = src * torch.tensor(
        [[-2000.0], [350.0]], dtype=torch.float64
    )  # the network's arbitrary scale and sign
    gains = fitted_gains(raw, mix, ridge=0.0)
    assert torch.allclose(
        gains, torch.tensor([-1 / 2000.0, 1 / 350.0], dtype=torch.float64), rtol=1e-6
    )
    assert torch.allclose(fit_to_mixture(raw, mix, ridge=0.0), src, atol=1e-9)


def test_gains_equal_a_float64_least_squares_reference():
    g = torch.Generator().manual_seed(3)
    est = torch.randn(3, 2, 500, generator=g, dtype=torch.float64) * 40
    mix = torch.randn(3, 500, generator=g, dtype=torch.float64)
    for b in range(3):
        ref = np.linalg.lstsq(est[b].T.numpy(), mix[b].numpy(), rcond=None)[0]
        assert np.allclose(fitted_gains(est[b], mix[b], ridge=0.0).numpy(), ref, rtol=1e-8)


def test_collinear_estimates_share_the_talker_instead_of_cancelling():
    talker = _sources(n=1)[0]
    raw = torch.stack([talker * 3.0, talker * 3.0 + 1e-9 * torch.randn_like(talker)])
    fitted = fit_to_mixture(raw, talker)
    assert (fitted.abs().max(-1).values < 2 * talker.abs().max()).all()


def test_match_mixture_sums_to_mixture_and_gates_absent_speakers():
    src = _sources(seed=1)
    mix = src.sum(0)
    raw = torch.stack([src[0] * 100, src[1] * -30])
    out, active = match_mixture(raw, mix)
    assert active.tolist() == [True, True]
    assert torch.allclose(out.sum(0), mix, atol=1e-9)
    # one talker: the second output holds 35 dB less than the mixture -> silenced, talker whole
    talker = src[0]
    raw = torch.stack([talker * 50, 0.02 * torch.randn_like(talker)])
    out, active = match_mixture(raw, talker)
    assert active.tolist() == [True, False]
    assert torch.count_nonzero(out[1]) == 0
    assert torch.allclose(out[0], talker, atol=1e-9)


def test_silence_stays_silent_and_nothing_exceeds_the_mixture():
    out, active = match_mixture(
        torch.randn(2, 4000, dtype=torch.float64) * 1e3, torch.zeros(4000, dtype=torch.float64)
    )
    assert not active.any() and torch.count_nonzero(out) == 0
    noise = 0.03 * torch.randn(4000, dtype=torch.float64)
    out, _ = match_mixture(torch.randn(2, 4000, dtype=torch.float64) * 1e3, noise)
    assert (out.pow(2).mean(-1) <= noise.pow(2).mean() * (1 + 1e-9)).all()


def test_remove_dc():
    x = torch.randn(2, 1000, dtype=torch.float64) + 0.3
    assert torch.allclose(remove_dc(x).mean(-1), torch.zeros(2, dtype=torch.float64), atol=1e-12)


def test_thresholded_snr_for_present_and_silent_targets_equals_the_formula():
    g = torch.Generator().manual_seed(5)
    targets = torch.randn(1, 2, 300, generator=g)
    targets[0, 1] = 0.0
    mix = targets.sum(1)
    est = torch.randn(1, 2, 300, generator=g)
    pw = pairwise_thresholded_snr(est, targets, mix, snr_max_db=30.0)
    tau = 1e-3
    for i, j in itertools.product(range(2), range(2)):
        if j == 0:
            t = targets[0, 0].double()
            ref = 10 * np.log10(
                float(((t - est[0, i]).pow(2).sum() + tau * t.pow(2).sum()) / t.pow(2).sum())
            )
        else:
            m = mix[0].double()
            ref = 10 * np.log10(
                float((est[0, i].double().pow(2).sum() + tau * m.pow(2).sum()) / m.pow(2).sum())
            )
        assert float(pw[0, i, j]) == pytest.approx(float(ref), abs=1e-4)


def test_loss_is_permutation_invariant_and_reaches_its_floor():
    src = _sources(seed=2).float().unsqueeze(0)
    mix = src.sum(1)
    loss = MixtureFitLoss()
    perfect = loss(src.flip(1) * torch.tensor([[[-7.0], [90.0]]]), src, mix)
    assert float(perfect) == pytest.approx(-30.0, abs=0.05)
    silent = src.clone()
    silent[:, 1] = 0
    # one talker, the other output silent: the floor again; a leaking second output costs
    assert float(
        loss(torch.stack([silent[:, 0], torch.zeros_like(mix)], 1) * 5, silent, silent[:, 0])
    ) == pytest.approx(-30.0, abs=0.05)
    leaky = torch.stack([silent[:, 0], 0.3 * silent[:, 0]], 1)
    assert float(loss(leaky, silent, silent[:, 0])) > -20.0


def test_loss_trains_gradients_through_the_fit():
    src = _sources(seed=4).float().unsqueeze(0)
    est = (src + 0.1 * torch.randn_like(src)).requires_grad_()
    MixtureFitLoss()(est, src, src.sum(1)).backward()
    assert torch.isfinite(est.grad).all() and est.grad.abs().sum() > 0
