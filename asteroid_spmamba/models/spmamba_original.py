"""Import checkpoints of the original SPMamba implementation (JusperLee/SPMamba, ``look2hear``).

The original code writes two formats:

* its serialized model, ``{"model_name": "SPMamba" | "TFGridNetMamba", "state_dict": ...,
  "model_args": ...}`` (``best_model.pth``). Its ``get_model_args`` returns a placeholder
  (``{"n_sample_rate": 2}``), so the configuration is read from the weights' shapes instead;
* a Lightning checkpoint whose ``state_dict`` keys start with ``audio_model.``.

Key map, original -> ours (everything else keeps its name under ``masker.``)::

    conv.*                                   -> masker.conv.*
    blocks.{i}.intra_mamba.{forward,backward}_blocks.{j}.{norm,mixer}.*
        -> masker.blocks.{i}.intra_seq.{forward,backward}_blocks.{j}.{norm,mixer}.*
    blocks.{i}.inter_mamba.*                 -> masker.blocks.{i}.inter_seq.*
    blocks.{i}.{intra,inter}_{norm,linear}.* -> masker.blocks.{i}.{intra,inter}_{norm,linear}.*
    blocks.{i}.attn_conv_{Q,K,V}_{h}.*       -> masker.blocks.{i}.attn_conv_{Q,K,V}_{h}.*
    blocks.{i}.attn_concat_proj.*            -> masker.blocks.{i}.attn_concat_proj.*
    deconv.*                                 -> masker.deconv.*

The Mamba parameters themselves (``in_proj``, ``conv1d``, ``x_proj``, ``dt_proj``, ``A_log``, ``D``,
``out_proj``, ``norm.weight``) have the same names and shapes as upstream ``mamba_ssm``.

What the weights cannot tell (the STFT hop, the sample rate, ``emb_hs``, ``eps``) defaults to the
published configurations (hop = n_fft / 4; 16 kHz for n_fft 512, else 8 kHz; emb_hs 1; eps 1e-5)
and can be given explicitly.
"""

import os
import re
from collections import OrderedDict
from collections.abc import Mapping
from typing import Optional, Union

import torch

from ..checkpoints import torch_file_problem
from .spmamba import SPMamba

ORIGINAL_MODEL_NAMES = ("SPMamba", "TFGridNetMamba")
LIGHTNING_PREFIX = "audio_model."


def _load(checkpoint: Union[str, os.PathLike, Mapping]) -> Mapping:
    if isinstance(checkpoint, Mapping):
        return checkpoint
    path = os.fspath(checkpoint)
    if not os.path.exists(path):
        raise FileNotFoundError(f"No checkpoint file at {path!r}")
    problem = torch_file_problem(path)
    if problem:
        raise ValueError(f"{path!r} {problem}; download or copy the original checkpoint again.")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # unpickling refused or the file is not a torch checkpoint
        raise ValueError(
            f"Could not read {path!r} as a weights-only torch checkpoint ({type(err).__name__}: "
            f"{err}). If the file is truncated, download it again. If it is a trusted Lightning "
            "checkpoint that pickles other objects, load it yourself with torch.load(path, "
            "weights_only=False) and pass the dict to convert_original."
        ) from err


def original_state_dict(
    checkpoint: Union[str, os.PathLike, Mapping],
) -> "OrderedDict[str, torch.Tensor]":
    """The original model's state dict from either format (Lightning prefix removed)."""
    ckpt = _load(checkpoint)
    if "state_dict" not in ckpt:
        raise ValueError(
            "Not an SPMamba checkpoint: expected a dict with a 'state_dict' entry (the original "
            f"serialized model or a Lightning checkpoint); found keys {sorted(ckpt)[:10]}"
        )
    name = ckpt.get("model_name")
    if name is not None and name not in ORIGINAL_MODEL_NAMES:
        raise ValueError(f"Checkpoint holds model {name!r}, expected one of {ORIGINAL_MODEL_NAMES}")
    state = ckpt["state_dict"]
    if any(k.startswith(LIGHTNING_PREFIX) for k in state):
        state = OrderedDict(
            (k[len(LIGHTNING_PREFIX) :], v)
            for k, v in state.items()
            if k.startswith(LIGHTNING_PREFIX)
        )
    return OrderedDict(state)


_RENAMES = [
    (re.compile(r"^blocks\.(\d+)\.intra_mamba\."), r"blocks.\1.intra_seq."),
    (re.compile(r"^blocks\.(\d+)\.inter_mamba\."), r"blocks.\1.inter_seq."),
]


def map_original_key(key: str) -> str:
    """Name of an original parameter in :class:`~asteroid_spmamba.SPMamba`
    (see module docstring)."""
    for pattern, replacement in _RENAMES:
        key = pattern.sub(replacement, key)
    return "masker." + key


def _count(state: Mapping, pattern: str) -> int:
    regex = re.compile(pattern)
    return len({m.group(1) for k in state for m in [regex.match(k)] if m})


def _check_blocks(state: Mapping) -> None:
    """The GridNet blocks must be numbered 0..n-1: a checkpoint with a block missing would otherwise
    load as a shallower model (a block cut short is reported by the strict load's missing keys)."""
    indices = {int(m.group(1)) for key in state for m in [re.match(r"^blocks\.(\d+)\.", key)] if m}
    missing = sorted(set(range(max(indices, default=-1) + 1)) - indices)
    if missing:
        raise ValueError(
            f"The checkpoint has GridNet blocks {sorted(indices)} but not {missing}: it is "
            "incomplete (a truncated or edited file?); use the checkpoint as trained."
        )


def infer_config(state: Mapping, **overrides) -> dict:
    """SPMamba constructor arguments read from an original state dict's shapes."""

    def shape(key):
        if key not in state:
            raise ValueError(
                f"Checkpoint is missing {key!r}; it does not look like an SPMamba model."
            )
        return tuple(state[key].shape)

    _check_blocks(state)
    emb_dim, in_ch2 = shape("conv.0.weight")[:2]
    n_src2 = shape("deconv.weight")[1]
    seq_out, _, emb_ks = shape("blocks.0.intra_linear.weight")
    mixer = "blocks.0.intra_mamba.forward_blocks.0.mixer."
    d_inner, d_state = shape(mixer + "A_log")
    d_conv = shape(mixer + "conv1d.weight")[-1]
    qk_channels, n_freqs = shape("blocks.0.attn_conv_Q_0.2.gamma")[1::2]
    n_fft = 2 * (n_freqs - 1)
    approx_qk_dim = 512 if -(-512 // n_freqs) == qk_channels else qk_channels * n_freqs
    if "blocks.0.attn_conv_Q_0.1.weight" not in state and "activation" not in overrides:
        raise ValueError(
            "The attention activation has no parameters, so it is not PReLU: pass activation=..."
        )
    config = dict(
        n_src=n_src2 // 2,
        sample_rate=16000 if n_fft == 512 else 8000,
        n_fft=n_fft,
        hop_length=n_fft // 4,
        in_channels=in_ch2 // 2,
        n_layers=_count(state, r"^blocks\.(\d+)\."),
        emb_dim=emb_dim,
        emb_ks=emb_ks,
        emb_hs=1,
        n_head=_count(state, r"^blocks\.0\.attn_conv_Q_(\d+)\."),
        approx_qk_dim=approx_qk_dim,
        activation="prelu",
        d_state=d_state,
        d_conv=d_conv,
        expand=d_inner // (emb_dim * emb_ks),
        mamba_layers=_count(state, r"^blocks\.0\.intra_mamba\.forward_blocks\.(\d+)\."),
        bidirectional=seq_out == 2 * emb_dim * emb_ks,
    )
    config.update(overrides)
    return config


def convert_original(
    checkpoint: Union[str, os.PathLike, Mapping],
    hop_length: Optional[int] = None,
    sample_rate: Optional[float] = None,
    **overrides,
) -> SPMamba:
    """Build an :class:`~asteroid_spmamba.SPMamba` from an original SPMamba checkpoint.

    Args:
        checkpoint: path to, or loaded dict of, the original serialized model (``best_model.pth``)
            or a Lightning checkpoint (keys ``audio_model.*``).
        hop_length: STFT hop of the original model (default ``n_fft // 4``, as published).
        sample_rate: its sample rate (default 16 kHz for n_fft 512, else 8 kHz, as published).
        **overrides: any other SPMamba argument the weights do not determine (``emb_hs``, ``eps``).

    Returns:
        The model in eval mode, with the original weights.

    Raises:
        ValueError: the checkpoint is not SPMamba's, or keys/shapes do not match (the message lists
            the missing and unexpected keys).
    """
    state = original_state_dict(checkpoint)
    if hop_length is not None:
        overrides["hop_length"] = hop_length
    if sample_rate is not None:
        overrides["sample_rate"] = sample_rate
    model = SPMamba(**infer_config(state, **overrides))
    mapped = OrderedDict((map_original_key(k), v) for k, v in state.items())
    expected = model.state_dict()
    missing = [k for k in expected if k not in mapped]
    unexpected = [k for k in mapped if k not in expected]
    wrong_shape = [
        f"{k}: checkpoint {tuple(mapped[k].shape)} vs model {tuple(v.shape)}"
        for k, v in expected.items()
        if k in mapped and mapped[k].shape != v.shape
    ]
    if missing or unexpected or wrong_shape:

        def listing(title, items):
            return (
                f"\n  {title} ({len(items)}): "
                + ", ".join(items[:12])
                + (" ..." if len(items) > 12 else "")
                if items
                else ""
            )

        raise ValueError(
            "The checkpoint does not match the SPMamba configuration read from it (truncated or "
            "modified file?)."
            + listing("missing keys", missing)
            + listing("unexpected keys", unexpected)
            + listing("shape mismatches", wrong_shape)
        )
    model.load_state_dict(mapped)
    return model.eval()
