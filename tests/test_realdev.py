"""Real-speech dev set builder (egs/realdev/local/make_dev_set.py) on tiny
fake sources: no download.

The fake files carry the real names (so speakers come from the names as for the real set) and the
checksum table is replaced by theirs.
"""

import hashlib
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

SCRIPT = Path(__file__).resolve().parents[1] / "egs" / "realdev" / "local" / "make_dev_set.py"
N_MIX = 4
DURATION = 1.0


def _load():
    spec = importlib.util.spec_from_file_location("make_dev_set", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


mds = _load()
DEV_SET_FILES = [name for name, row in mds.SOURCES.items() if row[0] in mds.CORPORA]


def _fake_speech(rng, seconds, rate):
    """Voiced bursts (harmonics of a random F0) separated by short pauses."""
    t = np.arange(int(seconds * rate)) / rate
    f0 = rng.uniform(90, 250)
    wav = sum(np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 6.3)) / k for k in range(1, 6))
    envelope = (np.sin(2 * np.pi * rng.uniform(2, 4) * t) > -0.6).astype(float)
    return 0.3 * wav * envelope + 1e-3 * rng.standard_normal(len(t))


@pytest.fixture(scope="module")
def fake_sources(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sources")
    rng = np.random.default_rng(0)
    for name, row in mds.SOURCES.items():
        if row[0] == "sisec2011":
            wav, rate = (
                _fake_speech(rng, 2.5, 16000),
                16000,
            )  # longer than a mixture: random windows
        else:
            wav, rate = _fake_speech(rng, 0.7, 8000), 8000  # shorter, and resampled to 16 kHz
        wav = np.concatenate([np.zeros(rate // 10), wav, np.zeros(rate // 10)])  # silence to trim
        sf.write(str(folder / name), wav, rate, subtype="PCM_16")
    checksums = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}
    return folder, checksums


@pytest.fixture(scope="module")
def built(fake_sources, tmp_path_factory):
    folder, checksums = fake_sources
    root = tmp_path_factory.mktemp("out")
    outs = [
        mds.make_dev_set(
            root / name,
            sources_dir=folder,
            n_mixtures=N_MIX,
            duration=DURATION,
            seed=3,
            checksums=checksums,
            progress=False,
        )
        for name in ("a", "b")
    ]
    return outs


def _files(root: Path):
    return sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file())


def test_rebuild_is_byte_identical(built):
    a, b = built
    assert _files(a) == _files(b)
    for rel in _files(a):
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    assert not list(a.parent.glob("*.partial"))  # built in OUT.partial, then renamed


def test_layout(built):
    root = built[0]
    meta = json.loads((root / "dev_set.json").read_text())
    ids = [m["id"] for m in meta["mixtures"]]
    assert len(ids) == N_MIX == len(set(ids))
    expected = {Path("dev_set.json")} | {
        Path(c) / i / f for c in mds.CONDITIONS for i in ids for f in mds.WAV_FILES
    }
    assert set(_files(root)) == expected
    for rel in expected - {Path("dev_set.json")}:
        info = sf.info(str(root / rel))
        assert (info.samplerate, info.channels, info.subtype, info.frames) == (
            16000,
            1,
            "PCM_16",
            16000,
        )
    assert {s["name"] for s in meta["sources"]} == set(DEV_SET_FILES)
    assert meta["parameters"]["seed"] == 3 and meta["licences"].keys() == {
        "sisec2011",
        "cmu_arctic",
    }


def test_mix_is_the_exact_sum_and_sir_within_5_db(built):
    root = built[0]
    meta = json.loads((root / "dev_set.json").read_text())
    for m in meta["mixtures"]:
        assert -5 <= m["sir_db"] <= 5
        for condition in mds.CONDITIONS:
            mix, s1, s2 = (
                sf.read(str(root / condition / m["id"] / f), dtype="int16")[0].astype(np.int64)
                for f in mds.WAV_FILES
            )
            assert np.array_equal(mix, s1 + s2)
            assert np.abs(mix).max() <= 32767 and np.abs(s1).max() > 0 and np.abs(s2).max() > 0
            sir = 10 * np.log10((s1.astype(float) ** 2).sum() / (s2.astype(float) ** 2).sum())
            assert abs(sir - m["sir_db"]) < 0.01 and abs(sir) <= 5.01
        assert m["anechoic"]["room"] is None and 0.2 <= m["reverb"]["rt60"] <= 0.6


def test_two_different_speakers_per_mixture(built):
    meta = json.loads((built[0] / "dev_set.json").read_text())
    for m in meta["mixtures"]:
        a, b = m["files"]
        assert m["speakers"][0] != m["speakers"][1] and mds.may_pair(a, b)
        assert m["id"].endswith(f"{m['speakers'][0]}_{m['speakers'][1]}")


def test_speakers_from_names():
    assert mds.speaker_of("dev1_female4_src_2.wav")["speaker"] == "sisec_f2"
    assert mds.speaker_of("dev1_male4_src_2.wav")["speaker"] == "sisec_m2"
    assert mds.speaker_of("cmu_arctic_us_aew_a0003.wav")["speaker"] == "arctic_aew"
    assert not mds.may_pair("cmu_arctic_us_aew_a0001.wav", "cmu_arctic_us_aew_a0002.wav")
    assert not mds.may_pair("dev1_male4_src_1.wav", "dev1_male4_src_1.wav")
    # the unnamed CMU ARCTIC file (male by pitch) may be aew, so never with him; axb is a woman
    assert not mds.may_pair("arctic_a0010.wav", "cmu_arctic_us_aew_a0001.wav")
    assert mds.may_pair("arctic_a0010.wav", "cmu_arctic_us_axb_a0004.wav")
    assert mds.may_pair("dev1_female4_src_1.wav", "dev1_female4_src_2.wav")
    pairs = mds.plan_pairs(DEV_SET_FILES, 40, np.random.default_rng(0))
    speaker_pairs = {tuple(sorted(mds.speaker_of(f)["speaker"] for f in p)) for p in pairs}
    assert len(speaker_pairs) == 40  # 40 distinct speaker pairs out of the 54 allowed


def test_wrong_checksum_names_the_file(fake_sources, tmp_path):
    folder, checksums = fake_sources
    bad = dict(checksums, **{"dev1_male4_src_3.wav": "0" * 64})
    with pytest.raises(mds.SourceError, match=r"dev1_male4_src_3\.wav.*expected 0{64}"):
        mds.make_dev_set(
            tmp_path / "out", sources_dir=folder, n_mixtures=1, checksums=bad, progress=False
        )
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()
    # the real table does not match the fake files either
    with pytest.raises(mds.SourceError, match=r"Source file dev1_female4_src_1\.wav .*SHA-256"):
        mds.read_sources(sources_dir=folder)


def test_missing_file_names_the_file_and_the_fix(fake_sources, tmp_path):
    folder, checksums = fake_sources
    partial = tmp_path / "src"
    partial.mkdir()
    for name in checksums:
        if name != "arctic_a0010.wav":
            (partial / name).write_bytes((folder / name).read_bytes())
    with pytest.raises(
        mds.SourceError, match=r"arctic_a0010\.wav not found.*Fix: copy arctic_a0010\.wav"
    ):
        mds.read_sources(sources_dir=partial, checksums=checksums)


def test_existing_output(built, fake_sources):
    folder, checksums = fake_sources
    root = built[0]
    same = mds.make_dev_set(
        root,
        sources_dir=folder,
        n_mixtures=N_MIX,
        duration=DURATION,
        seed=3,
        checksums=checksums,
        progress=False,
    )
    assert same == root  # same parameters and sources: kept as it is
    with pytest.raises(FileExistsError):
        mds.make_dev_set(
            root,
            sources_dir=folder,
            n_mixtures=N_MIX,
            duration=DURATION,
            seed=4,
            checksums=checksums,
            progress=False,
        )


def test_reads_a_git_repository_by_commit_and_path(tmp_path):
    import shutil
    import subprocess

    if shutil.which("git") is None:
        pytest.skip("git not installed")
    repo = tmp_path / "repo"
    (repo / "d").mkdir(parents=True)
    (repo / "d" / "f.wav").write_bytes(b"first")
    git = [
        "git",
        "-C",
        str(repo),
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@t",
        "-c",
        "commit.gpgsign=false",
    ]
    subprocess.run(git[:3] + ["init", "-q"], check=True)
    subprocess.run(git + ["add", "d/f.wav"], check=True)
    subprocess.run(git + ["commit", "-q", "-m", "one"], check=True)
    commit = subprocess.run(
        git + ["rev-parse", "HEAD"], capture_output=True, check=True, text=True
    ).stdout.strip()
    (repo / "d" / "f.wav").write_bytes(b"changed in the work tree")
    # the committed content is read, not the work tree; a bare git dir works the same way
    assert mds._git_blob(mds._git_cmd(repo), f"{commit}:d/f.wav") == (b"first", "")
    assert mds._git_cmd(repo / ".git") == ["git", "--git-dir", str(repo / ".git")]
    assert mds._git_blob(mds._git_cmd(repo / ".git"), f"{commit}:d/f.wav")[0] == b"first"
    # a clone without pull request #51: the error names the file and how to fetch it
    with pytest.raises(mds.SourceError, match=r"dev1_female4_src_1\.wav not found.*pull/51/head"):
        mds.read_sources(pyroomacoustics_dir=repo, names=["dev1_female4_src_1.wav"])


def test_manifest_comparison(built, tmp_path):
    a, b = built
    manifest = tmp_path / "dev_set.sha256"
    manifest.write_text("".join(f"{d}  {rel}\n" for rel, d in mds.wav_digests(a).items()))
    assert mds.compare_with_manifest(b, manifest) == []
    first = sorted(mds.wav_digests(a))[0]
    manifest.write_text(manifest.read_text().replace(mds.wav_digests(a)[first], "0" * 64))
    assert mds.compare_with_manifest(b, manifest) == [first]


def _load_demo():
    path = SCRIPT.with_name("make_echo2mix_demo.py")
    spec = importlib.util.spec_from_file_location("make_echo2mix_demo", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_echo2mix_demo_copies_checked_files_into_the_scoring_layout(tmp_path, monkeypatch):
    """The Echo2Mix demo extractor on a fake plain copy of the authors' tree: every file is checked
    before anything is written, mixtures land in the Echo2Mix layout, the authors' estimates per
    model, byte for byte; a wrong file stops it with its name and leaves nothing."""
    demo = _load_demo()
    assert len(demo.manifest()) == 85  # 5 mixtures x 3 references + 7 models x 5 x 2 estimates
    tree = tmp_path / "SPMamba" / demo.AUDIO_DIR
    files = {
        "gt/u1/mix.wav": b"m",
        "gt/u1/spk1_reverb.wav": b"a",
        "gt/u1/spk2_reverb.wav": b"b",
        "spmamba/u1/s1.wav": b"e1",
        "spmamba/u1/s2.wav": b"e2",
    }
    for path, blob in files.items():
        (tree / path).parent.mkdir(parents=True, exist_ok=True)
        (tree / path).write_bytes(blob)
    manifest = tmp_path / "demo.sha256"
    manifest.write_text(
        "".join(f"{hashlib.sha256(b).hexdigest()}  {p}\n" for p, b in files.items())
    )
    monkeypatch.setattr(demo, "MANIFEST", manifest)
    out = demo.make_echo2mix_demo(tmp_path / "out", tmp_path / "SPMamba")
    assert (out / "mixtures" / "u1" / "spk2_reverb.wav").read_bytes() == b"b"
    assert (out / "authors" / "spmamba" / "u1" / "s1.wav").read_bytes() == b"e1"
    assert sorted(p.name for p in (out / "mixtures" / "u1").iterdir()) == [
        "mix.wav",
        "spk1_reverb.wav",
        "spk2_reverb.wav",
    ]
    (tree / "spmamba/u1/s2.wav").write_bytes(b"tampered")
    with pytest.raises(ValueError, match="spmamba/u1/s2.wav has SHA-256"):
        demo.make_echo2mix_demo(tmp_path / "out2", tmp_path / "SPMamba")
    assert not (tmp_path / "out2").exists() and not (tmp_path / "out2.partial").exists()


def test_other_speakers_set(fake_sources, tmp_path):
    """--corpora librispeech vctk: the same mixing of other real speakers, each named by its corpus,
    its sex from the corpus' metadata, its URL in its own repository; not from pyroomacoustics."""
    folder, checksums = fake_sources
    root = mds.make_dev_set(
        tmp_path / "other",
        sources_dir=folder,
        n_mixtures=N_MIX,
        duration=DURATION,
        corpora=mds.OTHER_CORPORA,
        checksums=checksums,
        progress=False,
    )
    meta = json.loads((root / "dev_set.json").read_text())
    assert meta["licences"].keys() == set(mds.OTHER_CORPORA)
    assert {s["corpus"] for s in meta["sources"]} == set(mds.OTHER_CORPORA)
    assert len(meta["sources"]) == 16 and all(
        s["sex"] in ("female", "male") for s in meta["sources"]
    )
    for source in meta["sources"]:
        repo = mds.LIBRI_URL if source["corpus"] == "librispeech" else mds.VCTK_URL
        assert source["url"] == f"{repo}/blob/{source['commit']}/{source['path']}"
    for m in meta["mixtures"]:
        assert all(s.startswith(("libri", "vctk_p")) for s in m["speakers"])
        assert m["speakers"][0] != m["speakers"][1]
    assert mds.speaker_of("6818-68772-0000.flac") == {
        "speaker": "libri6818",
        "sex": "female",
        "corpus": "librispeech",
    }
    assert mds.speaker_of("p255_367.wav")["sex"] == "male"
    with pytest.raises(ValueError, match="--sources"):
        mds.make_dev_set(
            tmp_path / "git", pyroomacoustics_dir=folder, corpora=("vctk",), progress=False
        )


def test_scores_by_the_sexes_of_the_pair(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location(
        "by_sex", Path(__file__).parents[1] / "egs/realdev/local/by_sex.py"
    )
    by_sex = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(by_sex)
    pairs = {"a": ("female", "male"), "b": ("male", "male"), "c": ("female", "female"),
             "d": ("male", "female"), "e": ("male", "male")}  # fmt: skip
    dev_set = {"mixtures": [{"id": k, "sexes": list(v)} for k, v in pairs.items()]}
    scores = {"a": 10.0, "b": 4.0, "c": 8.0, "d": 12.0, "e": 6.0}
    rows = [{"utt_id": k, "si_snr_i": str(v), "sdr_i": str(v + 1)} for k, v in scores.items()]
    table = by_sex.by_sex(dev_set, rows)
    assert table["mixed-sex"] == {"si_snr_i": 11.0, "sdr_i": 12.0, "n": 2}
    assert table["two men"]["si_snr_i"] == 5.0 and table["two women"]["n"] == 1
    assert table["all"]["si_snr_i"] == pytest.approx(np.mean(list(scores.values())))
    (tmp_path / "dev_set.json").write_text(json.dumps(dev_set))
    with open(tmp_path / "metrics.csv", "w") as f:
        f.write("utt_id,sdr,sdr_i,si_snr,si_snr_i\n")
        f.writelines(f"{k},0,{v + 1},0,{v}\n" for k, v in scores.items())
    assert by_sex.main([str(tmp_path), str(tmp_path / "metrics.csv"), "--names", "reverb"]) == 0
    assert "| two men | 2 | 5.00 / 6.00 |" in capsys.readouterr().out
    rows.append({"utt_id": "zzz", "si_snr_i": "0", "sdr_i": "0"})
    with pytest.raises(ValueError, match="zzz"):
        by_sex.by_sex(dev_set, rows)
