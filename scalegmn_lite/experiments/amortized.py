"""``reproduce`` experiment ``amortized``: one-shot equivariant operators against SGD (issue 5).

Runs :func:`scalegmn_lite.tasks.amortized.study.run_study` (quick settings: tanh/ReLU Conv1d on MNIST-1D,
tanh Conv1d with L1, tanh small MLP on MNIST-1D, tanh Conv2d on digits; full mode: every zoo x
activation x lambda with all four operator kinds) and writes the table, the operator training
records (rollbacks included), the SGD accuracy curves, the transfer results and the claims:

    ``one-shot-beats-sgd150-cnn``, ``l1-reduction-85``, ``one-shot-1000x-faster``,
    ``equivariance-gap-mlp-vs-cnn`` (see :func:`~scalegmn_lite.tasks.amortized.study.compute_claims`).
"""

from __future__ import annotations

from . import RunContext, experiment


@experiment("amortized")
def run(ctx: RunContext) -> dict:
    from ..tasks.amortized.protocol import StudyConfig
    from ..tasks.amortized.study import compute_claims, run_study

    cfg = StudyConfig.quick(seed=ctx.seed) if ctx.quick else StudyConfig.full_size(seed=ctx.seed)
    res = run_study(cfg, device=ctx.device, progress=ctx.progress)
    out = res.to_json()
    out["claims"] = compute_claims(res.table, cfg.settings, sgd_final=max(cfg.sgd_epochs))
    tr = res.training
    out["relu_stability"] = {
        "operators": int(len(tr)),
        "rollbacks_by_setting": {f"{r.setting}/{r.method}": int(r.rollbacks) for r in tr.itertuples()},
        "relu_rollbacks": int(tr[tr["setting"].str.contains("relu")]["rollbacks"].sum()) if len(tr) else 0,
        "note": "StableTrainer rolls back on NaN/Inf or loss spikes; a run that keeps diverging raises "
                "TrainingDivergedError instead of ending silently diverged.",
    }
    out["device"] = str(ctx.device)
    return out
