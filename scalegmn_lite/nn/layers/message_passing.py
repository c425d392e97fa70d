"""ScaleGMN message passing as torch-geometric ``MessagePassing`` layers.

Notation: edge ``s -> t`` of a network graph carries ``e_st`` (from ``W_l[t, s]``); under a gauge
element ``x_t -> q_t x_t`` (hidden vertex; ``q = 1`` at inputs/outputs) and
``e_st -> (q_t / q_s) e_st``. All residuals are identity maps (bias-free).

Forward message (along ``s -> t``, includes the receiver ``x_t``; sum aggregation)::

    p_st = (Gamma_e e_st) * (Gamma_v x_s)                     # scales like q_t
    z_st = [x_t, p_st]                                        # scales like q_t
    w_st = ScaleInv_t(z_st)                                   # invariant (view of t's group)
    m_st = (Gamma_m z_st) * phi_m(w_st)  = ScaleEq_t(z_st)    # scales like q_t
    M_t  = sum_s m_st

Backward message (along ``t -> s``, bidirectional layers)::

    c_s   = Gamma_b [x_s, M_s]                                # scales like q_s
    mb_ts = c_s * psi_b(w_st)                                 # scales like q_s
    Mb_s  = sum_t mb_ts

*Proof of equivariance*: ``p_st -> (q_t/q_s) q_s p_st = q_t p_st`` since ``Gamma_e, Gamma_v`` are
linear, so ``z_st -> q_t z_st`` and ``w_st`` is unchanged (the view of ``t``'s group is invariant
to ``q_t``); ``c_s`` is linear in ``x_s, M_s``, which both scale by ``q_s``; hence
``mb_ts -> q_s mb_ts``. Permutations only relabel vertices and edges. No reciprocal of a weight
occurs (the published code's ``1/W`` is infinite at zero and padded weights); the magnitude of
``e_st`` relative to ``x_t`` still reaches ``s`` because ``w_st`` normalises ``x_t`` and ``p_st``
*jointly*.

Vertex update and edge update::

    x_t' = x_t + ScaleEq_t([x_t, M_t, (Mb_t)])
    e_st' = e_st + (Gamma_u e_st) * phi_u([w_st, ScaleInv_e(e_st), ScaleInv_s(x_s)])

with ``ScaleInv_e`` the view of the edge's group (``q_t / q_s``: positive if both ends are
positive/fixed, sign if both are sign/fixed, nonzero if mixed).
"""

from __future__ import annotations

import torch
from torch import nn
from torch_geometric.nn import MessagePassing

from .equivariant import ScaleEq
from .invariant import KindGroups, ScaleInv, mlp

__all__ = ["ForwardMessages", "BackwardMessages", "ScaleGMNLayer", "LayerGroups"]


class LayerGroups:
    """View kinds of one batch, computed once: ``vertex`` (per vertex), ``edge`` (per edge),
    ``dst``/``src`` (the receiving/sending vertex of every edge)."""

    def __init__(self, vertex_kinds: torch.Tensor, edge_kinds: torch.Tensor, edge_index: torch.Tensor) -> None:
        self.vertex = KindGroups(vertex_kinds)
        self.edge = KindGroups(edge_kinds)
        self.src = self.vertex.select(edge_index[0])
        self.dst = self.vertex.select(edge_index[1])


class ForwardMessages(MessagePassing):
    """``M_t = sum_s (Gamma_m z_st) * phi_m(w_st)`` (``z_st [E, 2d]`` scales like ``q_t``, ``w_st``
    invariant) -> ``[V, d]``."""

    def __init__(self, d: int) -> None:
        super().__init__(aggr="add")
        self.gamma = nn.Linear(2 * d, d, bias=False)
        self.phi = mlp(2 * d, d)

    def forward(self, edge_index: torch.Tensor, z: torch.Tensor, w: torch.Tensor, num_nodes: int) -> torch.Tensor:
        return self.propagate(edge_index, z=z, w=w, size=(num_nodes, num_nodes))

    def message(self, z: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return self.gamma(z) * self.phi(w)


class BackwardMessages(MessagePassing):
    """``Mb_s = sum_t c_s * psi_b(w_st)`` along reversed edges (``c [V, d]`` scales like ``q_s``)
    -> ``[V, d]``."""

    def __init__(self, d: int) -> None:
        super().__init__(aggr="add")
        self.psi = mlp(2 * d, d)

    def forward(self, edge_index: torch.Tensor, c: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return self.propagate(edge_index.flip(0), c=c, w=w)

    def message(self, c_i: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return c_i * self.psi(w)


class ScaleGMNLayer(nn.Module):
    """One ScaleGMN layer (equations in the module docstring): ``(x [V, d], e [E, d]) -> (x', e')``.

    Equivariant to permutations of hidden vertices and to the per-row scaling groups given by
    ``groups`` (see :class:`LayerGroups`).

    Args:
        d: feature size of vertices and edges.
        bidirectional: add backward messages.
        edge_update: update edge features (else they pass through unchanged).
        sign_view, eps: see :class:`~scalegmn_lite.nn.layers.invariant.ScaleInv`.
    """

    def __init__(self, d: int, bidirectional: bool = False, edge_update: bool = True,
                 sign_view: str = "symmetrize", eps: float = 1e-6) -> None:
        super().__init__()
        self.d, self.bidirectional, self.edge_update = d, bidirectional, edge_update
        self.gamma_e = nn.Linear(d, d, bias=False)
        self.gamma_v = nn.Linear(d, d, bias=False)
        self.inv_msg = ScaleInv(2 * d, sign_view, eps)
        self.fwd = ForwardMessages(d)
        n_in = 3 * d if bidirectional else 2 * d
        if bidirectional:
            self.gamma_b = nn.Linear(2 * d, d, bias=False)
            self.bwd = BackwardMessages(d)
        self.upd = ScaleEq(n_in, d, sign_view, eps)
        if edge_update:
            self.gamma_u = nn.Linear(d, d, bias=False)
            self.inv_e = ScaleInv(d, sign_view, eps)
            self.inv_s = ScaleInv(d, sign_view, eps)
            self.phi_u = mlp(4 * d, d)

    def forward(self, x: torch.Tensor, e: torch.Tensor, edge_index: torch.Tensor,
                groups: LayerGroups) -> tuple[torch.Tensor, torch.Tensor]:
        s, t = edge_index[0], edge_index[1]
        p = self.gamma_e(e) * self.gamma_v(x).index_select(0, s)
        z = torch.cat([x.index_select(0, t), p], dim=-1)
        w = self.inv_msg(z, groups.dst)
        m = self.fwd(edge_index, z, w, x.shape[0])
        parts = [x, m]
        if self.bidirectional:
            c = self.gamma_b(torch.cat([x, m], dim=-1))
            parts.append(self.bwd(edge_index, c, w))
        x_new = x + self.upd(torch.cat(parts, dim=-1), groups.vertex)
        if self.edge_update:
            inv = torch.cat([w, self.inv_e(e, groups.edge), self.inv_s(x.index_select(0, s), groups.src)], dim=-1)
            e = e + self.gamma_u(e) * self.phi_u(inv)
        return x_new, e
