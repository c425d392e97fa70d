"""Networks as graphs: weight spaces <-> torch-geometric batches (one graph per network).

Graph of one network with widths ``n_0 .. n_L`` (neurons for dense layers, channels for convs):

* a vertex per neuron/channel, layer by layer (input neurons first, outputs last);
  ``V = n_0 + ... + n_L``. Vertex feature ``x`` (``[V, 1]``): the bias of the neuron; input
  vertices get the constant ``0``.
* an edge ``s -> t`` for every weight of layer ``l`` from neuron ``s`` of layer ``l-1`` to neuron
  ``t`` of layer ``l``; edge feature ``edge_attr`` (``[E, K]``): ``W_l[t, s]`` for dense layers,
  the kernel slice ``K_l[t, s]`` flattened (row-major) for convolutions, and for a dense layer
  after ``Flatten`` (LeNet-style) the block ``W_l[t, s*P:(s+1)*P]`` of the ``P = H*W`` weights
  that dense neuron ``t`` gives to the positions of channel ``s``; zero-padded to ``K``, the
  widest edge (:attr:`NetworkSpec.max_kernel_numel`) in the batch; ``edge_mask`` (``[E, K]``
  bool) marks the real entries.
  Edges of layer ``l`` are ordered ``t``-major (``e = t * n_{l-1} + s``), i.e. like
  ``W_l.reshape(n_l * n_{l-1}, -1)``.

Per-vertex attributes (long, ``[V]``): ``layer`` (``0..L``), ``vtype`` (:data:`INPUT`,
:data:`HIDDEN`, :data:`OUTPUT`), ``pos`` (index inside its layer; identity encodings of input and
output vertices), ``sym`` (the symmetry of the vertex's hidden layer, read from
``spec.symmetries``: :data:`SYM_NONE` for input/output vertices, else :data:`SYM_CODES`).
Per-edge: ``edge_layer`` (``1..L``). Per graph: ``spec`` (the :class:`NetworkSpec`) and ``group``
(index of the weight space it came from, so :func:`from_graph` can return the same grouping).

Gauge action (``DESIGN.md`` §2): under ``g`` a hidden vertex feature becomes ``q_t x_t`` (and moves
to the permuted position); an edge feature ``q_t / q_s e_st``; input/output vertices are fixed.

A channel of the last convolution is one vertex whether it is pooled or flattened: under the gauge
group its scale and permutation act on its whole block of ``P`` dense inputs (``W[t, s, :] ->
W[t, perm(s), :] / q_s``), so the block is one edge feature of ``P`` entries that transforms like a
kernel slice. Every structure :class:`~scalegmn_lite.weightspace.spec.NetworkSpec` accepts has a graph;
a metanetwork needs an edge width (``ScaleGMNConfig.max_kernel``) of at least ``max_kernel_numel``.
"""

from __future__ import annotations

import copy
from typing import Sequence

import torch
from torch_geometric.data import Batch, Data

from ..weightspace.spec import NetworkSpec, SpecError, Symmetry
from ..weightspace.weights import WeightSpace

__all__ = [
    "INPUT",
    "HIDDEN",
    "OUTPUT",
    "SYM_NONE",
    "SYM_CODES",
    "SYM_NONZERO",
    "GraphLayout",
    "layout",
    "to_graph",
    "from_graph",
    "graph_to_weights",
]

INPUT, HIDDEN, OUTPUT = 0, 1, 2
#: symmetry code of input/output vertices (fixed by the group)
SYM_NONE = 0
#: symmetry code of hidden vertices, by their layer's :class:`Symmetry`
SYM_CODES = {Symmetry.POSITIVE_SCALE: 1, Symmetry.SIGN: 2, Symmetry.PERMUTATION: 3}
#: symmetry code of vertices scaled by any ``q != 0`` (the inputs of BatchNorm/LayerNorm in block graphs,
#: :mod:`scalegmn_lite.nn.block_graphs`); chain graphs never use it
SYM_NONZERO = 4


class GraphLayout:
    """The static (weight-independent) part of the graph of one :class:`NetworkSpec`.

    Attributes (all on CPU, long): ``edge_index [2, E]``, ``layer [V]``, ``vtype [V]``, ``pos [V]``,
    ``sym [V]``, ``edge_layer [E]``; ``offsets[l]``: index of the first vertex of layer ``l``;
    ``edge_offsets[l]``: index of the first edge of layer ``l + 1``.
    """

    def __init__(self, spec: NetworkSpec) -> None:
        self.spec = spec
        widths = spec.widths
        L = spec.num_layers
        self.offsets = [0]
        for n in widths:
            self.offsets.append(self.offsets[-1] + n)
        self.num_vertices = self.offsets[-1]
        layer, vtype, pos, sym = [], [], [], []
        for l, n in enumerate(widths):
            layer.append(torch.full((n,), l))
            kind = INPUT if l == 0 else OUTPUT if l == L else HIDDEN
            vtype.append(torch.full((n,), kind))
            pos.append(torch.arange(n))
            code = SYM_CODES[spec.symmetries[l - 1]] if kind == HIDDEN else SYM_NONE
            sym.append(torch.full((n,), code))
        self.layer, self.vtype = torch.cat(layer), torch.cat(vtype)
        self.pos, self.sym = torch.cat(pos), torch.cat(sym)
        src, dst, elayer = [], [], []
        self.edge_offsets = [0]
        for l, lay in enumerate(spec.layers, start=1):
            t, s = torch.meshgrid(torch.arange(lay.out_dim), torch.arange(lay.in_dim), indexing="ij")
            src.append(s.reshape(-1) + self.offsets[l - 1])
            dst.append(t.reshape(-1) + self.offsets[l])
            elayer.append(torch.full((lay.out_dim * lay.in_dim,), l))
            self.edge_offsets.append(self.edge_offsets[-1] + lay.out_dim * lay.in_dim)
        self.edge_index = torch.stack([torch.cat(src), torch.cat(dst)])
        self.edge_layer = torch.cat(elayer)
        self.num_edges = self.edge_offsets[-1]


_LAYOUTS: dict[NetworkSpec, GraphLayout] = {}


def layout(spec: NetworkSpec) -> GraphLayout:
    """The cached :class:`GraphLayout` of ``spec``."""
    if spec not in _LAYOUTS:
        if len(_LAYOUTS) > 256:
            _LAYOUTS.clear()
        _LAYOUTS[spec] = GraphLayout(spec)
    return _LAYOUTS[spec]


def _as_list(ws: WeightSpace | Sequence[WeightSpace]) -> list[WeightSpace]:
    items = [ws] if isinstance(ws, WeightSpace) else list(ws)
    if not items or not all(isinstance(w, WeightSpace) for w in items):
        raise TypeError("to_graph expects a WeightSpace or a non-empty list of WeightSpaces")
    return items


def to_graph(
    ws: WeightSpace | Sequence[WeightSpace],
    kernel_dim: int | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> Batch:
    """One graph per network of ``ws`` (a weight space or a list of them with any specs).

    Args:
        ws: ``B_1 + B_2 + ...`` networks; graphs keep this order.
        kernel_dim: ``K``, the width of ``edge_attr`` (default: the largest kernel numel present).
        device, dtype: of the returned tensors (default: those of the weights).
    Returns:
        a :class:`torch_geometric.data.Batch` with ``x [V, 1]``, ``edge_index [2, E]``,
        ``edge_attr [E, K]``, ``edge_mask [E, K]``, ``layer``, ``vtype``, ``pos``, ``sym`` ``[V]``,
        ``edge_layer [E]``, ``batch [V]``, and the lists ``spec`` and ``group`` (one entry per
        graph). Differentiable with respect to the weights.
    """
    items = _as_list(ws)
    need = max(w.spec.max_kernel_numel for w in items)
    K = need if kernel_dim is None else int(kernel_dim)
    if K < need:
        raise SpecError(f"kernel_dim={K} is smaller than the largest kernel in the batch ({need} entries)")
    devs = {w.device if device is None else torch.device(device) for w in items}
    dts = {w.dtype if dtype is None else dtype for w in items}
    if len(devs) == 1 and len(dts) == 1:
        return _to_graph_cached(items, K, devs.pop(), dts.pop())
    return _to_graph_collate(items, K, device, dtype)


#: the weight-independent part of the batch of every ``((spec, batch size), ...)``, kernel width and
#: device seen (a ``Batch`` without ``x``/``edge_attr``), so repeated calls skip PyG's collation
_STRUCTURES: dict[tuple, Batch] = {}


def _features(w: WeightSpace, K: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``x [B * V, 1]`` (0 for inputs, then the biases) and ``edge_attr [B * E, K]`` of ``w``'s graphs,
    graph-major as in a collated batch."""
    B = w.batch_size
    x = torch.cat([w.biases[0].new_zeros(B, w.spec.widths[0]), *w.biases], dim=1).reshape(-1, 1)
    edges = [torch.nn.functional.pad(W.reshape(B, layer.out_dim * layer.in_dim, layer.kernel_numel),
                                     (0, K - layer.kernel_numel)) for layer, W in zip(w.spec.layers, w.weights)]
    return x, torch.cat(edges, dim=1).reshape(-1, K)


def _to_graph_cached(items: list[WeightSpace], K: int, dev: torch.device, dt: torch.dtype) -> Batch:
    """:func:`to_graph` with the collated structure reused (the same batch, built in ~50 ops instead
    of PyG's per-graph collation; ``tests/test_graphs.py`` checks it against the collated one)."""
    key = (tuple((w.spec, w.batch_size) for w in items), K, dev)
    template = _STRUCTURES.get(key)
    if template is None:
        if len(_STRUCTURES) > 64:
            _STRUCTURES.clear()
        template = _to_graph_collate(items, K, dev, dt)
        template.x = template.edge_attr = None  # no weights (nor their autograd graph) kept alive
        _STRUCTURES[key] = template
    feats = [_features(w, K) for w in items]
    out = copy.copy(template)
    x = feats[0][0] if len(feats) == 1 else torch.cat([f[0] for f in feats])
    e = feats[0][1] if len(feats) == 1 else torch.cat([f[1] for f in feats])
    out.x, out.edge_attr = x.to(device=dev, dtype=dt), e.to(device=dev, dtype=dt)
    return out


def _to_graph_collate(items: list[WeightSpace], K: int, device, dtype) -> Batch:
    """One ``Data`` per network, collated by ``Batch.from_data_list`` (any devices and dtypes)."""
    data = []
    for g, w in enumerate(items):
        lay = layout(w.spec)
        dev = w.device if device is None else torch.device(device)
        dt = w.dtype if dtype is None else dtype
        B = w.batch_size
        x = torch.cat([torch.zeros(B, w.spec.widths[0], device=w.device, dtype=w.dtype), *w.biases], dim=1)
        x = x.to(device=dev, dtype=dt)
        edges, masks = [], []
        for layer, W in zip(w.spec.layers, w.weights):
            k = layer.kernel_numel
            flat = W.reshape(B, layer.out_dim * layer.in_dim, k)
            edges.append(torch.nn.functional.pad(flat, (0, K - k)))
            m = torch.zeros(layer.out_dim * layer.in_dim, K, dtype=torch.bool)
            m[:, :k] = True
            masks.append(m)
        e = torch.cat(edges, dim=1).to(device=dev, dtype=dt)
        mask = torch.cat(masks).to(dev)
        static = dict(
            edge_index=lay.edge_index.to(dev),
            edge_mask=mask,
            layer=lay.layer.to(dev),
            vtype=lay.vtype.to(dev),
            pos=lay.pos.to(dev),
            sym=lay.sym.to(dev),
            edge_layer=lay.edge_layer.to(dev),
        )
        for b in range(B):
            data.append(Data(x=x[b].unsqueeze(-1), edge_attr=e[b], num_nodes=lay.num_vertices,
                             spec=w.spec, group=g, **static))
    return Batch.from_data_list(data)


def _groups(batch: Batch) -> list[tuple[NetworkSpec, int]]:
    """Consecutive runs of graphs with the same ``group`` -> ``[(spec, count), ...]`` (any spec type)."""
    specs, groups = batch.spec, batch.group
    if isinstance(groups, torch.Tensor):
        groups = groups.tolist()
    if not isinstance(specs, (list, tuple)):  # a batch of one graph
        specs = [specs]
    runs: list[list] = []
    for s, g in zip(specs, groups):
        if runs and runs[-1][2] == g and runs[-1][0] == s:
            runs[-1][1] += 1
        else:
            runs.append([s, 1, g])
    return [(s, n) for s, n, _ in runs]


def graph_to_weights(batch: Batch, node_out: torch.Tensor, edge_out: torch.Tensor) -> list[WeightSpace]:
    """Map per-vertex and per-edge values back to biases and weights of every network.

    Args:
        batch: a batch made by :func:`to_graph` (graphs in their original order).
        node_out: ``[V]`` or ``[V, 1]``: the value of vertex ``t`` of layer ``l >= 1`` becomes
            ``b_l[t]`` (input vertices are ignored).
        edge_out: ``[E]`` or ``[E, K']`` with ``K'`` >= every kernel size: edge ``s -> t`` of layer
            ``l`` becomes ``W_l[t, s]`` (its first ``kernel_numel`` entries; padding is dropped).
    Returns:
        one :class:`WeightSpace` per input weight space of :func:`to_graph` (same order and
        batch sizes). Exact inverse: ``from_graph(g, g.x, g.edge_attr)`` returns the inputs.
    """
    if node_out.dim() == 2:
        if node_out.shape[1] != 1:
            raise ValueError(f"node_out must be [V] or [V, 1] (one bias per vertex), got {tuple(node_out.shape)}")
        node_out = node_out[:, 0]
    if edge_out.dim() == 1:
        edge_out = edge_out.unsqueeze(-1)
    if node_out.shape[0] != batch.num_nodes or edge_out.shape[0] != batch.num_edges:
        raise ValueError(
            f"node_out/edge_out have {node_out.shape[0]}/{edge_out.shape[0]} rows but the batch has "
            f"{batch.num_nodes} vertices and {batch.num_edges} edges"
        )
    out, v0, e0 = [], 0, 0
    for spec, B in _groups(batch):
        lay = layout(spec)
        V, E = lay.num_vertices, lay.num_edges
        nodes = node_out[v0 : v0 + B * V].reshape(B, V)
        edges = edge_out[e0 : e0 + B * E].reshape(B, E, edge_out.shape[1])
        weights, biases = [], []
        for l, layer in enumerate(spec.layers, start=1):
            biases.append(nodes[:, lay.offsets[l] : lay.offsets[l + 1]])
            k = layer.kernel_numel
            if edges.shape[2] < k:
                raise ValueError(f"edge_out has {edges.shape[2]} channels, layer {l} needs {k} (its kernel size)")
            w = edges[:, lay.edge_offsets[l - 1] : lay.edge_offsets[l], :k]
            weights.append(w.reshape(B, *layer.weight_shape))
        out.append(WeightSpace(spec, weights, biases))
        v0, e0 = v0 + B * V, e0 + B * E
    if v0 != node_out.shape[0] or e0 != edge_out.shape[0]:
        raise ValueError("the batch's graphs do not match their specs; build batches with to_graph")
    return out


def from_graph(batch: Batch, node_out: torch.Tensor | None = None, edge_out: torch.Tensor | None = None
               ) -> list[WeightSpace]:
    """Inverse of :func:`to_graph` (``node_out``/``edge_out`` default to ``batch.x``/``batch.edge_attr``);
    see :func:`graph_to_weights`."""
    return graph_to_weights(batch, batch.x if node_out is None else node_out,
                            batch.edge_attr if edge_out is None else edge_out)
