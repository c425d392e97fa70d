"""Tests for scalegmn_lite.tasks.merging.paths: interpolation, loss curves/barriers (hand-checked), canonical
scales and weight matching (recovers known permutations, signs and scales exactly)."""

from __future__ import annotations

import pytest
import torch

from scalegmn_lite.tasks.merging.matching import align, canonicalize_scale, weight_matching
from scalegmn_lite.tasks.merging.paths import LossCurve, interpolate, loss_barrier, loss_curve
from scalegmn_lite.weightspace.gauge import GaugeElement, sample_non_symmetry
from scalegmn_lite.weightspace.spec import NetworkSpec, SpecError, Symmetry
from scalegmn_lite.weightspace.weights import WeightSpace, batched_forward

F64 = torch.float64


def _x(spec, n, gen):
    shape = spec.input_shape or (spec.layers[0].in_dim,)
    return torch.randn(n, *shape, generator=gen, dtype=F64)


def test_interpolate_layout():
    gen = torch.Generator().manual_seed(0)
    spec = NetworkSpec.from_text("mlp 3-4-2 relu")
    ws0, ws1 = WeightSpace.randn(spec, 2, gen, dtype=F64), WeightSpace.randn(spec, 2, gen, dtype=F64)
    path = interpolate(ws0, ws1, [0.0, 0.25, 1.0])
    assert path.batch_size == 6
    for a_i, a in enumerate([0.0, 0.25, 1.0]):
        for b in range(2):
            assert path[a_i * 2 + b].allclose(ws0[b].lerp(ws1[b], a), rtol=0, atol=1e-15)
    assert interpolate(ws0, ws1, 5).batch_size == 10
    with pytest.raises(SpecError):
        interpolate(ws0, ws1[:1], 3)


def test_barrier_of_made_up_curves():
    alphas = torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0], dtype=F64)
    losses = torch.tensor(
        [
            [1.0, 1.5, 2.0, 1.5, 1.0],  # bump of height 1 above the flat chord
            [0.0, 0.25, 0.5, 0.75, 1.0],  # on the chord: barrier 0
            [2.0, 0.0, 0.0, 0.0, 1.0],  # below the chord: barrier 0 (endpoints)
            [0.0, 3.0, 1.0, 1.0, 2.0],  # 3 - 0.25 * 2 = 2.5 at alpha 0.25
        ],
        dtype=F64,
    )
    expected = torch.tensor([1.0, 0.0, 0.0, 2.5], dtype=F64)
    assert torch.allclose(loss_barrier(LossCurve(alphas, losses)), expected)
    assert torch.allclose(loss_barrier((alphas, losses)), expected)
    assert torch.allclose(loss_barrier(losses), expected)  # default alphas: evenly spaced
    assert float(loss_barrier(losses[3])) == pytest.approx(2.5)
    with pytest.raises(ValueError, match="start at 0"):
        loss_barrier((alphas[1:], losses[:, 1:]))


def test_barrier_of_linear_network_is_known_in_closed_form():
    """One linear layer: f_alpha = f_0 + alpha (f_1 - f_0), so with L = mean f^2 the excess over the
    chord is -alpha (1 - alpha) mean d^2 (barrier 0) and with L = -mean f^2 it is +alpha (1 - alpha) mean d^2,
    maximal at alpha = 1/2: barrier = mean d^2 / 4, d = f_1 - f_0."""
    gen = torch.Generator().manual_seed(1)
    spec = NetworkSpec.from_text("mlp 3-2 relu")  # no hidden layer: Linear 3 -> 2
    ws0, ws1 = WeightSpace.randn(spec, 3, gen, dtype=F64), WeightSpace.randn(spec, 3, gen, dtype=F64)
    x = _x(spec, 50, gen)
    d2 = (ws1(x) - ws0(x)).pow(2).mean((1, 2))
    concave = loss_curve(ws0, ws1, lambda w: -batched_forward(w, x).pow(2).mean((1, 2)))
    assert concave.alphas.shape == (21,) and concave.losses.shape == (3, 21)
    assert torch.allclose(loss_barrier(concave), d2 / 4, atol=1e-12)
    convex = loss_curve(ws0, ws1, lambda w: batched_forward(w, x).pow(2).mean((1, 2)), chunk_alphas=4)
    assert torch.allclose(loss_barrier(convex), torch.zeros(3, dtype=F64), atol=1e-12)
    # the whole curve is the quadratic
    a = convex.alphas
    f0, d = ws0(x), ws1(x) - ws0(x)
    want = torch.stack([(f0 + ai * d).pow(2).mean((1, 2)) for ai in a], 1)
    assert torch.allclose(convex.losses, want, atol=1e-12)


def test_loss_fn_shape_is_checked():
    gen = torch.Generator().manual_seed(2)
    spec = NetworkSpec.from_text("mlp 3-2 relu")
    ws = WeightSpace.randn(spec, 2, gen)
    with pytest.raises(ValueError, match="one loss per network"):
        loss_curve(ws, ws, lambda w: torch.zeros(3))


@pytest.mark.parametrize("text", ["mlp 5-6-4-3 relu", "mlp 5-6-3 relu", "conv1d 2-4-5/3 k3 relu 2x10"])
def test_canonicalize_scale(text):
    gen = torch.Generator().manual_seed(3)
    spec = NetworkSpec.from_text(text)
    ws = WeightSpace.randn(spec, 3, gen, dtype=F64)
    k = canonicalize_scale(ws)
    assert k.is_symmetry()
    c = k.apply(ws)
    x = _x(spec, 8, gen)
    assert torch.allclose(c(x), ws(x), atol=1e-12)  # a genuine gauge transform
    for l in range(spec.num_layers - 1):
        rows = torch.cat([c.weights[l].flatten(2), c.biases[l].unsqueeze(-1)], -1)
        assert torch.allclose(rows.norm(dim=-1), torch.ones_like(c.biases[l]), atol=1e-12)
    # invariant under scalings, equivariant under permutations: canon(h ws) = P_h canon(ws)
    h = GaugeElement.sample(spec, 3, gen, dtype=F64)
    p_only = GaugeElement(spec, h.perms, [torch.ones_like(s) for s in h.scales])
    moved = h.apply(ws)
    assert canonicalize_scale(moved).apply(moved).allclose(p_only.apply(c), rtol=0, atol=1e-12)
    # a non-symmetry (a negative scaling) is not undone
    bad = sample_non_symmetry(ws, "wrong_scaling", gen)
    assert canonicalize_scale(bad).apply(bad).max_abs_diff(c) > 0.1


def test_canonicalize_scale_keeps_dead_neurons_and_other_symmetries():
    gen = torch.Generator().manual_seed(4)
    spec = NetworkSpec.from_text("mlp 3-4-2 relu")
    ws = WeightSpace.randn(spec, 1, gen, dtype=F64)
    w0, b0 = ws.weights[0].clone(), ws.biases[0].clone()
    w0[0, 1], b0[0, 1] = 0.0, 0.0
    k = canonicalize_scale(ws.replace_params(weights=[w0, ws.weights[1]], biases=[b0, ws.biases[1]]))
    assert float(k.scales[0][0, 1]) == 1.0 and torch.isfinite(k.scales[0]).all()
    tanh = WeightSpace.randn(NetworkSpec.from_text("mlp 3-4-2 tanh"), 2, gen)
    assert all(torch.equal(s, torch.ones_like(s)) for s in canonicalize_scale(tanh).scales)


MATCH_SPECS = [
    "mlp 5-7-6-3 relu",  # permutations + positive scalings
    "mlp 5-7-6-3 tanh",  # signed permutations
    "mlp 5-7-6-3 sigmoid",  # permutations only
    "conv1d 2-4-5/3 k3 relu 2x12",
    "conv1d 2-4-5/3 k3 tanh 2x12",
    "mlp 10-24-24-24-10 leaky_relu",
]


@pytest.mark.parametrize("text", MATCH_SPECS)
def test_weight_matching_recovers_a_known_gauge_transform(text):
    gen = torch.Generator().manual_seed(5)
    spec = NetworkSpec.from_text(text)
    ws0 = WeightSpace.randn(spec, 3, gen, dtype=F64)
    g = GaugeElement.sample(spec, 3, gen, dtype=F64)
    ws1 = g.apply(ws0)
    assert ws1.max_abs_diff(ws0) > 0.1  # the transform really moved the weights
    gm = weight_matching(ws0, ws1)
    assert gm.batch_size == 3 and gm.is_symmetry()
    assert gm.equals(g.inverse(), atol=1e-9)
    aligned = gm.apply(ws1)
    assert aligned.max_abs_diff(ws0) < 1e-12
    x = _x(spec, 16, gen)
    assert torch.allclose(aligned(x), ws1(x), atol=1e-12)
    if spec.symmetries[0] is Symmetry.SIGN:
        assert any(bool((s < 0).any()) for s in gm.scales)  # sign flips were needed and found
    # float32 inputs come back as a float32 element that still recovers ws0
    g32 = weight_matching(ws0.to(dtype=torch.float32), ws1.to(dtype=torch.float32))
    assert g32.scales[0].dtype == torch.float32
    assert g32.apply(ws1.to(dtype=torch.float32)).max_abs_diff(ws0.to(dtype=torch.float32)) < 1e-5


@pytest.mark.parametrize("text", ["mlp 5-7-6-3 relu", "mlp 5-7-6-3 tanh", "conv1d 2-4-5/3 k3 relu 2x12"])
def test_weight_matching_with_noise_removes_the_barrier(text):
    gen = torch.Generator().manual_seed(6)
    spec = NetworkSpec.from_text(text)
    B = 4
    ws0 = WeightSpace.randn(spec, B, gen, dtype=F64)
    g = GaugeElement.sample(spec, B, gen, dtype=F64)
    ws1 = g.apply(ws0)
    ws1 = ws1 + ws1.map(lambda t: 0.01 * torch.randn(t.shape, generator=gen, dtype=F64))
    x = _x(spec, 64, gen)
    f0 = ws0(x)

    def loss(w):  # distance in function space to network 0
        return (w(x) - f0.repeat(w.batch_size // B, 1, 1)).pow(2).mean((1, 2))

    gm = weight_matching(ws0, ws1)
    naive = loss_barrier(loss_curve(ws0, ws1, loss))
    matched = loss_barrier(loss_curve(ws0, gm.apply(ws1), loss))
    assert float(naive.max()) > 0.02
    assert float(matched.max()) < 1e-4
    assert all(torch.equal(a, b) for a, b in zip(gm.perms, g.inverse().perms))


def test_weight_matching_on_independent_networks():
    gen = torch.Generator().manual_seed(7)
    spec = NetworkSpec.from_text("mlp 6-10-10-3 relu")
    ws0, ws1 = WeightSpace.randn(spec, 2, gen, dtype=F64), WeightSpace.randn(spec, 2, gen, dtype=F64)
    gm, sweeps = weight_matching(ws0, ws1, return_sweeps=True)
    assert len(sweeps) == 2 and all(1 <= s <= 100 for s in sweeps)
    aligned = align(ws0, ws1)
    assert aligned.allclose(gm.apply(ws1))
    x = _x(spec, 16, gen)
    assert torch.allclose(aligned(x), ws1(x), atol=1e-12)
    # in the canonical scale the matched network is closer to ws0 than the unmatched one
    k0 = canonicalize_scale(ws0)
    c0, c1, ca = k0.apply(ws0), canonicalize_scale(ws1).apply(ws1), k0.apply(aligned)
    assert ((ca - c0).flatten().norm(dim=1) < (c1 - c0).flatten().norm(dim=1)).all()


def test_weight_matching_without_hidden_layers_is_identity():
    spec = NetworkSpec.from_text("mlp 3-2 relu")
    ws = WeightSpace.randn(spec, 2, torch.Generator().manual_seed(8))
    assert weight_matching(ws, ws).apply(ws).allclose(ws)


def test_weight_matching_group_is_checked():
    spec = NetworkSpec.from_text("mlp 3-4-2 relu")
    ws = WeightSpace.randn(spec, 1, torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="group must be one of"):
        weight_matching(ws, ws, group="Q")


def test_positive_scale_refinement_lowers_the_distance_and_keeps_the_function():
    """PD matching on ReLU networks picks per-neuron scales that minimise the weight distance to the
    first network (closer than only matching its row norms), and stays a symmetry."""
    from scalegmn_lite.tasks.merging.matching import _refine_scales

    spec = NetworkSpec.from_text("mlp 5-8-8-3 relu")
    a = WeightSpace.randn(spec, 6, torch.Generator().manual_seed(0), dtype=torch.float64)
    b = WeightSpace.randn(spec, 6, torch.Generator().manual_seed(1), dtype=torch.float64)
    g = weight_matching(a, b, group="PD")
    assert g.is_symmetry()
    x = torch.randn(7, 5, dtype=torch.float64)
    assert torch.allclose(g.apply(b)(x), b(x), atol=1e-10)
    p = weight_matching(a, b, group="P")

    def dist(w):
        return (w.flatten() - a.flatten()).pow(2).sum(1)

    aligned = p.apply(b)
    rownorm = canonicalize_scale(a).inverse().compose(canonicalize_scale(aligned)).apply(aligned)
    refined = _refine_scales(a, rownorm).apply(rownorm)
    assert bool((dist(refined) <= dist(rownorm) + 1e-9).all()) and bool((dist(refined) < dist(rownorm)).any())
