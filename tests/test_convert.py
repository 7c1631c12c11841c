"""Import of original SPMamba checkpoints: same outputs as the original code at the same weights.

``fixtures/original_spmamba_small.pt`` holds a small original model (perturbed weights), an input
and the original code's output, written by ``make_original_reference.py`` from JusperLee/SPMamba run
on CPU with upstream mamba_ssm's reference scan. ``test_against_original_code_live`` reruns the
original itself when ``SPMAMBA_ORIGINAL_DIR`` points at a checkout.
"""

import os
from collections import OrderedDict

import pytest
import torch
from asteroid.models.base_models import BaseModel

from asteroid_spmamba import SPMamba, convert_original
from asteroid_spmamba.commands import main as cli_main
from asteroid_spmamba.models.spmamba_original import map_original_key

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "original_spmamba_small.pt")


@pytest.fixture(scope="module")
def reference():
    return torch.load(FIXTURE, weights_only=True)


def lightning_checkpoint(serialized):
    """The layout the original training code's Lightning checkpoints have."""
    state = OrderedDict(("audio_model." + k, v) for k, v in serialized["state_dict"].items())
    state["loss_func.some_buffer"] = torch.zeros(
        1
    )  # other modules of the LightningModule are ignored
    return {"epoch": 3, "global_step": 100, "state_dict": state}


def check_equal_to_original(model, reference):
    with torch.no_grad():
        out = model(reference["mixture"])
    torch.testing.assert_close(out, reference["output"], rtol=1e-5, atol=1e-5)


def test_serialized_original_gives_the_original_outputs(reference):
    model = convert_original(reference["serialized"], hop_length=16, sample_rate=8000)
    assert model.get_model_args()["n_fft"] == 64 and model.get_model_args()["n_layers"] == 2
    check_equal_to_original(model, reference)


def test_lightning_checkpoint_file(reference, tmp_path):
    path = tmp_path / "epoch=3.ckpt"
    torch.save(lightning_checkpoint(reference["serialized"]), path)
    check_equal_to_original(convert_original(str(path), hop_length=16, sample_rate=8000), reference)


def test_model_name_of_released_checkpoints_is_accepted(reference):
    ckpt = dict(reference["serialized"], model_name="TFGridNetMamba")
    check_equal_to_original(convert_original(ckpt, hop_length=16), reference)


def test_wrong_hop_changes_the_output(reference):
    model = convert_original(reference["serialized"])  # default hop n_fft/4 = 16: right
    check_equal_to_original(model, reference)
    with torch.no_grad():
        wrong = convert_original(reference["serialized"], hop_length=32)(reference["mixture"])
    assert not torch.allclose(wrong, reference["output"], atol=1e-3)


def test_truncated_state_dict_names_missing_keys(reference):
    state = OrderedDict(reference["serialized"]["state_dict"])
    del state["blocks.1.inter_mamba.backward_blocks.0.mixer.x_proj.weight"]
    state["blocks.0.extra.weight"] = torch.zeros(1)
    with pytest.raises(
        ValueError,
        match=r"missing keys "
        r"\(1\).*inter_seq\.backward_blocks\.0\.mixer\.x_proj\.weight(.|\n)*unexpected keys "
        r"\(1\).*extra",
    ):
        convert_original({"model_name": "SPMamba", "state_dict": state})


def test_shape_mismatch_is_reported(reference):
    state = OrderedDict(reference["serialized"]["state_dict"])
    state["blocks.0.intra_linear.bias"] = torch.zeros(3)
    with pytest.raises(ValueError, match="shape mismatches.*intra_linear.bias"):
        convert_original({"state_dict": state})


def test_not_an_spmamba_checkpoint():
    with pytest.raises(ValueError, match="expected one of"):
        convert_original({"model_name": "ConvTasNet", "state_dict": {}})
    with pytest.raises(ValueError, match="'state_dict'"):
        convert_original({"weights": {}})


def test_corrupted_file_is_reported(tmp_path):
    path = tmp_path / "best_model.pth"
    path.write_bytes(b"\x80\x02truncated")
    with pytest.raises(ValueError, match="download it again"):
        convert_original(str(path))
    with pytest.raises(FileNotFoundError):
        convert_original(str(tmp_path / "nope.pth"))


def test_key_map():
    assert (
        map_original_key("blocks.3.intra_mamba.forward_blocks.0.mixer.A_log")
        == "masker.blocks.3.intra_seq.forward_blocks.0.mixer.A_log"
    )
    assert map_original_key("deconv.weight") == "masker.deconv.weight"
    assert (
        map_original_key("blocks.0.attn_conv_Q_1.2.gamma")
        == "masker.blocks.0.attn_conv_Q_1.2.gamma"
    )


def test_cli_convert_writes_an_asteroid_model(reference, tmp_path, capsys):
    original = tmp_path / "best_model.pth"
    torch.save(reference["serialized"], original)
    out = tmp_path / "converted" / "spmamba.pth"
    assert (
        cli_main(
            ["convert", str(original), str(out), "--hop-length", "16", "--sample-rate", "8000"]
        )
        == 0
    )
    assert "SPMamba" in capsys.readouterr().out
    loaded = BaseModel.from_pretrained(str(out)).eval()
    assert isinstance(loaded, SPMamba) and loaded.sample_rate == 8000
    check_equal_to_original(loaded, reference)
    assert not any(
        ".tmp" in p.name for p in out.parent.iterdir()
    )  # no work file left (files.work_path)


@pytest.mark.slow
@pytest.mark.skipif(
    not os.environ.get("SPMAMBA_ORIGINAL_DIR"), reason="SPMAMBA_ORIGINAL_DIR not set"
)
def test_against_original_code_live(upstream):
    """The Echo2Mix configuration, perturbed weights, original code vs ours on 0.1 s of audio."""
    from original_code import import_original_spmamba

    Original = import_original_spmamba()
    torch.manual_seed(0)
    original = Original(
        input_dim=64,
        n_srcs=2,
        n_fft=512,
        stride=128,
        n_layers=6,
        lstm_hidden_units=256,
        attn_n_head=4,
        attn_approx_qk_dim=512,
        emb_dim=16,
        emb_ks=8,
        emb_hs=1,
    ).eval()
    with torch.no_grad():
        for p in original.parameters():
            p.add_(0.05 * torch.randn_like(p))
    assert sum(p.numel() for p in original.parameters()) == 6_141_826
    ours = convert_original(
        {"model_name": "SPMamba", "state_dict": original.state_dict(), "model_args": {}}
    )
    x = torch.randn(1, 1600)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), original(x), rtol=1e-4, atol=1e-4)
