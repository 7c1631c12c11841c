"""Device names: ``"auto"`` and the names PyTorch knows, checked (:func:`resolve_device`)."""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def resolve_device(spec: str) -> "torch.device":
    """``"auto"`` -> the first GPU when CUDA is available, else the CPU; other names are checked."""
    import torch

    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise ValueError(
            f"--device {spec!r} is not a device; use auto, cpu, cuda or cuda:N."
        ) from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"--device {spec} was given but CUDA is not available; use --device cpu (or auto)."
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(
                f"--device {spec}: only {torch.cuda.device_count()} GPU(s) are visible."
            )
    elif device.type != "cpu":
        raise ValueError(f"--device {spec}: only auto, cpu, cuda and cuda:N are supported.")
    return device
