r"""Figures and the exercise check for notebook 09, section 5: the graph ScaleGMN reads for a block network
(residual blocks, BatchNorm, LayerNorm) and what the library checker measures on it.

Figures (each returns the figure; legends sit outside the data, text is at least 8 pt; colours, the axes helper and
:data:`~scalegmn_lite.course.beyond.ZERO_FLOOR` are those of :mod:`.beyond`, sections 0-4):

* :func:`draw_block_graph`: the graph ScaleGMN reads for a block network, drawn from
  :func:`~scalegmn_lite.nn.block_graphs.to_block_graph` (stream depths, inner units, norm inputs, shortcut and norm
  edges with their transformation laws);
* :func:`plot_blind_pairs`: pairs of networks that compute different functions, and which graph constructions
  tell them apart;
* :func:`plot_block_checks`: the library checker's errors per gauge part and the negative controls, for the exact
  graph construction and each ablation (measured by :func:`measure_block_checks`).

Exercise check (the right answer is recomputed with the library, never stored): :func:`check_construction_failures`
(with :data:`EXERCISE_09_5_NETWORK`, :data:`CONSTRUCTION_CHECKS` and :func:`construction_failures`).
"""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Circle, FancyBboxPatch

from ..nn.block_checks import gauge_parts_of
from ..nn.block_graphs import (
    EDGE_NORM,
    EDGE_SHORTCUT,
    EDGE_SUM,
    EDGE_WEIGHT,
    VARIANTS,
    block_layout,
    to_block_graph,
)
from ..nn.block_scalegmn import BlockScaleGMN
from ..nn.checks import check_equivariance, check_invariance, check_sensitivity
from ..nn.graphs import INPUT, OUTPUT
from ..nn.scalegmn import ScaleGMN
from ..weightspace.block_weights import BlockWeights
from ..weightspace.blocks import BlockNetworkSpec
from .beyond import _BROKEN, _EDGE, _INNER, _SHORTCUT, _STREAM, _SYMMETRY, ZERO_FLOOR, _figure
from .feedback import Feedback, require, run_check

__all__ = ["draw_block_graph", "measure_block_checks", "plot_block_checks", "plot_blind_pairs",
           "EXERCISE_09_5_NETWORK", "CONSTRUCTION_CHECKS", "construction_failures", "check_construction_failures",
           "CONSTRUCTION_COLORS", "PART_LABELS", "NON_SYMMETRY_LABELS"]

# ------------------------------------------------------------------------------------------------ the graph
_VERTEX_COLORS = {"input": "#d9d9d9", "output": "#a1d99b", "stream": _STREAM, "hidden": _INNER,
                  "batchnorm": "#bcbddc", "layernorm": "#c7e9c0"}
_EDGE_STYLES = {  # edge type -> (colour, width, line style, legend label)
    EDGE_WEIGHT: (_EDGE, 0.6, "-", r"weight $W[t,s]$: $\times\, q_t / q_s$"),
    EDGE_SHORTCUT: (_SHORTCUT, 1.6, "--", r"shortcut, constant 1: $\times\, q_{t+1,k} / q_{t,k} = 1$"),
    EDGE_SUM: ("#e6550d", 1.2, ":", r"branch sum, constant 1: $\times 1$"),
}
_BN_EDGE, _LN_EDGE = "#6a51a3", "#238b45"
_VERTEX_LEGEND = {
    "input": "input vertex (fixed: $q = 1$)",
    "output": "output vertex (fixed: $q = 1$)",
    "stream": "stream vertex: one $q$ for every depth",
    "hidden": r"inner unit, norm output: own $q$ (of its activation)",
    "batchnorm": r"BatchNorm input $b - \mu$: free $d \neq 0$ per channel",
    "layernorm": r"LayerNorm input $b$: one $c \neq 0$ (a pool)",
}
#: the graph constructions of section 5 (:data:`scalegmn_lite.nn.block_graphs.VARIANTS`) and their colours
CONSTRUCTION_COLORS = {"exact": _SYMMETRY, "plain_twin": "#6a51a3", "norm_affine": _BROKEN,
                       "layernorm_per_vertex": "#fd8d3c"}


def _role(lay, plan, i: int) -> str:
    """Drawing role of vertex layer ``i``: its site's role, with input/output vertex types first."""
    L = lay.vertex_layers[i]
    if L.vtype == INPUT:
        return "input"
    if L.vtype == OUTPUT:
        return "output"
    return plan.sites[L.site].role


def draw_block_graph(bw: BlockWeights, ax: Axes | None = None, *, variant: str = "exact", index: int = 0,
                     max_width: int = 6, max_layers: int = 12) -> Figure:
    r"""The graph ScaleGMN reads for network ``index`` of ``bw`` (a block network: residual blocks, BatchNorm,
    LayerNorm), drawn from :func:`~scalegmn_lite.nn.block_graphs.to_block_graph` itself.

    One column per *vertex layer* in data-flow order: residual-stream depths in the upper band (every depth of a
    stream is one gauge site, one ``q``), inner units and norm layers in the lower band, input and output in the
    middle. Edges by their ``edge_type``: grey weight edges, red dashed identity shortcuts (constant 1, from
    stream coordinate ``k`` at depth ``t`` to ``k`` at ``t + 1``), BatchNorm edges ``gamma / sigma`` (purple) and
    LayerNorm edges ``gamma`` (green), each labelled by its transformation law in the legend (outside the graph).
    A LayerNorm's input vertices (one pool, one common scalar) are framed together.

    Args:
        bw: the networks (``BlockWeights``); ax: the axes to draw on (default: a new ``(13.6, 4.9)`` figure whose
            graph axes leave room for the legend on the right).
        variant: a graph construction of :data:`~scalegmn_lite.nn.block_graphs.VARIANTS` (``"plain_twin"``
            draws no shortcut edges). max_width, max_layers: the largest vertex layer and number of vertex layers
            drawn (readability).
    Returns:
        the figure. Vertices are circles with gid ``vertex:<layer>:<pos>``, edges lines with gid
        ``edge:<edge_type>:<number>``, the LayerNorm pools rectangles with gid ``pool:<layer>``.
    """
    graph = to_block_graph(bw[index], variant=variant)
    lay, plan = block_layout(bw.spec, variant), bw.spec.gauge_plan()
    n_layers = len(lay.vertex_layers)
    widest = max(L.width for L in lay.vertex_layers)
    if widest > max_width or n_layers > max_layers:
        raise ValueError(f"{bw.spec.to_text()!r} is too large to draw readably ({n_layers} vertex layers, widest "
                         f"{widest}; at most {max_layers} and {max_width}): draw a smaller network")
    width, height = 9.6, 4.9
    if ax is None:
        fig = plt.figure(figsize=(13.6, height))
        ax = fig.add_axes((0.0, 0.0, width / 13.6, 1.0))
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.set_aspect("equal")
    ax.set_axis_off()
    roles = [_role(lay, plan, i) for i in range(n_layers)]
    band = {"stream": 3.35, "input": 2.45, "output": 2.45}
    xs = [0.55 + i * (width - 1.1) / max(n_layers - 1, 1) for i in range(n_layers)]
    dy, rad = 0.3, 0.1
    layer, pos = graph.layer.tolist(), graph.pos.tolist()
    xy = []
    for v in range(graph.num_nodes):
        i = layer[v]
        yc = band.get(roles[i], 1.55)
        xy.append((xs[i], yc + ((lay.vertex_layers[i].width - 1) / 2 - pos[v]) * dy))
    # edges, from the graph's edge_index and edge_type
    src, dst = graph.edge_index.tolist()
    etype = graph.edge_type.tolist()
    norm_src_role = {}
    for e, (s, t, k) in enumerate(zip(src, dst, etype)):
        if k == EDGE_NORM:
            color = _BN_EDGE if roles[layer[s]] == "batchnorm" else _LN_EDGE
            norm_src_role[layer[s]] = roles[layer[s]]
            lw, ls = 1.6, "-"
        else:
            color, lw, ls, _ = _EDGE_STYLES[k]
        (xa, ya), (xb, yb) = xy[s], xy[t]
        ax.plot([xa, xb], [ya, yb], color=color, lw=lw, ls=ls, zorder=1, alpha=0.9 if k else 0.6,
                gid=f"edge:{k}:{e}")
    # LayerNorm pools: one frame around the input vertices of each pool
    for i, L in enumerate(lay.vertex_layers):
        if L.pool:
            ys = [xy[v][1] for v in range(graph.num_nodes) if layer[v] == i]
            ax.add_patch(FancyBboxPatch((xs[i] - 0.2, min(ys) - 0.2), 0.4, max(ys) - min(ys) + 0.4,
                                        boxstyle="round,pad=0,rounding_size=0.12", fc="none", ec=_LN_EDGE,
                                        lw=1.2, ls="--", zorder=1.5, gid=f"pool:{i}"))
    for v, (x, y) in enumerate(xy):
        ax.add_patch(Circle((x, y), rad, fc=_VERTEX_COLORS.get(roles[layer[v]], _INNER), ec="#404040", lw=0.8,
                            zorder=2, gid=f"vertex:{layer[v]}:{pos[v]}"))
    # column labels: above the stream band, below everything else
    depth: dict[int, int] = {}
    streams = list(dict.fromkeys(L.site for L, r in zip(lay.vertex_layers, roles) if r == "stream"))
    for i, role in enumerate(roles):
        L = lay.vertex_layers[i]
        t = depth[L.site] = depth.get(L.site, -1) + 1
        if role == "stream":
            name = "stream" if len(streams) == 1 else f"stream {streams.index(L.site) + 1}"
            text, y, va = f"{name}\ndepth {t}", band["stream"] + (L.width - 1) / 2 * dy + 0.22, "bottom"
        elif role == "input" and t > 0:  # the input is the stream: its later depths are fixed like the input
            text, y, va = f"input stream\ndepth {t}", band["input"] - (L.width - 1) / 2 * dy - 0.22, "top"
        else:
            top = band.get(role, 1.55) - (L.width - 1) / 2 * dy - 0.22
            text = {"input": "input", "output": "output", "batchnorm": "BN input\n$z = Wy + b$",
                    "layernorm": "LN input\n$z = Wy + b$"}.get(role, "norm output" if any(
                        g.dst == i and g.kind == EDGE_NORM for g in lay.edge_groups) else "inner units")
            y, va = top, "top"
        ax.text(xs[i], y, text, ha="center", va=va, fontsize=8, linespacing=1.15, gid=f"label:{i}")
    n_short = etype.count(EDGE_SHORTCUT)
    ax.text(width / 2, height - 0.05, f"{bw.spec.to_text()}  ({variant}): {graph.num_nodes} vertices, "
            f"{graph.num_edges} edges, {n_short} of them shortcuts", ha="center", va="top", fontsize=9.5)
    present_roles = set(roles)
    handles = [Line2D([], [], marker="o", ls="none", ms=8, mfc=_VERTEX_COLORS[r], mec="#404040", label=text)
               for r, text in _VERTEX_LEGEND.items() if r in present_roles]
    for k in (EDGE_WEIGHT, EDGE_SHORTCUT, EDGE_SUM):
        if k in etype:
            color, lw, ls, label = _EDGE_STYLES[k]
            handles.append(Line2D([], [], color=color, lw=max(lw, 1.0), ls=ls, label=label))
    if "batchnorm" in norm_src_role.values():
        handles.append(Line2D([], [], color=_BN_EDGE, lw=1.6, label=r"BatchNorm $\gamma / \sigma$: $\times\, q / d$"))
    if "layernorm" in norm_src_role.values():
        handles.append(Line2D([], [], color=_LN_EDGE, lw=1.6,
                              label=r"LayerNorm $\gamma$: $\times\, q\,\mathrm{sign}(c)$"))
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 0.97), frameon=False,
              title="under a gauge element: vertex $x_v \\mapsto q_v\\, x_v$;\n"
                    "edge $e_{st} \\mapsto$ factor $\\times\\, e_{st}$",
              title_fontsize=8, alignment="left")
    return ax.figure


#: short names of the gauge parts (:data:`scalegmn_lite.nn.block_checks.GAUGE_PARTS`) and non-symmetries
#: (:data:`scalegmn_lite.weightspace.block_gauge.NON_SYMMETRY_KINDS`) on the figures
PART_LABELS = {"stream_permutation": "stream\nperm", "stream_scale": "stream\nscale",
               "hidden_permutation": "hidden\nperm", "hidden_scale": "hidden\nscale",
               "batchnorm_scale": "BN\nscale", "batchnorm_sign": "BN\nsign", "layernorm_scale": "LN\nscale",
               "layernorm_sign": "LN\nsign"}
NON_SYMMETRY_LABELS = {"unshared_stream_scale": "stream scaled\nat one depth",
                       "shortcut_edge_rescaled": "shortcut weight\n1 -> other",
                       "batchnorm_sign_without_gamma": "BN sign flip\nwithout gamma",
                       "layernorm_neuron_scale": "LN input scaled\nper neuron"}


def measure_block_checks(models: Mapping[str, torch.nn.Module], bw: BlockWeights, *,
                         variants: Sequence[str] = VARIANTS, n_samples: int = 2, seed: int = 0
                         ) -> tuple[list[dict], list[dict]]:
    """The library checker (:mod:`scalegmn_lite.nn.checks`) on every graph construction of ``variants``.

    Args:
        models: ``{head: ScaleGMN}`` (``"invariant"`` and/or ``"equivariant"``), each run on every construction
            through :class:`~scalegmn_lite.nn.block_scalegmn.BlockScaleGMN`.
        bw: the networks (norms with ``eps = 0`` for exact claims); n_samples: gauge samples per check; seed: of
            the samples (every check draws from a fresh generator with this seed, so constructions see the same
            elements).
    Returns:
        ``errors``: one row ``{construction, head, part, error}`` per gauge part of ``bw`` (``check_invariance`` or
        ``check_equivariance`` with ``part=``, relative error); ``changes``: one row ``{construction, head, kind,
        change}`` per non-symmetry (``check_sensitivity``, relative output change).
    """
    errors, changes = [], []
    parts = gauge_parts_of(bw.spec)
    for head, model in models.items():
        check = check_invariance if model.config.head == "invariant" else check_equivariance
        for variant in variants:
            wrapped = BlockScaleGMN(model, variant)
            for part in parts:
                res = check(wrapped, bw, n_samples, torch.Generator().manual_seed(seed), part=part)
                errors.append(dict(construction=variant, head=head, part=part, error=res.max_relative))
            sens = check_sensitivity(wrapped, bw, generator=torch.Generator().manual_seed(seed))
            changes += [dict(construction=variant, head=head, kind=k, change=v) for k, v in sens.items()]
    return errors, changes


def _grouped_bars(ax: Axes, rows: Sequence[Mapping], key: str, value: str, labels: Mapping[str, str]) -> list[str]:
    """Log-scale bars of ``row[value]`` grouped by ``row[key]`` (in the order of ``labels``), one colour per
    construction; exact zeros drawn at :data:`ZERO_FLOOR`."""
    groups = [k for k in labels if any(r[key] == k for r in rows)]
    constructions = list(dict.fromkeys(r["construction"] for r in rows))
    w = 0.8 / len(constructions)
    for j, c in enumerate(constructions):
        vals = [max(next((r[value] for r in rows if r[key] == g and r["construction"] == c), 0.0), ZERO_FLOOR)
                for g in groups]
        ax.bar([i - 0.4 + (j + 0.5) * w for i in range(len(groups))], vals, w, bottom=ZERO_FLOOR / 10,
               color=CONSTRUCTION_COLORS.get(c, "k"), label=c, gid=f"bars:{c}")
    ax.set_xticks(range(len(groups)), [labels[g] for g in groups], fontsize=8)
    ax.set_yscale("log")
    ax.set_ylim(ZERO_FLOOR / 10, 10)
    ax.tick_params(axis="y", labelsize=8)
    return groups


def plot_block_checks(errors: Sequence[Mapping], changes: Sequence[Mapping], *, tol: float = 1e-9,
                      head: str = "invariant") -> Figure:
    """The checker's figure (:func:`measure_block_checks`): three panels of log-scale bars, one colour per graph
    construction. Top: invariance error of the invariant head per gauge part; middle: equivariance error of the
    equivariant head (skipped when ``errors`` has none); bottom: the relative output change of ``head`` under each
    non-symmetry (negative controls: a bar below ``tol`` means the construction cannot see it). Lines: float64's
    machine epsilon and the checker tolerance ``tol``; exact zeros are drawn at :data:`ZERO_FLOOR`."""
    heads = [h for h in ("invariant", "equivariant") if any(r["head"] == h for r in errors)]
    fig, axes = plt.subplots(len(heads) + 1, 1, figsize=(11.5, 2.7 * (len(heads) + 1)))
    machine = float(torch.finfo(torch.float64).eps)
    titles = {"invariant": "invariance error of the invariant head, per part of the gauge group (should be ~0)",
              "equivariant": "equivariance error of the equivariant head, per part of the gauge group (should be ~0)"}
    for ax, h in zip(axes, heads):
        _grouped_bars(ax, [r for r in errors if r["head"] == h], "part", "error", PART_LABELS)
        ax.set_ylabel("relative error", fontsize=9)
        ax.set_title(titles[h], fontsize=9.5)
    ax = axes[-1]
    _grouped_bars(ax, [r for r in changes if r["head"] == head], "kind", "change", NON_SYMMETRY_LABELS)
    ax.set_ylabel("relative change", fontsize=9)
    ax.set_title(f"negative controls: output change of the {head} head under non-symmetries (should be > 0; "
                 "below the tolerance = blind)", fontsize=9.5)
    for ax in axes:
        ax.axhline(machine, color="#525252", ls="--", lw=1, label=f"float64 machine epsilon ({machine:.1e})")
        ax.axhline(tol, color="k", ls=":", lw=1.2, label=f"checker tolerance ({tol:.0e})")
    axes[0].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), title="graph construction",
                   title_fontsize=8)
    fig.text(0.01, 0.003, f"exact zeros drawn at {ZERO_FLOOR:.0e}", fontsize=8, style="italic", va="bottom")
    fig.tight_layout()
    return fig


def plot_blind_pairs(rows: Sequence[Mapping], ax: Axes | None = None, *, tol: float = 1e-9) -> Figure:
    """Pairs of networks that compute different functions, and what the graph constructions make of them.

    ``rows[i]``: ``{"pair": label, "function": relative change of the function, "exact": relative change of the
    exact construction's output, "ablation": name, "ablation_change": that construction's change}``. Horizontal
    log-scale bars (exact zeros at :data:`ZERO_FLOOR`, each bar labelled with its value); a construction whose bar
    falls below ``tol`` while the function changes is *over-invariant*: blind to a real difference."""
    fig, ax = _figure(ax, (10.5, 0.9 + 1.05 * len(rows)))
    ticks, labels = [], []
    seen = set()
    for i, r in enumerate(rows):
        bars = [("function", "the two networks' functions", "#525252"),
                ("exact", "ScaleGMN, exact construction", CONSTRUCTION_COLORS["exact"]),
                ("ablation_change", f"ScaleGMN, {r['ablation']}", CONSTRUCTION_COLORS.get(r["ablation"], "k"))]
        for j, (key, label, color) in enumerate(bars):
            y = i * 4 + j
            v = max(float(r[key]), ZERO_FLOOR)
            name = label if key != "ablation_change" else f"ScaleGMN, {r['ablation']} (ablation)"
            ax.barh(y, v, left=ZERO_FLOOR / 10, color=color, label=None if name in seen else name,
                    gid=f"pair:{i}:{key}")
            seen.add(name)
            ax.text(v * 2.0, y, f"{v:.0e}" if v > ZERO_FLOOR else "0", va="center", fontsize=8)
        ticks.append(i * 4 + 1)
        labels.append(r["pair"])
    ax.set_yticks(ticks, labels, fontsize=8.5)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlim(ZERO_FLOOR / 10, 1e3)
    ax.axvline(tol, color="k", ls=":", lw=1.2, label=f"checker tolerance ({tol:.0e})")
    ax.tick_params(axis="x", labelsize=8)
    ax.set_xlabel(f"relative difference (log scale; exact 0 drawn at {ZERO_FLOOR:.0e})", fontsize=9)
    ax.set_title("networks that compute different functions: which graph constructions tell them apart?",
                 fontsize=9.5)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------------------------ exercise 5
#: notebook 09, exercise 5: the network on which the graph constructions are checked
EXERCISE_09_5_NETWORK = "mlp 3-5bn-[4-5|proj]-[5-5]-2 relu eps=0"
#: the checks of exercise 5: a gauge part *fails* when the invariant head's error is above the tolerance, a
#: non-symmetry when the output change is below it (the construction is blind to it)
CONSTRUCTION_CHECKS = tuple(PART_LABELS) + tuple(NON_SYMMETRY_LABELS)


def construction_failures(seed: int = 0, tol: float = 1e-9) -> dict[str, dict[str, float]]:
    """``{construction: {check: value}}`` for the checks of :data:`CONSTRUCTION_CHECKS` that each construction of
    :data:`~scalegmn_lite.nn.block_graphs.VARIANTS` fails on :data:`EXERCISE_09_5_NETWORK` (an invariant
    ScaleGMN, float64; ``value``: the error or output change measured)."""
    spec = BlockNetworkSpec.from_text(EXERCISE_09_5_NETWORK)
    bw = BlockWeights.randn(spec, 2, torch.Generator().manual_seed(seed), dtype=torch.float64)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = ScaleGMN(hidden_dim=8, num_layers=2, max_layers=16, max_kernel=1).double()
    errors, changes = measure_block_checks({"invariant": model}, bw, seed=seed)
    out: dict[str, dict[str, float]] = {v: {} for v in VARIANTS}
    for r in errors:
        if r["error"] > tol:
            out[r["construction"]][r["part"]] = r["error"]
    for r in changes:
        if r["change"] <= tol:
            out[r["construction"]][r["kind"]] = r["change"]
    return out


def check_construction_failures(answer: Mapping[str, Iterable[str]] | None) -> Feedback:
    """Notebook 09, exercise 5: ``{construction: checks it fails}`` (names of :data:`CONSTRUCTION_CHECKS`, one
    entry per construction of :data:`~scalegmn_lite.nn.block_graphs.VARIANTS`), compared with
    :func:`construction_failures`."""

    def body():
        require(answer)
        got = {str(k): {str(c) for c in v} for k, v in dict(answer).items()}
        if set(got) != set(VARIANTS):
            return False, f"give one set per construction: {list(VARIANTS)} (got {sorted(got)})"
        unknown = sorted(set().union(*got.values()) - set(CONSTRUCTION_CHECKS))
        if unknown:
            return False, f"unknown checks {unknown}; choose among {list(CONSTRUCTION_CHECKS)}"
        truth = construction_failures()
        for v in VARIANTS:
            want = set(truth[v])
            extra, missing = sorted(got[v] - want), sorted(want - got[v])
            if missing:
                c = missing[0]
                what = "its error" if c in PART_LABELS else "its output changes by only"
                return False, f"{v} also fails {c} ({what} {truth[v][c]:.0e})"
            if extra:
                return False, f"{v} passes {extra[0]}: no failure there"
        return True, "; ".join(f"{v}: {', '.join(sorted(truth[v])) or 'passes every check'}" for v in VARIANTS)

    return run_check("09.5", body)
