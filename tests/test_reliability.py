"""Bad and unusual inputs get the right result or a clear error, table-driven: each case names the
input, what must happen (an equal result, or an error type and the words its message must
contain)."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import tiny_spmamba_args

from asteroid_spmamba import SPMamba
from asteroid_spmamba.inference import separate_array

RATE = 8000


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return SPMamba(**tiny_spmamba_args()).eval()


@pytest.fixture(scope="module")
def mixture():
    return (np.random.default_rng(0).standard_normal(2400) * 0.1).astype(np.float32)


@pytest.fixture(scope="module")
def reference(model, mixture):
    with torch.no_grad():
        return model(torch.from_numpy(mixture)[None])[0].numpy()


@pytest.fixture(scope="module")
def fitted_reference(model, mixture):
    """What separate_array returns for the float32 mixture: the output fitted to the mixture."""
    from asteroid_spmamba.levels import match_mixture, remove_dc

    mix = remove_dc(torch.from_numpy(mixture)[None])
    with torch.no_grad():
        return match_mixture(model(mix), mix)[0][0].numpy()


# (case, how to build the input from the float32 mixture, tolerance against the float32 result)
EQUAL_INPUTS = [
    ("numpy float64 (numpy's and soundfile's default)", lambda m: m.astype(np.float64), 1e-5),
    ("torch float64 tensor", lambda m: torch.from_numpy(m).double(), 1e-5),
    ("torch float16 tensor", lambda m: torch.from_numpy(m).half(), 5e-2),
    ("torch bfloat16 tensor", lambda m: torch.from_numpy(m).bfloat16(), 5e-2),
    ("int16 PCM", lambda m: np.round(m * 2**15).astype(np.int16), 1e-3),
    ("int32 PCM", lambda m: np.round(m.astype(np.float64) * 2**31).astype(np.int32), 1e-5),
    ("a batch of one, (batch, time)", lambda m: m[None], 1e-5),
    ("a batch of one, (batch, 1, time)", lambda m: m[None, None], 1e-5),
]


@pytest.mark.parametrize("case,make,tol", EQUAL_INPUTS, ids=[c[0] for c in EQUAL_INPUTS])
def test_separate_array_takes_every_usual_sample_format(
    model, mixture, fitted_reference, case, make, tol
):
    reference = fitted_reference
    wav = make(mixture)
    out = separate_array(wav, RATE, model, precision="fp32")
    if wav.ndim > 1:  # a batch in, a batch out
        assert out.shape[0] == 1
        out = out[0]
    assert out.dtype == np.float32 and out.shape == reference.shape
    assert np.abs(out - reference).max() <= tol * np.abs(reference).max(), case


# (case, input, error type, words the message must contain)
BAD_ARRAYS = [
    (
        "(time, channels) as soundfile.read returns stereo",
        lambda m: np.stack([m, m], axis=1),
        ValueError,
        "looks like (time, channels)",
    ),
    ("four dimensions", lambda m: m[None, None, None], ValueError, "(batch, 1, time)"),
    (
        "(batch, channels, time) with two channels",
        lambda m: np.stack([m, m])[None],
        ValueError,
        "pass wav[:, c]",
    ),
    ("no samples", lambda m: m[:0], ValueError, "no samples"),
    ("NaN", lambda m: np.where(np.arange(m.size) == 5, np.nan, m), ValueError, "NaN or Inf"),
    ("int64 (no PCM format)", lambda m: (m * 100).astype(np.int64), TypeError, "integer PCM"),
    ("booleans", lambda m: m > 0, TypeError, "float samples"),
    ("a recording too short for the model", lambda m: m[:1], ValueError, "too short to separate"),
]


@pytest.mark.parametrize("case,make,error,words", BAD_ARRAYS, ids=[c[0] for c in BAD_ARRAYS])
def test_separate_array_refuses_what_it_would_get_wrong(model, mixture, case, make, error, words):
    with pytest.raises(error, match=None) as info:
        separate_array(make(mixture), RATE, model)
    assert words in str(info.value), str(info.value)


# The model itself: (case, input, expected: "equal" to the float32 output, or (error, words))
MODEL_INPUTS = [
    ("float64 tensor", lambda m: torch.from_numpy(m).double()[None], "equal"),
    ("bfloat16 tensor", lambda m: torch.from_numpy(m).bfloat16()[None], "close"),
    ("empty batch", lambda m: torch.from_numpy(m)[None][:0], (ValueError, "empty batch")),
    (
        "int16 tensor",
        lambda m: torch.from_numpy(np.round(m * 2**15).astype(np.int16))[None],
        (TypeError, "floating-point waveform"),
    ),
    ("numpy array", lambda m: m[None], (TypeError, "torch.Tensor")),
]


@pytest.mark.parametrize("case,make,expected", MODEL_INPUTS, ids=[c[0] for c in MODEL_INPUTS])
def test_model_input_dtypes(model, mixture, reference, case, make, expected):
    if isinstance(expected, tuple):
        error, words = expected
        with pytest.raises(error) as info:
            model(make(mixture))
        assert words in str(info.value), str(info.value)
        return
    with torch.no_grad():
        out = model(make(mixture))
    assert out.dtype == torch.float32  # the model's precision
    tol = 1e-5 if expected == "equal" else 5e-2
    assert (out[0].numpy() - reference).__abs__().max() <= tol * np.abs(reference).max()


def test_asteroid_separate_on_a_float64_numpy_batch(model, mixture):
    """Asteroid's model.separate hands numpy's float64 straight to the model
    (failed with a dtype error)."""
    out = model.separate(mixture.astype(np.float64)[None])
    assert out.shape == (1, 2, mixture.size) and np.isfinite(out).all()


# --------------------------------------------------------------------------------------------
# Files: broken checkpoints and wrong paths get a one-line error, never a traceback, nothing written
# --------------------------------------------------------------------------------------------
import os  # noqa: E402

from asteroid_spmamba import convert_original  # noqa: E402
from asteroid_spmamba.commands import main as cli_main  # noqa: E402
from asteroid_spmamba.inference import separate_file  # noqa: E402
from asteroid_spmamba.loading import load_model  # noqa: E402

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "original_spmamba_small.pt")


def _checkpoint_files(tmp_path):
    good = tmp_path / "good.pth"
    torch.save(torch.load(FIXTURE, weights_only=True)["serialized"], good)
    data = good.read_bytes()
    files = {
        "missing": (tmp_path / "missing.pth", "No checkpoint file"),
        "random bytes": (tmp_path / "random.pth", "is not a PyTorch checkpoint"),
        "empty": (tmp_path / "empty.pth", "is an empty file"),
        "truncated": (tmp_path / "truncated.pth", "is truncated"),
        "a folder": (tmp_path / "folder.pth", "is a folder"),
    }
    files["random bytes"][0].write_bytes(np.random.default_rng(0).bytes(4000))
    files["empty"][0].write_bytes(b"")
    files["truncated"][0].write_bytes(data[: len(data) // 2])
    files["a folder"][0].mkdir()
    return files


@pytest.mark.parametrize("case", ["missing", "random bytes", "empty", "truncated", "a folder"])
def test_convert_command_on_a_broken_checkpoint(tmp_path, capsys, case):
    path, words = _checkpoint_files(tmp_path)[case]
    assert cli_main(["convert", str(path), str(tmp_path / "out.pth")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and words in err and "Traceback" not in err
    assert not (tmp_path / "out.pth").exists()


@pytest.mark.parametrize("case", ["random bytes", "empty", "truncated"])
def test_loading_a_broken_model_file_names_the_problem(tmp_path, case):
    path, words = _checkpoint_files(tmp_path)[case]
    with pytest.raises(ValueError, match=words):
        load_model(str(path))


def _without(state, prefix):
    return {k: v for k, v in state.items() if not k.startswith(prefix)}


def test_convert_original_refuses_a_checkpoint_missing_a_block():
    serialized = torch.load(FIXTURE, weights_only=True)["serialized"]
    state = serialized["state_dict"]
    n_blocks = len({k.split(".")[1] for k in state if k.startswith("blocks.")})
    assert n_blocks >= 2, "the fixture needs two blocks for this test"
    with pytest.raises(ValueError, match=r"but not \[0\]"):
        convert_original(
            {**serialized, "state_dict": _without(state, "blocks.0.")}, sample_rate=8000
        )
    cut = {k: v for k, v in state.items() if not (k.startswith("blocks.1.") and "attn" in k)}
    with pytest.raises(
        ValueError, match=r"missing keys \(\d+\).*blocks\.1\.attn"
    ):  # a block cut short
        convert_original({**serialized, "state_dict": cut}, sample_rate=8000)


def test_model_folders_without_a_usable_config(tmp_path, model):
    import json

    model.save_pretrained(tmp_path / "saved")
    lone = tmp_path / "only_weights"
    lone.mkdir()
    (lone / "model.safetensors").write_bytes(
        (tmp_path / "saved" / "model.safetensors").read_bytes()
    )
    loaded = load_model(str(lone))  # the safetensors header carries the configuration
    assert torch.equal(next(loaded.parameters()), next(model.parameters()))
    broken = tmp_path / "broken_config"
    broken.mkdir()
    (broken / "config.json").write_text(json.dumps({"model_args": {}}))
    with pytest.raises(ValueError, match="lacks 'architecture'"):
        load_model(str(broken))


def test_separate_file_on_a_folder(tmp_path, model):
    with pytest.raises(IsADirectoryError, match="is a folder"):
        separate_file(tmp_path, model)


def test_evaluate_command_on_a_truncated_best_model(tmp_path, capsys, model):
    exp = tmp_path / "exp"
    exp.mkdir()
    torch.save(model.serialize(), exp / "best_model.pth")
    data = (exp / "best_model.pth").read_bytes()
    (exp / "best_model.pth").write_bytes(data[: len(data) // 3])
    assert cli_main(["evaluate", str(exp), "--test-dir", str(tmp_path), "--device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert "is truncated" in err and "Traceback" not in err


# --------------------------------------------------------------------------------------------
# Restarts and resumes
# --------------------------------------------------------------------------------------------
from asteroid_spmamba import training  # noqa: E402


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory):
    import soundfile as sf

    root = tmp_path_factory.mktemp("reliability_corpus")
    rng = np.random.default_rng(0)
    for split, n in (("train", 4), ("valid", 2), ("test", 1)):
        for i in range(n):
            folder = root / split / f"{split}-{i}"
            folder.mkdir(parents=True)
            srcs = (rng.standard_normal((2, 2000)) * 0.1).astype(np.float32)
            sf.write(folder / "spk1_reverb.wav", srcs[0], RATE, subtype="FLOAT")
            sf.write(folder / "spk2_reverb.wav", srcs[1], RATE, subtype="FLOAT")
            sf.write(folder / "mix.wav", srcs.sum(0), RATE, subtype="FLOAT")
    return root


def _train_conf(corpus, **training_conf):
    return {
        "model": {"name": "SPMamba", "args": tiny_spmamba_args()},
        "data": {"root": str(corpus), "sample_rate": RATE, "segment": 0.25, "valid_segment": None},
        "training": {
            "batch_size": 2,
            "max_epochs": 100,
            "progress_bar": False,
            "num_sanity_val_steps": 0,
            **training_conf,
        },
        "optim": {"lr": 1e-3},
    }


def test_a_restart_never_resurrects_the_previous_run(tiny_corpus, tmp_path):
    """Run A (4 steps); start over (B, 2 steps, another learning rate); a plain run then resumes B,
    not A: A's checkpoints were set aside, not left for Lightning's last-v1.ckpt naming to hide
    behind."""
    exp = tmp_path / "exp"
    training.train(_train_conf(tiny_corpus, max_steps=4), exp)
    b = _train_conf(tiny_corpus, max_steps=2, resume=False)
    b["optim"]["lr"] = 5e-4
    training.train(b, exp)
    assert (exp / "checkpoints-replaced-1" / "last.ckpt").is_file()
    assert not list((exp / "checkpoints").glob("last-v*.ckpt"))
    c = _train_conf(tiny_corpus, max_steps=3)
    c["optim"]["lr"] = 5e-4
    summary = training.train(c, exp)
    assert summary["global_step"] == 3 and summary["resumed_from"] == str(
        exp / "checkpoints" / "last.ckpt"
    )


def test_resume_refuses_a_changed_hyper_parameter_and_a_truncated_checkpoint(tiny_corpus, tmp_path):
    exp = tmp_path / "exp"
    training.train(_train_conf(tiny_corpus, max_steps=2), exp)
    changed = _train_conf(tiny_corpus, max_steps=3)
    changed["optim"]["lr"] = 1e-2
    with pytest.raises(ValueError, match=r"optim\.lr: 0\.001 -> 0\.01"):
        training.train(changed, exp)
    longer = training.train(
        _train_conf(tiny_corpus, max_steps=3), exp
    )  # only the budget changed: resumed
    assert longer["global_step"] == 3
    last = exp / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[:1000])
    with pytest.raises(ValueError, match="is truncated.*--no-resume"):
        training.train(_train_conf(tiny_corpus, max_steps=4), exp)


@pytest.fixture(scope="module")
def corpus_of_seconds(tmp_path_factory):
    """Utterances of 1 s, so that excerpts of 0.25 s, speed perturbation and
    dynamic mixing all draw."""
    import soundfile as sf

    root = tmp_path_factory.mktemp("resume_corpus")
    rng = np.random.default_rng(1)
    for split, n in (("train", 6), ("valid", 2)):
        for i in range(n):
            folder = root / split / f"{split}-{i}"
            folder.mkdir(parents=True)
            srcs = (rng.standard_normal((2, RATE)) * 0.1).astype(np.float32)
            for name, wav in (
                ("spk1_reverb.wav", srcs[0]),
                ("spk2_reverb.wav", srcs[1]),
                ("mix.wav", srcs.sum(0)),
            ):
                sf.write(folder / name, wav, RATE, subtype="FLOAT")
    return root


def _augmented_conf(corpus, **training_conf):
    """6 items, batches of 2: epochs of 3 steps; random excerpts, speed
    perturbation, dynamic mixing."""
    conf = _train_conf(corpus, log_every_n_steps=1, early_stop_patience=None, **training_conf)
    conf["data"].update(dynamic_mixing=True, speed_perturb=[0.9, 1.1])
    return conf


def _step_losses(exp):
    import csv

    losses = {}
    for path in sorted(exp.glob("logs/version_*/metrics.csv")):
        for row in csv.DictReader(path.open()):
            if row.get("loss"):
                losses[int(row["step"])] = float(row["loss"])
    return losses


def _final_weights(exp):
    return torch.load(exp / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)[
        "state_dict"
    ]


def _assert_same_run(a, b, steps):
    losses_a, losses_b = _step_losses(a), _step_losses(b)
    assert sorted(losses_a) == sorted(losses_b) == list(range(steps))
    assert losses_b == losses_a, {
        s: (losses_a[s], losses_b[s]) for s in losses_a if losses_a[s] != losses_b[s]
    }
    wa, wb = _final_weights(a), _final_weights(b)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.mark.parametrize(
    "workers, every, schedule, kill_after, resumed_at",
    [
        # mid-epoch, from the checkpoint of step 4 (checkpoint_every_n_steps 2)
        (0, 2, {"name": "linear_decay", "warmup_steps": 2}, 5, {"epoch": 1, "batches": 1}),
        # from the checkpoint written after epoch 1's validation (step 6), with loader workers and a
        # plateau schedule that halves the rate after every epoch: its step after that
        # validation must be replayed
        (2, None, {"name": "plateau", "patience": 0, "factor": 0.5}, 8, {"epoch": 2, "batches": 0}),
    ],
)
def test_a_killed_run_resumes_exactly(
    corpus_of_seconds, tmp_path, workers, every, schedule, kill_after, resumed_at
):
    """kill -9 after a step, then a plain rerun: the same losses at every step and the same final
    weights as the run that was never interrupted (data order, excerpts, speed factors, dynamic
    mixing pairs, the schedule and the random generators all resume where they were)."""
    import json
    import os

    conf = _augmented_conf(
        corpus_of_seconds, max_steps=10, checkpoint_every_n_steps=every, num_workers=workers
    )
    conf["scheduler"] = schedule
    conf_file = tmp_path / "conf.json"
    conf_file.write_text(json.dumps(conf))
    driver = [
        sys.executable,
        os.path.join(os.path.dirname(__file__), "train_and_kill.py"),
        str(conf_file),
    ]
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(
            [os.path.dirname(os.path.dirname(__file__)), os.environ.get("PYTHONPATH", "")]
        ),
    )

    def run(exp, *options):
        options += ("--plateau-threshold", "10") if schedule["name"] == "plateau" else ()
        return subprocess.run(
            driver + [str(exp), *options], env=env, capture_output=True, text=True, timeout=600
        )

    whole = run(tmp_path / "whole")
    assert whole.returncode == 0, whole.stderr[-3000:]
    killed = run(tmp_path / "killed", "--kill-after", str(kill_after))
    assert killed.returncode == -9, killed.stderr[-3000:]
    checkpoint = torch.load(tmp_path / "killed" / "checkpoints" / "last.ckpt", weights_only=False)
    assert checkpoint["data_position"] == resumed_at
    resumed = run(tmp_path / "killed")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    _assert_same_run(tmp_path / "whole", tmp_path / "killed", 10)
    if schedule["name"] == "plateau":  # the schedule did act: the rate was halved after each epoch
        final = torch.load(tmp_path / "whole" / "checkpoints" / "last.ckpt", weights_only=False)
        assert final["optimizer_states"][0]["param_groups"][0]["lr"] < conf["optim"]["lr"] / 4


def test_a_run_stopped_by_its_step_budget_continues_exactly(corpus_of_seconds, tmp_path):
    """5 steps, then the budget raised to 8 (a change a resume may make): the
    same run as 8 at once."""
    training.train(_augmented_conf(corpus_of_seconds, max_steps=8), tmp_path / "whole")
    training.train(_augmented_conf(corpus_of_seconds, max_steps=5), tmp_path / "in_two")
    summary = training.train(_augmented_conf(corpus_of_seconds, max_steps=8), tmp_path / "in_two")
    assert summary["resumed_from"] and summary["global_step"] == 8
    _assert_same_run(tmp_path / "whole", tmp_path / "in_two", 8)


def test_the_training_items_do_not_depend_on_the_loader_workers(corpus_of_seconds):
    """Each item is drawn by its own seed: 0 or 2 workers, in the main process or
    not, the same batches."""
    from asteroid_spmamba.training.datasets import make_datasets
    from asteroid_spmamba.training.sampling import EpochSampler, SeededItems

    train_set, _ = make_datasets(training.complete_conf(_augmented_conf(corpus_of_seconds))["data"])
    batches = []
    for workers in (0, 2):
        sampler = EpochSampler(len(train_set), seed=3)
        sampler.set_epoch(1)
        loader = torch.utils.data.DataLoader(
            SeededItems(train_set), batch_size=2, sampler=sampler, num_workers=workers
        )
        batches.append([mix for mix, _ in loader])
    assert all(torch.equal(a, b) for a, b in zip(*batches)) and len(batches[0]) == 3
    torch.manual_seed(0)
    before = torch.rand(3)
    torch.manual_seed(0)
    SeededItems(train_set)[(0, 123)]
    assert torch.equal(torch.rand(3), before), (
        "reading an item must leave the global generator as it was"
    )


def test_the_shards_of_data_parallel_processes_cover_the_epoch_once():
    from asteroid_spmamba.training.sampling import EpochSampler

    shards = []
    for rank in range(3):
        sampler = EpochSampler(10, seed=0)
        sampler.shard(rank, 3)
        sampler.set_epoch(2)
        shards.append(list(sampler))
    assert [len(s) for s in shards] == [4, 4, 4]
    items = [index for shard in shards for index, _ in shard]
    assert (
        sorted(set(items)) == list(range(10)) and len(items) == 12
    )  # two items padded, as DistributedSampler
    whole = EpochSampler(10, seed=0)
    whole.set_epoch(2)
    assert list(whole) == [
        shards[p % 3][p // 3] for p in range(10)
    ]  # the same items with the same seeds


def test_a_data_parallel_run_resumes_exactly(corpus_of_seconds, tmp_path):
    """Two CPU processes (DDP): 3 steps, then the budget raised to 7, equals 7 at once."""
    import os

    import yaml

    conf = _augmented_conf(corpus_of_seconds, cpu_processes=2)
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(
            [os.path.dirname(os.path.dirname(__file__)), os.environ.get("PYTHONPATH", "")]
        ),
    )

    def run(exp, steps):
        conf["training"]["max_steps"] = steps
        path = tmp_path / f"conf{steps}.yml"
        path.write_text(yaml.safe_dump(conf))
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "asteroid_spmamba",
                "train",
                "--conf",
                str(path),
                "--exp-dir",
                str(exp),
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert out.returncode == 0, out.stderr[-3000:]

    run(tmp_path / "whole", 7)
    run(tmp_path / "in_two", 3)
    run(tmp_path / "in_two", 7)
    wa, wb = _final_weights(tmp_path / "whole"), _final_weights(tmp_path / "in_two")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_checkpoint_every_n_steps_must_be_positive(tiny_corpus, tmp_path):
    with pytest.raises(ValueError, match="checkpoint_every_n_steps must be a positive"):
        training.train(
            _train_conf(tiny_corpus, max_steps=1, checkpoint_every_n_steps=0), tmp_path / "exp"
        )


def _copy_corpus(src, dst):
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_an_unreadable_wav_is_named_in_training_and_scoring(tiny_corpus, tmp_path, capsys):
    corpus = _copy_corpus(tiny_corpus, tmp_path / "corpus")
    bad = corpus / "train" / "train-1" / "spk2_reverb.wav"
    bad.write_bytes(b"RIFF\x00\x00")  # a header cut short
    with pytest.raises(ValueError, match=r"train-1/spk2_reverb.wav cannot be read as audio"):
        training.train(_train_conf(corpus, max_steps=1), tmp_path / "exp")
    estimates = tmp_path / "est" / "test-0"
    estimates.mkdir(parents=True)
    (estimates / "s1.wav").write_bytes(b"not audio")
    (estimates / "s2.wav").write_bytes(b"not audio")
    assert cli_main(["score", str(tiny_corpus / "test"), str(tmp_path / "est")]) == 1
    err = capsys.readouterr().err
    assert "cannot be read as audio" in err and "Traceback" not in err


def test_train_command_with_an_experiment_folder_under_a_file(tiny_corpus, tmp_path, capsys):
    (tmp_path / "a_file").write_text("x")
    conf = tmp_path / "conf.yml"
    import yaml

    conf.write_text(yaml.safe_dump(_train_conf(tiny_corpus, max_steps=1)))
    code = cli_main(["train", "--conf", str(conf), "--exp-dir", str(tmp_path / "a_file" / "exp")])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("error: ") and "a_file" in err and "Traceback" not in err


# --------------------------------------------------------------------------------------------
# Killed processes: their litter is cleaned by the next run; a running one is not disturbed
# --------------------------------------------------------------------------------------------


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_separate_cleans_the_temporary_files_of_a_killed_run(tmp_path, model):
    import soundfile as sf

    from asteroid_spmamba.inference import separate_to_files

    wav = tmp_path / "mix.wav"
    sf.write(wav, (np.random.default_rng(0).standard_normal(2400) * 0.1).astype(np.float32), RATE)
    dead, alive = _dead_pid(), os.getppid()
    litter = tmp_path / f".mix_spk1.wav.tmp-{dead}-0123abcd"
    running = tmp_path / f".mix_spk1.wav.tmp-{alive}-0123abcd"
    litter.write_bytes(b"half a file")
    running.write_bytes(b"someone else's work")
    written, _ = separate_to_files(wav, model)
    assert [p.name for p in written] == ["mix_spk1.wav", "mix_spk2.wav"]
    assert not litter.exists() and running.exists()


def test_make_corpus_cleans_killed_builds_and_refuses_to_race_a_running_one(tmp_path):
    from asteroid_spmamba.data.synthetic import make_corpus

    out = tmp_path / "corpus"
    litter = tmp_path / f".corpus.partial-{_dead_pid()}-0123abcd"
    (litter / "train").mkdir(parents=True)
    running = tmp_path / f".corpus.partial-{os.getppid()}-4567abcd"
    running.mkdir()
    with pytest.raises(FileExistsError, match=f"process {os.getppid()}.*is building"):
        make_corpus(out, n_train=1, n_valid=1, n_test=1, progress=False)
    assert not litter.exists() and running.exists() and not out.exists()
