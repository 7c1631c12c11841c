"""Recipes egs/{echo2mix,librimix,wsj0-2mix,wham}: data preparation on tiny fake datasets laid out
like the real ones, the configurations against the authors', and run.sh stages 0-2 for one training
step."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

sys.path.insert(0, os.path.dirname(__file__))
import fake_datasets  # noqa: E402

from asteroid_spmamba.data import asteroid_datasets  # noqa: E402
from asteroid_spmamba.recipes import common, echo2mix, librimix, wham, wsj0mix  # noqa: E402
from asteroid_spmamba.training import config  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
EGS = REPO / "egs"


def _read(path):
    return sf.read(str(path), dtype="float32")[0]


def _tree_bytes(folder: Path) -> dict:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


# --------------------------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------------------------
def test_listing_shows_first_20_and_a_count():
    items = [f"tt/s2/{i:03d}.wav" for i in range(27)]
    text = common.listing(items)
    assert text.count("\n") == 20  # 20 items + the "more" line
    assert "tt/s2/019.wav" in text and "tt/s2/020.wav" not in text
    assert text.endswith("... and 7 more")
    err = common.missing_error("X is incomplete", items, wsj0mix.source_info())
    assert isinstance(err, FileNotFoundError)
    assert "27 missing" in str(err) and "pywsj0-mix" in str(err)


def test_asteroid_dataset_classes_are_asteroids_own():
    import importlib.util

    data_dir = Path(importlib.util.find_spec("asteroid").submodule_search_locations[0]) / "data"
    for name, module_file in (
        ("LibriMix", "librimix_dataset.py"),
        ("Wsj0mixDataset", "wsj0_mix.py"),
        ("WhamDataset", "wham_dataset.py"),
    ):
        cls = asteroid_datasets.asteroid_dataset_class(name)
        assert cls.__name__ == name
        assert (
            Path(sys.modules[cls.__module__].__file__).resolve()
            == (data_dir / module_file).resolve()
        )


def test_commit_all_writes_nothing_when_one_write_fails(tmp_path):
    (tmp_path / "a.json").write_text("old")

    def boom(_):
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        common.commit_all(
            [(tmp_path / "a.json", common.json_writer([1])), (tmp_path / "b.json", boom)]
        )
    assert (tmp_path / "a.json").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]  # no temp file left


# --------------------------------------------------------------------------------------------
# WSJ0-2mix
# --------------------------------------------------------------------------------------------
def test_wsj0mix_preparation_and_asteroid_dataset(tmp_path):
    root = fake_datasets.make_wsj0mix(tmp_path / "wsj0-mix")
    out = tmp_path / "data"
    counts = wsj0mix.prepare_wsj0mix(root, out, show_progress=False)
    assert counts == {"tr": 2, "cv": 2, "tt": 2}
    for split in ("tr", "cv", "tt"):
        lists = {
            k: json.loads((out / split / f"{k}.json").read_text()) for k in ("mix", "s1", "s2")
        }
        names = [[Path(p).name for p, _ in lists[k]] for k in lists]
        assert names[0] == names[1] == names[2] == sorted(names[0])
        # lengths: 0.6 s and 0.7 s at 8 kHz (fake_datasets), read from the headers
        assert [n for _, n in lists["mix"]] == [4800, 5600]
        assert all(Path(p).is_absolute() and Path(p).is_file() for p, _ in lists["s2"])
    dataset = asteroid_datasets.build_wsj0mix(out / "tt", n_src=2, sample_rate=8000, segment=None)
    mix, sources = dataset[1]
    assert sources.shape == (2, 5600)
    torch.testing.assert_close(mix, sources.sum(0), atol=1e-6, rtol=0)  # aligned: mix = s1 + s2
    assert asteroid_datasets.json_list_utterance_ids(dataset) == [
        Path(p).stem for p, _ in json.loads((out / "tt/mix.json").read_text())
    ]
    # the layout is found from the 2speakers/ folder as well
    assert wsj0mix.locate(root / "2speakers") == root / "2speakers" / "wav8k" / "min"


def test_wsj0mix_missing_files_are_listed_and_nothing_is_written(tmp_path):
    root = fake_datasets.make_wsj0mix(tmp_path / "wsj0-mix")
    out = tmp_path / "data"
    wsj0mix.prepare_wsj0mix(root, out, show_progress=False)
    before = _tree_bytes(out)
    base = root / "2speakers" / "wav8k" / "min"
    gone_source = sorted((base / "tt" / "s2").iterdir())[0]
    gone_mix = sorted((base / "cv" / "mix").iterdir())[1]
    gone_source.unlink()
    gone_mix.unlink()
    with pytest.raises(FileNotFoundError) as info:
        wsj0mix.prepare_wsj0mix(root, out, show_progress=False)
    message = str(info.value)
    assert "2 missing" in message
    assert f"tt/s2/{gone_source.name}" in message and f"cv/mix/{gone_mix.name}" in message
    assert "pywsj0-mix" in message and "LDC93S6A" in message
    assert _tree_bytes(out) == before  # the earlier lists are untouched, no temp file left


def test_wsj0mix_missing_split_folder_and_wrong_rate(tmp_path):
    root = fake_datasets.make_wsj0mix(tmp_path / "wsj0-mix")
    base = root / "2speakers" / "wav8k" / "min"
    for path in (base / "cv" / "s1").iterdir():
        path.unlink()
    (base / "cv" / "s1").rmdir()
    with pytest.raises(FileNotFoundError, match=r"cv/s1/"):
        wsj0mix.prepare_wsj0mix(root, tmp_path / "a", show_progress=False)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        wsj0mix.prepare_wsj0mix(tmp_path / "nowhere", tmp_path / "b", show_progress=False)
    other = fake_datasets.make_wsj0mix(tmp_path / "wsj16", rate=16000)
    (other / "2speakers" / "wav16k").rename(
        other / "2speakers" / "wav8k"
    )  # a 16 kHz copy in the 8 kHz place
    with pytest.raises(ValueError, match="16000 Hz"):
        wsj0mix.prepare_wsj0mix(other, tmp_path / "c", show_progress=False)
    assert not (tmp_path / "c").exists()


# --------------------------------------------------------------------------------------------
# WHAM!
# --------------------------------------------------------------------------------------------
def test_wham_noisy_preparation_and_asteroid_dataset(tmp_path):
    root = fake_datasets.make_wham(tmp_path / "wham")
    out = tmp_path / "data"
    assert wham.prepare_wham(root, out, task="sep_noisy", show_progress=False) == {
        "tr": 2,
        "cv": 2,
        "tt": 2,
    }
    assert sorted(p.name for p in (out / "tt").iterdir()) == ["mix_both.json", "s1.json", "s2.json"]
    dataset = asteroid_datasets.build_wham(out / "tt", "sep_noisy", 8000, None)
    mix, sources = dataset[0]
    noise = _read(
        root / "wav8k/min/tt/noise" / f"{asteroid_datasets.json_list_utterance_ids(dataset)[0]}.wav"
    )
    # sep_noisy: the mixture is both speakers plus noise; the targets are the clean speakers
    torch.testing.assert_close(mix, sources.sum(0) + torch.from_numpy(noise), atol=1e-6, rtol=0)
    assert (mix - sources.sum(0)).abs().max() > 1e-3


def test_wham_noisy_scores_keep_the_noise_out(tmp_path):
    # sep_noisy mixtures hold noise the model is trained to remove: scoring must not add what the
    # outputs leave of the mixture (the noise) back into them (levels.match_mixture)
    from conftest import tiny_spmamba_args

    from asteroid_spmamba.models import SPMamba
    from asteroid_spmamba.training import evaluate

    root = fake_datasets.make_wham(tmp_path / "wham")
    wham.prepare_wham(root, tmp_path / "data", task="sep_noisy", show_progress=False)
    model = SPMamba(**tiny_spmamba_args(sample_rate=8000))
    kw = dict(progress=False, verbose=False)
    noisy = evaluate(model, tmp_path / "data" / "tt", tmp_path / "e1", dataset="wham", **kw)
    assert noisy["residual_to_outputs"] is False and noisy["n_utterances"] == 2
    e2m = fake_datasets.make_echo2mix(tmp_path / "e2m", rate=8000) / "test"
    clean = evaluate(model, e2m, tmp_path / "e2", dataset="echo2mix", **kw)
    assert clean["residual_to_outputs"] is True  # noise-free mixtures: mixture consistency
    model.removes_noise = True  # as loaded from a file trained on a noisy task
    told = evaluate(model, e2m, tmp_path / "e3", dataset="echo2mix", **kw)
    assert told["residual_to_outputs"] is False


def test_wham_missing_mixture_folder_is_reported(tmp_path):
    root = fake_datasets.make_wham(tmp_path / "wham")
    for path in sorted((root / "wav8k/min/tr/mix_both").iterdir()):
        path.unlink()
    with pytest.raises(FileNotFoundError) as info:
        wham.prepare_wham(root, tmp_path / "data", task="sep_noisy", show_progress=False)
    assert "tr/mix_both/" in str(info.value) and "wham_scripts" in str(info.value)
    # the clean task does not read mix_both
    assert (
        wham.prepare_wham(root, tmp_path / "data", task="sep_clean", show_progress=False)["tr"] == 2
    )
    with pytest.raises(ValueError, match="Unknown WHAM! task"):
        wham.prepare_wham(root, tmp_path / "data", task="sep_loud")


# --------------------------------------------------------------------------------------------
# Libri2Mix
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("metadata", [True, False], ids=["metadata", "scan"])
def test_librimix_preparation_and_asteroid_dataset(tmp_path, metadata):
    libri = fake_datasets.make_librimix(tmp_path / "storage", metadata=metadata)
    out = tmp_path / "data"
    # the storage folder (parent of Libri2Mix) is accepted too
    counts = librimix.prepare_librimix(tmp_path / "storage", out, show_progress=False)
    assert counts == {"train-100": 2, "dev": 2, "test": 2}
    with open(out / "test" / "mixture_test_mix_clean.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == [
        "mixture_ID",
        "mixture_path",
        "source_1_path",
        "source_2_path",
        "length",
    ]
    base = libri / "wav8k" / "min" / "test"
    assert [r["length"] for r in rows] == ["4800", "5600"]
    for r in rows:  # rebuilt under the real folder, not the stale paths of the metadata
        assert r["mixture_path"] == str((base / "mix_clean" / f"{r['mixture_ID']}.wav").absolute())
        assert r["source_2_path"] == str((base / "s2" / f"{r['mixture_ID']}.wav").absolute())
    dataset = asteroid_datasets.build_librimix(out / "test", "sep_clean", 8000, 2, None)
    mix, sources = dataset[1]
    torch.testing.assert_close(mix, sources.sum(0), atol=1e-6, rtol=0)
    assert asteroid_datasets.librimix_utterance_ids(dataset) == [r["mixture_ID"] for r in rows]
    train = asteroid_datasets.build_librimix(out / "train-100", "sep_clean", 8000, 2, 0.5)
    mix, sources = train[0]
    assert mix.shape == (4000,) and sources.shape == (2, 4000)


def test_librimix_mixture_missing_everywhere_is_found_through_the_metadata(tmp_path):
    libri = fake_datasets.make_librimix(tmp_path / "storage")
    base = libri / "wav8k" / "min" / "dev"
    mix_id = sorted(p.stem for p in (base / "mix_clean").iterdir())[0]
    for folder in ("mix_clean", "s1", "s2"):
        (base / folder / f"{mix_id}.wav").unlink()
    out = tmp_path / "data"
    with pytest.raises(FileNotFoundError) as info:
        librimix.prepare_librimix(libri, out, show_progress=False)
    message = str(info.value)
    assert "3 missing" in message and f"dev/mix_clean/{mix_id}.wav" in message
    assert "JorisCos/LibriMix" in message and "openslr" in message
    assert not out.exists()


# --------------------------------------------------------------------------------------------
# Echo2Mix
# --------------------------------------------------------------------------------------------
def test_echo2mix_preparation_links_splits(tmp_path):
    root = fake_datasets.make_echo2mix(tmp_path / "Echo2Mix")
    out = tmp_path / "data"
    assert echo2mix.prepare_echo2mix(root, out) == {"train": 2, "valid": 2, "test": 2}
    assert (out / "valid").is_symlink() and (out / "valid").resolve() == (root / "val").resolve()
    index = json.loads((out / "index.json").read_text())
    assert [n for _, n in index["splits"]["test"]] == [9600, 11200]  # 0.6 s, 0.7 s at 16 kHz
    from asteroid_spmamba.data import Echo2MixDataset

    dataset = Echo2MixDataset(out / "test", sample_rate=16000, segment=None)
    assert dataset.ids == [u for u, _ in index["splits"]["test"]]
    # preparing again (e.g. after moving the dataset) replaces the links
    moved = root.rename(tmp_path / "Echo2Mix_moved")
    echo2mix.prepare_echo2mix(moved, out)
    assert (out / "train").resolve() == (moved / "train").resolve()


def test_echo2mix_incomplete_and_buggy_copies_are_refused(tmp_path):
    root = fake_datasets.make_echo2mix(tmp_path / "Echo2Mix")
    out = tmp_path / "data"
    missing = sorted((root / "test").rglob("spk2_reverb.wav"))[0]
    missing.unlink()
    with pytest.raises(FileNotFoundError) as info:
        echo2mix.prepare_echo2mix(root, out)
    assert "spk2_reverb.wav" in str(info.value) and "SonicSim" in str(info.value)
    assert not out.exists()
    # the known bug of the original preparation: speaker 1 copied as speaker 2
    utt = missing.parent
    (utt / "spk2_reverb.wav").write_bytes((utt / "spk1_reverb.wav").read_bytes())
    with pytest.raises(ValueError, match="identical"):
        echo2mix.prepare_echo2mix(root, out, check_identical=100)
    (tmp_path / "Echo2Mix" / "val").rename(tmp_path / "Echo2Mix" / "elsewhere")
    with pytest.raises(FileNotFoundError, match="val/"):
        echo2mix.prepare_echo2mix(root, out)


# --------------------------------------------------------------------------------------------
# Configurations: the authors' (JusperLee/SPMamba configs/spmamba-*.yml)
# --------------------------------------------------------------------------------------------
AUTHORS = {
    # recipe: (sample_rate, n_fft, stride, segment)
    "echo2mix": (16000, 512, 128, 3.0),
    "librimix": (8000, 256, 64, 3.0),
    "wsj0-2mix": (8000, 256, 64, 4.0),
    "wham": (8000, 256, 64, 4.0),
}


@pytest.mark.parametrize("recipe", sorted(AUTHORS))
def test_recipe_configuration_is_the_authors(recipe):
    conf = config.resolve_model(yaml.safe_load((EGS / recipe / "local" / "conf.yml").read_text()))
    rate, n_fft, stride, segment = AUTHORS[recipe]
    args = conf["model"]["args"]
    assert conf["model"]["name"] == "SPMamba"
    # audionet_config of every authors' file: n_layers 6, emb_dim 16, emb_ks 8, emb_hs 1, 4 heads,
    # approx_qk_dim 512, prelu, eps 1e-5, 2 sources, 1 mic
    assert (args["sample_rate"], args["n_fft"], args["hop_length"]) == (rate, n_fft, stride)
    assert {
        k: args[k]
        for k in (
            "n_layers",
            "emb_dim",
            "emb_ks",
            "emb_hs",
            "n_head",
            "approx_qk_dim",
            "activation",
            "eps",
            "n_src",
            "in_channels",
            "window",
        )
    } == dict(
        n_layers=6,
        emb_dim=16,
        emb_ks=8,
        emb_hs=1,
        n_head=4,
        approx_qk_dim=512,
        activation="prelu",
        eps=1e-5,
        n_src=2,
        in_channels=1,
        window="hann",
    )
    data, tr = conf["data"], conf["training"]
    assert (data["sample_rate"], data["segment"], data["n_src"], data["valid_segment"]) == (
        rate,
        segment,
        2,
        None,
    )
    assert (
        tr["batch_size"],
        tr["max_epochs"],
        tr["early_stop_patience"],
        tr["gradient_clip_val"],
    ) == (1, 500, 20, 5.0)
    assert conf["optim"] == {"optimizer": "adam", "lr": 1e-3, "weight_decay": 0.0}
    assert (conf["scheduler"]["patience"], conf["scheduler"]["factor"]) == (10, 0.5)
    assert conf["loss"] == {"train": "pairwise_neg_snr", "val": "pairwise_neg_sisdr"}
    assert data["dataset"] == recipe
    # the rest is accepted as it is
    config.complete_conf(conf)


def test_recipe_model_overrides_and_unknown_keys():
    conf = {
        "model": {"name": "SPMamba", "preset": "wham", "args": {"n_layers": 1}},
        "data": {"dataset": "wham"},
    }
    resolved = config.resolve_model(conf)
    assert resolved["model"]["args"]["n_layers"] == 1 and resolved["model"]["args"]["n_fft"] == 256
    with pytest.raises(ValueError, match="data.dataset"):
        config.complete_conf({"data": {"dataset": "timit"}})
    with pytest.raises(ValueError, match="loss.train"):
        config.complete_conf({"loss": {"train": "l1"}})
    with pytest.raises(ValueError, match="Unknown configuration key data.'datset'"):
        config.complete_conf({"data": {"datset": "wham"}})


# --------------------------------------------------------------------------------------------
# run.sh
# --------------------------------------------------------------------------------------------
def _bash(script: str, cwd=EGS) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "-c", script], cwd=cwd, capture_output=True, text=True, timeout=60
    )


def test_run_sh_devices_and_options():
    out = _bash(
        ". common/utils.sh; id=0,1; gpus=''; precision=''; setup_devices; "
        'echo "$gpus $precision $CUDA_VISIBLE_DEVICES"'
    )
    assert out.stdout.split() == ["2", "bf16-mixed", "0,1"]
    out = _bash(
        ". common/utils.sh; id=''; gpus=''; precision=bf16-mixed; setup_devices; "
        'echo "$gpus $precision"'
    )
    assert out.stdout.split() == ["0", "32-true"] and "bf16" in out.stderr
    out = _bash(
        ". common/utils.sh; gpus=2; precision=''; accumulate_grad_batches=4; overrides='a.b=1 "
        "c.d=x'; train_args=(); setup_devices; add_training_args; printf "
        "'%s\\n' \"${train_args[@]}\""
    )
    assert out.stdout.split() == [
        "--gpus",
        "2",
        "--precision",
        "bf16-mixed",
        "--accumulate-grad-batches",
        "4",
        "--set",
        "a.b=1",
        "--set",
        "c.d=x",
    ]
    bad = subprocess.run(
        ["bash", str(EGS / "wham" / "run.sh"), "--no_such_option", "1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "unknown option --no_such_option" in bad.stderr
    # a relative script path, from another folder (run.sh changes to its own folder first)
    usage = subprocess.run(
        ["bash", "egs/librimix/run.sh", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert usage.returncode == 0 and "stage 0" in usage.stdout and "set -e" not in usage.stdout


def test_run_sh_stage0_without_dataset_explains(tmp_path):
    out = subprocess.run(
        [
            "bash",
            str(EGS / "wsj0-2mix" / "run.sh"),
            "--stop_stage",
            "0",
            "--data_dir",
            str(tmp_path / "d"),
            "--wsj0mix_dir",
            str(tmp_path / "absent"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode != 0
    assert "does not exist" in out.stderr and "generate_wsjmix.py" in out.stderr
    assert not (tmp_path / "d").exists()


TINY_SPMAMBA = (
    "model.args.n_layers=1 model.args.emb_dim=8 model.args.emb_ks=2 model.args.n_head=2 "
    "model.args.approx_qk_dim=32 model.args.d_state=4 model.args.expand=1 data.segment=0.5 "
    "training.limit_val_batches=1 training.num_sanity_val_steps=0"
)
RECIPES = fake_datasets.RECIPES


@pytest.mark.slow
@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_run_sh_stages_0_to_2_one_step(tmp_path, recipe):
    flag, make = RECIPES[recipe]
    dataset = make(tmp_path / "dataset")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    cmd = [
        "bash",
        str(EGS / recipe / "run.sh"),
        flag,
        str(dataset),
        "--data_dir",
        str(tmp_path / "data"),
        "--exp_root",
        str(tmp_path / "exp"),
        "--tag",
        "tiny",
        "--max_steps",
        "1",
        "--num_workers",
        "0",
        "--progress_bar",
        "false",
        "--python",
        sys.executable,
        "--overrides",
        TINY_SPMAMBA,
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=400, env=env)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    exp = tmp_path / "exp" / "tiny"
    summary = json.loads((exp / "train_summary.json").read_text())
    assert summary["global_step"] == 1
    conf = yaml.safe_load((exp / "conf.yml").read_text())
    assert conf["model"]["args"]["n_layers"] == 1 and conf["training"]["precision"] == "32-true"
    assert conf["model"]["args"]["sample_rate"] == AUTHORS[recipe][0]
    with open(exp / "eval" / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2  # the two test mixtures of the fake dataset
    scores = json.loads((exp / "eval" / "summary.json").read_text())
    assert scores["n_utterances"] == 2
    assert scores["si_snr_i"] == pytest.approx(
        np.mean([float(r["si_snr_i"]) for r in rows]), abs=1e-3
    )
    assert "Stage 2 done" in out.stdout
