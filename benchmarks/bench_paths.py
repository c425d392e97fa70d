"""Dense against graph path of ScaleGMN over sizes: where does one overtake the other? (issue 21)

For each architecture x hidden size x batch, forward + backward graphs/s of the same model (bidirectional
ScaleGMN, 2 layers, invariant head) on the dense per-layer path and on the gather/scatter graph path,
interleaved, median of ``--repeats``; prints the ratio dense/graph and the rule ``path="auto"`` applies
(:func:`scalegmn_lite.nn.scalegmn.prefer_dense`), and whether the rule picked the faster path.

    python benchmarks/bench_paths.py                 # ~5 minutes on 2 cores
    python benchmarks/bench_paths.py --quick         # fewer sizes
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from scalegmn_lite import NetworkSpec, WeightSpace
from scalegmn_lite.nn.scalegmn import ScaleGMN, ScaleGMNConfig, prefer_dense

SPECS = ("mlp 40-32-10 relu", "conv1d 1-16-16/10 k5 s2 tanh 1x40", "conv2d 1-8-8/10 k3 relu 1x8x8",
         "conv2d 1-16-16-16/10 k3 relu 1x8x8", "siren 2-32-32-1")


def rate(model, batch, steps: int) -> float:
    t0 = time.perf_counter()
    for _ in range(steps):
        model.zero_grad(set_to_none=True)
        model(batch).pow(2).mean().backward()
    return steps * batch.num_graphs / (time.perf_counter() - t0)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    hiddens, batches = ((16, 64), (8, 64)) if args.quick else ((16, 32, 64, 128), (8, 32, 64))
    print(f"threads={torch.get_num_threads()} repeats={args.repeats} (median)  forward+backward graphs/s")
    print(f"{'architecture':38s} {'hidden':>6s} {'batch':>5s} {'dense':>9s} {'graph':>9s} {'dense/graph':>11s} "
          f"{'rule':>6s} {'rule right':>10s}")
    right = total = 0
    for text in SPECS:
        spec = NetworkSpec.from_text(text)
        for hidden in hiddens:
            for b in batches:
                ws = WeightSpace.randn(spec, b, torch.Generator().manual_seed(0))
                models = {}
                for path in ("dense", "graph"):
                    torch.manual_seed(0)
                    models[path] = ScaleGMN(ScaleGMNConfig(hidden_dim=hidden, num_layers=2, bidirectional=True,
                                                           max_kernel=max(1, spec.max_kernel_numel), path=path))
                batch = models["dense"].to_graph(ws)
                for m in models.values():
                    rate(m, batch, 1)
                r = {p: [] for p in models}
                for _ in range(args.repeats):
                    for p, m in models.items():
                        r[p].append(rate(m, batch, args.steps))
                d, g = statistics.median(r["dense"]), statistics.median(r["graph"])
                rule = "dense" if prefer_dense(spec, b, hidden) else "graph"
                ok = (rule == "dense") == (d >= g) or abs(d / g - 1) < 0.03  # within noise: either is right
                right, total = right + ok, total + 1
                print(f"{text:38s} {hidden:6d} {b:5d} {d:9.1f} {g:9.1f} {d / g:10.2f}x {rule:>6s} {str(ok):>10s}")
    print(f"rule picked the faster path (or one within 3%) in {right} of {total} sizes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
