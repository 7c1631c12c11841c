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


def _si_snr_db(est, ref):
    target = (est @ ref) / (ref @ ref) * ref
    return float(10 * torch.log10(target.pow(2).sum() / (est - target).pow(2).sum()))


def test_noise_the_model_removes_does_not_come_back():
    # WHAM!-like: two talkers plus noise, the outputs of a perfect denoising separator (any scale
    # and sign). With the residual kept, the noise goes back into them (what the mixture-consistent
    # default does, right for noise-free tasks); without, they stay clean.
    src = _sources(3)
    noise = 0.06 * torch.randn(8000, generator=torch.Generator().manual_seed(9), dtype=src.dtype)
    mix = src.sum(0) + noise
    raw = src * torch.tensor([[3.0], [-0.2]], dtype=src.dtype)
    kept, _ = match_mixture(raw, mix)
    clean, active = match_mixture(raw, mix, keep_residual=False)
    assert active.all()
    assert min(_si_snr_db(clean[k], src[k]) for k in range(2)) > 60
    assert max(_si_snr_db(kept[k], src[k]) for k in range(2)) < 15
    # a talker alone: the output the gate silences (here a trace of someone absent) passes what
    # its fit holds to the present output, and no noise comes back
    lone = src[0] + noise
    split = torch.stack([2.0 * src[0], 0.5 * src[1]])
    out, active = match_mixture(split, lone, keep_residual=False)
    assert active.tolist() == [True, False] and out[1].abs().max() == 0
    fitted = fit_to_mixture(split, lone)
    torch.testing.assert_close(out[0], fitted[0] + fitted[1])


def test_the_task_says_whether_mixtures_hold_noise():
    from asteroid_spmamba.levels import mixture_has_noise

    cases = {
        ("wham", None): True,  # WHAM!'s default task is sep_noisy
        ("wham", "sep_clean"): False,
        ("librimix", None): False,
        ("librimix", "sep_noisy"): True,
        ("librimix", "enh_single"): True,
        ("echo2mix", None): False,
        ("synthetic", None): False,
    }
    for (dataset, task), noisy in cases.items():
        assert mixture_has_noise({"dataset": dataset, "task": task}) is noisy, (dataset, task)


class _CleanSources(torch.nn.Module):
    """A perfect denoising separator of one known mixture: the clean sources, scaled and one of
    them sign-flipped, whatever it is given."""

    sample_rate = 8000

    def __init__(self, sources: torch.Tensor):
        super().__init__()
        self.register_buffer("sources", sources.float() * torch.tensor([[0.5], [-4.0]]))

    def forward(self, x):
        return self.sources.expand(x.shape[0], -1, -1)


def test_a_model_that_removes_noise_is_written_without_it(tmp_path):
    from conftest import tiny_spmamba_args

    from asteroid_spmamba import checkpoints, hub
    from asteroid_spmamba.inference import separate_array
    from asteroid_spmamba.models import SPMamba

    src = _sources(4)
    mix = (
        src.sum(0) + 0.05 * torch.randn(8000, generator=torch.Generator().manual_seed(2))
    ).float()
    model = _CleanSources(src)
    with_noise = torch.as_tensor(separate_array(mix, 8000, model, chunk_seconds=None))
    model.removes_noise = True
    clean = torch.as_tensor(separate_array(mix, 8000, model, chunk_seconds=None))
    assert max(_si_snr_db(with_noise[k], src[k].float()) for k in range(2)) < 20
    assert min(_si_snr_db(clean[k], src[k].float()) for k in range(2)) > 40

    # the property travels with the model: config.json, and a training export's data section
    tiny = SPMamba(**tiny_spmamba_args())
    tiny.removes_noise = True
    folder = hub.save_pretrained(tiny, tmp_path / "denoiser")
    assert SPMamba.from_pretrained(str(folder)).removes_noise is True
    assert not hasattr(
        SPMamba.from_pretrained(
            str(hub.save_pretrained(SPMamba(**tiny_spmamba_args()), tmp_path / "plain"))
        ),
        "removes_noise",
    )
    package = tiny.serialize()
    for data, noisy in (({"dataset": "wham"}, True), ({"dataset": "librimix"}, False)):
        package["infos"]["training_config"] = {"data": data}
        assert checkpoints.package_from_dict(package, "export").removes_noise is noisy


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
