"""ScaleEq: scale-equivariant maps of feature vectors whose channels share one scaling ``q``.

    ``ScaleEq(z) = (Gamma z) * phi(ScaleInv(z))``        ``[N, d_in] -> [N, d_out]``

``Gamma`` is a bias-free linear map (so ``Gamma(q z) = q Gamma z``) and ``phi`` an
:class:`~.invariant.InvariantMLP` of the row's invariant view, hence ``ScaleEq(q z) = q ScaleEq(z)`` for
every ``q`` of the row's group (positive
scalings, sign flips, or none; see :mod:`.invariant`). Linear maps alone cannot do more: a linear
map commuting with every positive diagonal scaling is diagonal (notebook 05 solves it in sympy),
so the nonlinearity has to enter through an invariant factor.
"""

from __future__ import annotations

import torch
from torch import nn

from .invariant import InvariantMLP, Kinds

__all__ = ["ScaleEq"]


class ScaleEq(nn.Module):
    """``(Gamma z) * phi(view(z))`` per row; ``kinds`` selects each row's view kind.

    Args:
        d_in, d_out: feature sizes.
        sign_view, eps: passed to :class:`~.invariant.InvariantMLP`.
        hidden: hidden size of ``phi`` (default ``max(d_in, d_out)``).

    Shapes: ``z [N, d_in] -> [N, d_out]``; ``kinds`` an ``int`` (all rows) or :class:`Kinds`.
    """

    def __init__(self, d_in: int, d_out: int, sign_view: str = "symmetrize", eps: float = 1e-6,
                 hidden: int | None = None) -> None:
        super().__init__()
        self.gamma = nn.Linear(d_in, d_out, bias=False)
        self.phi = InvariantMLP([d_in], d_out, hidden, sign_view, eps)

    def forward(self, z: torch.Tensor, kinds: Kinds | int) -> torch.Tensor:
        return self.gamma(z) * self.phi((z, kinds))
