# ruff: noqa: E402  (the mandated notebook_setup cell comes before the imports)
# %% [markdown]
# # 04 · Networks as graphs
#
# A metanetwork reads *other networks*. ScaleGMN reads them as graphs: one vertex per neuron (per
# channel for convolutions), input neurons included, one edge per weight. The vertex feature is
# the neuron's bias $b_l[t]$ (input vertices get $0$), the edge $s \to t$ of layer $l$ carries
# $W_l[t, s]$ (a whole kernel slice $K_l[t, s]$, flattened, for convolutions).
#
# Under a gauge element (permutations $P_l$, scalings $Q_l$ of hidden layers) a hidden vertex
# feature becomes $q_t\,x_t$ and an edge feature $\frac{q_t}{q_s} e_{st}$: the graph is permuted
# and rescaled, never restructured. That is what makes graph neural networks a natural fit.

# %%
from scalegmn_lite.common.config import notebook_setup

cfg = notebook_setup(seed=0)
FULL, SEED, DEVICE = cfg.FULL, cfg.SEED, cfg.DEVICE

# %%
import matplotlib.pyplot as plt
import networkx as nx
import torch

from scalegmn_lite import GaugeElement, NetworkSpec, WeightSpace
from scalegmn_lite.nn.graphs import from_graph, to_graph

gen = torch.Generator().manual_seed(SEED)

# %% [markdown]
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
# ## Drawing it
# Edge width proportional to $|w|$, colour by sign; vertices placed by layer.

# %% tags=["nbval-ignore-output"]
def draw(batch, ax, title):
    G = nx.DiGraph()
    layer, pos_in = batch.layer.tolist(), batch.pos.tolist()
    n_per = {l: layer.count(l) for l in set(layer)}
    for v in range(batch.num_nodes):
        G.add_node(v, pos=(layer[v], pos_in[v] - (n_per[layer[v]] - 1) / 2))
    w = batch.edge_attr[:, 0]
    for (s, t), val in zip(batch.edge_index.t().tolist(), w.tolist()):
        G.add_edge(s, t, w=val)
    widths = [3 * abs(d["w"]) / float(w.abs().max()) + 0.3 for *_, d in G.edges(data=True)]
    colors = ["tab:red" if d["w"] < 0 else "tab:blue" for *_, d in G.edges(data=True)]
    nx.draw(G, nx.get_node_attributes(G, "pos"), ax=ax, width=widths, edge_color=colors,
            node_color=batch.x[:, 0].tolist(), cmap="coolwarm", node_size=250, arrows=False)
    ax.set_title(title)


fig, axes = plt.subplots(1, 2, figsize=(9, 3))
draw(g, axes[0], "MLP 2-3-1")
g_gauge = to_graph(GaugeElement.sample(spec, 1, gen).apply(ws))
draw(g_gauge, axes[1], "same function, gauge-transformed")
plt.show()

# %% [markdown]
# The gauge-transformed network computes the same function; its graph is the same graph with
# hidden vertices permuted and edge widths rescaled by $q_t / q_s$.
#
# ## Convolutions
# A conv layer has a vertex per *channel*; the edge $s \to t$ carries the whole kernel slice
# $K_l[t, s] \in \mathbb{R}^{k}$, flattened and zero-padded to the largest kernel numel in the
# batch, with a mask. Global average pooling hands the last conv's channels to the first dense
# layer as its input neurons (flattening without pooling is rejected by `NetworkSpec`).

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
# 1. Verify numerically that the edge features of `g_gauge` equal $\frac{q_t}{q_s}$ times the
#    permuted edges of `g` (use `GaugeElement.perms` and `.scales`).
# 2. Build the graph of a conv1d network with kernel 5 and a conv2d network with kernel 3 in one
#    batch. What is the edge width, and how many entries are masked?
# 3. Why would flattening conv features without pooling break the "one vertex per channel"
#    picture? Which group acts on the dense layer's inputs then?
