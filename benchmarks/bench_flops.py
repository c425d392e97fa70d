"""How close the metanetwork trainers come to the core's limit (issue 37): time and FLOPs per training step, and the
achieved FLOP/s as a share of this core's dense-matmul rate, measured in the same run, for this checkout and a git
revision (default f018134, unpacked in a temporary folder), at the quick and reference sizes of the studies.

One thread (one core). Per trainer and size, in a fresh process per code version:

* **time per step**: ``(t(k2 steps) - t(k1 steps)) / (k2 - k1)`` of one training call, so set-up is not counted
  (invariant: epochs of 32 steps, validation included, divided by 32);
* **FLOPs per step**: ``torch.utils.flop_counter.FlopCounterMode`` over the same two calls, differenced (matrix
  products and convolutions, forward and backward; elementwise work is not counted, as in the issue's table);
* **share of peak**: achieved FLOP/s over a 1024 x 1024 float32 matmul's FLOP/s on the same thread, measured in the
  same process.

Sizes (the studies' settings):

* operator quick: ScaleGMN-B operator hidden 16, 2 layers, 8 networks x 256 examples of tanh ``conv1d 1-16-16/10 k5
  s2``; reference: hidden 32, 3 layers, 16 networks;
* invariant quick: ScaleGMN hidden 24, 2 layers, batch 32 of ReLU ``conv1d 1-16-16/10 k5 s2`` (1024 training
  networks, 128 validation); reference: hidden 32, 3 layers;
* autoencoder (merging, quick and reference alike): ScaleGMN encoder hidden 32, 3 layers, latent 64, decoder
  512-512, batch 32 of ``siren 2-32-32-1``, 16 x 16 renderings.

    python benchmarks/bench_flops.py                        # about 10 minutes on one core
    python benchmarks/bench_flops.py --only operator-quick --repeats 1
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_training import _unpack  # the same unpacking of a revision into a temporary folder

ROOT = Path(__file__).resolve().parents[1]
CASES = ("operator-quick", "operator-reference", "invariant-quick", "invariant-reference", "autoencoder")
#: (k1, k2): the two training lengths whose difference is measured (invariant: epochs)
LENGTHS = {"operator": (2, 12), "invariant": (1, 3), "autoencoder": (2, 12)}
STEPS_PER_EPOCH = 32  # invariant: 1024 training networks in batches of 32


def _setup(case: str):
    """A closure ``run(k)`` training ``k`` steps (invariant: epochs) of ``case`` from the same start."""
    import torch

    from scalegmn_lite import NetworkSpec, WeightSpace

    g = torch.Generator().manual_seed(1234)
    kind, _, size = case.partition("-")
    ref = size == "reference"
    if kind == "operator":
        from scalegmn_lite.tasks.amortized.operator import AmortizedOperator, OperatorTrainConfig, train_operator
        from scalegmn_lite.tasks.amortized.protocol import operator_overrides

        spec = NetworkSpec.from_text("conv1d 1-16-16/10 k5 s2 tanh 1x40")
        ws = WeightSpace.randn(spec, 512, g)
        x, y = torch.randn(2000, 1, 40, generator=g), torch.randint(0, 10, (2000,), generator=g)
        hidden, layers, batch = (32, 3, 16) if ref else (16, 2, 8)

        def run(steps: int):
            torch.manual_seed(0)
            op = AmortizedOperator(**operator_overrides("scalegmn-b", hidden, layers, 64, 0.1))
            cfg = OperatorTrainConfig(steps=steps, batch_networks=batch, data_batch=256, lr=3e-3, lam=1e-3,
                                      warmup_steps=1, seed=0)
            train_operator(op, ws, x, y, cfg, progress=False)
        return run
    if kind == "invariant":
        from scalegmn_lite.tasks.invariant.fit import FitConfig, fit
        from scalegmn_lite.tasks.invariant.study import make_model

        spec = NetworkSpec.from_text("conv1d 1-16-16/10 k5 s2 relu 1x40")
        ws, y = WeightSpace.randn(spec, 1024, g), torch.rand(1024, generator=g)
        wv, yv = WeightSpace.randn(spec, 128, g), torch.rand(128, generator=g)
        hidden, layers = (32, 3) if ref else (24, 2)

        def run(epochs: int):
            torch.manual_seed(0)
            model, _ = make_model("scalegmn", spec, 1, hidden, layers)
            fit(model, ws, y, wv, yv, "regression", FitConfig(epochs=epochs, batch_size=32, lr=2e-3, seed=0),
                progress=False)
        return run
    from scalegmn_lite.tasks.losses import coordinate_grid
    from scalegmn_lite.tasks.merging.autoencoder import AutoencoderConfig, INRLoss, WeightAutoencoder, train_autoencoder

    spec = NetworkSpec.from_text("siren 2-32-32-1")
    ws = WeightSpace.randn(spec, 256, g).map(lambda t: 0.3 * t)
    cfg = AutoencoderConfig(latent_dim=64, hidden_dim=32, num_layers=3, bidirectional=False, decoder_hidden=(512, 512))
    loss = INRLoss(coordinate_grid(16, 16))

    def run(steps: int):
        torch.manual_seed(0)
        ae = WeightAutoencoder(spec, cfg, reference=ws)
        train_autoencoder(ae, ws, loss, steps=steps, batch_size=32, lr=1e-3, seed=0, progress=False)
    return run


def _peak_flops(n: int = 1024, repeats: int = 10) -> float:
    """FLOP/s of an ``n x n`` float32 matmul on this thread (the best of ``repeats``)."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n ** 3 / best


def child(case: str) -> None:
    """One case in this process (one thread); prints ``{"seconds_per_step", "flops_per_step", "peak_flops"}``."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    torch.set_num_threads(1)
    run = _setup(case)
    kind = case.partition("-")[0]
    k1, k2 = LENGTHS[kind]
    per = STEPS_PER_EPOCH if kind == "invariant" else 1
    run(k1)  # warm-up
    times = {}
    for k in (k1, k2):
        t0 = time.perf_counter()
        run(k)
        times[k] = time.perf_counter() - t0
    flops = {}
    for k in (k1, k2):
        counter = FlopCounterMode(display=False)
        with counter:
            run(k)
        flops[k] = counter.get_total_flops()
    steps = (k2 - k1) * per
    print(json.dumps({"seconds_per_step": (times[k2] - times[k1]) / steps,
                      "flops_per_step": (flops[k2] - flops[k1]) / steps, "peak_flops": _peak_flops()}))


def _measure(tree: Path, case: str) -> dict:
    env = dict(os.environ, PYTHONPATH=str(tree), OMP_NUM_THREADS="1", SCALEGMN_LITE_WORKERS="1")
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", case]
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True, cwd=str(tree))
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", default="f018134", help="git revision to compare against")
    ap.add_argument("--repeats", type=int, default=2, help="interleaved rounds (the median is shown)")
    ap.add_argument("--only", choices=CASES, action="append")
    ap.add_argument("--out", type=Path, help="also write the table as JSON here")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args.child)
        return 0
    cases = args.only or list(CASES)
    with tempfile.TemporaryDirectory(prefix="bench-flops-") as tmp:
        trees = {"before": _unpack(args.before, Path(tmp)), "after": ROOT}
        res = {c: {v: [] for v in trees} for c in cases}
        for _ in range(args.repeats):
            for c in cases:
                for v, tree in trees.items():
                    res[c][v].append(_measure(tree, c))
    print(f"bench_flops: one thread; before = {args.before}, after = this checkout; median of {args.repeats} rounds")
    print(f"{'case':20s} {'GFLOP/step':>10s} {'ms/step before':>15s} {'ms/step after':>14s} {'steps/s ratio':>13s} "
          f"{'share of peak before / after':>29s}")
    rows = []
    for c, per in res.items():
        med = {v: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for v, rs in per.items()}
        share = {v: m["flops_per_step"] / m["seconds_per_step"] / m["peak_flops"] for v, m in med.items()}
        ratio = med["before"]["seconds_per_step"] / med["after"]["seconds_per_step"]
        print(f"{c:20s} {med['after']['flops_per_step'] / 1e9:10.3f} {med['before']['seconds_per_step'] * 1e3:15.1f} "
              f"{med['after']['seconds_per_step'] * 1e3:14.1f} {ratio:12.2f}x {share['before']:14.1%} / "
              f"{share['after']:.1%}")
        rows.append({"case": c, "flops_per_step_before": med["before"]["flops_per_step"],
                     "flops_per_step_after": med["after"]["flops_per_step"],
                     "seconds_per_step_before": med["before"]["seconds_per_step"],
                     "seconds_per_step_after": med["after"]["seconds_per_step"], "steps_per_second_ratio": ratio,
                     "share_of_peak_before": share["before"], "share_of_peak_after": share["after"],
                     "peak_gflops": med["after"]["peak_flops"] / 1e9})
    print(f"dense float32 matmul peak on this thread: {rows[0]['peak_gflops']:.1f} GFLOP/s")
    if args.out:
        from scalegmn_lite.common.io import atomic_write_json

        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
        atomic_write_json(args.out, {"command": "python benchmarks/bench_flops.py", "commit": commit,
                                     "before": args.before, "repeats": args.repeats,
                                     "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "rows": rows})
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
