"""Figures of notebook 05: one ScaleGMN layer's data flow, its invariant views, and equivariance shown
as heat-maps of vertex features for θ and g·θ.

Everything drawn is computed by the library (:mod:`scalegmn_lite.nn.layers`, :class:`ScaleGMN`,
:class:`~scalegmn_lite.weightspace.gauge.GaugeElement`); nothing is re-implemented here. Each function
returns a matplotlib ``Figure`` and draws on the ``ax``/``axes`` it is given (or on new ones). The arrays
behind the data figures come from public functions (:func:`invariant_view_curves`,
:func:`vertex_feature_panels`), so a test can check what a figure shows.

The section figures of the notebook draw tensors the notebook computes itself (hand-built layers): each
is wrapped first in a small record that checks its input and exposes what is plotted
(:func:`scaling_bars`, :func:`edge_scaling`, :func:`feature_panels`, :func:`agreement`), then drawn
(:func:`draw_scaling_bars`, :func:`draw_toy_graph` / :func:`draw_edge_scaling`,
:func:`draw_equivariance_heatmaps`, :func:`draw_agreement`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch, Patch

from ..nn.graphs import layout, to_graph
from ..nn.layers import VIEW_POSITIVE, VIEW_SIGN, ScaleInv, symmetrize
from ..nn.scalegmn import ScaleGMN, ScaleGMNConfig
from ..weightspace.gauge import GaugeElement
from ..weightspace.spec import NetworkSpec
from ..weightspace.weights import WeightSpace
from .plots import shared_norm, vertex_labels

__all__ = [
    "draw_scalegmn_layer",
    "ViewCurves",
    "invariant_view_curves",
    "draw_invariant_views",
    "FeaturePanels",
    "gauge_on_vertices",
    "vertex_feature_panels",
    "default_feature_panels",
    "draw_equivariance_heatmaps",
    "feature_panels",
    "ScalingBars",
    "scaling_bars",
    "draw_scaling_bars",
    "EdgeScaling",
    "edge_scaling",
    "draw_toy_graph",
    "draw_edge_scaling",
    "Agreement",
    "agreement",
    "draw_agreement",
]

EQUIVARIANT_COLOR = ("#dbe9f6", "#1f77b4")  # face, edge: quantities that scale with q
INVARIANT_COLOR = ("#fde7cf", "#e6730f")  # unchanged by q
INPUT_COLOR = ("#eeeeee", "#555555")


def _axes(ax, shape: tuple[int, int], figsize: tuple[float, float]):
    """``(fig, axes array of shape)`` from ``ax`` (one Axes or an array-like of them) or new ones."""
    n = shape[0] * shape[1]
    if ax is None:
        fig, axes = plt.subplots(*shape, figsize=figsize, squeeze=False)
        return fig, axes
    axes = np.asarray(ax, dtype=object).reshape(-1)
    if axes.size != n:
        raise ValueError(f"expected {n} axes (a {shape[0]} x {shape[1]} grid), got {axes.size}")
    return axes[0].figure, axes.reshape(shape)


# ---------------------------------------------------------------------------------------- the schematic
def _box(ax, xy, w, h, title, body, colors, dashed=False):
    face, edge = colors
    ax.add_patch(FancyBboxPatch((xy[0] - w / 2, xy[1] - h / 2), w, h, boxstyle="round,pad=0.04,rounding_size=0.12",
                                fc=face, ec=edge, lw=1.4, ls="--" if dashed else "-"))
    ax.text(xy[0], xy[1] + h / 2 - 0.2, title, ha="center", va="top", fontsize=8, weight="bold", color=edge)
    ax.text(xy[0], xy[1] - 0.12, body, ha="center", va="center", fontsize=8.5)


def _arrow(ax, start, end, label="", dashed=False, offset=(0.0, 0.14), color="0.25"):
    ax.annotate("", xy=end, xytext=start, arrowprops=dict(arrowstyle="-|>", color=color, lw=1.2,
                                                          ls="--" if dashed else "-", shrinkA=0, shrinkB=0))
    if label:
        mid = ((start[0] + end[0]) / 2 + offset[0], (start[1] + end[1]) / 2 + offset[1])
        ax.text(*mid, label, ha="center", va="bottom", fontsize=8, color=color)


def draw_scalegmn_layer(ax: plt.Axes | None = None, bidirectional: bool = True) -> Figure:
    """Schematic of one :class:`~scalegmn_lite.nn.layers.ScaleGMNLayer`: which quantity is computed from
    which, and how each transforms under a gauge element (``x_t -> q_t x_t``, ``e_st -> q_t/q_s e_st``).

    Blue boxes scale with ``q`` (equivariant), orange ones are invariant. The equations are those of
    :mod:`scalegmn_lite.nn.layers.message_passing`: the edge term ``p_st``, the invariant views
    (:class:`~scalegmn_lite.nn.layers.ScaleInv`: ``z / max(||z||, eps)`` for ``q > 0``,
    ``u tanh(u/2)`` of the log-compressed ``u`` for ``q = +-1``), the edge MLP ``phi`` giving invariant
    gains, the message, the sum over senders, the vertex update (a ``ScaleEq`` with identity residual)
    and the edge update. ``bidirectional`` adds the backward message (dashed).

    Args:
        ax: an Axes to draw on (about 12 x 5 inches reads well), or ``None`` for a new figure.
    Returns:
        the Figure (one Axes, axis off).
    """
    fig, axes = _axes(ax, (1, 1), (12.5, 5.2))
    ax = axes[0, 0]
    ax.set_xlim(-0.1, 14.7)
    ax.set_ylim(0.0, 6.35)
    ax.axis("off")
    top, bot = 4.3, 1.75
    # inputs
    ax.add_patch(FancyBboxPatch((0.2, 0.85), 1.7, 4.2, boxstyle="round,pad=0.04,rounding_size=0.12",
                                fc=INPUT_COLOR[0], ec=INPUT_COLOR[1], lw=1.2))
    ax.text(1.05, 4.85, "inputs", ha="center", va="top", fontsize=8.5, weight="bold", color=INPUT_COLOR[1])
    for y, s in [(4.2, r"$x_s \mapsto q_s x_s$"), (2.95, r"$e_{st} \mapsto \frac{q_t}{q_s} e_{st}$"),
                 (1.7, r"$x_t \mapsto q_t x_t$")]:
        ax.text(1.05, y, s, ha="center", va="center", fontsize=9.5)
    # equivariant lane
    _box(ax, (3.75, top), 2.6, 1.2, "edge term  (like $q_t$)",
         r"$p_{st} = (\Gamma_e e_{st}) \odot (\Gamma_v x_s)$", EQUIVARIANT_COLOR)
    _box(ax, (7.0, top), 2.5, 1.2, "message  (like $q_t$)", r"$m_{st} = p_{st} \odot g_{m,st}$", EQUIVARIANT_COLOR)
    _box(ax, (9.75, top), 2.0, 1.2, "sum  (like $q_t$)", r"$M_t = \sum_s m_{st}$", EQUIVARIANT_COLOR)
    upd_body = r"$x_t' = x_t + \mathrm{ScaleEq}([x_t, M_t" + (r", B_t])$" if bidirectional else r"])$") + \
        "\n" + r"$\mathrm{ScaleEq}(z) = (\Gamma z) \odot \varphi(\mathrm{ScaleInv}(z))$"
    if bidirectional:
        upd_body += "\n" + r"$B_s = \Gamma_b [x_s, M_s] \odot \sum_t g_{b,st}$  (like $q_s$)"
    _box(ax, (12.55, 2.95), 3.3, 1.85, "vertex update  (like $q_t$)", upd_body, EQUIVARIANT_COLOR)
    # invariant lane
    _box(ax, (3.75, bot), 2.6, 1.45, "ScaleInv: invariant views",
         "of $x_s$, $e_{st}$ and $[x_t, p_{st}]$\n" + r"$q>0$: $z / \max(\|z\|, \epsilon)$" + "\n"
         + r"$q=\pm1$: $u \tanh(u/2)$", INVARIANT_COLOR)
    _box(ax, (7.0, bot), 2.5, 1.45, r"edge MLP $\varphi$  (invariant)",
         r"$h = \mathrm{SiLU}(\mathrm{LN}(\Sigma\,\mathrm{views} + b))$" + "\n"
         + r"$[g_m, g_u, g_b] = L_{\mathrm{out}}\, h$", INVARIANT_COLOR)
    _box(ax, (10.0, 0.95), 2.5, 1.0, r"edge update  ($\sim q_t/q_s$)",
         r"$e_{st}' = e_{st} + (\Gamma_u e_{st}) \odot g_u$", EQUIVARIANT_COLOR)
    # arrows
    _arrow(ax, (1.95, top), (2.45, top), "$x_s$,\n$e_{st}$")  # two lines: the gap between the boxes is narrow
    _arrow(ax, (1.95, bot), (2.45, bot), "all")
    _arrow(ax, (3.75, top - 0.6), (3.75, bot + 0.73), "$p_{st}$", offset=(0.3, -0.1))
    _arrow(ax, (5.05, top), (5.75, top), "$p_{st}$")
    _arrow(ax, (5.05, bot), (5.75, bot), "views")
    _arrow(ax, (7.0, bot + 0.73), (7.0, top - 0.6), "$g_m$", offset=(0.3, -0.1))
    _arrow(ax, (8.25, top), (8.8, top), "$m_{st}$")
    _arrow(ax, (10.7, top), (11.2, 3.87), "$M_t$", offset=(0.25, -0.05))
    _arrow(ax, (8.25, bot - 0.5), (8.8, 1.15), "$g_u$", offset=(-0.1, 0.0))
    if bidirectional:
        _arrow(ax, (8.25, bot + 0.35), (10.9, 2.45), "$g_b$ (backward)", dashed=True, offset=(-0.2, 0.08))
    # residual x_t and the edge's own path: routed around the lanes
    ax.plot([1.05, 1.05, 12.55], [5.05, 5.75, 5.75], color="0.25", lw=1.2)
    _arrow(ax, (12.55, 5.75), (12.55, 3.92))
    ax.text(6.6, 5.8, "$x_t$ (identity residual, no bias)", ha="center", va="bottom", fontsize=8, color="0.25")
    ax.plot([1.05, 1.05, 8.2], [0.85, 0.3, 0.3], color="0.25", lw=1.2)
    _arrow(ax, (8.2, 0.3), (8.8, 0.7))
    ax.text(4.3, 0.35, "$e_{st}$", ha="center", va="bottom", fontsize=8, color="0.25")
    # outputs
    _arrow(ax, (14.25, 2.95), (14.45, 2.95))
    ax.text(14.5, 2.95, "$x_t'$", ha="left", va="center", fontsize=11)
    _arrow(ax, (11.25, 0.95), (11.8, 0.95))
    ax.text(11.85, 0.95, "$e_{st}'$", ha="left", va="center", fontsize=11)
    ax.legend(handles=[Patch(fc=EQUIVARIANT_COLOR[0], ec=EQUIVARIANT_COLOR[1], label="scales with $q$ (equivariant)"),
                       Patch(fc=INVARIANT_COLOR[0], ec=INVARIANT_COLOR[1], label="unchanged by $q$ (invariant)")],
              loc="lower right", fontsize=8, frameon=False, bbox_to_anchor=(1.0, -0.02))
    ax.set_title("One ScaleGMNLayer (scalegmn_lite.nn.layers): per edge $s \\to t$, then per vertex $t$", fontsize=10)
    return fig


# ---------------------------------------------------------------------------------------- invariant views
@dataclass(frozen=True)
class ViewCurves:
    """What :func:`draw_invariant_views` plots (all numpy, float64).

    Attributes:
        x: ``[2]`` the 2-D vector of the first panel; ``q_pos``: ``[Q]`` positive scalings.
        rays_pos, rays_neg: ``[Q, 2]`` the points ``q x`` and ``-q x``.
        view_pos, view_neg: ``[Q, 2]`` their positive-scale views (``ScaleInv``, ``VIEW_POSITIVE``).
        u: ``[U]`` grid; even: ``[U]`` ``symmetrize(u)`` (``u tanh(u/2)``); even_abs: ``[U]`` ``|u|``
            (``sign_view="abs"``); silu_sum: ``[U]`` ``SiLU(u) + SiLU(-u)``.
        q: ``[K]`` scalings (both signs, no 0); x_d: ``[d]`` the vector of the third panel;
        scaled_pos, scaled_sign: ``[K]`` channel 0 of ``ScaleInv(q x_d)`` with ``VIEW_POSITIVE`` and
            ``VIEW_SIGN``.
    """

    x: np.ndarray
    q_pos: np.ndarray
    rays_pos: np.ndarray
    rays_neg: np.ndarray
    view_pos: np.ndarray
    view_neg: np.ndarray
    u: np.ndarray
    even: np.ndarray
    even_abs: np.ndarray
    silu_sum: np.ndarray
    q: np.ndarray
    x_d: np.ndarray
    scaled_pos: np.ndarray
    scaled_sign: np.ndarray


def _vector(v, name: str, min_len: int) -> torch.Tensor:
    t = torch.as_tensor(v, dtype=torch.float64)
    if t.dim() != 1 or t.numel() < min_len or not torch.isfinite(t).all() or float(t.abs().max()) == 0:
        raise ValueError(f"{name} must be a finite, nonzero 1-D vector of at least {min_len} entries, "
                         f"got shape {tuple(t.shape)}")
    return t


def invariant_view_curves(x: Sequence[float] = (1.2, 0.5), x_d: Sequence[float] = (0.8, -0.5, 0.3, 1.1),
                          q_max: float = 4.0, n: int = 201) -> ViewCurves:
    """The library's views (:class:`~scalegmn_lite.nn.layers.ScaleInv`,
    :func:`~scalegmn_lite.nn.layers.symmetrize`) evaluated for :func:`draw_invariant_views`.

    Args:
        x: 2-D vector whose rays ``q x`` (``q > 0``) and ``-q x`` are viewed; x_d: ``[d]`` vector for the
            view-against-``q`` panel; q_max: largest ``|q|``; n: grid size.
    Raises:
        ValueError: on a zero, non-finite or wrongly shaped vector, ``q_max <= 0`` or ``n < 3``.
    """
    x, x_d = _vector(x, "x", 2)[:2], _vector(x_d, "x_d", 1)
    if not q_max > 0 or n < 3:
        raise ValueError(f"need q_max > 0 and n >= 3, got q_max={q_max}, n={n}")
    q_pos = torch.linspace(0.25, min(q_max, 2.0), 8, dtype=torch.float64)
    view2 = ScaleInv(2)
    rays_pos, rays_neg = q_pos[:, None] * x, -q_pos[:, None] * x
    u = torch.linspace(-4.0, 4.0, n, dtype=torch.float64)
    silu = torch.nn.functional.silu
    q = torch.cat([torch.linspace(-q_max, -0.05, n // 2, dtype=torch.float64),
                   torch.linspace(0.05, q_max, n // 2, dtype=torch.float64)])
    view_d = ScaleInv(x_d.numel())
    z = q[:, None] * x_d
    np_ = lambda t: t.detach().numpy()  # noqa: E731
    return ViewCurves(
        x=np_(x), q_pos=np_(q_pos), rays_pos=np_(rays_pos), rays_neg=np_(rays_neg),
        view_pos=np_(view2(rays_pos, VIEW_POSITIVE)), view_neg=np_(view2(rays_neg, VIEW_POSITIVE)),
        u=np_(u), even=np_(symmetrize(u, VIEW_SIGN)), even_abs=np_(symmetrize(u, VIEW_SIGN, "abs")),
        silu_sum=np_(silu(u) + silu(-u)), q=np_(q), x_d=np_(x_d),
        scaled_pos=np_(view_d(z, VIEW_POSITIVE)[:, 0]), scaled_sign=np_(view_d(z, VIEW_SIGN)[:, 0]),
    )


def draw_invariant_views(curves: ViewCurves | None = None, axes=None) -> Figure:
    """Three panels of the invariant views against their input.

    1. positive-scale view in 2-D: every point of the ray ``q x`` (``q > 0``) has the same view
       ``x / ||x||`` (a point of the unit circle); the ray ``-q x`` another one (not sign invariant).
    2. the sign view of one coordinate, ``rho(u) + rho(-u) = u tanh(u/2)`` (``rho = SiLU``), with
       ``SiLU(u) + SiLU(-u)`` as dots and the ``|u|`` alternative: even, ``v(-u) = v(u)``.
    3. channel 0 of ``ScaleInv(q x)`` against ``q``: constant on ``q > 0`` for ``VIEW_POSITIVE`` (but
       not on ``q < 0``), mirror-symmetric for ``VIEW_SIGN`` (but not constant in ``|q|``).

    Args:
        curves: from :func:`invariant_view_curves` (default: its defaults).
        axes: three Axes, or ``None`` for a new ``1 x 3`` figure.
    Returns:
        the Figure.
    """
    c = invariant_view_curves() if curves is None else curves
    if not isinstance(c, ViewCurves):
        raise TypeError(f"curves must be a ViewCurves from invariant_view_curves(), got {type(c).__name__}")
    fig, axs = _axes(axes, (1, 3), (13, 3.9))
    a, b, d = axs[0]
    t = np.linspace(0, 2 * np.pi, 200)
    a.plot(np.cos(t), np.sin(t), color="0.7", lw=1, label="unit circle")
    a.scatter(*c.rays_pos.T, s=14, color="tab:blue", label=r"$q\,x$, $q > 0$")
    a.scatter(*c.rays_neg.T, s=14, color="tab:red", label=r"$-q\,x$")
    a.scatter(*c.view_pos.T, s=160, marker="*", color="tab:blue", edgecolors="k", zorder=3,
              label=r"view of every $q\,x$")
    a.scatter(*c.view_neg.T, s=160, marker="*", color="tab:red", edgecolors="k", zorder=3,
              label=r"view of every $-q\,x$")
    a.set_aspect("equal")
    a.set_xlabel("channel 1")
    a.set_ylabel("channel 2")
    a.set_title(r"positive view $z / \max(\|z\|, \epsilon)$" + "\n(ReLU vertices)", fontsize=9)
    a.legend(fontsize=8, loc="upper left")
    a.set_ylim(-2.2, 3.2)
    b.plot(c.u, c.even, color="tab:orange", lw=2, label=r"$u \tanh(u/2)$ (library default)")
    b.plot(c.u[::12], c.silu_sum[::12], "o", ms=3.5, color="k", label=r"$\mathrm{SiLU}(u) + \mathrm{SiLU}(-u)$")
    b.plot(c.u, c.even_abs, "--", color="tab:green", lw=1.2, label=r"$|u|$ (sign_view='abs')")
    b.plot(c.u, c.even[::-1], ":", color="tab:purple", lw=2, label=r"$v(-u)$: the same curve")
    b.set_xlabel("$u$ (one coordinate)")
    b.set_ylabel("$v(u)$")
    b.set_title(r"sign view $\rho(u) + \rho(-u)$, $\rho$ = SiLU" + "\n(tanh / sine vertices)", fontsize=9)
    b.legend(fontsize=8, loc="upper center")
    neg = c.q < 0
    for m in (neg, ~neg):  # two pieces each: the positive view jumps at q = 0
        d.plot(c.q[m], c.scaled_pos[m], color="tab:blue", lw=2)
        d.plot(c.q[m], c.scaled_sign[m], color="tab:orange", lw=2)
    d.lines[0].set_label("VIEW_POSITIVE: flat for $q > 0$, jumps at 0")
    d.lines[1].set_label("VIEW_SIGN: mirror image at $\\pm q$")
    d.axvspan(0, c.q.max(), color="tab:blue", alpha=0.06)
    d.axvline(0, color="0.6", lw=0.8)
    d.set_xlabel("$q$")
    d.set_ylabel(r"channel 0 of ScaleInv$(q\,x)$")
    d.set_title("views against the scaling $q$\n(invariant only to their own group)", fontsize=9)
    d.set_ylim(-1.05, 0.8)
    d.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------- heat-maps
@dataclass(frozen=True)
class FeaturePanels:
    """Vertex features of one network before and after a transformation ``g``.

    Attributes:
        features: ``[V, d]`` ``f(theta)``, the model's final vertex features (rows = vertices of the
            graph, layer by layer, by default only the hidden ones; columns = channels).
        transformed: ``[V, d]`` ``f(g·theta)``.
        predicted: ``[V, d]`` ``g·f(theta)``: rows moved by ``g``'s permutations, scaled by its ``q``.
        labels: ``V`` vertex names (``in0``, ``h1.0``, ..., ``out0``); layer_starts: first row of
            each layer.
        title: what the row of panels shows; is_symmetry: whether ``g`` is in the network's gauge group.
    """

    features: np.ndarray
    transformed: np.ndarray
    predicted: np.ndarray
    labels: list[str]
    layer_starts: list[int]
    title: str
    is_symmetry: bool

    @property
    def max_error(self) -> float:
        """``max |f(g·theta) - g·f(theta)|``."""
        return float(np.abs(self.transformed - self.predicted).max())


def gauge_on_vertices(g: GaugeElement) -> tuple[torch.Tensor, torch.Tensor]:
    """How ``g`` (batch size 1) acts on the ``[V, d]`` vertex features of its network's graph:
    ``(g·x)[v] = scale[v] * x[index[v]]``; ``index [V]`` long, ``scale [V]`` (1 at inputs/outputs)."""
    if not isinstance(g, GaugeElement):
        raise TypeError(f"g must be a GaugeElement, got {type(g).__name__}")
    if g.batch_size != 1:
        raise ValueError(f"g must act on one network (batch size 1), got batch size {g.batch_size}")
    lay = layout(g.spec)
    index = torch.arange(lay.num_vertices)
    scale = torch.ones(lay.num_vertices, dtype=torch.float64)
    for l, (p, s) in enumerate(zip(g.perms, g.scales), start=1):
        lo = lay.offsets[l]
        index[lo:lo + p.shape[1]] = lo + p[0].cpu()
        scale[lo:lo + p.shape[1]] = s[0].detach().cpu().to(torch.float64)
    return index, scale


def _default_model(seed: int = 0) -> ScaleGMN:
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        cfg = ScaleGMNConfig(hidden_dim=6, num_layers=1, mode="auto", bidirectional=True, check_mode=False)
        return ScaleGMN(cfg).double().eval()


@torch.no_grad()
def vertex_feature_panels(ws: WeightSpace, g: GaugeElement, model: ScaleGMN | None = None,
                          title: str = "", hidden_only: bool = True) -> FeaturePanels:
    """``f(theta)``, ``f(g·theta)`` and ``g·f(theta)`` for ``f`` = the final vertex features of
    ``model`` (:meth:`ScaleGMN.encode`; default: one bidirectional layer, ``d = 6``, ``mode="auto"``,
    float64).

    ``g`` is applied with ``strict=False``, so a transformation outside the gauge group (e.g. ``q = 2``
    on a tanh layer) can be shown; ``is_symmetry`` records whether it is one. For a symmetry and an
    equivariant model the last two panels agree to float64 rounding.

    Args:
        ws: one network (batch size 1); g: a :class:`GaugeElement` of the same spec, batch size 1.
        model: a :class:`ScaleGMN` (any head; its dtype and device are used).
        title: the row's title; hidden_only: keep only the hidden vertices (the ones ``g`` moves; input
            and output vertices are fixed and their identity embeddings would dominate the colours).
    Raises:
        TypeError, ValueError: on other inputs (with what was expected).
    """
    if not isinstance(ws, WeightSpace):
        raise TypeError(f"ws must be a WeightSpace, got {type(ws).__name__}")
    if ws.batch_size != 1:
        raise ValueError(f"ws must hold one network (batch size 1), got {ws.batch_size}; select one with ws[i:i+1]")
    index, scale = gauge_on_vertices(g)
    if g.spec.layers != ws.spec.layers:
        raise ValueError(f"g is for {g.spec.to_text()!r}, the weights are {ws.spec.to_text()!r}")
    model = _default_model() if model is None else model
    if not isinstance(model, ScaleGMN):
        raise TypeError(f"model must be a ScaleGMN, got {type(model).__name__}")
    p = next(model.parameters())
    ws = ws.to(device=p.device, dtype=p.dtype)
    g = g.to(device=p.device, dtype=p.dtype)
    x = model.encode(model.to_graph(ws))[0]
    xg = model.encode(model.to_graph(g.apply(ws, strict=False)))[0]
    pred = x[index.to(x.device)] * scale.to(device=x.device, dtype=x.dtype)[:, None]
    names = vertex_labels(to_graph(ws))
    offsets = list(layout(ws.spec).offsets)
    lo, hi = (offsets[1], offsets[-2]) if hidden_only else (0, offsets[-1])
    starts = [o - lo for o in offsets[:-1] if lo <= o < hi]
    arrays = [a[lo:hi].cpu().numpy() for a in (x, xg, pred)]
    return FeaturePanels(*arrays, names[lo:hi], starts, title, g.is_symmetry())


def default_feature_panels(seed: int = 0) -> list[FeaturePanels]:
    """The three rows of notebook 05's heat-map figure, on ``mlp 2-4-4-1`` networks (random weights):

    1. ReLU network, ``g`` = permutations and positive scalings (a symmetry);
    2. tanh network, ``g`` = permutations and sign flips (a symmetry);
    3. tanh network, the same permutations with positive scalings ``q != 1`` (*not* a symmetry: tanh is
       not positively homogeneous, so the network's function changes and the features disagree).
    """
    gen = torch.Generator().manual_seed(seed)
    relu, tanh = NetworkSpec.from_text("mlp 2-4-4-1 relu"), NetworkSpec.from_text("mlp 2-4-4-1 tanh")
    ws_r = WeightSpace.randn(relu, 1, gen, dtype=torch.float64)
    ws_t = WeightSpace.randn(tanh, 1, gen, dtype=torch.float64)
    g_r = GaugeElement.sample(relu, 1, gen, dtype=torch.float64)
    g_t = GaugeElement.sample(tanh, 1, gen, dtype=torch.float64)
    q = [torch.exp(torch.linspace(-1.5, 1.5, s.shape[1], dtype=torch.float64))[None] for s in g_t.scales]
    wrong = GaugeElement(tanh, g_t.perms, q)
    model = _default_model(seed)
    return [vertex_feature_panels(ws_r, g_r, model, "ReLU net, g: permute + scale q > 0 (a symmetry)"),
            vertex_feature_panels(ws_t, g_t, model, "tanh net, g: permute + flip signs (a symmetry)"),
            vertex_feature_panels(ws_t, wrong, model, "tanh net, g: permute + scale q > 0 (NOT a symmetry)")]


def draw_equivariance_heatmaps(panels: Sequence[FeaturePanels] | None = None, axes=None) -> Figure:
    """One row per :class:`FeaturePanels`, four heat-maps each (rows = vertices, columns = channels, one
    colour scale per row): ``f(theta)``, ``f(g·theta)``, ``g·f(theta)`` and the difference
    ``f(g·theta) - g·f(theta)`` (white where the layer is equivariant). Thin lines separate layers.

    Args:
        panels: from :func:`vertex_feature_panels` (default :func:`default_feature_panels`).
        axes: ``len(panels) x 4`` Axes, or ``None`` for a new figure.
    Returns:
        the Figure; each heat-map's array is ``ax.images[0].get_array()``.
    """
    panels = default_feature_panels() if panels is None else list(panels)
    if not panels or not all(isinstance(p, FeaturePanels) for p in panels):
        raise TypeError("panels must be a non-empty sequence of FeaturePanels (see vertex_feature_panels)")
    if axes is None:
        fig, axs = plt.subplots(len(panels), 4, figsize=(12, 2.9 * len(panels)), squeeze=False, layout="constrained")
    else:
        fig, axs = _axes(axes, (len(panels), 4), (12, 2.9 * len(panels)))
    heads = [r"$f(\theta)$", r"$f(g \cdot \theta)$", r"$g \cdot f(\theta)$",
             r"$f(g \cdot \theta) - g \cdot f(\theta)$"]
    for r, (row, p) in enumerate(zip(axs, panels)):
        diff = p.transformed - p.predicted
        arrays = [p.features, p.transformed, p.predicted, diff]
        norm = shared_norm(*(torch.as_tensor(a) for a in arrays))
        for j, (ax, arr) in enumerate(zip(row, arrays)):
            im = ax.imshow(arr, cmap="coolwarm", norm=norm, aspect="auto", interpolation="nearest")
            ax.grid(False)
            for s in p.layer_starts[1:]:
                ax.axhline(s - 0.5, color="k", lw=0.8)
            ax.set_yticks(range(len(p.labels)))
            ax.set_yticklabels(p.labels if j == 0 else [], fontsize=8)
            ax.set_xticks(range(arr.shape[1]))
            ax.tick_params(axis="x", labelsize=8)
            if r == len(panels) - 1:
                ax.set_xlabel("channel", fontsize=8)
            title = heads[j] + (f"\nmax |diff| = {p.max_error:.1e}" if j == 3 else "")
            ax.set_title(title, fontsize=9, color=("tab:red" if j == 3 and not p.is_symmetry else "k"))
        row[0].set_ylabel(p.title.replace(", g:", ",\ng:"), fontsize=8)
        fig.colorbar(im, ax=list(row), fraction=0.02, pad=0.01)
    return fig


# ---------------------------------------------------------------------------------------- section figures
def _array(t, name: str, ndim: int | None = None) -> np.ndarray:
    """``t`` (tensor, array or nested list) as a finite float64 numpy array, detached from autograd."""
    if isinstance(t, torch.Tensor):
        a = t.detach().to(device="cpu", dtype=torch.float64).numpy()
    else:
        a = np.asarray(t, dtype=np.float64)
    if ndim is not None and a.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {a.shape}")
    if a.size == 0 or not np.isfinite(a).all():
        raise ValueError(f"{name} must be non-empty and finite, got shape {a.shape}")
    return a


def feature_panels(before, after, scale, labels: Sequence[str], title: str = "",
                   layer_starts: Sequence[int] = (0,), is_symmetry: bool = True) -> FeaturePanels:
    """A :class:`FeaturePanels` from tensors computed elsewhere (e.g. a hand-built layer): ``before``
    ``[V, d]`` for ``theta``, ``after`` ``[V, d]`` for ``g·theta`` with ``g`` a pure rescaling, and
    ``predicted = scale[:, None] * before`` (no permutation).

    Raises:
        ValueError: on shapes that do not match (``[V, d]``, ``[V, d]``, ``[V]``, ``V`` labels).
    """
    b, a, q = _array(before, "before", 2), _array(after, "after", 2), _array(scale, "scale").reshape(-1)
    if a.shape != b.shape or q.shape != (b.shape[0],) or len(labels) != b.shape[0]:
        raise ValueError(f"need before and after of one shape [V, d], scale [V] and V labels; got {b.shape}, "
                         f"{a.shape}, {q.shape} and {len(labels)} labels")
    return FeaturePanels(b, a, q[:, None] * b, list(labels), list(layer_starts), title, is_symmetry)


@dataclass(frozen=True)
class ScalingBars:
    """One quantity of one vertex, for ``theta`` (``before``, ``[d]``) and for ``g·theta`` (``after``),
    and the ``factor`` it should scale by (``q`` if equivariant, 1 if invariant)."""

    label: str
    before: np.ndarray
    after: np.ndarray
    factor: float

    @property
    def max_error(self) -> float:
        """``max |after - factor * before|``."""
        return float(np.abs(self.after - self.factor * self.before).max())


def scaling_bars(label: str, before, after, factor: float) -> ScalingBars:
    """Check and wrap one quantity for :func:`draw_scaling_bars` (a leading batch dimension of 1 is
    dropped). Raises ``ValueError`` on vectors of different shapes or a non-finite or zero factor."""
    b, a = _array(before, "before").reshape(-1), _array(after, "after").reshape(-1)
    if a.shape != b.shape:
        raise ValueError(f"before and after must have the same number of channels, got {b.shape} and {a.shape}")
    if not np.isfinite(factor) or factor == 0:
        raise ValueError(f"factor must be finite and nonzero, got {factor}")
    return ScalingBars(label, b, a, float(factor))


def draw_scaling_bars(bars: Sequence[ScalingBars], axes=None) -> Figure:
    """One panel per :class:`ScalingBars`: the channels of ``before`` (light) and ``after`` (dark) as
    grouped bars, and ``factor * before`` as black ticks, which the dark bars reach exactly when the
    quantity scales as stated. Equivariant panels (``factor != 1``) are blue, invariant ones orange.

    Args:
        bars: from :func:`scaling_bars`; axes: ``len(bars)`` Axes or ``None`` for a new row.
    Returns:
        the Figure; panel ``i``'s bars are ``axes[i].containers[0]`` (before) and ``[1]`` (after).
    """
    bars = list(bars)
    if not bars or not all(isinstance(b, ScalingBars) for b in bars):
        raise TypeError("bars must be a non-empty sequence of ScalingBars (see scaling_bars)")
    fig, axs = _axes(axes, (1, len(bars)), (3.3 * len(bars), 2.9))
    for ax, b in zip(axs[0], bars):
        light, dark = INVARIANT_COLOR if b.factor == 1 else EQUIVARIANT_COLOR
        ch = np.arange(len(b.before))
        ax.bar(ch - 0.2, b.before, 0.4, color=light, ec=dark, label=r"for $\theta$")
        ax.bar(ch + 0.2, b.after, 0.4, color=dark, label=r"for $g \cdot \theta$")
        ax.scatter(ch + 0.2, b.factor * b.before, marker="_", s=300, color="k", zorder=3,
                   label="expected")
        ax.axhline(0, color="0.5", lw=0.6)
        ax.set_xticks(ch)
        ax.set_xlabel("channel", fontsize=8)
        how = "unchanged" if b.factor == 1 else f"scales by q = {b.factor:.2f}"
        ax.set_title(f"{b.label}: {how}\nmax |after - expected| = {b.max_error:.0e}", fontsize=9)
        ax.legend(fontsize=8)
    if axes is None:
        fig.tight_layout()
    return fig


@dataclass(frozen=True)
class EdgeScaling:
    """A per-edge quantity ``[E, d]`` for ``theta`` and for ``g·theta`` (``g`` rescales vertex ``v`` by
    ``q[v]``), as the ratio ``after / before`` per channel (NaN where ``before`` is 0 to rounding).

    Attributes:
        label: the quantity (mathtext allowed); edge_labels: ``"s->t"`` per edge.
        ratio: ``[E, d]``; q_sender, q_receiver: ``[E]`` ``q_s`` and ``q_t`` of each edge.
        scales_like: ``"receiver"`` or ``"sender"``, the claim; expected: ``[E]`` the claimed ratio.
    """

    label: str
    edge_labels: list[str]
    ratio: np.ndarray
    q_sender: np.ndarray
    q_receiver: np.ndarray
    scales_like: str

    @property
    def expected(self) -> np.ndarray:
        return self.q_receiver if self.scales_like == "receiver" else self.q_sender

    @property
    def max_error(self) -> float:
        """Largest ``|ratio - expected|`` relative to ``expected`` (NaNs skipped)."""
        return float(np.nanmax(np.abs(self.ratio / self.expected[:, None] - 1)))


def edge_scaling(before, after, edge_index, q, label: str = "", scales_like: str = "receiver") -> EdgeScaling:
    """Wrap ``before``/``after`` ``[E, d]`` (one row per column ``(s, t)`` of ``edge_index [2, E]``) and
    the vertex scales ``q`` (``[V]`` or ``[V, 1]``) for :func:`draw_edge_scaling`.

    Raises:
        ValueError: on mismatched shapes, an edge index outside ``q``, a non-positive ``q`` or a bad
            ``scales_like``.
    """
    if scales_like not in ("receiver", "sender"):
        raise ValueError(f"scales_like must be 'receiver' or 'sender', got {scales_like!r}")
    b, a = _array(before, "before", 2), _array(after, "after", 2)
    q = _array(q, "q").reshape(-1)
    ei = torch.as_tensor(edge_index).long()
    if ei.dim() != 2 or ei.shape[0] != 2 or a.shape != b.shape or b.shape[0] != ei.shape[1]:
        raise ValueError(f"need edge_index [2, E] and before, after [E, d]; got {tuple(ei.shape)}, {b.shape}, "
                         f"{a.shape}")
    if int(ei.min()) < 0 or int(ei.max()) >= len(q) or (q <= 0).any():
        raise ValueError(f"edge_index must index the {len(q)} entries of q, and q must be > 0")
    src, dst = ei.numpy()
    small = np.abs(b) <= 1e-12 * np.abs(b).max()
    ratio = np.where(small, np.nan, a / np.where(small, 1.0, b))
    return EdgeScaling(label, [f"{s}->{t}" for s, t in zip(src, dst)], ratio, q[src], q[dst], scales_like)


def _depths(edge_index: torch.Tensor, n: int) -> list[int]:
    """Layer of each vertex of a DAG: 0 for sources, else 1 + the deepest sender."""
    depth = [0] * n
    for _ in range(n):
        for s, t in edge_index.t().tolist():
            depth[t] = max(depth[t], depth[s] + 1)
    return depth


def draw_toy_graph(edge_index, q, ax: plt.Axes | None = None) -> Figure:
    """A small DAG (``edge_index [2, E]``) in columns by depth, each vertex ``v`` labelled with its
    ``q[v]``: blue when it is rescaled (``q != 1``), grey when fixed. Raises ``ValueError`` on an edge
    index outside ``q``."""
    q = _array(q, "q").reshape(-1)
    ei = torch.as_tensor(edge_index).long()
    if ei.dim() != 2 or ei.shape[0] != 2 or int(ei.min()) < 0 or int(ei.max()) >= len(q):
        raise ValueError(f"edge_index must be [2, E] with entries in 0..{len(q) - 1}, got shape {tuple(ei.shape)}")
    fig, axs = _axes(ax, (1, 1), (3.4, 3.0))
    ax = axs[0, 0]
    depth = _depths(ei, len(q))
    cols = {k: [v for v in range(len(q)) if depth[v] == k] for k in set(depth)}
    pos = {v: (k, (len(vs) - 1) / 2 - i) for k, vs in cols.items() for i, v in enumerate(vs)}
    for s, t in ei.t().tolist():
        ax.annotate("", xy=pos[t], xytext=pos[s], arrowprops=dict(arrowstyle="-|>", color="0.45", lw=1.1,
                                                                  shrinkA=13, shrinkB=13))
    for v, (x, y) in pos.items():
        face, edge = EQUIVARIANT_COLOR if q[v] != 1 else INPUT_COLOR
        ax.scatter([x], [y], s=600, color=face, edgecolors=edge, zorder=3)
        ax.text(x, y, str(v), ha="center", va="center", fontsize=10, weight="bold", zorder=4)
        ax.text(x, y - 0.32, f"q={q[v]:g}", ha="center", va="top", fontsize=8, color=edge)
    ax.set_xlim(-0.5, max(depth) + 0.5)
    ax.set_ylim(min(p[1] for p in pos.values()) - 0.7, max(p[1] for p in pos.values()) + 0.4)
    ax.axis("off")
    ax.set_title("toy graph, vertex scales $q_v$", fontsize=9)
    return fig


def draw_edge_scaling(items: Sequence[EdgeScaling], axes=None) -> Figure:
    """One panel per :class:`EdgeScaling`: for each edge ``s->t`` the per-channel ratios
    ``after / before`` (dots, log scale) over a blue tick at ``q_t`` (receiver) and a red one at ``q_s``
    (sender). The dots sit on the tick of the vertex the quantity scales like.

    Returns:
        the Figure; panel ``i``'s dots are ``axes[i].collections[2]`` (offsets ``(edge, ratio)``), after the
        receiver (``[0]``) and sender (``[1]``) ticks.
    """
    items = list(items)
    if not items or not all(isinstance(it, EdgeScaling) for it in items):
        raise TypeError("items must be a non-empty sequence of EdgeScaling (see edge_scaling)")
    fig, axs = _axes(axes, (1, len(items)), (4.4 * len(items) + 1.2, 3.0))
    for ax, it in zip(axs[0], items):
        e, d = it.ratio.shape
        xs = np.repeat(np.arange(e), d) + np.tile(np.linspace(-0.12, 0.12, d), e)
        ok = np.isfinite(it.ratio.reshape(-1))
        ax.hlines(it.q_receiver, np.arange(e) - 0.3, np.arange(e) + 0.3, color="tab:blue", lw=4, alpha=0.6,
                  label="$q_t$ (receiver)")
        ax.hlines(it.q_sender, np.arange(e) - 0.3, np.arange(e) + 0.3, color="tab:red", lw=2, ls=(0, (2, 1)),
                  label="$q_s$ (sender)")
        ax.scatter(xs[ok], it.ratio.reshape(-1)[ok], s=9, color="k", zorder=3, label="ratio, per channel")
        ax.set_yscale("log")
        levels = np.unique(np.concatenate([it.q_sender, it.q_receiver]))
        ax.set_yticks(levels, [f"{v:g}" for v in levels])
        ax.yaxis.set_minor_locator(plt.NullLocator())
        ax.margins(y=0.15)
        ax.set_xticks(range(e))
        ax.set_xticklabels(it.edge_labels, fontsize=8)
        ax.set_xlabel("edge $s \\to t$", fontsize=8)
        ax.set_ylabel("ratio $g\\cdot\\theta$ / $\\theta$", fontsize=8)
        like = "$q_t$" if it.scales_like == "receiver" else "$q_s$"
        ax.set_title(f"{it.label} scales like {like}\n(max rel. error {it.max_error:.0e})", fontsize=9)
    axs[0, -1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    if axes is None:
        fig.tight_layout()
    return fig


@dataclass(frozen=True)
class Agreement:
    """One output computed twice: ``reference`` (e.g. the library's layer) and ``rebuilt`` (by hand),
    both flattened to ``[n]``."""

    label: str
    reference: np.ndarray
    rebuilt: np.ndarray

    @property
    def max_diff(self) -> float:
        return float(np.abs(self.reference - self.rebuilt).max())


def agreement(label: str, reference, rebuilt) -> Agreement:
    """Wrap two computations of one output for :func:`draw_agreement`; ``ValueError`` if their shapes
    differ."""
    r, b = _array(reference, "reference"), _array(rebuilt, "rebuilt")
    if r.shape != b.shape:
        raise ValueError(f"reference and rebuilt must have the same shape, got {r.shape} and {b.shape}")
    return Agreement(label, r.reshape(-1), b.reshape(-1))


def draw_agreement(items: Sequence[Agreement], ax: plt.Axes | None = None) -> Figure:
    """Rebuilt against reference values, one marker per :class:`Agreement`, over the diagonal ``y = x``
    (every point on it when the two agree); the title gives the largest ``|difference|``.

    Returns:
        the Figure; item ``i``'s points are ``ax.collections[i]`` (offsets ``(reference, rebuilt)``).
    """
    items = list(items)
    if not items or not all(isinstance(it, Agreement) for it in items):
        raise TypeError("items must be a non-empty sequence of Agreement (see agreement)")
    fig, axs = _axes(ax, (1, 1), (4.2, 3.8))
    ax = axs[0, 0]
    markers = "osD^vP*X"
    for i, it in enumerate(items):
        ax.scatter(it.reference, it.rebuilt, s=22, marker=markers[i % len(markers)], alpha=0.75, label=it.label)
    lo = min(float(min(it.reference.min(), it.rebuilt.min())) for it in items)
    hi = max(float(max(it.reference.max(), it.rebuilt.max())) for it in items)
    ax.plot([lo, hi], [lo, hi], color="0.4", lw=0.8, ls="--", zorder=0, label="$y = x$")
    ax.set_xlabel("library", fontsize=9)
    ax.set_ylabel("rebuilt from the equations", fontsize=9)
    ax.set_title(f"max |diff| = {max(it.max_diff for it in items):.1e}", fontsize=9)
    ax.legend(fontsize=8)
    return fig
