"""The model zoo: names, configurations and parameter counts of the SPMamba paper's table."""

import pytest
import torch
from asteroid.models.base_models import BaseModel

from asteroid_spmamba import zoo
from asteroid_spmamba.complexity import measure

PAPER = {  # SPMamba paper, Echo2Mix table: Params (M), MACs (G/s)
    "convtasnet": (5.62, 10.23),
    "dprnn": (2.72, 85.32),
    "sudormrf": (2.72, 4.60),
    "afrcnn": (6.13, 81.20),
    "tdanet": (2.33, 9.13),
    "bsrnn": (25.97, 98.69),
    "tfgridnet": (14.43, 445.56),
    "spmamba": (6.14, 78.69),
}


def _n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def _build_or_skip(name, **overrides):
    try:
        zoo.model_class(name)
    except zoo.ModelUnavailable as err:
        pytest.skip(f"row {name!r} not available yet: {err}")
    return zoo.build(name, **overrides)


def test_names_and_paper_table():
    assert zoo.names() == [
        "convtasnet",
        "dprnn",
        "sudormrf",
        "afrcnn",
        "tdanet",
        "bsrnn",
        "tfgridnet",
        "spmamba",
    ]
    assert list(zoo.PAPER_TABLE) == zoo.names()
    for name, (params, macs) in PAPER.items():
        assert (zoo.PAPER_TABLE[name]["params_m"], zoo.PAPER_TABLE[name]["macs_g"]) == (
            params,
            macs,
        )
    assert zoo.PAPER_TABLE["spmamba"]["macs_g_corrected"] == 238.21
    for name in zoo.names():
        assert zoo.presets(name) == ["echo2mix"]
        assert zoo.config(name)["sample_rate"] == 16000 and zoo.config(name)["n_src"] == 2
        assert zoo.notes(name)


@pytest.mark.parametrize("name", zoo.names())
def test_build_matches_paper_params(name):
    model = _build_or_skip(name)
    assert isinstance(model, BaseModel)
    assert model.sample_rate == 16000
    n_params = _n_params(model)
    assert n_params == zoo.expected_params(name)
    paper_m = zoo.PAPER_TABLE[name]["params_m"]
    if abs(zoo.expected_params(name) / 1e6 - paper_m) <= 0.01:
        assert abs(n_params / 1e6 - paper_m) <= 0.01
    else:  # a row that cannot match: its notes must say so, with the paper's figure
        assert f"{paper_m:.2f} M" in zoo.notes(name)


@pytest.mark.parametrize("name", ["convtasnet", "dprnn", "sudormrf"])
def test_asteroid_rows_separate(name):
    model = _build_or_skip(name).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 1600))
    assert out.shape == (1, 2, 1600)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize(
    "name, overrides, params",
    [
        # the original papers' standard configurations, as quoted in the notes
        ("convtasnet", dict(skip_chan=128), 5_050_545),
        ("dprnn", dict(n_filters=64), 2_608_065),
        ("sudormrf", dict(upsampling_depth=4), 2_584_196),
    ],
)
def test_standard_configurations_in_notes(name, overrides, params):
    with torch.device("meta"):  # shapes only
        model = zoo.build(name, **overrides)
    assert _n_params(model) == params
    assert f"{params:,}" in zoo.notes(name)


@pytest.mark.parametrize(
    "name, macs", [("convtasnet", 11.09), ("dprnn", 85.66), ("sudormrf", 4.59)]
)
def test_asteroid_rows_macs(name, macs):
    """MACs per second (1 s at 16 kHz) of the Asteroid rows, as recorded in their notes."""
    row = measure(zoo.build(name), seconds=1.0, sample_rate=16000)
    assert row.macs_g_per_s == pytest.approx(macs, abs=0.01)


def test_overrides_and_copies():
    model = zoo.build("convtasnet", n_src=3, n_blocks=2, n_repeats=1)
    assert model.masker.n_src == 3 and len(model.masker.TCN) == 2
    cfg = zoo.config("convtasnet")
    cfg["n_src"] = 5
    assert zoo.config("convtasnet")["n_src"] == 2


def test_errors():
    with pytest.raises(
        ValueError, match=r"Unknown zoo model 'convtasnett'.*Did you mean 'convtasnet'"
    ):
        zoo.build("convtasnett")
    with pytest.raises(ValueError, match="Unknown zoo model"):
        zoo.config("wavesplit")
    with pytest.raises(ValueError, match=r"Unknown preset 'wsj0'.*echo2mix"):
        zoo.build("spmamba", preset="wsj0")
    with pytest.raises(TypeError, match=r"ConvTasNet .*takes no argument\(s\) \['hidden'\]"):
        zoo.build("convtasnet", hidden=3)


def test_missing_class_is_reported(monkeypatch):
    from dataclasses import replace

    from asteroid_spmamba.models import registry

    row = registry.spec("bsrnn")
    monkeypatch.setitem(
        registry._SPECS, "bsrnn", replace(row, target="asteroid_spmamba.models.not_written:BSRNN")
    )
    with pytest.raises(zoo.ModelUnavailable, match="asteroid_spmamba.models.not_written.BSRNN"):
        zoo.build("bsrnn")


def test_this_package_s_classes_hold_their_presets():
    """The zoo reads the paper's row and the sizes of this package's models from the classes."""
    from asteroid_spmamba.models import AFRCNN, BSRNN, SPMamba, TDANet, TFGridNet, registry

    for name, cls in (
        ("afrcnn", AFRCNN),
        ("tdanet", TDANet),
        ("bsrnn", BSRNN),
        ("tfgridnet", TFGridNet),
        ("spmamba", SPMamba),
    ):
        assert {"echo2mix", "small", "tiny"} <= set(cls.PRESETS)
        for preset in ("echo2mix", "small", "tiny"):
            assert zoo.config(name, preset) == cls.preset(preset)
        assert registry.spec(name).presets is None  # nothing to keep in step elsewhere
    with pytest.raises(ValueError, match="Unknown AFRCNN preset 'huge'"):
        AFRCNN.from_preset("huge")


@pytest.mark.parametrize("name", zoo.names())
def test_sizes_shrink_each_row(name):
    full, small, tiny = (zoo.config(name, size) for size in ("echo2mix", "small", "tiny"))
    assert full["sample_rate"] == small["sample_rate"] == tiny["sample_rate"] == 16000
    with torch.device("meta"):
        counts = [
            sum(p.numel() for p in zoo.build(name, size).parameters())
            for size in ("echo2mix", "small", "tiny")
        ]
    assert counts[0] > counts[1] > counts[2]
