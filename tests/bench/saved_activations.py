"""Where training memory goes: bytes autograd keeps for the backward pass, by module, for this
package's SPMamba (as built: default paths and scan backend) and the original code with the same
weights. Run on the GPU with the original's kernels installed:

    python tests/bench/saved_activations.py --original-dir /path/to/SPMamba [--seconds 3]
        [--batch 1]

Prints, per module class, the saved bytes of each model (tensors counted once per storage) and the
peak memory of one forward + backward.
"""

import argparse
import collections
import os
import sys

import torch

from asteroid_spmamba import SPMamba, convert_original

sys.path.insert(
    0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "benchmarks")
)
from original_code import build_original, import_original_spmamba  # noqa: E402


def saved_by_module(model: torch.nn.Module, wav: torch.Tensor):
    """(bytes per innermost module class, peak GiB) of one training forward + backward."""
    stack = ["(top)"]
    hooks = []

    def enter(module, args):
        stack.append(type(module).__name__)

    def leave(
        module, args, output
    ):  # must return None: a forward hook's return value replaces the output
        stack.pop()

    for module in model.modules():
        hooks.append(module.register_forward_pre_hook(enter))
        hooks.append(module.register_forward_hook(leave))
    seen, by_class = set(), collections.Counter()

    def pack(t):
        key = (t.untyped_storage().data_ptr(), t.dtype)
        if key not in seen:
            seen.add(key)
            by_class[stack[-1]] += t.untyped_storage().nbytes()
        return t

    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = model(wav)
    out.float().square().mean().backward()
    for h in hooks:
        h.remove()
    peak = (torch.cuda.max_memory_allocated() - base) / 2**30
    model.zero_grad(set_to_none=True)
    return by_class, peak


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--original-dir", required=True)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--batch", type=int, default=1)
    args = parser.parse_args()
    device = torch.device("cuda")
    original_cls = import_original_spmamba(args.original_dir, device)
    config = SPMamba().get_model_args()
    torch.manual_seed(0)
    original = build_original(original_cls, config).to(device).train()
    ours = (
        convert_original(
            {"state_dict": original.state_dict()},
            hop_length=config["hop_length"],
            sample_rate=config["sample_rate"],
        )
        .to(device)
        .train()
    )
    wav = torch.randn(args.batch, int(args.seconds * config["sample_rate"]), device=device)
    rows = {}
    for label, model in (("ours", ours), ("original", original)):
        by_class, peak = saved_by_module(model, wav)
        rows[label] = (by_class, peak)
    classes = sorted(
        set(rows["ours"][0]) | set(rows["original"][0]),
        key=lambda c: -max(rows["ours"][0][c], rows["original"][0][c]),
    )
    print(f"\nSaved for backward, batch {args.batch} x {args.seconds} s, fp32 (MiB)\n")
    print("| module | ours | original |\n|---|---:|---:|")
    for c in classes:
        print(f"| {c} | {rows['ours'][0][c] / 2**20:.0f} | {rows['original'][0][c] / 2**20:.0f} |")
    print(
        f"| **total** | {sum(rows['ours'][0].values()) / 2**20:.0f} | "
        f"{sum(rows['original'][0].values()) / 2**20:.0f} |"
    )
    print(
        f"\npeak of one forward+backward: ours {rows['ours'][1]:.2f} GiB, original "
        f"{rows['original'][1]:.2f} GiB"
    )


if __name__ == "__main__":
    main()
