"""Conv1d + global layer norm (+ PReLU): the basic layer of the A-FRCNN and
TDANet time-domain models."""

import torch
import torch.nn as nn
from asteroid.masknn.norms import GlobLN


class ConvNorm(nn.Module):
    """Conv1d ("same" padding for odd kernels) -> global layer norm (-> PReLU)."""

    def __init__(
        self,
        in_chan: int,
        out_chan: int,
        kernel_size: int,
        stride: int = 1,
        groups: int = 1,
        bias: bool = True,
        act: bool = False,
    ):
        super().__init__()
        self.conv = nn.Conv1d(
            in_chan,
            out_chan,
            kernel_size,
            stride=stride,
            padding=(kernel_size - 1) // 2,
            groups=groups,
            bias=bias,
        )
        self.norm = GlobLN(out_chan)
        self.act = nn.PReLU() if act else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(self.conv(x))
        return self.act(x) if self.act is not None else x
