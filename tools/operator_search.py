"""The small search that picks the amortized study's reference operator (issue 22), judged on
*validation* networks only.

On the reference headroom CNN zoo (``cnn1d-hp-mnist1d``, tanh half, the study's split), every candidate
(hidden size, message-passing layers, learning rate, schedule) trains a ScaleGMN-B operator for
``--steps`` steps on the training networks, scored every ``--eval-every`` steps by its mean accuracy
gain on the validation networks, measured on the training images (neither test networks nor test images
are touched). Writes ``results/reference/search/operator_search.json``: every candidate's validation
curve, its best step and gain, its seconds per step, and the pick. Candidates train side by side on idle
cores. The reference study (``StudyConfig.reference_size``) takes the pick and more steps (the pick's
validation curve still rose at its last step); the quick settings are sized by CI time, not searched.

    python tools/operator_search.py [--steps 3000] [--out results/reference/search/operator_search.json]
"""

from __future__ import annotations

import argparse
import time

CANDIDATES = [  # (hidden, layers, lr, schedule)
    (16, 2, 3e-3, "constant"),
    (32, 3, 3e-3, "constant"),
    (32, 3, 1e-3, "constant"),
    (32, 3, 3e-3, "cosine"),
]


def _one(hidden, layers, lr, schedule, steps, eval_every, val_networks):
    import torch

    from scalegmn_lite.tasks.amortized.operator import AmortizedOperator, train_operator
    from scalegmn_lite.tasks.amortized.protocol import StudyConfig, operator_overrides
    from scalegmn_lite.tasks.amortized.study import setting_data

    cfg = StudyConfig.reference_size(hidden_dim=hidden, num_layers=layers, lr=lr, steps=steps, schedule=schedule,
                                     eval_every=eval_every, val_networks=val_networks)
    s = cfg.settings[0]
    d = setting_data(s, cfg, "cpu", progress=False)
    torch.manual_seed(0)
    op = AmortizedOperator(**operator_overrides("scalegmn-b", hidden, layers, cfg.max_io, cfg.update_scale_init))
    t0 = time.perf_counter()
    hist = train_operator(op, d["train"], d["x"], d["y"], cfg.train_config(0.0, 0), progress=False,
                          monitor={"val": d["monitor"]["val"]}, select="val")
    sec = time.perf_counter() - t0
    best = max(hist.evals, key=lambda r: r["val"])
    return {"hidden_dim": hidden, "num_layers": layers, "lr": lr, "schedule": schedule, "steps": steps,
            "setting": s.name, "train_networks": d["train"].batch_size,
            "val_networks": d["monitor"]["val"][0].batch_size,
            "val_curve": hist.evals, "best_step": best["step"], "best_val_gain": best["val"],
            "seconds_per_step": sec / steps}


def main(argv=None) -> None:
    from scalegmn_lite.common.io import atomic_write_json
    from scalegmn_lite.common.parallel import run_jobs

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--val-networks", type=int, default=128)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", default="results/reference/search/operator_search.json")
    a = ap.parse_args(argv)
    t0 = time.time()
    jobs = [(h, L, lr, sch, a.steps, a.eval_every, a.val_networks) for h, L, lr, sch in CANDIDATES]
    res = run_jobs(_one, jobs, a.workers, names=[f"h{j[0]} L{j[1]} lr{j[2]} {j[3]}" for j in jobs])
    pick = max(res, key=lambda r: r["best_val_gain"])
    out = {"what": __doc__.split("\n\n")[0], "candidates": res,
           "pick": {k: pick[k] for k in ("hidden_dim", "num_layers", "lr", "schedule", "best_step", "best_val_gain")},
           "seconds": time.time() - t0}
    atomic_write_json(a.out, out)
    for r in res:
        print(f"h{r['hidden_dim']} L{r['num_layers']} lr {r['lr']:g} {r['schedule']}: best val gain "
              f"{r['best_val_gain']:+.4f} at step {r['best_step']} ({r['seconds_per_step']:.3f} s/step)")
    print("pick:", out["pick"])


if __name__ == "__main__":
    main()
