"""Forward+backward throughput (graphs/s) of ScaleGMN (forward and bidirectional) against the GMN
baseline (mode="permutation") on a batch of zoo-like graphs, and of the dense per-layer path against
the graph path (``ScaleGMNConfig(path=...)``) for the same model; all measured in one run, variants
interleaved, median of ``--repeats``.

    python benchmarks/bench_metanet.py                      # CPU, conv2d 1-8-8/10 k3 relu, batch 64
    python benchmarks/bench_metanet.py --device cuda --hidden 128 --layers 4
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from scalegmn_lite import NetworkSpec, WeightSpace
from scalegmn_lite.common.config import resolve_device
from scalegmn_lite.nn.scalegmn import ScaleGMN, ScaleGMNConfig


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def bench(models: dict, batch, steps: int, repeats: int, device: torch.device) -> dict[str, float]:
    """Graphs per second (median over ``repeats`` interleaved rounds of ``steps`` steps) for forward +
    backward of a squared-output loss, per model."""
    def step(model):
        model.zero_grad(set_to_none=True)
        model(batch).pow(2).mean().backward()

    for model in models.values():  # warm-up
        for _ in range(2):
            step(model)
    times = {name: [] for name in models}
    for _ in range(repeats):
        for name, model in models.items():
            _sync(device)
            t0 = time.perf_counter()
            for _ in range(steps):
                step(model)
            _sync(device)
            times[name].append(time.perf_counter() - t0)
    return {name: steps * batch.num_graphs / statistics.median(t) for name, t in times.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spec", default="conv2d 1-8-8/10 k3 relu 1x8x8")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args(argv)
    device = resolve_device(args.device)
    spec = NetworkSpec.from_text(args.spec)
    ws = WeightSpace.randn(spec, args.batch, torch.Generator().manual_seed(0))
    variants = {
        "gmn": dict(mode="permutation"),
        "scalegmn": dict(mode="auto"),
        "scalegmn-bidir": dict(mode="auto", bidirectional=True),
        "scalegmn-graph": dict(mode="auto", path="graph"),
        "scalegmn-bidir-graph": dict(mode="auto", bidirectional=True, path="graph"),
    }
    models = {}
    for name, kw in variants.items():
        torch.manual_seed(0)
        cfg = ScaleGMNConfig(hidden_dim=args.hidden, num_layers=args.layers, max_kernel=spec.max_kernel_numel, **kw)
        models[name] = ScaleGMN(cfg).to(device)
    batch = models["gmn"].to_graph(ws)
    rates = bench(models, batch, args.steps, args.repeats, device)
    print(f"device={device} spec={args.spec!r} batch={args.batch} hidden={args.hidden} layers={args.layers} "
          f"vertices/graph={spec.num_vertices} edges/graph={spec.num_edges} repeats={args.repeats}")
    for name, r in rates.items():
        print(f"{name:22s} {r:9.1f} graphs/s (forward+backward)   cost vs gmn: {rates['gmn'] / r:.2f}x")
    worst = max(rates["gmn"] / rates[n] for n in ("scalegmn", "scalegmn-bidir"))
    print(f"worst cost ratio vs gmn {worst:.2f}x (target <= 1.5x): {'OK' if worst <= 1.5 else 'ABOVE TARGET'}")
    for name in ("scalegmn", "scalegmn-bidir"):
        print(f"dense vs graph path, {name}: {rates[name] / rates[name + '-graph']:.2f}x faster")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
