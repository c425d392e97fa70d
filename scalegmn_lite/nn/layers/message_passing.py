"""ScaleGMN message passing, on a graph batch or densely per network layer.

Notation: edge ``s -> t`` of a network graph carries ``e_st`` (from ``W_l[t, s]``); under a gauge
element ``x_t -> q_t x_t`` (hidden vertex; ``q = 1`` at inputs/outputs) and
``e_st -> (q_t / q_s) e_st``. Residuals are identity maps (bias-free). Per edge (one hidden layer
``h`` of width ``edge_hidden``)::

    p_st = (Gamma_e e_st) * (Gamma_v x_s)                          # scales like q_t
    h_st = SiLU(LN(view_t(W_a x_t + W_b p_st; ||[x_t, p_st]||)     # joint view of t's group
                   + view_e(W_c e_st) + view_s(W_d x_s) + b))      # invariant
    [g_m, g_u, g_b] = L_out h_st                                    # invariant gains
    M_t   = sum_s p_st * g_m,st                                     # scales like q_t
    Mb_s  = (Gamma_b [x_s, M_s]) * sum_t g_b,st                     # bidirectional; like q_s
    x_t'  = x_t + ScaleEq_t([x_t, M_t, (Mb_t)])
    e_st' = e_st + (Gamma_u e_st) * g_u,st                          # edge updates

(``view`` as in :mod:`.invariant`: the row's invariant factor times a shared projection, then
symmetrised for sign groups.) *Equivariance*: ``p_st -> (q_t/q_s) q_s p_st = q_t p_st`` since
``Gamma_e, Gamma_v`` are linear; ``[x_t, p_st]`` scales jointly by ``q_t`` so its view is invariant,
as are the views of ``e_st`` and ``x_s``; every gain is invariant, hence ``M_t, Mb_s, e_st'`` scale
like ``q_t, q_s, q_t/q_s``. Permutations only relabel. *Pooled vertices* (the inputs of a LayerNorm in a block
graph, one common ``c`` per pool; :class:`~.invariant.Kinds`) receive and update like any vertex (``x_t -> c x_t``)
but send ``Gamma_v x_s / ||x_pool||``, which scales by ``sign(c)``: their outgoing edges (``gamma`` of the norm)
transform as ``q_t sign(c)``, so ``p_st`` still scales like ``q_t``. No reciprocal of a weight occurs (the
published code's ``1/W`` is infinite at zero and padded weights); the magnitude of ``e_st``
relative to ``x_t`` still reaches ``s`` through the joint view. Costs per edge: ``Gamma_v x``,
``W_a x``, ``W_d x`` are computed per vertex and broadcast; per edge there are the projections of
``e`` and ``p`` and ``L_out`` (6-7 ``d x d`` products with ``edge_hidden = d``).

Two topologies run the same equations (:class:`GraphTopology`: gather/scatter over ``edge_index``,
any batch; :class:`DenseTopology`: a batch of ``B`` networks of one spec, edges of layer ``l`` as a
``[B, n_l, n_{l-1}, d]`` tensor, per-vertex terms broadcast and sums along an axis).
"""

from __future__ import annotations

import weakref
from typing import Sequence

import torch
from torch import nn
from torch_geometric.utils import scatter

from .equivariant import ScaleEq
from .invariant import (
    SIGN_VIEWS,
    VIEW_FREE,
    VIEW_NONZERO,
    VIEW_POSITIVE,
    VIEW_SIGN,
    Kinds,
    safe_norm,
    symmetrize,
    view_scale,
)

__all__ = ["EdgeBlock", "GraphTopology", "DenseTopology", "ScaleGMNLayer", "edge_kind"]


def edge_kind(src: int, dst: int) -> int:
    """View kind of an edge (group of ``q_t / q_s``) from its endpoints' kinds (ints)."""
    pos = VIEW_POSITIVE in (src, dst) or VIEW_NONZERO in (src, dst)
    sign = VIEW_SIGN in (src, dst) or VIEW_NONZERO in (src, dst)
    return VIEW_NONZERO if pos and sign else VIEW_POSITIVE if pos else VIEW_SIGN if sign else VIEW_FREE


class EdgeBlock:
    """A set of edges with the maps between per-vertex tensors ``[N, k]`` and per-edge ones.

    ``src(v)``/``dst(v)``: the sender's/receiver's row of ``v`` for every edge (gathered, or a view
    that broadcasts against the block's edge tensors); ``sum_dst(m)``/``sum_src(m)``: sums of
    per-edge values per receiver/sender; ``kinds_src/dst/edge``: view kinds (:class:`Kinds`).
    """

    kinds_src: Kinds
    kinds_dst: Kinds
    kinds_edge: Kinds

    def src(self, v: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def dst(self, v: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def sum_dst(self, m: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def sum_src(self, m: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class _GraphBlock(EdgeBlock):
    def __init__(self, edge_index: torch.Tensor, num_nodes: int, vertex: Kinds, edge: Kinds) -> None:
        self.s, self.t, self.n = edge_index[0], edge_index[1], num_nodes
        self.kinds_src, self.kinds_dst, self.kinds_edge = vertex.select(self.s), vertex.select(self.t), edge

    def src(self, v):
        return v.index_select(0, self.s)

    def dst(self, v):
        return v.index_select(0, self.t)

    def sum_dst(self, m):
        return scatter(m, self.t, 0, dim_size=self.n, reduce="sum")

    def sum_src(self, m):
        return scatter(m, self.s, 0, dim_size=self.n, reduce="sum")


class GraphTopology:
    """Any batch of graphs: one block of all ``E`` edges (``[E, k]`` tensors), gather/scatter.

    Args:
        vertex_kinds: ``[V]`` view kind per vertex; edge_kinds: ``[E]``; edge_index: ``[2, E]``.
        pool: optional ``[V]`` pool ids (``-1``: none) of vertices sharing one scaling (:class:`Kinds`).
    """

    def __init__(self, vertex_kinds: torch.Tensor, edge_kinds: torch.Tensor, edge_index: torch.Tensor,
                 pool: torch.Tensor | None = None) -> None:
        self.vertex = Kinds(vertex_kinds, pool)
        self.edge = Kinds(edge_kinds)
        self.blocks = [_GraphBlock(edge_index, vertex_kinds.shape[0], self.vertex, self.edge)]

    def split_edges(self, e: torch.Tensor) -> list[torch.Tensor]:
        return [e]

    def join_edges(self, blocks: Sequence[torch.Tensor]) -> torch.Tensor:
        return blocks[0]

    def collect_dst(self, sums: Sequence[torch.Tensor]) -> torch.Tensor:
        return sums[0]

    collect_src = collect_dst


class _DenseBlock(EdgeBlock):
    def __init__(self, topo: "DenseTopology", l: int, ks: int, kt: int) -> None:
        # a weak reference: a cycle topology <-> block would keep the topology's memo of per-vertex
        # tensors, and through their grad_fn a whole step's activations, alive until the cyclic GC ran
        self.topo, self.l = weakref.proxy(topo), l
        self.kinds_src, self.kinds_dst, self.kinds_edge = Kinds(ks), Kinds(kt), Kinds(edge_kind(ks, kt))

    def _layer(self, v: torch.Tensor, l: int) -> torch.Tensor:
        return self.topo.layers_of(v)[l]

    def src(self, v):
        return self._layer(v, self.l - 1).unsqueeze(1)  # [B, 1, n_{l-1}, k]

    def dst(self, v):
        return self._layer(v, self.l).unsqueeze(2)  # [B, n_l, 1, k]

    def sum_dst(self, m):
        return m.sum(2)  # [B, n_l, k]

    def sum_src(self, m):
        return m.sum(1)  # [B, n_{l-1}, k]


class DenseTopology:
    """``B`` networks of one architecture with widths ``n_0..n_L``; vertices flat ``[B * V, k]``
    (graph-major, layer by layer, as in a graph batch), edges of layer ``l`` as
    ``[B, n_l, n_{l-1}, k]`` (row ``t``, column ``s``: the graph's ``t``-major order).

    Args:
        batch_size: ``B``; widths: ``n_0..n_L``; layer_kinds: view kind of each vertex layer.
        vertex_kinds: ``[B * V]`` view kind per vertex (for the per-vertex maps).
    """

    def __init__(self, batch_size: int, widths: Sequence[int], layer_kinds: Sequence[int],
                 vertex_kinds: torch.Tensor) -> None:
        self.B, self.widths = batch_size, list(widths)
        self.offsets = [0]
        for n in self.widths:
            self.offsets.append(self.offsets[-1] + n)
        self.vertex = Kinds(vertex_kinds)
        self.blocks = [_DenseBlock(self, l, layer_kinds[l - 1], layer_kinds[l]) for l in range(1, len(widths))]
        self._split: dict[int, tuple[torch.Tensor, tuple[torch.Tensor, ...]]] = {}

    def layers_of(self, v: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """A per-vertex tensor ``[B * V, k]`` as one ``[B, n_l, k]`` view per vertex layer, split once
        per tensor and reused by every block that reads it (one ``split`` node in the autograd graph
        instead of a slice, and a zero-filled ``slice_backward``, per block and side)."""
        if torch.compiler.is_compiling():  # traced: no memo (object ids break the graph; the compiler dedupes)
            return v.view(self.B, -1, v.shape[-1]).split(self.widths, 1)
        hit = self._split.get(id(v))
        if hit is not None and hit[0] is v:
            return hit[1]
        parts = v.view(self.B, -1, v.shape[-1]).split(self.widths, 1)
        self._split[id(v)] = (v, parts)  # keeps v alive, so its id is not reused while memoised
        return parts

    def split_edges(self, e: torch.Tensor) -> list[torch.Tensor]:
        """Flat ``[B * E, k]`` (graph order) -> one ``[B, n_l, n_{l-1}, k]`` view per layer."""
        flat = e.view(self.B, -1, e.shape[-1])
        out, start = [], 0
        for n_in, n_out in zip(self.widths[:-1], self.widths[1:]):
            out.append(flat[:, start:start + n_out * n_in].reshape(self.B, n_out, n_in, e.shape[-1]))
            start += n_out * n_in
        return out

    def join_edges(self, blocks: Sequence[torch.Tensor]) -> torch.Tensor:
        """Inverse of :meth:`split_edges`."""
        return torch.cat([b.reshape(self.B, -1, b.shape[-1]) for b in blocks], 1).reshape(-1, blocks[0].shape[-1])

    def collect_dst(self, sums: Sequence[torch.Tensor]) -> torch.Tensor:
        """Per-receiver sums of each layer ``[B, n_l, k]`` -> flat ``[B * V, k]`` (inputs get 0)."""
        first = sums[0].new_zeros(self.B, self.widths[0], sums[0].shape[-1])
        return torch.cat([first, *sums], 1).reshape(-1, sums[0].shape[-1])

    def collect_src(self, sums: Sequence[torch.Tensor]) -> torch.Tensor:
        """Per-sender sums ``[B, n_{l-1}, k]`` -> flat ``[B * V, k]`` (outputs get 0)."""
        last = sums[0].new_zeros(self.B, self.widths[-1], sums[0].shape[-1])
        return torch.cat([*sums, last], 1).reshape(-1, sums[0].shape[-1])


class ScaleGMNLayer(nn.Module):
    """One ScaleGMN layer (equations in the module docstring): ``(x [V, d], edges) -> (x', edges')``
    with ``edges`` one tensor per block of ``topo`` (:meth:`GraphTopology.split_edges`).

    Equivariant to permutations of hidden vertices and to each row's scaling group (its view kind).

    Args:
        d: feature size of vertices and edges.
        bidirectional: add backward messages.
        edge_update: update edge features (else they pass through unchanged).
        sign_view, eps: see :mod:`.invariant`.
        edge_hidden: hidden width of the per-edge MLP (default ``d``).
        node_hidden: hidden width of the vertex update's MLP (default ``d``).
    """

    def __init__(self, d: int, bidirectional: bool = False, edge_update: bool = True,
                 sign_view: str = "symmetrize", eps: float = 1e-6, edge_hidden: int | None = None,
                 node_hidden: int | None = None) -> None:
        super().__init__()
        if sign_view not in SIGN_VIEWS:
            raise ValueError(f"sign_view must be one of {SIGN_VIEWS}, got {sign_view!r}")
        h = edge_hidden or d
        self.d, self.h, self.bidirectional, self.edge_update = d, h, bidirectional, edge_update
        self.sign_view, self.eps = sign_view, eps
        self.vertex_proj = nn.Linear(d, d + 2 * h, bias=False)  # Gamma_v | W_a | W_d
        self.edge_proj = nn.Linear(d, d + h + (d if edge_update else 0), bias=False)  # Gamma_e | W_c | Gamma_u
        self.w_b = nn.Linear(d, h, bias=False)
        self.bias = nn.Parameter(torch.zeros(h))
        self.norm = nn.LayerNorm(h)
        self.gains = (1 + int(edge_update) + int(bidirectional)) * d
        self.out = nn.Linear(h, self.gains)
        if bidirectional:
            self.gamma_b = nn.Linear(2 * d, d, bias=False)
        self.upd = ScaleEq((3 if bidirectional else 2) * d, d, sign_view, eps, hidden=node_hidden or d)

    def _view(self, u: torch.Tensor, n: torch.Tensor, kinds: Kinds) -> torch.Tensor:
        return symmetrize(u * view_scale(n, kinds, self.eps), kinds, self.sign_view)

    def forward(self, x: torch.Tensor, edges: Sequence[torch.Tensor], topo: GraphTopology | DenseTopology
                ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        d, h = self.d, self.h
        gv, ax, dx = self.vertex_proj(x).split([d, h, h], -1)
        n_x = safe_norm(x)
        if topo.vertex.pool is not None:  # pooled senders (LayerNorm inputs) send Gamma_v x_s / ||x_pool||
            gv = torch.where(topo.vertex.pooled, gv / topo.vertex.pooled_norm(n_x).clamp(min=self.eps), gv)
        fs = self._view(dx, n_x, topo.vertex)  # view of the sender, per vertex
        m_sums, b_sums, new_edges = [], [], []
        for blk, e in zip(topo.blocks, edges):
            ge, ce, ue = self.edge_proj(e).split([d, h, d if self.edge_update else 0], -1)
            p = ge * blk.src(gv)
            n_z = torch.hypot(blk.dst(n_x), safe_norm(p))  # ||[x_t, p_st]||
            f_t = self._view(blk.dst(ax) + self.w_b(p), n_z, blk.kinds_dst)
            f_e = self._view(ce, safe_norm(e), blk.kinds_edge)
            hid = nn.functional.silu(self.norm(f_t + f_e + blk.src(fs) + self.bias))
            g_m, g_u, g_b = self.out(hid).split([d, d if self.edge_update else 0, d if self.bidirectional else 0], -1)
            m_sums.append(blk.sum_dst(p * g_m))
            if self.bidirectional:
                b_sums.append(blk.sum_src(g_b))
            if self.edge_update:
                e = e + ue * g_u
            new_edges.append(e)
        m = topo.collect_dst(m_sums)
        parts = [x, m]
        if self.bidirectional:
            parts.append(self.gamma_b(torch.cat([x, m], -1)) * topo.collect_src(b_sums))
        x_new = x + self.upd(torch.cat(parts, -1), topo.vertex)
        return x_new, new_edges
