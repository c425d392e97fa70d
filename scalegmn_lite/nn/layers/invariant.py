"""Invariant views of feature vectors whose channels share one scaling ``q``, and the invariant MLP.

A vertex feature ``x in R^d`` of a hidden neuron transforms as ``x -> q x`` (one ``q`` for all ``d``
channels); an edge feature as ``e -> (q_t / q_s) e``. Which group acts is chosen per row (vertex or
edge) by a *view kind*; a view ``v`` is invariant, ``v(q x) = v(x)``:

==================  =====================  ==========================================================
kind                group of ``q``         view of ``z`` (``n = ||z||``; ``W`` a learned projection)
==================  =====================  ==========================================================
``VIEW_FREE``       ``q = 1``              ``W z * log1p(n) / n``    (log-compressed magnitude)
``VIEW_POSITIVE``   ``q > 0``              ``W z / max(n, eps)``     (guarded normalisation)
``VIEW_SIGN``       ``q = +-1``            ``rho(u) + rho(-u)``, ``u = W z * log1p(n) / n``
``VIEW_NONZERO``    ``q != 0``             ``rho(u) + rho(-u)``, ``u = W z / max(n, eps)``
==================  =====================  ==========================================================

``rho`` is SiLU (``sign_view="symmetrize"``: ``rho(u) + rho(-u) = u tanh(u / 2)``, smooth and even)
or ``|u|`` (``"abs"``). Every kind shares the same parameters (``W`` and the MLP after it), so a
model carries no parameter that only some kinds would train. The row scale factor (``1/n`` or
``log1p(n)/n``) is invariant under the row's group, so it commutes with ``W``: the projection may be
computed before scaling (per vertex, then broadcast to edges), which the layers exploit.

*Pooled rows* (block networks, :mod:`scalegmn_lite.nn.block_graphs`): the inputs of a LayerNorm share one
scalar ``c != 0`` (not one per neuron). Rows given a pool id (``Kinds(kinds, pool)``) take ``n`` as the norm over
every row of their pool (``||(z_r)_r in pool||``, scaling by ``|c|`` only) and are symmetrised jointly,
``rho(u + ubar) + rho(-u - ubar)`` with ``ubar`` the pool's mean of ``u`` (even under the common sign, not under
one row's). Their views are thus invariant to the common ``c`` and *not* to a per-row scaling, which is no symmetry.
``pool=None`` (every chain graph) leaves every view as in the table.

Guard: ``z / max(n, eps)`` equals ``z / n`` (exactly invariant) wherever ``n >= eps``; below it is
the linear map ``z / eps`` (finite values and gradients). Norms are computed with the max-abs factor
pulled out (:func:`safe_norm`), so views are finite for every finite input, also where ``n^2``
overflows (float32 features beyond ``1e19``). Note that ``z / ||z||`` is *not* sign invariant and
an even function is *not* invariant to positive scaling: each row must use the view of its group.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch_geometric.utils import scatter

__all__ = [
    "VIEW_FREE",
    "VIEW_POSITIVE",
    "VIEW_SIGN",
    "VIEW_NONZERO",
    "SIGN_VIEWS",
    "Kinds",
    "KindGroups",
    "safe_norm",
    "normalize_guarded",
    "view_scale",
    "symmetrize",
    "mlp",
    "ScaleInv",
    "InvariantMLP",
]

VIEW_FREE, VIEW_POSITIVE, VIEW_SIGN, VIEW_NONZERO = 0, 1, 2, 3
SIGN_VIEWS = ("symmetrize", "abs")


def safe_norm(x: torch.Tensor) -> torch.Tensor:
    """``||x||`` over the last axis, ``[..., 1]``; finite for every finite ``x`` and with finite
    gradients everywhere.

    Computed as ``a * ||x / a||`` with ``a = max |x_i|`` (treated as a constant: the product does
    not depend on it), so ``||x||^2`` is never formed. At ``x = 0`` it returns ``sqrt(tiny)`` (the
    dtype's smallest normal number) instead of ``0`` (gradient ``0``, no division by zero).
    """
    a = x.detach().abs().amax(-1, keepdim=True)
    a = torch.where(a > 0, a, torch.ones_like(a))
    y = x / a
    s = (y * y).sum(-1, keepdim=True)
    return a * torch.sqrt(s.clamp(min=torch.finfo(x.dtype).tiny))


def normalize_guarded(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """``x / max(||x||, eps)`` over the last axis; invariant to ``x -> q x``, ``q > 0``, while the
    guard is inactive; finite values and gradients for every finite ``x`` (also at ``0``)."""
    return x / safe_norm(x).clamp(min=eps)


class Kinds:
    """View kind of every row (an ``int`` for all rows, or a ``[N]`` long tensor), computed once
    per batch and reused by every layer.

    ``single`` is the kind when all rows share it (no masks needed), else ``None`` and the ``[N, 1]``
    bool masks ``scaled`` (positive or nonzero kind) and ``signed`` (sign or nonzero kind) select
    each row's view.

    ``pool`` (optional ``[N]`` long, ``-1`` for ordinary rows): rows with the same id ``>= 0`` share one
    scaling (a LayerNorm's inputs; see the module docstring); ``None`` when no row is pooled.
    """

    def __init__(self, kinds: torch.Tensor | int, pool: torch.Tensor | None = None) -> None:
        self.scaled = self.signed = None
        self.pool = self.pooled = None
        if pool is not None and bool((pool >= 0).any()):
            self.pool, self.pooled = pool, (pool >= 0).unsqueeze(-1)
            self._size = int(pool.max()) + 2  # the last slot collects the unpooled rows
            self._slot = torch.where(pool >= 0, pool, torch.full_like(pool, self._size - 1))
        if isinstance(kinds, int):
            self.kinds, self.single = None, kinds
            return
        self.kinds = kinds
        present = torch.unique(kinds).tolist() if kinds.numel() else [VIEW_FREE]
        self.single = int(present[0]) if len(present) == 1 else None
        if self.single is None:
            self.scaled = ((kinds == VIEW_POSITIVE) | (kinds == VIEW_NONZERO)).unsqueeze(-1)
            self.signed = ((kinds == VIEW_SIGN) | (kinds == VIEW_NONZERO)).unsqueeze(-1)

    def select(self, rows: torch.Tensor) -> "Kinds":
        """The kinds (and pool ids) of ``rows`` (e.g. the receiving vertex of every edge)."""
        pool = None if self.pool is None else self.pool[rows]
        if self.single is not None:
            return Kinds(self.single, pool)
        return Kinds(self.kinds[rows], pool)

    def pooled_norm(self, n: torch.Tensor) -> torch.Tensor:
        """``n [N, 1]`` with every pooled row's entry replaced by ``sqrt(sum n^2)`` over its pool (the max-abs
        factor pulled out, as in :func:`safe_norm`)."""
        a = scatter(n.detach(), self._slot, 0, dim_size=self._size, reduce="max")
        a = torch.where(a > 0, a, torch.ones_like(a))[self._slot]
        total = scatter((n / a) ** 2, self._slot, 0, dim_size=self._size, reduce="sum")[self._slot]
        return torch.where(self.pooled, a * torch.sqrt(total), n)

    def pool_mean(self, u: torch.Tensor) -> torch.Tensor:
        """``u [N, k]`` plus, on pooled rows, the mean of ``u`` over the row's pool (odd under the pool's common
        sign, so :func:`symmetrize` of it is invariant to that sign only)."""
        mean = scatter(u, self._slot, 0, dim_size=self._size, reduce="mean")[self._slot]
        return torch.where(self.pooled, u + mean, u)


#: former name of :class:`Kinds`
KindGroups = Kinds


def _as_kinds(kinds: "Kinds | int") -> Kinds:
    return kinds if isinstance(kinds, Kinds) else Kinds(int(kinds))


def view_scale(n: torch.Tensor, kinds: Kinds | int, eps: float) -> torch.Tensor:
    """Invariant per-row factor: ``1 / max(n, eps)`` for scaled kinds, ``log1p(n) / n`` otherwise
    (``n`` from :func:`safe_norm`, never ``0``)."""
    kinds = _as_kinds(kinds)
    if kinds.pool is not None:
        n = kinds.pooled_norm(n)
    if kinds.single is not None:
        if kinds.single in (VIEW_POSITIVE, VIEW_NONZERO):
            return 1.0 / n.clamp(min=eps)
        return torch.log1p(n) / n
    return torch.where(kinds.scaled, 1.0 / n.clamp(min=eps), torch.log1p(n) / n)


def _even(u: torch.Tensor, sign_view: str) -> torch.Tensor:
    return u * torch.tanh(0.5 * u) if sign_view == "symmetrize" else u.abs()


def symmetrize(u: torch.Tensor, kinds: Kinds | int, sign_view: str = "symmetrize") -> torch.Tensor:
    """``rho(u) + rho(-u)`` (even in ``u``) on rows of a signed kind, ``u`` elsewhere (pooled rows: of
    ``u`` plus their pool's mean)."""
    kinds = _as_kinds(kinds)
    if kinds.pool is not None:
        u = kinds.pool_mean(u)
    if kinds.single is not None:
        return _even(u, sign_view) if kinds.single in (VIEW_SIGN, VIEW_NONZERO) else u
    return torch.where(kinds.signed, _even(u, sign_view), u)


def mlp(d_in: int, d_out: int, hidden: int | None = None, layernorm: bool = True) -> nn.Sequential:
    """One-hidden-layer SiLU MLP ``Linear -> LayerNorm -> SiLU -> Linear`` (biases allowed: it only
    ever sees invariant inputs). ``hidden`` defaults to ``max(d_in, d_out)``."""
    hidden = hidden or max(d_in, d_out)
    return nn.Sequential(nn.Linear(d_in, hidden), nn.LayerNorm(hidden) if layernorm else nn.Identity(),
                         nn.SiLU(), nn.Linear(hidden, d_out))


class ScaleInv(nn.Module):
    """Parameter-free invariant view per row, ``[N, dim] -> [N, dim]`` (the table of the module
    docstring with ``W`` the identity).

    Args:
        dim: feature size.
        sign_view: ``"symmetrize"`` (``rho(x) + rho(-x)``, ``rho = SiLU``) or ``"abs"``.
        eps: norm guard of the positive-scale view.
    """

    def __init__(self, dim: int, sign_view: str = "symmetrize", eps: float = 1e-6) -> None:
        super().__init__()
        if sign_view not in SIGN_VIEWS:
            raise ValueError(f"sign_view must be one of {SIGN_VIEWS}, got {sign_view!r}")
        self.dim, self.sign_view, self.eps = dim, sign_view, eps

    def forward(self, x: torch.Tensor, kinds: Kinds | int) -> torch.Tensor:
        if isinstance(kinds, int) and kinds not in (VIEW_FREE, VIEW_POSITIVE, VIEW_SIGN, VIEW_NONZERO):
            raise ValueError(f"unknown view kind {kinds}")
        return symmetrize(x * view_scale(safe_norm(x), kinds, self.eps), kinds, self.sign_view)


class InvariantMLP(nn.Module):
    """``phi(z_1, ..., z_k) = L_out(SiLU(LN(sum_i view_i(z_i) + b)))``, invariant to each piece's group.

    Each piece ``z_i [..., in_dims[i]]`` has its own projection ``W_i`` (``view_i`` as in the
    module docstring, with the kind of that piece's rows). Pieces may have different row shapes
    that broadcast (per-vertex pieces against per-edge ones); :meth:`piece` and :meth:`head` let a
    caller compute per-vertex pieces once and broadcast them.

    Args:
        in_dims: feature size of each piece.
        d_out: output size.
        hidden: hidden size (default ``max(in_dims + [d_out])``).
        sign_view, eps: see the module docstring.
    """

    def __init__(self, in_dims: Sequence[int], d_out: int, hidden: int | None = None,
                 sign_view: str = "symmetrize", eps: float = 1e-6) -> None:
        super().__init__()
        if sign_view not in SIGN_VIEWS:
            raise ValueError(f"sign_view must be one of {SIGN_VIEWS}, got {sign_view!r}")
        h = hidden or max(*in_dims, d_out)
        self.sign_view, self.eps, self.hidden = sign_view, eps, h
        self.proj = nn.ModuleList(nn.Linear(d, h, bias=False) for d in in_dims)
        self.bias = nn.Parameter(torch.zeros(h))
        self.norm = nn.LayerNorm(h)
        self.out = nn.Linear(h, d_out)

    def features(self, u: torch.Tensor, n: torch.Tensor, kinds: Kinds | int) -> torch.Tensor:
        """View of a piece from its projection ``u = W z`` and norm ``n = ||z||``."""
        return symmetrize(u * view_scale(n, kinds, self.eps), kinds, self.sign_view)

    def piece(self, i: int, z: torch.Tensor, kinds: Kinds | int) -> torch.Tensor:
        """``view_i(z)``: ``[..., hidden]``."""
        return self.features(self.proj[i](z), safe_norm(z), kinds)

    def head(self, total: torch.Tensor) -> torch.Tensor:
        """``L_out(SiLU(LN(total + b)))`` for ``total`` the sum of the pieces' views."""
        return self.out(nn.functional.silu(self.norm(total + self.bias)))

    def forward(self, *pieces: tuple[torch.Tensor, Kinds | int]) -> torch.Tensor:
        total = self.piece(0, *pieces[0])
        for i, (z, kinds) in enumerate(pieces[1:], start=1):
            total = total + self.piece(i, z, kinds)
        return self.head(total)
