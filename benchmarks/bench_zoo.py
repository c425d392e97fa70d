"""Networks per second: N networks trained together (``train_batched``) vs a per-network Python
loop (``train_loop``: torch.nn modules + torch.optim) on the same work (1 epoch of SGD on the data
set per network, per-network seeds, lr and weight decay).

The loop is timed on ``--loop-subset`` networks and its per-network time extrapolated (the loop's
cost is linear in N by construction). Ratio = batched networks/s / loop networks/s.

    python benchmarks/bench_zoo.py                       # CPU, MLP and Conv2d, N = 64, 256, 1024
    python benchmarks/bench_zoo.py --device cuda --sizes 256 1024 4096
"""

from __future__ import annotations

import argparse
import time

import torch

from scalegmn_lite.common.config import resolve_device
from scalegmn_lite.weightspace.spec import NetworkSpec
from scalegmn_lite.zoo.data import load_dataset
from scalegmn_lite.zoo.train import init_weights, train_batched, train_loop

ARCHS = {"mlp": ("digits", "mlp 64-32-10 relu"), "conv2d": ("digits", "conv2d 1-8-8/10 k3 relu 1x8x8"),
         "conv1d": ("mnist1d", "conv1d 1-8-8/10 k3 s2 relu 1x40"), "mlp1d": ("mnist1d", "mlp 40-32-32-10 relu")}


def _sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--archs", nargs="*", default=["mlp", "conv2d"], choices=sorted(ARCHS))
    ap.add_argument("--sizes", nargs="*", type=int, default=[64, 256, 1024])
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--loop-subset", type=int, default=8)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: leave default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = resolve_device(args.device)
    print(f"device={dev} threads={torch.get_num_threads()} batch={args.batch_size} work=1 epoch per network")
    print(f"{'arch':8s} {'N':>6s} {'batched net/s':>14s} {'loop net/s':>11s} {'ratio':>7s}")
    for arch in args.archs:
        name, text = ARCHS[arch]
        data = load_dataset(name, device=dev)
        spec = NetworkSpec.from_text(text)
        # loop: per-network time on a small subset (extrapolated per network)
        k = args.loop_subset
        ws = init_weights(spec, list(range(k)), 1.0, device=dev)
        train_loop(ws, data, 1, 0.05, 1e-4, args.batch_size, seeds=list(range(k)), networks=[0], max_steps=3)
        _sync(dev)
        t0 = time.perf_counter()
        train_loop(ws, data, 1, 0.05, 1e-4, args.batch_size, seeds=list(range(k)))
        _sync(dev)
        loop_rate = k / (time.perf_counter() - t0)
        for n in args.sizes:
            seeds = list(range(n))
            ws = init_weights(spec, seeds, torch.linspace(0.5, 2, n), device=dev)
            lr, wd = torch.logspace(-3, -0.5, n), torch.full((n,), 1e-4)
            train_batched(ws, data, 1, lr, wd, args.batch_size, seeds=seeds, progress=False, max_steps=2)
            _sync(dev)
            t0 = time.perf_counter()
            train_batched(ws, data, 1, lr, wd, args.batch_size, seeds=seeds, progress=False)
            _sync(dev)
            rate = n / (time.perf_counter() - t0)
            print(f"{arch:8s} {n:6d} {rate:14.2f} {loop_rate:11.2f} {rate / loop_rate:7.1f}x", flush=True)


if __name__ == "__main__":
    main()
