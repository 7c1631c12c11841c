"""Write tests/fixtures/original_baselines_small.pt: small A-FRCNN, TDANet and BSRNN of the authors'
code, with perturbed weights, an input and their outputs, for tests/test_baselines.py.

Usage: SONICSIM_DIR=/path/to/SonicSim python tests/make_baseline_references.py

SONICSIM_DIR is a checkout of JusperLee/SonicSim; its ``separation/look2hear/models/`` files
``afrcnn.py``, ``TDANet.py``, ``bsrnn.py`` and ``base_model.py`` are imported as they are (nothing
of them is stored here). Every parameter gets noise, so that normalisation gains, biases and PReLU
slopes matter in the comparison. The state dicts are stored under our parameter names.
"""

import importlib
import os
import sys
import types

import torch

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "original_baselines_small.pt")

# Small configurations that still take every code path: depth >= 3 (middle fusion levels, and for
# TDANet the authors' coarse-to-fine indexing), several iterations, odd input length (padding).
AFRCNN_THEIRS = dict(
    out_channels=16,
    in_channels=24,
    num_blocks=3,
    upsampling_depth=3,
    enc_kernel_size=9,
    enc_num_basis=16,
    num_sources=2,
)
AFRCNN_OURS = dict(
    n_src=2,
    sample_rate=8000,
    kernel_size=9,
    n_filters=16,
    bn_chan=16,
    hid_chan=24,
    depth=3,
    n_iter=3,
)
TDANET_THEIRS = dict(
    out_channels=16,
    in_channels=32,
    num_blocks=3,
    upsampling_depth=4,
    enc_kernel_size=2,
    num_sources=2,
    sample_rate=8000,
)  # kernel 2 ms = 16 samples, 9 filters
TDANET_OURS = dict(
    n_src=2,
    sample_rate=8000,
    kernel_size=16,
    n_filters=9,
    bn_chan=16,
    hid_chan=32,
    depth=4,
    n_iter=3,
    n_heads=8,
)
# The authors' band split needs >= 1 bin per 50 Hz: n_fft >= 320 at 16 kHz.
BSRNN_THEIRS = dict(
    sample_rate=16000, win=320, stride=80, feature_dim=8, num_repeat=2, num_output=2
)
BSRNN_OURS = dict(n_src=2, sample_rate=16000, n_fft=320, hop_length=80, feature_dim=8, n_repeats=2)


def import_sonicsim_models(sonicsim_dir: str) -> types.ModuleType:
    """The authors' model modules as a package, without running their ``__init__`` (which imports
    every model of the repository and their dependencies)."""
    models_dir = os.path.join(sonicsim_dir, "separation", "look2hear", "models")
    if not os.path.isdir(models_dir):
        raise FileNotFoundError(
            f"{models_dir} not found: set SONICSIM_DIR to a checkout of JusperLee/SonicSim"
        )
    package = types.ModuleType("sonicsim_models")
    package.__path__ = [models_dir]
    sys.modules["sonicsim_models"] = package
    for name in ("afrcnn", "TDANet", "bsrnn"):
        setattr(package, name, importlib.import_module(f"sonicsim_models.{name}"))
    return package


def perturbed(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g))
    return model.eval()


def main() -> None:
    theirs = import_sonicsim_models(os.environ.get("SONICSIM_DIR", ""))
    torch.manual_seed(0)
    mixture = torch.randn(2, 1203)
    refs = {"mixture": mixture}
    with torch.no_grad():
        afrcnn = perturbed(theirs.afrcnn.AFRCNN(**AFRCNN_THEIRS), 1)
        refs["AFRCNN"] = dict(
            model_args=AFRCNN_OURS, state_dict=afrcnn.state_dict(), output=afrcnn(mixture[:, None])
        )

        tdanet = perturbed(theirs.TDANet.TDANet(**TDANET_THEIRS), 2)
        state = {k: v for k, v in tdanet.state_dict().items() if not k.endswith("pos_enc.pe")}
        legacy = tdanet(mixture)  # released code: attention across the batch
        tdanet.sm.unet.globalatt.attn.attn.batch_first = True  # attention across frames
        refs["TDANet"] = dict(
            model_args=TDANET_OURS,
            state_dict=state,
            output=tdanet(mixture),
            output_batch_attention=legacy,
        )

        bsrnn = perturbed(theirs.bsrnn.BSRNN(**BSRNN_THEIRS), 3)
        refs["BSRNN"] = dict(
            model_args=BSRNN_OURS,
            state_dict={f"masker.{k}": v for k, v in bsrnn.state_dict().items()},
            output=bsrnn(mixture),
        )
    tmp = FIXTURE + ".tmp"
    torch.save(refs, tmp)
    os.replace(tmp, FIXTURE)
    print(f"wrote {FIXTURE}")


if __name__ == "__main__":
    main()
