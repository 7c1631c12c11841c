"""Speed and memory benchmark of the zoo's models (beside the original SPMamba code, same
weights, from a checkout).

::

    asteroid-spmamba benchmark                                   # spmamba + tfgridnet on the GPU
    # + the authors' code, same weights:
    python benchmarks/benchmark.py --original-dir /path/to/SPMamba
    asteroid-spmamba benchmark --models spmamba --backends cuda,triton --variants plain,fast \\
        --dtypes fp32,bf16 --seconds 4,16,60 --train-batches 1,4 --out-dir bench/

For every configuration (model x scan backend x fast-path variant x dtype) it measures, on the
current device:

* inference of one mixture of each ``--seconds`` length at batch 1: median time of ``--repeats``
  runs after ``--warmup`` runs (synchronised), real-time factor (time / audio length) and peak
  allocated memory (CUDA);
* a training step (forward, negative SI-SNR against random targets, backward, Adam step) on
  ``--train-batches`` batches of ``--train-seconds`` segments.

Running out of memory is reported as ``OOM`` in the table, not raised. ``dtype`` ``fp32`` is float32
with PyTorch's defaults (matmuls without TF32; cuDNN convolutions may use TF32, as by default),
``tf32`` float32 with TF32 matmuls as well, ``bf16`` autocast to bfloat16 (the normalisations, the
scan state, STFT and iSTFT stay in float32). Variants of this package's GridNet models
(:func:`asteroid_spmamba.masknn.gridnet.set_fast_paths`): ``default`` (the model exactly as built or
loaded, e.g. by ``from_pretrained(...).cuda()``: what a user gets with no flag), ``plain`` (the fast
paths off), ``fast`` (unfold without im2col, fold by a matrix product, batched attention heads,
fused attention), ``compiled`` (``fast`` plus ``torch.compile`` of the GridNet blocks),
``checkpointed`` (``fast`` plus activation checkpointing of the GridNet blocks; training rows only)
and ``graphed`` (``fast`` with the training forward and backward replayed as CUDA graphs,
:mod:`asteroid_spmamba.cuda_graphs`; training rows only, CUDA only).

The original SPMamba (``run_benchmark(original=...)``: ``benchmarks/benchmark.py --original-dir`` of
a checkout of this repository, whose ``benchmarks/original_code.py`` adapts mamba_ssm 2.x to the
code of JusperLee/SPMamba) is built with this package's SPMamba configuration, and this package's
model is loaded with its weights through :func:`asteroid_spmamba.convert_original`; the maximum
output difference of the two is reported.

Output: a Markdown table (times against the original measured in the same run), and
``benchmark.json``/``benchmark.csv``/``benchmark.md`` (and ``benchmark.png``, time against length,
when matplotlib is installed) in ``--out-dir``, with the device, torch/CUDA/Triton versions and the
git revision. Results are written after every measurement, so an interrupted run keeps what it
measured; ``--time-budget`` skips what would start after that many seconds.

References
    [1] K. Li, G. Chen, R. Yang, X. Hu, "SPMamba: State-space model is all you need in speech
    separation", arXiv:2404.02063, 2024 (code: github.com/JusperLee/SPMamba).
"""

import copy
import csv
import io
import json
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Callable, Optional

import torch
import torch.nn as nn

from .files import write_atomic, write_text_atomic
from .measure import (
    bf16_agreement,
    environment,
    free,
    guarded,
    measure_inference,
    measure_train_step,
    precision,
)
from .models import registry

DTYPES = ("fp32", "tf32", "bf16")  # precisions of asteroid_spmamba.measure.precision
VARIANTS = ("default", "plain", "fast", "compiled", "checkpointed", "graphed")
TRAIN_ONLY_VARIANTS = ("checkpointed", "graphed")  # inference is that of "fast"
ORIGINAL = "original"

# --tiny: the models' tiny presets at 8 kHz; SPMamba keeps the Mamba sizes that the original code
# hard-codes (d_state 16, expand 4), so that the original can be built from it.
TINY_OVERRIDES = {"spmamba": dict(d_state=16, expand=4)}

CSV_FIELDS = [
    "model",
    "backend",
    "variant",
    "dtype",
    "task",
    "seconds",
    "batch",
    "status",
    "time_ms",
    "rtf",
    "peak_gib",
    "runs",
    "vs_original",
]


@dataclass
class Row:
    model: str
    backend: str
    variant: str
    dtype: str
    task: str  # "inference" or "train"
    seconds: float
    batch: int
    status: str = "ok"  # "ok", "OOM", "skipped: ...", "unsupported: ...", "error: ..."
    time_ms: Optional[float] = None
    rtf: Optional[float] = None
    peak_gib: Optional[float] = None
    runs: int = 0
    vs_original: Optional[float] = None
    times_ms: list[float] = field(default_factory=list)


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------


@dataclass
class Subject:
    """One model configuration to measure."""

    model: str  # zoo name or "original"
    backend: (
        str  # scan backend ("-" when the model has no scan choice; "mamba_ssm" for the original)
    )
    variant: str
    build: Callable[[], nn.Module]
    sample_rate: float
    n_src: int


def _resolve_backend_label(backend: str, device: torch.device) -> str:
    from .mamba.scan import resolve_backend

    resolved = resolve_backend(backend, device)
    return resolved if backend == resolved else f"{backend}->{resolved}"


def _apply_variant(model: nn.Module, name: str, variant: str) -> nn.Module:
    if variant == "default" or not registry.spec(name).gridnet:
        return model  # as built or loaded: what a user gets without a flag
    from .masknn.gridnet import set_fast_paths

    return set_fast_paths(
        model,
        variant != "plain",
        compile=variant == "compiled",
        checkpoint=variant == "checkpointed",
    )


def make_subjects(
    models: Sequence[str],
    backends: Sequence[str],
    variants: Sequence[str],
    device: torch.device,
    preset: str = "echo2mix",
    tiny: bool = False,
    overrides: Optional[dict] = None,
    original: Optional[Callable[[dict], nn.Module]] = None,
    notes: Optional[list[str]] = None,
) -> list[Subject]:
    """The configurations to measure, in table order; unavailable ones are reported in ``notes``.
    ``original(config)`` builds the original SPMamba with the architecture of our SPMamba
    ``config``."""
    from . import zoo
    from .mamba import set_scan_backend

    notes = notes if notes is not None else []
    overrides = overrides or {}
    subjects: list[Subject] = []
    base_models: dict[str, nn.Module] = {}
    for name in models:
        kwargs = {}
        if tiny:
            kwargs = {
                **zoo.config(name, "tiny"),
                "sample_rate": 8000,
                **TINY_OVERRIDES.get(name, {}),
            }
            rescale = registry.spec(name).for_sample_rate  # e.g. BSRNN's band widths, in Hz
            kwargs.update(rescale(kwargs, 8000) if rescale else {})
        kwargs.update(overrides.get(name, {}))
        torch.manual_seed(0)
        base_models[name] = zoo.build(name, preset, **kwargs)

    original_model = None
    if original is not None:
        if "spmamba" not in base_models:
            notes.append(
                "original: skipped (it is compared with 'spmamba', which is not in --models)"
            )
        else:
            from .models.spmamba_original import convert_original

            try:
                config = base_models["spmamba"].get_model_args()
                torch.manual_seed(0)
                original_model = original(config)
                # this package's SPMamba with the original's weights
                base_models["spmamba"] = convert_original(
                    {"state_dict": original_model.state_dict()},
                    hop_length=config["hop_length"],
                    sample_rate=config["sample_rate"],
                    emb_hs=config.get("emb_hs", 1),
                    eps=config.get("eps", 1e-5),
                    window=config.get("window", "hann"),
                )
            except (ImportError, FileNotFoundError, ValueError, AttributeError) as err:
                notes.append(f"original: unavailable ({type(err).__name__}: {err})")
                original_model = None

    for name, model in base_models.items():
        rate, n_src = float(model.sample_rate), int(getattr(model, "n_src", 2))
        spec = registry.spec(name)
        for variant in variants if spec.gridnet else ["default"]:
            if spec.scan:
                for backend in backends:
                    try:
                        label = _resolve_backend_label(backend, device)
                    except (ImportError, ValueError) as err:
                        notes.append(f"{name} backend {backend}: unavailable ({err})")
                        continue

                    def build(model=model, backend=backend, variant=variant, name=name):
                        return _apply_variant(
                            set_scan_backend(copy.deepcopy(model), backend), name, variant
                        ).to(device)

                    subjects.append(Subject(name, label, variant, build, rate, n_src))
            else:
                subjects.append(
                    Subject(
                        name,
                        "-",
                        variant,
                        lambda model=model, variant=variant, name=name: _apply_variant(
                            copy.deepcopy(model), name, variant
                        ).to(device),
                        rate,
                        n_src,
                    )
                )
    if original_model is not None:
        spm = base_models["spmamba"]
        from .mamba.cuda_scan import cuda_kernels_available

        label = (
            "mamba_ssm" if device.type == "cuda" and cuda_kernels_available() else "mamba_ssm-ref"
        )
        subjects.append(
            Subject(
                ORIGINAL,
                label,
                "original",
                lambda: copy.deepcopy(original_model).to(device),
                float(spm.sample_rate),
                int(spm.n_src),
            )
        )
    return subjects


def compare_with_original(
    subjects: list[Subject], device: torch.device, seconds: float = 1.0
) -> Optional[float]:
    """Max |ours - original| / max |original| on one mixture (float32), ``None``
    without the original."""
    original = next((s for s in subjects if s.model == ORIGINAL), None)
    ours = next((s for s in subjects if s.model == "spmamba" and s.variant == "plain"), None)
    ours = ours or next((s for s in subjects if s.model == "spmamba"), None)
    if original is None or ours is None:
        return None
    generator = torch.Generator(device="cpu").manual_seed(1)
    wav = torch.randn(1, max(int(seconds * original.sample_rate), 1024), generator=generator).to(
        device
    )
    a, b = original.build().eval(), ours.build().eval()
    with torch.inference_mode(), precision("fp32", device):
        ref, out = a(wav).float(), b(wav).float()
    del a, b
    free(device)
    return ((out - ref).abs().max() / ref.abs().max().clamp_min(1e-12)).item()


# --------------------------------------------------------------------------------------------
# Reports
# --------------------------------------------------------------------------------------------


def add_ratios(rows: list[Row]) -> None:
    """``vs_original`` = time / the original's time for the same task, length, batch and dtype."""
    reference = {
        (r.task, r.seconds, r.batch, r.dtype): r.time_ms
        for r in rows
        if r.model == ORIGINAL and r.status == "ok"
    }
    for row in rows:
        ref = reference.get((row.task, row.seconds, row.batch, row.dtype))
        row.vs_original = row.time_ms / ref if (ref and row.status == "ok") else None


def _fmt(value, spec: str) -> str:
    return "" if value is None else format(value, spec)


def markdown_table(rows: list[Row]) -> str:
    lines = [
        "| model | scan | paths | dtype | task | audio (s) | batch | time (ms) | RTF | "
        "peak (GiB) | vs original |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        time_cell = _fmt(r.time_ms, ".1f") if r.status == "ok" else r.status
        lines.append(
            f"| {r.model} | {r.backend} | {r.variant} | {r.dtype} | {r.task} | {r.seconds:g} | "
            f"{r.batch} | {time_cell} | {_fmt(r.rtf, '.4f')} | {_fmt(r.peak_gib, '.2f')} | "
            f"{_fmt(r.vs_original, '.2f')} |"
        )
    return "\n".join(lines)


def write_results(out_dir: str, rows: list[Row], meta: dict, notes: list[str]) -> dict[str, str]:
    """benchmark.json / .csv / .md (and .png with matplotlib) in ``out_dir``; returns the paths."""
    os.makedirs(out_dir, exist_ok=True)
    add_ratios(rows)
    paths = {k: os.path.join(out_dir, f"benchmark.{k}") for k in ("json", "csv", "md")}
    write_text_atomic(
        paths["json"],
        json.dumps({"meta": meta, "notes": notes, "rows": [asdict(r) for r in rows]}, indent=2),
    )
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS + list(meta), extrasaction="ignore")
    writer.writeheader()
    for r in rows:
        writer.writerow({**asdict(r), **meta})
    write_text_atomic(paths["csv"], buf.getvalue())
    header = (
        f"Device: {meta['device_name']} ({meta['device']}); torch {meta['torch']}, CUDA "
        f"{meta['cuda']}, triton {meta.get('triton')}, mamba_ssm {meta.get('mamba_ssm')}; git "
        f"{meta['git_revision']}\n\n"
    )
    extra = "".join(f"\n- {n}" for n in notes)
    write_text_atomic(
        paths["md"], header + markdown_table(rows) + ("\n\nNotes:" + extra if notes else "") + "\n"
    )
    png = plot(rows, os.path.join(out_dir, "benchmark.png"))
    if png:
        paths["png"] = png
    return paths


def plot(rows: list[Row], path: str) -> Optional[str]:
    """Inference time against audio length, one line per configuration (needs matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    series: dict[str, list[Row]] = {}
    for r in rows:
        if r.task == "inference" and r.status == "ok":
            series.setdefault(f"{r.model} {r.backend} {r.variant} {r.dtype}", []).append(r)
    if not series:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, points in series.items():
        points = sorted(points, key=lambda r: r.seconds)
        ax.plot([p.seconds for p in points], [p.time_ms for p in points], marker="o", label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("mixture length (s)")
    ax.set_ylabel("inference time (ms)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    write_atomic(path, lambda p: fig.savefig(str(p), dpi=120, format="png"))
    plt.close(fig)
    return path


# --------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------


def run_benchmark(
    models: Sequence[str] = ("spmamba", "tfgridnet"),
    seconds: Sequence[float] = (4.0, 16.0, 60.0),
    train_seconds: float = 3.0,
    train_batches: Sequence[int] = (1, 4),
    dtypes: Sequence[str] = ("fp32", "bf16"),
    backends: Sequence[str] = ("auto",),
    variants: Sequence[str] = ("default",),
    repeats: int = 10,
    warmup: int = 2,
    train_repeats: Optional[int] = None,
    device: Optional[str] = None,
    preset: str = "echo2mix",
    tiny: bool = False,
    overrides: Optional[dict] = None,
    original: Optional[Callable[[dict], nn.Module]] = None,
    out_dir: Optional[str] = None,
    time_budget: Optional[float] = None,
    cudnn_benchmark: bool = False,
    log: Callable[[str], None] = print,
) -> dict:
    """Measure every configuration; see the module docstring. Returns
    ``{"meta", "notes", "rows", "files"}``."""
    for dtype in dtypes:
        if dtype not in DTYPES:
            raise ValueError(f"Unknown dtype {dtype!r}; choose from {DTYPES}.")
    for variant in variants:
        if variant not in VARIANTS:
            raise ValueError(f"Unknown variant {variant!r}; choose from {VARIANTS}.")
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats must be >= 1 and warmup >= 0, got {repeats} and {warmup}.")
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda but no CUDA device is visible; use --device cpu.")
    torch.backends.cudnn.benchmark = bool(cudnn_benchmark)
    notes: list[str] = []
    meta = environment(dev)
    meta.update(
        repeats=repeats,
        warmup=warmup,
        cudnn_benchmark=bool(cudnn_benchmark),
        preset=preset,
        tiny=tiny,
        cudnn_allow_tf32=torch.backends.cudnn.allow_tf32,
    )
    subjects = make_subjects(
        models, backends, variants, dev, preset, tiny, overrides, original, notes
    )
    diff = compare_with_original(subjects, dev)
    if diff is not None:
        notes.append(
            "ours (with the original's weights) vs original, fp32, max |difference| / "
            f"max |original|: {diff:.2e}"
        )
    rows: list[Row] = []
    files: dict[str, str] = {}
    started = time.perf_counter()
    train_repeats = train_repeats or repeats

    def save():
        if out_dir:
            files.update(write_results(out_dir, rows, meta, notes))

    tasks = [("inference", s, 1) for s in seconds] + [
        ("train", train_seconds, b) for b in train_batches
    ]
    for subject in subjects:
        model = None
        try:
            model = subject.build()
        except Exception as err:  # noqa: BLE001
            notes.append(
                f"{subject.model} {subject.backend} {subject.variant}: could not be built ({err})"
            )
            continue
        if (
            "bf16" in dtypes and subject.variant not in TRAIN_ONLY_VARIANTS
        ):  # output agreement of bf16 autocast with float32, shortest length
            samples = int(min(seconds or [train_seconds]) * subject.sample_rate)
            agreement = guarded(lambda: {"db": bf16_agreement(model, samples, dev)}, dev)
            if agreement["status"] == "ok":
                notes.append(
                    f"{subject.model} {subject.backend} {subject.variant}: SI-SNR of the bf16 "
                    f"output against the fp32 output: {agreement['db']:.1f} dB"
                )
        for dtype in dtypes:
            for task, secs, batch in tasks:
                row = Row(
                    subject.model,
                    subject.backend,
                    subject.variant,
                    dtype,
                    task,
                    float(secs),
                    int(batch),
                )
                rows.append(row)
                if time_budget is not None and time.perf_counter() - started > time_budget:
                    row.status = "skipped: time budget"
                    continue
                if task == "inference" and subject.variant in TRAIN_ONLY_VARIANTS:
                    row.status = "skipped: training only"
                    continue
                if subject.variant == "graphed" and dev.type != "cuda":
                    row.status = "skipped: CUDA only"
                    continue
                samples = max(1, int(round(secs * subject.sample_rate)))
                if task == "inference":
                    result = guarded(
                        lambda: measure_inference(model, samples, dtype, dev, repeats, warmup), dev
                    )
                else:
                    result = guarded(
                        lambda: measure_train_step(
                            model,
                            batch,
                            samples,
                            subject.n_src,
                            dtype,
                            dev,
                            train_repeats,
                            warmup,
                            graphed=subject.variant == "graphed",
                        ),
                        dev,
                    )
                row.status = result["status"]
                if row.status == "ok":
                    row.time_ms, row.times_ms, row.runs = (
                        result["time_ms"],
                        result["times_ms"],
                        result["runs"],
                    )
                    row.peak_gib = result["peak_gib"]
                    row.rtf = row.time_ms / 1000 / (secs * batch)
                log(
                    f"{row.model:10s} {row.backend:16s} {row.variant:8s} {dtype:5s} "
                    f"{task:9s} {secs:6g} s x{batch}: "
                    + (
                        f"{row.time_ms:9.1f} ms  RTF {row.rtf:.4f}"
                        if row.status == "ok"
                        else row.status
                    )
                    + (f"  peak {row.peak_gib:.2f} GiB" if row.peak_gib is not None else "")
                )
                save()
        model = None  # free this configuration's model before building the next
        free(dev)
    try:
        from .mamba import triton_scan

        tuned = triton_scan.tuned_configs()
        if any(tuned.values()):
            meta["triton_autotune"] = tuned
    except ImportError:
        pass
    meta["sdpa_fused_fp32"] = check_fused_attention(dev)
    meta["elapsed_s"] = time.perf_counter() - started
    add_ratios(rows)
    save()
    return {"meta": meta, "notes": notes, "rows": rows, "files": files}


def check_fused_attention(device: torch.device) -> Optional[str]:
    """On CUDA: whether a GridNet block's float32 attention (fast path) runs with the fused SDPA
    kernels only (no T x T matrix). ``None`` elsewhere."""
    if device.type != "cuda":
        return None
    from torch.nn.attention import SDPBackend, sdpa_kernel

    from .models import SPMamba

    block = SPMamba(n_layers=1).masker.blocks[0].to(device)
    block.fused_attention = True
    block.batched_heads = True
    x = torch.randn(1, block.emb_dim, 200, 257, device=device)
    try:
        with (
            torch.inference_mode(),
            sdpa_kernel(
                [
                    SDPBackend.EFFICIENT_ATTENTION,
                    SDPBackend.CUDNN_ATTENTION,
                    SDPBackend.FLASH_ATTENTION,
                ]
            ),
        ):
            block._attention(x)
        return "ok"
    except RuntimeError as err:
        return f"failed: {str(err).splitlines()[0][:200]}"
