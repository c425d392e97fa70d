"""Model merging, part 1: linear interpolation between two networks, loss curves and loss barriers,
all on :class:`~scalegmn_lite.weightspace.weights.WeightSpace`.

Interpolation path between two networks with the same structure::

    theta_alpha = (1 - alpha) theta_0 + alpha theta_1,        alpha in [0, 1]

Loss barrier (issue 6) of a curve ``L(alpha)`` sampled at ``alpha_0 = 0 < ... < alpha_{A-1} = 1``::

    barrier = max_a  L(theta_{alpha_a}) - ((1 - alpha_a) L(theta_0) + alpha_a L(theta_1))      (>= 0)

Aligning the endpoints first (:mod:`~scalegmn_lite.tasks.merging.matching`) is what makes the barrier small.
"""
from __future__ import annotations

from typing import Callable, NamedTuple, Sequence

import torch

from ...weightspace.spec import SpecError
from ...weightspace.weights import WeightSpace

__all__ = [
    "LossCurve",
    "interpolate",
    "loss_curve",
    "loss_barrier",
]


class LossCurve(NamedTuple):
    """``alphas``: ``[A]``; ``losses``: ``[B, A]`` (one curve per pair of networks)."""

    alphas: torch.Tensor
    losses: torch.Tensor


def _alphas(alphas: int | Sequence[float] | torch.Tensor, dtype=torch.float64) -> torch.Tensor:
    if isinstance(alphas, int):
        if alphas < 2:
            raise ValueError(f"need at least 2 interpolation points, got {alphas}")
        return torch.linspace(0.0, 1.0, alphas, dtype=dtype)
    a = torch.as_tensor(alphas, dtype=dtype).flatten()
    if a.numel() == 0:
        raise ValueError("alphas is empty")
    return a


def interpolate(ws0: WeightSpace, ws1: WeightSpace, alphas: int | Sequence[float] | torch.Tensor) -> WeightSpace:
    """All networks on the linear paths between ``ws0[b]`` and ``ws1[b]`` in one batch.

    Args:
        ws0, ws1: ``B`` networks each, same structure.
        alphas: ``A`` values (or an int: that many evenly spaced values in ``[0, 1]``).
    Returns:
        A weight space of ``A * B`` networks in alpha-major order: network ``a * B + b`` is
        ``(1 - alpha_a) ws0[b] + alpha_a ws1[b]``.
    """
    ws0._check_compatible(ws1)
    if ws0.batch_size != ws1.batch_size:
        raise SpecError(f"interpolate needs the same number of networks, got {ws0.batch_size} and {ws1.batch_size}")
    a = _alphas(alphas).to(device=ws0.device, dtype=ws0.dtype)
    A = a.numel()

    def path(t0: torch.Tensor, t1: torch.Tensor) -> torch.Tensor:
        shape = (A,) + (1,) * t0.dim()
        out = t0.unsqueeze(0) + a.view(shape) * (t1 - t0).unsqueeze(0)  # [A, B, ...]
        return out.reshape(A * t0.shape[0], *t0.shape[1:])

    return ws0.map2(ws1, path)


def loss_curve(
    ws0: WeightSpace,
    ws1: WeightSpace,
    loss_fn: Callable[[WeightSpace], torch.Tensor],
    alphas: int | Sequence[float] | torch.Tensor = 21,
    chunk_alphas: int | None = None,
) -> LossCurve:
    """Loss along the linear paths between ``ws0[b]`` and ``ws1[b]``, evaluated batched.

    Args:
        ws0, ws1: ``B`` networks each.
        loss_fn: maps a weight space of ``n`` networks to ``[n]`` losses (e.g.
            ``lambda w: classification_loss(w, x, y)``). It is called on alpha-major batches
            (network ``a * B + b`` belongs to pair ``b``), so per-pair targets can be tiled with
            ``target.repeat(n // B, ...)``.
        alphas: ``A`` values or their number (default 21 evenly spaced in ``[0, 1]``).
        chunk_alphas: evaluate this many alphas per call (default: all ``A`` at once).
    Returns:
        :class:`LossCurve` ``(alphas [A], losses [B, A])``, computed without gradients.
    """
    a = _alphas(alphas)
    A, B = a.numel(), ws0.batch_size
    step = A if chunk_alphas is None else max(1, int(chunk_alphas))
    parts = []
    with torch.no_grad():
        for start in range(0, A, step):
            sub = a[start : start + step]
            out = torch.as_tensor(loss_fn(interpolate(ws0, ws1, sub)))
            if out.shape != (sub.numel() * B,):
                raise ValueError(
                    f"loss_fn must return one loss per network, shape [{sub.numel() * B}], got {tuple(out.shape)}"
                )
            parts.append(out.reshape(sub.numel(), B))
    return LossCurve(a, torch.cat(parts, 0).T.contiguous())


def loss_barrier(curve: LossCurve | tuple | torch.Tensor, alphas: torch.Tensor | None = None) -> torch.Tensor:
    """``[B]``: ``max_a L(alpha_a) - ((1 - alpha_a) L(0) + alpha_a L(1))``.

    Args:
        curve: a :class:`LossCurve` / ``(alphas, losses)`` tuple, or ``losses`` ``[B, A]`` (or ``[A]``)
            with ``alphas`` given separately (default: ``A`` evenly spaced values in ``[0, 1]``).
    The first and last alphas must be 0 and 1 (the endpoints define the linear reference); the barrier
    is therefore ``>= 0`` (it is 0 at the endpoints).
    """
    if isinstance(curve, tuple):
        alphas, losses = curve
    else:
        losses = curve
    losses = torch.as_tensor(losses)
    squeeze = losses.dim() == 1
    if squeeze:
        losses = losses.unsqueeze(0)
    A = losses.shape[1]
    a = _alphas(A if alphas is None else alphas).to(device=losses.device, dtype=losses.dtype)
    if a.numel() != A:
        raise ValueError(f"{a.numel()} alphas for curves with {A} points")
    if abs(float(a[0])) > 1e-9 or abs(float(a[-1]) - 1) > 1e-9:
        raise ValueError(f"alphas must start at 0 and end at 1, got {float(a[0])} .. {float(a[-1])}")
    ref = (1 - a) * losses[:, :1] + a * losses[:, -1:]
    out = (losses - ref).max(1).values
    return out[0] if squeeze else out
