"""StatNN and FlatMLP baselines and the invariant-task training loop."""

from __future__ import annotations

import pytest
import torch

from scalegmn_lite import GaugeElement, NetworkSpec, WeightSpace
from scalegmn_lite.nn.baselines import FlatMLP, StatNN, gauge_augment, layer_statistics
from scalegmn_lite.tasks.invariant.fit import FitConfig, fit, predict, score

SPEC = NetworkSpec.from_text("mlp 6-8-8-3 relu")


def _ws(n=32, seed=0, dtype=torch.float64):
    return WeightSpace.randn(SPEC, n, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def test_statnn_is_permutation_invariant_but_not_scale_invariant():
    ws = _ws(8)
    model = StatNN(SPEC, 2, hidden=16).double().fit_normalization(ws).eval()
    gen = torch.Generator().manual_seed(1)
    perm = GaugeElement.sample(SPEC, 8, generator=gen, scale=False, dtype=torch.float64)
    scale = GaugeElement.sample(SPEC, 8, generator=gen, permute=False, dtype=torch.float64)
    with torch.no_grad():
        out = model(ws)
        assert torch.allclose(model(perm.apply(ws)), out, atol=1e-10)
        assert (model(scale.apply(ws)) - out).abs().max() > 1e-3  # a symmetry it does not respect


def test_flat_mlp_is_not_permutation_invariant():
    ws = _ws(8)
    model = FlatMLP(SPEC, 2, hidden=16).double().fit_normalization(ws).eval()
    g = GaugeElement.sample(SPEC, 8, generator=torch.Generator().manual_seed(1), scale=False, dtype=torch.float64)
    with torch.no_grad():
        assert (model(g.apply(ws)) - model(ws)).abs().max() > 1e-3


def test_gauge_augment_preserves_functions():
    ws = _ws(4)
    aug = gauge_augment(ws, torch.Generator().manual_seed(0))
    x = torch.randn(10, 6, dtype=torch.float64)
    assert torch.allclose(aug(x), ws(x), atol=1e-10) and aug.max_abs_diff(ws) > 0.01


def test_layer_statistics_shape():
    assert layer_statistics(_ws(5)).shape == (5, 14 * SPEC.num_layers)


def test_baseline_rejects_other_architecture():
    model = StatNN(SPEC, 1)
    other = WeightSpace.randn(NetworkSpec.from_text("mlp 6-4-3 relu"), 2)
    with pytest.raises(ValueError, match="was built for"):
        model(other)


def test_fit_learns_a_simple_weight_statistic():
    """Regression of each network's mean absolute first-layer weight: StatNN sees it directly."""
    gen = torch.Generator().manual_seed(0)
    factor = torch.exp(torch.rand(160, generator=gen) * 2 - 1)
    ws_all = WeightSpace.randn(SPEC, 160, generator=gen).map(lambda t: t * factor.view(-1, *([1] * (t.dim() - 1))))
    y = ws_all.weights[0].abs().mean((1, 2))
    torch.manual_seed(0)
    model = StatNN(SPEC, 1, hidden=32).fit_normalization(ws_all[:128])
    before = score("regression", predict(model, ws_all[128:]), y[128:])
    res = fit(model, ws_all[:128], y[:128], ws_all[128:], y[128:], "regression",
              FitConfig(epochs=40, batch_size=16, lr=3e-3), progress=False)
    assert res.best_val > 0.7 and res.best_val >= before
    with pytest.raises(ValueError, match="targets"):
        fit(model, ws_all[:10], y[:9], ws_all[10:20], y[10:20], "regression")
