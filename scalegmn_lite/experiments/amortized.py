"""``reproduce`` experiment ``amortized``: one-shot equivariant operators against SGD (issues 5, 13, 22).

Runs :func:`scalegmn_lite.tasks.amortized.study.run_study` with the one-shot paper's protocol on the *final*
networks of two kinds of zoo, held-out networks and images, operators trained with several seeds and
the kept step chosen on validation networks (early stopping), SGD-k (plain SGD, k epochs over the
training images) and a tuned Adam baseline:

* the **headroom** setting (tanh CNNs of ``cnn1d-hp-mnist1d``): ScaleGMN-B, GMN-B and GMN-B with gauge
  augmentation; the transfer claims (``operator-gain-cnn``, ``operator-gain-cnn-published``,
  ``operator-generalizes``) and the diagnostics (gain against steps and against the number of training
  networks, the 16-network positive control, update size, who gains, the calibration-only control);
  the **memorization controls** (issue 33, :mod:`~scalegmn_lite.tasks.amortized.memorization`: the best
  training network, the nearest training network in function space, the mean of the k best with k
  chosen on validation, the input plus noise of the operator's update norm), scored on the same test
  networks and images (``memorization``), judged by ``operator-beats-memorization``; the margins
  ``scalegmn-b-beats-gmn-b-headroom`` and ``scalegmn-b-beats-gmn-b-aug-headroom``;
* the **Table 1** rows on the plateau zoos (``cnn1d-plateau-mnist1d``, ``mlp-plateau-mnist1d``), whose
  final networks stopped improving like the published ones: CNN, CNN with L1, MLP (and, at reference
  size, MLP with L1), judged by the four Table 1 claims.

Quick: hidden 16, 2 layers, 200 steps, 3 seeds. Reference: the operator picked by
``tools/operator_search.py`` on validation networks (hidden 32, 3 layers), 6000 steps on the headroom
setting and 1500 on the Table 1 rows, 3 seeds, 64 test networks, the 4096-network zoos. Full
(``--full``, GPU): the reference protocol, larger (hidden 64, 4 layers, 12000/3000 steps, 5 seeds, 256
test networks, the full-size zoos; :meth:`~scalegmn_lite.tasks.amortized.protocol.StudyConfig.full_size`).
A stored result is re-judged without retraining by
:func:`~scalegmn_lite.tasks.amortized.recompute.recompute_result`. Writes the table (means), the 95%
intervals (``intervals``), the per-network figures, the accuracy-against-time data
(``accuracy_vs_time``), the Adam tuning, the operator training records (with their validation curves), the
diagnostics, the transfer results and the claims of
:func:`~scalegmn_lite.tasks.amortized.study.compute_claims`. The dim G_scale sweep is its own experiment
(:mod:`scalegmn_lite.experiments.gscale`).
"""

from __future__ import annotations

from . import RunContext, experiment


def _config(ctx: RunContext):
    from ..tasks.amortized.protocol import StudyConfig

    if ctx.reference:
        return StudyConfig.reference_size(seed=ctx.seed)
    return StudyConfig.quick(seed=ctx.seed) if ctx.quick else StudyConfig.full_size(seed=ctx.seed)


def zoos(ctx: RunContext) -> list:
    """The zoos of the study's settings."""
    cfg = _config(ctx)
    return [s.recipe(cfg.full, cfg.reference) for s in cfg.settings]


@experiment("amortized", zoos=zoos)
def run(ctx: RunContext) -> dict:
    from ..tasks.amortized.study import compute_claims, run_study

    cfg = _config(ctx)
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
