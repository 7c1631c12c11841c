"""Synthetic two-speaker corpus: determinism, layout, mixing, split rule, atomic writes, reverb."""

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asteroid_spmamba import commands
from asteroid_spmamba.data import speech, synthetic, wordlist
from asteroid_spmamba.data.mixing import make_mixture
from asteroid_spmamba.data.speech import make_sentence
from asteroid_spmamba.data.synthetic import make_corpus

SMALL = dict(n_train=6, n_valid=2, n_test=6, sample_rate=8000, words=(5, 7), progress=False)
FUNCTION_WORDS = set(wordlist.DETERMINERS) | set(wordlist.PREPOSITIONS)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_corpus(tmp_path_factory.mktemp("a") / "corpus", seed=0, num_workers=0, **SMALL)


def _wavs(root: Path):
    return sorted(p.relative_to(root) for p in root.rglob("*.wav"))


def _read_int(path):
    return sf.read(str(path), dtype="int16")[0].astype(np.int64)


def _tiny_corpus(out, n_train, n_test=0, **options):
    """A corpus of a few five-word mixtures, made in this process, no progress bar."""
    return make_corpus(
        out, n_train, 0, n_test, words=(5, 5), num_workers=0, progress=False, **options
    )


def _parameters(root):
    return json.loads((root / "corpus.json").read_text())["parameters"]


def _info(root, split):
    with open(root / "metadata" / f"{split}_info.csv") as f:
        return list(csv.DictReader(f))


def test_same_seed_same_bytes_whatever_the_workers(corpus, tmp_path):
    # a second run in two worker processes must give byte-identical files
    again = make_corpus(tmp_path / "again", seed=0, num_workers=2, **SMALL)
    assert _wavs(again) == _wavs(corpus)
    for rel in _wavs(corpus):
        assert (again / rel).read_bytes() == (corpus / rel).read_bytes(), rel
    for split in synthetic.SPLITS:
        assert (again / "metadata" / f"{split}_info.csv").read_bytes() == (
            corpus / "metadata" / f"{split}_info.csv"
        ).read_bytes()


def test_different_seed_differs(corpus, tmp_path):
    other = make_corpus(
        tmp_path / "other", seed=1, num_workers=0, **{**SMALL, "n_valid": 0, "n_test": 0}
    )
    for i in range(SMALL["n_train"]):
        rel = Path("train") / f"train-{i:05d}" / "mix.wav"
        assert (other / rel).read_bytes() != (corpus / rel).read_bytes()


def test_layout_metadata_and_description(corpus):
    desc = json.loads((corpus / "corpus.json").read_text())
    assert desc["parameters"] == {
        "generator_version": synthetic.GENERATOR_VERSION,
        "seed": 0,
        "n_train": 6,
        "n_valid": 2,
        "n_test": 6,
        "sample_rate": 8000,
        "reverb": False,
        "duration": None,
        "words": [5, 7],
        "min_overlap": 0.7,
    }
    assert desc["subtype"] == "PCM_16"
    assert desc["versions"]["espeak-ng"] and desc["versions"]["espeakng-loader"]
    for split, n in (("train", 6), ("valid", 2), ("test", 6)):
        folders = sorted((corpus / split).iterdir())
        assert [f.name for f in folders] == [f"{split}-{i:05d}" for i in range(n)]
        for f in folders:
            assert sorted(p.name for p in f.iterdir()) == [
                "mix.wav",
                "spk1_reverb.wav",
                "spk2_reverb.wav",
            ]
        with open(corpus / "metadata" / f"{split}.csv") as fh:
            reader = csv.DictReader(fh)
            rows = list(reader)
        assert reader.fieldnames == [
            "mixture_ID",
            "mixture_path",
            "source_1_path",
            "source_2_path",
            "length",
        ]
        assert len(rows) == n
        for row, folder in zip(rows, folders):
            assert row["mixture_ID"] == folder.name
            assert Path(row["mixture_path"]) == folder / "mix.wav"
            assert Path(row["source_2_path"]) == folder / "spk2_reverb.wav"
            info = sf.info(row["source_1_path"])
            assert info.samplerate == 8000 and info.subtype == "PCM_16"
            assert int(row["length"]) == info.frames == sf.info(row["mixture_path"]).frames


def test_mix_is_exactly_the_sum_of_sources(corpus):
    for folder in (corpus / "train").iterdir():
        mix, s1, s2 = (
            _read_int(folder / n) for n in ("mix.wav", "spk1_reverb.wav", "spk2_reverb.wav")
        )
        np.testing.assert_array_equal(mix, s1 + s2)
        # also when read as float, as the dataset does
        fmix = sf.read(str(folder / "mix.wav"), dtype="float32")[0]
        f1 = sf.read(str(folder / "spk1_reverb.wav"), dtype="float32")[0]
        f2 = sf.read(str(folder / "spk2_reverb.wav"), dtype="float32")[0]
        np.testing.assert_array_equal(fmix, f1 + f2)
        assert 0.2 < np.abs(fmix).max() <= 0.9 + 1e-4


def test_two_different_voices(corpus):
    for split in ("train", "test"):
        for row in _info(corpus, split):
            assert row["voice1"].split("+")[1] != row["voice2"].split("+")[1]
            assert row["text1"] != row["text2"]
            folder = corpus / split / row["mixture_ID"]
            s1, s2 = _read_int(folder / "spk1_reverb.wav"), _read_int(folder / "spk2_reverb.wav")
            corr = np.corrcoef(s1, s2)[0, 1]
            assert abs(corr) < 0.5
            # relative level within [-5, 5] dB (RMS), as recorded
            level = 10 * np.log10(np.mean(s1.astype(float) ** 2) / np.mean(s2.astype(float) ** 2))
            assert level == pytest.approx(float(row["level_db"]), abs=0.05)
            assert -5 <= level <= 5 + 0.05


def test_overlap_ratio(corpus):
    for row in _info(corpus, "train") + _info(corpus, "test"):
        assert float(row["overlap_ratio"]) >= 0.7
        folder = (
            corpus
            / ("train" if row["mixture_ID"].startswith("train") else "test")
            / row["mixture_ID"]
        )
        spans = []
        for name in ("spk1_reverb.wav", "spk2_reverb.wav"):
            nz = np.flatnonzero(_read_int(folder / name))
            spans.append((nz[0], nz[-1] + 1))
        inter = min(spans[0][1], spans[1][1]) - max(spans[0][0], spans[1][0])
        union = max(spans[0][1], spans[1][1]) - min(spans[0][0], spans[1][0])
        assert inter / union >= 0.69  # quantisation may zero a few edge samples


def test_test_split_voices_and_words_unseen_in_training(corpus):
    train_variants = {v for vs in synthetic.TRAIN_VARIANTS.values() for v in vs}
    test_variants = {v for vs in synthetic.TEST_VARIANTS.values() for v in vs}
    assert not train_variants & test_variants
    rows = {s: _info(corpus, s) for s in synthetic.SPLITS}
    for split, allowed in (
        ("train", train_variants),
        ("valid", train_variants),
        ("test", test_variants),
    ):
        for row in rows[split]:
            assert {row["voice1"].split("+")[1], row["voice2"].split("+")[1]} <= allowed

    def content(texts):
        return {w for t in texts for w in t.split()} - FUNCTION_WORDS

    seen = content(r[k] for s in ("train", "valid") for r in rows[s] for k in ("text1", "text2"))
    unseen = content(r[k] for r in rows["test"] for k in ("text1", "text2"))
    assert seen and unseen and not seen & unseen
    # the rule itself, over many sentences
    rng = np.random.default_rng(0)
    many_train = content(make_sentence(rng, int(rng.integers(5, 15)), "train") for _ in range(400))
    many_test = content(make_sentence(rng, int(rng.integers(5, 15)), "test") for _ in range(400))
    assert not many_train & many_test


def test_sentence_lengths():
    rng = np.random.default_rng(1)
    for n in range(5, 15):
        for _ in range(20):
            assert len(make_sentence(rng, n, "valid").split()) == n


def test_fixed_duration_and_16k():
    mix, sources, info = make_mixture((3, 0, 0), "train", 8000, duration=1.0, words=(5, 6))
    assert mix.shape == (8000,) and sources.shape == (2, 8000)
    np.testing.assert_array_equal(mix.astype(int), sources.astype(int).sum(0))
    assert np.abs(sources).max(axis=1).min() > 0  # both talkers present in the window
    mix8, _, info8 = make_mixture((3, 0, 1), "train", 8000, words=(5, 6))
    mix16, _, info16 = make_mixture((3, 0, 1), "train", 16000, words=(5, 6))
    assert info16["text1"] == info8["text1"] and info16["voice2"] == info8["voice2"]
    # same speech at twice the rate (silence trimming differs by a few ms)
    assert len(mix16) == pytest.approx(2 * len(mix8), rel=0.03)


def test_reuse_and_refusal(corpus, capsys, tmp_path):
    params = {k: v for k, v in SMALL.items()}
    before = {p: p.stat().st_mtime_ns for p in corpus.rglob("*")}
    assert make_corpus(corpus, seed=0, **params) == corpus
    assert "Reusing" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in corpus.rglob("*")} == before
    with pytest.raises(FileExistsError, match="other parameters.*delete"):
        make_corpus(corpus, seed=5, **params)
    not_corpus = tmp_path / "stuff"
    not_corpus.mkdir()
    (not_corpus / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not a synthetic corpus"):
        make_corpus(not_corpus, seed=0, **params)
    assert (not_corpus / "notes.txt").read_text() == "mine"
    # command line: same corpus reused (exit 0), another one refused (exit 1)
    argv = [
        "make-corpus",
        str(corpus),
        "--n-train",
        "6",
        "--n-valid",
        "2",
        "--n-test",
        "6",
        "--min-words",
        "5",
        "--max-words",
        "7",
    ]
    assert commands.main(argv) == 0
    assert commands.main(argv[:-1] + ["8"]) == 1
    assert "Choose another folder" in capsys.readouterr().err


def test_failure_leaves_nothing_behind(tmp_path, monkeypatch):
    real = synthetic._work
    calls = []

    def flaky(job):
        calls.append(job)
        if len(calls) == 3:
            raise RuntimeError("disk full")
        return real(job)

    monkeypatch.setattr(synthetic, "_work", flaky)
    out = tmp_path / "corpus"
    with pytest.raises(RuntimeError, match="disk full"):
        make_corpus(out, 3, 1, 1, words=(5, 5), num_workers=0, progress=False)
    assert list(tmp_path.iterdir()) == []  # neither the corpus nor its temporary folder


def test_empty_existing_folder_is_used(tmp_path):
    out = tmp_path / "empty"
    out.mkdir()
    _tiny_corpus(out, 1)
    assert (out / "train" / "train-00000" / "mix.wav").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]


def test_reverb_targets_are_reverberant_and_sum(tmp_path):
    dry = make_mixture((7, 0, 0), "train", 8000, reverb=False, words=(5, 5))
    wet = make_mixture((7, 0, 0), "train", 8000, reverb=True, words=(5, 5))
    assert dry[2]["text1"] == wet[2]["text1"] and dry[2]["voice2"] == wet[2]["voice2"]
    assert 0.2 <= wet[2]["rt60"] <= 0.6 and wet[2]["room"]
    np.testing.assert_array_equal(wet[0].astype(int), wet[1].astype(int).sum(0))
    d, w = dry[1][0].astype(float), wet[1][0].astype(float)
    assert len(d) == len(w)
    assert abs(np.corrcoef(d, w)[0, 1]) < 0.95  # convolved with a room response, not a copy
    out = _tiny_corpus(tmp_path / "rev", 1, n_test=1, reverb=True)
    assert _parameters(out)["reverb"] is True
    assert _info(out, "test")[0]["rt60"]


def test_an_anechoic_share_leaves_some_mixtures_dry_and_the_rest_as_before(tmp_path):
    """Each mixture is either the reverberant one (share 0, the corpus made before the option) or
    the dry one (reverb=False), never a third thing; share 1 is all dry."""
    kinds = []
    for index in range(6):
        key = (5, 0, index)
        wet = make_mixture(key, "train", 8000, reverb=True, words=(5, 5))
        dry = make_mixture(key, "train", 8000, reverb=False, words=(5, 5))
        for share, expected in ((0.0, wet), (1.0, dry)):
            got = make_mixture(key, "train", 8000, reverb=True, words=(5, 5), anechoic_share=share)
            np.testing.assert_array_equal(got[1], expected[1])
        half = make_mixture(key, "train", 8000, reverb=True, words=(5, 5), anechoic_share=0.5)
        kinds.append("dry" if np.array_equal(half[1], dry[1]) else "wet")
        np.testing.assert_array_equal(half[1], dry[1] if kinds[-1] == "dry" else wet[1])
        assert (half[2]["room"] == "") == (kinds[-1] == "dry")
    assert set(kinds) == {"dry", "wet"}, kinds  # both kinds in six draws (fixed seeds)
    out = _tiny_corpus(tmp_path / "mixed", 2, reverb=True, anechoic_share=0.5)
    assert _parameters(out)["anechoic_share"] == 0.5
    with pytest.raises(ValueError, match="add --reverb"):
        make_corpus(tmp_path / "x", 1, 0, 0, anechoic_share=0.5, progress=False)
    with pytest.raises(ValueError, match="probability"):
        make_corpus(tmp_path / "y", 1, 0, 0, reverb=True, anechoic_share=1.5, progress=False)


def test_longer_rooms_and_wider_level_spread_change_only_those_draws(tmp_path):
    """rt60_max and level_spread_db stretch one uniform draw each: the same voices, sentences and
    offsets as the defaults, the RT60 and level difference mapped from the same numbers."""
    for index in range(3):
        key = (5, 0, index)
        base = make_mixture(key, "train", 8000, reverb=True, words=(5, 5))[2]
        wide = make_mixture(
            key, "train", 8000, reverb=True, words=(5, 5), rt60_max=0.9, level_spread_db=10.0
        )[2]
        kept = ("voice1", "voice2", "text1", "text2", "offset1", "offset2", "overlap_ratio")
        assert {k: wide[k] for k in kept if k in base} == {k: base[k] for k in kept if k in base}
        assert wide["level_db"] == pytest.approx(2 * base["level_db"], abs=2e-3)
        assert 0.2 <= wide["rt60"] <= 0.9
        assert (wide["rt60"] - 0.2) / 0.7 == pytest.approx((base["rt60"] - 0.2) / 0.4, abs=5e-3)
    params = _parameters(
        _tiny_corpus(tmp_path / "wide", 1, reverb=True, rt60_max=0.8, level_spread_db=8.0)
    )
    assert (params["rt60_max"], params["level_spread_db"]) == (0.8, 8.0)
    params = _parameters(_tiny_corpus(tmp_path / "default", 1))
    assert "rt60_max" not in params and "level_spread_db" not in params  # older corpora match
    with pytest.raises(ValueError, match="add --reverb"):
        make_corpus(tmp_path / "x", 1, 0, 0, rt60_max=0.8, progress=False)
    with pytest.raises(ValueError, match="rt60_max must be"):
        make_corpus(tmp_path / "y", 1, 0, 0, reverb=True, rt60_max=0.1, progress=False)
    with pytest.raises(ValueError, match="level_spread_db must be"):
        make_corpus(tmp_path / "z", 1, 0, 0, level_spread_db=-1.0, progress=False)


def test_missing_packages_name_the_pip_command(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyroomacoustics", None)
    with pytest.raises(ImportError, match="pip install pyroomacoustics"):
        make_corpus(tmp_path / "x", 1, 0, 0, reverb=True, progress=False)
    monkeypatch.setitem(sys.modules, "espeakng_loader", None)
    with pytest.raises(ImportError, match="pip install espeakng-loader"):
        make_corpus(tmp_path / "y", 1, 0, 0, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_argument_checks(tmp_path):
    with pytest.raises(ValueError, match="8000 or 16000"):
        make_corpus(tmp_path / "x", 1, 0, 0, sample_rate=44100)
    with pytest.raises(ValueError, match="words"):
        make_corpus(tmp_path / "x", 1, 0, 0, words=(3, 4))
    with pytest.raises(ValueError, match="n_valid"):
        make_corpus(tmp_path / "x", 1, -1, 0)


def test_random_voices_in_training_only_reproducible(corpus, tmp_path):
    """random_voices=1: every train/valid voice is a random variant (deterministic from the seed,
    whatever the workers); the test split is byte-identical to the corpus without them."""
    params = {**SMALL, "n_valid": 1}
    rand = make_corpus(tmp_path / "rand", seed=0, num_workers=0, random_voices=1.0, **params)
    again = make_corpus(tmp_path / "again", seed=0, num_workers=2, random_voices=1.0, **params)
    for rel in _wavs(rand):
        assert (again / rel).read_bytes() == (rand / rel).read_bytes(), rel
    for split in ("train", "valid"):
        for row in _info(rand, split):
            for key in ("voice1", "voice2"):
                assert row[key].split("+")[1].startswith("random-"), row[key]
    # every voice is a variant of its own
    rows = _info(rand, "train")
    assert len({r["voice1"] for r in rows} | {r["voice2"] for r in rows}) == 2 * len(rows)
    for rel in _wavs(corpus):
        if rel.parts[0] == "test":
            assert (rand / rel).read_bytes() == (corpus / rel).read_bytes(), rel
    assert json.loads((rand / "corpus.json").read_text())["parameters"]["random_voices"] == 1.0
    assert "random_voices" not in json.loads((corpus / "corpus.json").read_text())["parameters"]
    with pytest.raises(ValueError, match="random_voices"):
        make_corpus(tmp_path / "bad", seed=0, random_voices=1.5, **params)


def test_random_variant_is_spoken_with_its_pitch():
    """A random variant file really drives eSpeak NG: a higher pitch line gives a higher f0."""
    rng = np.random.default_rng(0)
    spec = speech.random_variant(rng, "male")
    assert spec.startswith("language variant") and "formant 5" in spec
    low = spec.replace(spec.splitlines()[4], "pitch 70 75")
    high = spec.replace(spec.splitlines()[4], "pitch 200 205")
    voice = f"en-us+{speech.RANDOM_VARIANT}"

    def f0(samples):  # autocorrelation peak between 50 and 400 Hz, on a vowel
        x = samples.astype(np.float64)
        x = x[len(x) // 4 : len(x) // 4 + 4096]
        x = x - x.mean()
        ac = np.correlate(x, x, "full")[len(x) - 1 :]
        lo, hi = speech.ESPEAK_RATE // 400, speech.ESPEAK_RATE // 50
        return speech.ESPEAK_RATE / (lo + np.argmax(ac[lo:hi]))

    engine = speech.engine()
    f_low = f0(engine.synth("aaaa aaaa aaaa aaaa", voice, 170, 50, 0, 1, variant_spec=low))
    f_high = f0(engine.synth("aaaa aaaa aaaa aaaa", voice, 170, 50, 0, 1, variant_spec=high))
    assert 55 < f_low < 80 and 180 < f_high < 215, (f_low, f_high)
