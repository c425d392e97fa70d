"""``reproduce`` experiment ``residual`` (issue 36): why exact equivariance matters on residual and normalized
networks, measured on trained ones (notebook 09).

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
In-sample (training networks) scores are stored beside the held-out ones, and each run's learning curve
(validation tau per epoch); at reference size the first zoo also gets a data curve (ScaleGMN and StatNN retrained on
a quarter and a half of the training networks, ``data_curve``). The result keeps every zoo's table row
(``zoo_table``: the zoo experiment's :func:`~scalegmn_lite.experiments.zoo.zoo_row`, for the README's zoo table),
the norm-free zoos included, which the reference run builds and reports but does not study.

Claims, per zoo and combined over zoos: accuracy prediction learns on residual networks (the model chosen on
validation reaches tau >= 0.8 held out and beats the weight-norm floor); ScaleGMN's score is unchanged on the
gauge-transformed networks while every baseline's drops; ScaleGMN beats each naive ScaleGMN on the
gauge-transformed networks; the exact check that every zoo studied has the run size's networks. Rerun one part with
``scalegmn-lite reproduce --reference --resume --only residual --out results/reference``; ``judge`` recomputes every
claim from a stored file (``tools/recompute_claims.py``).
"""

from __future__ import annotations

import numpy as np

from ..common.claims import claim, deciding_comparison, every_interval_claim, interval_claim
from ..common.stats import N_BOOT
from . import RunContext, experiment

#: per mode: the zoos studied, the zoos only built and reported (the README's zoo table), the models, seeds, epochs,
#: the checkpoints pooled (``-1``: the final one; ``None``: every one), the metanetworks' size, ``networks``: how many
#: networks of a zoo the study takes (a seeded random subset; absent: all) and ``curve_fractions``: the data curve
#: (ScaleGMN retrained on these fractions of the training networks of the first zoo, every seed).
#: Quick: the residual Conv1d zoo with BatchNorm, whose small graphs (about 300 edges) make a ScaleGMN step about 20x
#: cheaper than a residual MLP's (about 2,000 edges), so the study fits the main job (measured: 145 s on 2 cores).
QUICK = dict(zoos=("rescnn1d-bn-hp-mnist1d",), report=(),
             models=("scalegmn", "scalegmn-plain", "scalegmn-normaffine", "gmn", "statnn", "flatmlp"),
             seeds=(0, 1, 2), epochs=3, hidden=24, layers=2, checkpoints=(0, 4, 12, -1), networks={},
             curve_fractions=())
#: reference (about an hour on 2 cores): the Conv1d zoo whole, 1024 networks of each residual MLP zoo (their graphs
#: cost 4-5x more per step), twice the epochs; the two norm-free zoos are built and reported, not studied
REFERENCE = dict(QUICK, zoos=("rescnn1d-bn-hp-mnist1d", "resmlp-bn-hp-mnist1d", "resmlp-ln-hp-mnist1d"),
                 report=("resmlp-hp-mnist1d", "rescnn1d-hp-mnist1d"), epochs=6,
                 networks={"resmlp-bn-hp-mnist1d": 1024, "resmlp-ln-hp-mnist1d": 1024}, curve_fractions=(0.25, 0.5))
FULL = dict(REFERENCE, zoos=("resmlp-hp-mnist1d", "resmlp-bn-hp-mnist1d", "resmlp-ln-hp-mnist1d",
                             "rescnn1d-hp-mnist1d", "rescnn1d-bn-hp-mnist1d"), report=(),
            models=REFERENCE["models"] + ("scalegmn-b", "statnn+aug", "flatmlp+aug"), epochs=60, hidden=64, layers=4,
            checkpoints=None, networks={}, curve_fractions=(0.125, 0.25, 0.5))
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
    """The residual zoos of the run's size: those studied, then those only reported."""
    p = _params(ctx)
    return [_recipe(n, ctx) for n in p["zoos"] + p["report"]]


def subsample(zoo, n: int | None, seed: int):
    """``n`` networks of ``zoo`` (a seeded random subset, kept in zoo order); all when ``n`` is None or too big."""
    if n is None or n >= len(zoo):
        return zoo
    import torch

    pick = torch.randperm(len(zoo), generator=torch.Generator().manual_seed(seed))[:n]
    return zoo.select(np.sort(pick.numpy()))


def fewer_training_networks(data, fraction: float):
    """``data`` with its training part cut to the first ``fraction`` of its networks (every checkpoint of each kept
    network; the split is random, so the first ones are a random subset); validation and test unchanged."""
    from dataclasses import replace

    import torch

    ws, y = data.train
    n = data.n_train_networks
    if not n:
        raise ValueError("fewer_training_networks needs TaskData.n_train_networks (set by accuracy_task)")
    n_ckpt = ws.batch_size // n
    keep = max(1, int(round(fraction * n)))
    rows = torch.tensor([c * n + i for c in range(n_ckpt) for i in range(keep)])
    return replace(data, train=(ws[rows], y[rows]), n_train_networks=keep)


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
                        "chosen_minus_floor": over_floor, "tau_max": tau_max(y), "scalegmn_gauge_change": change,
                        # the paired intervals behind the claims, per model: original minus gauge-transformed tau,
                        # and ScaleGMN minus each naive ScaleGMN on the transformed networks
                        "gauge_drop": {k.split("/", 1)[1]: v for k, v in drops.items() if k.startswith(f"{zoo}/")},
                        "beats_naive": {k.split("/", 1)[1]: v for k, v in beats_naive.items()
                                        if k.startswith(f"{zoo}/")}}
    n = len(result["settings"]["seeds"])
    zs = ", ".join(result["zoos"])
    chosen = {z: (pz["scores"][pz["chosen"]], ">=", TAU_TARGET) for z, pz in per_zoo.items()}
    shown = deciding_comparison(chosen)  # the zoo whose interval decides the conjunction
    claims = [
        interval_claim("residual-accuracy-prediction-learns", f"on residual networks ({zs}) the model chosen on "
                       f"validation networks ranks held-out networks by test accuracy with Kendall tau >= "
                       f"{TAU_TARGET} and beats the weight-norm floor, on every zoo (mean of {n} seeds; interval "
                       f"resampling whole test networks and seeds; shown: {shown}, whose interval decides)",
                       per_zoo[shown]["scores"][per_zoo[shown]["chosen"]], ">=", TAU_TARGET,
                       status=combine_status(learn_status),
                       measured={**{f"{z}/{pz['chosen']}": round(float(pz["scores"][pz["chosen"]]["mean"]), 4)
                                     for z, pz in per_zoo.items()},
                                  "interval_of": f"{shown}/{per_zoo[shown]['chosen']}"}),
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
    table = result.get("zoo_table") or {}
    if table:
        need = 1024 if result.get("mode") == "quick" else 4096
        sizes = {n: table[n]["networks"] for n in result["zoos"] if n in table}
        claims.append(claim("residual-zoo-sizes", f"every residual zoo the study learns from holds >= {need} networks "
                            f"({result.get('mode')} size; the study may take a seeded subset, its settings' "
                            "``networks``)", sizes, holds=all(v >= need for v in sizes.values()),
                            target=f">= {need} networks each"))
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


def run_zoo(zoo, p: dict, ctx: RunContext, curve: bool = False) -> dict:
    """The study on one zoo: the task, every model and seed (:func:`~scalegmn_lite.tasks.invariant.study.compare`),
    the floor model and the in-sample scores; with ``curve``, the data curve (ScaleGMN and StatNN retrained on
    ``p["curve_fractions"]`` of the training networks); what :func:`judge` reads."""
    import torch

    from ..tasks.invariant.fit import FitConfig
    from ..tasks.invariant.study import accuracy_task, compare
    from .invariant import floor_predictions, task_checkpoints

    data = accuracy_task(zoo, task_checkpoints(zoo, p["checkpoints"]), seed=ctx.seed)
    cfg = FitConfig(epochs=p["epochs"], batch_size=32, lr=2e-3)
    df = compare(data, p["models"], p["seeds"], cfg, p["hidden"], p["layers"], ctx.device, ctx.progress)
    name, pred, detail = floor_predictions(data)
    key = lambda r: f"accuracy-prediction/{r.model}/s{r.seed}"  # noqa: E731
    out = {"sizes": data.sizes(), "spec": data.spec.to_text(), "networks": len(zoo),
           "training_networks": data.n_train_networks,
           "runs": df.drop(columns=["test_pred", "test_pred_gauge", "test_pred_nonsym"]).to_dict(orient="records"),
           "test_predictions": {key(r): r.test_pred for r in df.itertuples()},
           "test_predictions_gauge": {key(r): r.test_pred_gauge for r in df.itertuples()},
           "test_targets": data.test[1].double().cpu().tolist(),
           "test_groups": np.asarray(data.test_groups).tolist(),
           "test_checkpoints": data.test_checkpoint.tolist(),
           "floor": {"name": name, "test_pred": pred.tolist(), **detail},
           "in_sample": in_sample(df),
           "torch_threads": torch.get_num_threads()}
    if curve and p.get("curve_fractions"):
        models = [m for m in ("scalegmn", "statnn") if m in p["models"]]
        points = []
        for f in p["curve_fractions"]:
            part = fewer_training_networks(data, f)
            cdf = compare(part, models, p["seeds"], cfg, p["hidden"], p["layers"], ctx.device, ctx.progress)
            points.append(curve_point(cdf, f, part.n_train_networks))
        points.append(curve_point(df[df.model.isin(models)], 1.0, data.n_train_networks))
        out["data_curve"] = points
    return out


def curve_point(df, fraction: float, networks: int) -> dict:
    """One point of the data curve: per model, each seed's held-out tau and the mean in-sample tau."""
    ins = in_sample(df)
    return {"fraction": fraction, "training_networks": int(networks),
            "test_score": {m: [float(v) for v in g.sort_values("seed").test_score] for m, g in df.groupby("model")},
            "in_sample": ins}


@experiment("residual", zoos=zoos)
def run(ctx: RunContext) -> dict:
    """The residual study in the run's size (see the module docstring)."""
    import time

    from ..zoo import load_or_build
    from .zoo import zoo_row

    p = _params(ctx)
    out = {"zoos": {}, "zoo_table": {}, "mode": ctx.mode,
           "settings": {k: list(v) if isinstance(v, tuple) else v for k, v in p.items()}}
    for i, name in enumerate(p["zoos"] + p["report"]):
        t0 = time.perf_counter()
        recipe = _recipe(name, ctx)
        zoo = load_or_build(recipe, device=ctx.device, progress=ctx.progress)
        out["zoo_table"][name] = zoo_row(name, recipe, zoo, time.perf_counter() - t0)
        if name in p["zoos"]:
            out["zoos"][name] = run_zoo(subsample(zoo, p["networks"].get(name), ctx.seed), p, ctx, curve=i == 0)
    out.update(judge(out))
    return out
