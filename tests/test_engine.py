"""Training and evaluation (asteroid_spmamba.training) on a tiny fake corpus, on CPU."""

import csv
import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml
from asteroid.losses import PITLossWrapper, pairwise_neg_sisdr
from asteroid.models import BaseModel
from conftest import tiny_spmamba_args

from asteroid_spmamba import training
from asteroid_spmamba.scoring import score_utterance
from asteroid_spmamba.training import fit, system

RATE = 8000
SEG = 2000  # samples: every training mixture is exactly one segment, so no random crop happens


def _write_split(root, split, n, length, rng):
    """``n`` mixtures of two harmonic 'speakers' (different pitches) plus a little noise."""
    t = np.arange(length) / RATE
    for i in range(n):
        folder = root / split / f"{split}-{i:03d}"
        folder.mkdir(parents=True)
        srcs = []
        for f0 in rng.uniform(100, 300, size=2):
            s = sum(np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 6)) / k for k in range(1, 5))
            srcs.append(
                0.1 * s * (1 + 0.5 * np.sin(2 * np.pi * rng.uniform(1, 4) * t))
                + 0.005 * rng.standard_normal(length)
            )
        srcs = np.stack(srcs).astype(np.float32)
        sf.write(folder / "spk1_reverb.wav", srcs[0], RATE, subtype="FLOAT")
        sf.write(folder / "spk2_reverb.wav", srcs[1], RATE, subtype="FLOAT")
        sf.write(folder / "mix.wav", srcs.sum(0), RATE, subtype="FLOAT")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("fake_corpus")
    rng = np.random.default_rng(0)
    _write_split(root, "train", 2, SEG, rng)
    _write_split(root, "valid", 2, 2400, rng)
    _write_split(root, "test", 3, 2800, rng)
    return root


def _conf(corpus, **training):
    return {
        "model": {"name": "SPMamba", "args": tiny_spmamba_args()},
        "data": {
            "root": str(corpus),
            "sample_rate": RATE,
            "segment": SEG / RATE,
            "valid_segment": None,
        },
        "training": {
            "batch_size": 2,
            "max_epochs": 1,
            "progress_bar": False,
            "num_sanity_val_steps": 0,
            **training,
        },
        "optim": {"lr": 1e-3},
    }


@pytest.fixture(scope="module")
def trained(corpus, tmp_path_factory):
    """One epoch = one optimizer step (2 training mixtures, batch 2)."""
    torch.set_num_threads(1)
    exp = tmp_path_factory.mktemp("exp") / "tiny"
    conf = _conf(corpus)
    summary = training.train(conf, exp)
    return conf, exp, summary


def _valid_loss(model, corpus):
    """Mean PIT negative SI-SDR over the whole validation mixtures, computed here independently."""
    loss = PITLossWrapper(pairwise_neg_sisdr, pit_from="pw_mtx")
    values = []
    with torch.no_grad():
        for folder in sorted((corpus / "valid").iterdir()):
            mix = torch.from_numpy(sf.read(folder / "mix.wav", dtype="float32")[0])
            refs = torch.stack(
                [
                    torch.from_numpy(sf.read(folder / f"spk{k}_reverb.wav", dtype="float32")[0])
                    for k in (1, 2)
                ]
            )
            values.append(float(loss(model(mix[None]), refs[None])))
    return float(np.mean(values))


def test_train_writes_experiment(trained, corpus):
    conf, exp, summary = trained
    assert (exp / "checkpoints" / "last.ckpt").is_file()
    assert (exp / "checkpoints" / "epoch=0-step=1.ckpt").is_file()
    assert summary["global_step"] == 1
    assert json.loads((exp / "train_summary.json").read_text()) == summary
    # conf.yml: the complete configuration, defaults filled in
    saved = yaml.safe_load((exp / "conf.yml").read_text())
    assert saved == training.complete_conf(conf)
    assert (
        saved["training"]["gradient_clip_val"]
        == training.DEFAULT_CONF["training"]["gradient_clip_val"]
    )
    assert saved["model"]["args"]["sample_rate"] == RATE

    # best_model.pth: Asteroid's serialized format, no optimizer state, loadable by BaseModel
    package = torch.load(exp / "best_model.pth", map_location="cpu", weights_only=True)
    assert set(package) == {"model_name", "model_args", "state_dict", "infos"}
    assert package["model_name"] == "SPMamba"
    assert package["infos"]["training_config"] == saved
    model = BaseModel.from_pretrained(str(exp / "best_model.pth")).eval()
    ckpt = torch.load(
        exp / "checkpoints" / "epoch=0-step=1.ckpt", map_location="cpu", weights_only=False
    )
    reference = training.build_model(saved["model"]).eval()
    reference.load_state_dict(
        {k[len("model.") :]: v for k, v in ckpt["state_dict"].items() if k.startswith("model.")}
    )
    x = torch.randn(1, 3000)
    with torch.no_grad():
        assert torch.equal(model(x), reference(x))

    # one optimizer step moved the weights away from the seeded initialisation
    import pytorch_lightning as pl

    pl.seed_everything(0, verbose=False)
    initial = training.build_model(saved["model"])
    moved = [
        not torch.equal(a, b)
        for a, b in zip(initial.state_dict().values(), model.state_dict().values())
    ]
    assert any(moved)

    # the logged validation loss is the mean PIT loss of the saved model on the validation set
    assert summary["best_val_loss"] == pytest.approx(_valid_loss(model, corpus), abs=1e-4)


def test_validation_uses_the_validation_loss(corpus, tmp_path):
    # loss.val differs from loss.train (the comparison recipes: SNR to train, SI-SDR to validate):
    # the logged validation loss, which picks best_model.pth, is the validation loss
    torch.set_num_threads(1)
    conf = _conf(corpus)
    conf["loss"] = {"train": "pairwise_neg_snr", "val": "pairwise_neg_sisdr"}
    summary = training.train(conf, tmp_path / "exp")
    model = BaseModel.from_pretrained(str(tmp_path / "exp" / "best_model.pth")).eval()
    assert summary["best_val_loss"] == pytest.approx(_valid_loss(model, corpus), abs=1e-4)


def test_resume_matches_uninterrupted_training(trained, corpus, tmp_path):
    conf, exp, _ = trained
    # resume the 1-epoch run for a second epoch ...
    resumed_dir = tmp_path / "resumed"
    import shutil

    shutil.copytree(exp, resumed_dir)
    resumed = training.train(
        {**conf, "training": {**conf["training"], "max_epochs": 2}}, resumed_dir
    )
    assert resumed["resumed_from"] == str(resumed_dir / "checkpoints" / "last.ckpt")
    assert resumed["global_step"] == 2
    first = trained[2]
    assert resumed["total_wall_time_s"] == pytest.approx(
        first["wall_time_s"] + resumed["wall_time_s"], abs=0.11
    )
    # ... and train 2 epochs in one go: the same weights (optimizer and
    # scheduler states were restored)
    straight = training.train(
        {**conf, "training": {**conf["training"], "max_epochs": 2}}, tmp_path / "straight"
    )
    assert straight["resumed_from"] is None and straight["global_step"] == 2
    a = torch.load(resumed_dir / "best_model.pth", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "straight" / "best_model.pth", weights_only=True)["state_dict"]
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6)
    c = torch.load(exp / "best_model.pth", weights_only=True)["state_dict"]
    assert any(not torch.equal(a[k], c[k]) for k in a)  # the second epoch did change them


def test_max_steps_mid_epoch_then_resume(corpus, tmp_path):
    conf = _conf(corpus, batch_size=1, max_epochs=5)  # 2 steps per epoch
    first = training.train({**conf, "training": {**conf["training"], "max_steps": 1}}, tmp_path)
    # stopped before the epoch's validation: the final weights are validated and exported
    assert first["global_step"] == 1 and first["best_checkpoint"] == str(
        tmp_path / "checkpoints" / "last.ckpt"
    )
    final = BaseModel.from_pretrained(str(tmp_path / "best_model.pth")).eval()
    assert first["best_val_loss"] == pytest.approx(_valid_loss(final, corpus), rel=1e-4)
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file() and (
        tmp_path / "best_model.pth"
    ).is_file()
    second = training.train({**conf, "training": {**conf["training"], "max_steps": 3}}, tmp_path)
    assert second["global_step"] == 3 and second["resumed_from"] is not None


def test_steps_after_the_last_validation_count(corpus, tmp_path):
    """A budget that ends between validations: the final weights are validated and exported when
    they beat the best checkpoint, and the best checkpoint is kept when they do not."""
    conf = _conf(corpus, batch_size=1, max_epochs=5, max_steps=3)  # validation after steps 2 and 4
    conf["optim"] = {"lr": 3e-3}
    summary = training.train(conf, tmp_path / "a")
    validated = sorted(p.name for p in (tmp_path / "a" / "checkpoints").glob("epoch=*.ckpt"))
    assert validated == ["epoch=0-step=2.ckpt"]
    final = BaseModel.from_pretrained(str(tmp_path / "a" / "best_model.pth")).eval()
    last = torch.load(
        tmp_path / "a" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False
    )
    step2 = torch.load(
        tmp_path / "a" / "checkpoints" / validated[0], map_location="cpu", weights_only=False
    )
    chosen = last if summary["best_checkpoint"].endswith("last.ckpt") else step2
    for key, value in final.state_dict().items():
        torch.testing.assert_close(value, chosen["state_dict"]["model." + key])
    # the exported model is the better of the two on the validation set
    scores = []
    for ckpt in (step2, last):
        model = training.build_model(conf["model"])
        model.load_state_dict({k[len("model.") :]: v for k, v in ckpt["state_dict"].items()})
        scores.append(_valid_loss(model.eval(), corpus))
    assert summary["best_val_loss"] == pytest.approx(min(scores), rel=1e-4)


def test_resume_refuses_another_model(trained, tmp_path):
    conf, exp, _ = trained
    import shutil

    shutil.copytree(exp, tmp_path / "e")
    other = {**conf, "model": {"name": "SPMamba", "args": tiny_spmamba_args(emb_dim=4)}}
    with pytest.raises(ValueError, match="cannot be resumed"):
        training.train(other, tmp_path / "e")


def test_evaluate_writes_scores(trained, corpus, tmp_path):
    _, exp, _ = trained
    out = tmp_path / "eval"
    summary = training.evaluate(
        exp, corpus / "test", out, n_save_examples=1, progress=False, verbose=False
    )
    with open(out / "metrics.csv") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["utt_id", "sdr", "sdr_i", "si_snr", "si_snr_i", "level_db"]
    assert [r[0] for r in rows[1:]] == ["test-000", "test-001", "test-002"]

    # reference: the same model, its output as users get it (levels.match_mixture), score_utterance
    from asteroid_spmamba.levels import match_mixture, remove_dc

    model = BaseModel.from_pretrained(str(exp / "best_model.pth")).eval()
    expected = []
    for folder in sorted((corpus / "test").iterdir()):
        mix = remove_dc(torch.from_numpy(sf.read(folder / "mix.wav", dtype="float32")[0]))
        refs = np.stack(
            [sf.read(folder / f"spk{k}_reverb.wav", dtype="float32")[0] for k in (1, 2)]
        )
        with torch.no_grad():
            est = match_mixture(model(mix[None])[0], mix)[0].numpy()
        expected.append(score_utterance(mix.numpy(), refs, est, RATE))
    for row, ref in zip(rows[1:], expected):
        for col, value in zip(rows[0][1:], row[1:]):
            assert float(value) == pytest.approx(ref[col], abs=1e-3)
    for key in ("sdr", "sdr_i", "si_snr", "si_snr_i"):
        assert summary[key] == pytest.approx(np.mean([e[key] for e in expected]), abs=1e-4)
    assert json.loads((out / "summary.json").read_text()) == summary
    assert summary["n_utterances"] == 3

    # the example: references as written, estimates aligned with them (best permutation)
    ex = out / "examples" / "test-000"
    refs = np.stack([sf.read(ex / f"s{k}.wav")[0] for k in (1, 2)])
    ests = np.stack([sf.read(ex / f"s{k}_estimate.wav")[0] for k in (1, 2)])
    np.testing.assert_allclose(
        refs,
        np.stack([sf.read(corpus / "test" / "test-000" / f"spk{k}_reverb.wav")[0] for k in (1, 2)]),
        atol=1e-7,
    )
    mix = sf.read(ex / "mixture.wav")[0]
    assert score_utterance(mix, refs, ests, RATE)["si_snr"] == pytest.approx(
        float(rows[1][3]), abs=1e-3
    )
    assert not (out / "examples" / "test-001").exists()

    # the comparison table lists this experiment
    os.makedirs(tmp_path / "exps" / "tiny" / "eval")
    (tmp_path / "exps" / "tiny" / "eval" / "summary.json").write_text(json.dumps(summary))
    table = training.compare_experiments(tmp_path / "exps", corpus / "test")
    assert "tiny" in table and f"{summary['si_snr_i']:.2f}" in table and "CUT SHORT" not in table
    # a run that max_time stopped before its step budget is marked
    (tmp_path / "exps" / "tiny" / "train_summary.json").write_text(
        json.dumps({"global_step": 7, "cut_short": True})
    )
    table = training.compare_experiments(tmp_path / "exps", corpus / "test").splitlines()
    assert (
        table[1].split()[3] == "7!" and table[-1].startswith("! CUT SHORT") and "tiny" in table[-1]
    )
    os.remove(tmp_path / "exps" / "tiny" / "train_summary.json")

    # stored reference figures: listed (marked *) for the experiments not under the folder
    reference = tmp_path / "reference.yml"
    reference.write_text(
        "- {experiment: other, model: ConvTasNet, n_parameters: 1234, global_step: 77, "
        "wall_time_s: 450,\n   si_snr_i: 98.76, sdr_i: 99.5, n_utterances: 50, how: ./run.sh "
        "--model convtasnet}\n- {experiment: tiny, model: X, n_parameters: 1, si_snr_i: 55.55, "
        "sdr_i: 1, n_utterances: 1}\n"
    )
    lines = training.compare_experiments(
        tmp_path / "exps", corpus / "test", reference=reference
    ).splitlines()
    assert lines[1].split() == [
        "other*",
        "ConvTasNet",
        "1,234",
        "77",
        "450",
        "98.76",
        "99.50",
        "50",
    ]
    assert lines[2].split()[0] == "tiny" and "55.55" not in "\n".join(lines)  # the run here wins
    assert (
        lines[-1].startswith("* other: not run here") and "./run.sh --model convtasnet" in lines[-1]
    )
    reference.write_text("- {experiment: broken, model: X}\n")
    with pytest.raises(ValueError, match="lacks"):
        training.compare_experiments(tmp_path / "exps", corpus / "test", reference=reference)


def test_asteroid_model_and_config_errors(corpus, tmp_path):
    model = training.build_model(
        {
            "name": "ConvTasNet",
            "args": {
                "n_src": 2,
                "sample_rate": RATE,
                "n_blocks": 1,
                "n_repeats": 1,
                "n_filters": 16,
                "bn_chan": 8,
                "hid_chan": 8,
                "skip_chan": 8,
            },
        }
    )
    assert type(model).__name__ == "ConvTasNet"
    with pytest.raises(ValueError, match="Unknown model 'NoSuchNet'"):
        training.build_model({"name": "NoSuchNet", "args": {}})
    with pytest.raises(
        ValueError, match="Unknown configuration key 'training'.'batchsize'|batchsize"
    ):
        training.complete_conf({"training": {"batchsize": 3}})
    with pytest.raises(ValueError, match="sample_rate"):
        training.complete_conf(
            {
                "model": {"name": "SPMamba", "args": {"sample_rate": 16000}},
                "data": {"sample_rate": 8000},
            }
        )
    conf = training.apply_overrides(
        {"training": {"max_steps": 1}}, ["training.max_steps=5", "optim.lr=3e-4", "scheduler=null"]
    )
    assert conf["training"]["max_steps"] == 5 and conf["optim"]["lr"] == 3e-4
    assert training.complete_conf(conf)["scheduler"] is None
    with pytest.raises(FileNotFoundError, match="make-corpus"):
        training.train(_conf(tmp_path / "missing"), tmp_path / "exp")
    with pytest.raises(ValueError, match="CUDA is not available"):
        if torch.cuda.is_available():
            pytest.skip("CUDA present")
        training.train(_conf(corpus, gpus=1), tmp_path / "exp")


def test_convtasnet_trains_one_step(corpus, tmp_path):
    conf = _conf(corpus)
    conf["model"] = {
        "name": "ConvTasNet",
        "args": {
            "n_blocks": 1,
            "n_repeats": 1,
            "n_filters": 16,
            "bn_chan": 8,
            "hid_chan": 8,
            "skip_chan": 8,
        },
    }
    summary = training.train(conf, tmp_path)
    assert summary["global_step"] == 1 and summary["model"] == "ConvTasNet"
    model = BaseModel.from_pretrained(str(tmp_path / "best_model.pth"))
    assert type(model).__name__ == "ConvTasNet" and model.sample_rate == RATE


def test_loss_section_names_asteroid_pit_losses():
    import pytest
    import torch

    from asteroid_spmamba.training.system import _pit_loss

    refs = torch.randn(2, 2, 400)
    ests = refs.flip(1) + 0.1 * torch.randn(2, 2, 400)  # swapped sources: PIT must undo the swap
    snr = _pit_loss("pairwise_neg_snr")(ests, refs)
    best = ests.flip(1)
    r, b = (
        refs - refs.mean(-1, keepdim=True),
        best - best.mean(-1, keepdim=True),
    )  # asteroid zero-means
    manual = -(10 * torch.log10(r.pow(2).sum(-1) / (r - b).pow(2).sum(-1))).mean()
    torch.testing.assert_close(snr, manual, rtol=1e-4, atol=1e-4)
    assert not torch.isclose(snr, _pit_loss("pairwise_neg_sisdr")(ests, refs))
    with pytest.raises(ValueError, match="Unknown loss"):
        _pit_loss("l1")


def test_training_paths_from_the_configuration():
    model = training.build_model({"name": "SPMamba", "args": tiny_spmamba_args()})
    block = model.masker.blocks[0]
    assert system.apply_training_paths(model, {}) is model and not model.masker.checkpoint_blocks
    assert block.fast_unfold and block.fused_attention  # fast by default
    system.apply_training_paths(model, {"fast_paths": False, "activation_checkpointing": True})
    assert model.masker.checkpoint_blocks and not block.fast_unfold and not block.fused_attention
    system.apply_training_paths(model, {"fast_paths": True})
    assert block.fast_unfold and block.fused_attention and not model.masker.checkpoint_blocks
    convtasnet = training.build_model(
        {"name": "ConvTasNet", "args": {"n_src": 2, "n_blocks": 1, "n_repeats": 1}}
    )
    assert (
        system.apply_training_paths(convtasnet, {"fast_paths": True}) is convtasnet
    )  # no fast paths: nothing to do
    with pytest.raises(ValueError, match="GridNet models"):
        system.apply_training_paths(convtasnet, {"activation_checkpointing": True})


def test_fused_optimizer_takes_the_same_steps():
    """optim.fused=auto picks torch's fused Adam except where Lightning refuses it (mixed precision
    with gradient clipping); its updates equal the per-parameter loop's."""
    torch.manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(5, 3)), torch.nn.Parameter(torch.randn(7))]
    copies = [torch.nn.Parameter(p.detach().clone()) for p in params]
    initial = [p.detach().clone() for p in params]
    conf = {"optimizer": "adam", "lr": 1e-2, "weight_decay": 1e-3, "fused": "auto"}
    fused = system._make_optimizer(params, conf, "32-true", 5.0)
    loop = system._make_optimizer(copies, {**conf, "fused": False}, "32-true", 5.0)
    assert fused.defaults["fused"] and not loop.defaults["fused"]
    for _ in range(5):
        for group in (params, copies):
            for p in group:
                p.grad = torch.sin(3 * p.detach()) + 0.1  # same gradients for both
        fused.step()
        loop.step()
    for p, q, p0 in zip(params, copies, initial):
        assert (p.detach() - p0).abs().min() > 1e-3  # five steps of lr 1e-2 moved every weight
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-6)
    for precision in ("16-mixed", "bf16-mixed", "16", "bf16"):
        assert not system._make_optimizer(params, conf, precision, 5.0).defaults["fused"]
        assert system._make_optimizer(params, conf, precision, None).defaults[
            "fused"
        ]  # nothing to clip
        with pytest.raises(ValueError, match="gradient_clip_val"):
            system._make_optimizer(params, {**conf, "fused": True}, precision, 5.0)
    assert system._make_optimizer(params, {**conf, "fused": True}, "bf16-true", 5.0).defaults[
        "fused"
    ]
    assert (
        "fused"
        not in system._make_optimizer(
            params, {**conf, "optimizer": "rmsprop"}, "32-true", 5.0
        ).defaults
    )
    with pytest.raises(ValueError, match="no fused implementation"):
        system._make_optimizer(
            params, {**conf, "optimizer": "rmsprop", "fused": True}, "32-true", 5.0
        )
    with pytest.raises(ValueError, match="optim.fused"):
        system._make_optimizer(params, {**conf, "fused": "yes"}, "32-true", 5.0)


@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed", "16-mixed"])
@pytest.mark.parametrize("fused", ["auto", False])
def test_cli_trains_under_each_recipe_precision_with_clipping(corpus, tmp_path, precision, fused):
    """`asteroid-spmamba train` takes optimizer steps under every precision the recipes set, with
    gradient clipping (the recipes' 5.0) and the default optim.fused: on CPU, Lightning's
    mixed-precision plugin refuses to clip a fused optimizer's gradients exactly as on a GPU."""
    from asteroid_spmamba.commands import main

    conf = _conf(corpus, max_steps=3, max_epochs=3, gradient_clip_val=5.0, precision=precision)
    conf["optim"]["fused"] = fused
    conf_path = tmp_path / "conf.yml"
    conf_path.write_text(yaml.safe_dump(conf))
    exit_code = main(
        [
            "train",
            "--conf",
            str(conf_path),
            "--exp-dir",
            str(tmp_path / "exp"),
            "--corpus",
            str(corpus),
            "--precision",
            precision,
            "--max-steps",
            "3",
        ]
    )
    assert exit_code == 0
    summary = json.loads((tmp_path / "exp" / "train_summary.json").read_text())
    assert summary["global_step"] == 3


def test_linear_decay_schedule_follows_the_budget():
    """Warm-up, then a linear decay to final_factor at the end of the budget: the steps when
    max_steps is set (max_time is then a safety stop), else the clock of Lightning's Timer."""
    from types import SimpleNamespace

    from pytorch_lightning.callbacks import Timer

    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.Adam([param], lr=0.01)
    callback = system._linear_decay_callback(warmup_steps=4, final_factor=0.1)
    trainer = SimpleNamespace(global_step=0, max_steps=100, callbacks=[], optimizers=[optimizer])

    def lr_at(step):
        trainer.global_step = step
        callback.on_train_batch_start(trainer, None, None, 0)
        return optimizer.param_groups[0]["lr"]

    assert lr_at(0) == pytest.approx(0.01 * 1 / 4)  # warm-up: (step + 1) / warmup_steps
    assert lr_at(2) == pytest.approx(0.01 * 3 / 4)
    assert lr_at(50) == pytest.approx(0.01 * (0.1 + 0.9 * 0.5))
    assert lr_at(100) == pytest.approx(0.01 * 0.1)
    # with a step budget the clock does not move the schedule (same model on a slower machine) ...
    timer = Timer(duration={"seconds": 100})
    timer.time_elapsed = lambda *a: 75.0
    timer.time_remaining = lambda *a: 25.0
    trainer.callbacks = [timer]
    assert lr_at(50) == pytest.approx(0.01 * (0.1 + 0.9 * 0.5))
    # ... without one, the time budget drives it
    trainer.max_steps = -1
    assert lr_at(50) == pytest.approx(0.01 * (0.1 + 0.9 * 0.25))
    trainer.max_steps = 100
    with pytest.raises(ValueError, match="final_factor"):
        system._linear_decay_callback(0, 1.5)
    # decay_start: constant until that fraction of the budget, then linear to final_factor
    late = system._linear_decay_callback(warmup_steps=0, final_factor=0.0, decay_start=0.8)
    steps = SimpleNamespace(global_step=0, max_steps=100, callbacks=[], optimizers=[optimizer])
    for step, factor in ((0, 1.0), (80, 1.0), (90, 0.5), (95, 0.25), (100, 0.0)):
        steps.global_step = step
        late.on_train_batch_start(steps, None, None, 0)
        assert optimizer.param_groups[0]["lr"] == pytest.approx(0.01 * factor), step
    with pytest.raises(ValueError, match="decay_start"):
        system._linear_decay_callback(0, 0.0, decay_start=1.0)
    unbounded = SimpleNamespace(max_steps=-1, callbacks=[])
    with pytest.raises(ValueError, match="max_steps or training.max_time"):
        callback.on_train_start(unbounded, None)


def test_linear_decay_trains_and_plateau_keys_still_work(corpus, tmp_path):
    conf = _conf(corpus, batch_size=1, max_epochs=5, max_steps=3)
    conf["scheduler"] = {"name": "linear_decay", "warmup_steps": 1, "final_factor": 0.0}
    summary = training.train(conf, tmp_path / "decay")
    assert summary["global_step"] == 3
    state = torch.load(
        tmp_path / "decay" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False
    )
    group = state["optimizer_states"][0]["param_groups"][0]
    assert group["initial_lr"] == pytest.approx(1e-3) and group["lr"] == pytest.approx(
        1e-3 * (1 - 2 / 3)
    )
    with pytest.raises(ValueError, match="scheduler.name"):
        training.train({**conf, "scheduler": {"name": "cosine"}}, tmp_path / "bad")


def test_max_time_is_a_safety_stop_that_marks_the_run_cut_short(corpus, tmp_path, capsys):
    conf = _conf(corpus, batch_size=1, max_epochs=1000, max_steps=100000, max_time=2)
    summary = training.train(conf, tmp_path / "cut")
    assert 0 < summary["global_step"] < 100000 and summary["cut_short"]
    assert "CUT SHORT" in capsys.readouterr().err
    assert json.loads((tmp_path / "cut" / "train_summary.json").read_text())["cut_short"]
    full = training.train(
        _conf(corpus, batch_size=1, max_epochs=5, max_steps=2, max_time=600), tmp_path / "full"
    )
    assert full["global_step"] == 2 and not full["cut_short"]


def test_same_seed_same_scores(corpus, tmp_path):
    """CPU training is deterministic: two runs with one seed (random crops, data order, weights)
    give the same weights and the same test scores, digit for digit; another seed does not."""

    def run(name, seed):
        conf = _conf(corpus, batch_size=1, max_epochs=3, max_steps=4, seed=seed)
        conf["data"]["segment"] = 0.1  # shorter than the mixtures: random crops
        training.train(conf, tmp_path / name)
        training.evaluate(tmp_path / name, progress=False)
        return (tmp_path / name / "eval" / "metrics.csv").read_text()

    first, second, other = run("a", 0), run("b", 0), run("c", 1)
    assert first == second and first != other


def test_init_from_starts_from_a_models_weights(trained, corpus, tmp_path):
    """training.init_from: the new run starts from the given model's weights (lr 0 keeps them);
    a model of another configuration is refused with the difference named."""
    source = trained[1] / "best_model.pth"
    conf = _conf(corpus, max_steps=1, init_from=str(source))
    conf["optim"]["lr"] = 0.0
    training.train(conf, tmp_path / "continued")
    before = training.load_trained_model(source).state_dict()
    after = training.load_trained_model(tmp_path / "continued").state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    fresh = training.build_model(_conf(corpus)["model"]).state_dict()
    assert any(
        not torch.equal(before[k], fresh[k]) for k in before
    )  # not the initialisation by chance
    other = _conf(corpus, max_steps=1, init_from=str(source))
    other["model"]["args"] = {**other["model"]["args"], "emb_dim": 12}
    with pytest.raises(ValueError, match="emb_dim"):
        training.train(other, tmp_path / "other")


def test_cpu_processes_configuration():
    assert fit._accelerator({"gpus": 0, "cpu_processes": 1}) == {"accelerator": "cpu", "devices": 1}
    assert fit._accelerator({"gpus": 0, "cpu_processes": 2}) == {
        "accelerator": "cpu",
        "devices": 2,
        "strategy": "ddp",
    }
    with pytest.raises(ValueError, match="cpu_processes"):
        fit._accelerator({"gpus": 0, "cpu_processes": 0})


def test_trainer_section_reaches_lightning(corpus, tmp_path):
    """trainer: keys go to Lightning's Trainer as they are; a key the training section
    sets is refused there."""
    conf = {**_conf(corpus, max_epochs=2), "trainer": {"check_val_every_n_epoch": 2}}
    training.train(conf, tmp_path / "every2")
    with open(next((tmp_path / "every2" / "logs").glob("version_*/metrics.csv")), newline="") as f:
        validated = [row for row in csv.DictReader(f) if row.get("val_loss")]
    assert len(validated) == 1  # epochs 1 and 2, validated after the second only
    with pytest.raises(ValueError, match="precision"):
        training.train({**_conf(corpus), "trainer": {"precision": "bf16-mixed"}}, tmp_path / "both")


def test_one_talker_mixtures_train_with_the_mixture_fit_loss(corpus, tmp_path):
    """data.single_speaker_share with loss mixture_fit_snr: a training step and a validation run;
    the share without a loss defined for silent targets is refused."""
    from asteroid_spmamba.data.echo2mix import Echo2MixDataset

    torch.manual_seed(0)
    items = Echo2MixDataset(
        str(corpus / "train"),
        sample_rate=RATE,
        segment=0.1,
        dynamic_mixing=True,
        single_speaker_share=1.0,
    )
    mix, src = items[0]
    assert torch.count_nonzero(src[1]) == 0 and torch.equal(mix, src[0])
    conf = _conf(corpus)
    conf["data"].update(dynamic_mixing=True, single_speaker_share=0.5)
    with pytest.raises(ValueError, match="loss.train: mixture_fit_snr"):
        training.train(conf, tmp_path / "refused")
    conf["loss"] = {"train": "mixture_fit_snr", "val": "mixture_fit_snr"}
    with pytest.warns(UserWarning, match="copy the mixture") as warned:
        summary = training.train(conf, tmp_path / "exp")
    assert summary["global_step"] == 1 and np.isfinite(summary["best_val_loss"])
    assert any(Path(w.filename).name == Path(__file__).name for w in warned)  # the caller's line
    # from weights that were trained first: no warning
    conf["training"]["init_from"] = str(tmp_path / "exp" / "best_model.pth")
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*copy the mixture")
        training.train(conf, tmp_path / "continued")
