"""What users write and hear, on real audio: every separation path gives each source at its level
and polarity in the mixture (the bundled real recording, the shipped model), and a table of inputs
(one talker, silence, noise, two talkers) gives the right number of speakers.

Scale-invariant scores cannot see any of this: these tests read levels, signs, sums, peaks and
lengths of what is returned and of the files written."""

import numpy as np
import pytest
import soundfile as sf
import torch

from asteroid_spmamba.demo import REAL_MIXTURE
from asteroid_spmamba.inference import separate_array, separate_file
from asteroid_spmamba.scoring import best_permutation, si_snr

MODEL = "spmamba-small-kokoro2mix"


@pytest.fixture(scope="module")
def model():
    from asteroid_spmamba.loading import load_model

    torch.set_num_threads(2)
    return load_model(MODEL).eval()


@pytest.fixture(scope="module")
def recording():
    mix, rate = sf.read(REAL_MIXTURE / "mix.flac", dtype="float32")
    refs = np.stack(
        [sf.read(REAL_MIXTURE / f"spk{k}_reverb.flac", dtype="float32")[0] for k in (1, 2)]
    )
    return mix, refs, rate


@pytest.fixture(scope="module")
def mix_wav(tmp_path_factory, recording):
    mix, _, rate = recording
    path = tmp_path_factory.mktemp("input") / "mix.wav"
    sf.write(path, mix, rate, subtype="PCM_16")
    return path


def _energy(x):
    return np.sum(np.asarray(x, np.float64) ** 2, -1)


def assert_usable(est, recording):
    """Each source within 3 dB of its reference's level and positively correlated with it; the
    sources add up to the (DC-free) mixture within 10 dB; no peak above 1; the input's length."""
    mix, refs, _ = recording
    est = np.asarray(est, np.float64)
    assert est.shape == refs.shape
    est = est[list(best_permutation(refs, est))]
    level = 10 * np.log10(_energy(est) / _energy(refs))
    assert np.all(np.abs(level) <= 3.0), f"levels {level} dB from the references'"
    assert all(np.corrcoef(r, e)[0, 1] > 0.5 for r, e in zip(refs, est))
    mix0 = mix - mix.mean()
    assert 10 * np.log10(_energy(mix0) / _energy(mix0 - est.sum(0))) >= 10
    assert np.abs(est).max() <= 1.0


def test_separate_array_whole_and_in_chunks(model, recording):
    mix, _, rate = recording
    assert_usable(separate_array(mix, rate, model), recording)
    # the long-file path: 1.5 s chunks, 0.5 s overlap (4 chunks), each fitted
    # to its part of the mixture
    chunked, activity = separate_array(
        mix, rate, model, chunk_seconds=1.5, overlap_seconds=0.5, return_activity=True
    )
    assert_usable(chunked, recording)
    assert (
        activity.per_chunk.shape == (len(activity.chunk_starts), 2)
        and len(activity.chunk_starts) > 2
    )
    assert activity.n_speakers == 2


def test_separate_file_at_another_rate(model, recording, tmp_path):
    mix, refs, rate = recording
    path = tmp_path / "mix.flac"
    sf.write(path, mix, rate)
    est, out_rate = separate_file(path, model)
    assert out_rate == rate
    assert_usable(est, recording)


def test_separate_command_writes_usable_files(model, recording, mix_wav, tmp_path, capsys):
    from asteroid_spmamba.commands import main

    assert (
        main(["separate", MODEL, str(mix_wav), "--out-dir", str(tmp_path), "-q", "--device", "cpu"])
        == 0
    )
    assert "mix.wav: 2 speakers" in capsys.readouterr().out
    written = [sf.read(tmp_path / f"mix_spk{k}.wav", dtype="float64") for k in (1, 2)]
    assert all(r == recording[2] for _, r in written)
    assert_usable(np.stack([w for w, _ in written]), recording)


def test_model_separate_tensor_array_and_file(model, recording, mix_wav, tmp_path):
    mix, _, rate = recording
    assert_usable(model.separate(torch.from_numpy(mix)[None, None])[0].numpy(), recording)
    assert_usable(model.separate(mix[None, None])[0], recording)
    model.separate(str(mix_wav), output_dir=str(tmp_path))
    assert_usable(np.stack([sf.read(tmp_path / f"mix_est{k}.wav")[0] for k in (1, 2)]), recording)
    assert (
        model(torch.from_numpy(mix)[None]).abs().max() > 0
    )  # forward stays the raw network output


def test_forward_wav_is_the_fitted_network_output(model, recording):
    """Asteroid's entry point: the raw output of the DC-free mixture, fitted to it (recomputed here
    step by step), and usable as audio."""
    from asteroid_spmamba.levels import match_mixture, remove_dc

    mix, _, _ = recording
    wav = torch.from_numpy(mix[: 3 * 16000] + 0.05)[None]  # with a DC offset to remove
    with torch.inference_mode():
        got = model.forward_wav(wav, precision="fp32")
        dc_free = remove_dc(wav)
        expected, _ = match_mixture(model(dc_free), dc_free)
    torch.testing.assert_close(got, expected.float(), rtol=0, atol=1e-6)
    assert np.abs(got.numpy()).max() < 1.0 and got.shape == (1, 2, 3 * 16000)


def test_asteroid_infer_writes_usable_files(model, recording, mix_wav, tmp_path):
    from asteroid_spmamba.commands.infer import main

    model.save_pretrained(
        tmp_path / "model"
    )  # with pytorch_model.bin, which Asteroid's loader reads
    assert (
        main([str(tmp_path / "model"), "--files", str(mix_wav), "-o", str(tmp_path), "-d", "cpu"])
        == 0
    )
    assert_usable(np.stack([sf.read(tmp_path / f"mix_est{k}.wav")[0] for k in (1, 2)]), recording)


def test_demo_writes_usable_files(recording, tmp_path):
    from asteroid_spmamba.demo import demo

    scores = demo(MODEL, tmp_path)
    assert abs(scores["level_db"]) <= 3
    assert_usable(np.stack([sf.read(tmp_path / f"spk{k}.wav")[0] for k in (1, 2)]), recording)


def pretrained_folder():
    from asteroid_spmamba import pretrained

    return pretrained.HERE / MODEL


def test_evaluate_reports_the_level_difference(recording, tmp_path):
    from asteroid_spmamba.training.evaluate import evaluate

    mix, refs, rate = recording
    folder = tmp_path / "test" / "000"
    folder.mkdir(parents=True)
    sf.write(folder / "mix.wav", mix, rate)
    for k in (1, 2):
        sf.write(folder / f"spk{k}_reverb.wav", refs[k - 1], rate)
    summary = evaluate(
        str(pretrained_folder()),
        test_dir=tmp_path / "test",
        out_dir=tmp_path / "eval",
        device="cpu",
        progress=False,
    )
    assert abs(summary["level_db"]) <= 3 and summary["si_snr_i"] > 5
    assert "level_db" in (tmp_path / "eval" / "metrics.csv").read_text().splitlines()[0]


def test_dc_offset_is_removed_first(model, recording):
    mix, refs, rate = recording
    plain = separate_array(mix, rate, model)
    shifted = separate_array(mix + 0.3, rate, model)
    assert_usable(shifted, recording)
    cost = (
        si_snr(refs, plain[list(best_permutation(refs, plain))]).mean()
        - si_snr(refs, shifted[list(best_permutation(refs, shifted))]).mean()
    )
    assert cost < 0.5


# --------------------------------------------------------------------------------------------
# How many speakers: one talker, silence, noise, two talkers
# --------------------------------------------------------------------------------------------
def _input(kind, recording):
    mix, refs, rate = recording
    if kind == "two talkers":
        return mix
    if kind == "one talker (reverberant)":
        return refs[0]
    if kind == "the other talker alone":
        return refs[1]
    if kind == "silence":
        return np.zeros_like(mix)
    noise = np.random.default_rng(0).standard_normal(mix.shape[-1]).astype(np.float32)
    return noise * 10 ** (-30 / 20) / np.sqrt(np.mean(noise**2))  # white noise, -30 dBFS


@pytest.mark.parametrize(
    "kind, speakers",
    [
        ("two talkers", 2),
        ("one talker (reverberant)", 1),
        ("the other talker alone", 1),
        ("silence", 0),
        ("white noise", None),
    ],
)
def test_speaker_table(model, recording, kind, speakers):
    """One talker: one output holds the talker whole (>= 20 dB SI-SNR against the input), the other
    is silent; silence gives silence; noise comes out no louder than it went in."""
    wav = _input(kind, recording)
    est, activity = separate_array(wav, recording[2], model, return_activity=True)
    if speakers is not None:
        assert activity.n_speakers == speakers, activity.describe()
    assert _energy(est).max() <= _energy(wav) * (1 + 1e-6)
    if speakers == 1:
        loud, quiet = np.argsort(-_energy(est))
        assert si_snr(wav, est[loud]) >= 20
        assert _energy(est[quiet]) <= _energy(est[loud]) * 10 ** (-25 / 10)
        assert activity.describe().startswith("1 speaker (spk")
    if speakers == 0:
        assert not est.any()


def test_shifted_passes_are_usable_and_evaluate_scores_what_separate_gives(
    model, recording, tmp_path
):
    """--shifts: the averaged sources keep their levels, signs, sum and length, and ``evaluate
    --shifts`` scores exactly what ``separate_array(shifts=...)`` returns."""
    from asteroid_spmamba.scoring import score_utterance
    from asteroid_spmamba.training.evaluate import evaluate

    mix, refs, rate = recording
    est = separate_array(mix, rate, model, shifts=4)
    assert_usable(est, recording)
    folder = tmp_path / "test" / "000"
    folder.mkdir(parents=True)
    sf.write(folder / "mix.wav", mix, rate, subtype="FLOAT")
    for k in (1, 2):
        sf.write(folder / f"spk{k}_reverb.wav", refs[k - 1], rate, subtype="FLOAT")
    summary = evaluate(
        model, test_dir=tmp_path / "test", out_dir=tmp_path / "eval", progress=False, shifts=4
    )
    direct = score_utterance(mix - mix.mean(), refs, est, rate)
    assert summary["shifts"] == 4
    assert summary["si_snr_i"] == pytest.approx(direct["si_snr_i"], abs=1e-3)
