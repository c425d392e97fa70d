"""LeNet-style ``Conv -> Flatten -> Linear`` networks (issue 11): spec, torch.nn converters, forward,
gauge action (a channel acts on its block of H*W dense inputs), graph (the block is one edge
feature) and ScaleGMN, with the same property tests as every other family."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from torch import nn

from scalegmn_lite import GaugeElement, NetworkSpec, SpecError, WeightSpace, sample_non_symmetry
from scalegmn_lite.nn.checks import check_equivariance, check_invariance, check_sensitivity
from scalegmn_lite.nn.graphs import from_graph, to_graph
from scalegmn_lite.nn.scalegmn import ScaleGMN, ScaleGMNConfig
from scalegmn_lite.testing import lenet_specs

torch.set_num_threads(1)

FAST = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                       HealthCheck.filter_too_much])
# sensitivity of a tiny random ScaleGMN to non-symmetries is small on some networks (relative change
# down to 2.7e-6 in a 112-case sweep, against ~1e-15 for true symmetries): fixed examples, no flakes
FIXED = settings(SLOW, derandomize=True)


def lenet() -> nn.Sequential:
    """Nested blocks, per-layer kernels/strides/paddings/activations; on 1x12x12 inputs the second
    convolution outputs 6 channels of 5x5 = 25 positions."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU()),
        nn.Sequential(nn.Conv2d(4, 6, 3, stride=2, padding=1), nn.Tanh()),
        nn.Flatten(),
        nn.Sequential(nn.Linear(6 * 25, 10), nn.LeakyReLU(0.1), nn.Dropout(0.0)),
        nn.Linear(10, 3),
    ).double()


def _networks(spec: NetworkSpec, seed: int, B: int = 2) -> WeightSpace:
    ws = WeightSpace.randn(spec, B, torch.Generator().manual_seed(seed), dtype=torch.float64)
    if any(layer.activation == "sine" for layer in spec.layers):
        ws = ws * (1.0 / 30.0)
    return ws


def _inputs(spec: NetworkSpec, n: int, seed: int) -> torch.Tensor:
    return torch.randn(n, *spec.input_shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / (b.abs().max() + 1e-12))


# ---------------------------------------------------------------------------------- spec and converters
def test_lenet_module_reads_into_a_spec_with_blocks():
    m = lenet()
    spec = NetworkSpec.from_sequential(m, (1, 12, 12))
    assert spec.to_text() == "conv2d 1-4-6/10-3 k3x3 s1,2 p0,1 flatten relu,tanh,leaky_relu=0.1 1x12x12"
    assert spec.widths == (1, 4, 6, 10, 3) and spec.layers[2].flatten_size == 25
    assert spec.spatial_shapes() == ((10, 10), (5, 5), (), ())
    assert spec.num_params == sum(p.numel() for p in m.parameters())
    ws = WeightSpace.from_module(m, (1, 12, 12))
    assert ws.weights[2].shape == (1, 10, 6, 25)
    assert torch.equal(ws.weights[2][0, :, 4], m[3][0].weight[:, 4 * 25:5 * 25])  # channel 4's block
    x = torch.randn(7, 1, 12, 12, dtype=torch.float64)
    with torch.no_grad():
        assert torch.allclose(ws(x)[0], m(x), rtol=1e-12, atol=1e-12)
        assert torch.allclose(ws.to_module(0)(x), m(x), rtol=1e-12, atol=1e-12)
    assert NetworkSpec.from_text(spec.to_text()) == spec


def test_without_input_shape_the_block_size_comes_from_the_linear_layer():
    spec = NetworkSpec.from_sequential(lenet())
    assert spec.input_shape is None and spec.layers[2].flatten_size == 25
    assert spec.to_text() == "conv2d 1-4-6/10-3 k3x3 s1,2 p0,1 flatten=25 relu,tanh,leaky_relu=0.1"
    assert NetworkSpec.from_text(spec.to_text()) == spec
    ws = WeightSpace.from_module(lenet())
    with pytest.raises(SpecError, match="flatten_size=25"):
        ws(torch.randn(2, 1, 14, 14, dtype=torch.float64))
    with pytest.raises(SpecError, match="flatten_size=25"):  # a known input shape is checked at once
        NetworkSpec.from_sequential(lenet(), (1, 14, 14))


def test_activation_after_flatten_is_the_same_network():
    a = nn.Sequential(nn.Conv1d(2, 3, 3), nn.Flatten(), nn.ReLU(), nn.Linear(3 * 6, 2))
    b = nn.Sequential(nn.Conv1d(2, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 6, 2))
    assert NetworkSpec.from_sequential(a, (2, 8)) == NetworkSpec.from_sequential(b, (2, 8))


@pytest.mark.parametrize("model, match", [
    (nn.Sequential(nn.Conv1d(1, 3, 3), nn.ReLU(), nn.Linear(8, 2)), "needs nn.Flatten"),
    (nn.Sequential(nn.Conv1d(1, 3, 3), nn.Flatten(), nn.Linear(20, 2)), "not a multiple of the 3 channels"),
    (nn.Sequential(nn.Conv1d(1, 3, 3), nn.Flatten(), nn.Conv1d(3, 3, 3)), "a convolution after Flatten"),
    (nn.Sequential(nn.Conv1d(1, 3, 3), nn.ReLU(), nn.Flatten()), "ends in Flatten"),
    (nn.Sequential(nn.Conv1d(1, 3, 3), nn.Flatten(0), nn.Linear(24, 2)), "default start_dim"),
    (nn.Sequential(nn.Sequential(nn.Linear(3, 4), nn.ModuleList([nn.ReLU()]))), r"module 0\.1 \(ModuleList\)"),
])
def test_unsupported_layouts_say_what_is_wrong(model, match):
    with pytest.raises(SpecError, match=match):
        NetworkSpec.from_sequential(model)


@FAST
@given(spec=lenet_specs(), seed=st.integers(0, 10_000))
def test_module_round_trip_and_forward(spec, seed):
    assert spec.has_flatten and NetworkSpec.from_text(spec.to_text()) == spec
    torch.manual_seed(seed)
    m = spec.build_module().double()
    assert NetworkSpec.from_sequential(nn.Sequential(m), spec.input_shape) == spec  # nested: flattened
    ws = WeightSpace.from_module(m, spec.input_shape)
    x = _inputs(spec, 4, seed)
    with torch.no_grad():
        assert torch.allclose(ws(x)[0], m(x), rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------------------------- gauge action
def _gauge_by_hand(m: nn.Sequential, spec: NetworkSpec, g: GaugeElement, b: int) -> list[torch.Tensor]:
    """Independent action on the torch parameters of network ``b``: the flattened Linear's weight
    ``[out, C*P]`` is cut into ``C`` column blocks of ``P``; block ``j`` of the new weight is block
    ``perm[j]`` of the old one divided by ``scale[j]``."""
    params = [p for p in m.modules() if isinstance(p, (nn.Linear, nn.Conv1d, nn.Conv2d))]
    out = []
    for l, (layer, mod) in enumerate(zip(spec.layers, params)):
        W, bias = mod.weight.detach().clone(), mod.bias.detach().clone()
        if l < spec.num_layers - 1:
            p, s = g.perms[l][b], g.scales[l][b]
            W = W[p] * s.view(-1, *([1] * (W.dim() - 1)))
            bias = bias[p] * s
        if l > 0:
            p, s = g.perms[l - 1][b], g.scales[l - 1][b]
            if layer.is_flatten:
                P = layer.flatten_size
                cols = torch.cat([torch.arange(int(j) * P, (int(j) + 1) * P) for j in p])
                W = W[:, cols] / s.repeat_interleave(P)
            else:
                W = W[:, p] / s.view(1, -1, *([1] * (W.dim() - 2)))
        out += [W, bias]
    return out


@FAST
@given(spec=lenet_specs(), seed=st.integers(0, 10_000))
def test_gauge_action_matches_the_block_action_on_torch_weights(spec, seed):
    ws = _networks(spec, seed)
    g = GaugeElement.sample(spec, 2, torch.Generator().manual_seed(seed + 1), dtype=torch.float64)
    moved = g.apply(ws)
    for b in range(2):
        want = _gauge_by_hand(ws.to_module(b), spec, g, b)
        got = [p.detach() for p in moved.to_module(b).parameters()]
        assert all(torch.allclose(u, v, rtol=1e-14, atol=1e-15) for u, v in zip(got, want))
    x = _inputs(spec, 8, seed)
    assert _rel(moved(x), ws(x)) < 1e-9


@SLOW
@given(spec=lenet_specs(max_width=8, heterogeneous=False), seed=st.integers(0, 10_000),
       kind=st.sampled_from(["uncoupled_permutation", "mismatched_scaling", "wrong_scaling"]))
def test_non_symmetries_change_function(spec, seed, kind):
    """As ``test_core`` for the other families: one activation for all hidden layers (relative change
    >= 0.11 in a 595-case sweep); mixed activations are in ``test_heterogeneous``."""
    assume(min(spec.hidden_widths) >= 2)
    assume(kind != "wrong_scaling" or any(x.activation is not None for x in spec.layers[:-1]))
    ws = _networks(spec, seed)
    bad = sample_non_symmetry(ws, kind, torch.Generator().manual_seed(seed))
    x = _inputs(spec, 64, seed)
    assert _rel(bad(x), ws(x)) > 1e-4, (spec.to_text(), kind)


# ---------------------------------------------------------------------------------- graph
def test_block_is_one_edge_feature_and_the_graph_inverts():
    ws = WeightSpace.from_module(lenet(), (1, 12, 12))
    batch = to_graph(ws)
    assert batch.edge_attr.shape[1] == 25  # the widest edge: a 25-position block (kernels have 9)
    first = 4 * 1 + 6 * 4  # edges of the two convolutions come first, t-major
    W = lenet()[3][0].weight.detach()
    t, s = 7, 2  # dense neuron 7 <- channel 2
    e = first + t * 6 + s
    assert torch.equal(batch.edge_attr[e], W[t, s * 25:(s + 1) * 25])
    assert batch.edge_mask[e].all() and not batch.edge_mask[0, 9:].any()  # conv kernels: 9 real entries
    assert from_graph(batch)[0].max_abs_diff(ws) == 0
    padded = to_graph(ws, kernel_dim=30)
    assert padded.edge_attr.shape[1] == 30 and from_graph(padded)[0].max_abs_diff(ws) == 0
    with pytest.raises(SpecError, match="smaller than the largest kernel"):
        to_graph(ws, kernel_dim=24)


# ---------------------------------------------------------------------------------- ScaleGMN
def _model(spec, head, seed=0):
    torch.manual_seed(seed)
    return ScaleGMN(ScaleGMNConfig(hidden_dim=6, num_layers=2, mode="auto", bidirectional=bool(seed % 2),
                                   head=head, out_dim=3, max_kernel=spec.max_kernel_numel))


def test_model_needs_an_edge_width_for_the_blocks():
    ws = WeightSpace.from_module(lenet(), (1, 12, 12))
    small = ScaleGMN(ScaleGMNConfig(hidden_dim=4, num_layers=1, max_kernel=9))
    with pytest.raises(ValueError, match="max_kernel=25"):
        small(ws)


@SLOW
@given(spec=lenet_specs(max_width=6, max_layers=4), seed=st.integers(0, 10_000),
       head=st.sampled_from(["invariant", "equivariant"]))
def test_scalegmn_is_exactly_invariant_or_equivariant(spec, seed, head):
    ws = _networks(spec, seed)
    check = check_invariance if head == "invariant" else check_equivariance
    res = check(_model(spec, head, seed), ws, n_samples=2, generator=torch.Generator().manual_seed(seed))
    assert res.max_relative < 1e-10, (spec.to_text(), res)


def _roll_blocks(ws: WeightSpace) -> WeightSpace:
    """Not a symmetry: shift the positions inside every channel's block of the flattened layer."""
    return ws.replace_params(weights=[w.roll(1, dims=-1) if layer.is_flatten else w
                                      for layer, w in zip(ws.spec.layers, ws.weights)])


@FIXED
@given(spec=lenet_specs(max_width=6, max_layers=4), seed=st.integers(0, 10_000),
       head=st.sampled_from(["invariant", "equivariant"]))
def test_scalegmn_sees_non_symmetries(spec, seed, head):
    assume(min(spec.hidden_widths) >= 2)
    ws = _networks(spec, seed)
    model = _model(spec, head, seed)
    sens = check_sensitivity(model, ws, generator=torch.Generator().manual_seed(seed))
    assert min(sens.values()) > 1e-6, (spec.to_text(), sens)
    P = next(x.flatten_size for x in spec.layers if x.is_flatten)
    if P > 1:
        x = _inputs(spec, 32, seed)
        if _rel(_roll_blocks(ws)(x), ws(x)) > 1e-6:  # the shift changed the network's function
            m = model.double().eval()
            with torch.no_grad():
                a, b = m(ws), m(_roll_blocks(ws))
            a, b = (a, b) if head == "invariant" else (a.flatten(), b.flatten())
            assert _rel(b, a) > 1e-6, spec.to_text()


def test_lenet_float32_within_tolerance():
    ws = WeightSpace.from_module(lenet(), (1, 12, 12)).to(dtype=torch.float32)
    for head in ("invariant", "equivariant"):
        model = _model(ws.spec, head)
        check = check_invariance if head == "invariant" else check_equivariance
        assert check(model, ws, n_samples=2, dtype=torch.float32).ok()
    assert math.prod(ws.spec.spatial_shapes()[1]) == 25
