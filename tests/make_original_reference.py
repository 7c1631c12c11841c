"""Write tests/fixtures/original_spmamba_small.pt: a small original SPMamba,
an input and its output.

Usage: SPMAMBA_ORIGINAL_DIR=/path/to/SPMamba python tests/make_original_reference.py
The weights are perturbed away from their initial values (every tensor gets noise), so that
normalisation gains, biases and the Mamba's A/D/dt all matter in the comparison.
"""

import os
import sys

import torch

sys.path.insert(
    0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks")
)
from original_code import import_original_spmamba  # noqa: E402

# Small enough for a fast CPU test, yet every code path of the model: 2 blocks, 2 heads, emb_ks 2.
SMALL_CONFIG = dict(
    input_dim=64,
    n_srcs=2,
    n_fft=64,
    stride=16,
    window="hann",
    n_imics=1,
    n_layers=2,
    lstm_hidden_units=32,
    attn_n_head=2,
    attn_approx_qk_dim=64,
    emb_dim=8,
    emb_ks=2,
    emb_hs=1,
    activation="prelu",
    eps=1.0e-5,
    use_builtin_complex=False,
    sample_rate=8000,
)


def main() -> None:
    torch.manual_seed(0)
    Original = import_original_spmamba()
    model = Original(**SMALL_CONFIG).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    mixture = torch.randn(2, 1600)
    with torch.no_grad():
        output = model(mixture)
    out = os.path.join(os.path.dirname(__file__), "fixtures", "original_spmamba_small.pt")
    torch.save(
        {
            "serialized": {
                "model_name": "SPMamba",
                "state_dict": model.state_dict(),
                "model_args": model.get_model_args(),
            },
            "config": SMALL_CONFIG,
            "mixture": mixture,
            "output": output,
        },
        out,
    )
    print(
        f"wrote {out}: output {tuple(output.shape)}, {sum(p.numel() for p in model.parameters())} "
        "parameters"
    )


if __name__ == "__main__":
    main()
