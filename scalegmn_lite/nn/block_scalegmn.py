"""ScaleGMN on block networks: ``model(block_weights)`` builds the graphs of :mod:`.block_graphs`, runs the model's
graph path and maps an equivariant head's outputs back to parameter-shaped updates.

:class:`~scalegmn_lite.nn.scalegmn.ScaleGMN` dispatches here when called with
:class:`~scalegmn_lite.weightspace.block_weights.BlockWeights` (or a list of them), so

    model(bw)          # invariant head: [B, out_dim]; equivariant head: BlockWeights of updates Delta
    model.update(bw)   # theta + s * Delta (equivariant head)

are exactly invariant / equivariant under every :class:`~scalegmn_lite.weightspace.block_gauge.BlockGauge` element
(float64, norms with ``eps = 0``; check with :func:`scalegmn_lite.nn.checks.check_invariance`).
:class:`BlockScaleGMN` runs a model on an ablation of the graph construction (``variant``), e.g. to watch it fail.
"""

from __future__ import annotations

import torch
from torch import nn

from ..weightspace.block_weights import BlockWeights
from .block_graphs import VARIANTS, BlockInput, block_graph_to_weights, block_items, block_layout, to_block_graph

__all__ = ["is_block_input", "scalegmn_on_blocks", "update_blocks", "apply_block_update", "BlockScaleGMN"]


def is_block_input(inp) -> bool:
    """``BlockWeights``, a ``NonSymmetry`` of one, or a non-empty list of them."""
    first = inp[0] if isinstance(inp, (list, tuple)) and inp else inp
    return isinstance(getattr(first, "weights", first), BlockWeights)


def scalegmn_on_blocks(model: nn.Module, inp: BlockInput, variant: str = "exact", eps: float | None = None):
    """``model`` on the block graphs of ``inp`` (:func:`~.block_graphs.to_block_graph` with ``variant`` and
    ``eps``, on the model's device and dtype, edge width ``max_kernel``).

    Returns ``[num_networks, out_dim]`` (invariant head) or updates ``Delta`` (equivariant head): one
    :class:`BlockWeights` for one input, a list for a list."""
    _, single = block_items(inp)
    p = next(model.parameters())
    batch = to_block_graph(inp, kernel_dim=model.config.max_kernel, device=p.device, dtype=p.dtype, variant=variant,
                           eps=eps)
    out = model(batch)
    if model.config.head == "invariant":
        return out
    deltas = block_graph_to_weights(batch, *out)
    return deltas[0] if single else deltas


def apply_block_update(bw: BlockWeights, delta: BlockWeights, scales: torch.Tensor, variant: str = "exact"
                       ) -> BlockWeights:
    """``theta + s * Delta`` per parameter, ``s = scales[l, 0]`` for an edge parameter (weight, gamma) and
    ``scales[l, 1]`` for a vertex one (bias, beta), ``l`` its vertex layer minus one
    (:meth:`~.block_graphs.BlockGraphLayout.step_index`); equivariant whenever ``Delta`` is."""
    bw._check_compatible(delta)
    lay = block_layout(bw.spec, variant)
    s = scales.to(device=bw.device, dtype=bw.dtype)
    return BlockWeights(bw.spec, [t + s[lay.step_index(name)] * d for name, t, d in zip(bw.names, bw.params,
                                                                                       delta.params)])


def update_blocks(model: nn.Module, inp: BlockInput, variant: str = "exact", eps: float | None = None):
    """``theta + s * Delta`` with the equivariant head's ``Delta`` and the model's steps ``update_scales``."""
    items, single = block_items(inp)
    p = next(model.parameters())
    weights = [w.to(device=p.device, dtype=p.dtype) for w, _ in items]
    deltas = scalegmn_on_blocks(model, weights, variant, eps)
    out = [apply_block_update(w, d, model.update_scales, variant) for w, d in zip(weights, deltas)]
    return out[0] if single else out


class BlockScaleGMN(nn.Module):
    """A ScaleGMN run on one graph construction of block networks (``variant`` of
    :data:`~.block_graphs.VARIANTS`; ``"exact"`` is what ``model(bw)`` does). A module, so the checkers of
    :mod:`.checks` copy and cast it like any model.

    Args:
        model: a :class:`~scalegmn_lite.nn.scalegmn.ScaleGMN` (``mode="auto"`` for networks with norms).
        variant: the graph construction; eps: overrides the BatchNorm ``eps`` of the graphs.
    """

    def __init__(self, model: nn.Module, variant: str = "exact", eps: float | None = None) -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"unknown block graph variant {variant!r}; choose from {VARIANTS}")
        self.model, self.variant, self.eps = model, variant, eps

    def forward(self, inp: BlockInput):
        return scalegmn_on_blocks(self.model, inp, self.variant, self.eps)

    def update(self, inp: BlockInput):
        return update_blocks(self.model, inp, self.variant, self.eps)
