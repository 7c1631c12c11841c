"""MAC counter against hand-computed counts, and the ``complexity`` command."""

import csv
import json
import math
import re

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from asteroid_spmamba import zoo
from asteroid_spmamba.commands import main as cli_main
from asteroid_spmamba.complexity import (
    COLUMNS,
    ComplexityRow,
    count_macs,
    markdown_table,
    measure,
    write_results,
)
from asteroid_spmamba.mamba import BiMamba, Mamba


class _Tiny(nn.Module):
    """Conv1d -> Linear -> BiLSTM -> Linear -> Mamba, small enough to count by hand."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(2, 3, kernel_size=3)
        self.lin1 = nn.Linear(3, 4)
        self.lstm = nn.LSTM(4, 5, batch_first=True, bidirectional=True)
        self.lin2 = nn.Linear(10, 4)
        self.mamba = Mamba(4, d_state=3, d_conv=2, expand=2)

    def forward(self, x):
        y = self.lin1(self.conv(x).transpose(1, 2))  # (1, 8, 4)
        y = self.lin2(self.lstm(y)[0])
        return self.mamba(y)


@pytest.mark.parametrize("backend", ["torch", "sequential"])
def test_tiny_model_matches_hand_count(backend):
    torch.manual_seed(0)
    model = _Tiny().eval()
    model.mamba.backend = backend
    x = torch.randn(1, 2, 10)
    count = count_macs(model, x)

    steps = 10 - 3 + 1  # valid convolution: 8 frames, the sequence length everywhere after it
    conv = 3 * 2 * 3 * steps
    lin1 = steps * 3 * 4
    lstm = 2 * steps * 4 * (4 + 5) * 5  # 2 directions x 4 gates x (input + hidden) x hidden
    lin2 = steps * 10 * 4
    d_inner, dt_rank, d_state = 8, 1, 3  # expand 2; dt_rank = ceil(4 / 16)
    in_proj = steps * 4 * 2 * d_inner
    dw_conv = d_inner * 2 * (steps + 1)  # padding d_conv - 1 = 1: one extra output, trimmed after
    x_proj = steps * d_inner * (dt_rank + 2 * d_state)
    dt_proj = steps * dt_rank * d_inner
    out_proj = steps * d_inner * 4
    scan = 9 * 1 * steps * d_inner * d_state

    assert count.standard == conv + lin1 + lin2 + in_proj + dw_conv + x_proj + dt_proj + out_proj
    assert count.rnn == lstm
    assert count.scan == scan
    assert count.attention == 0
    assert count.total == count.standard + lstm + scan
    assert count.without_scan == count.total - scan
    # hooks removed, backend restored
    assert model.mamba.backend == backend
    assert not model.lstm._forward_hooks and not model.lstm._forward_pre_hooks


def test_chunked_scan_products_are_not_double_counted():
    """A long sequence takes the chunked scan, whose matmuls the flop
    counter would otherwise see."""
    torch.manual_seed(0)
    mamba = Mamba(4, d_state=2, d_conv=2, expand=1, backend="torch").eval()
    length = 600  # > SINGLE_CHUNK_MAX_LEN: several chunks and the carry correction
    count = count_macs(mamba, torch.randn(2, length, 4))
    tokens = 2 * length
    d_inner, dt_rank = 4, 1
    standard = tokens * 4 * 2 * d_inner + d_inner * 2 * 2 * (length + 1)
    standard += tokens * d_inner * (dt_rank + 4) + tokens * dt_rank * d_inner + tokens * d_inner * 4
    assert count.standard == standard
    assert count.scan == 9 * 2 * length * d_inner * 2


def test_bimamba_counts_both_directions():
    block = BiMamba(4, n_layers=2, bidirectional=True, d_state=2, d_conv=2, expand=2).eval()
    count = count_macs(block, torch.randn(3, 7, 4))
    assert count.scan == 2 * 2 * 9 * 3 * 7 * 8 * 2  # 2 directions x 2 layers


def test_gru_and_stacked_lstm():
    gru = nn.GRU(4, 6, batch_first=True).eval()  # partly visible to FlopCounterMode on CPU
    assert count_macs(gru, torch.randn(2, 5, 4)).total == 10 * 3 * (4 + 6) * 6
    lstm = nn.LSTM(3, 4, num_layers=2, bidirectional=True).eval()  # (time, batch, feat)
    per_token = 2 * 4 * (3 + 4) * 4 + 2 * 4 * (8 + 4) * 4
    assert count_macs(lstm, torch.randn(6, 2, 3)).total == 12 * per_token


class _SDPA(nn.Module):
    def forward(self, q, k, v):
        return F.scaled_dot_product_attention(q, k, v)


def test_scaled_dot_product_attention_counts_two_products():
    batch, heads, t_len, s_len, e_dim, v_dim = 2, 3, 10, 12, 8, 5
    q = torch.randn(batch, heads, t_len, e_dim)
    k = torch.randn(batch, heads, s_len, e_dim)
    v = torch.randn(batch, heads, s_len, v_dim)
    count = count_macs(_SDPA(), q, k, v)
    assert count.standard == batch * heads * t_len * s_len * (e_dim + v_dim)  # Q K^T and A V


class _IdentitySequence(nn.Identity):
    def __init__(self, dim: int):
        super().__init__()
        self.output_dim = dim


def test_gridnet_attention_is_counted():
    """The GridNet block's attention (SDPA on (heads*B, T, C*F)) adds 2 x T x T x C x F per head."""
    from asteroid_spmamba.masknn.gridnet import GridNetBlock

    torch.manual_seed(0)
    emb, freqs, frames, heads, qk = 4, 6, 5, 2, 12
    block = GridNetBlock(emb, 1, 1, freqs, _IdentitySequence, n_head=heads, approx_qk_dim=qk).eval()
    count = count_macs(block, torch.randn(1, emb, frames, freqs))
    qk_ch, v_ch = math.ceil(qk / freqs), emb // heads
    convs = 2 * (emb * emb * 1 * frames * freqs)  # the two 1-kernel transposed convolutions
    projections = heads * (2 * qk_ch + v_ch) * emb * frames * freqs + emb * emb * frames * freqs
    products = heads * frames * frames * (qk_ch * freqs + v_ch * freqs)
    assert count.standard == convs + projections + products


def test_multihead_attention_fast_path_is_counted():
    mha = nn.MultiheadAttention(16, 4, batch_first=True).eval()  # fused kernel at inference
    x = torch.randn(2, 10, 16)
    count = count_macs(mha, x, x, x)
    tokens = 2 * 10
    assert count.attention == 4 * tokens * 16 * 16 + 2 * 2 * 10 * 10 * 16
    assert count.standard == 0


def test_measure_is_per_second():
    conv = nn.Conv1d(1, 4, kernel_size=8, stride=4, bias=False)

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = conv

        def forward(self, wav):
            return self.conv(wav[:, None])

    row = measure(Model(), seconds=0.5, sample_rate=800)
    frames = (400 - 8) // 4 + 1
    assert row.params == 32
    assert row.macs_g_per_s == pytest.approx(frames * 32 / 0.5 / 1e9)
    with pytest.raises(ValueError, match="seconds"):
        measure(Model(), seconds=0)


def test_write_results_and_table(tmp_path):
    row = ComplexityRow(
        model="x",
        label="X",
        params=10,
        params_m=1e-5,
        macs_g_per_s=1.0,
        macs_no_scan_g_per_s=0.5,
        macs_standard_g_per_s=0.5,
        macs_rnn_g_per_s=0.0,
        macs_attention_g_per_s=0.0,
        macs_scan_g_per_s=0.5,
        seconds=1.0,
        sample_rate=16000,
        paper_macs_g_per_s=float("nan"),
    )
    paths = write_results([row], str(tmp_path / "out"))
    with open(paths["csv"]) as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == COLUMNS and rows[0]["macs_scan_g_per_s"] == "0.5"
    data = json.load(open(paths["json"]))
    assert data[0]["paper_macs_g_per_s"] is None  # NaN is not valid JSON
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "complexity.csv",
        "complexity.json",
    ]
    assert "| X | 0.00 |" in markdown_table([row])


def test_cli_complexity_writes_csv_and_json(tmp_path, capsys):
    out = tmp_path / "cx"
    rc = cli_main(
        ["complexity", "--models", "convtasnet", "--seconds", "0.1", "--output-dir", str(out)]
    )
    assert rc == 0
    printed = capsys.readouterr().out
    assert "| Conv-TasNet | 5.62 | 5.62 |" in printed
    with open(out / "complexity.csv") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == COLUMNS
    (row,) = rows
    assert row["model"] == "convtasnet" and row["status"] == "ok"
    assert int(row["params"]) == zoo.expected_params("convtasnet")
    assert float(row["paper_macs_g_per_s"]) == 10.23
    # 0.1 s: the same per-second figure as 1 s within edge effects (11.09 G/s at 1 s)
    assert float(row["macs_g_per_s"]) == pytest.approx(11.09, rel=0.01)
    assert float(row["macs_ratio"]) == pytest.approx(float(row["macs_g_per_s"]) / 10.23)
    data = json.load(open(out / "complexity.json"))
    assert data[0]["params"] == int(row["params"]) and set(data[0]) == set(COLUMNS)


def test_cli_unknown_model_is_a_clear_error(capsys):
    assert (
        cli_main(["complexity", "--models", "convtasnett", "--seconds", "0.1"]) == 1
    )  # a message, exit 1
    assert re.search("Unknown zoo model 'convtasnett'.*convtasnet", capsys.readouterr().err)


def test_unavailable_row_is_listed_not_fatal(monkeypatch):
    from dataclasses import replace

    from asteroid_spmamba.complexity import zoo_complexity
    from asteroid_spmamba.models import registry

    row = registry.spec("bsrnn")
    monkeypatch.setitem(
        registry._SPECS, "bsrnn", replace(row, target="asteroid_spmamba.models.not_written:BSRNN")
    )
    (result,) = zoo_complexity(["bsrnn"], progress=False)
    assert result.status == "unavailable" and "not_written" in result.note
    assert result.paper_params_m == 25.97 and result.params_ratio is None
    assert "| BSRNN | unavailable | 25.97 |" in markdown_table([result])
