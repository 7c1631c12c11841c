"""Training step time of SPMamba (Echo2Mix configuration) with fused and unfused Adam, under the
precisions the recipes use, with the recipes' gradient clipping (max norm 5), and the optimizer
update alone. Prints a markdown table; run on the GPU (falls back to the CPU with a small model).

    python tests/bench/optimizer_step.py [--seconds 3] [--batch 1] [--repeats 20]
"""

import argparse
import time

import torch

from asteroid_spmamba import SPMamba
from asteroid_spmamba.masknn.gridnet import set_fast_paths
from asteroid_spmamba.measure import autocast, sync


def measure(model, fused: bool, dtype, batch: int, samples: int, repeats: int, device) -> tuple:
    """Median milliseconds of (whole step, optimizer update alone)."""
    optimizer = torch.optim.Adam(
        model.parameters(), lr=1e-5, fused=fused, foreach=None if fused else True
    )
    mixture = torch.randn(batch, samples, device=device)
    targets = torch.randn(batch, 2, samples, device=device)
    steps, updates = [], []
    for i in range(repeats + 3):
        sync(device)
        t0 = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        with autocast(dtype, device):
            est = model(mixture)
        loss = (est.float() - targets).square().mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        sync(device)
        t1 = time.perf_counter()
        optimizer.step()
        sync(device)
        t2 = time.perf_counter()
        if i >= 3:
            steps.append(t2 - t0)
            updates.append(t2 - t1)

    def med(v):
        return 1e3 * sorted(v)[len(v) // 2]

    return med(steps), med(updates)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = (
        SPMamba() if device.type == "cuda" else SPMamba(n_layers=1, emb_dim=16, sample_rate=8000)
    )
    model = set_fast_paths(model).to(device).train()
    samples = int(args.seconds * model.sample_rate)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(
        f"{name}, torch {torch.__version__}, batch {args.batch} x {args.seconds} s, "
        f"{sum(p.numel() for p in model.parameters()):,} parameters, median of {args.repeats}"
    )
    print("| precision | Adam | step (ms) | update alone (ms) |\n|---|---|---:|---:|")
    dtypes = {"32-true": None, "bf16-mixed": torch.bfloat16}
    for label, dtype in dtypes.items():
        for fused in (True, False):
            step, update = measure(model, fused, dtype, args.batch, samples, args.repeats, device)
            print(f"| {label} | {'fused' if fused else 'foreach'} | {step:.1f} | {update:.2f} |")


if __name__ == "__main__":
    main()
