"""Does the one-shot operator get better with a bigger training budget? (experiment, not a timing)

Trains ScaleGMN-B and the parameter-matched GMN operator on one quick setting of the amortized study
(default: the tanh Conv1d zoo on MNIST-1D) for each ``--steps`` value and ``--hidden`` size, and prints
the held-out mean accuracy of the one-shot proposals next to the initial networks and SGD-150 on
the same objective (all from :func:`~scalegmn_lite.tasks.amortized.study.run_study`; operators and SGD
runs are cached by config, so re-runs are cheap).

    python benchmarks/amortized_budget.py                                 # 200 and 1000 steps, hidden 16
    python benchmarks/amortized_budget.py --steps 200 2000 --hidden 16 32 --setting mlp-tanh
"""

from __future__ import annotations

import argparse
import time

import torch

from scalegmn_lite.tasks.amortized.protocol import StudyConfig, quick_settings
from scalegmn_lite.tasks.amortized.study import run_study


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, nargs="+", default=[200, 1000])
    p.add_argument("--hidden", type=int, nargs="+", default=[16])
    p.add_argument("--setting", default="cnn1d-tanh", choices=[s.name for s in quick_settings()])
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    base = next(s for s in quick_settings() if s.name == args.setting)
    setting = type(base)(base.name, base.zoo, base.activation, base.lam, ("scalegmn-b", "gmn"))
    print(f"setting {setting.name}: held-out mean accuracy of the one-shot proposals")
    print(f"{'steps':>6} {'hidden':>6} {'initial':>8} {'scalegmn-b':>10} {'gmn':>8} {'sgd-150':>8} {'train s':>8}")
    for hidden in args.hidden:
        for steps in args.steps:
            cfg = StudyConfig.quick(steps=steps, hidden_dim=hidden, settings=(setting,))
            t0 = time.perf_counter()
            res = run_study(cfg, device=args.device, progress=False)
            t = res.table.set_index("method")["mean_acc"]
            print(f"{steps:>6} {hidden:>6} {t['initial']:>8.4f} {t['scalegmn-b']:>10.4f} {t['gmn']:>8.4f} "
                  f"{t['sgd-150']:>8.4f} {time.perf_counter() - t0:>8.0f}", flush=True)


if __name__ == "__main__":
    main()
