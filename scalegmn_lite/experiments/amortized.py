"""``reproduce`` experiment ``amortized``: one-shot equivariant operators against SGD (issues 5, 13).

Runs :func:`scalegmn_lite.tasks.amortized.study.run_study` with seed 000's protocol: the *final*
networks of the headroom zoos (``cnn1d-hp-mnist1d``, ``mlp-hp-mnist1d``), held-out networks and
images, operators trained with several seeds, SGD-k (plain SGD, k epochs over the training images)
and a tuned Adam baseline. Quick: tanh CNN (CE and L1) and tanh MLP, 3 seeds, 200 steps; reference:
also the MLP with L1 (every row of Table 1), 5 seeds, 400 steps, 64 test networks; full: every zoo x
activation x lambda (GPU). Writes the table (means), the 95% intervals (``intervals``), the
per-network figures, the accuracy-against-time data (``accuracy_vs_time``), the Adam tuning, the
operator training records, the transfer results and the claims of
:func:`~scalegmn_lite.tasks.amortized.study.compute_claims`. The dim G_scale sweep is its own
experiment (:mod:`scalegmn_lite.experiments.gscale`).
"""

from __future__ import annotations

from . import RunContext, experiment


@experiment("amortized")
def run(ctx: RunContext) -> dict:
    from ..tasks.amortized.protocol import StudyConfig
    from ..tasks.amortized.study import compute_claims, run_study

    if ctx.reference:
        cfg = StudyConfig.reference_size(seed=ctx.seed)
    else:
        cfg = StudyConfig.quick(seed=ctx.seed) if ctx.quick else StudyConfig.full_size(seed=ctx.seed)
    res = run_study(cfg, device=ctx.device, progress=ctx.progress)
    out = res.to_json()
    out["claims"] = compute_claims(res)
    tr = res.training
    out["relu_stability"] = {
        "operators": int(len(tr)),
        "rollbacks_by_setting": {f"{r.setting}/{r.method}/s{r.seed}": int(r.rollbacks) for r in tr.itertuples()},
        "note": "StableTrainer rolls back on NaN/Inf or loss spikes; a run that keeps diverging raises "
                "TrainingDivergedError instead of ending silently diverged.",
    }
    out["device"] = str(ctx.device)
    return out
