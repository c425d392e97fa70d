"""Does ``torch.compile`` pay for a quick training run? (issue 21)

One quick amortized operator (ScaleGMN-B, hidden 16, 2 layers, tanh ``conv1d 1-16-16/10 k5 s2``, 8
networks and 256 examples per step, ``--steps`` steps) trained eagerly and with
``ScaleGMNConfig(compile=True)`` (each message-passing layer compiled; the batch shape is fixed, so it
compiles once per layer), each in a fresh process, compile time counted: with an empty inductor cache
(the first run on a machine) and again with the cache it left (``TORCHINDUCTOR_CACHE_DIR``; later runs).

    python benchmarks/bench_compile.py               # ~4 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time


def child(steps: int, compiled: bool) -> None:
    import torch

    from scalegmn_lite import NetworkSpec, WeightSpace
    from scalegmn_lite.tasks.amortized.operator import AmortizedOperator, OperatorTrainConfig, train_operator
    from scalegmn_lite.tasks.amortized.protocol import operator_overrides

    g = torch.Generator().manual_seed(0)
    ws = WeightSpace.randn(NetworkSpec.from_text("conv1d 1-16-16/10 k5 s2 tanh 1x40"), 512, g)
    x, y = torch.randn(2000, 1, 40, generator=g), torch.randint(0, 10, (2000,), generator=g)
    torch.manual_seed(0)
    op = AmortizedOperator(**operator_overrides("scalegmn-b", 16, 2, 64, 0.1), compile=compiled)
    cfg = OperatorTrainConfig(steps=steps, batch_networks=8, data_batch=256, lr=3e-3, lam=1e-3, warmup_steps=20)
    t0 = time.perf_counter()
    h = train_operator(op, ws, x, y, cfg, progress=False)
    print(json.dumps({"seconds": time.perf_counter() - t0, "loss": h.losses[-1]}))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=200, help="operator steps (the quick study's 200)")
    ap.add_argument("--child", choices=["eager", "compiled"], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args.steps, args.child == "compiled")
        return 0
    with tempfile.TemporaryDirectory(prefix="inductor-") as cache:
        env = dict(os.environ, TORCHINDUCTOR_CACHE_DIR=cache)

        def run(kind: str) -> dict:
            out = subprocess.run([sys.executable, __file__, "--child", kind, "--steps", str(args.steps)], env=env,
                                 check=True, capture_output=True, text=True)
            return json.loads(out.stdout.strip().splitlines()[-1])

        rows = [("eager", run("eager")), ("compiled, empty cache", run("compiled")),
                ("compiled, warm cache", run("compiled")), ("eager (again)", run("eager"))]
    eager = min(r["seconds"] for name, r in rows if name.startswith("eager"))
    print(f"{args.steps} operator steps, compile time included; final losses show the same training")
    for name, r in rows:
        print(f"{name:24s} {r['seconds']:8.1f} s   {args.steps / r['seconds']:6.2f} steps/s   "
              f"{eager / r['seconds']:5.2f}x eager   loss {r['loss']:.5g}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
