"""Measurement: the one place where time, memory and precision are measured and set up.

* precision: from :mod:`asteroid_spmamba.precision` (:func:`autocast`, :func:`precision`: autocast
  plus TF32 matmuls for ``"tf32"``), as the measurements run it;
* time: :func:`timed` (median of synchronised runs after a warm-up), :func:`measure_inference`,
  :func:`measure_train_step` (forward, loss, backward, Adam step);
* memory: :class:`PeakMemory` (CUDA's peak allocation; on CPU the process's peak resident memory);
* :func:`guarded` (an out-of-memory error or a missing bf16 kernel becomes a status, not a crash),
  :func:`bf16_agreement`, :func:`environment` (device, versions, git revision).

"""

import gc
import os
import platform
import statistics
import subprocess
import time
from typing import Callable, Optional, Union

import torch
import torch.nn as nn

from .precision import PRECISIONS, autocast, autocast_dtype, precision, tf32_matmuls  # noqa: F401

DeviceLike = Union[str, torch.device]


# --------------------------------------------------------------------------------------------
# Memory
# --------------------------------------------------------------------------------------------


def _proc_status_kb(key: str) -> Optional[int]:
    """A ``/proc/self/status`` field in kB (``VmRSS``, ``VmHWM``); ``None`` where unreadable."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def resident_kb() -> Optional[int]:
    """The process's resident memory now (kB), the baseline of a CPU :class:`PeakMemory`."""
    return _proc_status_kb("VmRSS")


def _reset_peak_rss() -> bool:
    """Reset the process's peak resident memory (VmHWM); False where the
    kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class PeakMemory:
    """Peak memory (MB) of what runs inside the ``with`` block.

    CUDA: ``torch.cuda.max_memory_allocated`` after a reset (absolute: weights on the GPU count;
    ``reset=False``: since the caller last reset it). CPU: the process's peak resident memory
    (VmHWM, reset on entry) minus ``baseline_kb`` (:func:`resident_kb`);
    ``None`` without a baseline.
    """

    def __init__(self, device: DeviceLike, baseline_kb: Optional[int] = None, reset: bool = True):
        self.device = torch.device(device)
        self.baseline_kb = baseline_kb
        self.reset = reset
        self.mb: Optional[float] = None
        self.method = ""

    @property
    def gib(self) -> Optional[float]:
        return None if self.mb is None else self.mb / 1024

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            if self.reset:
                torch.cuda.reset_peak_memory_stats(self.device)
        elif self.baseline_kb is not None:
            self._reset = _reset_peak_rss()
        return self

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.mb = torch.cuda.max_memory_allocated(self.device) / 2**20
            self.method = "cuda max_memory_allocated"
        elif self.baseline_kb is not None:
            peak = _proc_status_kb("VmHWM")
            if peak is not None:
                self.mb = (peak - self.baseline_kb) / 1024
                self.method = "VmHWM - RSS before" + ("" if self._reset else " (peak not reset)")
        return False


def free(device: DeviceLike) -> None:
    """Collect garbage and return cached CUDA memory."""
    gc.collect()
    if torch.device(device).type == "cuda":
        torch.cuda.empty_cache()


# --------------------------------------------------------------------------------------------
# Time
# --------------------------------------------------------------------------------------------


def sync(device: DeviceLike) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def timed(
    fn: Callable[[], None],
    device: DeviceLike,
    repeats: int,
    warmup: int = 1,
    reset_peak: bool = True,
    baseline_kb: Optional[int] = None,
) -> dict:
    """Median wall time (ms) of ``repeats`` synchronised calls of ``fn`` after ``warmup`` calls,
    and their peak memory (:class:`PeakMemory`; on CPU only with ``baseline_kb``).

    Returns ``{"time_ms", "times_ms", "runs", "peak_mb", "peak_gib", "memory_method"}``.
    """
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    with PeakMemory(device, baseline_kb, reset=reset_peak) as peak:
        for _ in range(repeats):
            sync(device)
            start = time.perf_counter()
            fn()
            sync(device)
            times.append(1000 * (time.perf_counter() - start))
    return {
        "time_ms": statistics.median(times),
        "times_ms": times,
        "runs": len(times),
        "peak_mb": peak.mb,
        "peak_gib": peak.gib,
        "memory_method": peak.method,
    }


def neg_si_snr(est: torch.Tensor, ref: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Mean negative SI-SNR (dB) of ``(batch, n_src, time)`` estimates, in float32."""
    est, ref = est.float(), ref.float()
    est = est - est.mean(-1, keepdim=True)
    ref = ref - ref.mean(-1, keepdim=True)
    target = (est * ref).sum(-1, keepdim=True) / (ref.square().sum(-1, keepdim=True) + eps) * ref
    ratio = target.square().sum(-1) / ((est - target).square().sum(-1) + eps)
    return -10 * torch.log10(ratio + eps).mean()


def measure_inference(
    model: nn.Module,
    samples: int,
    dtype: str,
    device: DeviceLike,
    repeats: int,
    warmup: int,
    wav: Optional[torch.Tensor] = None,
    baseline_kb: Optional[int] = None,
) -> dict:
    """:func:`timed` inference of ``model`` (eval mode, ``inference_mode``, precision ``dtype``) on
    ``wav`` or a random ``(1, samples)`` mixture."""
    model.eval()
    if wav is None:
        wav = torch.randn(1, samples, device=device)

    def run():
        with torch.inference_mode(), precision(dtype, device):
            model(wav)

    return timed(run, device, repeats, warmup, baseline_kb=baseline_kb)


def measure_train_step(
    model: nn.Module,
    batch: int,
    samples: int,
    n_src: int,
    dtype: str,
    device: DeviceLike,
    repeats: int,
    warmup: int,
    graphed: bool = False,
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = neg_si_snr,
    targets: Optional[torch.Tensor] = None,
    mixture: Optional[torch.Tensor] = None,
    lr: float = 1e-5,
    baseline_kb: Optional[int] = None,
) -> dict:
    """:func:`timed` training step: zero the gradients, forward in precision ``dtype`` (autocast
    around the forward pass only; its backward follows the forward's dtypes; TF32 matmuls in the
    backward pass too for ``tf32``), ``loss(estimates, targets)`` (default: negative SI-SNR against
    random targets), backward, Adam step. ``graphed``: the forward and backward replayed as CUDA
    graphs (:mod:`asteroid_spmamba.cuda_graphs`), the peak memory counted from the capture on."""
    from .cuda_graphs import graph_training_forward, ungraph

    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    if targets is None:
        targets = torch.randn(batch, n_src, samples, device=device)
    if mixture is None:
        mixture = torch.randn(batch, samples, device=device)
    if graphed:  # captured with this run's precision settings
        # the graphs' memory is allocated at capture: the peak counts from there (and so includes
        # the eager warm-up iterations that precede the capture)
        torch.cuda.reset_peak_memory_stats(device)
        with tf32_matmuls(dtype == "tf32"):
            graph_training_forward(model, mixture, autocast_dtype(dtype))

    def step():
        optimizer.zero_grad(set_to_none=True)
        with tf32_matmuls(dtype == "tf32"):
            with autocast(dtype, device):
                estimates = model(mixture)
            loss(estimates.float(), targets).backward()
            optimizer.step()

    try:
        return timed(step, device, repeats, warmup, reset_peak=not graphed, baseline_kb=baseline_kb)
    finally:
        optimizer.zero_grad(set_to_none=True)
        if graphed:
            ungraph(model)
        model.eval()


# --------------------------------------------------------------------------------------------
# Failures, agreement, environment
# --------------------------------------------------------------------------------------------


def is_oom(err: BaseException) -> bool:
    oom_type = getattr(torch.cuda, "OutOfMemoryError", ())
    return isinstance(err, oom_type) or "out of memory" in str(err).lower()


def cpu_lacks_bf16(err: Exception, device: DeviceLike) -> bool:
    """oneDNN has no bfloat16 LSTM on CPUs without AVX-512 (e.g. AVX2-only machines): bf16 autocast
    of an LSTM model (TF-GridNet, BSRNN) fails there with "could not create a primitive
    descriptor"."""
    return (
        torch.device(device).type == "cpu"
        and "primitive descriptor" in str(err)
        and not torch.ops.mkldnn._is_mkldnn_bf16_supported()
    )


def guarded(measure: Callable[[], dict], device: DeviceLike) -> dict:
    """Run a measurement; its failure becomes ``{"status": "OOM" | "unsupported: ..." | "error:
    ..."}`` (``status`` ``"ok"`` otherwise), and the device's memory is freed after."""
    status = None
    try:
        result = measure()
    except Exception as err:  # noqa: BLE001 - any failure is reported, not raised
        if is_oom(err):
            status = "OOM"
        elif cpu_lacks_bf16(err, device):
            status = "unsupported: no bfloat16 oneDNN kernels on this CPU"
        else:
            first = str(err).splitlines()[0][:160] if str(err) else ""
            status = f"error: {type(err).__name__}: {first}"
        err = None  # drop the traceback's references to the failed run's tensors before freeing
    free(device)
    if status is not None:
        return {"status": status}
    return dict(result, status="ok")


def bf16_agreement(model: nn.Module, samples: int, device: DeviceLike) -> float:
    """SI-SNR (dB) of the bf16-autocast output against the float32 output on one random mixture."""
    model.eval()
    generator = torch.Generator(device="cpu").manual_seed(0)
    wav = torch.randn(1, samples, generator=generator).to(device)
    with torch.inference_mode():
        with precision("fp32", device):
            ref = model(wav).float()
        with precision("bf16", device):
            est = model(wav).float()
    return -neg_si_snr(est, ref).item()


def device_name(device: DeviceLike) -> str:
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine()


def environment(device: DeviceLike) -> dict:
    """Device, versions and git revision, for result files."""
    device = torch.device(device)
    meta = {
        "device": str(device),
        "device_name": device_name(device),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
        "git_revision": git_revision(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    from importlib import metadata

    from .mamba import triton_scan

    meta["triton_backward"] = triton_scan.BACKWARD_METHOD  # the Triton scan's backward
    if meta["triton_backward"] == "recompute":
        meta["triton_backward"] += f" (chunk {triton_scan.RECOMPUTE_CHUNK})"
    for package in ("triton", "mamba_ssm", "causal_conv1d"):
        try:  # installed version, without importing (mamba_ssm imports its CUDA extension)
            meta[package] = metadata.version(package.replace("_", "-"))
        except metadata.PackageNotFoundError:
            meta[package] = None
    return meta


def git_revision() -> Optional[str]:
    """Short revision of the package's checkout (``-dirty`` with local
    changes); ``None`` outside."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        rev, dirty = (
            subprocess.run(
                ["git", *args], cwd=root, capture_output=True, text=True, timeout=10
            ).stdout.strip()
            for args in (
                ["rev-parse", "--short", "HEAD"],
                ["status", "--porcelain", "--untracked-files=no"],
            )
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return (rev + ("-dirty" if dirty else "")) if rev else None
