"""Forward+backward throughput (graphs/s) of ScaleGMN (forward and bidirectional) against the GMN
baseline (mode="permutation") on a batch of zoo-like graphs, measured in one run.

    python benchmarks/bench_metanet.py                      # CPU, conv2d 1-8-8/10 k3 relu, batch 64
    python benchmarks/bench_metanet.py --device cuda --hidden 128 --layers 4
"""

from __future__ import annotations

import argparse
import time

import torch

from scalegmn_lite import NetworkSpec, WeightSpace
from scalegmn_lite.common.config import resolve_device
from scalegmn_lite.nn.scalegmn import ScaleGMN, ScaleGMNConfig


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def bench(model: ScaleGMN, batch, steps: int, device: torch.device) -> float:
    """Graphs per second for forward + backward of a squared-output loss."""
    def step():
        model.zero_grad(set_to_none=True)
        model(batch).pow(2).mean().backward()

    for _ in range(2):
        step()
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    return steps * batch.num_graphs / (time.perf_counter() - t0)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spec", default="conv2d 1-8-8/10 k3 relu 1x8x8")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args(argv)
    device = resolve_device(args.device)
    torch.manual_seed(0)
    spec = NetworkSpec.from_text(args.spec)
    ws = WeightSpace.randn(spec, args.batch, torch.Generator().manual_seed(0))
    variants = {
        "gmn": dict(mode="permutation"),
        "scalegmn": dict(mode="auto"),
        "scalegmn-bidir": dict(mode="auto", bidirectional=True),
    }
    rates = {}
    for name, kw in variants.items():
        cfg = ScaleGMNConfig(hidden_dim=args.hidden, num_layers=args.layers, max_kernel=spec.max_kernel_numel, **kw)
        model = ScaleGMN(cfg).to(device)
        batch = model.to_graph(ws)
        rates[name] = bench(model, batch, args.steps, device)
    print(f"device={device} spec={args.spec!r} batch={args.batch} hidden={args.hidden} layers={args.layers} "
          f"vertices/graph={spec.num_vertices} edges/graph={spec.num_edges}")
    for name, r in rates.items():
        print(f"{name:16s} {r:9.1f} graphs/s (forward+backward)   cost vs gmn: {rates['gmn'] / r:.2f}x")
    worst = max(rates["gmn"] / rates[n] for n in ("scalegmn", "scalegmn-bidir"))
    print(f"worst cost ratio {worst:.2f}x (target <= 1.5x): {'OK' if worst <= 1.5 else 'ABOVE TARGET'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
