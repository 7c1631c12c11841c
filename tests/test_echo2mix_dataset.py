"""Echo2MixDataset: shapes, segments, construction checks and the identical-sources guard."""

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from asteroid_spmamba.data import Echo2MixDataset, find_utterances

SR = 8000


def _write_utt(folder: Path, n: int, seed: int, rate: int = SR):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    # distinct, recognisable signals: a ramp (for locating segments) plus noise
    s1 = (np.arange(n) % 1000) / 2000 + 0.01 * rng.standard_normal(n)
    s2 = 0.3 * rng.standard_normal(n)
    sf.write(str(folder / "spk1_reverb.wav"), s1, rate, subtype="FLOAT")
    sf.write(str(folder / "spk2_reverb.wav"), s2, rate, subtype="FLOAT")
    sf.write(str(folder / "mix.wav"), s1 + s2, rate, subtype="FLOAT")
    return s1.astype(np.float32), s2.astype(np.float32)


@pytest.fixture()
def split(tmp_path):
    root = tmp_path / "train"
    lengths = {
        "u0": 12000,
        "u1": 8000,
        "u2": 3000,
        "room/spk/u3": 10000,
    }  # nested folders as in Echo2Mix
    for i, (utt, n) in enumerate(lengths.items()):
        _write_utt(root / utt, n, i)
    return root, lengths


def test_find_utterances_nested(split):
    root, lengths = split
    assert find_utterances(root) == sorted(lengths)


def test_linked_utterance_folders_are_found_once(split, tmp_path):
    """A split made of symbolic links to another split's folders reads like the original; a link
    cycle does not make the walk loop."""
    root, lengths = split
    linked = tmp_path / "subset"
    (linked / "room").mkdir(parents=True)
    (linked / "u0").symlink_to(root / "u0", target_is_directory=True)
    (linked / "room" / "spk").symlink_to(root / "room" / "spk", target_is_directory=True)
    (linked / "room" / "loop").symlink_to(linked, target_is_directory=True)
    assert find_utterances(linked) == ["room/spk/u3", "u0"]
    dataset = Echo2MixDataset(linked, sample_rate=SR, segment=None)
    assert len(dataset) == 2 and dataset[1][0].shape == (lengths["u0"],)


def test_train_segments_shapes_and_alignment(split):
    root, lengths = split
    with pytest.warns(UserWarning, match="dropped 1 of 4"):
        ds = Echo2MixDataset(root, sample_rate=SR, segment=0.5)  # 4000 samples: u2 is dropped
    assert len(ds) == 3 and ds.dropped == 1 and "u2" not in ds.ids
    torch.manual_seed(0)
    starts = set()
    for idx in range(len(ds)):
        full1 = sf.read(str(root / ds.ids[idx] / "spk1_reverb.wav"), dtype="float32")[0]
        full2 = sf.read(str(root / ds.ids[idx] / "spk2_reverb.wav"), dtype="float32")[0]
        for _ in range(5):
            mix, sources = ds[idx]
            assert mix.shape == (4000,) and sources.shape == (2, 4000)
            assert mix.dtype == sources.dtype == torch.float32
            # the segment is one window of the files, the same for mixture and sources
            start = int(np.flatnonzero(np.isclose(full2, sources[1, 0].item(), atol=0))[0])
            np.testing.assert_array_equal(sources[0].numpy(), full1[start : start + 4000])
            np.testing.assert_array_equal(sources[1].numpy(), full2[start : start + 4000])
            torch.testing.assert_close(mix, sources.sum(0), atol=1e-6, rtol=0)
            starts.add((idx, start))
    assert len(starts) > 3  # random starts


def test_fixed_segments_and_padding(split):
    root, _ = split
    ds = Echo2MixDataset(
        root, sample_rate=SR, segment=0.5, random_segments=False, short_utterances="pad"
    )
    assert len(ds) == 4
    i = ds.ids.index("u2")
    mix, sources = ds[i]
    assert mix.shape == (4000,) and sources.shape == (2, 4000)
    assert torch.all(sources[:, 3000:] == 0) and torch.all(mix[3000:] == 0)
    full1 = sf.read(str(root / "u0" / "spk1_reverb.wav"), dtype="float32")[0]
    np.testing.assert_array_equal(ds[ds.ids.index("u0")][1][0].numpy(), full1[:4000])


def test_whole_utterances_for_valid(split):
    root, lengths = split
    ds = Echo2MixDataset(root, sample_rate=SR, segment=None, return_id=True)
    assert len(ds) == 4
    for idx in range(len(ds)):
        mix, sources, utt = ds[idx]
        assert mix.shape == (lengths[utt],) and sources.shape == (2, lengths[utt])


def test_normalize_audio(split):
    root, _ = split
    mix, sources = Echo2MixDataset(root, sample_rate=SR, segment=None, normalize_audio=True)[0]
    assert mix.mean().abs() < 1e-5 and mix.std().item() == pytest.approx(1.0, abs=1e-3)


def test_missing_folder_explains_where_echo2mix_comes_from(tmp_path):
    with pytest.raises(FileNotFoundError, match="SonicSim") as err:
        Echo2MixDataset(tmp_path / "nowhere")
    assert "process_echoset.py" in str(err.value) and str(tmp_path / "nowhere") in str(err.value)


def test_incomplete_folders_listed_in_one_error(tmp_path):
    root = tmp_path / "test"
    for i in range(25):
        _write_utt(root / f"utt{i:02d}", 1000, i)
        (root / f"utt{i:02d}" / "spk2_reverb.wav").unlink()
    (root / "utt03" / "mix.wav").unlink()
    with pytest.raises(FileNotFoundError) as err:
        Echo2MixDataset(root, sample_rate=SR, segment=None)
    msg = str(err.value)
    assert "26 file(s) missing" in msg and "... and 6 more" in msg
    assert "utt00/spk2_reverb.wav" in msg and "utt03/mix.wav" in msg


def test_wrong_sample_rate_names_file_and_rates(tmp_path):
    root = tmp_path / "valid"
    _write_utt(root / "a", 1000, 0, rate=16000)
    with pytest.raises(
        ValueError, match=r"a/mix\.wav is sampled at 16000 Hz but the dataset expects 8000 Hz"
    ):
        Echo2MixDataset(root, sample_rate=SR, segment=None)


def test_identical_sources_rejected_at_construction(split):
    root, _ = split
    shutil.copyfile(root / "u1" / "spk1_reverb.wav", root / "u1" / "spk2_reverb.wav")
    with pytest.raises(ValueError, match="process_echoset.py") as err:
        Echo2MixDataset(root, sample_rate=SR, segment=None, check_identical=10)
    assert "'u1'" in str(err.value) and "identical" in str(err.value)


def test_identical_sources_rejected_when_loading(split):
    root, _ = split
    shutil.copyfile(root / "u1" / "spk1_reverb.wav", root / "u1" / "spk2_reverb.wav")
    ds = Echo2MixDataset(root, sample_rate=SR, segment=None, check_identical=0)
    ds[ds.ids.index("u0")]  # other utterances load
    with pytest.raises(ValueError, match="speaker 1 is used as both sources"):
        ds[ds.ids.index("u1")]
    perturbed = Echo2MixDataset(
        root, sample_rate=SR, segment=0.25, check_identical=0, speed_perturb=(0.9, 1.1)
    )
    with pytest.raises(ValueError, match="speaker 1 is used as both sources"):
        perturbed[perturbed.ids.index("u1")]


def test_silent_identical_segments_are_fine(tmp_path):
    root = tmp_path / "s"
    (root / "a").mkdir(parents=True)
    for name in ("mix.wav", "spk1_reverb.wav", "spk2_reverb.wav"):
        sf.write(str(root / "a" / name), np.zeros(800), SR)
    mix, sources = Echo2MixDataset(root, sample_rate=SR, segment=None, check_identical=0)[0]
    assert torch.all(sources == 0)


def test_all_too_short_is_an_error(split):
    root, _ = split
    with pytest.raises(ValueError, match="shorter than segment"):
        Echo2MixDataset(root, sample_rate=SR, segment=5.0)


def test_get_infos(split):
    infos = Echo2MixDataset(split[0], sample_rate=SR, segment=None).get_infos()
    assert infos["dataset"] == "Echo2Mix" and set(infos) == {"dataset", "task", "licenses"}


def test_dynamic_mixing_pairs_sources_of_different_utterances(split):
    root, lengths = split
    ds = Echo2MixDataset(
        root,
        sample_rate=SR,
        segment=0.25,
        dynamic_mixing=True,
        return_id=True,
        short_utterances="pad",
    )
    full = {
        utt: [sf.read(str(root / utt / f"spk{k}_reverb.wav"), dtype="float32")[0] for k in (1, 2)]
        for utt in ds.ids
    }
    torch.manual_seed(0)
    partners, levels = set(), []
    for idx in range(len(ds)):
        for _ in range(8):
            mix, sources, utt = ds[idx]
            assert mix.shape == (2000,) and sources.shape == (2, 2000)
            torch.testing.assert_close(mix, sources.sum(0), atol=1e-6, rtol=0)
            first, second = utt.split("+")
            assert first == ds.ids[idx] and second != first
            partners.add(second)
            # each source is a scaled excerpt of one source file of its utterance
            for src, name in zip(sources.numpy(), (first, second)):
                matches = []
                for ref in full[name]:
                    windows = np.lib.stride_tricks.sliding_window_view(ref, len(src))
                    scale = windows @ src / (np.einsum("ij,ij->i", windows, windows) + 1e-12)
                    matches.append(np.min(np.abs(windows * scale[:, None] - src).max(axis=1)))
                assert min(matches) < 1e-4
            rms = sources.pow(2).mean(-1).sqrt()
            levels.append(20 * torch.log10(rms[0] / rms[1]).item())
            assert 0.25 - 1e-4 <= mix.abs().max().item() <= 0.9 + 1e-4
    assert len(partners) > 2  # voices paired anew
    assert max(abs(v) for v in levels) <= 5.0 + 1e-3 and np.std(levels) > 0.5


def test_dynamic_mixing_needs_segments(split):
    root, _ = split
    with pytest.raises(ValueError, match="dynamic_mixing"):
        Echo2MixDataset(root, sample_rate=SR, segment=None, dynamic_mixing=True)


def test_speed_perturbation_resamples_each_source(split):
    from scipy.signal import resample_poly

    root, _ = split
    ds = Echo2MixDataset(
        root,
        sample_rate=SR,
        segment=0.5,
        random_segments=False,
        short_utterances="pad",
        speed_perturb=(0.9, 1.1),
    )
    assert ds.speed_steps == (36, 44)
    full = [sf.read(str(root / "u0" / f"spk{k}_reverb.wav"), dtype="float32")[0] for k in (1, 2)]
    # every factor k/40 the sources could have been played at
    candidates = {k: [resample_poly(x, 40, k)[:4000] for x in full] for k in range(36, 45)}
    torch.manual_seed(0)
    seen = set()
    for _ in range(20):
        mix, sources = ds[ds.ids.index("u0")]
        assert mix.shape == (4000,) and sources.shape == (2, 4000)
        torch.testing.assert_close(mix, sources.sum(0), atol=1e-6, rtol=0)
        factors = []
        for i, src in enumerate(sources.numpy()):
            k = [k for k, c in candidates.items() if np.allclose(src, c[i], atol=1e-5)]
            assert len(k) == 1
            factors.append(k[0])
        seen.add(tuple(factors))
    assert (
        len({f for pair in seen for f in pair}) >= 4
    )  # factors drawn per source, across the range
    assert any(a != b for a, b in seen)


@pytest.mark.parametrize("bad", [(0.9, 0.8), (0.1, 1.0), (1.01, 1.02)])
def test_speed_perturbation_checks_its_range(split, bad):
    with pytest.raises(ValueError, match="speed_perturb"):
        Echo2MixDataset(
            split[0], sample_rate=SR, segment=0.5, speed_perturb=bad, short_utterances="pad"
        )
    with pytest.raises(ValueError, match="speed_perturb"):
        Echo2MixDataset(split[0], sample_rate=SR, segment=None, speed_perturb=(0.9, 1.1))
