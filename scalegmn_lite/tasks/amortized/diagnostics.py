"""Why an operator does or does not transfer (issue 22): the diagnostics of the amortized study's
headroom setting, each a small function of weights, per-network figures and training records.

* :func:`steps_curve`: held-out, in-sample and validation gain against operator steps (the periodic
  evaluations of :func:`~scalegmn_lite.tasks.amortized.operator.train_operator`), mean over seeds;
* :func:`size_curve`: held-out and in-sample gain against the number of training networks (the smallest
  is the "overfit a few networks" positive control: if its in-sample gain is small, the operator cannot
  express the fix at all);
* :func:`update_size`: the relative size ``||theta' - theta|| / ||theta||`` of the proposed update;
* :func:`who_gains`: the gain of each held-out network against the zoo's hyper-parameters (training
  fraction, learning rate, init scale, weight decay: Spearman correlations; optimizer: mean per value)
  and its starting accuracy;
* :func:`calibration_control`: accuracy gain against loss gain, with the loss a single best logit
  temperature per network would give (fitted on training images): an operator whose loss gain is no
  larger than that is only recalibrating, not improving the decision boundaries.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import torch
from scipy.stats import spearmanr

from ...weightspace.weights import WeightSpace
from ..losses import logits, logits_cross_entropy

__all__ = ["steps_curve", "size_curve", "update_size", "who_gains", "calibration_control", "TEMPERATURES"]

#: the logit temperatures :func:`calibration_control` chooses from (a log grid; 1 = unchanged)
TEMPERATURES = tuple(float(t) for t in np.exp(np.linspace(np.log(0.1), np.log(10.0), 41)))


def steps_curve(records: Sequence[dict]) -> dict:
    """``{"step": [...], name: [...]}``: the mean over ``records`` (one per seed, each with its
    ``"evals"``) of every monitored gain at every evaluated step (the steps every record has)."""
    evals = [r.get("evals") or [] for r in records]
    if not evals or not all(evals):
        return {}
    steps = sorted(set.intersection(*[{e["step"] for e in ev} for ev in evals]))
    names = sorted({k for ev in evals for e in ev for k in e if k != "step"})
    out: dict = {"step": steps, "seeds": len(evals)}
    for k in names:
        out[k] = [round(float(np.mean([next(e[k] for e in ev if e["step"] == t) for ev in evals])), 5) for t in steps]
    return out


def size_curve(records: dict[int, dict]) -> list[dict]:
    """One point per number of training networks ``n`` (``records``: ``n -> operator record`` with
    ``"evals"``): the in-sample (``"train"``), validation and held-out (``"test"``) gain of the last
    evaluation (the operator after all its steps, no selection)."""
    out = []
    for n in sorted(records):
        last = records[n]["evals"][-1]
        out.append({"networks": int(n), "steps": int(last["step"]), "in_sample_gain": last.get("train"),
                    "val_gain": last.get("val"), "held_out_gain": last.get("test")})
    return out


def update_size(before: WeightSpace, after: WeightSpace) -> np.ndarray:
    """Per network ``||theta' - theta|| / ||theta||`` over every weight and bias."""
    a, b = before.flatten().double(), after.flatten().double()
    return ((b - a).norm(dim=1) / a.norm(dim=1).clamp_min(1e-12)).cpu().numpy()


def who_gains(gain: np.ndarray, metadata: pd.DataFrame, initial_acc: np.ndarray) -> dict:
    """The per-network ``gain [B]`` against ``metadata`` (``B`` rows, the zoo's columns) and the starting
    accuracy: Spearman correlations for the numeric hyper-parameters, mean gain per optimizer."""
    gain = np.asarray(gain, dtype=np.float64)
    if len(metadata) != len(gain):
        raise ValueError(f"who_gains: {len(gain)} gains but {len(metadata)} metadata rows; pass the test "
                         "networks' own rows")
    out: dict = {"spearman": {}, "mean_gain_by_optimizer": {}}
    cols = [c for c in ("train_fraction", "lr", "init_scale", "weight_decay") if c in metadata]
    pairs = [(c, metadata[c].to_numpy(dtype=np.float64)) for c in cols] + [("initial_acc", np.asarray(initial_acc))]
    for c, v in pairs:
        if np.ptp(v) == 0 or np.ptp(gain) == 0:
            out["spearman"][c] = None  # undefined for a constant column
            continue
        r = spearmanr(v, gain)
        out["spearman"][c] = {"rho": round(float(r.statistic), 4), "p": float(f"{r.pvalue:.3g}")}
    if "optimizer" in metadata:
        for opt, idx in metadata.groupby("optimizer").indices.items():
            out["mean_gain_by_optimizer"][str(opt)] = {"gain": round(float(gain[idx].mean()), 5), "networks": len(idx)}
    return out


@torch.no_grad()
def calibration_control(before: WeightSpace, after: WeightSpace, x_fit: torch.Tensor, y_fit: torch.Tensor,
                        x: torch.Tensor, y: torch.Tensor, temperatures: Sequence[float] = TEMPERATURES) -> dict:
    """Per network: accuracy gain and loss gain (``loss_before - loss_after``, > 0 = better) of
    ``after`` on ``(x, y)``, and the loss gain of ``before`` with its logits divided by the one
    temperature (from ``temperatures``) that minimises its loss on ``(x_fit, y_fit)``. Returns the
    per-network arrays and their means, the share of the operator's loss gain a temperature alone
    reaches, and the Spearman correlation of accuracy and loss gains."""
    z_fit = logits(before, x_fit)
    t = torch.tensor(list(temperatures), dtype=z_fit.dtype, device=z_fit.device)
    fit = torch.stack([logits_cross_entropy(z_fit / ti, y_fit) for ti in t], 1)  # [B, T]
    best_t = t[fit.argmin(1)]
    z0, z1 = logits(before, x), logits(after, x)
    l0, l1 = logits_cross_entropy(z0, y), logits_cross_entropy(z1, y)
    lt = logits_cross_entropy(z0 / best_t[:, None, None], y)
    a0 = (z0.argmax(-1) == y).double().mean(1)
    a1 = (z1.argmax(-1) == y).double().mean(1)
    acc_gain, loss_gain, temp_gain = (a1 - a0).cpu().numpy(), (l0 - l1).double().cpu().numpy(), \
        (l0 - lt).double().cpu().numpy()
    rho = spearmanr(acc_gain, loss_gain).statistic if np.ptp(acc_gain) > 0 and np.ptp(loss_gain) > 0 else float("nan")
    return {"acc_gain": acc_gain, "loss_gain": loss_gain, "temperature_loss_gain": temp_gain,
            "temperature": best_t.double().cpu().numpy(),
            "mean_acc_gain": float(acc_gain.mean()), "mean_loss_gain": float(loss_gain.mean()),
            "mean_temperature_loss_gain": float(temp_gain.mean()),
            "spearman_acc_vs_loss_gain": None if not np.isfinite(rho) else round(float(rho), 4)}
