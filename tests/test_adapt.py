"""Adaptation without references (asteroid_spmamba.adapt): the remix, the teacher update, the
chunks, the held-out score, each against a direct computation; a short run on a tiny model."""

import numpy as np
import pytest
import torch
from conftest import tiny_spmamba_args

from asteroid_spmamba import SPMamba
from asteroid_spmamba.adapt import (
    SILENT_CHUNK_DB,
    adapt,
    follow,
    recording_chunks,
    remix,
    remix_snr,
    teacher_sources,
)
from asteroid_spmamba.levels import MixtureFitLoss, match_mixture

RATE = 8000


def tiny(seed: int = 0) -> SPMamba:
    torch.manual_seed(seed)
    return SPMamba(**tiny_spmamba_args(sample_rate=RATE)).eval()


def test_remix_draws_each_source_slot_from_a_permutation_of_the_batch():
    sources = torch.randn(6, 3, 50, dtype=torch.float64)
    mixtures, targets = remix(sources, torch.Generator().manual_seed(1))
    torch.testing.assert_close(mixtures, targets.sum(1))
    torch.testing.assert_close(targets[:, 0], sources[:, 0])  # slot 0 stays in place
    for k in range(3):  # every slot: the batch's k-th sources, each exactly once
        found = [int(torch.where((sources[:, k] == row).all(-1))[0]) for row in targets[:, k]]
        assert sorted(found) == list(range(6))
    assert not torch.equal(targets[:, 1:], sources[:, 1:])  # seed 1 moves something


def test_follow_is_the_moving_average_of_the_weights():
    teacher, student = tiny(0), tiny(1)
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    follow(teacher, student, 0.9)
    params = dict(teacher.named_parameters())
    for name, s in student.named_parameters():
        torch.testing.assert_close(params[name], 0.9 * before[name] + 0.1 * s)
    follow(teacher, student, 0.0)
    for (_, t), (_, s) in zip(teacher.named_parameters(), student.named_parameters()):
        torch.testing.assert_close(t, s)


def test_recording_chunks_cut_pad_and_leave_out_silence():
    rng = np.random.default_rng(0)
    long = rng.standard_normal(2500) + 3.0  # DC offset removed per chunk
    short = rng.standard_normal(700)
    silent = np.concatenate([1e-4 * rng.standard_normal(1000), rng.standard_normal(1000)])
    too_short = rng.standard_normal(100)
    chunks = recording_chunks([long, short, silent, too_short], chunk=1000, min_chunk=400)
    # long: 0-1000, 1000-2000, tail 1500-2500; short: padded; silent: its loud half only
    assert chunks.shape == (5, 1000)
    torch.testing.assert_close(chunks[0], torch.tensor(long[:1000] - long[:1000].mean()).float())
    torch.testing.assert_close(chunks[2], torch.tensor(long[1500:] - long[1500:].mean()).float())
    padded_mean = float(np.float32(short).sum()) / 1000  # zero-padded, then DC removed
    torch.testing.assert_close(chunks[3, 700:], torch.full((300,), -padded_mean))
    torch.testing.assert_close(chunks.mean(-1), torch.zeros(5), atol=1e-5, rtol=0)
    energy = chunks.pow(2).mean(-1)
    assert energy.min() >= energy.max() * 10 ** (SILENT_CHUNK_DB / 10)
    with pytest.raises(ValueError, match="least this model separates"):
        recording_chunks([too_short], chunk=1000, min_chunk=400)
    with pytest.raises(ValueError, match="1-D"):
        recording_chunks([np.zeros((2, 1000))], chunk=1000, min_chunk=400)


def test_teacher_sources_are_the_fitted_estimates_and_the_score_is_the_loss():
    model = tiny()
    mix = torch.randn(3, 2 * RATE)
    mix = mix - mix.mean(-1, keepdim=True)
    with torch.no_grad():
        direct, _ = match_mixture(model(mix), mix)
    torch.testing.assert_close(teacher_sources(model, mix), direct.float())
    remixed, targets = remix(direct.float(), torch.Generator().manual_seed(0))
    with torch.no_grad():
        whole = -float(MixtureFitLoss()(model(remixed), targets, remixed))
    assert remix_snr(model, remixed, targets, batch_size=3) == pytest.approx(whole, abs=1e-4)
    # in two batches of 2 and 1, weighted by their sizes
    with torch.no_grad():
        parts = [
            -float(MixtureFitLoss()(model(m), t, m))
            for m, t in [(remixed[:2], targets[:2]), (remixed[2:], targets[2:])]
        ]
    expected = (2 * parts[0] + parts[1]) / 3
    assert remix_snr(model, remixed, targets, batch_size=2) == pytest.approx(expected, abs=1e-4)


def _recordings(seconds=6.0, n=3):
    rng = np.random.default_rng(0)
    return [0.1 * rng.standard_normal(int(seconds * RATE)).astype(np.float32) for _ in range(n)]


def test_adapt_leaves_the_model_alone_and_keeps_the_best_teacher():
    model = tiny()
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    result = adapt(
        model,
        _recordings(),
        steps=4,
        batch_size=2,
        chunk_seconds=1.0,
        eval_every=2,
        lr=1e-3,
        progress=False,
    )
    for k, v in model.state_dict().items():
        assert torch.equal(v, weights[k]), f"adapt changed the given model's {k}"
    assert [s for s, _ in result.scores] == [0, 2, 4]
    assert result.steps == 4 and result.stopped == "steps"
    assert result.train_chunks + result.held_out_chunks == 18
    best = max(result.scores, key=lambda s: s[1])
    assert result.best_step == best[0]
    assert not result.model.training
    if result.best_step:  # the teacher changed: its weights differ from the given model's
        assert any(not torch.equal(v, weights[k]) for k, v in result.model.state_dict().items())
    summary = result.summary()
    assert summary["held_out_remix_snr_db"]["before"] == round(result.scores[0][1], 2)
    assert summary["steps"] == 4


def test_adapt_without_learning_returns_the_model_as_given():
    model = tiny()
    result = adapt(
        model,
        _recordings(),
        steps=2,
        batch_size=2,
        chunk_seconds=1.0,
        eval_every=1,
        lr=0.0,
        progress=False,
    )
    assert result.best_step == 0 or result.gain_db == pytest.approx(0.0, abs=1e-6)
    for k, v in model.state_dict().items():
        torch.testing.assert_close(result.model.state_dict()[k], v)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(batch_size=1), "batch_size must be at least 2"),
        (dict(steps=0), "must be positive"),
        (dict(held_out=1.0), "held_out must be a share"),
    ],
)
def test_adapt_refuses_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        adapt(tiny(), _recordings(), progress=False, chunk_seconds=1.0, **kwargs)


def _write_set(root, n=2, seconds=1.5, rate=RATE):
    """An Echo2Mix-layout folder of random two-source mixtures."""
    import soundfile as sf

    rng = np.random.default_rng(1)
    for i in range(n):
        folder = root / f"{i:03d}"
        folder.mkdir(parents=True)
        refs = 0.1 * rng.standard_normal((2, int(seconds * rate))).astype(np.float32)
        for k, ref in enumerate(refs):
            sf.write(folder / f"spk{k + 1}_reverb.wav", ref, rate, subtype="FLOAT")
        sf.write(folder / "mix.wav", refs.sum(0), rate, subtype="FLOAT")
    return root


def test_check_si_snri_is_the_mean_gain_of_the_separated_files(tmp_path):
    import soundfile as sf

    from asteroid_spmamba.adapt import check_si_snri
    from asteroid_spmamba.inference import separate_array
    from asteroid_spmamba.scoring import best_permutation, si_snr

    model = tiny()
    root = _write_set(tmp_path / "set")
    gains = []
    for folder in sorted(root.iterdir()):
        mix = sf.read(folder / "mix.wav", dtype="float32")[0]
        refs = np.stack(
            [sf.read(folder / f"spk{k}_reverb.wav", dtype="float32")[0] for k in (1, 2)]
        )
        est = separate_array(mix, RATE, model)
        est = est[list(best_permutation(refs, est))]
        gains.append(si_snr(refs, est).mean() - si_snr(refs, mix[None]).mean())
    assert check_si_snri(model, root) == pytest.approx(float(np.mean(gains)), abs=1e-6)
    with pytest.raises(FileNotFoundError, match="Echo2Mix layout"):
        check_si_snri(model, tmp_path)


def test_adapt_command_saves_a_model_with_its_card_and_refuses_a_used_folder(tmp_path, capsys):
    import json

    import soundfile as sf

    from asteroid_spmamba import load_model
    from asteroid_spmamba.commands import main

    tiny().save_pretrained(str(tmp_path / "model"))
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    for i, wav in enumerate(_recordings(seconds=2.0, n=2)):
        sf.write(recordings / f"r{i}.wav", wav, RATE)
    check = _write_set(tmp_path / "check")
    out = tmp_path / "adapted"
    argv = [
        "adapt",
        str(tmp_path / "model"),
        str(recordings),
        "--out-dir",
        str(out),
        "--steps",
        "2",
        "--batch-size",
        "2",
        "--chunk-seconds",
        "1",
        "--check-dir",
        str(check),
        "--device",
        "cpu",
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "2 recording(s)" in printed and "check on" in printed
    info = json.loads((out / "config.json").read_text())["infos"]["adaptation"]
    assert info["steps"] == 2 and info["recordings"] == 2
    assert set(info["check"]) == {"set", "si_snri_before", "si_snri_after"}
    assert "adapted without references" in (out / "README.md").read_text()
    assert isinstance(load_model(str(out)), SPMamba)
    # a folder holding something is refused before any work, and left as it was
    before = sorted(p.name for p in out.iterdir())
    assert main(argv) == 1
    assert "not empty" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == before


def test_separate_adapt_adapts_on_the_inputs_then_writes_them(tmp_path, capsys):
    import soundfile as sf

    from asteroid_spmamba.commands import main

    tiny().save_pretrained(str(tmp_path / "model"))
    wav = _recordings(seconds=3.0, n=1)[0]
    sf.write(tmp_path / "talk.wav", wav, RATE)
    argv = [
        "separate",
        str(tmp_path / "model"),
        str(tmp_path / "talk.wav"),
        "-o",
        str(tmp_path / "o"),
        "--adapt",
        "--adapt-steps",
        "2",
        "--device",
        "cpu",
        "-q",
    ]
    assert main(argv) == 0
    assert "adapted on 1 file(s): 2 steps" in capsys.readouterr().out
    outputs = [sf.read(tmp_path / "o" / f"talk_spk{k}.wav")[0] for k in (1, 2)]
    assert all(len(x) == len(wav) for x in outputs)
    np.testing.assert_allclose(sum(outputs), wav - wav.mean(), atol=1e-4)  # they add up


def test_the_commands_default_to_the_functions_settings():
    """`adapt` and `separate --adapt` build their parsers without torch, so they spell the defaults
    out; they must stay those of `adapt()`."""
    import inspect

    from asteroid_spmamba.commands import build_parser

    defaults = {
        k: p.default
        for k, p in inspect.signature(adapt).parameters.items()
        if p.default is not p.empty
    }
    parser = build_parser()
    command = parser.parse_args(["adapt", "m", "rec.wav", "--out-dir", "out"])
    for name in ("steps", "batch_size", "chunk_seconds", "lr", "held_out"):
        assert getattr(command, name) == defaults[name], name
    assert command.minutes is None and defaults["max_seconds"] is None
    separate = parser.parse_args(["separate", "m", "rec.wav", "--adapt"])
    assert separate.adapt_steps == defaults["steps"]
