"""Parameters and multiply-accumulates (MACs) per second of audio, counting what the models compute.

Standard layers (convolutions, transposed convolutions, linear layers, ``matmul``/``bmm``,
``scaled_dot_product_attention``) are counted by :class:`torch.utils.flop_counter.FlopCounterMode`,
which reports FLOPs = 2 x MACs. Three kinds of computation it misses or miscounts are added
explicitly, and whatever the flop counter saw inside them is subtracted so nothing counts twice:

* recurrent layers (``nn.LSTM``/``nn.GRU``/``nn.RNN`` and their cells): the CPU ``aten::lstm``
  kernel is invisible to the flop counter. Per token, layer and direction:
  ``gates x (input + hidden) x hidden`` with 4 gates for an LSTM, 3 for a GRU, 1 for an RNN
  (plus ``hidden x proj`` for a projected LSTM);
* ``nn.MultiheadAttention``: its inference fast path (one fused kernel) is invisible too. Counted as
  the q/k/v and output projections plus the two ``T x S`` matrix products;
* the Mamba selective scan: elementwise recurrences that generic counters skip.
  :func:`asteroid_spmamba.mamba.scan.scan_macs` gives ``9 x batch x length x d_inner x d_state``
  per scan, the estimate of mamba_ssm issue #110 that the SPMamba authors used for their corrected
  figure (238.21 G/s). Read against the recurrence it is an operation count rather than MACs:
  per (step, channel, state) the scan does ``dt*A``, ``exp``, ``decay*h``, ``(dt*u)*B``, an add,
  ``C*h`` and the sum over states, i.e. about 7 elementwise operations or 3-4 multiply-adds. It is
  kept as is so that the figure compares with the authors'; MACs are reported with and without it.

Elementwise operations (activations, normalisations, masking, residual additions) and biases are
not counted, as usual for MAC tables (thop, ptflops, ``FlopCounterMode``).

Counting runs the model once on CPU (or on whatever device the model is on) under
``torch.no_grad``; Mamba modules are switched to the pure-PyTorch scan for the run so the fused CUDA
path, which the hooks cannot see into, is not taken.

Command line::

    asteroid-spmamba complexity [--models convtasnet dprnn ...] [--seconds 1] [--sample-rate 16000]
                                [--out-dir DIR]

References
    [1] K. Li, G. Chen, R. Yang, X. Hu, "SPMamba: State-space model is all you need in speech
    separation", arXiv:2404.02063, 2024 (Table: Params and MACs on Echo2Mix; cal_flops.py of the
    authors' repository for the corrected scan term).
    [2] A. Gu, T. Dao, "Mamba: Linear-time sequence modeling with selective state spaces",
    arXiv:2312.00752, 2023; state-spaces/mamba issue #110 (FLOPs of the selective scan).
"""

import contextlib
import csv
import io
import json
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Optional

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

from .files import write_text_atomic
from .mamba import backends as _scan_backends
from .mamba import modules as _mamba_modules
from .mamba.scan import scan_macs

_RNN_GATES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}
_CELL_GATES = {nn.LSTMCell: 4, nn.GRUCell: 3, nn.RNNCell: 1}


@dataclass
class MacCount:
    """MACs of one forward pass, by origin.

    Attributes:
        standard: counted by ``FlopCounterMode`` (convolutions, linear, matmul, attention products).
        rnn: recurrent layers, explicit.
        attention: ``nn.MultiheadAttention`` modules, explicit.
        scan: Mamba selective scans, :func:`~asteroid_spmamba.mamba.scan.scan_macs`.
    """

    standard: int = 0
    rnn: int = 0
    attention: int = 0
    scan: int = 0

    @property
    def without_scan(self) -> int:
        return self.standard + self.rnn + self.attention

    @property
    def total(self) -> int:
        return self.without_scan + self.scan


def _tokens(x: torch.Tensor) -> int:
    """Number of feature vectors in ``x`` (everything but the last axis)."""
    return x.numel() // x.shape[-1] if x.dim() else 0


def rnn_macs(module: nn.Module, inp) -> int:
    """Multiply-adds of a recurrent layer (``nn.RNNBase`` or an ``nn.*Cell``) on ``inp``."""
    if isinstance(inp, nn.utils.rnn.PackedSequence):
        tokens = int(inp.data.shape[0])
    else:
        tokens = _tokens(inp)
    if isinstance(module, nn.RNNCellBase):
        gates = next(g for cls, g in _CELL_GATES.items() if isinstance(module, cls))
        return tokens * gates * (module.input_size + module.hidden_size) * module.hidden_size
    gates = _RNN_GATES[module.mode]
    hidden = module.hidden_size
    proj = getattr(module, "proj_size", 0) or 0
    out = proj or hidden  # what is fed back and passed to the next layer
    directions = 2 if module.bidirectional else 1
    total = 0
    for layer in range(module.num_layers):
        in_size = module.input_size if layer == 0 else out * directions
        per_token = gates * (in_size + out) * hidden + hidden * proj
        total += per_token * directions
    return tokens * total


def mha_macs(
    module: nn.MultiheadAttention, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor
) -> int:
    """Multiply-adds of ``nn.MultiheadAttention``: projections plus ``Q K^T`` and ``A V``."""
    embed = module.embed_dim
    if query.dim() == 3:
        if module.batch_first:
            batch, tgt_len, src_len = query.shape[0], query.shape[1], key.shape[1]
        else:
            batch, tgt_len, src_len = query.shape[1], query.shape[0], key.shape[0]
    else:  # unbatched (length, embed)
        batch, tgt_len, src_len = 1, query.shape[0], key.shape[0]
    projections = _tokens(query) * embed * embed + _tokens(key) * module.kdim * embed
    projections += (
        _tokens(value) * module.vdim * embed + _tokens(query) * embed * embed
    )  # + out_proj
    products = (
        2 * batch * tgt_len * src_len * embed
    )  # summed over heads: head_dim x n_heads = embed
    return projections + products


class _Counter:
    """Hooks and patches that add the explicit terms and keep the flop counter
    from double counting."""

    def __init__(self, flops: FlopCounterMode):
        self.flops = flops
        self.count = MacCount()
        self.excluded_flops = 0
        self._starts: dict[int, list[int]] = {}

    def _pre(self, module, args, kwargs=None):
        self._starts.setdefault(id(module), []).append(self.flops.get_total_flops())

    def _exclude_since_pre(self, module) -> None:
        start = self._starts[id(module)].pop()
        self.excluded_flops += self.flops.get_total_flops() - start

    def _rnn_post(self, module, args, output):
        self._exclude_since_pre(module)
        self.count.rnn += rnn_macs(module, args[0])

    def _mha_pre(self, module, args, kwargs):
        self._pre(module, args)

    def _mha_post(self, module, args, kwargs, output):
        self._exclude_since_pre(module)
        query = args[0] if args else kwargs["query"]
        key = args[1] if len(args) > 1 else kwargs["key"]
        value = args[2] if len(args) > 2 else kwargs["value"]
        self.count.attention += mha_macs(module, query, key, value)

    def scan(self, real_scan):
        """Wrap the selective scan: count ``scan_macs`` and drop what the
        flop counter saw inside."""

        def counted_scan(u, delta, A, B, C, *args, **kwargs):
            start = self.flops.get_total_flops()
            out = real_scan(u, delta, A, B, C, *args, **kwargs)
            self.excluded_flops += self.flops.get_total_flops() - start
            batch, dim, length = u.shape
            self.count.scan += scan_macs(batch, length, dim, A.shape[-1])
            return out

        return counted_scan

    @contextlib.contextmanager
    def attached(self, model: nn.Module) -> Iterator[None]:
        handles = []
        saved_backends = []
        try:
            for module in model.modules():
                if isinstance(module, (nn.RNNBase, nn.RNNCellBase)):
                    handles.append(module.register_forward_pre_hook(self._pre))
                    handles.append(module.register_forward_hook(self._rnn_post))
                elif isinstance(module, nn.MultiheadAttention):
                    handles.append(
                        module.register_forward_pre_hook(self._mha_pre, with_kwargs=True)
                    )
                    handles.append(module.register_forward_hook(self._mha_post, with_kwargs=True))
                elif isinstance(module, _mamba_modules.Mamba):
                    saved_backends.append((module, module.backend))
                    module.backend = "torch"  # fused block paths bypass the scan function
            with _scan_backends.replaced(
                "torch", scan=self.scan(_scan_backends.get_backend("torch").scan)
            ):
                yield
        finally:
            for handle in handles:
                handle.remove()
            for module, backend in saved_backends:
                module.backend = backend


def count_macs(model: nn.Module, *inputs, **kwargs) -> MacCount:
    """MACs of ``model(*inputs, **kwargs)``, run once under ``torch.no_grad``.

    Returns:
        :class:`MacCount` with the flop counter's share (FLOPs / 2) and the explicit terms.
    """
    from .masknn.gridnet import GridNetBlock

    # GridNet blocks are counted on their plain paths (the same function): the fused attention
    # kernel's products are not seen by the flop counter
    flags = ("fast_unfold", "fast_fold", "batched_heads", "fused_attention")
    blocks = [
        (m, {f: getattr(m, f) for f in flags})
        for m in model.modules()
        if isinstance(m, GridNetBlock)
    ]
    flops = FlopCounterMode(display=False)
    counter = _Counter(flops)
    try:
        for block, _ in blocks:
            for flag in flags:
                setattr(block, flag, False)
        with torch.no_grad(), counter.attached(model), flops:
            model(*inputs, **kwargs)
    finally:
        for block, saved in blocks:
            for flag, value in saved.items():
                setattr(block, flag, value)
    standard_flops = flops.get_total_flops() - counter.excluded_flops
    counter.count.standard = int(standard_flops // 2)
    return counter.count


def count_params(model: nn.Module) -> int:
    """Number of parameters (shared ones once)."""
    return sum(p.numel() for p in model.parameters())


@dataclass
class ComplexityRow:
    """One model's complexity; MAC figures are per second of audio (G = 1e9, M = 1e6)."""

    model: str
    label: str
    params: int
    params_m: float
    macs_g_per_s: float
    macs_no_scan_g_per_s: float
    macs_standard_g_per_s: float
    macs_rnn_g_per_s: float
    macs_attention_g_per_s: float
    macs_scan_g_per_s: float
    seconds: float
    sample_rate: int
    paper_params_m: Optional[float] = None
    paper_macs_g_per_s: Optional[float] = None
    paper_macs_corrected_g_per_s: Optional[float] = None
    params_ratio: Optional[float] = None
    macs_ratio: Optional[float] = None
    macs_corrected_ratio: Optional[float] = None
    runtime_s: Optional[float] = None
    status: str = "ok"
    note: str = ""


COLUMNS = [f.name for f in ComplexityRow.__dataclass_fields__.values()]


def measure(
    model: nn.Module, seconds: float = 1.0, sample_rate: int = 16000, name: Optional[str] = None
) -> ComplexityRow:
    """Params and MACs per second of audio of a single-channel separation model.

    Args:
        model: takes a ``(batch, time)`` waveform.
        seconds: length of the (random) input; MACs are divided by it.
        sample_rate: sampling rate of the input, Hz.
        name: label of the row (default: the class name).
    """
    if seconds <= 0:
        raise ValueError(f"seconds must be positive, got {seconds}")
    n_samples = int(round(seconds * sample_rate))
    if n_samples < 1:
        raise ValueError(
            f"{seconds} s at {sample_rate} Hz is less than one sample; use a longer input."
        )
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    wav = torch.randn(1, n_samples, generator=torch.Generator().manual_seed(0)).to(device)
    was_training = model.training
    model.eval()
    start = time.perf_counter()
    try:
        count = count_macs(model, wav)
    finally:
        model.train(was_training)
    runtime = time.perf_counter() - start
    duration = n_samples / sample_rate
    params = count_params(model)
    per_s = lambda macs: macs / duration / 1e9  # noqa: E731
    return ComplexityRow(
        model=name or type(model).__name__,
        label=name or type(model).__name__,
        params=params,
        params_m=params / 1e6,
        macs_g_per_s=per_s(count.total),
        macs_no_scan_g_per_s=per_s(count.without_scan),
        macs_standard_g_per_s=per_s(count.standard),
        macs_rnn_g_per_s=per_s(count.rnn),
        macs_attention_g_per_s=per_s(count.attention),
        macs_scan_g_per_s=per_s(count.scan),
        seconds=duration,
        sample_rate=int(sample_rate),
        runtime_s=runtime,
    )


def _with_paper(row: ComplexityRow, name: str) -> ComplexityRow:
    from .zoo import PAPER_TABLE

    paper = PAPER_TABLE.get(name)
    if paper is None:
        return row
    row.label = paper["label"]
    row.paper_params_m = paper["params_m"]
    row.paper_macs_g_per_s = paper["macs_g"]
    row.paper_macs_corrected_g_per_s = paper.get("macs_g_corrected")
    if row.status == "ok":
        row.params_ratio = row.params_m / paper["params_m"]
        # The paper's figures leave the scan out (its corrected SPMamba figure adds it back).
        row.macs_ratio = row.macs_no_scan_g_per_s / paper["macs_g"]
        if row.paper_macs_corrected_g_per_s:
            row.macs_corrected_ratio = row.macs_g_per_s / row.paper_macs_corrected_g_per_s
    return row


def zoo_complexity(
    names: Optional[Sequence[str]] = None,
    preset: str = "echo2mix",
    seconds: float = 1.0,
    sample_rate: Optional[int] = None,
    progress: bool = True,
) -> list[ComplexityRow]:
    """Measure the zoo's models (all by default). Rows whose model class is not available yet get
    ``status="unavailable"`` and the reason in ``note``; other errors propagate."""
    from tqdm.auto import tqdm

    from . import zoo

    names = list(names) if names else zoo.names()
    for name in names:
        zoo.presets(name), zoo.notes(name, preset)  # fail early on unknown names/presets
    rows = []
    bar = tqdm(names, desc="complexity", unit="model", disable=not progress)
    for name in bar:
        bar.set_postfix_str(name)
        try:
            model = zoo.build(name, preset)
        except zoo.ModelUnavailable as err:
            rate = int(sample_rate or 16000)  # the paper's presets are at 16 kHz
            row = ComplexityRow(
                model=name,
                label=name,
                params=0,
                params_m=float("nan"),
                macs_g_per_s=float("nan"),
                macs_no_scan_g_per_s=float("nan"),
                macs_standard_g_per_s=float("nan"),
                macs_rnn_g_per_s=float("nan"),
                macs_attention_g_per_s=float("nan"),
                macs_scan_g_per_s=float("nan"),
                seconds=seconds,
                sample_rate=rate,
                status="unavailable",
                note=str(err),
            )
        else:
            rate = int(sample_rate or getattr(model, "sample_rate", None) or 16000)
            row = measure(model, seconds, rate, name=name)
            row.note = zoo.notes(name, preset)
            del model
        rows.append(_with_paper(row, name))
    return rows


def _fmt(value: Optional[float], digits: int = 2) -> str:
    if value is None or value != value:  # None or NaN
        return "-"
    return f"{value:.{digits}f}"


def markdown_table(rows: Iterable[ComplexityRow]) -> str:
    """The rows beside the paper's figures, as a Markdown table."""
    lines = [
        "| Model | Params (M) | Paper (M) | ratio | MACs (G/s) | w/o scan (G/s) | Paper (G/s) | "
        "ratio | Paper corrected (G/s) | ratio |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        if r.status != "ok":
            lines.append(
                f"| {r.label} | {r.status} | {_fmt(r.paper_params_m)} | - | - | - | "
                f"{_fmt(r.paper_macs_g_per_s)} | - | {_fmt(r.paper_macs_corrected_g_per_s)} | - |"
            )
            continue
        lines.append(
            f"| {r.label} | {_fmt(r.params_m)} | {_fmt(r.paper_params_m)} | "
            f"{_fmt(r.params_ratio, 3)} | {_fmt(r.macs_g_per_s)} | {_fmt(r.macs_no_scan_g_per_s)} "
            f"| {_fmt(r.paper_macs_g_per_s)} | {_fmt(r.macs_ratio, 3)} | "
            f"{_fmt(r.paper_macs_corrected_g_per_s)} | {_fmt(r.macs_corrected_ratio, 3)} |"
        )
    return "\n".join(lines)


def write_results(
    rows: Sequence[ComplexityRow], output_dir: str, stem: str = "complexity"
) -> dict[str, str]:
    """Write ``complexity.csv`` and ``complexity.json`` to ``output_dir`` (atomically).

    Returns:
        ``{"csv": path, "json": path}``.
    """
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS)
    writer.writeheader()
    for r in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in asdict(r).items()})
    paths = {
        "csv": os.path.join(output_dir, stem + ".csv"),
        "json": os.path.join(output_dir, stem + ".json"),
    }
    write_text_atomic(paths["csv"], buf.getvalue())
    records = [
        {k: (None if isinstance(v, float) and v != v else v) for k, v in asdict(r).items()}
        for r in rows
    ]
    write_text_atomic(paths["json"], json.dumps(records, indent=2) + "\n")
    return paths
