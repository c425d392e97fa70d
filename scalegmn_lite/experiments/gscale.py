"""``reproduce`` experiment ``gscale``: the open question of the one-shot paper, measured (issue 13).

Does the equivariance gain (ScaleGMN-B minus the symmetry-broken GMN-B, matched parameters, same
held-out networks) grow with the dimension of the scaling gauge? ReLU zoos of architectures whose
dim G_scale differs (:func:`~scalegmn_lite.tasks.amortized.protocol.gscale_settings`): a small CNN
(dim 8) and its unrolled twin MLP (same hidden sizes once unrolled, dim 100), MLPs of widths 8, 32
(and 64) and, at reference size, the 16+16 CNN (dim 32). Operators only (no SGD baselines), trained
with the amortized study's protocol and seeds; the trend is the least-squares slope of the gain
against dim G_scale with a bootstrap interval
(:func:`~scalegmn_lite.tasks.amortized.gscale.gscale_sweep`), and the twin contrast compares the
CNN with its unrolled twin directly. The per-network accuracies are stored (``per_network``), so
:func:`~scalegmn_lite.tasks.amortized.recompute.recompute_gscale_result` can rebuild the sweep and
its claims from the file alone.
"""

from __future__ import annotations

from . import RunContext, experiment


def zoos(ctx: RunContext) -> list:
    """The zoos of the sweep's settings."""
    from ..tasks.amortized.protocol import StudyConfig

    cfg = StudyConfig.gscale(reference=ctx.reference, full=not ctx.quick, seed=ctx.seed)
    return [s.recipe(cfg.full, cfg.reference) for s in cfg.settings]


@experiment("gscale", zoos=zoos)
def run(ctx: RunContext) -> dict:
    from ..tasks.amortized.gscale import gscale_sweep, sweep_claims
    from ..tasks.amortized.protocol import StudyConfig
    from ..tasks.amortized.study import run_study

    cfg = StudyConfig.gscale(reference=ctx.reference, full=not ctx.quick, seed=ctx.seed)
    res = run_study(cfg, device=ctx.device, progress=ctx.progress)
    sweep = gscale_sweep(res.per_network, res.counts)
    full = res.to_json()
    # the per-network accuracies (seeds x test networks) let a committed tool re-judge the sweep without
    # retraining (:func:`~scalegmn_lite.tasks.amortized.recompute.recompute_gscale_result`)
    per = {st: {m: {"acc": d["acc"]} for m, d in p.items()} for st, p in full["per_network"].items()}
    return {"claims": sweep_claims(sweep), "gscale_sweep": sweep, "config": full["config"],
            "table": full["table"], "intervals": full["intervals"], "training": full["training"],
            "counts": full["counts"], "per_network": per, "device": str(ctx.device)}
