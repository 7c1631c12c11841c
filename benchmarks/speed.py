"""Inference speed and memory of SPMamba per scan backend, beside the original code and a roofline.

    python benchmarks/speed.py --seconds 1 4 --backends torch sequential
    python benchmarks/speed.py --device cuda --backends cuda torch --seconds 4 16
    SPMAMBA_ORIGINAL_DIR=/path/to/SPMamba python benchmarks/speed.py --original

Every configuration runs in its own subprocess so that the CPU peak memory (max RSS) is its own.
The roofline is the model's multiply-adds (convolutions, matmuls and the selective scan, counted
by :mod:`torch.utils.flop_counter` plus the scan's 9·B·L·D·N) divided by this machine's measured
float32 GEMM throughput: the time the model would take if all of its work ran as fast as a large
matrix product. Prints a Markdown table and writes JSON with the device and versions.
"""

import argparse
import multiprocessing as mp
import sys
import time
from typing import Optional

import torch

from asteroid_spmamba.commands.options import add_device_argument
from asteroid_spmamba.devices import resolve_device
from asteroid_spmamba.files import write_json_atomic
from asteroid_spmamba.measure import device_name, git_revision, measure_inference, sync


def gemm_throughput(device: str, size: int = 2048, repeats: int = 5) -> float:
    """Measured float32 matrix-product throughput, in multiply-adds per second."""
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    a @ b
    sync(device)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        sync(device)
        times.append(time.perf_counter() - t)
    return size**3 / min(times)


def model_macs(model: torch.nn.Module, wav: torch.Tensor) -> int:
    """Multiply-adds of one forward pass: FlopCounterMode's matmul/conv FLOPs / 2 + the scans."""
    from torch.utils.flop_counter import FlopCounterMode

    from asteroid_spmamba.mamba import Mamba
    from asteroid_spmamba.mamba.scan import scan_macs

    scan_total = [0]

    def count_scan(module, inputs, output):
        batch, length, _ = inputs[0].shape
        scan_total[0] += scan_macs(batch, length, module.d_inner, module.d_state)

    hooks = [m.register_forward_hook(count_scan) for m in model.modules() if isinstance(m, Mamba)]
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(wav)
    finally:
        for h in hooks:
            h.remove()
    return counter.get_total_flops() // 2 + scan_total[0]


def _build(kind: str, device: str):
    """Our SPMamba (Echo2Mix config) or the original one with the same weights."""
    from asteroid_spmamba import convert_original

    torch.manual_seed(0)
    ours = __import__("asteroid_spmamba").SPMamba()
    if kind == "original":
        from original_code import import_original_spmamba  # beside this file

        Original = import_original_spmamba()
        model = Original(
            input_dim=64,
            n_srcs=2,
            n_fft=512,
            stride=128,
            n_layers=6,
            lstm_hidden_units=256,
            attn_n_head=4,
            attn_approx_qk_dim=512,
            emb_dim=16,
            emb_ks=8,
            emb_hs=1,
        )
        ours = convert_original({"state_dict": model.state_dict()})  # same weights in both
        return model.to(device).eval(), ours
    return ours.to(device).eval(), ours


def _measure(
    kind: str,
    backend: Optional[str],
    seconds: float,
    device: str,
    repeats: int,
    threads: int,
    queue,
):
    torch.set_num_threads(threads)
    from asteroid_spmamba.mamba import set_scan_backend

    model, _ = _build(kind, device)
    if kind == "ours":
        set_scan_backend(model, backend)
    wav = torch.randn(1, int(16000 * seconds), device=device)
    # the first run warms up (allocator, kernels, caches); --repeats 0: that run alone is timed
    timing = measure_inference(model, wav.shape[-1], "fp32", device, max(repeats, 1), 1, wav=wav)
    peak = timing["peak_gib"]
    if peak is None:  # CPU: the peak of this (spawned) process
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
    queue.put({"time_s": timing["time_ms"] / 1000, "peak_mem_gib": peak, "runs": timing["runs"]})


def run_one(
    kind: str, backend: Optional[str], seconds: float, device: str, repeats: int, threads: int
) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(
        target=_measure, args=(kind, backend, seconds, device, repeats, threads, queue)
    )
    proc.start()
    result = queue.get()
    proc.join()
    return result


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, nargs="+", default=[1.0, 4.0])
    parser.add_argument(
        "--backends", nargs="+", default=["torch"], help="scan backends of our model"
    )
    parser.add_argument(
        "--original",
        action="store_true",
        help="also time the original code ($SPMAMBA_ORIGINAL_DIR)",
    )
    add_device_argument(parser)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=1, help="timed runs after one warm-up run")
    parser.add_argument("--json", default=None, help="write the results here")
    args = parser.parse_args(argv)
    args.device = str(resolve_device(args.device))
    torch.set_num_threads(args.threads)

    gemm = gemm_throughput(args.device)
    model = __import__("asteroid_spmamba").SPMamba().to(args.device).eval()
    rows = []
    configs = [("ours", b) for b in args.backends] + ([("original", None)] if args.original else [])
    for seconds in args.seconds:
        macs = model_macs(model, torch.randn(1, int(16000 * seconds), device=args.device))
        for kind, backend in configs:
            res = run_one(kind, backend, seconds, args.device, args.repeats, args.threads)
            res.update(
                model=("SPMamba (ours)" if kind == "ours" else "original SPMamba"),
                backend=backend or "mamba_ssm ref",
                seconds=seconds,
                gmacs=macs / 1e9,
                roofline_s=macs / gemm,
                rtf=res["time_s"] / seconds,
            )
            rows.append(res)
            print(
                f"{res['model']:18s} {res['backend']:14s} {seconds:5.1f} s: {res['time_s']:8.2f} s "
                f"(RTF {res['rtf']:.2f}, peak {res['peak_mem_gib']:.2f} GiB)",
                flush=True,
            )
    name = device_name(args.device)
    print(
        f"\nDevice: {args.device} ({name}), {args.threads} threads, torch {torch.__version__}; "
        f"float32 GEMM {gemm / 1e9:.1f} GMAC/s"
    )
    print(
        "\n| model | backend | audio (s) | time (s) | RTF | peak mem (GiB) | GMACs | "
        "roofline (s) | time / roofline |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['model']} | {r['backend']} | {r['seconds']:g} | {r['time_s']:.2f} | "
            f"{r['rtf']:.2f} | {r['peak_mem_gib']:.2f} | {r['gmacs']:.1f} | {r['roofline_s']:.2f} "
            f"| {r['time_s'] / r['roofline_s']:.1f} |"
        )
    if args.json:
        meta = dict(
            device=args.device,
            device_name=name,
            threads=args.threads,
            torch=torch.__version__,
            cuda=torch.version.cuda,
            git_revision=git_revision(),
            gemm_gmacs_per_s=gemm / 1e9,
        )
        write_json_atomic(args.json, {"meta": meta, "rows": rows}, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
