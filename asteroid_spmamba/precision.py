"""Precision: the autocast and TF32 settings of a precision name, in one place (inference entry
points, CUDA graphs of training, GridNet's masker, the benchmark and the comparison recipe).

Precision names: ``fp32`` (or Lightning's ``32-true``/``32``): float32 with PyTorch's defaults
(matmuls without TF32; cuDNN convolutions as configured, TF32 allowed by default); ``tf32``: TF32
matmuls too; ``bf16``/``bf16-mixed``: autocast to bfloat16; ``fp16``/``16-mixed``: autocast to
float16. Under autocast the normalisations, STFT/iSTFT and scan states stay in float32.
"""

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Optional, Union

import torch

DeviceLike = Union[str, torch.device]

_AUTOCAST_DTYPES = {  # the benchmark's names and Lightning's
    "bf16": torch.bfloat16,
    "bf16-mixed": torch.bfloat16,
    "bf16-true": torch.bfloat16,
    "fp16": torch.float16,
    "16-mixed": torch.float16,
    "16": torch.float16,
}
_FLOAT32 = ("fp32", "tf32", "32-true", "32", "16-true", "64-true", "64")  # no autocast
PRECISIONS = tuple(_AUTOCAST_DTYPES) + _FLOAT32


def autocast_dtype(precision: Union[str, torch.dtype, None]) -> Optional[torch.dtype]:
    """The autocast dtype of a precision name (``None``: float32) or of a dtype."""
    if precision is None or isinstance(precision, torch.dtype):
        return None if precision in (None, torch.float32) else precision
    name = str(precision).lower()
    if name not in PRECISIONS:
        raise ValueError(f"Unknown precision {precision!r}; choose from {PRECISIONS}.")
    return _AUTOCAST_DTYPES.get(name)


def autocast(
    precision: Union[str, torch.dtype, None], device: DeviceLike, cache_enabled: bool = True
) -> AbstractContextManager:
    """``torch.autocast`` on ``device``'s type to the precision's dtype, or ``nullcontext()`` for a
    float32 precision. ``cache_enabled=False`` for CUDA graph capture (the weight cache cannot live
    across replays)."""
    dtype = autocast_dtype(precision)
    if dtype is None:
        return nullcontext()
    return torch.autocast(torch.device(device).type, dtype=dtype, cache_enabled=cache_enabled)


@contextmanager
def tf32_matmuls(enabled: bool) -> Iterator[None]:
    """Allow TF32 in float32 matmuls (or not) inside the block, restoring the setting after."""
    saved = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = bool(enabled)
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = saved


@contextmanager
def precision(name: str, device: DeviceLike) -> Iterator[None]:
    """Run the block in precision ``name`` (see the module docstring): TF32 matmuls for ``tf32``,
    autocast for the mixed precisions."""
    with tf32_matmuls(str(name).lower() == "tf32"), autocast(name, device):
        yield
