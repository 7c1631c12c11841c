"""Model names: a misspelled name or a missing path explains itself (without asking the Hub),
``list_pretrained()`` gives small records, ``asteroid-spmamba models`` prints them as a table."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asteroid_spmamba import commands, loading, releases
from asteroid_spmamba.loading import PretrainedModel, format_pretrained, list_pretrained
from asteroid_spmamba.pretrained import list_shipped

SHIPPED = [m["name"] for m in list_shipped()]
KNOWN = SHIPPED + list(releases.RELEASES)


@pytest.fixture
def no_hub(monkeypatch):
    """Fail the test if a name reaches the Hub download."""

    def refuse(name, *args, **kwargs):
        raise AssertionError(f"{name!r} was sent to the Hub")

    monkeypatch.setattr(loading, "package_from_hub", refuse)


@pytest.mark.parametrize(
    "name, suggested",
    [
        ("spmamba-small", "spmamba-small-kokoro2mix"),  # a prefix
        ("SPMamba-Small-Kokoro2Mix", "spmamba-small-kokoro2mix"),  # case
        ("SPMAMBA-ECHO2MIX", "spmamba-echo2mix"),
        ("spmamba-echo2mx", "spmamba-echo2mix"),  # a typo
        ("spmamba-libri2mix-v2", "spmamba-libri2mix"),  # a longer name
        ("spmamba-small-kokoro2mix@main", "spmamba-small-kokoro2mix"),  # a revision: not the Hub
    ],
)
def test_misspelled_names_suggest_the_right_one(no_hub, name, suggested):
    with pytest.raises(ValueError) as err:
        loading.load_model(name)
    message = str(err.value)
    assert f"did you mean {suggested!r}" in message.lower()
    assert "asteroid-spmamba models" in message and "list_pretrained()" in message
    assert all(known in message for known in KNOWN)
    assert "\n" not in message and len(message) < 600


def test_a_name_like_none_lists_the_names(no_hub):
    with pytest.raises(ValueError) as err:
        loading.load_model("xyzzy")
    message = str(err.value)
    assert "'xyzzy'" in message and "did you mean" not in message.lower()
    assert all(known in message for known in KNOWN) and "asteroid-spmamba models" in message


@pytest.mark.parametrize(
    "path",
    [
        "./nope.pth",
        "missing/folder/model",
        "model.safetensors",
        "~/no-such-asteroid-spmamba-model",
        "epoch=3.ckpt",
        Path("no-such-folder"),  # a Path is a path, whatever it looks like
    ],
)
def test_a_missing_path_says_so(no_hub, tmp_path, monkeypatch, path):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError) as err:
        loading.load_model(path)
    assert str(err.value).startswith("no such file or folder: ")
    assert str(path) in str(err.value)


def test_an_absent_hub_id_close_to_a_name_mentions_it(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(FileNotFoundError) as err:
        loading.load_model("JusperLee/spmamba-echo2mix", cache_dir=tmp_path)
    assert "'JusperLee/spmamba-echo2mix'" in str(err.value)
    assert "did you mean 'spmamba-echo2mix'" in str(err.value)


def test_separate_with_a_misspelled_name(no_hub, tmp_path, capsys):
    sf.write(tmp_path / "x.wav", np.zeros(800, np.float32), 8000)  # inputs are checked first
    rc = commands.main(["separate", "spmamba-small", str(tmp_path / "x.wav")])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("error: ") and err.count("\n") == 1
    assert err.count("'spmamba-small'") == 1  # the name once
    assert "did you mean 'spmamba-small-kokoro2mix'" in err.lower()
    assert "asteroid-spmamba models" in err


def test_records_hold_what_the_dicts_held():
    records = list_pretrained()
    dicts = list_shipped() + releases.list_releases()
    assert [r.name for r in records] == [d["name"] for d in dicts] and records
    for record, entry in zip(records, dicts):
        assert isinstance(record, PretrainedModel)
        for key, value in entry.items():
            assert getattr(record, key) == value, (record.name, key)
        with pytest.raises(dataclasses.FrozenInstanceError):
            record.name = "other"


def test_records_print_on_one_short_line():
    for record in list_pretrained():
        for text in (str(record), repr(record)):
            assert "\n" not in text and len(text) < 120 and record.name in text
    assert len(repr(list_pretrained())) < 150 * len(list_pretrained())


def test_models_command_prints_the_table(capsys):
    assert commands.main(["models"]) == 0
    out = capsys.readouterr().out
    table = format_pretrained()
    assert table in out
    lines = table.splitlines()
    assert lines[0].split()[:2] == ["NAME", "KIND"] and len(lines) == 1 + len(KNOWN)
    for name in KNOWN:
        (line,) = [line for line in lines if line.startswith(name + " ")]
        assert ("shipped" if name in SHIPPED else "download") in line.split()
    assert all(len(line) < 140 for line in out.splitlines())
    assert "README.md" in out  # where the model cards are
    assert f"Without a name, `separate` uses {loading.DEFAULT_MODELS['cpu']} on CPU" in out
    assert commands.main(["models", "--verbose"]) == 0
    verbose = capsys.readouterr().out
    assert all(r.url in verbose for r in list_pretrained() if r.url)
