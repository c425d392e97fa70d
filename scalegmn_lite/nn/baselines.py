"""Non-equivariant weight-space baselines: StatNN and an MLP on flattened weights.

Both map a :class:`~scalegmn_lite.weightspace.weights.WeightSpace` of ``B`` networks to ``[B, out_dim]``.

* :class:`StatNN` (Unterthiner et al. 2020): per layer, statistics of the weights and of the biases
  (mean, variance, quantiles 0/25/50/75/100 %), standardised, into an MLP. Invariant to
  permutations of hidden neurons (statistics do not see the order) but *not* to scalings.
* :class:`FlatMLP`: an MLP on the flattened, standardised parameter vector. Invariant to nothing.

Their inputs are standardised with statistics of the training set (``fit_normalization``), which
such models need to train at all; scale-equivariant models must not do this (it breaks the symmetry).
Train them with gauge augmentation (:func:`gauge_augment`) to learn the symmetry approximately.
"""

from __future__ import annotations

import torch
from torch import nn

from ..weightspace.gauge import GaugeElement
from ..weightspace.spec import NetworkSpec
from ..weightspace.weights import WeightSpace
from .guards import check_weights

__all__ = ["StatNN", "FlatMLP", "mlp", "layer_statistics", "gauge_augment"]

_QUANTILES = (0.0, 0.25, 0.5, 0.75, 1.0)


def mlp(in_dim: int, hidden: int, out_dim: int, layers: int = 2, dropout: float = 0.0) -> nn.Sequential:
    """``layers`` Linear layers with SiLU and LayerNorm between them."""
    mods: list[nn.Module] = []
    d = in_dim
    for _ in range(layers - 1):
        mods += [nn.Linear(d, hidden), nn.LayerNorm(hidden), nn.SiLU()]
        if dropout:
            mods.append(nn.Dropout(dropout))
        d = hidden
    mods.append(nn.Linear(d, out_dim))
    return nn.Sequential(*mods)


def layer_statistics(ws: WeightSpace) -> torch.Tensor:
    """``[B, 2 * L * 7]``: mean, variance and 5 quantiles of each layer's weights and biases."""
    feats = []
    for w, b in zip(ws.weights, ws.biases):
        for t in (w.flatten(1), b.flatten(1)):
            feats.append(t.mean(1, keepdim=True))
            feats.append(t.var(1, unbiased=False, keepdim=True))
            q = torch.tensor(_QUANTILES, dtype=t.dtype, device=t.device)
            feats.append(torch.quantile(t, q, dim=1).T)
    return torch.cat(feats, dim=1)


class _Standardized(nn.Module):
    """Shared logic: features -> (x - mean) / std -> MLP; statistics are buffers fit on training data."""

    def __init__(self, spec: NetworkSpec, in_dim: int, hidden: int, out_dim: int, layers: int):
        super().__init__()
        self.spec = spec
        self.register_buffer("mean", torch.zeros(in_dim))
        self.register_buffer("std", torch.ones(in_dim))
        self.net = mlp(in_dim, hidden, out_dim, layers)

    def features(self, ws: WeightSpace) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _check(self, ws: WeightSpace) -> None:
        if ws.spec.layers != self.spec.layers:
            raise ValueError(
                f"{type(self).__name__} was built for {self.spec.to_text()!r} but got {ws.spec.to_text()!r}; "
                "these baselines need one fixed architecture (use ScaleGMN for mixed architectures)"
            )

    @torch.no_grad()
    def fit_normalization(self, ws: WeightSpace) -> "_Standardized":
        """Set the input standardisation from training networks ``ws``."""
        self._check(ws)
        check_weights(ws, f"{type(self).__name__}.fit_normalization")
        f = self.features(ws.to(device=self.mean.device, dtype=self.mean.dtype))
        self.mean.copy_(f.mean(0))
        self.std.copy_(f.std(0).clamp_min(1e-6))
        return self

    def forward(self, ws: WeightSpace | list[WeightSpace]) -> torch.Tensor:
        if not isinstance(ws, WeightSpace):  # a list of weight spaces of this architecture
            ws = WeightSpace.stack(list(ws))
        self._check(ws)
        check_weights(ws, f"{type(self).__name__} input")  # NaN/inf or meta weights raise, naming the networks
        f = self.features(ws.to(device=self.mean.device, dtype=self.mean.dtype))
        return self.net((f - self.mean) / self.std)


class StatNN(_Standardized):
    """Per-layer weight statistics into an MLP: ``[B] networks -> [B, out_dim]``."""

    def __init__(self, spec: NetworkSpec, out_dim: int, hidden: int = 128, layers: int = 3):
        super().__init__(spec, 14 * spec.num_layers, hidden, out_dim, layers)

    def features(self, ws: WeightSpace) -> torch.Tensor:
        return layer_statistics(ws)


class FlatMLP(_Standardized):
    """An MLP on the flattened parameters: ``[B] networks -> [B, out_dim]``."""

    def __init__(self, spec: NetworkSpec, out_dim: int, hidden: int = 128, layers: int = 3):
        super().__init__(spec, spec.num_params, hidden, out_dim, layers)

    def features(self, ws: WeightSpace) -> torch.Tensor:
        return ws.flatten()


def gauge_augment(ws: WeightSpace, generator: torch.Generator | None = None, max_log_scale: float = 1.0) -> WeightSpace:
    """A random gauge transform of every network (permutation and allowed scaling per hidden layer);
    the networks compute the same functions."""
    g = GaugeElement.sample(ws.spec, ws.batch_size, generator=generator, max_log_scale=max_log_scale,
                            dtype=ws.dtype)
    return g.apply(ws.detach())
