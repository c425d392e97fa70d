"""The pipeline of an invariant metanetwork, drawn with matplotlib for notebook 06.

:func:`draw_invariant_pipeline` draws what happens to a network's weights on the way to one prediction:
``weights theta -> graph (a vertex per neuron or channel, an edge per weight) -> ScaleGMN layers
(equivariant message passing) -> invariant readout (pool over vertices, then an MLP) -> prediction``,
and below it what a gauge transform ``g`` (a permutation and a rescaling of the hidden neurons, the same
function) does at each stage: it relabels and rescales the graph, permutes and rescales the vertex features,
and leaves the readout, hence the prediction, unchanged.

The boxes and labels follow :mod:`scalegmn_lite.course.diagrams` (same colours, every label at least 8 pt);
box texts carry the gid ``box:<key>`` (keys in :data:`PIPELINE_BOXES`), so tests read them back, and
:func:`~scalegmn_lite.course.diagrams.text_overlaps` checks that none overlaps another.
"""

from __future__ import annotations

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .diagrams import COLORS, _arrow, _box, _canvas

__all__ = ["PIPELINE_BOXES", "draw_invariant_pipeline"]

#: the keys of the pipeline's boxes, left to right (top row); each box's text has gid ``box:<key>``
PIPELINE_BOXES = ("weights", "graph", "layers", "readout", "prediction")


def _mini_graph(ax: Axes, x0: float, x1: float, y: float, widths=(2, 3, 3, 1), dy: float = 0.17) -> None:
    """A small layered graph (columns of vertices, every edge between neighbouring columns)."""
    xs = [x0 + k * (x1 - x0) / (len(widths) - 1) for k in range(len(widths))]
    pts = [[(x, y + ((n - 1) / 2 - i) * dy) for i in range(n)] for x, n in zip(xs, widths)]
    for a, b in zip(pts[:-1], pts[1:]):
        for pa in a:
            for pb in b:
                ax.plot([pa[0], pb[0]], [pa[1], pb[1]], color=COLORS["edge"], lw=0.5, alpha=0.6, zorder=3)
    for k, col in enumerate(pts):
        kind = "input" if k == 0 else "output" if k == len(pts) - 1 else "hidden"
        ax.scatter([p[0] for p in col], [p[1] for p in col], s=16, c=COLORS[kind], edgecolors="k", linewidths=0.5,
                   zorder=4, gid="pipeline-vertices")


def draw_invariant_pipeline(num_layers: int = 2, outputs: str = "test accuracy (CNNs)\nor digit (INRs)",
                            ax: Axes | None = None) -> Figure:
    """Draw the invariant metanetwork of notebook 06, from weights to a prediction.

    Top row, left to right (:data:`PIPELINE_BOXES`): the network's weights ``theta`` (``W_l``, ``b_l``);
    its graph (a vertex per neuron or channel with its bias as feature, an edge per weight or kernel
    slice with it as feature; a small graph is drawn under the box); ``num_layers`` ScaleGMN layers
    (messages along the edges, computed from scale-invariant views of the vertex features, so they are
    equivariant: a permutation or rescaling of the hidden neurons permutes or rescales the features);
    the invariant readout (the mean over vertices of an invariant function of each vertex's features,
    then an MLP); the prediction (``outputs``). Bottom row: what a gauge transform ``g`` does at each
    stage (the same function; relabelled and rescaled graph; permuted and rescaled features; unchanged
    readout and prediction).

    Args:
        num_layers: message-passing layers written in the layers' box (``>= 1``).
        outputs: the text of the prediction box.
        ax: the axes to draw on (default: a new ``(10, 3.3)`` figure).
    Returns:
        the figure; the box texts have gids ``box:<key>``.
    Raises:
        ValueError: ``num_layers < 1``.
    """
    if num_layers < 1:
        raise ValueError(f"a ScaleGMN has at least one message-passing layer, got num_layers={num_layers}")
    fig, ax = _canvas(ax, 10.0, 3.3)
    y, h = 2.2, 0.95
    xs = {"weights": 0.85, "graph": 2.85, "layers": 5.0, "readout": 7.15, "prediction": 9.05}
    ws = {"weights": 1.5, "graph": 1.8, "layers": 1.9, "readout": 1.8, "prediction": 1.6}
    ax.text(0.05, 3.17, "an invariant metanetwork: one network's weights in, one prediction out", ha="left",
            va="center", fontsize=9.5, fontweight="bold")
    texts = {
        "weights": "weights θ\n$W_l$, $b_l$ of\nevery layer",
        "graph": "graph\nvertex = neuron\nedge = weight",
        "layers": f"ScaleGMN layers\n× {num_layers}: messages\nalong the edges",
        "readout": "invariant readout\nmean over vertices,\nthen an MLP",
        "prediction": f"prediction\n{outputs}",
    }
    colors = {"weights": COLORS["network"], "graph": COLORS["hidden"], "layers": COLORS["model"],
              "readout": COLORS["model"], "prediction": COLORS["output"]}
    for key in PIPELINE_BOXES:
        _box(ax, xs[key], y, ws[key], h, texts[key], colors[key], key=key, fontsize=8.5,
             weight="bold" if key == "layers" else "normal")
    labels = ["to_graph", "features\n$h_v$, $e_{st}$", "one vector\nper vertex", "one vector"]
    for (a, b), label in zip(zip(PIPELINE_BOXES[:-1], PIPELINE_BOXES[1:]), labels):
        x_a, x_b = xs[a] + ws[a] / 2, xs[b] - ws[b] / 2
        _arrow(ax, (x_a + 0.03, y), (x_b - 0.03, y), label, fontsize=8, label_at=((x_a + x_b) / 2, y + h / 2 + 0.04),
               va="bottom")
    _mini_graph(ax, xs["graph"] - 0.6, xs["graph"] + 0.6, y - h / 2 - 0.3)

    # what a gauge transform does at each stage
    yb = 0.42
    ax.plot([0.05, 9.95], [1.2, 1.2], color="#999999", lw=0.8, ls=":")
    ax.text(0.05, 1.03, "the same network after a gauge transform g (permute and rescale hidden neurons: same "
            "function)", ha="left", va="center", fontsize=9, style="italic")
    under = {
        "weights": "g·θ: other\nnumbers",
        "graph": "vertices relabelled,\nfeatures rescaled",
        "layers": "features permuted\nand rescaled\n(equivariant)",
        "readout": "unchanged\n(invariant)",
        "prediction": "unchanged",
    }
    for key in PIPELINE_BOXES:
        stays = key in ("readout", "prediction")
        ax.text(xs[key], yb, under[key], ha="center", va="center", fontsize=8, linespacing=1.2,
                color="#238b45" if stays else "#404040", fontweight="bold" if stays else "normal",
                gid=f"gauge:{key}")
    for a, b in zip(PIPELINE_BOXES[:-1], PIPELINE_BOXES[1:]):
        _arrow(ax, (xs[a] + 0.72, yb), (xs[b] - 0.82, yb), color="#999999")
    return fig
