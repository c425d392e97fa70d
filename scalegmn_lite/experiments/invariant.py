"""Invariant metanetworks (issue 4): CNN accuracy prediction and INR classification, ScaleGMN
against GMN, StatNN and a flat MLP (with and without gauge augmentation).

Every model is trained with several seeds (init and data order); the comparisons are paired on the
same test networks and decided by 95% bootstrap intervals over test networks and seeds
(:mod:`scalegmn_lite.common.stats`): Kendall tau differences are recomputed on resampled test sets,
accuracy differences are means of per-network correctness differences.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.stats import kendalltau

from ..common.claims import claim, interval_claim
from ..common.stats import bootstrap_mean, bootstrap_stat
from ..tasks.invariant.fit import FitConfig
from ..tasks.invariant.study import accuracy_task, compare, inr_task
from . import RunContext, experiment

#: (models, seeds, epochs, hidden, layers, checkpoints of the accuracy task) per mode. Quick: the
#: ReLU half of the 1024-network ``cnn2d-digits`` zoo at 3 of its checkpoints (1, 3 and final: the
#: whole range of training) and the 2048 INRs of ``inr-views-digits`` (1024 images x 2 views, split by
#: image), with epochs cut so the optimizer steps stay those of the 128/256-network zoos before
QUICK = dict(models=("scalegmn", "gmn", "statnn", "flatmlp"), seeds=(0, 1, 2), epochs=3, hidden=24, layers=2,
             inr_models=("scalegmn", "gmn", "statnn"), inr_epochs=2, checkpoints=(1, 3, -1))
#: reference: the 4096-network zoos (every checkpoint; 7188 INRs, 1797 images x 4 views), 5 seeds
REFERENCE = dict(QUICK, seeds=(0, 1, 2, 3, 4), epochs=4, inr_epochs=4, checkpoints=None)
FULL = dict(models=("scalegmn", "scalegmn-b", "gmn", "statnn", "statnn+aug", "flatmlp", "flatmlp+aug"),
            seeds=(0, 1, 2), epochs=60, hidden=64, layers=4, inr_epochs=60,
            inr_models=("scalegmn", "scalegmn-b", "gmn", "statnn", "statnn+aug", "flatmlp"), checkpoints=None)


def _recipe(name: str, reference: bool):
    from ..zoo.recipes import get_recipe, get_reference_recipe

    return get_reference_recipe(name) if reference else get_recipe(name)


def cnn_relu_zoo(device, progress: bool = True, reference: bool = False):
    """The ReLU CNNs of the ``cnn2d-digits`` zoo (the accuracy-prediction zoo; ``reference``: its
    reference size)."""
    from ..zoo import load_or_build

    zoo = load_or_build(_recipe("cnn2d-digits", reference), device=device, progress=progress)
    return zoo.where(activation="relu")


def inr_zoo(device, progress: bool = True, reference: bool = False):
    """The ``inr-views-digits`` zoo, several INRs per image from independent seeds (``reference``:
    its reference size); split it by image (:func:`~scalegmn_lite.tasks.invariant.study.inr_task`)."""
    from ..zoo import load_or_build

    return load_or_build(_recipe("inr-views-digits", reference), device=device, progress=progress)


def task_checkpoints(zoo, wanted) -> list[int] | None:
    """The accuracy task's checkpoints: ``wanted`` (``-1``: the final one) or every one (``None``)."""
    if wanted is None:
        return None
    return [zoo.checkpoints[-1] if c == -1 else c for c in wanted]


def summarize(df):
    """Mean and std of the test score per task and model."""
    g = df.groupby(["task", "model"])["test_score"]
    out = g.agg(["mean", "std", "count"]).reset_index()
    out["std"] = out["std"].fillna(0.0)
    shift = df.groupby(["task", "model"])["gauge_shift"].max().reset_index()
    return out.merge(shift, on=["task", "model"])


def _preds(df, task: str, model: str) -> np.ndarray:
    """``[S, N]`` test predictions of ``model`` (rows in seed order)."""
    sel = df[(df.task == task) & (df.model == model)].sort_values("seed")
    return np.array([np.asarray(p, dtype=np.float64) for p in sel["test_pred"]])


def tau_difference(df, y: np.ndarray, task: str, a: str, b: str) -> dict:
    """Kendall tau of ``a`` minus ``b`` on the test networks, mean over seeds, with a bootstrap interval
    (test networks and seeds resampled; both models scored on the same resampled networks)."""
    pa, pb = _preds(df, task, a), _preds(df, task, b)

    def tau(p, idx):
        t = kendalltau(p[idx], y[idx])[0]
        return float(t) if t == t else 0.0  # a constant prediction ranks nothing: tau 0

    return bootstrap_stat(lambda s, idx: tau(pa[s], idx) - tau(pb[s], idx), len(pa), len(y))


def accuracy_difference(df, y: np.ndarray, task: str, a: str, b: str) -> dict:
    """Accuracy of ``a`` minus ``b``: bootstrap over test networks and seeds of per-network correctness."""
    return bootstrap_mean((_preds(df, task, a) == y).astype(float) - (_preds(df, task, b) == y).astype(float))


@experiment("invariant")
def run(ctx: RunContext) -> dict:
    p = REFERENCE if ctx.reference else (QUICK if ctx.quick else FULL)
    fit_cfg = FitConfig(epochs=p["epochs"], batch_size=32, lr=2e-3)
    inr_cfg = FitConfig(epochs=p["inr_epochs"], batch_size=32, lr=2e-3)
    cnn = cnn_relu_zoo(ctx.device, ctx.progress, ctx.reference)
    acc = accuracy_task(cnn, task_checkpoints(cnn, p.get("checkpoints")), seed=ctx.seed)
    inr = inr_task(inr_zoo(ctx.device, ctx.progress, ctx.reference), seed=ctx.seed)
    dfs = [compare(acc, p["models"], p["seeds"], fit_cfg, p["hidden"], p["layers"], ctx.device, ctx.progress),
           compare(inr, p["inr_models"], p["seeds"], inr_cfg, p["hidden"], p["layers"], ctx.device, ctx.progress)]
    import pandas as pd

    df = pd.concat(dfs, ignore_index=True)
    summary = summarize(df)
    scale_shift = float(df[df.model.str.startswith("scalegmn")]["gauge_shift"].max())
    baseline_shift = {m: float(df[df.model == m]["gauge_shift"].max()) for m in df.model.unique()
                      if not m.startswith("scalegmn")}
    a, i = "accuracy-prediction", "inr-classification"
    y_acc = acc.test[1].double().cpu().numpy()
    y_inr = inr.test[1].cpu().numpy().astype(np.float64)
    d_gmn = tau_difference(df, y_acc, a, "scalegmn", "gmn")
    d_inr = accuracy_difference(df, y_inr, i, "scalegmn", "gmn")
    d_stat = tau_difference(df, y_acc, a, "scalegmn", "statnn")
    n = len(p["seeds"])
    claims = [
        claim("scalegmn-invariant", "ScaleGMN's prediction does not change when a network is replaced by a random "
              "gauge transform of itself (max relative change, float32, over test networks)", scale_shift, "<=", 1e-4),
        interval_claim("scalegmn-beats-gmn-generalization", f"ScaleGMN predicts held-out CNN accuracy better than GMN "
                       f"(Kendall tau, scalegmn minus gmn, mean of {n} seeds)", d_gmn, ">", 0.0),
        interval_claim("scalegmn-beats-gmn-inr-classification", f"ScaleGMN classifies held-out INRs better than GMN "
                       f"(accuracy, scalegmn minus gmn, mean of {n} seeds)", d_inr, ">", 0.0),
        interval_claim("scalegmn-beats-statnn", f"ScaleGMN predicts held-out CNN accuracy better than StatNN "
                       f"(Kendall tau, scalegmn minus statnn, mean of {n} seeds)", d_stat, ">", 0.0),
    ]
    return {
        "claims": claims,
        "sizes": {"accuracy-prediction": acc.sizes(), "inr-classification": inr.sizes()},
        "summary": summary.to_dict(orient="records"),
        "differences": {"tau_scalegmn_minus_gmn": d_gmn, "inr_acc_scalegmn_minus_gmn": d_inr,
                        "tau_scalegmn_minus_statnn": d_stat},
        "runs": df.drop(columns=["test_pred"]).to_dict(orient="records"),
        "test_predictions": {f"{r.task}/{r.model}/s{r.seed}": r.test_pred for r in df.itertuples()},
        "test_targets": {a: y_acc.tolist(), i: y_inr.astype(int).tolist()},
        "baseline_gauge_shift": baseline_shift,
        "settings": {k: list(v) if isinstance(v, tuple) else v for k, v in p.items()},
        "torch_threads": torch.get_num_threads(),
    }
