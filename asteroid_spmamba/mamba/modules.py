"""Mamba-1 block in PyTorch, with the parameter names of ``mamba_ssm.modules.mamba_simple.Mamba``.

Parameter names and shapes are a contract: a state dict of upstream ``Mamba`` loads into
:class:`Mamba` unchanged (``in_proj``, ``conv1d``, ``x_proj``, ``dt_proj``, ``A_log``, ``D``,
``out_proj``), and :class:`MambaResidualBlock` matches upstream ``Block`` with
``fused_add_norm=False`` and no MLP (``norm``, ``mixer``).
"""

import math
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from .backends import ScanBackend, requested, resolve
from .scan import selective_scan_chunked

# State of one Mamba block while streaming: (convolution input buffer, SSM state).
MambaState = tuple[torch.Tensor, torch.Tensor]


class Mamba(nn.Module):
    """Selective state-space block (Gu & Dao, 2023).

    Args:
        d_model: input/output feature size.
        d_state: SSM state size N.
        d_conv: width of the causal depthwise convolution.
        expand: inner width ``d_inner = expand * d_model``.
        dt_rank: rank of the dt projection; ``"auto"`` = ``ceil(d_model / 16)``.
        dt_min, dt_max, dt_init, dt_scale, dt_init_floor: dt initialisation, as upstream.
        conv_bias, bias: biases of the convolution and of the in/out projections.
        backend: scan backend (see :mod:`asteroid_spmamba.mamba.scan`); ``None`` = automatic.
            Resolved once per backend and device (:meth:`kernels`), on the first call.
        use_fast_path: with the CUDA backend and ``causal_conv1d`` installed, run upstream's fused
            ``mamba_inner_fn`` (convolution, projections and scan in one autograd function).

    Forward: ``(batch, length, d_model) -> (batch, length, d_model)``; causal along ``length``.
    """

    def __init__(
        self,
        d_model: int,
        d_state: int = 16,
        d_conv: int = 4,
        expand: int = 2,
        dt_rank="auto",
        dt_min: float = 0.001,
        dt_max: float = 0.1,
        dt_init: str = "random",
        dt_scale: float = 1.0,
        dt_init_floor: float = 1e-4,
        conv_bias: bool = True,
        bias: bool = False,
        backend: Optional[str] = None,
        use_fast_path: bool = True,
    ):
        super().__init__()
        self.d_model = d_model
        self.d_state = d_state
        self.d_conv = d_conv
        self.expand = expand
        self.d_inner = int(expand * d_model)
        self.dt_rank = math.ceil(d_model / 16) if dt_rank == "auto" else int(dt_rank)
        self.backend = backend
        self.use_fast_path = use_fast_path

        self.in_proj = nn.Linear(d_model, self.d_inner * 2, bias=bias)
        self.conv1d = nn.Conv1d(
            self.d_inner,
            self.d_inner,
            kernel_size=d_conv,
            groups=self.d_inner,
            padding=d_conv - 1,
            bias=conv_bias,
        )
        self.x_proj = nn.Linear(self.d_inner, self.dt_rank + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, self.d_inner, bias=True)
        # A is stored as log(-A) and D as a skip gain, both kept in float32 as upstream does.
        self.A_log = nn.Parameter(
            torch.log(torch.arange(1, d_state + 1, dtype=torch.float32)).repeat(self.d_inner, 1)
        )
        self.D = nn.Parameter(torch.ones(self.d_inner))
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=bias)
        self.A_log._no_weight_decay = True
        self.D._no_weight_decay = True
        self._init_dt(dt_min, dt_max, dt_init, dt_scale, dt_init_floor)

    @torch.no_grad()
    def _init_dt(self, dt_min, dt_max, dt_init, dt_scale, dt_init_floor):
        std = self.dt_rank**-0.5 * dt_scale
        if dt_init == "constant":
            nn.init.constant_(self.dt_proj.weight, std)
        elif dt_init == "random":
            nn.init.uniform_(self.dt_proj.weight, -std, std)
        else:
            raise ValueError(f"dt_init must be 'random' or 'constant', got {dt_init!r}")
        # softplus(bias) is log-uniform in [dt_min, dt_max]; bias = softplus^-1(dt)
        dt = torch.exp(
            torch.rand(self.d_inner) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)
        ).clamp(min=dt_init_floor)
        self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))
        self.dt_proj.bias._no_reinit = True

    @property
    def backend(self) -> Optional[str]:
        """The scan backend asked for (``None``: ``$ASTEROID_SPMAMBA_SCAN_BACKEND``, else
        automatic).
        Setting it drops the kernels bound for the previous one."""
        return self._backend

    @backend.setter
    def backend(self, backend: Optional[str]) -> None:
        self._backend = backend
        self._bound: Optional[tuple[str, torch.device, ScanBackend]] = None

    def __setstate__(self, state):
        if "backend" in state:  # a module pickled before the backend became a property
            state["_backend"] = state.pop("backend")
        state.setdefault("_bound", None)
        super().__setstate__(state)

    def kernels(self, device: torch.device) -> ScanBackend:
        """The scan backend that runs this block on ``device``: resolved (see
        :func:`~asteroid_spmamba.mamba.backends.resolve`) on the first call, and again only when the
        requested name (``backend``, or the environment variable when it is ``None``) or the device
        changes; raises when the requested backend cannot run there."""
        name, bound = requested(self._backend), self._bound
        if bound is None or bound[0] != name or bound[1] != device:
            bound = self._bound = (name, device, resolve(name, device))
        return bound[2]

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        kernels = self.kernels(hidden_states.device)
        xz = self.in_proj(hidden_states)  # (B, L, 2*d_inner)
        # A, D and the dt bias stay in float32 (float64 for a float64 model) under autocast.
        fp = torch.float64 if self.A_log.dtype == torch.float64 else torch.float32
        A = -torch.exp(self.A_log.to(fp))
        D, dt_bias = self.D.to(fp), self.dt_proj.bias.to(fp)
        if kernels.block is not None:
            return kernels.block(self, xz, A, D, dt_bias)
        x, z = xz.transpose(1, 2).chunk(2, dim=1)
        return self.forward_unfused(x, z, A, D, dt_bias, kernels.scan)

    def forward_unfused(self, x, z, A, D, dt_bias, scan, conv=None) -> torch.Tensor:
        """The block after in_proj, one operation at a time: ``x, z`` ``(B, d_inner, L)`` (in_proj's
        halves), ``scan`` with :func:`~asteroid_spmamba.mamba.scan.selective_scan`'s signature,
        ``conv(x, weight (d_inner, d_conv), bias)`` the causal convolution with its SiLU (``None``:
        ``conv1d``)."""
        if conv is None:
            x = F.silu(self.conv1d(x)[..., : x.shape[-1]])
        else:
            x = conv(x, self.conv1d.weight[:, 0], self.conv1d.bias)
        x_dbl = self.x_proj(x.transpose(1, 2))  # (B, L, dt_rank + 2N)
        dt, B, C = torch.split(x_dbl, [self.dt_rank, self.d_state, self.d_state], dim=-1)
        dt = F.linear(dt, self.dt_proj.weight).transpose(1, 2)  # bias goes into the scan
        y = scan(
            x,
            dt,
            A,
            B.transpose(1, 2),
            C.transpose(1, 2),
            D,
            z=z,
            delta_bias=dt_bias,
            delta_softplus=True,
        )
        return self.out_proj(y.transpose(1, 2))

    def init_state(self, batch: int, device=None, dtype=None) -> MambaState:
        """Zero state of a sequence that has not started: ``(conv_state, ssm_state)``.

        ``conv_state`` ``(batch, d_inner, d_conv - 1)`` holds the last inputs of the depthwise
        convolution; ``ssm_state`` ``(batch, d_inner, d_state)`` is kept in float32 (float64 for a
        float64 model), as the scan computes.
        """
        device = device if device is not None else self.A_log.device
        dtype = dtype if dtype is not None else self.in_proj.weight.dtype
        fp = torch.float64 if dtype == torch.float64 else torch.float32
        return (
            torch.zeros(batch, self.d_inner, self.d_conv - 1, device=device, dtype=dtype),
            torch.zeros(batch, self.d_inner, self.d_state, device=device, dtype=fp),
        )

    def step(self, hidden_states: torch.Tensor, state: Optional[MambaState] = None):
        """Continue a sequence: ``(batch, L, d_model)`` next steps (``L >=
        1``) -> ``(output, state)``.

        Feeding a sequence in pieces, each call given the state the previous one returned, gives the
        output of :meth:`forward` on the whole sequence (up to float rounding). Runs on any device:
        several steps go through the ``cpu`` backend's kernel on a CPU that has it, else the chunked
        PyTorch scan (the carried state has no CUDA-kernel counterpart here).
        """
        batch, seqlen, _ = hidden_states.shape
        if state is None:
            state = self.init_state(batch, hidden_states.device, hidden_states.dtype)
        conv_state, ssm_state = state
        x, z = self.in_proj(hidden_states).transpose(1, 2).chunk(2, dim=1)  # (B, d_inner, L)
        x_full = torch.cat([conv_state.to(x.dtype), x], dim=2)
        new_conv_state = x_full[..., x_full.shape[-1] - (self.d_conv - 1) :]
        x = F.silu(F.conv1d(x_full, self.conv1d.weight, self.conv1d.bias, groups=self.d_inner))
        x_dbl = self.x_proj(x.transpose(1, 2))
        dt, B, C = torch.split(x_dbl, [self.dt_rank, self.d_state, self.d_state], dim=-1)
        dt = F.linear(dt, self.dt_proj.weight).transpose(1, 2)
        fp = ssm_state.dtype
        A = -torch.exp(self.A_log.to(fp))
        D, dt_bias = self.D.to(fp), self.dt_proj.bias.to(fp)
        if seqlen == 1:
            # one step of the recurrence, without the scan's sequence machinery
            u = x[..., 0].to(fp)
            delta = F.softplus(dt[..., 0].to(fp) + dt_bias)  # (B, d_inner)
            h = torch.exp(delta[..., None] * A) * ssm_state + (delta * u)[..., None] * B[
                :, 0, None, :
            ].to(fp)
            y = torch.matmul(h, C[:, 0, :, None].to(fp))[..., 0] + D * u
            y = (y * F.silu(z[..., 0].to(fp))).to(x.dtype)[..., None]
        else:
            scan = self.kernels(x.device).stateful_scan or selective_scan_chunked
            y, h = scan(
                x,
                dt,
                A,
                B.transpose(1, 2),
                C.transpose(1, 2),
                D,
                z=z,
                delta_bias=dt_bias,
                delta_softplus=True,
                return_last_state=True,
                initial_state=ssm_state,
            )
        return self.out_proj(y.transpose(1, 2)), (new_conv_state, h.to(fp))


class RMSNorm(nn.Module):
    """Root-mean-square normalisation over the last axis, computed in float32 (as upstream)."""

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        x = x.float() if dtype in (torch.float16, torch.bfloat16) else x
        rstd = torch.rsqrt(x.square().mean(dim=-1, keepdim=True) + self.eps)
        return (x * rstd * self.weight.to(x.dtype)).to(dtype)


class MambaResidualBlock(nn.Module):
    """``x + mixer(norm(x))``: upstream ``Block`` (no MLP, unfused add+norm)
    with the residual added."""

    def __init__(self, dim: int, mixer: nn.Module, eps: float = 1e-5):
        super().__init__()
        self.norm = RMSNorm(dim, eps=eps)
        self.mixer = mixer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.mixer(self.norm(x))

    def step(self, x: torch.Tensor, state: Optional[MambaState] = None):
        """Stateful :meth:`forward` on the next ``(batch, L, dim)`` steps;
        see :meth:`Mamba.step`."""
        out, state = self.mixer.step(self.norm(x), state)
        return x + out, state


class BiMamba(nn.Module):
    """Stack of residual Mamba blocks run forward in time and, if bidirectional, on the reversed
    sequence; the two outputs are concatenated on the feature axis (as a BiLSTM's are).

    This is the sequence module of SPMamba (``MambaBlock`` in the original code): its
    ``forward_blocks``/``backward_blocks`` hold the same parameters under the same names.

    Args:
        dim: input feature size.
        n_layers: residual blocks per direction.
        bidirectional: add the reversed-time direction. Without it the module is causal.
        d_state, d_conv, expand: Mamba sizes. SPMamba uses 16, 4, 4.
        backend: scan backend, see :mod:`asteroid_spmamba.mamba.scan`.

    Forward: ``(batch, length, dim) -> (batch, length, output_dim)``.
    """

    def __init__(
        self,
        dim: int,
        n_layers: int = 1,
        bidirectional: bool = True,
        d_state: int = 16,
        d_conv: int = 4,
        expand: int = 4,
        eps: float = 1e-5,
        backend: Optional[str] = None,
    ):
        super().__init__()
        self.bidirectional = bidirectional
        self.output_dim = dim * (2 if bidirectional else 1)

        def stack():
            return nn.ModuleList(
                MambaResidualBlock(
                    dim,
                    Mamba(dim, d_state=d_state, d_conv=d_conv, expand=expand, backend=backend),
                    eps=eps,
                )
                for _ in range(n_layers)
            )

        self.forward_blocks = stack()
        self.backward_blocks = stack() if bidirectional else None
        # As upstream's _init_weights(n_layer): out_proj rescaled for the
        # depth of the residual stack.
        for block in self.modules():
            if isinstance(block, Mamba):
                nn.init.kaiming_uniform_(block.out_proj.weight, a=math.sqrt(5))
                with torch.no_grad():
                    block.out_proj.weight /= math.sqrt(n_layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        for block in self.forward_blocks:
            out = block(out)
        if self.backward_blocks is None:
            return out
        back = x.flip(1)
        for block in self.backward_blocks:
            back = block(back)
        return torch.cat([out, back.flip(1)], dim=-1)

    def step(self, x: torch.Tensor, state: Optional[list[MambaState]] = None):
        """Continue the sequence with ``(batch, L, dim)`` next steps -> ``(output, state)``.

        Only for a unidirectional stack (a backward direction needs the whole sequence). ``state``
        is the list of per-block states returned by the previous call (``None`` at the start).
        """
        if self.backward_blocks is not None:
            raise ValueError(
                "A bidirectional Mamba stack looks at future steps and cannot be run step by step; "
                "build it with bidirectional=False."
            )
        state = [None] * len(self.forward_blocks) if state is None else state
        new_state = []
        for block, block_state in zip(self.forward_blocks, state):
            x, block_state = block.step(x, block_state)
            new_state.append(block_state)
        return x, new_state


def set_scan_backend(model: nn.Module, backend: Optional[str]) -> nn.Module:
    """Set the scan backend of every :class:`Mamba` inside ``model`` (``None`` = automatic)."""
    for module in model.modules():
        if isinstance(module, Mamba):
            module.backend = backend
    return model
