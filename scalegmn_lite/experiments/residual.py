"""The residual study (issue 36): why exact equivariance matters on residual and normalized networks, measured on
trained ones. It becomes the ``reproduce`` experiment ``residual`` once its quick size fits the main job's 20 minutes
next to the others (issue 36, in progress): until then :mod:`scalegmn_lite.experiments` does not load it, and it runs
as ``run(RunContext(...))``.

Accuracy prediction (Kendall tau of the predicted against the true test accuracy, networks split 60/20/20, every
checkpoint of a network in the same part) on zoos of residual MLPs and Conv1d nets with BatchNorm or LayerNorm
(:data:`~scalegmn_lite.zoo.recipes.RESIDUAL_RECIPES`, trained in training mode by
:func:`~scalegmn_lite.zoo.block_train.train_block_batched`). The models (:mod:`scalegmn_lite.tasks.invariant.blocks`):

* ``scalegmn``: ScaleGMN on the exact block graphs (:mod:`scalegmn_lite.nn.block_graphs`), invariant to the whole
  gauge group: permutations, the residual stream's shared scalings, BatchNorm's free per-channel scaling and
  LayerNorm's common input scale;
* the naive ScaleGMNs: ``scalegmn-plain`` (the graph of the network without its shortcuts: invariant but blind to
  what the shortcuts add) and ``scalegmn-normaffine`` (norms fed as elementwise affine layers: not invariant to
  the norms' free scalings);
* ``gmn`` (permutation-only, typed residual and norm edges), ``statnn`` and ``flatmlp``.

Every model is trained with 3 seeds, the epoch kept is chosen on validation networks, and it is scored on the
held-out test networks and on the same networks replaced by random gauge transforms of themselves (the same
functions, so the same targets). Intervals resample whole test networks (all their checkpoints) and seeds.
In-sample (training networks) scores are stored beside the held-out ones, and each run's learning curve.

Claims, per zoo and combined over zoos: accuracy prediction learns on residual networks (the model chosen on
validation reaches tau >= 0.8 held out and beats the weight-norm floor); ScaleGMN's score is unchanged on the
gauge-transformed networks while every baseline's drops; ScaleGMN beats each naive ScaleGMN on the
gauge-transformed networks.
"""

from __future__ import annotations

import numpy as np

from ..common.claims import claim, every_interval_claim, interval_claim
from ..common.stats import N_BOOT
from . import RunContext

#: per mode: the zoos, models, seeds, the checkpoints pooled (``-1``: the final one; ``None``: every one) and the
#: metanetworks' size. Quick fits the main job's budget with one zoo; reference takes three.
QUICK = dict(zoos=("resmlp-bn-hp-mnist1d",), models=("scalegmn", "scalegmn-plain", "scalegmn-normaffine", "gmn",
                                                    "statnn", "flatmlp"),
             seeds=(0, 1, 2), epochs=3, hidden=24, layers=2, checkpoints=(0, 4, 12, -1))
REFERENCE = dict(QUICK, zoos=("resmlp-bn-hp-mnist1d", "resmlp-ln-hp-mnist1d", "rescnn1d-bn-hp-mnist1d"), epochs=6,
                 hidden=32, layers=3, checkpoints=(0, 2, 4, 8, 12, -1))
FULL = dict(REFERENCE, zoos=("resmlp-hp-mnist1d", "resmlp-bn-hp-mnist1d", "resmlp-ln-hp-mnist1d",
                             "rescnn1d-hp-mnist1d", "rescnn1d-bn-hp-mnist1d"),
            models=REFERENCE["models"] + ("scalegmn-b", "statnn+aug", "flatmlp+aug"), epochs=60, hidden=64, layers=4,
            checkpoints=None)
#: the level accuracy prediction must reach (issue 36)
TAU_TARGET = 0.8
#: the naive ScaleGMNs the exact one is compared with
NAIVE = ("scalegmn-plain", "scalegmn-normaffine")


def _params(ctx: RunContext) -> dict:
    return REFERENCE if ctx.reference else (QUICK if ctx.quick else FULL)


def _recipe(name: str, ctx: RunContext):
    from ..zoo.recipes import get_recipe, get_reference_recipe

    return get_reference_recipe(name) if ctx.reference else get_recipe(name, full=not ctx.quick)


def zoos(ctx: RunContext) -> list:
    """The residual zoos of the run's size."""
    return [_recipe(n, ctx) for n in _params(ctx)["zoos"]]


def judge(result: dict, n_boot: int = N_BOOT) -> dict:
    """Every interval and claim from what a result file stores (per zoo: the test predictions of every model and seed
    on the original and on the gauge-transformed test networks, the targets, the clusters, the floor's predictions and
    the runs' validation scores). Returns ``{"claims", "per_zoo"}``."""
    from ..common.claims import combine_status
    from ..common.stats import decide
    from .invariant import _stored, paired_difference, score_interval, tau_max

    per_zoo, learn_status, unchanged, drops, beats_naive = {}, [], [], {}, {}
    for zoo, r in result["zoos"].items():
        preds, gauge = _stored(r, "test_predictions"), _stored(r, "test_predictions_gauge")
        y = np.asarray(r["test_targets"], dtype=np.float64)
        g = np.asarray(r["test_groups"])
        task = "accuracy-prediction"
        scores = {m: score_interval("regression", y, p, n_boot, groups=g) for (_, m), p in preds.items()}
        scores_gauge = {m: score_interval("regression", y, p, n_boot, groups=g) for (_, m), p in gauge.items()}
        floor = np.asarray(r["floor"]["test_pred"], dtype=np.float64)[None]
        scores[r["floor"]["name"]] = score_interval("regression", y, floor, n_boot, groups=g)
        val: dict[str, list] = {}
        for run in r["runs"]:
            val.setdefault(run["model"], []).append(float(run["best_val"]))
        best = max(val, key=lambda m: np.mean(val[m]))
        over_floor = paired_difference("regression", y, preds[(task, best)], floor, g, n_boot)
        learn_status.append(combine_status([decide(scores[best]["ci"], ">=", TAU_TARGET),
                                            decide(over_floor["ci"], ">", 0.0)]))
        change = max(abs(run["test_score"] - run["test_score_gauge"]) for run in r["runs"]
                     if run["model"] == "scalegmn")
        unchanged.append(change)
        for (_, m), p in preds.items():
            if m not in ("scalegmn",) + NAIVE and (task, m) in gauge:
                drops[f"{zoo}/{m}"] = paired_difference("regression", y, p, gauge[(task, m)], g, n_boot)
        for naive in NAIVE:
            if (task, naive) in gauge:
                beats_naive[f"{zoo}/{naive}"] = paired_difference("regression", y, gauge[(task, "scalegmn")],
                                                                  gauge[(task, naive)], g, n_boot)
        per_zoo[zoo] = {"scores": scores, "scores_gauge": scores_gauge, "chosen": best,
                        "validation_score": {m: float(np.mean(v)) for m, v in val.items()},
                        "chosen_on": "validation networks (mean over seeds of each run's best validation score)",
                        "chosen_minus_floor": over_floor, "tau_max": tau_max(y), "scalegmn_gauge_change": change}
    n = len(result["settings"]["seeds"])
    zs = ", ".join(result["zoos"])
    first = next(iter(per_zoo.values()))
    claims = [
        interval_claim("residual-accuracy-prediction-learns", f"on residual networks ({zs}) the model chosen on "
                       f"validation networks ranks held-out networks by test accuracy with Kendall tau >= "
                       f"{TAU_TARGET} and beats the weight-norm floor, on every zoo (mean of {n} seeds; interval "
                       f"resampling whole test networks and seeds; shown: the first zoo)",
                       first["scores"][first["chosen"]], ">=", TAU_TARGET, status=combine_status(learn_status)),
        claim("residual-scalegmn-gauge-test-unchanged", "ScaleGMN's held-out tau on test networks replaced by random "
              "gauge transforms of themselves (permutations, stream scalings, the norms' free scalings) equals its "
              "tau on the originals (max absolute change over zoos and seeds; norms with eps > 0 make it exact only "
              "up to eps)", max(unchanged), "<=", 1e-3),
    ]
    if drops:
        claims.append(every_interval_claim(
            "residual-gauge-test-moves-baselines", "every baseline's held-out tau drops on gauge-transformed test "
            "networks (original minus transformed: GMN, StatNN and the flat MLP; the interval shown decides the "
            "status)", drops))
    if beats_naive:
        claims.append(every_interval_claim(
            "residual-scalegmn-beats-naive", "on gauge-transformed test networks ScaleGMN on the exact block graphs "
            "ranks better than each naive ScaleGMN (shortcuts dropped; norms fed as affine layers), on every zoo "
            "(tau difference; the interval shown decides the status)", beats_naive))
    return {"claims": claims, "per_zoo": per_zoo}


def in_sample(df) -> dict[str, float]:
    """Per model, the mean over seeds of the training-network score at the epoch kept (the in-sample figure that
    sits beside the held-out one)."""
    out: dict[str, list] = {}
    for r in df.itertuples():
        at = [h for h in r.history if h.get("epoch") == r.best_epoch]
        if at and at[0].get("train_score") is not None:
            out.setdefault(r.model, []).append(float(at[0]["train_score"]))
    return {m: float(np.mean(v)) for m, v in out.items()}


def run_zoo(zoo, p: dict, ctx: RunContext) -> dict:
    """The study on one zoo: the task, every model and seed (:func:`~scalegmn_lite.tasks.invariant.study.compare`),
    the floor model and the in-sample scores; what :func:`judge` reads."""
    import torch

    from ..tasks.invariant.fit import FitConfig
    from ..tasks.invariant.study import accuracy_task, compare
    from .invariant import floor_predictions, task_checkpoints

    data = accuracy_task(zoo, task_checkpoints(zoo, p["checkpoints"]), seed=ctx.seed)
    cfg = FitConfig(epochs=p["epochs"], batch_size=32, lr=2e-3)
    df = compare(data, p["models"], p["seeds"], cfg, p["hidden"], p["layers"], ctx.device, ctx.progress)
    name, pred, detail = floor_predictions(data)
    key = lambda r: f"accuracy-prediction/{r.model}/s{r.seed}"  # noqa: E731
    return {"sizes": data.sizes(), "spec": data.spec.to_text(),
            "runs": df.drop(columns=["test_pred", "test_pred_gauge", "test_pred_nonsym"]).to_dict(orient="records"),
            "test_predictions": {key(r): r.test_pred for r in df.itertuples()},
            "test_predictions_gauge": {key(r): r.test_pred_gauge for r in df.itertuples()},
            "test_targets": data.test[1].double().cpu().tolist(),
            "test_groups": np.asarray(data.test_groups).tolist(),
            "test_checkpoints": data.test_checkpoint.tolist(),
            "floor": {"name": name, "test_pred": pred.tolist(), **detail},
            "in_sample": in_sample(df),
            "torch_threads": torch.get_num_threads()}


def run(ctx: RunContext) -> dict:
    """The residual study in the run's size (see the module docstring)."""
    from ..zoo import load_or_build

    p = _params(ctx)
    out = {"zoos": {}, "settings": {k: list(v) if isinstance(v, tuple) else v for k, v in p.items()}}
    for name in p["zoos"]:
        zoo = load_or_build(_recipe(name, ctx), device=ctx.device, progress=ctx.progress)
        out["zoos"][name] = run_zoo(zoo, p, ctx)
    out.update(judge(out))
    return out
