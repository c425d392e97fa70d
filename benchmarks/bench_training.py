"""Metanetwork training throughput before (a git revision, default 11fef3c, unpacked in a temporary
folder) and after (this checkout), in one run, on all cores of this machine (issue 21).

Three trainers at the quick settings of the studies, on random weights of the studies' architectures:

* **operator** (``train_operator``): the quick amortized operator (ScaleGMN-B, hidden 16, 2 layers) on
  tanh ``conv1d 1-16-16/10 k5 s2``, 8 networks and 256 MNIST-1D-shaped examples per step;
* **invariant** (``fit``): the quick accuracy predictor (ScaleGMN, hidden 24, 2 layers) on ReLU
  ``conv2d 1-8-8/10 k3``, 1024 training networks, batch 32 (one epoch = 32 steps, then validation);
* **autoencoder** (``train_autoencoder``): the quick INR autoencoder (hidden 16, 2 layers, latent 32)
  on ``siren 2-16-16-1 a=10``, 16 networks per step, 16x16 renderings.

Two measurements per trainer, each code version in its own fresh processes:

* **one run**: one training call as the library makes it (``torch`` threads = cores);
* **a study's runs**: ``--runs`` independent runs (seeds), as a study trains them: before, one after
  another; after, as the studies do now (:mod:`scalegmn_lite.common.parallel`: side by side in worker
  processes when cores are idle and the studies' estimate of the work pays for the start-up, else one
  after another), worker start-up included.

Peak memory is the largest resident set size of the measuring process or of one of its workers
(``getrusage``); with workers the machine holds one such process per worker.

A third table times one run of a larger operator (hidden 64, 32 networks) as one process against
2-process data parallelism (``common.distributed``), where a second process pays off. The final losses
of before and after are printed side by side (equal results up to float rounding: fused AdamW, one
thread per worker). Every figure is the median of ``--repeats`` interleaved rounds.

    python benchmarks/bench_training.py                    # about 15 minutes on 2 cores
    python benchmarks/bench_training.py --repeats 1 --runs 2 --steps 3    # a smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRAINERS = ("operator", "invariant", "autoencoder")
#: steps per run in the quick studies (invariant: epochs)
QUICK_STEPS = {"operator": 200, "invariant": 3, "autoencoder": 400}


# ---------------------------------------------------------------------- child side (either version)
def _setup(kind: str, seed: int, big: bool = False):
    """``(train_fn, steps_per_call)``: a closure running one training of ``kind`` with ``seed``."""
    import torch

    from scalegmn_lite import NetworkSpec, WeightSpace

    g = torch.Generator().manual_seed(1234)
    if kind == "operator":
        from scalegmn_lite.tasks.amortized.operator import AmortizedOperator, OperatorTrainConfig, train_operator
        from scalegmn_lite.tasks.amortized.protocol import operator_overrides

        spec = NetworkSpec.from_text("conv1d 1-16-16/10 k5 s2 tanh 1x40")
        ws = WeightSpace.randn(spec, 512, g)
        x, y = torch.randn(2000, 1, 40, generator=g), torch.randint(0, 10, (2000,), generator=g)
        hidden, batch = (64, 32) if big else (16, 8)

        def run(steps: int):
            torch.manual_seed(seed)
            op = AmortizedOperator(**operator_overrides("scalegmn-b", hidden, 2, 64, 0.1))
            cfg = OperatorTrainConfig(steps=steps, batch_networks=batch, data_batch=256, lr=3e-3, lam=1e-3,
                                      warmup_steps=max(1, steps // 10), seed=seed)
            h = train_operator(op, ws, x, y, cfg, progress=False)
            return h.losses[-1]
        return run
    if kind == "invariant":
        from scalegmn_lite.tasks.invariant.fit import FitConfig, fit
        from scalegmn_lite.tasks.invariant.study import make_model

        spec = NetworkSpec.from_text("conv2d 1-8-8/10 k3 relu 1x8x8")
        ws, y = WeightSpace.randn(spec, 1024, g), torch.rand(1024, generator=g)
        wv, yv = WeightSpace.randn(spec, 128, g), torch.rand(128, generator=g)

        def run(epochs: int):
            torch.manual_seed(seed)
            model, _ = make_model("scalegmn", spec, 1, 24, 2)
            res = fit(model, ws, y, wv, yv, "regression", FitConfig(epochs=epochs, batch_size=32, lr=2e-3, seed=seed),
                      progress=False)
            return res.history[-1]["train_loss"]
        return run
    from scalegmn_lite.tasks.losses import coordinate_grid
    from scalegmn_lite.tasks.merging.autoencoder import AutoencoderConfig, INRLoss, WeightAutoencoder, train_autoencoder

    spec = NetworkSpec.from_text("siren 2-16-16-1 a=10")
    ws = WeightSpace.randn(spec, 256, g).map(lambda t: 0.3 * t)
    cfg = AutoencoderConfig(latent_dim=32, hidden_dim=16, num_layers=2, bidirectional=False, decoder_hidden=(256, 256))
    loss = INRLoss(coordinate_grid(16, 16))

    def run(steps: int):
        torch.manual_seed(seed)
        ae = WeightAutoencoder(spec, cfg, reference=ws)
        h = train_autoencoder(ae, ws, loss, steps=steps, batch_size=16, lr=3e-3, seed=seed, progress=False)
        return h.losses[-1]
    return run


def _job(kind: str, seed: int, steps: int) -> float:
    return _setup(kind, seed)(steps)


def _dp_rank(ctx, steps: int, out: str) -> None:
    import torch

    torch.set_num_threads(1)
    run = _setup("operator", 0, big=True)
    run(2)  # warm-up
    t0 = time.perf_counter()
    loss = run(steps)
    if ctx.is_main:
        Path(out).write_text(json.dumps({"seconds": time.perf_counter() - t0, "loss": loss}))


def _peak_mib() -> float:
    """Peak resident set size of this process and of its finished children (workers), MiB."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return round(max(own, kids) / 1024, 1)


def _estimate(kind: str, units: int, runs: int) -> float:
    """The studies' own estimate of the runs' serial seconds (``plan_workers(..., est_seconds=...)``),
    from the library's constants (only the "after" version plans workers)."""
    if kind == "operator":
        from scalegmn_lite.tasks.amortized.study import SECONDS_PER_STEP as per
    elif kind == "invariant":
        from scalegmn_lite.tasks.invariant.study import SECONDS_PER_NETWORK_EPOCH

        per = 1024 * SECONDS_PER_NETWORK_EPOCH  # 1024 training networks
    else:
        from scalegmn_lite.experiments.merging import SECONDS_PER_STEP as per
    return runs * units * per


def child(args) -> None:
    """One measurement in this process; prints a JSON line ``{"seconds", "loss", "units", "peak_mib"}``."""
    import torch

    torch.set_num_threads(args.threads)
    kind, steps = args.kind, args.steps
    units = steps  # invariant: epochs
    if args.mode == "one":
        run = _setup(kind, 0)
        run(2 if kind != "invariant" else 1)  # warm-up (first-call costs are not training)
        t0 = time.perf_counter()
        loss = run(units)
        print(json.dumps({"seconds": time.perf_counter() - t0, "loss": loss, "units": units, "peak_mib": _peak_mib()}))
    elif args.mode == "runs":
        seeds = list(range(args.runs))
        t0 = time.perf_counter()
        if args.parallel:
            from scalegmn_lite.common.parallel import plan_workers, run_jobs

            n = plan_workers(len(seeds), "auto", est_seconds=_estimate(kind, units, len(seeds)))
            losses = run_jobs(_job, [(kind, s, units) for s in seeds], n)
        else:
            n = 1
            losses = [_setup(kind, s)(units) for s in seeds]
        print(json.dumps({"seconds": time.perf_counter() - t0, "loss": losses[0], "units": units * len(seeds),
                          "workers": n, "peak_mib": _peak_mib()}))
    elif args.mode == "big":
        run = _setup("operator", 0, big=True)
        run(2)
        t0 = time.perf_counter()
        loss = run(steps)
        print(json.dumps({"seconds": time.perf_counter() - t0, "loss": loss, "units": steps, "peak_mib": _peak_mib()}))
    elif args.mode == "dp":
        from scalegmn_lite.common.distributed import launch_local

        with tempfile.TemporaryDirectory() as tmp:
            out = str(Path(tmp) / "r.json")
            launch_local(_dp_rank, 2, args=(steps, out))
            r = json.loads(Path(out).read_text())
        print(json.dumps({**r, "units": steps, "peak_mib": _peak_mib()}))


# ---------------------------------------------------------------------- parent side
def _unpack(rev: str, dest: Path) -> Path:
    tar = dest / "src.tar"
    with open(tar, "wb") as f:
        subprocess.run(["git", "-C", str(ROOT), "archive", rev], check=True, stdout=f)
    with tarfile.open(tar) as t:
        t.extractall(dest / "tree", filter="data")
    return dest / "tree"


def _measure(tree: Path, argv: list[str]) -> dict:
    env = dict(os.environ, PYTHONPATH=str(tree), SCALEGMN_LITE_WORKERS="auto")
    env.pop("OMP_NUM_THREADS", None)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", *argv]
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True, cwd=str(tree))
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", default="11fef3c", help="git revision to compare against")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--steps", type=int, help="steps per run (invariant: epochs of 32 steps); default: the quick "
                                              f"studies' {QUICK_STEPS}")
    ap.add_argument("--runs", type=int, default=6, help="independent runs of a study measurement (default 6: the "
                                                        "quick amortized study's 2 operator kinds x 3 seeds)")
    ap.add_argument("--only", choices=TRAINERS, action="append")
    ap.add_argument("--skip-dp", action="store_true")
    ap.add_argument("--out", type=Path, help="also write the table as JSON here (e.g. benchmarks/results/"
                                             "bench_training.json, which the README's table is generated from)")
    # child arguments
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--kind", default="operator", help=argparse.SUPPRESS)
    ap.add_argument("--mode", default="one", help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--parallel", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args)
        return 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    kinds = args.only or list(TRAINERS)
    steps = {k: args.steps or QUICK_STEPS[k] for k in TRAINERS}
    print(f"bench_training: before = {args.before}, after = working tree; {cores} cores; median of "
          f"{args.repeats} interleaved rounds; steps per run {steps}, {args.runs} runs per study")
    with tempfile.TemporaryDirectory(prefix="bench-training-") as tmp:
        trees = {"before": _unpack(args.before, Path(tmp)), "after": ROOT}
        plan = {}
        for kind in kinds:
            common = ["--steps", str(steps[kind]), "--runs", str(args.runs), "--threads", str(cores)]
            plan[(kind, "one run")] = {v: ["--kind", kind, "--mode", "one", *common] for v in trees}
            plan[(kind, "study runs")] = {"before": ["--kind", kind, "--mode", "runs", *common],
                                          "after": ["--kind", kind, "--mode", "runs", "--parallel", *common]}
        if not args.skip_dp:
            big = ["--steps", str(max(10, steps["operator"] // 5)), "--threads", str(cores)]
            plan[("operator h64 b32", "one run")] = {v: ["--mode", "big", *big] for v in trees}
            plan[("operator h64 b32", "data parallel")] = {"before": ["--mode", "big", *big],
                                                          "after": ["--mode", "dp", *big]}
        res: dict = {k: {v: [] for v in trees} for k in plan}
        for _ in range(args.repeats):
            for key, per in plan.items():
                for version, a in per.items():
                    res[key][version].append(_measure(trees[version], a))
    print(f"\n{'trainer':18s} {'measurement':14s} {'before /s':>10s} {'after /s':>10s} {'ratio':>7s} "
          f"{'workers':>7s} {'peak MiB before / after':>24s}   final loss before / after")
    ratios, rows = {}, []
    for (kind, what), per in res.items():
        rate = {v: statistics.median(r["units"] / r["seconds"] for r in rs) for v, rs in per.items()}
        ratio = rate["after"] / rate["before"]
        ratios[f"{kind} / {what}"] = round(ratio, 3)
        unit = "epochs" if kind == "invariant" else "steps"
        lb, la = per["before"][0]["loss"], per["after"][0]["loss"]
        mem = {v: max(r.get("peak_mib", float("nan")) for r in rs) for v, rs in per.items()}
        workers = per["after"][0].get("workers", 2 if what == "data parallel" else 1)
        print(f"{kind:18s} {what:14s} {rate['before']:10.3f} {rate['after']:10.3f} {ratio:6.2f}x {workers:7d} "
              f"{mem['before']:11.0f} / {mem['after']:<10.0f}   {lb:.5g} / {la:.5g} ({unit})")
        rows.append({"trainer": kind, "measurement": what, "unit": f"{unit}/s", "before": rate["before"],
                     "after": rate["after"], "ratio": ratio, "workers": int(workers), "peak_mib_before": mem["before"],
                     "peak_mib_after": mem["after"], "loss_before": lb, "loss_after": la})
    print("\nratios:", json.dumps(ratios))
    if args.out:
        import platform

        from scalegmn_lite.common.io import atomic_write_json

        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
        argv_text = " ".join(argv if argv is not None else sys.argv[1:])
        atomic_write_json(args.out, {"command": f"python benchmarks/bench_training.py {argv_text}".strip(),
                                     "commit": commit, "before": args.before, "cores": cores,
                                     "cpu": platform.processor() or platform.machine(), "repeats": args.repeats,
                                     "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "rows": rows})
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
