"""Figures and tables of the residual study (``reproduce`` experiment ``residual``, notebook 09 section 6), drawn
from a result file alone (the committed reference run's, the quick run's or a notebook's own), so the notebook never
types a number.

* :func:`scores_frame`: per zoo and model, the held-out tau with its interval, the same on gauge-transformed test
  networks, the in-sample tau and the validation score the model was chosen on;
* :func:`plot_gauge_test`: that table as bars, original against gauge-transformed;
* :func:`plot_validation_curves`: validation tau per epoch (mean over seeds), the curve that says whether more epochs
  would help;
* :func:`plot_data_curve`: held-out and in-sample tau against the number of training networks;
* :func:`plot_zoo_accuracy`: a zoo's test accuracy per checkpoint for a few networks and the final spread;
* :func:`reading`: the result in plain words, every figure and verdict word computed from the file.
"""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..common.stats import decide

__all__ = ["scores_frame", "plot_gauge_test", "plot_validation_curves", "plot_data_curve", "plot_zoo_accuracy",
           "reading", "MODEL_LABELS"]

#: what each model name of the study means, for legends and tables
MODEL_LABELS = {
    "scalegmn": "ScaleGMN (exact block graphs)",
    "scalegmn-plain": "naive ScaleGMN: shortcuts dropped",
    "scalegmn-normaffine": "naive ScaleGMN: norms as affine layers",
    "gmn": "GMN (permutations only)",
    "statnn": "StatNN (weight statistics)",
    "flatmlp": "flat MLP",
    "weight-norm": "weight-norm floor",
}


def _ax(ax, figsize=(7, 3.5)):
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def _fmt_iv(s: dict | None) -> str:
    if not s:
        return "-"
    lo, hi = s["ci"]
    return f"{s['mean']:.3f} [{lo:.3f}, {hi:.3f}]"


def scores_frame(result: dict, zoo: str | None = None) -> pd.DataFrame:
    """One row per (zoo, model): held-out Kendall tau with its 95% interval (whole test networks and seeds
    resampled), the same on gauge-transformed test networks, the in-sample tau (training networks, at the epoch
    kept), the mean validation tau (what chose the model) and whether it was chosen. ``zoo``: one zoo only."""
    rows = []
    for z, pz in result["per_zoo"].items():
        if zoo is not None and z != zoo:
            continue
        ins = result["zoos"][z].get("in_sample", {})
        for m, s in pz["scores"].items():
            rows.append({"zoo": z, "model": m, "held-out tau": _fmt_iv(s),
                         "gauge-transformed": _fmt_iv(pz["scores_gauge"].get(m)),
                         "in-sample": f"{ins[m]:.3f}" if m in ins else "-",
                         "validation": (f"{pz['validation_score'][m]:.3f}" if m in pz["validation_score"] else "-"),
                         "chosen on validation": "yes" if m == pz["chosen"] else ""})
    return pd.DataFrame(rows)


def plot_gauge_test(result: dict, zoo: str, ax=None, models: Sequence[str] | None = None):
    """Held-out tau of every model on the test networks (dark) and on the same networks replaced by random gauge
    transforms of themselves (light), with 95% intervals: an invariant model's bars are equal."""
    ax = _ax(ax)
    pz = result["per_zoo"][zoo]
    models = [m for m in (models or pz["scores_gauge"]) if m in pz["scores_gauge"]]
    x = np.arange(len(models))
    for off, key, label, alpha in ((-0.2, "scores", "test networks", 1.0),
                                   (0.2, "scores_gauge", "gauge-transformed test networks", 0.45)):
        s = [pz[key][m] for m in models]
        mean = np.array([v["mean"] for v in s])
        err = np.abs(np.array([v["ci"] for v in s]).T - mean)
        ax.bar(x + off, mean, 0.4, yerr=err, capsize=3, color="tab:blue", alpha=alpha, label=label)
    ax.set_xticks(x, [MODEL_LABELS.get(m, m).replace(" (", "\n(").replace(": ", ":\n") for m in models], fontsize=8)
    ax.set_ylabel("Kendall tau (held out)")
    ax.axhline(0, color="k", lw=0.5)
    ax.set_title(f"{zoo}: the gauge test", fontsize=9)
    ax.legend(fontsize=8, loc="lower left")
    return ax


def plot_validation_curves(result: dict, zoo: str, ax=None):
    """Validation tau after every epoch, mean over seeds (thin: each seed), per model: still rising at the last
    epoch means more epochs would help."""
    ax = _ax(ax, (6, 3.5))
    runs = pd.DataFrame(result["zoos"][zoo]["runs"])
    for i, (m, g) in enumerate(runs.groupby("model", sort=False)):
        curves = [[h["val_score"] for h in hist] for hist in g["history"]]
        n = min(len(c) for c in curves)
        arr = np.array([c[:n] for c in curves])
        epochs = np.arange(1, n + 1)
        color = f"C{i}"
        for c in arr:
            ax.plot(epochs, c, color=color, lw=0.5, alpha=0.4)
        ax.plot(epochs, arr.mean(0), color=color, lw=2, label=MODEL_LABELS.get(m, m))
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation Kendall tau")
    ax.set_title(f"{zoo}: learning curves", fontsize=9)
    ax.legend(fontsize=8)
    return ax


def plot_data_curve(result: dict, zoo: str | None = None, ax=None):
    """Held-out tau (solid, mean over seeds, bars: the seeds' range) and in-sample tau (dashed) against the number of
    training networks, for the models of the study's data curve; ``None`` when the result has no curve."""
    zoo = zoo or next((z for z, r in result["zoos"].items() if r.get("data_curve")), None)
    if zoo is None:
        return None
    ax = _ax(ax, (6, 3.5))
    pts = result["zoos"][zoo]["data_curve"]
    n = [p["training_networks"] for p in pts]
    for i, m in enumerate(pts[0]["test_score"]):
        vals = [np.array(p["test_score"][m]) for p in pts]
        mean = np.array([v.mean() for v in vals])
        err = np.array([[v.mean() - v.min(), v.max() - v.mean()] for v in vals]).T
        ax.errorbar(n, mean, yerr=err, color=f"C{i}", marker="o", capsize=3, label=f"{MODEL_LABELS.get(m, m)} held out")
        ax.plot(n, [p["in_sample"].get(m, np.nan) for p in pts], color=f"C{i}", ls="--",
                label=f"{MODEL_LABELS.get(m, m)} in-sample")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("training networks")
    ax.set_ylabel("Kendall tau")
    ax.set_title(f"{zoo}: more training networks", fontsize=9)
    ax.legend(fontsize=8)
    return ax


def plot_zoo_accuracy(zoo, n_curves: int = 12, axes=None, seed: int = 0):
    """Left: test accuracy at every checkpoint for ``n_curves`` random networks of ``zoo``; right: the histogram of
    the final test accuracy of all of them."""
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    md = zoo.metadata
    epochs = list(zoo.checkpoints)
    pick = np.random.default_rng(seed).choice(len(md), size=min(n_curves, len(md)), replace=False)
    for i in pick:
        axes[0].plot(epochs, [md[f"test_acc@{e}"].iloc[i] for e in epochs], marker=".", lw=1)
    axes[0].set_xlabel("epoch")
    axes[0].set_ylabel("test accuracy")
    axes[0].set_title(f"{n_curves} networks' training", fontsize=9)
    axes[1].hist(md["test_acc"], bins=30, color="tab:gray")
    axes[1].set_xlabel("final test accuracy")
    axes[1].set_ylabel("networks")
    axes[1].set_title(f"all {len(md)} networks", fontsize=9)
    return axes


def reading(result: dict, target: float = 0.8) -> str:
    """The result in plain words, every figure and every verdict word computed from the file (so the text cannot
    contradict the numbers beside it): per zoo, the model chosen on validation against the target, what the gauge
    test does to each model, ScaleGMN against the naive ScaleGMNs, the in-sample gaps, and what the learning and data
    curves say about more compute."""
    lab = lambda m: MODEL_LABELS.get(m, m)  # noqa: E731
    lines = []
    for z, pz in result["per_zoo"].items():
        chosen = pz["chosen"]
        s = pz["scores"][chosen]
        # the words follow the claims' own decision (common.stats.decide), so they cannot disagree with a verdict
        met = {"holds": "met", "refuted": "missed", "inconclusive": "not decided (the interval straddles it)"}[
            decide(s["ci"], ">=", target)]
        words = [f"**{z}.** Chosen on validation: {lab(chosen)}, held-out tau {_fmt_iv(s)}; the target {target} is "
                 f"{met}."]
        if "scalegmn" in pz["scores"] and chosen != "scalegmn":
            words.append(f"ScaleGMN: {_fmt_iv(pz['scores']['scalegmn'])}.")
        drops = []
        for m, d in pz.get("gauge_drop", {}).items():
            verb = {"holds": "drops", "refuted": "rises", "inconclusive": "does not measurably move"}[
                decide(d["ci"], ">", 0.0)]
            drops.append(f"{lab(m)} {verb} ({d['mean']:+.3f} [{d['ci'][0]:+.3f}, {d['ci'][1]:+.3f}])")
        words.append(f"On gauge-transformed test networks ScaleGMN's tau changes by at most "
                     f"{pz['scalegmn_gauge_change']:.1e}; " + ("; ".join(drops) or "no baseline was scored") + ".")
        naive = []
        for m, d in pz.get("beats_naive", {}).items():
            verb = {"holds": "beats", "refuted": "loses to", "inconclusive": "does not measurably differ from"}[
                decide(d["ci"], ">", 0.0)]
            naive.append(f"{verb} {lab(m)} ({d['mean']:+.3f} [{d['ci'][0]:+.3f}, {d['ci'][1]:+.3f}])")
        if naive:
            words.append("On those networks ScaleGMN " + "; ".join(naive) + ".")
        ins = result["zoos"][z].get("in_sample", {})
        gaps = {m: ins[m] - pz["scores"][m]["mean"] for m in ins if m in pz["scores"]}
        if gaps:
            worst = max(gaps, key=gaps.get)
            sg = f"ScaleGMN {gaps['scalegmn']:+.3f}, " if "scalegmn" in gaps else ""
            words.append(f"In-sample minus held-out tau: {sg}largest {lab(worst)} {gaps[worst]:+.3f}.")
        lines.append(" ".join(words))
    runs = [r for zr in result["zoos"].values() for r in zr["runs"]]
    last = sum(1 for r in runs if r.get("history") and r["best_epoch"] == r["history"][-1]["epoch"])
    lines.append(f"**Learning curves.** The epoch kept (best validation tau) was the last one in {last} of "
                 f"{len(runs)} runs" + (": most runs were still improving when training stopped, so more epochs "
                                        "would likely help." if last > len(runs) / 2 else "."))
    zc = next((z for z, r in result["zoos"].items() if r.get("data_curve")), None)
    if zc is not None:
        pts = result["zoos"][zc]["data_curve"]
        parts = []
        for m in pts[0]["test_score"]:
            means = [float(np.mean(p["test_score"][m])) for p in pts]
            trend = ("rises" if all(b > a for a, b in zip(means, means[1:])) else
                     "does not rise steadily")
            parts.append(f"{lab(m)}'s held-out tau {trend} " + " -> ".join(f"{v:.3f}" for v in means))
        ns = " -> ".join(str(p["training_networks"]) for p in pts)
        lines.append(f"**Data curve ({zc}).** With {ns} training networks: " + "; ".join(parts) + ".")
    return "\n\n".join(lines)
