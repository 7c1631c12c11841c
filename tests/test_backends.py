"""The scan-backend table: a registered backend is used by selective_scan and Mamba, and a Mamba
resolves its backend once per requested name and device, not per call."""

import copy
import pickle

import pytest
import torch

from asteroid_spmamba.mamba import Mamba, backends, modules, set_scan_backend
from asteroid_spmamba.mamba.scan import (
    BACKEND_ENV_VAR,
    selective_scan,
    selective_scan_chunked,
    selective_scan_sequential,
)


def _counting(calls):
    def scan(*args, **kwargs):
        calls.append(1)
        return selective_scan_sequential(*args, **kwargs)

    return scan


def test_every_backend_is_in_the_table():
    assert {"auto", "torch", "cpu", "cuda", "triton", "sequential"} <= set(backends.backend_names())
    for name in backends.backend_names()[1:]:
        row = backends.get_backend(name)
        assert row.name == name and callable(row.scan)
        assert pickle.loads(pickle.dumps(row)) is row and copy.deepcopy(row) is row


def test_a_registered_backend_runs_in_selective_scan_and_in_mamba(monkeypatch):
    calls = []
    row = backends.ScanBackend("counting", _counting(calls))
    monkeypatch.setitem(backends._table(), "counting", row)
    assert "counting" in backends.backend_names()
    g = torch.Generator().manual_seed(0)
    u, delta = torch.randn(2, 3, 7, generator=g), torch.randn(2, 3, 7, generator=g)
    A, B, C = -torch.rand(3, 4, generator=g), torch.randn(2, 4, 7), torch.randn(2, 4, 7)
    out = selective_scan(u, delta, A, B, C, delta_softplus=True, backend="counting")
    torch.testing.assert_close(out, selective_scan_chunked(u, delta, A, B, C, delta_softplus=True))
    assert len(calls) == 1
    torch.manual_seed(0)
    m = Mamba(8, d_state=4, expand=2, backend="torch")
    x = torch.randn(2, 10, 8)
    ref = m(x)
    m.backend = "counting"
    torch.testing.assert_close(m(x), ref)
    assert len(calls) == 2


def test_mamba_resolves_its_backend_once_per_name_and_device(monkeypatch):
    resolved = []
    real = modules.resolve

    def counting_resolve(name, device):
        resolved.append((name, device.type))
        return real(name, device)

    monkeypatch.setattr(modules, "resolve", counting_resolve)
    monkeypatch.delenv(BACKEND_ENV_VAR, raising=False)
    m = Mamba(8, d_state=4, expand=2)
    x = torch.randn(1, 6, 8)
    for _ in range(3):
        m(x)
    m.step(x)
    assert resolved == [("auto", "cpu")]
    set_scan_backend(m, "sequential")  # setting the backend drops the binding
    m(x)
    m(x)
    assert resolved[1:] == [("sequential", "cpu")]
    assert m.kernels(x.device) is backends.get_backend("sequential")
    m.backend = None  # None follows the environment variable
    monkeypatch.setenv(BACKEND_ENV_VAR, "torch")
    m(x)
    m(x)
    assert resolved[2:] == [("torch", "cpu")]
    # a copy keeps the binding, and pickles
    clone = pickle.loads(pickle.dumps(copy.deepcopy(m)))
    assert clone.backend is None and clone.kernels(x.device) is backends.get_backend("torch")
    assert {k: v.shape for k, v in clone.state_dict().items()} == {
        k: v.shape for k, v in m.state_dict().items()
    }


def test_unavailable_backend_is_refused_at_call_time_not_at_construction():
    m = Mamba(8, d_state=4, expand=2, backend="cuda")  # built on CPU, for a later .cuda()
    with pytest.raises((ImportError, ValueError), match="'cuda' scan backend"):
        m(torch.randn(1, 4, 8))
    m.backend = "no-such-backend"
    with pytest.raises(ValueError, match="Unknown scan backend"):
        m(torch.randn(1, 4, 8))
