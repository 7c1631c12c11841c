"""Scoring: SI-SNR against hand computations, permutation invariance,
improvements, the score CLI."""

import csv
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch

from asteroid_spmamba import commands
from asteroid_spmamba.scoring import best_permutation, score_folders, score_utterance, si_snr

SR = 8000


def _sources(n=4000, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n) / SR
    s1 = np.sin(2 * np.pi * 220 * t) * (
        1 + 0.5 * np.sin(2 * np.pi * 3 * t)
    ) + 0.05 * rng.standard_normal(n)
    s2 = 0.5 * rng.standard_normal(n)
    return np.stack([s1, s2])


def test_si_snr_hand_computation():
    ref = np.array([1.0, -1.0, 1.0, -1.0])
    noise = np.array([1.0, 1.0, -1.0, -1.0])  # zero mean, orthogonal to ref
    # est = 0.5 ref + noise: target 0.5 ref (energy 1), residual = noise (energy 4) -> 10 log10(1/4)
    assert si_snr(ref, 0.5 * ref + noise) == pytest.approx(10 * np.log10(0.25), abs=1e-6)
    # scale and offset invariant
    assert si_snr(ref, 3 * (0.5 * ref + noise) + 7) == pytest.approx(10 * np.log10(0.25), abs=1e-6)


def test_si_snr_matches_pb_bss_eval():
    from pb_bss_eval.evaluation.module_si_sdr import si_sdr

    refs = _sources()
    ests = refs + 0.3 * np.random.default_rng(1).standard_normal(refs.shape)
    np.testing.assert_allclose(si_snr(refs, ests), si_sdr(refs, ests), atol=1e-6)


def test_scaled_noisy_estimate_hand_computation():
    refs = _sources()
    rng = np.random.default_rng(2)
    noise = rng.standard_normal(refs.shape)
    ests = 2.0 * refs + 0.2 * noise
    mix = refs.sum(0)
    scores = score_utterance(mix, refs, ests, SR)

    def hand(s, e):
        s, e = s - s.mean(), e - e.mean()
        target = (s @ e) / (s @ s) * s
        return 10 * np.log10((target @ target) / ((e - target) @ (e - target)))

    out = np.mean([hand(refs[k], ests[k]) for k in range(2)])
    inp = np.mean([hand(refs[k], mix) for k in range(2)])
    assert scores["si_snr"] == pytest.approx(out, abs=1e-6)
    assert scores["si_snr_i"] == pytest.approx(out - inp, abs=1e-6)
    assert set(scores) == {"sdr", "sdr_i", "si_snr", "si_snr_i", "level_db"}
    assert scores["sdr"] > 10 and scores["sdr_i"] > 10
    level = np.mean([10 * np.log10((ests[k] ** 2).sum() / (refs[k] ** 2).sum()) for k in range(2)])
    assert (
        scores["level_db"] == pytest.approx(level, abs=1e-6) and 6.0 < level < 6.2
    )  # twice the amplitude


def test_a_silent_estimate_is_scored_not_refused():
    """A speaker judged absent comes out as zeros, which BSS-eval refuses: scored as noise far under
    the mixture, so it counts as a miss."""
    refs = _sources()
    ests = refs + 0.1 * refs.std() * np.random.default_rng(3).standard_normal(
        refs.shape
    )  # about 20 dB each
    both = score_utterance(refs.sum(0), refs, ests, SR)
    ests[1] = 0.0
    missed = score_utterance(refs.sum(0), refs, ests, SR)
    assert np.isfinite(missed["sdr"]) and both["si_snr"] > 15
    # (about 20 dB + a miss) / 2: SI-SNR of the miss about -30 dB; SDR, which allows a
    # distortion filter, about -10
    assert missed["si_snr"] < 0 and missed["sdr"] < both["sdr"] - 10


def test_permutation_invariance_and_torch_inputs():
    refs = _sources()
    ests = refs + 0.1 * np.random.default_rng(3).standard_normal(refs.shape)
    mix = refs.sum(0)
    a = score_utterance(mix, refs, ests, SR)
    b = score_utterance(mix, refs, ests[::-1].copy(), SR)
    assert a == b
    assert best_permutation(refs, ests[::-1]) == (1, 0)
    c = score_utterance(
        torch.from_numpy(mix)[None].float(), torch.from_numpy(refs), torch.from_numpy(ests), SR
    )
    assert c["si_snr"] == pytest.approx(a["si_snr"], abs=1e-3)


def test_mixture_as_estimate_improves_nothing():
    refs = _sources()
    mix = refs.sum(0)
    scores = score_utterance(mix, refs, np.stack([mix, mix]), SR)
    assert scores["si_snr_i"] == 0.0
    assert abs(scores["sdr_i"]) < 1e-9


def test_shape_errors():
    refs = _sources()
    with pytest.raises(ValueError, match="same shape"):
        score_utterance(refs.sum(0), refs, refs[:, :-3], SR)
    with pytest.raises(ValueError, match="NaN"):
        score_utterance(refs.sum(0), refs, refs * np.nan, SR)


@pytest.fixture()
def folders(tmp_path):
    ref, est = tmp_path / "ref", tmp_path / "est"
    rng = np.random.default_rng(4)
    for i in range(3):
        refs = _sources(seed=10 + i)
        (ref / f"utt{i}").mkdir(parents=True)
        sf.write(str(ref / f"utt{i}" / "mix.wav"), refs.sum(0) / 4, SR, subtype="FLOAT")
        sf.write(str(ref / f"utt{i}" / "spk1_reverb.wav"), refs[0] / 4, SR, subtype="FLOAT")
        sf.write(str(ref / f"utt{i}" / "spk2_reverb.wav"), refs[1] / 4, SR, subtype="FLOAT")
        (est / f"utt{i}").mkdir(parents=True)
        # estimates in swapped order and with arbitrary names
        sf.write(
            str(est / f"utt{i}" / "a_first.wav"),
            (refs[1] + 0.2 * rng.standard_normal(4000)) / 4,
            SR,
            subtype="FLOAT",
        )
        sf.write(
            str(est / f"utt{i}" / "b_second.wav"),
            (refs[0] + 0.1 * rng.standard_normal(4000)) / 4,
            SR,
            subtype="FLOAT",
        )
    return ref, est


def test_cli_writes_csv_with_exact_columns(folders, tmp_path, capsys):
    ref, est = folders
    out = tmp_path / "res" / "scores.csv"
    assert commands.main(["score", str(ref), str(est), "-o", str(out)]) == 0
    with open(out) as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    assert reader.fieldnames == ["utt_id", "sdr", "sdr_i", "si_snr", "si_snr_i", "level_db"]
    assert [r["utt_id"] for r in rows] == ["utt0", "utt1", "utt2"]
    expected, means = score_folders(ref, est, progress=False)
    for row, exp in zip(rows, expected):
        for k in ("sdr", "sdr_i", "si_snr", "si_snr_i"):
            assert float(row[k]) == pytest.approx(exp[k], abs=1e-4)
    assert means["si_snr"] > 10
    printed = capsys.readouterr().out
    assert f"{means['si_snr_i']:7.2f}" in printed and "si_snr_i" in printed
    assert [p.name for p in out.parent.iterdir()] == ["scores.csv"]  # no temporary file left


def test_missing_estimate_folder_is_named(folders, capsys):
    ref, est = folders
    shutil.rmtree(est / "utt1")
    with pytest.raises(FileNotFoundError, match="utt1"):
        score_folders(ref, est, progress=False)
    assert commands.main(["score", str(ref), str(est)]) == 1
    assert "utt1" in capsys.readouterr().err


def test_length_mismatch_trims_with_warning(folders):
    ref, est = folders
    path = est / "utt0" / "a_first.wav"
    wav, _ = sf.read(str(path))
    sf.write(str(path), wav[:-10], SR, subtype="FLOAT")
    with pytest.warns(UserWarning, match="trimming all to 3990"):
        rows, _ = score_folders(ref, est, progress=False)
    assert rows[0]["si_snr"] > 10


def test_wrong_number_of_estimates(folders):
    ref, est = folders
    (est / "utt2" / "b_second.wav").unlink()
    with pytest.raises(ValueError, match="1 wav file"):
        score_folders(ref, est, progress=False)
