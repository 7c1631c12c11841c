"""One shape convention for every separation entry point (that of ``model(x)``), chunked by
default, and the inputs a new user passes by mistake: each row of the table is one case."""

import os
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from asteroid_spmamba import commands, inference
from asteroid_spmamba.inference import CHUNK_SECONDS, TruncatedAudioWarning, separate_array
from asteroid_spmamba.models import SPMamba

RATE = 8000


@pytest.fixture(scope="module")
def model():
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


def speech_like(seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.2 * np.sin(2 * np.pi * 180 * t) + 0.05 * rng.standard_normal(t.size)).astype(
        np.float32
    )


class LengthRecorder(torch.nn.Module):
    """Two fixed linear "sources"; records the length of every input it is given."""

    sample_rate = RATE

    def __init__(self):
        super().__init__()
        self.lengths = []

    def forward(self, x):
        self.lengths.append(x.shape[-1])
        return torch.stack([x, -2.0 * x], dim=1)


# ------------------------------------------------------------------------------------------------
# Shapes: (case, input built from two mono waveforms a and b, expected output shape)
SHAPES = [
    ("(time,)", lambda a, b: a, (2, 1600)),
    ("(batch, time): a batch, not channels", lambda a, b: np.stack([a, b]), (2, 2, 1600)),
    ("(batch, 1, time)", lambda a, b: np.stack([a, b])[:, None], (2, 2, 1600)),
    ("torch (time,)", lambda a, b: torch.from_numpy(a), (2, 1600)),
    ("int16 (time,)", lambda a, b: np.round(a * 2**15).astype(np.int16), (2, 1600)),
]


@pytest.mark.parametrize("case,make,shape", SHAPES, ids=[c[0] for c in SHAPES])
def test_separate_array_follows_the_shapes_of_model_x(model, case, make, shape):
    a, b = speech_like(0.2, 1), speech_like(0.2, 2)
    out = separate_array(make(a, b), RATE, model)
    assert out.shape == shape, case
    alone = separate_array(a, RATE, model)  # each item of a batch is separated on its own
    first = out if out.ndim == 2 else out[0]
    np.testing.assert_allclose(first, alone, atol=1e-3 if "int16" in case else 1e-6)
    if out.ndim == 3:
        np.testing.assert_allclose(out[1], separate_array(b, RATE, model), atol=1e-6)


# model.separate: (case, input, expected type, expected shape)
MODEL_SEPARATE = [
    ("1-D numpy", lambda a: a, np.ndarray, (2, 1600)),
    ("int16 numpy", lambda a: np.round(a * 2**15).astype(np.int16), np.ndarray, (2, 1600)),
    ("torch (time,)", lambda a: torch.from_numpy(a), torch.Tensor, (2, 1600)),
    ("torch (batch, time)", lambda a: torch.from_numpy(a)[None], torch.Tensor, (1, 2, 1600)),
    ("numpy (batch, 1, time)", lambda a: a[None, None], np.ndarray, (1, 2, 1600)),
]


@pytest.mark.parametrize("case,make,kind,shape", MODEL_SEPARATE, ids=[c[0] for c in MODEL_SEPARATE])
def test_model_separate_takes_what_separate_array_takes(model, case, make, kind, shape):
    a = speech_like(0.2, 3)
    out = model.separate(make(a))
    assert isinstance(out, kind) and tuple(out.shape) == shape, case
    flat = np.asarray(out).reshape(2, -1)
    np.testing.assert_allclose(
        flat, separate_array(a, RATE, model), atol=1e-3 if "int16" in case else 1e-6
    )


def test_model_separate_takes_a_path_and_resamples_on_request(model, tmp_path):
    a = speech_like(0.2, 4)
    sf.write(tmp_path / "mix.wav", a, RATE, subtype="FLOAT")
    model.separate(tmp_path / "mix.wav")  # a pathlib.Path, not only a str
    written = sf.read(tmp_path / "mix_est1.wav")[0]
    assert written.shape == a.shape
    with pytest.raises(ValueError, match="resample=True"):
        model.separate(torch.from_numpy(a), sample_rate=16000)
    up = model.separate(torch.from_numpy(a), sample_rate=16000, resample=True)
    assert up.shape == (2, a.size)


# ------------------------------------------------------------------------------------------------
def test_the_api_separates_long_recordings_in_chunks_by_default():
    recorder = LengthRecorder()
    seconds = 2.5 * CHUNK_SECONDS
    wav = speech_like(seconds, 5)
    out = separate_array(wav, RATE, recorder)
    assert out.shape == (2, wav.size)
    assert len(recorder.lengths) >= 3
    assert max(recorder.lengths) == int(CHUNK_SECONDS * RATE)
    recorder.lengths.clear()
    separate_array(wav, RATE, recorder, chunk_seconds=None)  # asked for: one pass
    assert recorder.lengths == [wav.size]


def test_the_command_line_and_the_api_share_the_default_chunk():
    parser = commands.build_parser()
    args = parser.parse_args(["separate", "m", "x.wav"])
    assert args.chunk_seconds == CHUNK_SECONDS


# ------------------------------------------------------------------------------------------------
# Inputs too short to separate: (case, samples) -> ValueError naming the minimum
TOO_SHORT = [("one sample", 1), ("shorter than one analysis window", 40)]


@pytest.mark.parametrize("case,samples", TOO_SHORT, ids=[c[0] for c in TOO_SHORT])
def test_a_recording_shorter_than_the_model_needs_is_refused(model, tmp_path, case, samples):
    wav = speech_like(1.0, 6)[:samples]
    with pytest.raises(ValueError, match="too short to separate") as info:
        separate_array(wav, RATE, model)
    assert "at least 64 samples" in str(info.value)
    path = tmp_path / "short.wav"
    sf.write(path, wav, RATE, subtype="FLOAT")
    with pytest.raises(ValueError, match="too short to separate") as info:
        inference.separate_file(path, model)
    assert str(path) in str(info.value)


def truncated_wav(path: Path, seconds: float = 1.0) -> None:
    sf.write(path, speech_like(seconds, 7), RATE, subtype="PCM_16")
    with open(path, "r+b") as f:  # an interrupted copy: the header still announces the whole
        f.truncate(os.path.getsize(path) // 2)


def test_a_truncated_wav_is_separated_with_a_warning(model, tmp_path):
    path = tmp_path / "cut.wav"
    truncated_wav(path)
    with pytest.warns(TruncatedAudioWarning, match="looks truncated") as caught:
        out, rate = inference.separate_file(path, model)
    assert rate == RATE and out.shape[-1] == sf.info(str(path)).frames
    assert caught[0].filename == __file__  # the warning names the user's line, not ours
    with pytest.warns(TruncatedAudioWarning) as caught:
        inference.separate_to_files(path, model, tmp_path / "out")
    assert caught[0].filename == __file__
    whole = tmp_path / "whole.wav"
    sf.write(whole, speech_like(1.0, 7), RATE, subtype="PCM_16")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", TruncatedAudioWarning)
        inference.separate_file(whole, model)  # a whole file: no warning


# ------------------------------------------------------------------------------------------------
# The command line: (case, how to build -o under tmp_path, words of the error)
BAD_OUTPUT_FOLDERS = [
    ("-o is a file", lambda tmp: _touch(tmp / "a_file"), "is a file; give a folder"),
    ("-o inside a file", lambda tmp: _touch(tmp / "a_file") / "sub", "cannot be created"),
]


def _touch(path: Path) -> Path:
    path.write_text("not a folder")
    return path


@pytest.fixture(scope="module")
def saved_model(model, tmp_path_factory):
    folder = tmp_path_factory.mktemp("m") / "tiny"
    model.save_pretrained(folder)
    return folder


@pytest.mark.parametrize(
    "case,make,words", BAD_OUTPUT_FOLDERS, ids=[c[0] for c in BAD_OUTPUT_FOLDERS]
)
def test_an_unusable_output_folder_is_refused_before_any_work(
    saved_model, tmp_path, capsys, monkeypatch, case, make, words
):
    wav = tmp_path / "in.wav"
    sf.write(wav, speech_like(0.5, 8), RATE, subtype="FLOAT")
    outdir = make(tmp_path)
    monkeypatch.setattr(  # the command imports it when it runs
        inference,
        "separate_to_files",
        lambda *a, **k: pytest.fail("separated before the check"),
    )
    rc = commands.main(["separate", str(saved_model), str(wav), "-o", str(outdir), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and words in err and err.count("error:") == 1, err


@pytest.mark.skipif(
    sys.platform == "win32" or os.geteuid() == 0, reason="root writes into read-only folders"
)
def test_a_read_only_output_folder_is_refused(saved_model, tmp_path, capsys):
    wav = tmp_path / "in.wav"
    sf.write(wav, speech_like(0.5, 8), RATE, subtype="FLOAT")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    rc = commands.main(["separate", str(saved_model), str(wav), "-o", str(locked / "out")])
    assert rc == 2 and "is not writable" in capsys.readouterr().err


def test_the_command_line_warns_of_a_truncated_file_and_separates_it(saved_model, tmp_path, capsys):
    path = tmp_path / "cut.wav"
    truncated_wav(path)
    rc = commands.main(["separate", str(saved_model), str(path), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 0 and "warning:" in err and "looks truncated" in err, err
    assert (tmp_path / "cut_spk1.wav").is_file()


def test_the_command_line_refuses_a_one_sample_file(saved_model, tmp_path, capsys):
    path = tmp_path / "one.wav"
    sf.write(path, np.zeros(1, np.float32), RATE, subtype="FLOAT")
    rc = commands.main(["separate", str(saved_model), str(path), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 1 and "too short to separate" in err and err.count(str(path)) == 1, err
    assert not (tmp_path / "one_spk1.wav").exists()


def test_separate_without_a_model_uses_the_best_shipped_one(tmp_path, capsys):
    """`separate FILE`: the shipped default for the device separates it, and the command says
    which; the default is the table's (one row per device type, CPU for the others)."""
    from asteroid_spmamba import loading

    wav = tmp_path / "in.wav"
    mixture = 0.3 * speech_like(1.0, 3)  # 8,000 samples, written as 0.5 s at 16 kHz
    sf.write(wav, mixture, 16000, subtype="FLOAT")
    rc = commands.main(["separate", str(wav), "-o", str(tmp_path / "out"), "--device", "cpu", "-q"])
    out = capsys.readouterr().out
    assert rc == 0 and f"model: {loading.DEFAULT_MODELS['cpu']} (the default on cpu" in out, out
    written = [sf.read(tmp_path / "out" / f"in_spk{k}.wav")[0] for k in (1, 2)]
    assert all(len(w) == len(mixture) for w in written)
    assert np.allclose(written[0] + written[1], mixture - mixture.mean(), atol=1e-3)
    assert loading.default_model("cuda:0") == loading.DEFAULT_MODELS["cuda"]
    assert loading.default_model("meta") == loading.DEFAULT_MODELS["cpu"]


def test_separate_tells_a_model_from_an_input(saved_model, tmp_path, capsys, monkeypatch):
    from asteroid_spmamba import loading

    monkeypatch.setitem(loading.DEFAULT_MODELS, "cpu", str(saved_model))
    folder = tmp_path / "recordings"
    folder.mkdir()
    sf.write(folder / "a.wav", speech_like(0.5, 4), RATE, subtype="FLOAT")
    # a folder of recordings first: the default model (here the tiny one) separates it
    assert commands.main(["separate", str(folder), "--device", "cpu", "-q"]) == 0
    assert f"model: {saved_model}" in capsys.readouterr().out
    assert (folder / "a_spk2.wav").is_file()
    # a model folder first, then the inputs: as before
    sf.write(folder / "b.wav", speech_like(0.5, 5), RATE, subtype="FLOAT")
    assert commands.main(["separate", str(saved_model), str(folder / "b.wav"), "-q"]) == 0
    assert "model:" not in capsys.readouterr().out and (folder / "b_spk1.wav").is_file()
    # a model alone: nothing to separate, said before any work
    assert commands.main(["separate", str(saved_model)]) == 2
    assert "nothing to separate" in capsys.readouterr().err
    legacy = tmp_path / "legacy"  # a folder in a format the loader also reads (Asteroid's)
    legacy.mkdir()
    (legacy / "model.pth").write_bytes(b"")
    assert commands.main(["separate", str(legacy)]) == 2
    assert "nothing to separate" in capsys.readouterr().err
    # a missing audio file is an input, reported as missing (not as an unknown model), and before
    # any model is loaded (a release would be downloaded first)
    monkeypatch.setattr(loading, "load_model", lambda *a, **k: pytest.fail("loaded a model"))
    assert commands.main(["separate", str(tmp_path / "missing.wav"), "-q"]) == 1
    assert "missing.wav: no such file" in capsys.readouterr().err
    assert commands.main(["separate", "spmamba-echo2mix", str(tmp_path / "typo.wav")]) == 1
    assert "typo.wav: no such file" in capsys.readouterr().err
