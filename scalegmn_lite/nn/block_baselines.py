"""Baselines for block networks (residual blocks, BatchNorm, LayerNorm;
:class:`~scalegmn_lite.weightspace.BlockWeights`), the counterparts of :mod:`.baselines` and of the GMN baseline of
:mod:`scalegmn_lite.tasks.invariant.study`.

* :class:`BlockStatNN`: per parameter tensor (every ``weight``, ``bias``, ``gamma``, ``beta``, ``running_mean``,
  ``running_var``), mean, variance and the 0/25/50/75/100 % quantiles, standardised, into an MLP. Invariant to
  permutations (statistics do not see the order), not to scalings.
* :class:`BlockFlatMLP`: an MLP on the standardised flat parameter vector (:meth:`BlockWeights.flatten`). Invariant
  to nothing.
* :class:`BlockGMN`: ScaleGMN in ``mode="permutation"`` (plain views, per-layer RMS input normalisation, as the chain
  GMN baseline) on the exact block graphs of :mod:`.block_graphs`, plus a learned embedding of each edge's type
  (weight, identity shortcut, constant branch sum, norm edge) added to its features: the "graph metanetwork" treatment
  of residual and norm edges (Lim et al. 2024). Permutation equivariant, not scale equivariant.

:func:`block_gauge_augment` is :func:`.baselines.gauge_augment` for block networks (a random element of the whole
block gauge group, :meth:`~scalegmn_lite.weightspace.BlockGauge.sample`).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from ..weightspace.block_gauge import BlockGauge
from ..weightspace.block_weights import BlockWeights
from ..weightspace.blocks import BlockNetworkSpec
from .baselines import _QUANTILES, mlp
from .block_graphs import EDGE_NORM, EDGE_SHORTCUT, EDGE_SUM, EDGE_WEIGHT
from .scalegmn import ScaleGMN, ScaleGMNConfig

__all__ = ["BlockStatNN", "BlockFlatMLP", "BlockGMN", "parameter_statistics", "block_gauge_augment",
           "as_block_batch", "NUM_EDGE_TYPES"]

#: edge types of the block graphs (:data:`~.block_graphs.EDGE_WEIGHT` ... :data:`~.block_graphs.EDGE_NORM`)
NUM_EDGE_TYPES = max(EDGE_WEIGHT, EDGE_SHORTCUT, EDGE_SUM, EDGE_NORM) + 1


def as_block_batch(inp: BlockWeights | Sequence[BlockWeights], what: str = "input") -> BlockWeights:
    """``inp`` as one :class:`BlockWeights`: itself, or a list of same-spec ones stacked; anything else (a chain
    ``WeightSpace``, a list mixing specs, an empty list) raises ``TypeError``/``ValueError`` saying why."""
    if isinstance(inp, BlockWeights):
        return inp
    if isinstance(inp, (list, tuple)):
        if not inp:
            raise ValueError(f"{what}: got an empty list of networks")
        if not all(isinstance(x, BlockWeights) for x in inp):
            kinds = sorted({type(x).__name__ for x in inp})
            raise TypeError(f"{what}: expected BlockWeights (or a list of them), got a list of {kinds}")
        specs = list(dict.fromkeys(x.spec.to_text() for x in inp))
        if len(specs) > 1:
            raise ValueError(f"{what}: networks of one architecture are needed, got {len(specs)} specs "
                             f"({specs[:3]}{'...' if len(specs) > 3 else ''}); train one model per spec")
        return BlockWeights.stack(list(inp))
    raise TypeError(f"{what}: expected BlockWeights (or a list of same-spec BlockWeights), got {type(inp).__name__}")


def parameter_statistics(bw: BlockWeights) -> torch.Tensor:
    """``[B, 7 * T]`` for ``T`` parameter tensors: mean, variance and 5 quantiles of each tensor (in
    ``spec.param_shapes`` order), the block analogue of :func:`.baselines.layer_statistics`."""
    feats = []
    q = None
    for t in bw.params:
        t = t.reshape(bw.batch_size, -1)
        if q is None:
            q = torch.tensor(_QUANTILES, dtype=t.dtype, device=t.device)
        feats.append(t.mean(1, keepdim=True))
        feats.append(t.var(1, unbiased=False, keepdim=True))
        feats.append(torch.quantile(t, q, dim=1).T)
    return torch.cat(feats, dim=1)


class _BlockStandardized(nn.Module):
    """Features of a fixed block architecture -> (x - mean) / std -> MLP; the statistics are buffers fit on
    training networks (:meth:`fit_normalization`)."""

    def __init__(self, spec: BlockNetworkSpec, in_dim: int, hidden: int, out_dim: int, layers: int):
        super().__init__()
        if not isinstance(spec, BlockNetworkSpec):
            raise TypeError(f"{type(self).__name__} needs a BlockNetworkSpec, got {type(spec).__name__} (chain "
                            "networks: scalegmn_lite.nn.baselines)")
        self.spec = spec
        self.register_buffer("mean", torch.zeros(in_dim))
        self.register_buffer("std", torch.ones(in_dim))
        self.net = mlp(in_dim, hidden, out_dim, layers)

    def features(self, bw: BlockWeights) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _prepare(self, inp, what: str) -> BlockWeights:
        bw = as_block_batch(inp, what)
        if bw.spec.with_eps(0.0).blocks != self.spec.with_eps(0.0).blocks:
            raise ValueError(f"{type(self).__name__} was built for {self.spec.to_text()!r} but got "
                             f"{bw.spec.to_text()!r}; these baselines need one fixed architecture (use ScaleGMN for "
                             "mixed architectures)")
        bw.check_materialized(what)
        bw.check_finite(what)  # NaN/inf raise, naming the networks
        return bw.to(device=self.mean.device, dtype=self.mean.dtype)

    @torch.no_grad()
    def fit_normalization(self, bw: BlockWeights) -> "_BlockStandardized":
        """Set the input standardisation from training networks ``bw``."""
        f = self.features(self._prepare(bw, f"{type(self).__name__}.fit_normalization"))
        self.mean.copy_(f.mean(0))
        self.std.copy_(f.std(0).clamp_min(1e-6) if f.shape[0] > 1 else torch.ones_like(self.std))
        return self

    def forward(self, bw: BlockWeights | Sequence[BlockWeights]) -> torch.Tensor:
        """``[B, out_dim]`` for the ``B`` networks of ``bw``."""
        f = self.features(self._prepare(bw, f"{type(self).__name__} input"))
        return self.net((f - self.mean) / self.std)


class BlockStatNN(_BlockStandardized):
    """Per-parameter-tensor statistics (:func:`parameter_statistics`) into an MLP: ``[B] networks -> [B, out_dim]``."""

    def __init__(self, spec: BlockNetworkSpec, out_dim: int, hidden: int = 128, layers: int = 3):
        super().__init__(spec, 7 * len(spec.param_shapes), hidden, out_dim, layers)

    def features(self, bw: BlockWeights) -> torch.Tensor:
        """``[B, 7 * T]`` statistics of the ``T`` parameter tensors."""
        return parameter_statistics(bw)


class BlockFlatMLP(_BlockStandardized):
    """An MLP on the flattened parameters (BatchNorm statistics included): ``[B] networks -> [B, out_dim]``."""

    def __init__(self, spec: BlockNetworkSpec, out_dim: int, hidden: int = 128, layers: int = 3):
        super().__init__(spec, spec.num_params, hidden, out_dim, layers)

    def features(self, bw: BlockWeights) -> torch.Tensor:
        """``[B, P]``: :meth:`BlockWeights.flatten`."""
        return bw.flatten()


class BlockGMN(ScaleGMN):
    """The GMN baseline on block graphs: ScaleGMN forced to ``mode="permutation"`` with a learned per-edge-type vector
    added to every edge embedding (graph batches without ``edge_type``, i.e. chain graphs, get none).

    Called like :class:`ScaleGMN` (``BlockWeights``, lists of them, or chain inputs)."""

    def __init__(self, config: ScaleGMNConfig | None = None, **overrides) -> None:
        overrides["mode"] = "permutation"
        super().__init__(config, **overrides)
        self.edge_type_id = nn.Embedding(NUM_EDGE_TYPES, self.config.hidden_dim)
        nn.init.normal_(self.edge_type_id.weight, std=1.0 / math.sqrt(self.config.hidden_dim))

    def embed(self, batch):
        """ScaleGMN's embedding plus the edge-type vector (``batch.edge_type``) on every edge."""
        x, e = super().embed(batch)
        etype = getattr(batch, "edge_type", None)
        if etype is not None:
            e = e + self.edge_type_id(etype.to(e.device))
        return x, e


def block_gauge_augment(bw: BlockWeights, generator: torch.Generator | None = None,
                        max_log_scale: float = 1.0) -> BlockWeights:
    """A random element of each network's gauge group (permutations; positive or sign scalings of hidden units and
    of the shared residual stream; BatchNorm's free per-channel and LayerNorm's common input scale, signs included):
    the networks compute the same functions (exactly for ``eps = 0`` norms)."""
    g = BlockGauge.sample(bw.spec, bw.batch_size, generator, prenorm_sign=True, max_log_scale=max_log_scale,
                          device=bw.device, dtype=bw.dtype)
    return g.apply(bw.detach())
