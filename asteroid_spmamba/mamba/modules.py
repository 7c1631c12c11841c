"""Mamba-1 block in PyTorch, with the parameter names of ``mamba_ssm.modules.mamba_simple.Mamba``.

Parameter names and shapes are a contract: a state dict of upstream ``Mamba`` loads into
:class:`Mamba` unchanged (``in_proj``, ``conv1d``, ``x_proj``, ``dt_proj``, ``A_log``, ``D``,
``out_proj``), and :class:`MambaResidualBlock` matches upstream ``Block`` with ``fused_add_norm=False``
and no MLP (``norm``, ``mixer``).
"""

import math
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from .cpu_scan import causal_conv1d_silu_time_major, selective_scan_time_major
from .scan import (
    _cuda_kernels,
    resolve_backend,
    selective_scan,
    selective_scan_chunked,
    selective_scan_cpu,
)

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

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        seqlen = hidden_states.shape[1]
        xz = self.in_proj(hidden_states).transpose(1, 2)  # (B, 2*d_inner, L)
        # A, D and the dt bias stay in float32 (float64 for a float64 model) under autocast.
        fp = torch.float64 if self.A_log.dtype == torch.float64 else torch.float32
        A = -torch.exp(self.A_log.to(fp))
        D, dt_bias = self.D.to(fp), self.dt_proj.bias.to(fp)
        backend = resolve_backend(self.backend, xz.device)
        if backend == "cpu":
            return self._forward_cpu(xz.transpose(1, 2), A, D, dt_bias)
        kernels = _cuda_kernels() if backend == "cuda" else None
        if kernels is not None and self.use_fast_path and kernels["causal_conv1d_fn"] is not None:
            return kernels["mamba_inner_fn"](
                xz,
                self.conv1d.weight,
                self.conv1d.bias,
                self.x_proj.weight,
                self.dt_proj.weight,
                self.out_proj.weight,
                self.out_proj.bias,
                A,
                None,
                None,
                D,
                delta_bias=dt_bias,
                delta_softplus=True,
            )
        if backend == "triton":
            x, z = _SplitInProj.apply(xz.transpose(1, 2), self.d_inner)
            if fp == torch.float32:  # float64 models run the scan in the torch backend (below)
                y = _TritonMambaInner.apply(
                    x,
                    z,
                    self.conv1d.weight[:, 0],
                    self.conv1d.bias,
                    self.x_proj.weight,
                    self.dt_proj.weight,
                    A,
                    D,
                    dt_bias,
                    self.dt_rank,
                    self.d_state,
                )
                return self.out_proj(y.transpose(1, 2))
        else:
            x, z = xz.chunk(2, dim=1)
        if kernels is not None and kernels["causal_conv1d_fn"] is not None:
            x = kernels["causal_conv1d_fn"](
                x, self.conv1d.weight.squeeze(1), self.conv1d.bias, activation="silu"
            )
        elif backend == "triton":
            # x arrives channel-contiguous (a slice of in_proj's output), and the Triton convolution
            # keeps it so, which the Triton scan reads one step at a time
            from .triton_scan import causal_conv1d_silu_triton

            x = causal_conv1d_silu_triton(x, self.conv1d.weight[:, 0], self.conv1d.bias)
        else:
            x = F.silu(self.conv1d(x)[..., :seqlen])
        x_dbl = self.x_proj(x.transpose(1, 2))  # (B, L, dt_rank + 2N)
        dt, B, C = torch.split(x_dbl, [self.dt_rank, self.d_state, self.d_state], dim=-1)
        dt = F.linear(dt, self.dt_proj.weight).transpose(1, 2)  # bias goes into the scan
        y = selective_scan(
            x,
            dt,
            A,
            B.transpose(1, 2),
            C.transpose(1, 2),
            D,
            z=z,
            delta_bias=dt_bias,
            delta_softplus=True,
            backend=backend,
        )
        return self.out_proj(y.transpose(1, 2))

    def _forward_cpu(self, xz: torch.Tensor, A, D, dt_bias) -> torch.Tensor:
        """CPU path on time-major tensors, no transposes: the fused causal convolution and the fused
        scan read the x and z halves of ``xz (B, L, 2*d_inner)`` in place."""
        # the kernels compute in float32 (float64 for a float64 model); under autocast the
        # projections run in the autocast dtype and the kernels cast their inputs
        x, z = xz.split(self.d_inner, dim=-1)
        x = causal_conv1d_silu_time_major(x, self.conv1d.weight[:, 0], self.conv1d.bias)
        x_dbl = self.x_proj(x)
        dt, B, C = torch.split(x_dbl, [self.dt_rank, self.d_state, self.d_state], dim=-1)
        dt = F.linear(dt, self.dt_proj.weight)  # (B, L, d_inner); the bias goes into the scan
        y, _ = selective_scan_time_major(
            x, dt, A, B, C, D, z=z, delta_bias=dt_bias, delta_softplus=True
        )
        return self.out_proj(y)

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
        """Continue a sequence: ``(batch, L, d_model)`` next steps (``L >= 1``) -> ``(output, state)``.

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
            scan = (
                selective_scan_cpu
                if resolve_backend(self.backend, x.device) == "cpu"
                else selective_scan_chunked
            )
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
    """``x + mixer(norm(x))``: upstream ``Block`` (no MLP, unfused add+norm) with the residual added."""

    def __init__(self, dim: int, mixer: nn.Module, eps: float = 1e-5):
        super().__init__()
        self.norm = RMSNorm(dim, eps=eps)
        self.mixer = mixer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.mixer(self.norm(x))

    def step(self, x: torch.Tensor, state: Optional[MambaState] = None):
        """Stateful :meth:`forward` on the next ``(batch, L, dim)`` steps; see :meth:`Mamba.step`."""
        out, state = self.mixer.step(self.norm(x), state)
        return x + out, state


def _inner_front(
    x, conv_weight, conv_bias, x_proj_weight, dt_proj_weight, dt_rank: int, d_state: int
):
    """Convolution, x_proj and dt_proj of the Triton path: the scan's u, delta, B, C."""
    from .triton_scan import causal_conv1d_silu_triton

    u = causal_conv1d_silu_triton(x, conv_weight, conv_bias)
    x_dbl = F.linear(u.transpose(1, 2), x_proj_weight)  # (B, L, dt_rank + 2N)
    dt, B, C = torch.split(x_dbl, [dt_rank, d_state, d_state], dim=-1)
    delta = F.linear(dt, dt_proj_weight).transpose(1, 2)  # bias goes into the scan
    return u, delta, B.transpose(1, 2), C.transpose(1, 2)


class _TritonMambaInner(torch.autograd.Function):
    """Convolution -> x_proj -> dt_proj -> selective scan on the Triton kernels, keeping for the backward
    pass only the inputs (``x`` and ``z``, views of in_proj's output, and the weights), like mamba_ssm's
    ``mamba_inner_fn``. The backward recomputes the convolution and the projections (cheap) but not the
    scan's output; composing the same operations under autograd would also keep the convolution's output
    and ``delta``, two ``(B, d_inner, L)`` tensors per call. Same values and gradients as that composition.
    """

    @staticmethod
    @torch.amp.custom_fwd(device_type="cuda")
    def forward(
        ctx,
        x,
        z,
        conv_weight,
        conv_bias,
        x_proj_weight,
        dt_proj_weight,
        A,
        D,
        dt_bias,
        dt_rank,
        d_state,
    ):
        from .triton_scan import scan_forward

        with torch.no_grad():
            u, delta, B, C = _inner_front(
                x, conv_weight, conv_bias, x_proj_weight, dt_proj_weight, dt_rank, d_state
            )
            out = scan_forward(u, delta, A, B, C, D, z, dt_bias, True)
        ctx.save_for_backward(
            x, z, conv_weight, conv_bias, x_proj_weight, dt_proj_weight, A, D, dt_bias
        )
        ctx.sizes = (dt_rank, d_state)
        return out

    @staticmethod
    @torch.amp.custom_bwd(
        device_type="cuda"
    )  # the recomputation runs under the forward's autocast state
    def backward(ctx, gout):
        from .triton_scan import scan_backward

        x, z, conv_weight, conv_bias, x_proj_weight, dt_proj_weight, A, D, dt_bias = (
            ctx.saved_tensors
        )
        x_, w_, b_, xw_, dw_ = (
            t.detach().requires_grad_() if t is not None else None
            for t in (x, conv_weight, conv_bias, x_proj_weight, dt_proj_weight)
        )
        with torch.enable_grad():
            u, delta, B, C = _inner_front(x_, w_, b_, xw_, dw_, *ctx.sizes)
        g = scan_backward(
            u.detach(), delta.detach(), A, B.detach(), C.detach(), D, z, dt_bias, True, gout, None
        )
        front = [
            (t, g[k])
            for t, k in ((u, "du"), (delta, "ddelta"), (B, "dB"), (C, "dC"))
            if g[k] is not None
        ]
        torch.autograd.backward([t for t, _ in front], [grad for _, grad in front])
        return (
            x_.grad,
            g["dz"],
            w_.grad,
            b_.grad if b_ is not None else None,
            xw_.grad,
            dw_.grad,
            g["dA"],
            g["dD"],
            g["dbias"],
            None,
            None,
        )


class _SplitInProj(torch.autograd.Function):
    """The x and z halves of in_proj's ``(B, L, 2 * d_inner)`` output as ``(B, d_inner, L)`` views.

    Same values and gradients as ``rows.transpose(1, 2).chunk(2, dim=1)``; the backward writes both
    halves' gradients straight into one ``(B, L, 2 * d_inner)`` tensor, the layout in_proj's backward
    reads. (Through chunk, autograd concatenates them in ``(B, 2 * d_inner, L)`` order and the linear
    layer's backward then copies that once more: two full copies per Mamba block, 13% of a bf16
    training step of the Echo2Mix model on an H100.)
    """

    @staticmethod
    def forward(ctx, rows: torch.Tensor, d_inner: int):
        ctx.d_inner = d_inner
        cols = rows.transpose(1, 2)
        return cols[:, :d_inner], cols[:, d_inner:]

    @staticmethod
    def backward(ctx, gx, gz):
        d = ctx.d_inner
        ref = gx if gx is not None else gz
        grad = torch.empty(ref.shape[0], ref.shape[2], 2 * d, device=ref.device, dtype=ref.dtype)
        for half, g in ((grad[..., :d], gx), (grad[..., d:], gz)):
            if g is None:
                half.zero_()
            else:
                half.copy_(g.transpose(1, 2))
        return grad, None


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
        # As upstream's _init_weights(n_layer): out_proj rescaled for the depth of the residual stack.
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
