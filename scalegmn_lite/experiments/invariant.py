"""Invariant metanetworks (issue 4): CNN accuracy prediction and INR classification, ScaleGMN
against GMN, StatNN and a flat MLP (with and without gauge augmentation)."""

from __future__ import annotations

import torch

from ..common.claims import claim
from ..tasks.invariant.fit import FitConfig
from ..tasks.invariant.study import accuracy_task, compare, inr_task
from . import RunContext, experiment

#: (models, seeds, epochs, hidden, layers) per mode
QUICK = dict(models=("scalegmn", "gmn", "statnn", "flatmlp"), seeds=(0,), epochs=10, hidden=24, layers=2,
             inr_models=("scalegmn", "gmn", "statnn"), inr_epochs=4)
FULL = dict(models=("scalegmn", "scalegmn-b", "gmn", "statnn", "statnn+aug", "flatmlp", "flatmlp+aug"),
            seeds=(0, 1, 2), epochs=60, hidden=64, layers=4, inr_epochs=60,
            inr_models=("scalegmn", "scalegmn-b", "gmn", "statnn", "statnn+aug", "flatmlp"))


def cnn_relu_zoo(device, progress: bool = True):
    """The ReLU CNNs of the ``cnn2d-digits`` zoo (the accuracy-prediction zoo)."""
    from ..zoo import load_or_build

    zoo = load_or_build("cnn2d-digits", device=device, progress=progress)
    return zoo.where(activation="relu")


def inr_zoo(device, progress: bool = True):
    from ..zoo import load_or_build

    return load_or_build("inr-digits", device=device, progress=progress)


def summarize(df):
    """Mean and std of the test score per task and model."""
    g = df.groupby(["task", "model"])["test_score"]
    out = g.agg(["mean", "std", "count"]).reset_index()
    out["std"] = out["std"].fillna(0.0)
    shift = df.groupby(["task", "model"])["gauge_shift"].max().reset_index()
    return out.merge(shift, on=["task", "model"])


@experiment("invariant")
def run(ctx: RunContext) -> dict:
    p = QUICK if ctx.quick else FULL
    fit_cfg = FitConfig(epochs=p["epochs"], batch_size=32, lr=2e-3)
    inr_cfg = FitConfig(epochs=p["inr_epochs"], batch_size=32, lr=2e-3)
    acc = accuracy_task(cnn_relu_zoo(ctx.device, ctx.progress), seed=ctx.seed)
    inr = inr_task(inr_zoo(ctx.device, ctx.progress), seed=ctx.seed)
    dfs = [compare(acc, p["models"], p["seeds"], fit_cfg, p["hidden"], p["layers"], ctx.device, ctx.progress),
           compare(inr, p["inr_models"], p["seeds"], inr_cfg, p["hidden"], p["layers"], ctx.device, ctx.progress)]
    import pandas as pd

    df = pd.concat(dfs, ignore_index=True)
    summary = summarize(df)

    def mean(task, model):
        row = summary[(summary.task == task) & (summary.model == model)]
        return float(row["mean"].iloc[0])

    scale_shift = float(df[df.model.str.startswith("scalegmn")]["gauge_shift"].max())
    baseline_shift = {m: float(df[df.model == m]["gauge_shift"].max()) for m in df.model.unique()
                      if not m.startswith("scalegmn")}
    a, i = "accuracy-prediction", "inr-classification"
    claims = [
        claim("scalegmn-invariant", "ScaleGMN's prediction does not change when a network is replaced by a random "
              "gauge transform of itself (max relative change, float32, over test networks)", scale_shift, "<=", 1e-4),
        claim("scalegmn-beats-gmn-generalization", "ScaleGMN predicts held-out CNN accuracy better than GMN "
              "(Kendall tau, scalegmn minus gmn)", mean(a, "scalegmn") - mean(a, "gmn"), ">", 0.0),
        claim("scalegmn-beats-gmn-inr-classification", "ScaleGMN classifies held-out INRs better than GMN "
              "(accuracy, scalegmn minus gmn)", mean(i, "scalegmn") - mean(i, "gmn"), ">", 0.0),
        claim("scalegmn-beats-statnn", "ScaleGMN predicts held-out CNN accuracy better than StatNN "
              "(Kendall tau, scalegmn minus statnn)", mean(a, "scalegmn") - mean(a, "statnn"), ">", 0.0),
    ]
    return {
        "claims": claims,
        "sizes": {"accuracy-prediction": acc.sizes(), "inr-classification": inr.sizes()},
        "summary": summary.to_dict(orient="records"),
        "runs": df.to_dict(orient="records"),
        "baseline_gauge_shift": baseline_shift,
        "settings": {k: list(v) if isinstance(v, tuple) else v for k, v in p.items()},
        "torch_threads": torch.get_num_threads(),
    }
