"""The ``"cpu"`` scan backend: a fused C kernel (``csrc/cpu_scan.c``) built on first use.

The kernel keeps each (batch, channel) state in registers and vectorises the loop over states,
``exp`` included, so a step costs a handful of vector instructions instead of the PyTorch
backend's several passes over memory. It is compiled once per machine with the system C compiler
(``$CC``, else ``cc``/``gcc``/``clang``) into ``$ASTEROID_SPMAMBA_CACHE`` (default
``~/.cache/asteroid_spmamba``), under a name that hashes the source, the compiler flags and the
CPU's instruction-set flags, and loaded with :mod:`ctypes`. Calls release the GIL, so disjoint
batch ranges run in parallel threads (``torch.get_num_threads()`` of them).

When no compiler is found the ``"auto"`` backend falls back to ``"torch"``; asking for ``"cpu"``
explicitly raises an error that says what to install.
"""

import ctypes
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F

from .backends import register

log = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("csrc") / "cpu_scan.c"
CACHE_ENV_VAR = "ASTEROID_SPMAMBA_CACHE"
# -ffast-math lets the compiler vectorise exp through glibc's libmvec; it is given to the compile
# step only, so the shared object does not pull in crtfastmath (which would flush denormals to
# zero for the whole process).
COMPILE_FLAGS = ("-O3", "-march=native", "-ffast-math", "-fopenmp-simd", "-fPIC", "-std=c11")
LINK_FLAGS = ("-shared",)
LINK_LIBS = ("-lm",)
# Below this many state elements per call, one thread does the whole batch (thread hand-off costs
# more than it saves).
_PARALLEL_MIN_ELEMENTS = 1 << 16


class CpuKernelUnavailable(RuntimeError):
    """The C kernel could not be built or loaded on this machine."""


def _cache_dir() -> Path:
    root = os.environ.get(CACHE_ENV_VAR)
    if root:
        return Path(root)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "asteroid_spmamba"


def _cpu_signature() -> str:
    """Instruction-set flags: a binary built with -march=native must not run on another CPU."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line
    except OSError:
        pass
    return platform.machine() + platform.processor()


def _compile_flags() -> tuple[str, ...]:
    """Channels per SIMD tile: 16 float32 lanes in one AVX-512 register, else 8 (AVX2, NEON x2)."""
    flags = _cpu_signature().split()
    if "avx512f" in flags:
        return COMPILE_FLAGS + ("-DTILE=16", "-mprefer-vector-width=512")
    return COMPILE_FLAGS + ("-DTILE=8",)


def _find_compiler() -> Optional[str]:
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def _build(compiler: str, target: Path) -> None:
    """Compile and link into a temporary folder, then move into place (atomic
    for other processes)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        obj, lib = Path(tmp) / "cpu_scan.o", Path(tmp) / target.name
        for cmd in (
            [compiler, *_compile_flags(), "-c", str(SOURCE), "-o", str(obj)],
            [compiler, *LINK_FLAGS, str(obj), "-o", str(lib), *LINK_LIBS],
        ):
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                raise CpuKernelUnavailable(
                    f"Building the CPU scan kernel failed ({' '.join(cmd)}):\n{proc.stderr.strip()}"
                )
        os.replace(lib, target)


@cache
def _library() -> ctypes.CDLL:
    compiler = _find_compiler()
    if compiler is None:
        raise CpuKernelUnavailable(
            "The 'cpu' scan backend compiles a small C kernel on first use, but no C compiler was "
            "found (set $CC, or install one: apt install gcc / xcode-select --install). "
            "Or use backend='torch'."
        )
    key = hashlib.sha256(
        b"\0".join(
            [
                SOURCE.read_bytes(),
                " ".join(_compile_flags() + LINK_FLAGS).encode(),
                _cpu_signature().encode(),
                compiler.encode(),
            ]
        )
    ).hexdigest()[:16]
    target = _cache_dir() / f"cpu_scan-{key}{'.dylib' if platform.system() == 'Darwin' else '.so'}"
    if not target.exists():
        log.info("Building the CPU scan kernel into %s", target)
        _build(compiler, target)
    try:
        lib = ctypes.CDLL(str(target))
    except OSError as err:
        raise CpuKernelUnavailable(f"Loading the CPU scan kernel {target} failed: {err}") from err
    P, I, INT = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int  # noqa: E741 (ctypes signatures)
    scan_inputs = [P, I, P, I, P, P, I, P, I, P, P, I, P, INT, P]  # u .. h0
    signatures = {
        "scan_fwd": (scan_inputs + [P, P] + [I] * 5, None),
        "scan_bwd": (scan_inputs + [P] * 11 + [I] * 5, INT),
        "conv_fwd": ([P, I, P, P, P] + [I] * 5, None),
        "conv_bwd": ([P, I] + [P] * 6 + [I] * 5, INT),
    }
    for name, (argtypes, restype) in signatures.items():
        for suffix in ("f32", "f64"):
            fn = getattr(lib, f"{name}_{suffix}")
            fn.argtypes, fn.restype = argtypes, restype
    return lib


@cache
def cpu_kernel_available() -> bool:
    """Whether the C kernel is built (building it now if needed) and loadable."""
    try:
        _library()
    except CpuKernelUnavailable as err:
        log.warning("%s Falling back to the 'torch' scan backend.", err)
        return False
    return True


def require_cpu_kernel() -> None:
    """Raise :class:`CpuKernelUnavailable` (with the reason and the fix) if
    the kernel cannot run."""
    _library()


_pool_lock = threading.Lock()
_pools = {}


def _pool(n_threads: int) -> ThreadPoolExecutor:
    with _pool_lock:
        if n_threads not in _pools:
            _pools[n_threads] = ThreadPoolExecutor(n_threads, thread_name_prefix="spmamba-scan")
        return _pools[n_threads]


def _ranges(batch: int, work_per_batch: int):
    n_threads = max(1, min(torch.get_num_threads(), batch))
    if batch * work_per_batch < _PARALLEL_MIN_ELEMENTS:
        n_threads = 1
    bounds = [batch * i // n_threads for i in range(n_threads + 1)]
    return [(bounds[i], bounds[i + 1]) for i in range(n_threads) if bounds[i + 1] > bounds[i]]


def _run(calls):
    """Run the kernel calls (closures) in parallel threads; ctypes releases the GIL."""
    if len(calls) == 1:
        return [calls[0]()]
    return list(_pool(len(calls)).map(lambda call: call(), calls))


def _p(t: Optional[torch.Tensor]):
    return None if t is None else t.data_ptr()


def _rows(t: Optional[torch.Tensor]) -> tuple[Optional[torch.Tensor], int]:
    """A time-major (batch, L, ch) tensor and its row stride; copied only if its rows are not
    evenly spaced with contiguous channels (a channel slice of a wider tensor is read in place)."""
    if t is None:
        return None, 0
    batch, length, _ = t.shape
    if t.stride(2) != 1 or (batch > 1 and t.stride(0) != length * t.stride(1)) or length == 1:
        t = t.contiguous()
    return t, t.stride(1)


def _kernel(name: str, dtype: torch.dtype):
    return getattr(_library(), f"{name}_{'f64' if dtype == torch.float64 else 'f32'}")


class _FusedScan(torch.autograd.Function):
    """Fused selective scan on time-major tensors (see ``csrc/cpu_scan.c``)."""

    @staticmethod
    def forward(ctx, u, dt, A, B, C, D, z, delta_bias, initial_state, softplus):
        batch, length, dim = u.shape
        d_state = A.shape[1]
        (u, su), (dt, sdt), (B, sB), (C, sC), (z, sz) = (_rows(t) for t in (u, dt, B, C, z))
        At = A.t().contiguous()  # (N, D): a state's decays are contiguous over channels
        D, delta_bias = (None if t is None else t.contiguous() for t in (D, delta_bias))
        h0 = None if initial_state is None else initial_state.contiguous()
        y = u.new_empty(batch, length, dim)
        last = u.new_empty(batch, dim, d_state)
        fn = _kernel("scan_fwd", u.dtype)
        _run(
            [
                (
                    lambda b0=b0, b1=b1: fn(
                        _p(u),
                        su,
                        _p(dt),
                        sdt,
                        _p(At),
                        _p(B),
                        sB,
                        _p(C),
                        sC,
                        _p(D),
                        _p(z),
                        sz,
                        _p(delta_bias),
                        int(softplus),
                        _p(h0),
                        _p(y),
                        _p(last),
                        b0,
                        b1,
                        dim,
                        length,
                        d_state,
                    )
                )
                for b0, b1 in _ranges(batch, dim * length * d_state)
            ]
        )
        ctx.save_for_backward(u, dt, At, B, C, D, z, delta_bias, h0)
        ctx.strides = (su, sdt, sB, sC, sz)
        ctx.softplus = softplus
        return y, last

    @staticmethod
    def backward(ctx, grad_y, grad_last):
        u, dt, At, B, C, D, z, delta_bias, h0 = ctx.saved_tensors
        su, sdt, sB, sC, sz = ctx.strides
        batch, length, dim = u.shape
        d_state = At.shape[0]
        gout = torch.zeros_like(u) if grad_y is None else grad_y.contiguous()
        glast = None if grad_last is None else grad_last.contiguous()
        new = lambda *shape: u.new_empty(*shape)  # noqa: E731
        gu, gdt = new(batch, length, dim), new(batch, length, dim)
        gB, gC = new(batch, length, d_state), new(batch, length, d_state)
        gz = None if z is None else new(batch, length, dim)
        ginit = None if h0 is None else new(batch, dim, d_state)
        ranges = _ranges(batch, dim * length * d_state)
        # per-thread accumulators of the parameter gradients: no shared writes
        gAt = u.new_zeros(len(ranges), d_state, dim)
        gD = None if D is None else u.new_zeros(len(ranges), dim)
        gbias = None if delta_bias is None else u.new_zeros(len(ranges), dim)
        fn = _kernel("scan_bwd", u.dtype)
        part = lambda t, i: None if t is None else t[i]  # noqa: E731
        status = _run(
            [
                (
                    lambda b0=b0, b1=b1, i=i: fn(
                        _p(u),
                        su,
                        _p(dt),
                        sdt,
                        _p(At),
                        _p(B),
                        sB,
                        _p(C),
                        sC,
                        _p(D),
                        _p(z),
                        sz,
                        _p(delta_bias),
                        int(ctx.softplus),
                        _p(h0),
                        _p(gout),
                        _p(glast),
                        _p(gu),
                        _p(gdt),
                        _p(gAt[i]),
                        _p(gB),
                        _p(gC),
                        _p(part(gD, i)),
                        _p(gz),
                        _p(part(gbias, i)),
                        _p(ginit),
                        b0,
                        b1,
                        dim,
                        length,
                        d_state,
                    )
                )
                for i, (b0, b1) in enumerate(ranges)
            ]
        )
        if any(status):
            raise MemoryError("The CPU scan kernel could not allocate its state buffers.")
        total = lambda t: None if t is None else t.sum(0)  # noqa: E731
        return gu, gdt, gAt.sum(0).t(), gB, gC, total(gD), gz, total(gbias), ginit, None


def selective_scan_time_major(
    u: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: Optional[torch.Tensor] = None,
    z: Optional[torch.Tensor] = None,
    delta_bias: Optional[torch.Tensor] = None,
    delta_softplus: bool = False,
    initial_state: Optional[torch.Tensor] = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The selective scan of :mod:`asteroid_spmamba.mamba.scan` on time-major CPU tensors, fused:
    ``u, dt, z: (batch, L, dim)``, ``B, C: (batch, L, d_state)`` (channel slices of wider tensors
    are read in place), ``A: (dim, d_state)``, ``D, delta_bias: (dim,)``. Computed in float64 when
    ``u`` is float64, else in float32 (other dtypes are cast). Returns ``y (batch, L, dim)`` (gated
    by ``silu(z)`` when given) and the last state."""
    # The kernel reads raw memory: every tensor must have the compute dtype (autocast may hand
    # over bfloat16 pieces), float64 when u is float64, else float32.
    fp = torch.float64 if u.dtype == torch.float64 else torch.float32
    cast = lambda t: None if t is None else t.to(fp)  # noqa: E731
    return _FusedScan.apply(
        *(cast(t) for t in (u, dt, A, B, C, D, z, delta_bias, initial_state)), delta_softplus
    )


class _CausalConvSiLU(torch.autograd.Function):
    """silu(depthwise causal conv1d) on time-major tensors (see ``csrc/cpu_scan.c``)."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        batch, length, dim = x.shape
        (x, sx) = _rows(x)
        Wt = weight.t().contiguous()  # (K, D)
        bias = None if bias is None else bias.contiguous()
        out = x.new_empty(batch, length, dim)
        fn = _kernel("conv_fwd", x.dtype)
        _run(
            [
                (
                    lambda b0=b0, b1=b1: fn(
                        _p(x), sx, _p(Wt), _p(bias), _p(out), b0, b1, dim, length, Wt.shape[0]
                    )
                )
                for b0, b1 in _ranges(batch, dim * length * Wt.shape[0])
            ]
        )
        ctx.save_for_backward(x, Wt, bias)
        ctx.sx = sx
        return out

    @staticmethod
    def backward(ctx, grad_out):
        x, Wt, bias = ctx.saved_tensors
        batch, length, dim = x.shape
        gout = grad_out.contiguous()
        gx = x.new_empty(batch, length, dim)
        ranges = _ranges(batch, dim * length * Wt.shape[0])
        gWt = x.new_zeros(len(ranges), *Wt.shape)
        gbias = x.new_zeros(len(ranges), dim)
        fn = _kernel("conv_bwd", x.dtype)
        status = _run(
            [
                (
                    lambda b0=b0, b1=b1, i=i: fn(
                        _p(x),
                        ctx.sx,
                        _p(Wt),
                        _p(bias),
                        _p(gout),
                        _p(gx),
                        _p(gWt[i]),
                        _p(gbias[i]),
                        b0,
                        b1,
                        dim,
                        length,
                        Wt.shape[0],
                    )
                )
                for i, (b0, b1) in enumerate(ranges)
            ]
        )
        if any(status):
            raise MemoryError("The CPU convolution kernel could not allocate its buffer.")
        return gx, gWt.sum(0).t(), None if bias is None else gbias.sum(0)


def causal_conv1d_silu_time_major(
    x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor] = None
) -> torch.Tensor:
    """``silu`` of a depthwise causal convolution along time of ``x (batch, L, dim)`` (a channel
    slice of a wider tensor is read in place) with ``weight (dim, K)``: Mamba's ``conv1d``."""
    fp = torch.float64 if x.dtype == torch.float64 else torch.float32
    return _CausalConvSiLU.apply(x.to(fp), weight.to(fp), None if bias is None else bias.to(fp))


def selective_scan_cpu(
    u,
    delta,
    A,
    B,
    C,
    D=None,
    z=None,
    delta_bias=None,
    delta_softplus=False,
    return_last_state=False,
    initial_state=None,
):
    """Scan with the fused C kernel (CPU tensors; see :mod:`asteroid_spmamba.mamba.cpu_scan`)."""
    from .scan import _check_real_selective

    _check_real_selective(A, B, C)
    dtype_in = u.dtype
    fp = torch.float64 if u.dtype == torch.float64 else torch.float32
    cast = lambda t: None if t is None else t.to(fp)  # noqa: E731
    time_major = lambda t: None if t is None else t.to(fp).transpose(1, 2)  # noqa: E731
    y, last = selective_scan_time_major(
        *(time_major(t) for t in (u, delta)),
        cast(A),
        *(time_major(t) for t in (B, C)),
        D=cast(D),
        z=time_major(z),
        delta_bias=cast(delta_bias),
        delta_softplus=delta_softplus,
        initial_state=cast(initial_state),
    )
    out = y.transpose(1, 2).to(dtype_in)
    return (out, last) if return_last_state else out


def _require(device: torch.device) -> None:
    if device.type != "cpu":
        raise ValueError(
            f"The 'cpu' scan backend runs on CPU tensors only, got tensors on {device}. Use "
            "backend='cuda', 'triton' or 'torch' on a GPU."
        )
    require_cpu_kernel()


def _block(mamba, xz, A, D, dt_bias) -> torch.Tensor:
    """The Mamba block on time-major tensors, no transposes: the fused causal convolution and the
    fused scan read the x and z halves of ``xz (B, L, 2*d_inner)`` in place."""
    # the kernels compute in float32 (float64 for a float64 model); under autocast the
    # projections run in the autocast dtype and the kernels cast their inputs
    x, z = xz.split(mamba.d_inner, dim=-1)
    x = causal_conv1d_silu_time_major(x, mamba.conv1d.weight[:, 0], mamba.conv1d.bias)
    x_dbl = mamba.x_proj(x)
    dt, B, C = torch.split(x_dbl, [mamba.dt_rank, mamba.d_state, mamba.d_state], dim=-1)
    dt = F.linear(dt, mamba.dt_proj.weight)  # (B, L, d_inner); the bias goes into the scan
    y, _ = selective_scan_time_major(
        x, dt, A, B, C, D, z=z, delta_bias=dt_bias, delta_softplus=True
    )
    return mamba.out_proj(y)


register(
    "cpu",
    selective_scan_cpu,
    require=_require,
    available=cpu_kernel_available,
    auto={"cpu": 0},
    block=_block,
    stateful_scan=selective_scan_cpu,
)
