"""Figures of notebook 03 (model zoos): one batched SGD step against a hand-written one, batched
training against one network at a time, the hyperparameters a recipe samples, and a split by network.

Nothing here trains or samples: the notebook computes the numbers with the library and these functions
draw them. Each function returns a matplotlib ``Figure`` and draws on the ``ax``/``axes`` it is given
(or on new ones). The arrays behind a figure come from public helpers (:func:`recipe_ranges`,
:func:`split_membership`), so a test can check what a figure shows. Bad input (mismatched shapes,
non-finite losses, a missing metadata column, a network in two parts) raises ``ValueError``.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

__all__ = [
    "OPTIMIZER_COLORS",
    "draw_one_step",
    "draw_loss_curves",
    "recipe_ranges",
    "draw_recipe_samples",
    "split_membership",
    "draw_split_membership",
]

SPLIT_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd")


def _finite(name: str, a, ndim: int) -> np.ndarray:
    arr = np.asarray(a, dtype=float)
    if arr.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} has non-finite values: {arr.tolist()}")
    return arr


def _ax(ax, figsize):
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize)
        return fig, ax
    return ax.figure, ax


# ------------------------------------------------------------------------------------ one SGD step
def draw_one_step(lr: Sequence[float], before, by_hand, library, ax=None) -> Figure:
    """Loss of ``B`` networks before one SGD step (grey) and after it, taken by hand (bars) and by the
    library trainer (crosses): one group per network, labelled by its learning rate."""
    lr = _finite("lr", lr, 1)
    before, by_hand, library = (_finite(n, a, 1) for n, a in
                                [("before", before), ("by_hand", by_hand), ("library", library)])
    if not len(lr) == len(before) == len(by_hand) == len(library):
        raise ValueError(f"one value per network expected, got lengths lr {len(lr)}, before {len(before)}, "
                         f"by_hand {len(by_hand)}, library {len(library)}")
    fig, ax = _ax(ax, (5.5, 3.2))
    x = np.arange(len(lr))
    ax.bar(x - 0.2, before, 0.4, color="#bbbbbb", label="before the step")
    ax.bar(x + 0.2, by_hand, 0.4, color="#1f77b4", label="after: by hand")
    ax.scatter(x + 0.2, library, marker="x", s=60, color="k", zorder=3, label="after: library")
    lo, hi = min(before.min(), by_hand.min(), library.min()), max(before.max(), by_hand.max(), library.max())
    pad = 0.15 * (hi - lo) or 0.05 * hi or 1.0
    ax.set_ylim(lo - pad, hi + 3 * pad)  # zoomed: one step moves the loss a little
    ax.set_xticks(x, [f"{v:g}" for v in lr])
    ax.set(xlabel="network's learning rate", ylabel="training loss (32 samples)",
           title=f"one SGD step for {len(lr)} networks at once")
    ax.legend(fontsize=8, loc="upper left", ncol=3)
    return fig


# ----------------------------------------------------------------------------- batched vs one by one
def draw_loss_curves(batched, loop, labels: Sequence[str] | None = None, ax=None, title: str | None = None
                     ) -> Figure:
    """Per-network loss curves ``[steps + 1, B]``: batched training (lines) and one network at a time
    (open circles on top). Equal runs put every circle on its line."""
    batched, loop = _finite("batched", batched, 2), _finite("loop", loop, 2)
    if batched.shape != loop.shape:
        raise ValueError(f"batched and loop curves differ in shape: {batched.shape} vs {loop.shape}")
    n_steps, B = batched.shape
    if labels is not None and len(labels) != B:
        raise ValueError(f"{B} networks but {len(labels)} labels")
    fig, ax = _ax(ax, (5, 3.2))
    colors = plt.get_cmap("viridis")(np.linspace(0, 0.9, B))
    steps = np.arange(n_steps)
    for b in range(B):
        ax.plot(steps, batched[:, b], color=colors[b], lw=1.5, label=None if labels is None else labels[b])
        ax.scatter(steps, loop[:, b], s=36, facecolors="none", edgecolors=colors[b], zorder=3)
    ax.set(xlabel="SGD step", ylabel="training loss", xticks=steps, title=title or "")
    if labels is not None:
        ax.legend(fontsize=8, title="line: batched, o: loop", title_fontsize=8)
    return fig


#: one colour per optimizer wherever the course shows the zoos' optimizers (notebook 03's figures)
OPTIMIZER_COLORS = {"sgd": "#1f77b4", "adam": "#d62728"}


# -------------------------------------------------------------------------------------- recipes
def recipe_ranges(recipe, column: str) -> list[tuple[float, float]]:
    """The log-uniform ranges ``recipe`` draws ``column`` from: one ``(lo, hi)``, or for ``"lr"`` of a
    recipe that mixes in Adam, the SGD range and the Adam range."""
    if column not in ("lr", "init_scale", "weight_decay"):
        raise ValueError(f"no sampled range for {column!r}: expected lr, init_scale or weight_decay")
    ranges = [tuple(map(float, getattr(recipe, column)))]
    if column == "lr" and "adam" in tuple(getattr(recipe, "optimizers", ())):
        ranges.append(tuple(map(float, recipe.adam_lr)))
    return ranges


def draw_recipe_samples(samples: Mapping[str, "object"], recipes: Mapping[str, "object"],
                        columns: Sequence[str] = ("lr", "init_scale", "weight_decay"), axes=None,
                        seed: int = 0) -> Figure:
    """One panel per hyperparameter: every network's sampled value (a dot, log scale, one row per zoo;
    coloured by optimizer where the recipe mixes them) over the recipe's range (light bar).

    ``samples``: zoo name -> metadata ``DataFrame``; ``recipes``: zoo name -> its recipe."""
    names = list(samples)
    if not names or set(names) != set(recipes):
        raise ValueError(f"samples and recipes must name the same zoos, got {names} and {list(recipes)}")
    if axes is None:
        fig, axes = plt.subplots(1, len(columns), figsize=(4.2 * len(columns), 0.6 + 0.55 * len(names)),
                                 sharey=True, squeeze=False)
        axes = axes[0]
    axes = list(np.atleast_1d(axes))
    if len(axes) != len(columns):
        raise ValueError(f"{len(columns)} columns need {len(columns)} axes, got {len(axes)}")
    rng = np.random.default_rng(seed)
    opt_colors = OPTIMIZER_COLORS
    for ax, col in zip(axes, columns):
        for row, name in enumerate(names):
            md = samples[name]
            if col not in md:
                raise ValueError(f"zoo {name!r} has no metadata column {col!r}; columns: {list(md.columns)}")
            vals = np.asarray(md[col], dtype=float)
            if not (np.isfinite(vals) & (vals > 0)).all():
                raise ValueError(f"zoo {name!r}: {col} must be positive and finite for a log axis")
            for lo, hi in recipe_ranges(recipes[name], col):
                ax.plot([lo, hi], [row, row], color="#cccccc", lw=9, solid_capstyle="butt", zorder=1)
            opts = np.asarray(md["optimizer"]) if "optimizer" in md else np.full(len(vals), "sgd")
            jitter = rng.uniform(-0.22, 0.22, len(vals))
            ax.scatter(vals, row + jitter, s=4, alpha=0.6, zorder=2,
                       c=[opt_colors.get(o, "k") for o in opts])
        ax.set(xscale="log", xlabel=col.replace("_", " "), yticks=range(len(names)), ylim=(len(names) - 0.5, -0.5))
        ax.set_yticklabels(names)
        lo, hi = ax.get_xlim()
        if hi / lo < 30:  # less than ~1.5 decades: label 1-2-5 steps, not a single power of ten
            ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
    drawn = {str(o) for md in samples.values() for o in (md["optimizer"] if "optimizer" in md else ["sgd"])}
    handles = [Patch(color="#cccccc", label="recipe range")] + [Patch(color=c, label=o) for o, c in opt_colors.items()
                                                                 if o in drawn]
    axes[-1].legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1, 1))
    return axes[0].figure


# ---------------------------------------------------------------------------------------- splits
def split_membership(parts: Sequence["object"], key: str = "net") -> np.ndarray:
    """``[num_networks]`` part index of every network (``-1``: in no part), from each part's
    ``metadata[key]``. A network in two parts raises ``ValueError``: a split by network never does."""
    if not parts:
        raise ValueError("no parts given")
    ids = []
    for i, p in enumerate(parts):
        md = p.metadata
        if key not in md:
            raise ValueError(f"part {i} has no metadata column {key!r}; columns: {list(md.columns)}")
        ids.append(np.asarray(md[key], dtype=int))
    n = 1 + max((int(a.max()) for a in ids if len(a)), default=-1)
    member = np.full(n, -1, dtype=int)
    for i, a in enumerate(ids):
        clash = a[member[a] >= 0]
        if len(clash):
            raise ValueError(f"network(s) {clash[:5].tolist()} in part {int(member[clash[0]])} and part {i}")
        member[a] = i
    return member


def draw_split_membership(parts: Sequence["object"], names: Sequence[str] = ("train", "val", "test"),
                          checkpoints: Sequence[int] | None = None, key: str = "net", ax=None) -> Figure:
    """A strip per checkpoint: column = network, colour = the part it landed in. Each network's
    checkpoints go together, so every column has one colour from top to bottom."""
    member = split_membership(parts, key)
    if len(names) != len(parts):
        raise ValueError(f"{len(parts)} parts but {len(names)} names")
    if len(parts) > len(SPLIT_COLORS):
        raise ValueError(f"at most {len(SPLIT_COLORS)} parts can be drawn, got {len(parts)}")
    if checkpoints is None:
        checkpoints = list(getattr(parts[0], "checkpoints", [0]))
    fig, ax = _ax(ax, (10, 0.9 + 0.3 * len(checkpoints)))
    grid = np.tile(member, (len(checkpoints), 1)).astype(float)
    grid[grid < 0] = np.nan
    ax.imshow(grid, aspect="auto", interpolation="nearest", vmin=-0.5, vmax=len(parts) - 0.5,
              cmap=ListedColormap(SPLIT_COLORS[:len(parts)]))
    ax.set_yticks(range(len(checkpoints)), [str(e) for e in checkpoints])
    ax.set(xlabel="network", ylabel="checkpoint (epoch)")
    ax.grid(False)
    counts = [int((member == i).sum()) for i in range(len(parts))]
    ax.legend(handles=[Patch(color=SPLIT_COLORS[i], label=f"{n} ({c})") for i, (n, c) in enumerate(zip(names, counts))],
              fontsize=8, loc="upper left", bbox_to_anchor=(1, 1))
    return fig
