"""The zoos the course's trained notebooks learn from (notebook 03): which notebook uses which zoo, how
widely its networks' accuracies spread, and the INR contrast between Sitzmann's SIREN init and the
init the published MNIST INRs were fitted with.

* :data:`STUDY_ZOOS` names the zoos notebooks 06-08 train on and what each is for;
  :func:`study_zoo_table` describes the built zoos (size, architecture, checkpoints, users).
* :func:`accuracy_spread` summarises a classifier zoo's final test accuracy per activation (10%,
  median, 90% quantiles); :func:`draw_accuracy_strips` draws every network as a dot.
* :func:`refit_inrs` fits the first networks of an INR recipe again, recording more checkpoints
  (same seeds, images and optimizer: at a checkpoint the recipe also records, the PSNR is the zoo's own,
  up to float rounding); :func:`psnr_by_step`, :func:`layer_change` and :func:`first_layer_frequencies`
  read off what the fit did; :func:`draw_init_contrast` draws it.

Nothing here decides what a notebook concludes: the notebook prints the numbers and asserts its words.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

__all__ = [
    "StudyZoo",
    "STUDY_ZOOS",
    "PSNR_CEILING",
    "study_zoo_table",
    "accuracy_spread",
    "draw_accuracy_strips",
    "refit_inrs",
    "psnr_by_step",
    "layer_change",
    "first_layer_frequencies",
    "draw_init_contrast",
]

#: the highest PSNR :func:`scalegmn_lite.zoo.inr.psnr` reports: it floors the MSE at 1e-12
PSNR_CEILING = 120.0


@dataclass(frozen=True)
class StudyZoo:
    """A zoo a trained notebook learns from: its recipe name, what it is for (plain words) and who uses it."""

    name: str
    role: str
    used_in: str


#: the zoos notebooks 06-08 train on, in their quick size (the recipes of :mod:`scalegmn_lite.zoo.recipes`)
STUDY_ZOOS: tuple[StudyZoo, ...] = (
    StudyZoo("cnn1d-hp-mnist1d", "CNNs whose final accuracy varies widely (training fraction, optimizer, "
                                 "learning rate, init scale, weight decay)",
             "06 accuracy prediction (ReLU half, every checkpoint); 07 the operator that improves networks "
             "(tanh half); 08 autoencoder and merging (ReLU half)"),
    StudyZoo("cnn1d-plateau-mnist1d", "CNNs trained on all the data until they stopped improving (cosine "
                                      "learning-rate decay to 0)",
             "07 the one-shot paper's CNN rows (tanh half)"),
    StudyZoo("mlp-plateau-mnist1d", "the same for MLPs", "07 the one-shot paper's MLP rows (tanh half)"),
    StudyZoo("inr-dws-digits", "two SIRENs per digit image, each from its own random init, fitted like the "
                               "published MNIST INRs", "06 INR classification; 08 INR autoencoder"),
)


def study_zoo_table(zoos: Mapping[str, "object"], roles: Sequence[StudyZoo] = STUDY_ZOOS) -> pd.DataFrame:
    """One row per zoo of ``roles`` found in ``zoos`` (name -> built :class:`~scalegmn_lite.zoo.Zoo`):
    networks, architecture(s), checkpoints (epochs, or fitting steps for INRs), role and users."""
    rows = []
    for r in roles:
        if r.name not in zoos:
            continue
        z = zoos[r.name]
        archs = sorted({s.to_text() for s in z.specs})
        rows.append({"zoo": r.name, "networks": len(z), "architecture": " | ".join(archs),
                     "checkpoints": ", ".join(str(c) for c in z.checkpoints), "what it is": r.role,
                     "used in notebook": r.used_in})
    if not rows:
        raise ValueError(f"none of the zoos {[r.name for r in roles]} given; got {list(zoos)}")
    return pd.DataFrame(rows)


def accuracy_spread(metadata: pd.DataFrame, column: str = "test_acc", by: str = "activation") -> pd.DataFrame:
    """Per value of ``by``: networks, 10% quantile, median, 90% quantile, the 10-90% spread and the max
    of ``column`` (a classifier zoo's final test accuracy by default)."""
    for c in (column, by):
        if c not in metadata:
            raise ValueError(f"metadata has no column {c!r}; columns: {list(metadata.columns)}")
    g = metadata.groupby(by)[column]
    out = pd.DataFrame({"networks": g.size(), "10%": g.quantile(0.1), "median": g.median(),
                        "90%": g.quantile(0.9), "max": g.max()})
    out.insert(4, "spread 10-90%", out["90%"] - out["10%"])
    return out.reset_index()


def draw_accuracy_strips(zoos: Mapping[str, pd.DataFrame], column: str = "test_acc", color_by: str = "train_fraction",
                         chance: float = 0.1, ax=None, seed: int = 0) -> Figure:
    """One row per (zoo, activation): every network's ``column`` as a dot (coloured by ``color_by``
    where the zoo has that column, grey otherwise), its median as a black tick and its 10-90% range as
    a black bar; a dotted line at ``chance``. The legend sits outside the axes.

    ``zoos``: zoo name -> metadata ``DataFrame`` (with ``activation`` and ``column``)."""
    if not zoos:
        raise ValueError("no zoos given")
    rows = []
    for name, md in zoos.items():
        for c in (column, "activation"):
            if c not in md:
                raise ValueError(f"zoo {name!r} has no metadata column {c!r}")
        for act in sorted(md["activation"].unique()):
            rows.append((f"{name}\n{act}", md[md["activation"] == act]))
    if ax is None:
        fig, ax = plt.subplots(figsize=(10, 0.9 + 0.62 * len(rows)))
    fig = ax.figure
    levels = sorted({float(v) for _, md in rows if color_by in md for v in md[color_by]})
    cmap = plt.get_cmap("viridis")
    colors = {v: cmap(0.1 + 0.8 * i / max(1, len(levels) - 1)) for i, v in enumerate(levels)}
    rng = np.random.default_rng(seed)
    for i, (_, md) in enumerate(rows):
        vals = np.asarray(md[column], dtype=float)
        if not np.isfinite(vals).all():
            raise ValueError(f"row {i}: non-finite {column}")
        c = [colors[float(v)] for v in md[color_by]] if color_by in md else "0.55"
        ax.scatter(vals, i + rng.uniform(-0.28, 0.28, len(vals)), s=5, alpha=0.55, c=c, lw=0, zorder=2)
        lo, med, hi = np.quantile(vals, [0.1, 0.5, 0.9])
        ax.plot([lo, hi], [i - 0.38, i - 0.38], color="k", lw=2, zorder=3)
        ax.plot([med, med], [i - 0.48, i - 0.28], color="k", lw=2, zorder=3)
    ax.axvline(chance, color="k", ls=":", lw=1, zorder=1)
    ax.set_yticks(range(len(rows)), [r for r, _ in rows])
    ax.set_ylim(len(rows) - 0.5, -0.6)
    ax.set_xlabel("final test accuracy" if column == "test_acc" else column.replace("_", " "))
    ax.tick_params(labelsize=9)
    handles = [Line2D([], [], color="k", lw=2, label="10-90% range, median tick"),
               Line2D([], [], color="k", ls=":", lw=1, label=f"chance ({chance:g})")]
    handles += [Patch(color=colors[v], label=f"trained on {v:.0%} of the data") for v in levels]
    if any(color_by not in md for _, md in rows):
        handles.append(Patch(color="0.55", label="all the data"))
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    return fig


# ------------------------------------------------------------------------------------ INR contrast
def refit_inrs(recipe, networks: int, checkpoints: Sequence[int], device="cpu", inr_init: str | None = None):
    """The first ``networks`` INRs of the INR recipe ``recipe`` fitted again with their own seeds, images
    and learning rate, for ``max(checkpoints)`` Adam steps, recording every step in ``checkpoints``
    (``inr_init``: swap the init convention, ``"siren"`` or ``"dwsnets"``). Returns a
    :class:`~scalegmn_lite.zoo.Zoo` whose metadata has ``psnr@<step>`` for every checkpoint."""
    from ..zoo.build import build_zoo

    if getattr(recipe, "task", None) != "inr":
        raise ValueError(f"refit_inrs needs an INR recipe, got task {getattr(recipe, 'task', None)!r}")
    cps = sorted({int(c) for c in checkpoints})
    if not cps or cps[0] < 0:
        raise ValueError(f"checkpoints must be non-negative steps, got {list(checkpoints)}")
    if not 1 <= networks <= recipe.num_networks:
        raise ValueError(f"networks must lie in [1, {recipe.num_networks}], got {networks}")
    r = replace(recipe, epochs=cps[-1], checkpoint_epochs=tuple(cps),
                inr_init=recipe.inr_init if inr_init is None else inr_init)
    return build_zoo(r, device=device, progress=False, indices=range(networks))


def psnr_by_step(zoo) -> pd.DataFrame:
    """Long table (``step``, ``net``, ``psnr``) of an INR zoo's PSNR at each of its checkpoints."""
    md = zoo.metadata
    missing = [c for c in zoo.checkpoints if f"psnr@{c}" not in md]
    if missing:
        raise ValueError(f"no PSNR recorded at steps {missing}: is this an INR zoo?")
    return pd.concat([pd.DataFrame({"step": int(c), "net": md["net"].to_numpy(), "psnr": md[f"psnr@{c}"].to_numpy()})
                      for c in zoo.checkpoints], ignore_index=True)


def layer_change(zoo) -> list[float]:
    """Per layer, the median over networks of ``|W_last - W_first| / |W_first|`` between the zoo's first
    and last checkpoint: how far fitting moved each layer's weights from where they started."""
    w0, w1 = zoo.weights(zoo.checkpoints[0]), zoo.weights(zoo.checkpoints[-1])
    return [float(((b - a).flatten(1).norm(dim=1) / a.flatten(1).norm(dim=1).clamp_min(1e-12)).median())
            for a, b in zip(w0.weights, w1.weights)]


def first_layer_frequencies(zoo, checkpoint: int | None = None) -> np.ndarray:
    """``[B, hidden, 2]``: the spatial frequency of every first-layer sine wave of every SIREN, in cycles
    across the image per axis. Neuron ``j`` computes ``sin(w0 (W_1[j] . x + b_1[j]))`` on ``x`` in
    ``[-1, 1]^2``, so it runs through ``w0 |W_1[j, k]| * 2 / (2 pi)`` periods along axis ``k``."""
    ws = zoo.weights(checkpoint)
    layer = ws.spec.layers[0]
    w0 = layer.activation_param or 30.0
    return ws.weights[0].detach().double().cpu().numpy() * w0 / math.pi


def draw_init_contrast(curves: Mapping[str, pd.DataFrame], freqs: Mapping[str, tuple[np.ndarray, np.ndarray]],
                       stops: Mapping[int, str] = (), colors: Mapping[str, str] | None = None, axes=None) -> Figure:
    """Left: the median PSNR against fitting steps per init (band: 10-90% of the INRs), a dashed
    vertical line at each step of ``stops`` (step -> what stops there; one legend entry) and the PSNR
    ceiling. Then one panel per init, each on its own scale: the first-layer frequencies of the INRs
    given (``freqs``: init -> (before, after), each ``[B, hidden, 2]``), before fitting (hollow) and
    after (filled), joined by a line per neuron, one marker shape per INR. Legends sit below the axes."""
    names = list(curves)
    if not names or set(names) != set(freqs):
        raise ValueError(f"curves and freqs must name the same inits, got {names} and {list(freqs)}")
    colors = dict(colors or {})
    palette = iter(["tab:red", "tab:blue", "tab:green", "tab:purple"])
    for n in names:
        colors.setdefault(n, next(palette))
    if axes is None:
        fig, axes = plt.subplots(1, 1 + len(names), figsize=(5.2 + 3.6 * len(names), 4.2),
                                 gridspec_kw={"width_ratios": [1.5] + [1] * len(names)})
    axes = list(np.atleast_1d(axes))
    if len(axes) != 1 + len(names):
        raise ValueError(f"{1 + len(names)} axes needed, got {len(axes)}")
    ax = axes[0]
    for n in names:
        g = curves[n].groupby("step")["psnr"]
        steps = np.array(sorted(curves[n]["step"].unique()))
        ax.fill_between(steps, g.quantile(0.1).loc[steps], g.quantile(0.9).loc[steps], color=colors[n], alpha=0.2, lw=0)
        ax.plot(steps, g.median().loc[steps], "-o", ms=3, color=colors[n], label=f"{n}: median (band 10-90%)")
    stops = dict(stops)
    for step in stops:
        ax.axvline(step, color="0.4", ls="--", lw=1)
    if stops:
        ax.plot([], [], color="0.4", ls="--", lw=1,
                label="; ".join(f"{label} after {step} steps" for step, label in sorted(stops.items())))
    ax.axhline(PSNR_CEILING, color="k", ls=":", lw=1, label="ceiling of the PSNR computation")
    ax.set(xlabel="Adam steps of fitting", ylabel="PSNR (dB)", ylim=(0, PSNR_CEILING + 8),
           title="how well the INRs fit their images")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(0, -0.3), frameon=False)
    for a, n in zip(axes[1:], names):
        before, after = (np.asarray(v, dtype=float) for v in freqs[n])
        if before.shape != after.shape or before.ndim != 3 or before.shape[-1] != 2:
            raise ValueError(f"{n}: before and after must be [B, hidden, 2] of one shape, got {before.shape}, "
                             f"{after.shape}")
        for b in range(before.shape[0]):
            for j in range(before.shape[1]):
                a.plot([before[b, j, 0], after[b, j, 0]], [before[b, j, 1], after[b, j, 1]], color=colors[n],
                       lw=0.6, alpha=0.5)
        markers = "os^Dv<>"  # one marker per INR, so the INRs of one image can be told apart
        for b in range(before.shape[0]):
            m = markers[b % len(markers)]
            a.scatter(before[b, :, 0], before[b, :, 1], s=16, marker=m, facecolors="none", edgecolors=colors[n],
                      lw=0.8, label=f"INR {b + 1}, before fitting")
            a.scatter(after[b, :, 0], after[b, :, 1], s=12, marker=m, color=colors[n], label=f"INR {b + 1}, after")
        lim = 1.1 * max(float(np.abs(before).max()), float(np.abs(after).max()), 1e-3)
        a.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal", title=f"first layer, {n}",
              xlabel="cycles across the image (x)", ylabel="cycles across the image (y)")
        a.legend(fontsize=8, loc="upper left", bbox_to_anchor=(0, -0.3), frameon=False)
    return axes[0].figure
