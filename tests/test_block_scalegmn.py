"""ScaleGMN on block networks (nn.block_graphs, nn.block_scalegmn, the block branch of nn.checks): exact invariance
and equivariance under every BlockGauge element (float64, eps = 0), the ablations measured where they fail
(equivariance errors, or identical outputs for networks that compute different functions), the non-symmetries
detected, and chain networks unchanged."""

from __future__ import annotations

import random

import pytest
import torch
from block_specs import random_spec

import scalegmn_lite.nn.scalegmn as scalegmn_module
from scalegmn_lite.nn import ScaleGMN, check_equivariance, check_invariance, check_sensitivity, to_graph
from scalegmn_lite.nn.block_checks import GAUGE_PARTS, gauge_parts_of, sample_gauge_part
from scalegmn_lite.nn.block_graphs import (
    EDGE_NORM,
    EDGE_SHORTCUT,
    VARIANTS,
    block_graph_to_weights,
    block_layout,
    to_block_graph,
)
from scalegmn_lite.nn.block_scalegmn import BlockScaleGMN
from scalegmn_lite.nn.graphs import HIDDEN, INPUT, OUTPUT, SYM_NONZERO
from scalegmn_lite.nn.layers import VIEW_NONZERO, ScaleInv
from scalegmn_lite.nn.layers.invariant import Kinds
from scalegmn_lite.weightspace import BlockGauge, BlockNetworkSpec, BlockWeights, WeightSpace
from scalegmn_lite.weightspace.block_gauge import NonSymmetry, function_change, sample_non_symmetry

F64 = torch.float64
EXACT = 1e-9  # relative, float64 (checks.default_tolerance)
BROKEN = 1e-6  # an error or a change this large is no rounding
TEMPLATES = [
    "mlp 5-6-[7-6]x2-[8-4|proj]-3 {a}",  # identity and projection shortcuts
    "mlp 5-6bn-[7ln-6bn]-[5-4ln|projbn]-3 {a}",  # BatchNorm and LayerNorm in branches and the projection
    "mlp 4-[6-4]:identity-5ln-[3bn-5]x2-2 {a}",  # the first stream is the input (fixed)
    "conv1d 2-4bn-[4bn-4bn]x2-[6s2bn-6bn|projs2bn]/5-3 k3 p1 {a} 2x16",  # a small ResNet
    "conv1d 2-[5-2]-4k1/6-[3-6]-2 k3 p1 {a} 2x12",
]
ACTS = ["relu", "tanh", "identity"]
ALL_KINDS = "mlp 5-6bn-[7ln-6bn]-[5-4ln|projbn]-3 relu"  # has every part and every non-symmetry


def _model(head="invariant", bidirectional=False, seed=0, **kw) -> ScaleGMN:
    torch.manual_seed(seed)
    return ScaleGMN(hidden_dim=8, num_layers=2, head=head, bidirectional=bidirectional, max_layers=32,
                    max_kernel=3, **kw).double()


def _weights(text: str, seed: int = 0, batch: int = 2) -> BlockWeights:
    spec = BlockNetworkSpec.from_text(text).with_eps(0.0)
    return BlockWeights.randn(spec, batch, torch.Generator().manual_seed(seed), dtype=F64)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _check(head: str):
    return check_invariance if head == "invariant" else check_equivariance


def _part_errors(model, bw, head: str, seed: int = 1) -> dict[str, float]:
    return {p: _check(head)(model, bw, 2, _gen(seed), part=p).max_relative for p in gauge_parts_of(bw.spec)}


# ---------------------------------------------------------------- exact
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("head", ["invariant", "equivariant"])
@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("template", TEMPLATES)
def test_exact_under_every_gauge_element(template, act, head, bidirectional):
    bw = _weights(template.format(a=act))
    model = _model(head, bidirectional)
    assert _check(head)(model, bw, 3, _gen()).max_relative <= EXACT
    errors = _part_errors(model, bw, head)
    assert errors and max(errors.values()) <= EXACT, errors


def test_exact_on_random_block_networks():
    rng = random.Random(7)
    for i in range(12):
        spec = random_spec(rng).with_eps(0.0)
        bw = BlockWeights.randn(spec, 2, _gen(i), dtype=F64)
        head = ("invariant", "equivariant")[i % 2]
        res = _check(head)(_model(head, bidirectional=i % 3 == 0, seed=i), bw, 2, _gen(i))
        assert res.max_relative <= EXACT, (spec.to_text(), res.max_relative)


def test_update_is_equivariant_and_keeps_the_statistics():
    bw = _weights(ALL_KINDS)
    model = _model("equivariant", True)
    assert check_equivariance(model.update, bw, 3, _gen()).max_relative <= EXACT
    new = model.update(bw)
    assert new.spec == bw.spec and new.max_abs_diff(bw) > 0
    for name in new.names:
        if name.endswith(("running_mean", "running_var")):
            assert torch.equal(new.param(name), bw.param(name))


def test_gauge_parts_are_symmetries_that_move_the_weights():
    bw = _weights(ALL_KINDS)
    x = torch.randn(9, 5, generator=_gen(3), dtype=F64)
    assert gauge_parts_of(bw.spec) == tuple(GAUGE_PARTS)
    for part in GAUGE_PARTS:
        g = sample_gauge_part(bw.spec, part, 2, _gen(4))
        moved = g.apply(bw)  # strict: validates the element
        assert moved.max_abs_diff(bw) > 0.05, part
        assert function_change(bw, moved, x) <= 1e-12, part
    with pytest.raises(ValueError, match="unknown gauge part"):
        sample_gauge_part(bw.spec, "everything")
    with pytest.raises(ValueError, match="chain networks have none"):
        check_invariance(_model(), WeightSpace.randn(BlockNetworkSpec.from_text("mlp 3-4-2 relu").to_chain(), 1),
                         part="stream_scale")


def test_non_symmetries_change_the_output():
    """Negative controls: every non-symmetry of the network moves the invariant output (and its function)."""
    bw = _weights(ALL_KINDS)
    sens = check_sensitivity(_model(), bw, generator=_gen(5))
    assert set(sens) == {"layernorm_neuron_scale", "unshared_stream_scale", "batchnorm_sign_without_gamma",
                         "shortcut_edge_rescaled"}
    assert min(sens.values()) > BROKEN, sens
    x = torch.randn(9, 5, generator=_gen(6), dtype=F64)
    for kind in sens:
        assert function_change(bw, sample_non_symmetry(bw, kind, _gen(7)), x) > 1e-3, kind
    # a network without norms has only the stream kinds; asking for a missing one names it
    plain = _weights("mlp 5-6-[7-6]x2-3 relu")
    assert set(check_sensitivity(_model(), plain, generator=_gen(5))) == {"unshared_stream_scale",
                                                                          "shortcut_edge_rescaled"}
    with pytest.raises(ValueError, match="no LayerNorm"):
        check_sensitivity(_model(), plain, kinds=["layernorm_neuron_scale"], generator=_gen(5))


# ---------------------------------------------------------------- the design trap
def test_a_constant_shortcut_edge_is_an_ordinary_scaled_edge_and_exact():
    """The shortcut is an ordinary edge of weight 1. Under the true gauge (one q per stream) it stays 1; under the
    plain twin's gauge (one q per depth: no symmetry of the residual network) it must become q_{t+1} / q_t to keep
    the function, and fed that way ScaleGMN is invariant to it as well: the constant is consistent, not a trap."""
    bw = _weights("mlp 5-6-[7-6]x2-3 relu")
    model = _model()
    g = BlockGauge.sample(bw.spec, 2, _gen(8))
    shortcut = to_block_graph(g.apply(bw)).edge_type == EDGE_SHORTCUT
    assert int(shortcut.sum()) == 2 * 2 * 6 and torch.equal(to_block_graph(g.apply(bw)).edge_attr[shortcut, 0],
                                                            torch.ones(24, dtype=F64))
    split = BlockGauge.sample(bw.spec, 2, _gen(9), permute=False, split_streams=True)
    assert not split.is_symmetry()
    moved = split.apply(bw, strict=False)
    factors = split.shortcut_edge_factors()
    x = torch.randn(9, 5, generator=_gen(10), dtype=F64)
    assert (moved.forward(x, eps=0.0, shortcut_weights=factors) - bw(x, eps=0.0)).abs().max() <= 1e-12
    compensated = NonSymmetry("plain twin gauge, shortcut compensated", moved, factors)
    ref = model(bw)
    assert (model(compensated) - ref).abs().max() / ref.abs().max() <= EXACT
    assert (model(moved) - ref).abs().max() / ref.abs().max() > BROKEN  # the unshared scaling alone: detected


# ---------------------------------------------------------------- ablations, measured
def test_plain_twin_graph_is_equivariant_but_over_invariant():
    """Dropping the shortcut (the plain twin's graph): exact under the gauge, but unshared stream scalings and the
    shortcut's constant no longer reach the model; a residual network and its plain twin get the same output."""
    bw = _weights("mlp 5-6-[7-6]x2-3 relu")
    twin, exact = BlockScaleGMN(_model(), "plain_twin"), _model()
    assert max(_part_errors(twin, bw, "invariant").values()) <= EXACT
    sens_twin = check_sensitivity(twin, bw, generator=_gen(11))
    sens_exact = check_sensitivity(exact, bw, generator=_gen(11))
    assert max(sens_twin.values()) <= 1e-12 < BROKEN < min(sens_exact.values()), (sens_twin, sens_exact)
    plain = NonSymmetry("the plain twin", bw, (0.0, 0.0))  # the same weights without the shortcuts
    x = torch.randn(9, 5, generator=_gen(12), dtype=F64)
    assert function_change(bw, plain, x) > 0.1
    assert torch.equal(twin(plain), twin(bw))
    assert (exact(plain) - exact(bw)).abs().max() / exact(bw).abs().max() > BROKEN


@pytest.mark.parametrize("head", ["invariant", "equivariant"])
def test_norms_as_affine_layers_break_equivariance(head):
    """Norms fed as elementwise affine layers (edge gamma, statistics ignored, inputs as ordinary neurons): the
    stream and hidden parts stay exact, every norm part breaks, and the running statistics are invisible."""
    bw = _weights(ALL_KINDS)
    naive = BlockScaleGMN(_model(head, True), "norm_affine")
    errors = _part_errors(naive, bw, head)
    for part, err in errors.items():
        if part.startswith(("stream", "hidden")):
            assert err <= EXACT, (part, err)
        else:
            assert err > BROKEN, (part, err)
    if head == "invariant":
        stats = bw.replace_params({n: bw.param(n) * 1.5 + 0.2 for n in bw.names if "running" in n})
        x = torch.randn(9, 5, generator=_gen(13), dtype=F64)
        assert function_change(bw, stats, x) > 0.01
        assert torch.equal(naive(stats), naive(bw))
        assert (_model(head, True)(stats) - _model(head, True)(bw)).abs().max() > BROKEN


def test_per_vertex_layernorm_views_are_over_invariant():
    """Two LayerNorm networks that compute different functions (the norm's input rescaled per neuron, gamma kept)
    get the same output from per-vertex views; the pooled (layer-level) views tell them apart."""
    bw = _weights("mlp 4-6-[6ln-6]x2-3 relu", batch=3)
    other = sample_non_symmetry(bw, "layernorm_neuron_scale", _gen(14))
    x = torch.randn(9, 4, generator=_gen(15), dtype=F64)
    assert function_change(bw, other, x) > 0.05
    per_vertex, exact = BlockScaleGMN(_model(), "layernorm_per_vertex"), _model()
    for model, same in ((per_vertex, True), (exact, False)):
        ref = model(bw)
        change = float((model(other) - ref).abs().max() / ref.abs().max())
        assert (change <= 1e-12) if same else (change > BROKEN), (model, change)
    assert max(_part_errors(per_vertex, bw, "invariant").values()) <= EXACT  # still equivariant


def test_scalegmn_internals_that_would_break_it():
    bw = _weights("mlp 4-6-[6bn-6]x2-3 tanh")
    # the GMN baseline's per-layer RMS normalisation is not scale equivariant (as on chains)
    assert check_invariance(_model(input_norm=True), bw, 2, _gen(), part="batchnorm_scale").max_relative > BROKEN
    # mode="auto" RMS-normalises sign-only layers; norm inputs must count as scaled there
    model = _model()
    assert check_invariance(model, bw, 2, _gen(), part="batchnorm_scale").max_relative <= EXACT
    code = scalegmn_module.SYM_NONZERO
    try:
        scalegmn_module.SYM_NONZERO = -1  # forget the exclusion
        assert check_invariance(model, bw, 2, _gen(), part="batchnorm_scale").max_relative > BROKEN
    finally:
        scalegmn_module.SYM_NONZERO = code
    with pytest.raises(ValueError, match="chain networks only"):
        _model(path="dense")(bw)


# ---------------------------------------------------------------- pooled views
def test_pooled_views_are_invariant_to_the_common_scalar_only():
    gen = _gen(16)
    x = torch.randn(7, 5, generator=gen, dtype=F64)
    pool = torch.tensor([0, 0, 0, 1, 1, -1, -1])
    kinds = Kinds(torch.full((7,), VIEW_NONZERO), pool)
    view = ScaleInv(5)
    ref = view(x, kinds)
    common = torch.tensor([-2.0, -2.0, -2.0, 0.5, 0.5, -3.0, 1.5], dtype=F64).unsqueeze(-1)
    assert (view(x * common, kinds) - ref).abs().max() <= 1e-12
    per_row = torch.tensor([2.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0], dtype=F64).unsqueeze(-1)
    flip_one = torch.tensor([-1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0], dtype=F64).unsqueeze(-1)
    for factor in (per_row, flip_one):
        assert (view(x * factor, kinds)[:3] - ref[:3]).abs().max() > 1e-3
    assert torch.equal(ScaleInv(5)(x, Kinds(torch.full((7,), VIEW_NONZERO))),
                       ScaleInv(5)(x, Kinds(torch.full((7,), VIEW_NONZERO), torch.full((7,), -1))))


# ---------------------------------------------------------------- the graph
def test_block_graph_structure_and_update_map():
    bw = _weights("mlp 5-6bn-[7ln-6]-3 relu", batch=2)
    lay = block_layout(bw.spec)
    g = to_block_graph(bw)
    # input, bn input, bn output = stream depth 0, linear 7 -> ln input, ln output, stream depth 1, output
    assert [L.width for L in lay.vertex_layers] == [5, 6, 6, 7, 7, 6, 3]
    assert [L.vtype for L in lay.vertex_layers] == [INPUT, HIDDEN, HIDDEN, HIDDEN, HIDDEN, HIDDEN, OUTPUT]
    assert [L.sym for L in lay.vertex_layers] == [0, SYM_NONZERO, 1, SYM_NONZERO, 1, 1, 0]
    assert [L.pool for L in lay.vertex_layers] == ["", "", "", "layer", "", "", ""]
    assert g.num_graphs == 2 and g.vpool.unique().tolist() == [-1, 0, 1]  # one pool per LayerNorm and graph
    sigma = bw.param("1.running_var").sqrt()
    norm = (g.edge_type == EDGE_NORM) & (g.batch[g.edge_index[1]] == 1)
    first = norm.nonzero()[:6, 0]
    assert torch.allclose(g.edge_attr[first, 0], bw.param("1.gamma")[1] / sigma[1])
    assert torch.allclose(g.edge_gain[first], sigma[1])
    assert torch.allclose(g.x[g.ptr[1] + 5:g.ptr[1] + 11, 0], bw.param("0.bias")[1] - bw.param("1.running_mean")[1])
    back = block_graph_to_weights(g, g.x, g.edge_attr)[0]
    for name in ("0.weight", "1.gamma", "1.beta", "2.branch.0.weight", "2.branch.1.gamma", "3.bias"):
        assert torch.allclose(back.param(name), bw.param(name)), name
    assert torch.allclose(back.param("0.bias"), bw.param("0.bias") - bw.param("1.running_mean"))
    assert back.param("1.running_var").abs().max() == 0
    with_eps = BlockWeights(bw.spec.with_eps(1e-3), bw.params)
    assert torch.equal(to_block_graph(with_eps, eps=0.0).edge_attr, g.edge_attr)
    assert not torch.equal(to_block_graph(with_eps).edge_attr, g.edge_attr)
    with pytest.raises(ValueError, match="unknown block graph variant"):
        to_block_graph(bw, variant="naive")
    with pytest.raises(Exception, match="max_kernel=3"):
        to_block_graph(_weights(TEMPLATES[3].format(a="relu")), kernel_dim=1)
    assert set(VARIANTS) == {"exact", "plain_twin", "norm_affine", "layernorm_per_vertex"}


def test_mixed_batches_and_containers():
    a, b = _weights(TEMPLATES[0].format(a="relu"), 1, 2), _weights(TEMPLATES[1].format(a="tanh"), 2, 3)
    model = _model()
    both = model([a, b])
    assert both.shape == (5, 1)
    assert torch.allclose(both, torch.cat([model(a), model(b)]), atol=1e-13)
    eq = _model("equivariant")
    deltas = eq([a, b])
    assert [d.spec for d in deltas] == [a.spec, b.spec] and deltas[1].max_abs_diff(eq(b)) <= 1e-13


# ---------------------------------------------------------------- chains unchanged
@pytest.mark.parametrize("text", ["mlp 4-6-5-3 relu", "mlp 3-5-2 tanh", "conv1d 2-4-3/5-2 k3 p1 relu 2x8"])
def test_a_chain_block_network_gets_todays_graph_and_outputs(text):
    spec = BlockNetworkSpec.from_text(text)
    bw = BlockWeights.randn(spec, 3, _gen(17), dtype=F64)
    ws = WeightSpace(spec.to_chain(), [bw.param(f"{i}.weight") for i in range(len(spec.layers))],
                     [bw.param(f"{i}.bias") for i in range(len(spec.layers))])
    g_block, g_chain = to_block_graph(bw, kernel_dim=3), to_graph(ws, kernel_dim=3)
    for key in ("x", "edge_index", "edge_attr", "edge_mask", "layer", "vtype", "pos", "sym", "edge_layer"):
        assert torch.equal(g_block[key], g_chain[key]), key
    inv = _model(path="graph")
    assert torch.equal(inv(bw), inv(ws))
    eq = _model("equivariant", True, path="graph")
    d_block, d_chain = eq(bw), eq(ws)
    for i in range(len(spec.layers)):
        assert torch.equal(d_block.param(f"{i}.weight"), d_chain.weights[i])
        assert torch.equal(d_block.param(f"{i}.bias"), d_chain.biases[i])
