"""Figures and plain-word lines for notebook 07 (the fully-amortized one-shot operator).

Each function turns a result of the amortized study (a shipped model's before/after accuracies, the
training log of the operators, a claim, the regime table) into a picture or a few rounded sentences,
so the notebook shows no wall of numbers and its prose is computed from the numbers it talks about.

    fig = plot_before_after(s.target, after)            # per-network accuracy before -> after
    print(claim_line(c))                                # "... -> not reproduced at this budget: ..."

Two figures show the gauge action itself, from tensors the notebooks compute: :func:`draw_gauge_action`
(notebook 01: a small MLP before and after a permutation and scaling of its hidden neurons, recorded
by :func:`gauge_diagram`) and :func:`draw_update_equivariance` (notebook 07: one layer of an operator's
update under a gauge element and under a non-symmetry, recorded by :func:`update_panels`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..common.stats import bootstrap_mean, decide

__all__ = ["plot_before_after", "plot_training_runs", "training_summary", "plot_regime", "plot_claims",
           "interval_verdict", "claim_line", "mean_accuracy_lines", "transfer_lines", "points",
           "GaugeDiagram", "gauge_diagram", "draw_gauge_action", "UpdatePanels", "update_panels",
           "draw_update_equivariance"]

#: claims whose measured figure is not an accuracy difference: (how to show it, factor to its unit)
_UNITS = {
    "l1-larger-reduction-lower-loss": ("points of L1-norm reduction", 1.0),
    "one-shot-1000x-faster": ("x", 1.0),
    "gain-grows-with-gscale-dim": ("points per gauge dimension", 100.0),
}
_THRESHOLD = re.compile(r"^\s*(>=|>|<=|<)\s*(-?\d+(?:\.\d+)?)")


def points(x: float, digits: int = 1, sign: bool = True) -> str:
    """An accuracy (or accuracy difference) as percentage points, rounded: ``0.0906 -> '+9.1'``."""
    return f"{100 * float(x):{'+' if sign else ''}.{digits}f}"


def _canvas(ax: Axes | None, size: tuple[float, float]) -> tuple[Figure, Axes]:
    if ax is None:
        fig, ax = plt.subplots(figsize=size)
        return fig, ax
    return ax.figure, ax


def plot_before_after(before, after, ax: Axes | None = None, *, what: str = "held-out networks") -> Figure:
    """Per network, test accuracy after against before (one dot each, in %), with the diagonal "no
    change"; dots above it gained. The title gives the mean gain in points with its 95% bootstrap interval
    over the networks. ``before``, ``after``: ``[B]`` accuracies in [0, 1]."""
    b = 100 * np.asarray(before, dtype=float).reshape(-1)
    a = 100 * np.asarray(after, dtype=float).reshape(-1)
    if b.shape != a.shape or b.size == 0:
        raise ValueError(f"before and after need the same, non-zero number of networks: {b.shape} vs {a.shape}")
    fig, ax = _canvas(ax, (4.6, 4.0))
    gain = bootstrap_mean((a - b) / 100)
    up = a > b
    ax.scatter(b[up], a[up], s=18, color="tab:green", label=f"gained ({int(up.sum())})", zorder=3)
    ax.scatter(b[~up], a[~up], s=18, color="tab:red", label=f"did not gain ({int((~up).sum())})", zorder=3)
    lo, hi = min(b.min(), a.min()) - 2, max(b.max(), a.max()) + 2
    ax.plot([lo, hi], [lo, hi], color="grey", ls="--", lw=0.8, label="no change")
    ax.set(xlim=(lo, hi), ylim=(lo, hi), xlabel="test accuracy before (%)", ylabel="test accuracy after one shot (%)",
           title=f"{len(b)} {what}: mean gain {points(gain['mean'])} points\n"
                 f"(95% interval {points(gain.lo)} to {points(gain.hi)})")
    ax.set_aspect("equal")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1))  # outside the data
    return fig


def plot_training_runs(training, ax: Axes | None = None) -> Figure:
    """Every operator's training run as an arrow from its first to its final training loss (means of the
    first and last accepted steps), one row per (setting, method), one arrow per seed; a cross marks a
    run with rollbacks. ``training``: the study's ``res.training`` DataFrame."""
    groups = list(training.groupby(["setting", "method"], sort=False))
    fig, ax = _canvas(ax, (6.4, 0.35 * len(groups) + 1.2))
    for i, ((setting, method), df) in enumerate(groups):
        for k, (_, r) in enumerate(df.iterrows()):
            y = i + 0.15 * (k - (len(df) - 1) / 2)
            ax.annotate("", xy=(r["final_loss"], y), xytext=(r["first_loss"], y),
                        arrowprops=dict(arrowstyle="->", color="tab:blue", lw=1.2))
            if r.get("rollbacks", 0):
                ax.plot(r["final_loss"], y, "x", color="tab:red")
    ax.set_yticks(range(len(groups)), [f"{s} · {m}" for (s, m), _ in groups], fontsize=8)
    ax.invert_yaxis()
    lo = float(min(training["final_loss"].min(), training["first_loss"].min()))
    hi = float(max(training["final_loss"].max(), training["first_loss"].max()))
    ax.set_xlim(lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo))
    ax.set(xlabel="training loss (first steps -> last steps)",
           title="every operator's training run, one arrow per seed")
    ax.grid(axis="x", alpha=0.3)
    return fig


def training_summary(training) -> str:
    """One or two rounded sentences about ``res.training``: runs, rollbacks, how many losses fell, by how much."""
    fell = training["final_loss"] < training["first_loss"]
    drop = (training["first_loss"] - training["final_loss"]) / training["first_loss"]
    n, rb = len(training), int(training["rollbacks"].sum())
    return (f"{n} runs, {rb} rollback{'s' if rb != 1 else ''} in all; the training loss fell in {int(fell.sum())} of "
            f"{n} runs, by {100 * float(drop.median()):.0f}% (median; from {100 * float(drop.min()):.0f}% to "
            f"{100 * float(drop.max()):.0f}%); median {float(training['seconds'].median()):.0f} s per run")


def plot_regime(table, ax: Axes | None = None) -> Figure:
    """The regime table (:func:`~scalegmn_lite.tasks.amortized.study.regime_table`) as a picture: per
    (setting, method), the measured accuracy gain over the starting networks (filled dot) beside the
    published gain of the same family (hollow diamond, where the paper has the row), in points."""
    fig, ax = _canvas(ax, (6.4, 0.32 * len(table) + 1.3))
    for i, (_, r) in enumerate(table.iterrows()):
        ax.plot(100 * r["gain"], i, "o", color="tab:blue", label="measured" if i == 0 else None)
        pub = r.get("published gain")
        if pub is not None and not (isinstance(pub, float) and math.isnan(pub)):
            ax.plot(100 * pub, i, "D", mfc="none", color="k", label="published" if i == 0 else None)
    ax.axvline(0, color="grey", lw=0.8)
    ax.set_yticks(range(len(table)), [f"{r['setting']} · {r['method']}" for _, r in table.iterrows()], fontsize=8)
    ax.invert_yaxis()
    ax.set(xlabel="accuracy gain over the starting networks (points)", title="measured against published gains")
    handles, labels = ax.get_legend_handles_labels()
    if "published" not in labels:  # the first row may have no published figure
        handles.append(plt.Line2D([], [], marker="D", mfc="none", color="k", ls=""))
        labels.append("published")
    ax.legend(handles, labels, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))  # outside the data
    ax.grid(axis="x", alpha=0.3)
    return fig


def interval_verdict(lo: float, hi: float, op: str, threshold: float) -> str:
    """``"holds"`` when the whole 95% interval ``[lo, hi]`` lies on the claimed side of ``threshold``
    (``op`` one of ``>``, ``>=``, ``<``, ``<=``), ``"refuted"`` when it lies on the other side,
    ``"inconclusive"`` when it contains the threshold (:func:`~scalegmn_lite.common.stats.decide`)."""
    return decide([lo, hi], op, threshold)


def _get(c: Any, key: str):
    return c.get(key) if isinstance(c, Mapping) else getattr(c, key, None)


def _measured(c: Any) -> float | None:
    m = _get(c, "measured")
    if isinstance(m, Mapping):
        for key in (m.get("interval_of"), "slope", "l1_reduction_diff", "held_out_minus_half_in_sample"):
            if key in m and isinstance(m[key], (int, float)):
                return float(m[key])
        return None
    return None if m is None or isinstance(m, bool) else float(m)


def _fmt(x: float, unit: str, factor: float) -> str:
    v = factor * x
    if unit == "x":
        return f"{v:.0f}x"
    digits = 4 if abs(v) < 0.05 and v != 0 else 1
    return f"{v:+.{digits}f}"


def claim_line(c: Any) -> str:
    """One claim (a :class:`~scalegmn_lite.common.claims.Claim` or its JSON dict) in plain, rounded words:
    what was measured, its 95% interval, the target, and the verdict. Where the status is not ``holds``
    the line says "not reproduced at this budget" and why: the interval lies on the other side of the
    target's threshold, or contains it. The verdict is recomputed from the interval where the target is
    a single threshold (and must agree with the claim's recorded status), otherwise taken from it."""
    cid, status, ci, target = _get(c, "id"), _get(c, "status"), _get(c, "ci"), _get(c, "target") or ""
    if ci:  # a NaN bound is stored as the string "nan" in JSON: an undefined interval decides nothing
        ci = [float(v) for v in ci]
        if not all(math.isfinite(v) for v in ci):
            return f"{cid}: no interval ({'; '.join(str(_get(c, 'statement')).split('; ')[-1:])}): {status}"
    unit, factor = _UNITS.get(cid, ("points", 100.0))
    mean = _measured(c)
    shown = "" if mean is None else _fmt(mean, unit, factor)
    match = _THRESHOLD.match(target)
    if ci and match and cid not in ("l1-larger-reduction-lower-loss",):
        verdict = interval_verdict(ci[0], ci[1], match.group(1), float(match.group(2)))
        if verdict != status:
            raise ValueError(f"claim {cid!r}: its interval says {verdict!r}, its recorded status {status!r}")
    else:
        verdict = status
    if ci:
        shown += f" [95% interval {_fmt(ci[0], unit, factor)} to {_fmt(ci[1], unit, factor)}]"
    if unit != "x":
        shown += f" {unit}"
    if match and unit != "x" and cid != "l1-larger-reduction-lower-loss":
        goal = f"target {match.group(1)} {factor * float(match.group(2)):g}"
    else:
        goal = f"target {target.replace(' (95% interval)', '').replace(' (both 95% intervals)', '')}"
    if verdict == "holds":
        words = "reproduced: the whole interval lies on the claimed side" if ci else "reproduced"
    elif verdict == "refuted":
        words = ("not reproduced at this budget: the interval lies on the other side of the target" if ci
                 else "not reproduced at this budget")
    else:
        words = "not reproduced at this budget: the interval contains the target, so this run neither confirms " \
                "nor rules it out"
    line = f"{cid}: {shown.strip()} ({goal}) -> {words}"
    m = _get(c, "measured")
    if isinstance(m, Mapping) and "test_loss_diff" in m:
        line += (f"; test-loss difference {m['test_loss_diff']:+.3f} [{m['test_loss_diff_ci_lo']:+.3f} to "
                 f"{m['test_loss_diff_ci_hi']:+.3f}] (claimed < 0)")
    return line


def mean_accuracy_lines(table, methods: Sequence[str] = ("initial", "scalegmn-b", "gmn", "gmn-aug", "sgd-150",
                                                          "adam-150")) -> list[str]:
    """One line per setting of the study's table: mean test accuracy (%) of each of ``methods`` the setting
    has, rounded (methods a setting did not run are left out, not shown as NaN)."""
    out = []
    for setting, df in table.groupby("setting", sort=False):
        acc = dict(zip(df["method"], df["mean_acc"]))
        parts = [f"{m} {100 * float(acc[m]):.1f}%" for m in methods if m in acc]
        out.append(f"{setting}: " + ", ".join(parts))
    return out


def transfer_lines(rows: Sequence[Mapping]) -> list[str]:
    """The study's transfer rows (``res.transfer``) as sentences with accuracies in %, without NaN cells."""
    out = []
    for r in rows:
        change = f"{100 * r['initial_acc']:.1f}% -> {100 * r['one_shot_acc']:.1f}% ({points(r['gain'])} points)"
        if r.get("arch") and isinstance(r["arch"], str):
            seen = "seen in training" if r.get("seen_in_training") else "never seen"
            out.append(f"{r['transfer']}, {r['arch']} ({seen}, {int(r['networks'])} networks): {change}")
        else:
            own = r.get("own_operator_acc")
            tail = "" if own is None or (isinstance(own, float) and math.isnan(own)) else \
                f"; its own operator reaches {100 * own:.1f}%"
            out.append(f"{r['transfer']} (on {r.get('target')}): {change}{tail}")
    return out


def plot_claims(claims: Sequence[Any], ax: Axes | None = None, title: str = "the claims, measured") -> Figure:
    """Every claim with a 95% interval as one row: the interval (in points, as :func:`claim_line` shows
    it), its mean, and the claim's threshold (black tick); green where the claim holds, red where the
    interval lies on the other side, grey where it contains the threshold. Claims without an interval
    (a measured ratio) are left to :func:`claim_line`."""
    rows = [c for c in claims if _get(c, "ci")]
    fig, ax = _canvas(ax, (6.4, 0.42 * max(len(rows), 1) + 1.3))
    colors = {"holds": "tab:green", "refuted": "tab:red", "inconclusive": "grey"}
    for i, c in enumerate(rows):
        unit, factor = _UNITS.get(_get(c, "id"), ("points", 100.0))
        lo, hi = (factor * v for v in _get(c, "ci"))
        mean = _measured(c)
        col = colors[_get(c, "status")]
        ax.plot([lo, hi], [i, i], color=col, lw=3, solid_capstyle="butt")
        if mean is not None:
            ax.plot(factor * mean, i, "o", color=col)
        match = _THRESHOLD.match(_get(c, "target") or "")
        if match:
            ax.plot(factor * float(match.group(2)), i, "|", color="k", markersize=14, mew=2)
    ax.set_yticks(range(len(rows)), [_get(c, "id") for c in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set(xlabel="measured difference, 95% interval (points)", title=title)
    handles = [plt.Line2D([], [], color=v, lw=3, label=k) for k, v in colors.items()]
    handles.append(plt.Line2D([], [], color="k", marker="|", ls="", markersize=10, mew=2, label="claimed threshold"))
    ax.legend(handles=handles, fontsize=8, loc="best")
    ax.grid(axis="x", alpha=0.3)
    return fig


# ------------------------------------------------------------------------------ the gauge action, drawn
def _scale_label(q) -> str:
    """``2 -> '2'``, ``-1 -> '-1'``, a sympy symbol ``q1_0 -> '$q_{1 0}$'``."""
    if isinstance(q, (int, float, np.integer, np.floating)):
        return f"{float(q):g}"
    if getattr(q, "free_symbols", None):
        import sympy as sp

        return f"${sp.latex(q)}$"
    return f"{float(q):g}"


@dataclass(frozen=True)
class GaugeDiagram:
    """What :func:`draw_gauge_action` draws for an MLP of ``widths`` and one gauge element.

    ``source[l][i]``: which neuron of ``theta`` sits in slot ``i`` of layer ``l`` of ``g . theta``
    (identity for the input and output layers, ``perm[i]`` for a hidden one, as
    ``(Q P h)_i = q_i h_{perm[i]}``); ``labels[l][i]``: its scaling ``q_i`` as text (``""`` where fixed)."""

    widths: tuple[int, ...]
    source: tuple[np.ndarray, ...]
    labels: tuple[tuple[str, ...], ...]


def gauge_diagram(widths: Sequence[int], perms: Sequence[Sequence[int]], scales: Sequence[Sequence]) -> GaugeDiagram:
    """Check one gauge element (per hidden layer a permutation and scalings, e.g. from
    :func:`~scalegmn_lite.symbolic.mlp.sample_symbolic_gauge`) against ``widths`` and record what to draw."""
    widths = tuple(int(n) for n in widths)
    hidden = widths[1:-1]
    if len(widths) < 3:
        raise ValueError(f"widths {widths} have no hidden layer, so there is no gauge action to draw")
    if len(perms) != len(hidden) or len(scales) != len(hidden):
        raise ValueError(f"need one permutation and one scaling per hidden layer ({len(hidden)}), "
                         f"got {len(perms)} and {len(scales)}")
    source, labels = [np.arange(widths[0])], [("",) * widths[0]]
    for l, (n, p, s) in enumerate(zip(hidden, perms, scales), start=1):
        p = np.asarray([int(i) for i in p])
        if sorted(p.tolist()) != list(range(n)):
            raise ValueError(f"hidden layer {l}: {p.tolist()} is not a permutation of 0..{n - 1}")
        if len(s) != n:
            raise ValueError(f"hidden layer {l}: {len(s)} scalings for {n} neurons")
        source.append(p)
        labels.append(tuple(_scale_label(q) for q in s))
    source.append(np.arange(widths[-1]))
    labels.append(("",) * widths[-1])
    return GaugeDiagram(widths, tuple(source), tuple(labels))


def draw_gauge_action(diagram: GaugeDiagram, axes=None, title: str | None = None) -> Figure:
    """Two panels: the MLP ``theta`` and ``g . theta``, layers left to right, every neuron coloured and
    numbered by its identity in ``theta``. In ``g . theta`` a hidden slot holds the neuron it was
    permuted from, with its scaling ``q`` beside it; input and output neurons (grey) stay fixed."""
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(9.0, 3.4))
    axes = np.asarray(axes, dtype=object).reshape(-1)
    if axes.size != 2:
        raise ValueError(f"expected 2 axes (theta and g . theta), got {axes.size}")
    fig = axes[0].figure
    w, L = diagram.widths, len(diagram.widths)
    top = max(w)
    ys = [np.linspace(0, top - 1, n) if n > 1 else np.array([(top - 1) / 2]) for n in w]
    colors = plt.get_cmap("tab10")
    for ax, moved in zip(axes, (False, True)):
        for l in range(L - 1):
            for ya in ys[l]:
                for yb in ys[l + 1]:
                    ax.plot([l, l + 1], [ya, yb], color="0.85", lw=0.6, zorder=1)
        for l in range(L):
            fixed = l in (0, L - 1)
            for i, y in enumerate(ys[l]):
                j = int(diagram.source[l][i]) if moved else i
                face = "0.85" if fixed else colors(j % 10)
                ax.scatter(l, y, s=380, color=face, edgecolor="k", zorder=3)
                ax.text(l, y, str(j), ha="center", va="center", fontsize=9, zorder=4,
                        color="k" if fixed else "white", weight="bold")
                if moved and not fixed:
                    ax.text(l + 0.14, y + 0.22, "×" + diagram.labels[l][i], fontsize=8, color=colors(j % 10),
                            ha="left", va="bottom", zorder=4)
        ax.set_xticks(range(L), ["input"] + [f"hidden {l}" for l in range(1, L - 1)] + ["output"], fontsize=8)
        ax.set_yticks([])
        ax.set_xlim(-0.4, L - 0.5)
        ax.set_ylim(top - 0.4, -0.6)
        for side in ("top", "right", "left"):
            ax.spines[side].set_visible(False)
    axes[0].set_title(r"$\theta$: every hidden neuron in its own slot", fontsize=10)
    axes[1].set_title(r"$g\cdot\theta$: slot $i$ holds $q_i\,\times$ neuron $p_i$", fontsize=10)
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


# ------------------------------------------------------------------- the operator's update, equivariant
@dataclass(frozen=True)
class UpdatePanels:
    """One layer's weight update (network ``index``, layer ``layer``, ``[n_out, n_in]``) of an operator
    ``h`` with ``Delta(theta) = h(theta) - theta``: under a gauge element ``g``, ``Delta(g . theta)``
    beside ``g . Delta(theta)``; under a non-symmetry ``t``, ``Delta(t . theta)`` beside ``t . Delta(theta)``.
    ``gauge_gap`` and ``non_symmetry_gap``: the largest absolute difference of each pair (over the layer)."""

    layer: int
    index: int
    delta_g: np.ndarray
    g_delta: np.ndarray
    delta_t: np.ndarray
    t_delta: np.ndarray

    @property
    def gauge_gap(self) -> float:
        return float(np.abs(self.delta_g - self.g_delta).max())

    @property
    def non_symmetry_gap(self) -> float:
        return float(np.abs(self.delta_t - self.t_delta).max())


def update_panels(operator, ws, g, non_symmetry, layer: int = 0, index: int = 0) -> UpdatePanels:
    """Run ``operator`` (``WeightSpace -> WeightSpace``, e.g. an
    :class:`~scalegmn_lite.tasks.amortized.operator.AmortizedOperator`) on ``theta = ws``, ``g . theta``
    and ``t . theta`` and record the weight updates of ``layer`` for network ``index``.

    ``g``: a :class:`~scalegmn_lite.weightspace.gauge.GaugeElement` of ``ws.spec``; ``non_symmetry``: a
    linear map of weight spaces that is not in the gauge group (e.g.
    ``lambda w: sample_non_symmetry(w, "wrong_scaling")``), applied to ``theta`` and to ``Delta(theta)``
    alike, so it must be deterministic."""
    import torch

    if g.spec.layers != ws.spec.layers:
        raise ValueError(f"the gauge element is for {g.spec.to_text()!r}, the weights are {ws.spec.to_text()!r}")
    if not 0 <= layer < ws.spec.num_layers:
        raise ValueError(f"layer {layer} out of range: {ws.spec.to_text()!r} has layers 0..{ws.spec.num_layers - 1}")
    if not 0 <= index < ws.batch_size:
        raise ValueError(f"index {index} out of range: the batch has {ws.batch_size} networks")

    def delta(w):
        return operator(w) - w

    def pick(w) -> np.ndarray:
        return w.weights[layer][index].detach().reshape(w.weights[layer].shape[1], -1).cpu().numpy()

    with torch.no_grad():
        d = delta(ws)
        return UpdatePanels(layer, index, pick(delta(g.apply(ws))), pick(g.apply(d)),
                            pick(delta(non_symmetry(ws))), pick(non_symmetry(d)))


def draw_update_equivariance(panels: UpdatePanels, axes=None, symmetry: str = "gauge element g",
                             non_symmetry: str = "non-symmetry t") -> Figure:
    """Two rows of heat-maps of one layer's update: ``Delta(g . theta)``, ``g . Delta(theta)`` and their
    difference (top: equal, the difference blank), then the same for a non-symmetry ``t`` (bottom: the
    difference visible). One colour scale per row; the titles give the largest ``|difference|``."""
    if axes is None:
        fig, axes = plt.subplots(2, 3, figsize=(11.0, 5.6), constrained_layout=True)
    axes = np.asarray(axes, dtype=object).reshape(-1)
    if axes.size != 6:
        raise ValueError(f"expected 6 axes (a 2 x 3 grid), got {axes.size}")
    fig = axes[0].figure
    axes = axes.reshape(2, 3)
    rows = [(panels.delta_g, panels.g_delta, "g", symmetry, panels.gauge_gap),
            (panels.delta_t, panels.t_delta, "t", non_symmetry, panels.non_symmetry_gap)]
    for r, (a, b, s, name, gap) in enumerate(rows):
        vmax = float(max(np.abs(a).max(), np.abs(b).max(), 1e-12))
        for c, (m, t) in enumerate([(a, rf"$\Delta({s}\cdot\theta)$"), (b, rf"${s}\cdot\Delta(\theta)$"),
                                    (a - b, f"difference: max |diff| = {gap:.1e}")]):
            ax = axes[r, c]
            im = ax.imshow(m, cmap="coolwarm", vmin=-vmax, vmax=vmax, aspect="auto", interpolation="nearest")
            ax.set_title(t, fontsize=9)
            ax.set(xlabel="input neuron", ylabel=f"{name}\noutput neuron" if c == 0 else "")
            ax.set_xticks([])
            ax.set_yticks([])
        fig.colorbar(im, ax=list(axes[r]), shrink=0.85, label="update")
    fig.suptitle(f"layer {panels.layer} of the update: equal under a symmetry, not under a non-symmetry",
                 fontsize=11)
    return fig
