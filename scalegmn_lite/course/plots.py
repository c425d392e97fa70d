"""Figure helpers shared by the notebooks.

:func:`draw_network_graph` draws a network's graph (vertices by layer, edges by weight) on a colour
and width scale passed in by the caller, so that several panels share one scale: a vertex whose bias
does not change keeps its colour across panels.
"""

from __future__ import annotations

import matplotlib as mpl
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
    ``edge_labels`` each edge shows its weight; ``notes`` (vertex -> text) are written under vertices.
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
    nx.draw_networkx_labels(G, pos, labels={v: labels[v] for v in G.nodes}, ax=ax, font_size=7)
    if edge_labels:
        nx.draw_networkx_edge_labels(G, pos, edge_labels={(s, t): f"{d['w']:.2f}" for s, t, d in G.edges(data=True)},
                                     ax=ax, font_size=6, label_pos=0.3, rotate=False)
    for v, text in (notes or {}).items():
        x, y = pos[v]
        ax.annotate(text, (x, y), xytext=(0, -21), textcoords="offset points", ha="center", fontsize=7)
    ax.set_title(title, fontsize=9)
    ax.axis("off")
    return mpl.cm.ScalarMappable(norm=norm, cmap=cm)
