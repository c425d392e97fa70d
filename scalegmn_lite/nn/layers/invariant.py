"""ScaleInv: invariant views of feature vectors whose channels share one scaling ``q``.

A vertex feature ``x in R^d`` of a hidden neuron transforms as ``x -> q x`` (one ``q`` for all ``d``
channels); an edge feature as ``e -> (q_t / q_s) e``. A *view* ``v(x)`` is invariant:
``v(q x) = v(x)`` for every ``q`` of the group. Which group acts is chosen per row (vertex or
edge) by a *view kind*:

==================  =====================  =====================================================
kind                group of ``q``         view
==================  =====================  =====================================================
``VIEW_FREE``       ``q = 1``              ``x`` (plain; the "GMN" baseline uses it everywhere)
``VIEW_POSITIVE``   ``q > 0``              ``x / max(||x||, eps)`` (guarded normalisation)
``VIEW_SIGN``       ``q = +-1``            ``rho(x) + rho(-x)`` (symmetrise) or ``|x|`` (abs)
``VIEW_NONZERO``    ``q != 0``             the sign view of ``x / max(||x||, eps)``
==================  =====================  =====================================================

Guard: ``x / max(||x||, eps)`` equals ``x / ||x||`` (exactly invariant) wherever ``||x|| >= eps``
and ``||q x|| >= eps``; below ``eps`` it is the linear map ``x / eps`` (finite values, gradients
bounded by ``1 / eps``). Note that ``x / ||x||`` is *not* sign invariant and ``|x|`` is *not*
invariant to positive scaling: each row must use the view of its own group.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = [
    "VIEW_FREE",
    "VIEW_POSITIVE",
    "VIEW_SIGN",
    "VIEW_NONZERO",
    "KindGroups",
    "normalize_guarded",
    "mlp",
    "ScaleInv",
]

VIEW_FREE, VIEW_POSITIVE, VIEW_SIGN, VIEW_NONZERO = 0, 1, 2, 3


def normalize_guarded(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """``x / max(||x||, eps)`` over the last axis; invariant to ``x -> q x``, ``q > 0``, while the
    guard is inactive; finite values and gradients everywhere (also at ``x = 0``)."""
    n2 = (x * x).sum(-1, keepdim=True)
    return x * torch.rsqrt(torch.clamp(n2, min=eps * eps))


def mlp(d_in: int, d_out: int, hidden: int | None = None, layernorm: bool = True) -> nn.Sequential:
    """One-hidden-layer SiLU MLP ``Linear -> LayerNorm -> SiLU -> Linear`` (biases allowed: it only
    ever sees invariant inputs)."""
    hidden = hidden or max(d_in, d_out)
    return nn.Sequential(nn.Linear(d_in, hidden), nn.LayerNorm(hidden) if layernorm else nn.Identity(),
                         nn.SiLU(), nn.Linear(hidden, d_out))


class KindGroups:
    """Rows grouped by view kind, computed once per batch and reused by every layer.

    ``single`` is the kind when all rows share it (no indexing needed), else ``None`` and
    ``index[k]`` holds the rows of kind ``k``.
    """

    def __init__(self, kinds: torch.Tensor) -> None:
        self.kinds = kinds
        self.num_rows = kinds.shape[0]
        present = torch.unique(kinds).tolist() if kinds.numel() else [VIEW_FREE]
        self.single: int | None = present[0] if len(present) == 1 else None
        self.index = {} if self.single is not None else {k: torch.nonzero(kinds == k).flatten() for k in present}

    def select(self, rows: torch.Tensor) -> "KindGroups":
        """The groups of ``kinds[rows]`` (e.g. the receiving vertex of every edge)."""
        if self.single is not None:
            g = KindGroups.__new__(KindGroups)
            g.kinds, g.num_rows, g.single, g.index = None, rows.shape[0], self.single, {}
            return g
        return KindGroups(self.kinds[rows])


class ScaleInv(nn.Module):
    """Invariant view per row: ``[N, dim] -> [N, dim]`` (see the module docstring for the table).

    Args:
        dim: feature size.
        sign_view: ``"symmetrize"`` (``rho(x) + rho(-x)``, ``rho`` an MLP; expressive) or ``"abs"``.
        eps: norm guard of the positive-scale view.
    """

    def __init__(self, dim: int, sign_view: str = "symmetrize", eps: float = 1e-6) -> None:
        super().__init__()
        if sign_view not in ("symmetrize", "abs"):
            raise ValueError(f"sign_view must be 'symmetrize' or 'abs', got {sign_view!r}")
        self.dim, self.sign_view, self.eps = dim, sign_view, eps
        self.rho = mlp(dim, dim) if sign_view == "symmetrize" else None

    def _sign(self, x: torch.Tensor) -> torch.Tensor:
        if self.rho is None:
            return x.abs()
        return self.rho(x) + self.rho(-x)

    def view(self, x: torch.Tensor, kind: int) -> torch.Tensor:
        """The view of kind ``kind`` for all rows of ``x``."""
        if kind == VIEW_FREE:
            return x
        if kind == VIEW_POSITIVE:
            return normalize_guarded(x, self.eps)
        if kind == VIEW_SIGN:
            return self._sign(x)
        if kind == VIEW_NONZERO:
            return self._sign(normalize_guarded(x, self.eps))
        raise ValueError(f"unknown view kind {kind}")

    def forward(self, x: torch.Tensor, groups: KindGroups | int) -> torch.Tensor:
        if isinstance(groups, int):
            return self.view(x, groups)
        if groups.single is not None:
            return self.view(x, groups.single)
        out = x.new_zeros(x.shape[0], self.dim)
        for kind, idx in groups.index.items():
            out = out.index_copy(0, idx, self.view(x.index_select(0, idx), kind))
        return out
