"""Schematic diagrams for the course notebooks, drawn with matplotlib (no image files).

* :func:`draw_network_to_graph`: a network (weight matrices or kernels, biases) next to its graph, derived
  from the library's graph builder (:class:`~scalegmn_lite.nn.graphs.GraphLayout` of the spec), with what
  becomes a vertex feature and what an edge feature (notebook 04).
* :func:`draw_operator_loop`: the training loop of the one-shot (fully-amortized) operator (notebook 07).
* :func:`draw_autoencoder_merge`: the ScaleGMN autoencoder and the four ways to merge two networks
  (notebook 08).
* :func:`draw_conv_toeplitz_gauge`: a conv1d kernel unrolled into its block-Toeplitz matrix next to a dense
  matrix of the same size: one scale per output channel versus one per row (notebook 02).
* :func:`text_overlaps`: the pairs of labels whose boxes overlap once drawn (what the tests check).

Every diagram draws on one axes in data units of inches (``figsize`` ``(10, 4)``; an ``ax`` passed in is
used as it is) and returns the figure. Colours are shared: :data:`COLORS` for boxes and vertex kinds,
:data:`LAYER_COLORS` for the weights of layer ``l`` and the edges they become.
"""

from __future__ import annotations

import itertools

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Rectangle
from matplotlib.text import Text

from ..nn.graphs import HIDDEN, INPUT, OUTPUT, layout
from ..weightspace.spec import NetworkSpec

__all__ = ["COLORS", "LAYER_COLORS", "draw_network_to_graph", "draw_operator_loop", "draw_autoencoder_merge",
           "text_overlaps"]

#: fill colours of the diagrams' boxes and of the three kinds of vertices
COLORS = {
    "input": "#d9d9d9", "hidden": "#fdae6b", "output": "#a1d99b",
    "network": "#deebf7", "model": "#9ecae1", "code": "#dadaeb", "data": "#f0f0f0", "loss": "#fcbba1",
    "frozen": "#e5e5e5", "gradient": "#cb181d", "edge": "#404040",
}
#: colour of layer ``l``'s weights (left) and of the edges they become (right), ``LAYER_COLORS[l - 1]``
LAYER_COLORS = ("#2171b5", "#6a51a3", "#8c6d31", "#393b79", "#843c39", "#525252")
_KIND_COLOR = {INPUT: COLORS["input"], HIDDEN: COLORS["hidden"], OUTPUT: COLORS["output"]}


# ---------------------------------------------------------------------------------------------- helpers
def _canvas(ax: Axes | None, width: float, height: float) -> tuple[Figure, Axes]:
    """A figure of ``width x height`` inches whose axes fill it, in data units of inches (or ``ax``)."""
    if ax is None:
        fig = plt.figure(figsize=(width, height))
        ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.set_aspect("equal")
    ax.set_axis_off()
    return ax.figure, ax


def _box(ax: Axes, x: float, y: float, w: float, h: float, text: str, color: str, *, key: str,
         fontsize: float = 9, ls: str = "-", weight: str = "normal") -> FancyBboxPatch:
    """A rounded box centred at ``(x, y)`` with ``text`` in it; box and text share the gid ``box:key``."""
    patch = FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0,rounding_size=0.1", fc=color,
                           ec="#404040", lw=1.0, ls=ls, zorder=2, gid=f"box:{key}")
    ax.add_patch(patch)
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize, zorder=3, gid=f"box:{key}",
            fontweight=weight, linespacing=1.3)
    return patch


def _arrow(ax: Axes, start: tuple[float, float], end: tuple[float, float], label: str | None = None, *,
           color: str = COLORS["edge"], ls: str = "-", label_at: tuple[float, float] | None = None,
           fontsize: float = 8, rad: float = 0.0, ha: str = "center", va: str = "bottom") -> None:
    """An arrow ``start -> end`` (``rad``: curvature) with an optional label (at ``label_at``, default
    just above the middle), gid ``arrow-label``."""
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=12, color=color, lw=1.3,
                                 ls=ls, shrinkA=0, shrinkB=0, connectionstyle=f"arc3,rad={rad}", zorder=1))
    if label:
        x, y = label_at or ((start[0] + end[0]) / 2, (start[1] + end[1]) / 2 + 0.06)
        ax.text(x, y, label, ha=ha, va=va, fontsize=fontsize, color=color, gid="arrow-label", zorder=3,
                linespacing=1.2)


def _labels(fig: Figure) -> list[Text]:
    texts = [t for ax in fig.axes for t in [*ax.texts, ax.title]] + list(fig.texts)
    return [t for t in texts if t.get_visible() and t.get_text().strip()]


def text_overlaps(fig: Figure, pad_px: float = 1.0, boxes: bool = False) -> list[tuple[str, str]]:
    """Pairs of texts of ``fig`` (axes texts, titles, figure texts) whose extents overlap after
    ``fig.canvas.draw()``, by more than ``pad_px`` pixels, and ``(text, "outside the figure")`` for a text
    cut off by the figure's edge; with ``boxes``, also a text against a box (patch with gid ``box:...``)
    that is not its own. Empty when every label is readable."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    texts = _labels(fig)
    ext = [t.get_window_extent(renderer).expanded(1, 1).padded(-pad_px) for t in texts]
    found = [(a.get_text(), b.get_text()) for (a, ea), (b, eb) in itertools.combinations(zip(texts, ext), 2)
             if ea.overlaps(eb)]
    frame = fig.bbox.padded(pad_px)
    found += [(t.get_text(), "outside the figure") for t, e in zip(texts, ext)
              if not (frame.contains(e.x0, e.y0) and frame.contains(e.x1, e.y1))]
    if boxes:
        patches = [p for ax in fig.axes for p in ax.patches if (p.get_gid() or "").startswith("box:")]
        for t, e in zip(texts, ext):
            for p in patches:
                if p.get_gid() != t.get_gid() and p.get_window_extent(renderer).overlaps(e):
                    found.append((t.get_text(), p.get_gid()))
    return found


# ------------------------------------------------------------------------------------ network -> graph
def _check_spec(spec, max_width: int, max_layers: int) -> NetworkSpec:
    if isinstance(spec, str):
        spec = NetworkSpec.from_text(spec)
    if not isinstance(spec, NetworkSpec):
        hint = "; pass its .spec" if hasattr(spec, "spec") else ""
        raise TypeError(f"draw_network_to_graph draws a NetworkSpec or its text form (e.g. 'mlp 2-3-1 relu'), "
                        f"got {type(spec).__name__}{hint}")
    if spec.has_flatten:
        raise ValueError(f"draw_network_to_graph draws MLPs and pooled CNNs; {spec.to_text()!r} flattens a "
                         "convolution into a dense layer (its edges carry blocks of positions), not drawn here")
    if max(spec.widths) > max_width or spec.num_layers > max_layers:
        raise ValueError(f"{spec.to_text()!r} is too large to draw readably (widest layer {max(spec.widths)}, "
                         f"{spec.num_layers} layers; at most {max_width} and {max_layers}): draw a smaller spec")
    return spec


def _layer_text(layer, last: bool) -> str:
    if layer.is_conv:
        k = "x".join(map(str, layer.kernel_size))
        head = f"{'Conv1d' if layer.kind == 'conv1d' else 'Conv2d'} {layer.in_dim}→{layer.out_dim}\nkernel {k}"
    else:
        head = f"Linear {layer.in_dim}→{layer.out_dim}"
    tail = [layer.activation] if layer.activation else []
    if layer.pool_after:
        tail.append("avg pool")
    if not tail and not last:
        tail.append("identity")
    return head + ("\n" + ", ".join(tail) if tail else "")


def _draw_weights(ax: Axes, spec: NetworkSpec, x0: float, x1: float, yc: float, max_h: float) -> None:
    """Left panel: per layer the weight grid ``[n_l, n_{l-1}]`` (kernels drawn inside each cell), the bias
    column in the colour of the vertices it becomes, and the layer's description under it."""
    L = spec.num_layers
    below = yc - max(spec.widths[1:]) * min(0.34, max_h / max(spec.widths[1:])) / 2 - 0.2
    cols = sum(layer.in_dim + 1.5 for layer in spec.layers) + 1.6 * (L - 1)
    c = min(0.34, (x1 - x0) / cols, max_h / max(spec.widths[1:]))
    x = x0 + ((x1 - x0) - c * cols) / 2
    for l, layer in enumerate(spec.layers, start=1):
        color, rows, n_in = LAYER_COLORS[(l - 1) % len(LAYER_COLORS)], layer.out_dim, layer.in_dim
        top = yc + rows * c / 2
        kh, kw = (layer.kernel_size + (1,))[:2] if len(layer.kernel_size) == 2 else (1, max(layer.kernel_numel, 1))
        for t in range(rows):
            for s in range(n_in):
                cx, cy = x + s * c, top - (t + 1) * c
                if layer.is_conv:  # the kernel slice K_l[t, s], one small square per entry
                    ax.add_patch(Rectangle((cx, cy), c, c, fc="white", ec=color, lw=0.6))
                    u = 0.8 * c / max(kh, kw)
                    ox, oy = cx + (c - u * kw) / 2, cy + (c - u * kh) / 2
                    for i in range(kh):
                        for j in range(kw):
                            ax.add_patch(Rectangle((ox + j * u, oy + i * u), u, u, fc=color, ec="white", lw=0.3,
                                                   alpha=0.75))
                else:
                    ax.add_patch(Rectangle((cx, cy), c, c, fc=color, ec="white", lw=0.8, alpha=0.8))
        bx = x + (n_in + 0.5) * c
        kind = OUTPUT if l == L else HIDDEN
        for t in range(rows):
            ax.add_patch(Rectangle((bx, top - (t + 1) * c), c, c, fc=_KIND_COLOR[kind], ec="#404040", lw=0.6))
        name = "K" if layer.is_conv else "W"
        ax.text(x + n_in * c / 2, top + 0.06, f"${name}_{l}$", ha="center", va="bottom", fontsize=9, color=color)
        ax.text(bx + c / 2, top + 0.06, f"$b_{l}$", ha="center", va="bottom", fontsize=9)
        ax.text(x + (n_in + 1.5) * c / 2, below, _layer_text(layer, l == L), ha="center",
                va="top", fontsize=8, linespacing=1.2)
        x += (n_in + 1.5 + 1.6) * c


def draw_network_to_graph(spec: NetworkSpec | str, ax: Axes | None = None, *, max_width: int = 8,
                          max_layers: int = 4) -> Figure:
    """Draw a network next to its graph: what becomes a vertex and what an edge.

    Left: each layer ``l`` as its weight grid ``W_l`` ``[n_l, n_{l-1}]`` (for a convolution ``K_l``
    ``[c_l, c_{l-1}]`` with the ``k``-entry kernel drawn in each cell) and its bias column ``b_l``.
    Right: the graph built by :func:`~scalegmn_lite.nn.graphs.to_graph` (its static part,
    :func:`~scalegmn_lite.nn.graphs.layout`): a vertex per neuron or channel, coloured by kind (input,
    hidden, output; the vertex feature is the bias, 0 for inputs), an edge ``s -> t`` per weight or kernel
    slice in its layer's colour (edge feature ``W_l[t, s]``, or ``K_l[t, s]`` flattened to a vector;
    narrower edges are zero-padded to the widest kernel). One edge per layer is labelled.

    Args:
        spec: an MLP or a CNN with global average pooling (``NetworkSpec`` or its text form).
        ax: the axes to draw on (default: a new ``(10, 4)`` figure).
        max_width, max_layers: the largest layer width and depth drawn.
    Returns:
        the figure. Vertices are scatter collections with gid ``graph-vertices``, edges line collections
        with gid ``graph-edges`` (so their counts can be read back).
    Raises:
        TypeError: ``spec`` is not a ``NetworkSpec`` (or text); ValueError: flattened convolutions, or a
        network larger than ``max_width`` / ``max_layers``.
    """
    spec = _check_spec(spec, max_width, max_layers)
    fig, ax = _canvas(ax, 10.0, 4.0)
    lay = layout(spec)
    yc, span, L = 2.05, 2.1, spec.num_layers

    ax.text(2.3, 3.8, f"network  {spec.to_text()}", ha="center", va="center", fontsize=9.5, fontweight="bold")
    _draw_weights(ax, spec, 0.15, 4.45, yc, span)
    _arrow(ax, (4.55, yc), (5.3, yc), "to_graph", fontsize=8.5)

    # the graph, from the library's layout: columns by layer, vertices centred in each column
    xs = [5.85 + l * 3.55 / L for l in range(L + 1)]
    dy = min(0.45, span / max(max(spec.widths) - 1, 1))
    layer, pos = lay.layer.tolist(), lay.pos.tolist()
    xy = [(xs[layer[v]], yc + ((spec.widths[layer[v]] - 1) / 2 - pos[v]) * dy) for v in range(lay.num_vertices)]
    unit = "channel" if spec.layers[0].is_conv else "neuron"
    ax.text(7.6, 3.8, f"graph: {lay.num_vertices} vertices (1 per {unit}), {lay.num_edges} edges", ha="center",
            va="center", fontsize=9.5, fontweight="bold")
    src, dst = lay.edge_index.tolist()
    for l in range(1, L + 1):
        color = LAYER_COLORS[(l - 1) % len(LAYER_COLORS)]
        ids = [e for e in range(lay.num_edges) if lay.edge_layer[e] == l]
        ax.add_collection(LineCollection([(xy[src[e]], xy[dst[e]]) for e in ids], colors=color, lw=1.0,
                                         alpha=0.75, zorder=1, gid="graph-edges"))
        # one labelled edge per layer: the top one (t = 0, s = 0), label above the graph
        (xa, ya), (xb, yb) = xy[src[ids[0]]], xy[dst[ids[0]]]
        layer_spec = spec.layers[l - 1]
        if layer_spec.is_conv:
            text = f"$K_{l}[t,s] \\in \\mathbb{{R}}^{{{layer_spec.kernel_numel}}}$"
        elif spec.max_kernel_numel > 1:
            text = f"$W_{l}[t,s]$\n(zero-padded)"
        else:
            text = f"$W_{l}[t,s]$"
        ax.annotate(text, xy=((xa + xb) / 2, (ya + yb) / 2), xytext=((xa + xb) / 2, 3.22), ha="center",
                    va="bottom", fontsize=8, color=color, linespacing=1.1,
                    arrowprops=dict(arrowstyle="-|>", color=color, lw=0.8, shrinkA=1, shrinkB=2))
    size = (min(dy, 0.4) * 72 * 0.55) ** 2
    vtype = lay.vtype.tolist()
    for kind in (INPUT, HIDDEN, OUTPUT):
        vs = [v for v in range(lay.num_vertices) if vtype[v] == kind]
        ax.scatter([xy[v][0] for v in vs], [xy[v][1] for v in vs], s=size, c=_KIND_COLOR[kind], edgecolors="k",
                   linewidths=0.8, zorder=2, gid="graph-vertices")
    for l in range(L + 1):
        kind = "input" if l == 0 else "output" if l == L else "hidden"
        feat = "$x_t = 0$" if l == 0 else f"$x_t = b_{l}[t]$"
        ax.text(xs[l], yc - span / 2 - 0.22, f"{kind}\n{feat}", ha="center", va="top", fontsize=8,
                linespacing=1.25, bbox=dict(boxstyle="round,pad=0.2", fc=COLORS[kind], ec="none"))
    ax.text(5.0, 0.1, "vertex feature = bias (0 for inputs);  edge feature = weight, or the kernel slice flattened "
            "to a vector", ha="center", va="bottom", fontsize=8, style="italic")
    return fig


# ----------------------------------------------------------------------------------- operator loop
def draw_operator_loop(ax: Axes | None = None) -> Figure:
    """The training loop of the one-shot (fully-amortized) operator of notebook 07.

    Training (top): a network ``theta`` from a zoo of trained networks goes through the ScaleGMN operator
    once, ``theta' = theta + Delta_phi(theta)``; the proposed network is evaluated on a training batch
    ``(x, y)``, ``L = CE(f_theta'(x), y) + lambda ||theta'||_1``, and the gradient flows back through
    ``f_theta'`` into the operator's weights ``phi`` only (the zoo's networks are inputs, not trained).
    Test time (bottom): a held-out network goes through the trained operator once; no training.
    Returns the figure (a new ``(10, 4)`` one unless ``ax`` is given).
    """
    fig, ax = _canvas(ax, 10.0, 4.0)
    y = 2.75
    ax.text(0.1, 3.8, "training: learn the operator's weights φ", ha="left", va="center", fontsize=9.5,
            fontweight="bold")
    _box(ax, 1.0, y, 1.6, 0.9, "zoo of trained\nnetworks θ", COLORS["data"], key="zoo")
    _box(ax, 3.35, y, 1.8, 0.9, "ScaleGMN operator\n$\\Delta_\\phi$ (equivariant)", COLORS["model"], key="operator",
         weight="bold")
    _box(ax, 5.75, y, 1.7, 0.9, "$\\theta' = \\theta + \\Delta_\\phi(\\theta)$\n(one shot)", COLORS["network"],
         key="proposal")
    _box(ax, 8.55, y, 2.5, 0.9, "loss on the batch\n$L(f_{\\theta'}(x), y) + \\lambda\\,\\|\\theta'\\|_1$",
         COLORS["loss"], key="loss")
    _box(ax, 8.55, 1.45, 1.7, 0.55, "training batch (x, y)", COLORS["data"], key="batch", fontsize=8.5)
    _arrow(ax, (1.8, y), (2.45, y), "θ")
    _arrow(ax, (4.25, y), (4.9, y), "$\\Delta_\\phi(\\theta)$")
    _arrow(ax, (6.6, y), (7.3, y), "$f_{\\theta'}$")
    _arrow(ax, (8.55, 1.72), (8.55, y - 0.45))
    # the skip connection theta -> theta' (above the boxes) and the gradient (below, dashed red)
    _arrow(ax, (1.0, y + 0.45), (5.75, y + 0.45), "θ (skip connection: + θ)", rad=-0.12, label_at=(3.35, y + 0.78))
    _arrow(ax, (8.0, y - 0.45), (3.35, y - 0.45), "$\\nabla_\\phi L$: only the operator's weights $\\phi$ are updated",
           color=COLORS["gradient"], ls="--", rad=-0.18, label_at=(5.7, 1.62), va="top")
    ax.plot([0.1, 9.9], [1.05, 1.05], color="#999999", lw=0.8, ls=":")
    yb = 0.5
    ax.text(0.1, 0.95, "test time: one forward pass, no training", ha="left", va="top", fontsize=9.5,
            fontweight="bold")
    _box(ax, 1.0, yb, 1.6, 0.55, "held-out network $\\theta^*$", COLORS["network"], key="heldout", fontsize=8.5)
    _box(ax, 3.35, yb, 1.8, 0.55, "trained operator (frozen)", COLORS["frozen"], key="frozen", fontsize=8.5)
    _box(ax, 5.75, yb, 1.7, 0.55, "$\\theta^* + \\Delta_\\phi(\\theta^*)$", COLORS["network"], key="test-proposal",
         fontsize=8.5)
    _box(ax, 8.55, yb, 2.5, 0.55, "evaluate on test data", COLORS["data"], key="evaluate", fontsize=8.5)
    _arrow(ax, (1.8, yb), (2.45, yb))
    _arrow(ax, (4.25, yb), (4.9, yb))
    _arrow(ax, (6.6, yb), (7.3, yb))
    return fig


# ------------------------------------------------------------------------------ autoencoder + merging
def draw_autoencoder_merge(ax: Axes | None = None) -> Figure:
    """The ScaleGMN autoencoder of notebook 08 and the four ways to merge two networks.

    Top: ``theta -> encoder (ScaleGMN, invariant: E(g . theta) = E(theta)) -> code z -> decoder (MLP) ->
    theta_hat``, one network in a canonical gauge (``D(E(.))`` is constant on every orbit).
    Bottom: from two networks ``theta_A``, ``theta_B`` (codes ``z_A = E(theta_A)``, ``z_B``) to a path
    ``theta_alpha``, ``alpha in [0, 1]``: naive interpolation ``(1-alpha) theta_A + alpha theta_B``; weight
    matching (align B to A with a gauge element ``pi``, then interpolate); the **canonical path**
    ``(1-alpha) D(z_A) + alpha D(z_B)`` (decode both ends, interpolate the decoded weights: the paper's
    merge); the **latent path** ``D((1-alpha) z_A + alpha z_B)`` (interpolate the codes, decode every
    point). Each path is judged by its loss along ``alpha``. Returns the figure (a new ``(10, 4)`` one unless
    ``ax`` is given); boxes carry the gids ``box:merge:naive``, ``box:merge:weight matching``,
    ``box:merge:canonical path`` and ``box:merge:latent path``.
    """
    fig, ax = _canvas(ax, 10.0, 4.0)
    y = 3.3
    ax.text(0.1, 3.85, "autoencoder", ha="left", va="center", fontsize=9.5, fontweight="bold")
    _box(ax, 0.75, y, 1.1, 0.6, "network θ", COLORS["network"], key="theta")
    _box(ax, 2.75, y, 2.1, 0.7, "encoder E: ScaleGMN\ninvariant: $E(g\\cdot\\theta) = E(\\theta)$", COLORS["model"],
         key="encoder", fontsize=8.5)
    _box(ax, 4.85, y, 0.9, 0.6, "code z", COLORS["code"], key="code")
    _box(ax, 6.55, y, 1.7, 0.7, "decoder D: MLP", COLORS["model"], key="decoder", fontsize=8.5)
    _box(ax, 8.8, y, 2.0, 0.7, "$\\hat\\theta = D(E(\\theta))$\nin a canonical gauge", COLORS["network"],
         key="theta-hat", fontsize=8.5)
    _arrow(ax, (1.3, y), (1.7, y))
    _arrow(ax, (3.8, y), (4.4, y))
    _arrow(ax, (5.3, y), (5.7, y))
    _arrow(ax, (7.4, y), (7.8, y))

    ax.plot([0.1, 9.9], [2.84, 2.84], color="#999999", lw=0.8, ls=":")
    ax.text(0.1, 2.66, "merging two networks along α ∈ [0, 1]", ha="left", va="center", fontsize=9.5,
            fontweight="bold")
    lanes = [
        (2.15, "naive", "$(1-\\alpha)\\,\\theta_A + \\alpha\\,\\theta_B$", "as they are"),
        (1.55, "weight matching",
         "align B to A: $\\pi\\cdot\\theta_B$, then\n$(1-\\alpha)\\,\\theta_A + \\alpha\\,\\pi\\cdot\\theta_B$",
         "Git Re-Basin"),
        (0.95, "canonical path",
         "decode both ends, then\n$(1-\\alpha)\\,D(z_A) + \\alpha\\,D(z_B)$", "interpolate weights"),
        (0.35, "latent path", "$D\\,((1-\\alpha)\\,z_A + \\alpha\\,z_B)$", "interpolate codes"),
    ]
    top, bottom = lanes[0][0] + 0.25, lanes[-1][0] - 0.25
    _box(ax, 0.85, (top + bottom) / 2, 1.3, top - bottom, "two networks\n$\\theta_A$, $\\theta_B$\n\ntheir codes\n"
         "$z_A$, $z_B$", COLORS["network"], key="pair")
    for yl, name, formula, note in lanes:
        through_ae = name in ("canonical path", "latent path")
        _arrow(ax, (1.5, yl), (3.35, yl), name, label_at=(2.42, yl + 0.04))
        _box(ax, 4.7, yl, 2.7, 0.5, formula, COLORS["code"] if through_ae else COLORS["data"],
             key=f"merge:{name}", fontsize=8.5)
        _arrow(ax, (6.05, yl), (7.5, yl), note, label_at=(6.77, yl + 0.04), fontsize=8)
    _box(ax, 8.65, (top + bottom) / 2, 2.2, top - bottom, "merged network $\\theta_\\alpha$\nits loss along "
         "$\\alpha$:\nthe barrier", COLORS["loss"], key="merged", fontsize=8.5)
    return fig


# ------------------------------------------------------------------------------ operator, one pass
__all__ += ["draw_operator_pipeline"]


def draw_operator_pipeline(ax: Axes | None = None) -> Figure:
    """What the one-shot operator of notebook 07 does to one network, left to right: the weights
    ``theta`` of a trained network become a graph (a vertex per neuron or channel, an edge per weight), a
    ScaleGMN reads the graph and writes one number per vertex and per edge (the update ``Delta``, in the
    same gauge as its input), and ``theta' = theta + s Delta`` is the proposed network, evaluated like any
    other. The skip connection (``+ theta``) is drawn above the boxes. Returns the figure (a new
    ``(10, 2.6)`` one unless ``ax`` is given)."""
    fig, ax = _canvas(ax, 10.0, 2.6)
    y = 1.15
    _box(ax, 0.95, y, 1.55, 0.95, "trained network\nweights θ", COLORS["network"], key="theta")
    _box(ax, 2.95, y, 1.55, 0.95, "its graph\nvertex = neuron\nedge = weight", COLORS["data"], key="graph",
         fontsize=8.5)
    _box(ax, 5.0, y, 1.7, 0.95, "ScaleGMN\n(gauge equivariant)", COLORS["model"], key="scalegmn", weight="bold")
    _box(ax, 7.0, y, 1.45, 0.95, "update Δ(θ)\none number per\nvertex and edge", COLORS["code"], key="delta",
         fontsize=8.5)
    _box(ax, 9.0, y, 1.6, 0.95, "proposed network\nθ' = θ + s·Δ(θ)", COLORS["output"], key="proposal")
    _arrow(ax, (1.725, y), (2.175, y))
    _arrow(ax, (3.725, y), (4.15, y))
    _arrow(ax, (5.85, y), (6.275, y))
    _arrow(ax, (7.725, y), (8.2, y))
    _arrow(ax, (0.95, y + 0.475), (9.0, y + 0.475), "+ θ (skip connection)", rad=-0.1, label_at=(5.0, 2.1))
    ax.text(5.0, 0.22, "one forward pass per network: no gradient step on θ, no training data at test time",
            ha="center", va="center", fontsize=9, color="#404040")
    return fig


# ------------------------------------------------------------------------------ conv vs dense: the gauge
__all__ += ["draw_conv_toeplitz_gauge"]

#: one colour per kernel weight of :func:`draw_conv_toeplitz_gauge` (light enough for black labels)
KERNEL_COLORS = ("#66c2a5", "#fc8d62", "#8da0cb", "#e78ac3", "#a6d854", "#ffd92f", "#e5c494", "#b3b3b3")


def draw_conv_toeplitz_gauge(ax: Axes | None = None, *, kernel=None, shape: tuple[int, int, int] = (2, 1, 3),
                             n: int = 6) -> Figure:
    """Notebook 02 at a glance: a conv1d kernel unrolled into its block-Toeplitz matrix, next to a dense
    (MLP) matrix of the same size, and the row scalings each of them allows.

    Left: the kernel ``K[o, c, j]`` (a row per ``(o, c)``), one colour per weight. Middle: the unrolled
    matrix ``M`` of the conv1d layer on inputs of length ``n`` (rows ``(o, p)``, columns ``(c, position)``),
    laid out by the library's :func:`~scalegmn_lite.symbolic.conv.conv1d_index`: every entry in the colour
    of the kernel weight it holds (white: a structural zero), so each colour runs along a diagonal of its
    block. A bracket per
    output channel: keeping ``M`` a convolution forces one scale ``d_o`` shared by all rows of channel
    ``o``. Right: a dense matrix of the same shape (every entry its own weight), whose rows can each be
    rescaled on their own (one ``s_r`` per row, i.e. per neuron).

    Args:
        ax: the axes to draw on (default: a new ``(10, 4.4)`` figure).
        kernel: a numeric kernel ``[c_out, c_in, k]`` (tensor or array); its values (one decimal) label
            the cells. Default: the symbols ``k_{ocj}`` of :func:`~scalegmn_lite.symbolic.conv.symbolic_kernel`.
        shape: ``(c_out, c_in, k)`` of the symbolic kernel (ignored when ``kernel`` is given).
        n: the input length.
    Returns:
        the figure, with the drawn matrix as ``fig.toeplitz`` (a float array for a numeric kernel, the
        sympy matrix of :func:`~scalegmn_lite.symbolic.conv.toeplitz_matrix` otherwise) and its index
        matrix as ``fig.toeplitz_index``. The cells are rectangles with gid ``toeplitz:r,s`` (matrix),
        ``kernel:o,c,j`` (kernel) and ``dense:r,s``; their labels carry the same gid.
    Raises:
        ValueError: more than 8 kernel weights, a kernel size over 4, or a matrix larger than 8 x 7
            (not drawn readably).
    """
    import numpy as np
    import sympy as sp
    import torch

    from ..symbolic.conv import conv1d_index, symbolic_kernel, toeplitz_matrix, unrolled_matrix

    if kernel is not None:
        kernel = torch.as_tensor(np.asarray(kernel, dtype=np.float64))
        if kernel.ndim != 3:
            raise ValueError(f"kernel must be [c_out, c_in, k], got shape {tuple(kernel.shape)}")
        shape = tuple(kernel.shape)
    c_out, c_in, k = (int(v) for v in shape)
    if c_out * c_in * k > len(KERNEL_COLORS) or k > 4:
        raise ValueError(f"a {c_out} x {c_in} x {k} kernel has {c_out * c_in * k} weights; at most "
                         f"{len(KERNEL_COLORS)}, and a size of at most 4, are drawn readably")
    index = conv1d_index(c_out, c_in, k, n)
    rows, cols = index.shape
    if rows > 8 or cols > 7:
        raise ValueError(f"the unrolled matrix is {rows} x {cols}; at most 8 x 7 is drawn readably")
    n_out = rows // c_out
    if kernel is None:
        K = symbolic_kernel(c_out, c_in, k)
        M = toeplitz_matrix(K, n)
        kernel_labels = [f"${sp.latex(v)}$" for v in sp.flatten(K)]
        cell_label = [[f"${sp.latex(M[r, s])}$" if index[r, s] else "" for s in range(cols)] for r in range(rows)]
    else:
        M = unrolled_matrix(kernel, index).numpy()
        kernel_labels = [f"{v:.1f}" for v in kernel.reshape(-1).tolist()]
        cell_label = [[f"{M[r, s]:.1f}" if index[r, s] else "" for s in range(cols)] for r in range(rows)]

    fig, ax = _canvas(ax, 10.0, 4.4)
    fig.toeplitz, fig.toeplitz_index = M, index
    label_size = 8 if kernel is not None else 8.5

    def color(i: int) -> str:  # kernel id (1 + flat index, 0 = structural zero) -> fill colour
        return KERNEL_COLORS[i - 1] if i else "white"

    def cell(x, y, size, fc, text, gid):
        ax.add_patch(Rectangle((x, y), size, size, fc=fc, ec="#808080", lw=0.5, gid=gid))
        if text:
            ax.text(x + size / 2, y + size / 2, text, ha="center", va="center", fontsize=label_size, gid=gid)

    # the kernel: a row per (o, c), a column per j
    ck, kx, ky = 0.42, 1.35, 2.65
    x0, top = kx - k * ck / 2, ky + c_out * c_in * ck / 2
    ax.text(kx, 4.25, "conv1d kernel K", ha="center", va="top", fontsize=9.5, fontweight="bold")
    ax.text(kx, 3.98, f"{c_out} out, {c_in} in channel{'s' * (c_in > 1)}, size {k}", ha="center", va="top",
            fontsize=8.5)
    for o in range(c_out):
        for c in range(c_in):
            row = o * c_in + c
            ax.text(x0 - 0.08, top - (row + 0.5) * ck, f"o={o}" + (f", c={c}" if c_in > 1 else ""), ha="right",
                    va="center", fontsize=8.5 if c_in == 1 else 8)
            for j in range(k):
                i = row * k + j + 1
                cell(x0 + j * ck, top - (row + 1) * ck, ck, color(i), kernel_labels[i - 1], f"kernel:{o},{c},{j}")
    for j in range(k):
        ax.text(x0 + (j + 0.5) * ck, top + 0.06, f"j={j}", ha="center", va="bottom", fontsize=8)

    # the unrolled (block Toeplitz) matrix and the dense one, same shape, same cell size
    cs = 0.3
    mtop = 3.45
    mx = {"conv": 3.25, "dense": 7.05}
    heads = {"conv": ("CNN: unrolled conv, block Toeplitz", "each weight repeats along a diagonal"),
             "dense": ("MLP: dense matrix of the same size", "every entry its own weight")}
    feet = {"conv": f"{c_out} scales, one per output channel:\nall rows of channel o share $d_o$",
            "dense": f"{rows} scales, one per row (neuron):\neach row rescaled on its own"}
    for name, x in mx.items():
        centre = x + cols * cs / 2 + 0.15
        ax.text(centre, 4.25, heads[name][0], ha="center", va="top", fontsize=9.5, fontweight="bold")
        ax.text(centre, 3.98, heads[name][1], ha="center", va="top", fontsize=8.5)
        ax.text(x + cols * cs / 2, mtop + 0.05, f"{rows} x {cols}: inputs (c, position) →", ha="center",
                va="bottom", fontsize=8)
        ax.text(centre, mtop - rows * cs - 0.12, feet[name], ha="center", va="top", fontsize=8.5, linespacing=1.3)
    for r in range(rows):
        y = mtop - (r + 1) * cs
        for s in range(cols):
            cell(mx["conv"] + s * cs, y, cs, color(int(index[r, s])), cell_label[r][s], f"toeplitz:{r},{s}")
            cell(mx["dense"] + s * cs, y, cs, COLORS["network"], "", f"dense:{r},{s}")
        ax.text(mx["dense"] + cols * cs + 0.08, y + cs / 2, f"$\\times\\, s_{{{r}}}$", ha="left", va="center",
                fontsize=8.5)
    ax.text(mx["dense"] - 0.08, mtop - rows * cs / 2, "neurons", ha="right", va="center", fontsize=8.5,
            rotation=90)
    xb = mx["conv"] + cols * cs + 0.08
    for o in range(c_out):
        y_hi, y_lo = mtop - o * n_out * cs - 0.03, mtop - (o + 1) * n_out * cs + 0.03
        ax.plot([xb, xb + 0.07, xb + 0.07, xb], [y_hi, y_hi, y_lo, y_lo], color="#404040", lw=1.2)
        ax.text(xb + 0.13, (y_hi + y_lo) / 2, f"$\\times\\, d_{{{o}}}$", ha="left", va="center", fontsize=9.5)
        ax.text(mx["conv"] - 0.08, (y_hi + y_lo) / 2, f"o={o}", ha="right", va="center", fontsize=8.5)
    for c in range(1, c_in):
        ax.plot([mx["conv"] + c * n * cs] * 2, [mtop, mtop - rows * cs], color="k", lw=1.2)
    for o in range(1, c_out):
        ax.plot([mx["conv"], mx["conv"] + cols * cs], [mtop - o * n_out * cs] * 2, color="k", lw=1.2)
    _arrow(ax, (kx + k * ck / 2 + 0.12, ky), (mx["conv"] - 0.5, ky), "unroll", fontsize=8.5)
    ax.plot([6.1, 6.1], [0.4, 3.6], color="#999999", lw=0.8, ls=":")

    handles = [Rectangle((0, 0), 1, 1, fc=KERNEL_COLORS[0], ec="#808080", lw=0.5),
               Rectangle((0, 0), 1, 1, fc="white", ec="#808080", lw=0.5),
               Rectangle((0, 0), 1, 1, fc=COLORS["network"], ec="#808080", lw=0.5)]
    ax.legend(handles, ["a kernel weight (one colour each)", "structural zero", "dense weight"],
              loc="lower left", bbox_to_anchor=(0.01 / 10, 0.25 / 4.4), fontsize=8.5, frameon=True)
    return fig
