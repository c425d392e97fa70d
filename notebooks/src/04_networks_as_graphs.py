# %% [markdown]
# # 04 · Networks as graphs
#
# A metanetwork reads *other networks*. ScaleGMN reads them as graphs: one vertex per neuron (per
# channel for convolutions), input neurons included, one edge per weight. The picture below comes
# first; the equations follow it.
#
# **Sources.** Networks as graphs for metanetworks: Lim et al., *Graph Metanetworks for Processing
# Diverse Neural Architectures* (GMN), ICLR 2024; with scaling symmetries: Kalogeropoulos et al.,
# *Scale Equivariant Graph Metanetworks* (ScaleGMN), NeurIPS 2024. The weight-space alternative
# (no graph): Zhou et al., *Permutation Equivariant Neural Functionals* (NFN), NeurIPS 2023.
#
# **You will learn** how a network becomes a graph (vertices, edges, features), how the gauge group
# acts on that graph, and how to go back from graph features to weights exactly.

# %%
from scalegmn_lite.common.config import notebook_setup

cfg = notebook_setup(seed=0)
FULL, SEED, DEVICE = cfg.FULL, cfg.SEED, cfg.DEVICE

# %%
import matplotlib.pyplot as plt
import torch

from scalegmn_lite import GaugeElement, NetworkSpec, WeightSpace
from scalegmn_lite.nn.graphs import from_graph, to_graph

gen = torch.Generator().manual_seed(SEED)

# %% [markdown]
# ## A network and its graph
# Left, the MLP $2 \to 3 \to 1$ as the library stores it: a weight matrix $W_l$ (one cell per weight)
# and a bias column $b_l$ per layer. Right, its graph: each cell of $W_l$ becomes one edge (same
# colour as its matrix), each bias entry becomes the feature of the vertex of its neuron (same
# colour as the vertex: orange hidden, green output); input vertices have no bias and get $0$.

# %% tags=["nbval-ignore-output"]
from scalegmn_lite.course.diagrams import draw_network_to_graph

draw_network_to_graph("mlp 2-3-1 relu")
plt.show()

# %% [markdown]
# In symbols: the vertex feature is the neuron's bias $b_l[t]$ (input vertices get $0$), the edge
# $s \to t$ of layer $l$ carries $W_l[t, s]$ (a whole kernel slice $K_l[t, s]$, flattened, for
# convolutions). Under a gauge element (permutations $P_l$, scalings $Q_l$ of hidden layers) a
# hidden vertex feature becomes $q_t\,x_t$ and an edge feature $\frac{q_t}{q_s} e_{st}$: the graph is
# permuted and rescaled, never restructured. That is what makes graph neural networks a natural fit.
#
# ## A graph by hand
# A tiny MLP $2 \to 3 \to 1$ with ReLU: $2 + 3 + 1 = 6$ vertices and $2 \cdot 3 + 3 \cdot 1 = 9$ edges.
# We number vertices layer by layer and list edges of each layer target-major ($e = t\,n_{l-1} + s$),
# exactly the order of `W.reshape(-1)`.

# %%
spec = NetworkSpec.from_text("mlp 2-3-1 relu")
ws = WeightSpace.randn(spec, 1, gen)
W1, b1, W2, b2 = (t[0] for t in ws.params())

x_hand = torch.cat([torch.zeros(2), b1, b2]).unsqueeze(-1)  # [V, 1]
src, dst, e_hand = [], [], []
offsets = [0, 2, 5]  # first vertex of each layer
for l, W in enumerate([W1, W2], start=1):
    for t in range(W.shape[0]):
        for s in range(W.shape[1]):
            src.append(offsets[l - 1] + s)
            dst.append(offsets[l] + t)
            e_hand.append(W[t, s])
edge_index_hand = torch.tensor([src, dst])
e_hand = torch.stack(e_hand).unsqueeze(-1)
print("vertices", x_hand.shape[0], "edges", edge_index_hand.shape[1])

# %% [markdown]
# The library builds the same graph (as a `torch_geometric` batch with one graph per network) and
# adds per-vertex attributes: layer, type (input/hidden/output), position inside the layer and the
# symmetry of the vertex's hidden layer, read from `spec.symmetries`.

# %%
g = to_graph(ws)
assert torch.equal(g.x, x_hand)
assert torch.equal(g.edge_index, edge_index_hand)
assert torch.equal(g.edge_attr, e_hand)
print("layer", g.layer.tolist())
print("vtype", g.vtype.tolist(), " (0 input, 1 hidden, 2 output)")
print("sym  ", g.sym.tolist(), " (0 fixed, 1 positive scale, 2 sign, 3 permutation only)")

# %% [markdown]
# **Quick check.** How many vertices and edges has the graph of an `mlp 3-4-5-2` network, and which
# of its vertices can a gauge element move?
#
# <details><summary>Answer</summary>
#
# $3 + 4 + 5 + 2 = 14$ vertices and $3 \cdot 4 + 4 \cdot 5 + 5 \cdot 2 = 42$ edges, one per weight. Only
# the $4 + 5 = 9$ hidden vertices are permuted and rescaled; the 3 input and 2 output vertices are fixed.
# </details>

# %% [markdown]
# ## Drawing it
# Three panels on **one** colour scale (vertex colour = bias; inputs have none) and one edge-width
# scale (width $\propto |w|$, blue positive, red negative; each edge labelled with its weight where
# the label has room):
# the network, the same network with its hidden neurons only *rescaled* ($q$ printed under each
# hidden vertex), and with a full gauge element (permuted and rescaled).

# %% tags=["nbval-ignore-output"]
from scalegmn_lite.course.plots import draw_network_graph, shared_norm

g_scale_only = GaugeElement(spec, [torch.arange(3)[None]], [torch.tensor([[2.0, 0.5, 3.0]])])  # easy to read q
g_full = GaugeElement.sample(spec, 1, gen)
panels = {"MLP 2-3-1": (g, None),
          "rescaled: x_t -> q_t x_t, e_st -> (q_t/q_s) e_st": (to_graph(g_scale_only.apply(ws)), g_scale_only),
          "permuted and rescaled (same function)": (to_graph(g_full.apply(ws)), g_full)}
norm = shared_norm(*[b.x for b, _ in panels.values()])
wmax = max(float(b.edge_attr.abs().max()) for b, _ in panels.values())
# the colourbar gets its own axes first, so the layout is final when the weight labels are placed
fig, axes = plt.subplots(1, 4, figsize=(14, 4.2), gridspec_kw={"width_ratios": [1, 1, 1, 0.03]})
for ax, (title, (b, gauge)) in zip(axes, panels.items()):
    notes = None
    if gauge is not None:  # q of the hidden vertex in each position (the scales are in the new order)
        notes = {2 + i: f"q={float(q):.2f}" for i, q in enumerate(gauge.scales[0][0])}
    mappable = draw_network_graph(b, ax, norm, wmax, title=title, notes=notes)
fig.colorbar(mappable, cax=axes[3], label="vertex feature: bias $b_t$")
plt.show()

# %%
print("input and output vertices unchanged by the gauge:",
      all(torch.equal(b.x[b.vtype != 1], g.x[g.vtype != 1]) for b, _ in panels.values()))
scaled = panels["rescaled: x_t -> q_t x_t, e_st -> (q_t/q_s) e_st"][0]
q = torch.cat([torch.ones(2), g_scale_only.scales[0][0], torch.ones(1)])  # q per vertex, inputs/outputs fixed
s_, t_ = g.edge_index
print("rescaled edges == (q_t / q_s) * original edges:",
      torch.allclose(scaled.edge_attr[:, 0], q[t_] / q[s_] * g.edge_attr[:, 0]))

# %% [markdown]
# The gauge-transformed network computes the same function; its graph is the same graph with
# hidden vertices permuted and edge widths rescaled by $q_t / q_s$. Input and output vertices keep
# their colour in every panel (checked above): only hidden vertices move.
#
# **Quick check.** An edge from an input vertex $s$ to a hidden vertex $t$ is rescaled by what?
# And an edge from a hidden vertex to an output vertex?
#
# <details><summary>Answer</summary>
#
# $q_t / q_s$ with $q_s = 1$ at inputs: by $q_t$. Into an output ($q_t = 1$): by $1/q_s$. So the first
# layer's rows and the last layer's columns carry the scales, as in the matrices of notebook 01.
# </details>
#
# ## Convolutions
# A conv layer has a vertex per *channel*, not per pixel: below, a CNN with two $3 \times 3$
# convolutions ($1 \to 3 \to 3$ channels), global average pooling and a dense layer $3 \to 2$. Each
# cell of $K_l$ is a whole kernel slice $K_l[t, s]$ (drawn as its $3 \times 3$ entries); it becomes
# *one* edge whose feature is that kernel flattened to a vector in $\mathbb{R}^9$. The channel
# biases become vertex features as before.

# %% tags=["nbval-ignore-output"]
draw_network_to_graph("conv2d 1-3-3/2 k3 relu 1x8x8")
plt.show()

# %% [markdown]
# The edge $s \to t$ carries the whole kernel slice $K_l[t, s] \in \mathbb{R}^{k}$, flattened and
# zero-padded to the largest kernel numel in the batch, with a mask (the dense edges above hold one
# real entry and 8 zeros). Global average pooling hands the last conv's channels to the first dense
# layer as its input neurons. (Flattening without pooling gives edges that carry a block of
# positions, one entry per pixel of the channel; exercise 3 asks what that does to the picture.)

# %%
cnn = WeightSpace.randn(NetworkSpec.from_text("conv2d 1-4-4/10 k3 relu 1x8x8"), 2, gen)
mlp = WeightSpace.randn(NetworkSpec.from_text("mlp 8-5-3 tanh"), 3, gen)
batch = to_graph([cnn, mlp])
print(batch.num_graphs, "graphs,", batch.num_nodes, "vertices,", batch.num_edges, "edges, edge width",
      batch.edge_attr.shape[1])
print("real kernel entries per edge:", sorted(set(batch.edge_mask.sum(1).tolist())))

# %% [markdown]
# ## Round trip
# Per-vertex and per-edge values map back to biases and weights of every network: the inverse of
# `to_graph` is exact (bit for bit), also for a batch of different architectures.

# %%
back = from_graph(batch)
assert [w.spec for w in back] == [cnn.spec, mlp.spec]
assert all(torch.equal(a, b) for w, v in zip([cnn, mlp], back) for a, b in zip(w.params(), v.params()))
print("round trip exact:", True)

# %% [markdown]
# ## Summary
# * One vertex per neuron/channel, one edge per weight (kernel slice); biases on vertices.
# * The gauge group permutes hidden vertices and rescales features: $x_t \mapsto q_t x_t$,
#   $e_{st} \mapsto \frac{q_t}{q_s} e_{st}$. Input and output vertices are fixed.
# * `to_graph` / `from_graph` are exact inverses on heterogeneous batches.
#
# ## Exercises
#
# **1.** Predict the edge features of the graph of $g\cdot\theta$ from the graph of $\theta$ and $g$,
# without calling `g.apply`: write `predict(graph, g)` for one MLP (edges in the library's order:
# layer by layer, target-major).
#
# *Hint:* per layer, reshape the layer's edges to the matrix $W_l$ `[n_l, n_{l-1}]`; the new edge
# $(t, s)$ holds $q_t / q_s$ times the old edge $(p_t, p_s)$, with `g.perms[l-1][0]` and `g.scales[l-1][0]`
# for hidden layer $l$ (identity for inputs and outputs).
#
# <details><summary>Solution</summary>
#
# ```python
# def predict(graph, g):
#     widths, dt = graph.spec[0].widths, graph.edge_attr.dtype
#     perms = [torch.arange(widths[0])] + [p[0] for p in g.perms] + [torch.arange(widths[-1])]
#     scales = ([torch.ones(widths[0], dtype=dt)] + [s[0].to(dt) for s in g.scales]
#               + [torch.ones(widths[-1], dtype=dt)])
#     out, off = [], 0
#     for l in range(1, len(widths)):
#         E = graph.edge_attr[off:off + widths[l] * widths[l - 1], 0].reshape(widths[l], widths[l - 1])
#         out.append((scales[l][:, None] * E[perms[l]][:, perms[l - 1]] / scales[l - 1][None, :]).reshape(-1, 1))
#         off += widths[l] * widths[l - 1]
#     return torch.cat(out)
# ```
# </details>

# %%
from scalegmn_lite.course.layers import (
    EXERCISE_04_2_NETWORKS,
    EXERCISE_04_3_NETWORK,
    check_edge_rescaling,
    check_edge_width,
    check_flattened_inputs,
)


def predict(graph, g):
    raise NotImplementedError


check_edge_rescaling(predict)

# %% [markdown]
# **2.** Build the graph of one network of each of the two architectures below in one batch. What is
# the edge width, and how many edge entries are masked (padding)?
#
# *Hint:* count the edges of each layer and the entries each one is missing against the widest kernel.
#
# <details><summary>Solution</summary>
#
# Width 9 (the $3 \times 3$ kernel). Masked: the conv1d's $4 + 16$ kernel edges miss $9 - 5 = 4$
# entries each, and each network's $4 \times 3$ dense edges miss 8: $80 + 96 + 96 = 272$.
# `batch = to_graph([WeightSpace.randn(NetworkSpec.from_text(s), 1) for s in EXERCISE_04_2_NETWORKS])`,
# then `batch.edge_attr.shape[1]` and `(~batch.edge_mask).sum()`.
# </details>

# %%
print(EXERCISE_04_2_NETWORKS)
edge_width, masked_entries = None, None  # your answers
check_edge_width(edge_width, masked_entries)

# %% [markdown]
# **3.** Flattening conv features into a dense layer (no pooling) gives that layer one input per
# (channel, position). Why would one vertex per such input break the "one vertex per channel"
# picture? Which group acts on the dense layer's inputs then? For `EXERCISE_04_3_NETWORK`
# (`conv2d 1-4-4/3 k3 relu 1x8x8`) flattened into its dense layer: how many input neurons would the
# dense layer have, and how many independent scale factors does the gauge group have on them?
#
# *Hint:* each $3 \times 3$ convolution without padding shrinks the image by 2 per side length. The
# gauge group of the conv layers is one permutation of the channels and one $q$ per channel (the
# graph's vertices); ask which dense inputs come from the same channel.
#
# <details><summary>Solution</summary>
#
# After flattening, the dense layer has one input per (channel, position), but the conv layer's
# gauge scales whole channels: all positions of a channel share one $q$. A vertex per dense input
# would give each position its own vertex (and its own $q$), which the group does not have. The group
# on the dense inputs permutes whole blocks (a channel's positions move together, keeping their
# order) and scales each block by its channel's $q$. So the library keeps one vertex per channel and
# puts the block $W[t, s, :]$ of $P$ weights on the edge $s \to t$, a vector edge feature like a
# kernel slice (`... flatten 1x8x8` specs). Here $8 \times 8 \to 6 \times 6 \to 4 \times 4$:
#
# ```python
# flat_inputs, flat_factors = 4 * 4 * 4, 4  # 64 inputs, one q per channel
# ```
# </details>

# %%
print(EXERCISE_04_3_NETWORK)
flat_inputs, flat_factors = None, None  # your answers
check_flattened_inputs(flat_inputs, flat_factors)
