"""Figure helpers shared by the notebooks.

:func:`draw_network_graph` draws a network's graph (vertices by layer, edges by weight) on a colour
and width scale passed in by the caller, so that several panels share one scale: a vertex whose bias
does not change keeps its colour across panels.
"""

from __future__ import annotations

import matplotlib as mpl
import matplotlib.transforms  # noqa: F401  (mpl.transforms.Bbox)
import torch

__all__ = ["shared_norm", "draw_network_graph", "vertex_labels"]


def shared_norm(*tensors: torch.Tensor) -> mpl.colors.Normalize:
    """A colour scale symmetric about 0 that covers every value of ``tensors`` (bias colours)."""
    m = max(float(t.abs().max()) for t in tensors) or 1.0
    return mpl.colors.Normalize(vmin=-m, vmax=m)


def vertex_labels(batch) -> list[str]:
    """``in0, in1, h1.0, ..., out0``: input, hidden (layer.index) and output vertices of one graph."""
    names = []
    for layer, vtype, pos in zip(batch.layer.tolist(), batch.vtype.tolist(), batch.pos.tolist()):
        names.append({0: f"in{pos}", 2: f"out{pos}"}.get(vtype, f"h{layer}.{pos}"))
    return names


def draw_network_graph(batch, ax, norm: mpl.colors.Normalize, max_abs_weight: float, title: str = "",
                       cmap: str = "coolwarm", edge_labels: bool = True,
                       notes: dict[int, str] | None = None) -> mpl.cm.ScalarMappable:
    """Draw one graph (``to_graph`` of a single MLP) on ``ax``.

    Vertices sit in columns by layer and are coloured by their bias with ``norm`` (inputs have 0);
    edge width is ``|w| / max_abs_weight``, colour blue (w > 0) or red (w < 0), and with
    ``edge_labels`` edges show their weight (texts with gid ``edge-label``), each placed at the first
    fraction along its edge where it overlaps no other label nor a vertex; an edge with no free place
    stays unlabelled. Labels are placed for the axes' current size: lay the figure out (colourbar axes
    included) before drawing. ``notes`` (vertex -> text) are written under vertices.
    Returns the mappable for a colourbar.
    """
    import networkx as nx

    G = nx.DiGraph()
    layer, pos_in = batch.layer.tolist(), batch.pos.tolist()
    n_per = {l: layer.count(l) for l in set(layer)}
    labels = vertex_labels(batch)
    for v in range(batch.num_nodes):
        G.add_node(v, pos=(layer[v], -(pos_in[v] - (n_per[layer[v]] - 1) / 2)))
    w = batch.edge_attr[:, 0].detach().cpu()
    for (s, t), val in zip(batch.edge_index.t().tolist(), w.tolist()):
        G.add_edge(s, t, w=val)
    pos = nx.get_node_attributes(G, "pos")
    data = [d["w"] for *_, d in G.edges(data=True)]
    nx.draw_networkx_edges(G, pos, ax=ax, width=[0.4 + 4 * abs(v) / max_abs_weight for v in data],
                           edge_color=["tab:red" if v < 0 else "tab:blue" for v in data], arrows=False, alpha=0.7)
    cm = mpl.colormaps[cmap]
    nx.draw_networkx_nodes(G, pos, ax=ax, node_color=[cm(norm(float(b))) for b in batch.x[:, 0].tolist()],
                           node_size=520, edgecolors="k", linewidths=0.8)
    nx.draw_networkx_labels(G, pos, labels={v: labels[v] for v in G.nodes}, ax=ax, font_size=8)
    for v, text in (notes or {}).items():
        x, y = pos[v]
        ax.annotate(text, (x, y), xytext=(0, -21), textcoords="offset points", ha="center", fontsize=8)
    ax.set_title(title, fontsize=9)
    ax.axis("off")
    if edge_labels:
        _place_edge_labels(ax, pos, [((s, t), f"{d['w']:.2f}") for s, t, d in G.edges(data=True)], node_size=520)
    return mpl.cm.ScalarMappable(norm=norm, cmap=cm)


_FRACTIONS = (0.5, 0.3, 0.7, 0.2, 0.8, 0.4, 0.6)


def _place_edge_labels(ax, pos: dict, labels: list, node_size: float, pad_px: float = 2.0) -> None:
    """Write each ``((s, t), text)`` on its edge at the first of :data:`_FRACTIONS` (from ``s``) where it
    overlaps no text already on ``ax`` and no vertex marker (``node_size`` in points squared)."""
    ax.autoscale_view()
    fig = ax.figure
    renderer = fig.canvas.get_renderer() if hasattr(fig.canvas, "get_renderer") else None
    taken = [t.get_window_extent(renderer).padded(pad_px) for t in ax.texts if t.get_text()]
    r = node_size ** 0.5 / 2 * fig.dpi / 72  # vertex radius in pixels
    for v in pos.values():
        x, y = ax.transData.transform(v)
        taken.append(mpl.transforms.Bbox([[x - r, y - r], [x + r, y + r]]))
    for (s, t), text in labels:
        (xs, ys), (xt, yt) = pos[s], pos[t]
        for f in _FRACTIONS:
            label = ax.text(xs + f * (xt - xs), ys + f * (yt - ys), text, fontsize=8, ha="center", va="center",
                            gid="edge-label", zorder=3, bbox=dict(boxstyle="square,pad=0.1", fc="white", ec="none",
                                                                 alpha=0.8))
            ext = label.get_window_extent(renderer).padded(pad_px)
            if not any(ext.overlaps(o) for o in taken):
                taken.append(ext)
                break
            label.remove()
