"""Chunked separation, speaker alignment across chunks, resampling and the ``separate`` command."""

import argparse

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio.functional as AF

from asteroid_spmamba import hub, inference
from asteroid_spmamba.levels import match_mixture, remove_dc
from asteroid_spmamba.models import SPMamba

RATE = 8000


def tiny_spmamba() -> SPMamba:
    torch.manual_seed(0)
    return SPMamba(
        n_fft=64,
        hop_length=16,
        n_layers=1,
        emb_dim=8,
        emb_ks=2,
        n_head=2,
        d_state=4,
        expand=1,
        approx_qk_dim=16,
        sample_rate=RATE,
    ).eval()


@pytest.fixture(scope="module")
def model():
    return tiny_spmamba()


class LinearModel(torch.nn.Module):
    """Two "sources" that are fixed linear maps of the input: chunking must not change them."""

    sample_rate = RATE

    def forward(self, x):
        return torch.stack([x, -2.0 * x], dim=1)


class SineSplitter:
    """Separates "speaker" 1 (< 700 Hz) from "speaker" 2 (above) with an FFT mask and returns the
    two in a random order for every chunk, as a permutation-invariant model may."""

    sample_rate = RATE

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.swaps = 0
        self.chunks = 0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        spec = torch.fft.rfft(x.double())
        freqs = torch.fft.rfftfreq(x.shape[-1], 1.0 / RATE)
        low = torch.fft.irfft(spec * (freqs < 700), n=x.shape[-1]).float()
        high = x - low
        out = []
        for b in range(x.shape[0]):
            pair = [low[b], high[b]]
            self.chunks += 1
            if self.rng.random() < 0.5:
                pair.reverse()
                self.swaps += 1
            out.append(torch.stack(pair))
        return torch.stack(out)


def two_speakers(seconds: float):
    t = np.arange(int(seconds * RATE)) / RATE
    # Speaker 1 pauses in the middle, so some overlaps hold only one voice.
    envelope = np.where((t > 1.2) & (t < 1.9), 0.0, 1.0) * (0.6 + 0.4 * np.sin(2 * np.pi * 0.7 * t))
    low = (0.5 * envelope * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    high = (
        0.3 * (0.7 + 0.3 * np.cos(2 * np.pi * 0.4 * t)) * np.sin(2 * np.pi * 1800 * t + 0.3)
    ).astype(np.float32)
    return low, high


def snr_db(estimate, reference):
    return 10 * np.log10(np.sum(reference**2) / np.sum((estimate - reference) ** 2))


# ------------------------------------------------------------------------------------------------
def test_chunk_covering_the_file_equals_one_pass(model):
    from asteroid_spmamba.levels import match_mixture, remove_dc

    wav = np.random.default_rng(1).standard_normal(RATE // 2).astype(np.float32) * 0.1 + 0.05
    with torch.no_grad():
        mix = remove_dc(torch.from_numpy(wav)[None])
        reference = match_mixture(model(mix), mix)[0][0].numpy()
    for chunk in (None, 10.0):
        estimate = inference.separate_array(
            wav, RATE, model, chunk_seconds=chunk, overlap_seconds=1.0
        )
        assert estimate.shape == (2, len(wav))
        np.testing.assert_allclose(estimate, reference, atol=1e-6, rtol=0)


@pytest.mark.parametrize("chunk,overlap,batch", [(0.5, 0.1, 1), (0.5, 0.25, 3), (0.37, 0.05, 2)])
def test_overlap_add_reconstructs_a_chunk_invariant_model(chunk, overlap, batch):
    # A last chunk shorter than the others, batches that do not divide the chunk count.
    wav = np.random.default_rng(2).standard_normal(20011).astype(np.float32)
    estimate = inference.separate_array(
        wav, RATE, LinearModel(), chunk_seconds=chunk, overlap_seconds=overlap, batch_size=batch
    )
    # x and -2x fitted to the mixture share it: x/2 each (minus each chunk's mean, which the
    # cross-fade blends smoothly: sample-to-sample differences are the input's)
    np.testing.assert_allclose(estimate[0], estimate[1], atol=1e-6)
    np.testing.assert_allclose(np.diff(estimate.sum(0)), np.diff(wav), atol=1e-3)
    assert abs(np.mean(estimate.sum(0) - wav)) < 0.05


def test_chunk_plan_and_fade_are_consistent():
    # Last chunk moved back from 9000 to the end of the last-but-two chunk (3000 + 4000).
    starts, size = inference._chunk_plan(10_500, 4000, 1000)
    assert size == 4000 and starts == [0, 3000, 6000, 7000]
    assert inference._chunk_plan(12_000, 4000, 1000)[0] == [
        0,
        3000,
        6000,
        8000,
    ]  # full-size last chunk
    assert inference._chunk_plan(10_000, 4000, 1000)[0] == [0, 3000, 6000]
    assert inference._chunk_plan(5_000, 4000, 1000)[0] == [0, 1000]
    assert inference._chunk_plan(3_000, 4000, 1000) == ([0], 3000)
    fade = inference._fade_in(7)
    np.testing.assert_allclose(fade + fade[::-1], 1.0, atol=1e-6)  # fade-in + fade-out = 1
    assert np.all(np.diff(fade) > 0)


def test_speakers_keep_their_order_across_chunks():
    low, high = two_speakers(3.0)
    splitter = SineSplitter(seed=3)
    estimate = inference.separate_array(
        low + high, RATE, splitter, chunk_seconds=0.5, overlap_seconds=0.125, batch_size=2
    )
    assert splitter.chunks >= 7 and 0 < splitter.swaps < splitter.chunks  # the order did change
    first = 0 if np.dot(estimate[0], low) > np.dot(estimate[1], low) else 1
    # One swap left anywhere would pull these below ~0 dB.
    assert snr_db(estimate[first], low) > 20
    assert snr_db(estimate[1 - first], high) > 20
    # Segment by segment too (a swap over a short stretch would not move the global SNR much).
    seg = RATE // 4
    for s in range(0, len(high) - seg + 1, seg):
        assert snr_db(estimate[1 - first, s : s + seg], high[s : s + seg]) > 15, s


def test_best_permutation_hand_computed():
    prev = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    cur = prev[[2, 0, 1]] * 0.5
    order = inference._best_permutation(prev, cur)
    np.testing.assert_array_equal(order, [1, 2, 0])
    np.testing.assert_allclose(cur[order], prev * 0.5)


def test_resampling_16k_file_into_8k_model(model, tmp_path):
    rate = 16000
    wav = (np.random.default_rng(4).standard_normal(rate // 2 + 3) * 0.1).astype(np.float32)
    path = tmp_path / "mix16k.wav"
    sf.write(path, wav, rate, subtype="FLOAT")
    estimate, out_rate = inference.separate_file(path, model=model)
    assert out_rate == rate and estimate.shape == (2, len(wav))
    with torch.no_grad():
        down = remove_dc(AF.resample(torch.from_numpy(wav), rate, RATE))[None]
        reference = AF.resample(match_mixture(model(down), down)[0][0], RATE, rate)[
            :, : len(wav)
        ].numpy()
    np.testing.assert_allclose(estimate, reference, atol=2e-5, rtol=0)
    # Chunked + resampled: the linear model gives back the input band-limited by the round trip
    # (the two outputs sum to it, less each chunk's mean, blended smoothly).
    estimate = inference.separate_array(
        wav, rate, LinearModel(), chunk_seconds=0.1, overlap_seconds=0.03
    )
    round_trip = AF.resample(AF.resample(torch.from_numpy(wav), rate, RATE), RATE, rate)[
        : len(wav)
    ].numpy()
    # (at the two ends, the resampling filter meets each chunk's mean removed: a few samples differ)
    np.testing.assert_allclose(np.diff(estimate.sum(0))[8:-8], np.diff(round_trip)[8:-8], atol=1e-4)


def test_channel_choice_and_errors(tmp_path):
    rng = np.random.default_rng(5)
    stereo = (rng.standard_normal((4000, 2)) * 0.1).astype(np.float32)
    path = tmp_path / "stereo.wav"
    sf.write(path, stereo, RATE, subtype="FLOAT")
    first, _ = inference.separate_file(path, model=LinearModel())
    second, _ = inference.separate_file(path, model=LinearModel(), channel=1)
    np.testing.assert_allclose(first.sum(0), stereo[:, 0] - stereo[:, 0].mean(), atol=1e-6)
    np.testing.assert_allclose(second.sum(0), stereo[:, 1] - stereo[:, 1].mean(), atol=1e-6)
    with pytest.raises(ValueError, match="2 channel"):
        inference.separate_file(path, model=LinearModel(), channel=2)
    with pytest.raises(ValueError, match="half"):
        inference.separate_file(path, model=LinearModel(), chunk_seconds=0.2, overlap_seconds=0.15)
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="empty"):
        inference.separate_file(empty, model=LinearModel())


def test_streamed_files_match_in_memory_result(model, tmp_path):
    rate = 11025  # resampled both ways, streamed in blocks
    wav = (np.random.default_rng(6).standard_normal(rate) * 0.1).astype(np.float32)
    path = tmp_path / "in.flac"
    sf.write(path, wav, rate)
    expected, _ = inference.separate_file(
        path, model=model, chunk_seconds=0.4, overlap_seconds=0.1, batch_size=2
    )
    written, seconds = inference.separate_to_files(
        path, model, tmp_path / "out", chunk_seconds=0.4, overlap_seconds=0.1, batch_size=2
    )
    assert [p.name for p in written] == ["in_spk1.wav", "in_spk2.wav"]
    assert seconds == pytest.approx(1.0)
    for k, p in enumerate(written):
        data, out_rate = sf.read(p, dtype="float32")
        assert out_rate == rate and data.shape == (len(wav),)
        np.testing.assert_allclose(data, expected[k], atol=1e-6)
    assert not [p for p in (tmp_path / "out").iterdir() if ".tmp-" in p.name]


# ------------------------------------------------------------------------------------------------
def run_cli(argv):
    from asteroid_spmamba.commands import separate

    parser = argparse.ArgumentParser()
    separate.add_subcommand(parser.add_subparsers())
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_folder_with_bad_files(model, tmp_path, capsys):
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    rng = np.random.default_rng(7)
    good = (rng.standard_normal(3000) * 0.1).astype(np.float32)
    sf.write(folder / "good.wav", good, RATE, subtype="PCM_16")
    sf.write(folder / "sub" / "other.flac", good[:2000], 16000)
    (folder / "corrupt.wav").write_bytes(
        b"RIFF\x10\x00\x00\x00WAVEjunkjunkjunk" + bytes(rng.integers(0, 255, 200, dtype=np.uint8))
    )
    (folder / "empty.wav").write_bytes(b"")
    sf.write(folder / "old_spk1.wav", good, RATE)  # an earlier output: not an input
    model_dir = hub.save_pretrained(model, tmp_path / "model")
    out = tmp_path / "out"

    code = run_cli(
        [
            "separate",
            str(model_dir),
            str(folder),
            "-o",
            str(out),
            "--chunk-seconds",
            "0.25",
            "--overlap",
            "0.05",
            "--batch-size",
            "2",
            "-q",
        ]
    )
    captured = capsys.readouterr()
    assert code == 1
    assert "corrupt.wav" in captured.err and "empty.wav" in captured.err
    assert (
        "separated 2 file(s)" in captured.out
        and "2 failed" in captured.out
        and "RTF" in captured.out
    )
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == [
        "good_spk1.wav",
        "good_spk2.wav",
        "sub",
        "sub/other_spk1.wav",
        "sub/other_spk2.wav",
    ]
    data, rate = sf.read(out / "good_spk1.wav")
    assert rate == RATE and len(data) == len(good)
    data, rate = sf.read(out / "sub" / "other_spk2.wav")
    assert rate == 16000 and len(data) == 2000
    # The same result as the Python API.
    expected, _ = inference.separate_file(
        folder / "good.wav", model=model, chunk_seconds=0.25, overlap_seconds=0.05, batch_size=2
    )
    np.testing.assert_allclose(
        sf.read(out / "good_spk2.wav", dtype="float32")[0], expected[1], atol=1e-6
    )


def test_cli_legacy_checkpoint_beside_input(model, tmp_path, capsys):
    checkpoint = tmp_path / "best_model.pth"
    torch.save(model.serialize(), checkpoint)
    wav = tmp_path / "mix.wav"
    sf.write(wav, np.zeros(800, dtype=np.float32) + 0.01, RATE)
    assert run_cli(["separate", str(checkpoint), str(wav), "-q"]) == 0
    assert (tmp_path / "mix_spk1.wav").is_file() and (tmp_path / "mix_spk2.wav").is_file()
    assert "0 failed" in capsys.readouterr().out
    assert run_cli(["separate", str(tmp_path / "missing.pth"), str(wav), "-q"]) == 2
    assert run_cli(["separate", str(checkpoint), str(tmp_path / "nothing.wav"), "-q"]) == 1


def test_registered_in_the_command_line():
    from asteroid_spmamba import commands
    from asteroid_spmamba.commands import separate

    assert "asteroid_spmamba.commands.separate" in commands.COMMAND_MODULES
    args = commands.build_parser().parse_args(
        ["separate", "org/model", "a.wav", "--chunk-seconds", "4"]
    )
    assert args.func is separate.run_separate and args.chunk_seconds == 4.0 and args.channel == 0


# ------------------------------------------------------------------------------------------------
# Command-line traps (issue: one separation API and command-line errors that help)
@pytest.mark.parametrize(
    "extra, code, message",
    [
        (["--chunk-seconds", "-1"], 2, "must be positive (0 or None: the whole file at once)"),
        (
            ["--chunk-seconds", "0.002", "--overlap", "0"],
            2,
            "shorter than the model's shortest input, 64 samples",
        ),
        (["--chunk-seconds", "0"], 0, "separated 1 file(s)"),
    ],
)
def test_cli_chunk_seconds(model, tmp_path, capsys, extra, code, message):
    wav = (np.random.default_rng(8).standard_normal(2000) * 0.1).astype(np.float32)
    sf.write(tmp_path / "a.wav", wav, RATE)
    model_dir = hub.save_pretrained(model, tmp_path / "model")
    assert (
        run_cli(
            [
                "separate",
                str(model_dir),
                str(tmp_path / "a.wav"),
                "-o",
                str(tmp_path / "out"),
                "-q",
                *extra,
            ]
        )
        == code
    )
    captured = capsys.readouterr()
    assert message in captured.out + captured.err


def test_cli_skips_earlier_outputs_of_both_apis_and_names_a_path_once(model, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    wav = (np.random.default_rng(9).standard_normal(2000) * 0.1).astype(np.float32)
    for name in (
        "a_est1.wav",
        "a_est2.wav",
        "a_spk1.wav",
    ):  # model.separate's and this command's outputs
        sf.write(folder / name, wav, RATE)
    model_dir = hub.save_pretrained(model, tmp_path / "model")
    assert run_cli(["separate", str(model_dir), str(folder), "-q"]) == 1
    assert "nothing to separate; skipped 3 earlier output(s)" in capsys.readouterr().err
    (tmp_path / "empty.wav").write_bytes(b"")
    assert run_cli(["separate", str(model_dir), str(tmp_path / "empty.wav"), "-q"]) == 1
    err = capsys.readouterr().err
    assert err.count("empty.wav") == 1 and "error:" in err


def test_python_dash_m_runs_the_command_line():
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "asteroid_spmamba", "--version"], capture_output=True, text=True
    )
    assert done.returncode == 0 and done.stdout.strip()


def test_separate_file_takes_resample_and_the_cli_names_the_channel(model, tmp_path, capsys):
    wav = (np.random.default_rng(10).standard_normal((3000, 2)) * 0.1).astype(np.float32)
    sf.write(tmp_path / "s.wav", wav, 16000)
    est, rate = inference.separate_file(tmp_path / "s.wav", model, resample=True)
    assert rate == 16000 and est.shape == (2, 3000)
    with pytest.raises(ValueError, match="resample=True"):
        inference.separate_file(tmp_path / "s.wav", model, resample=False)
    model_dir = hub.save_pretrained(model, tmp_path / "model")
    assert (
        run_cli(
            [
                "separate",
                str(model_dir),
                str(tmp_path / "s.wav"),
                "-o",
                str(tmp_path / "out"),
                "-q",
                "--channel",
                "1",
            ]
        )
        == 0
    )
    assert "s.wav: 2 channels; separating channel 1 (--channel)" in capsys.readouterr().out


# ------------------------------------------------------------------------------------------------
# The shift trick (separate --shifts)
class RecordingSwapper(torch.nn.Module):
    """Per-sample "sources" (x, -2x) in an order that flips at every call, recording the inputs'
    lengths: the average over shifts must undo both the delays and the flips."""

    sample_rate = RATE

    def __init__(self):
        super().__init__()
        self.lengths = []
        self.encoder = torch.nn.Module()
        self.encoder.stride = 12

    def forward(self, x):
        self.lengths.append(x.shape[-1])
        pair = [x, -2.0 * x] if len(self.lengths) % 2 else [-2.0 * x, x]
        return torch.stack(pair, dim=1)


def test_shift_average_delays_by_fractions_of_the_hop_and_aligns_the_passes():
    model = RecordingSwapper()
    wav = np.random.default_rng(11).standard_normal((2, 1000)).astype(np.float32)
    out = inference.separate_array(wav, RATE, model, chunk_seconds=None, shifts=3)
    assert model.lengths == [1000, 1004, 1008] * 2  # delays 0, 4, 8: a hop of 12 / 3, per item
    mix = remove_dc(torch.from_numpy(wav))
    expected = match_mixture(torch.stack([mix, -2.0 * mix], 1), mix)[0].numpy()
    np.testing.assert_allclose(out, expected, atol=1e-6)


def test_shift_average_equals_its_direct_computation(model):
    """separate_array(shifts=4) of an SPMamba: the mean of the four delayed passes, each advanced
    back and put in the first pass's speaker order, fitted to the mixture (float64 recomputed)."""
    wav = np.random.default_rng(12).standard_normal(3000).astype(np.float32) * 0.1
    out = inference.separate_array(wav, RATE, model, chunk_seconds=None, shifts=4)
    mix = remove_dc(torch.from_numpy(wav)[None]).double()
    passes = []
    with torch.no_grad():
        for offset in (0, 4, 8, 12):  # hop_length 16
            y = model.double()(torch.nn.functional.pad(mix, (offset, 0)))[..., offset:][0]
            if passes and (y[0] @ passes[0][0] + y[1] @ passes[0][1]) < (
                y[1] @ passes[0][0] + y[0] @ passes[0][1]
            ):
                y = y.flip(0)
            passes.append(y)
    model.float()
    expected = match_mixture(torch.stack(passes).mean(0)[None], mix)[0][0].numpy()
    np.testing.assert_allclose(out, expected, atol=2e-5)
    single = inference.separate_array(wav, RATE, model, chunk_seconds=None)
    assert np.abs(out - single).max() > 1e-4  # the passes differ: averaging is not a no-op
    np.testing.assert_allclose(out.sum(0), remove_dc(torch.from_numpy(wav)).numpy(), atol=1e-5)


@pytest.mark.parametrize("shifts", [0, -1, 1.5, True])
def test_shifts_must_be_a_whole_number_of_passes(model, shifts):
    with pytest.raises(ValueError, match="shifts must be a whole number of passes"):
        inference.separate_array(np.zeros(800, np.float32), RATE, model, shifts=shifts)


def test_cli_shifts(model, tmp_path, capsys):
    wav = sum(two_speakers(0.5))
    sf.write(tmp_path / "a.wav", wav, RATE)
    model_dir = hub.save_pretrained(model, tmp_path / "model")
    argv = ["separate", str(model_dir), str(tmp_path / "a.wav"), "-q", "-o"]
    assert run_cli([*argv, str(tmp_path / "out"), "--shifts", "3"]) == 0
    written = np.stack([sf.read(tmp_path / "out" / f"a_spk{k}.wav")[0] for k in (1, 2)])
    read, _ = sf.read(tmp_path / "a.wav", dtype="float32")  # 16-bit PCM
    expected = inference.separate_array(read, RATE, model, shifts=3)
    np.testing.assert_allclose(written, expected, atol=1e-6)
    assert np.abs(written - inference.separate_array(read, RATE, model)).max() > 1e-4
    with pytest.raises(SystemExit):
        run_cli([*argv, str(tmp_path / "out2"), "--shifts", "0"])
    assert "expected a whole number of passes, 1 or more, got '0'" in capsys.readouterr().err
    assert not (tmp_path / "out2").exists()
