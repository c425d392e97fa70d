"""The gauge of block networks (weightspace.block_gauge): every element preserves the function exactly (float64,
eps = 0), the non-symmetries do not, and the action agrees with symbolic.residual's reference transformations."""

from __future__ import annotations

import random

import pytest
import torch
from block_specs import random_spec

from scalegmn_lite.symbolic.residual import neuron_scaling, permute_features, prenorm_scaling, random_norm_net
from scalegmn_lite.weightspace import NotASymmetryError
from scalegmn_lite.weightspace.block_gauge import (
    NON_SYMMETRY_KINDS,
    BlockGauge,
    block_invariance_error,
    function_change,
    sample_non_symmetry,
)
from scalegmn_lite.weightspace.block_sites import ScaleKind
from scalegmn_lite.weightspace.block_weights import BlockWeights
from scalegmn_lite.weightspace.blocks import BlockNetworkSpec

EXACT = 1e-10
CLEAR = 1e-3
F64 = torch.float64
TEMPLATES = [
    "mlp 5-6-[7-6]x2-[8-4|proj]-3 {a}",
    "mlp 5-6bn-[7ln-6bn]-[5-4ln|projbn]-3 {a}",
    "mlp 4-[6-4]:identity-5ln-[3bn-5]x2-2 {a}",  # the first stream is the input: fixed
    "mlp 4-6ln-[6]-6bn {a}",  # ends in a norm and a block writing the output
    "conv1d 2-4bn-[4bn-4bn]x2-[6s2bn-6bn|projs2bn]/5-3 k3 p1 {a} 2x16",
    "conv1d 2-[5-2]-4k1/6-[3-6]-2 k3 p1 {a} 2x12",
]
ACTS = ["relu", "leaky_relu", "tanh", "identity", "sigmoid"]


def _setup(text: str, seed: int = 0, batch: int = 2):
    spec = BlockNetworkSpec.from_text(text)
    gen = torch.Generator().manual_seed(seed)
    bw = BlockWeights.randn(spec, batch, gen, dtype=F64)
    x = torch.randn(16, *spec.input_shape, generator=gen, dtype=F64)
    return spec, gen, bw, x


# ---------------------------------------------------------------- symmetries
@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("template", TEMPLATES)
def test_gauge_preserves_the_function(template, act):
    spec = BlockNetworkSpec.from_text(template.format(a=act))
    for seed, sign in ((0, False), (1, True)):
        assert block_invariance_error(spec, seed=seed, prenorm_sign=sign) <= EXACT


def test_gauge_preserves_random_networks():
    rng = random.Random(5)
    for i in range(40):
        spec = random_spec(rng)
        assert block_invariance_error(spec, seed=i, batch=3) <= EXACT, spec.to_text()


def test_the_gauge_is_not_trivial():
    spec, gen, bw, x = _setup(TEMPLATES[1].format(a="relu"))
    g = BlockGauge.sample(spec, 2, gen, prenorm_sign=True)
    moved = g.apply(bw)
    assert g.is_symmetry() and moved.max_abs_diff(bw) > 0.1 and function_change(bw, moved, x) <= EXACT
    kinds = {s.scaling for s in g.plan.sites}
    assert {ScaleKind.POSITIVE, ScaleKind.PRENORM, ScaleKind.COMMON, ScaleKind.FIXED} <= kinds


def test_group_laws():
    spec, gen, bw, x = _setup(TEMPLATES[4].format(a="tanh"), batch=3)
    g1, g2 = BlockGauge.sample(spec, 3, gen, prenorm_sign=True), BlockGauge.sample(spec, 3, gen)
    assert g1.inverse().apply(g1.apply(bw)).max_abs_diff(bw) <= 1e-12
    assert (g2 @ g1).apply(bw).max_abs_diff(g2.apply(g1.apply(bw))) <= 1e-12
    assert BlockGauge.identity(spec, 3).apply(bw).max_abs_diff(bw) == 0
    assert BlockGauge.sample(spec, 1, gen).apply(bw).batch_size == 3  # one element for the whole batch


def test_sign_flips_through_norms_are_exact_for_every_eps():
    spec, gen, bw, x = _setup("mlp 4-6bn-5ln-3 relu eps=0.001")
    g = BlockGauge.identity(spec, 2)
    scales = list(g.scales)
    for i, site in enumerate(g.plan.sites):
        if site.scaling is ScaleKind.COMMON:  # LayerNorm: c = -1 (with gamma -> -gamma)
            scales[i] = -scales[i]
        elif site.scaling is ScaleKind.PRENORM:  # BatchNorm: random signs, channel 0 flipped
            scales[i] = (torch.randint(0, 2, (2, site.width), generator=gen) * 2 - 1).to(F64)
            scales[i][:, 0] = -1
    flipped = BlockGauge(spec, g.perms, scales)
    assert flipped.is_symmetry() and function_change(bw, flipped.apply(bw), x, eps=None) <= EXACT
    scaled = BlockGauge.sample(spec, 2, gen)  # positive rescalings: exact only for eps = 0
    assert function_change(bw, scaled.apply(bw), x, eps=0.0) <= EXACT
    assert function_change(bw, scaled.apply(bw), x, eps=None) > 1e-8


# ---------------------------------------------------------------- non-symmetries
APPLICABLE = {
    "layernorm_neuron_scale": [1, 2, 3],
    "unshared_stream_scale": [0, 1, 2, 4, 5],
    "batchnorm_sign_without_gamma": [1, 2, 3, 4],
    "shortcut_edge_rescaled": [0, 1, 2, 3, 4, 5],
}


@pytest.mark.parametrize("kind", NON_SYMMETRY_KINDS)
@pytest.mark.parametrize("act", ["relu", "tanh", "identity"])
def test_non_symmetries_change_the_function(kind, act):
    for i in APPLICABLE[kind]:
        spec, gen, bw, x = _setup(TEMPLATES[i].format(a=act), seed=i)
        ns = sample_non_symmetry(bw, kind, gen)
        assert function_change(bw, ns, x) > CLEAR, (kind, spec.to_text())


def test_strict_apply_rejects_non_symmetries():
    spec, gen, bw, x = _setup(TEMPLATES[2].format(a="relu"))
    g = BlockGauge.sample(spec, 2, gen)
    sites = g.plan.sites
    ln = next(i for i, s in enumerate(sites) if s.scaling is ScaleKind.COMMON)
    scales = list(g.scales)
    scales[ln] = scales[ln] * torch.linspace(0.5, 2.0, sites[ln].width, dtype=F64)
    with pytest.raises(NotASymmetryError, match="one common q"):
        BlockGauge(spec, g.perms, scales).apply(bw)
    perms = list(g.perms)
    perms[ln] = perms[ln].flip(1)
    with pytest.raises(NotASymmetryError, match="permuted like its output"):
        BlockGauge(spec, perms, g.scales).validate()
    out = next(i for i, s in enumerate(sites) if s.role == "output")
    scales = list(g.scales)
    scales[out] = 2 * scales[out]
    with pytest.raises(NotASymmetryError, match="the identity"):
        BlockGauge(spec, g.perms, scales).validate()
    tanh_spec = BlockNetworkSpec.from_text("mlp 3-4-2 tanh")
    g = BlockGauge.identity(tanh_spec)
    with pytest.raises(NotASymmetryError, match=r"q = \+-1"):
        BlockGauge(tanh_spec, g.perms, [2 * s if site.role == "hidden" else s
                                        for site, s in zip(g.plan.sites, g.scales)]).validate()
    with pytest.raises(ValueError, match="has no LayerNorm"):
        sample_non_symmetry(BlockWeights.randn(tanh_spec, 1), "layernorm_neuron_scale")
    with pytest.raises(ValueError, match="unknown non-symmetry kind"):
        sample_non_symmetry(bw, "mirror")
    with pytest.raises(ValueError, match="gauge element is for"):
        BlockGauge.identity(tanh_spec).apply(bw)


def test_a_stream_needs_one_scaling_for_all_depths():
    """The design trap: an unshared stream element is the plain twin's symmetry, and the residual network's only if
    the constant shortcut edge could carry the ratio ``q_after / q_before``."""
    spec, gen, bw, x = _setup(TEMPLATES[0].format(a="relu"))
    shared = BlockGauge.sample(spec, 2, gen).split()
    assert shared.is_symmetry() and all(bool((f == 1).all()) for f in shared.shortcut_edge_factors())
    assert function_change(bw, shared.apply(bw), x) <= EXACT
    scales = list(shared.scales)
    target = shared.plan.shortcuts[1].target
    scales[target] = scales[target] * torch.linspace(0.5, 3.0, scales[target].shape[1], dtype=F64)
    unshared = BlockGauge(spec, shared.perms, scales, split_streams=True)
    with pytest.raises(NotASymmetryError, match="constant edge of weight 1"):
        unshared.validate()
    moved = unshared.apply(bw, strict=False)
    assert function_change(bw, moved, x) > CLEAR
    factors = unshared.shortcut_edge_factors()
    assert (moved(x, eps=0.0, shortcut_weights=factors) - bw(x, eps=0.0)).abs().max() <= EXACT
    twin = [0.0] * len(factors)  # without shortcuts every depth is free
    plain = BlockGauge.sample(spec, 2, gen, split_streams=True)
    assert not plain.is_symmetry()
    assert (plain.apply(bw, strict=False)(x, shortcut_weights=twin) - bw(x, shortcut_weights=twin)).abs().max() \
        <= EXACT


# ---------------------------------------------------------------- agreement with symbolic.residual
@pytest.mark.parametrize("kind", ["batchnorm", "layernorm"])
def test_action_agrees_with_the_symbolic_reference(kind):
    gen = torch.Generator().manual_seed(7)
    net = random_norm_net(kind, 3, 5, 2, gen)
    spec = BlockNetworkSpec.from_text(f"mlp 3-5{'bn' if kind == 'batchnorm' else 'ln'}-2 relu eps=0")
    stats = [net.running_mean, net.running_var] if kind == "batchnorm" else []
    bw = BlockWeights(spec, [t[None] for t in [net.weight, net.bias, net.gamma, net.beta, *stats, net.head_weight,
                                               net.head_bias]])

    def gauge(site_role, perm=None, scale=None):
        g = BlockGauge.identity(spec)
        i = next(i for i, s in enumerate(g.plan.sites) if s.role == site_role)
        perms, scales = list(g.perms), list(g.scales)
        if perm is not None:  # the norm's input follows its output's permutation
            perms = [perm[None] if s.perm_site == i else q for s, q in zip(g.plan.sites, perms)]
        if scale is not None:
            scales[i] = scale.expand(5)[None]
        return BlockGauge(spec, perms, scales)

    def flat(n):
        stats = [n.running_mean, n.running_var] if kind == "batchnorm" else []
        return BlockWeights(spec, [t[None] for t in [n.weight, n.bias, n.gamma, n.beta, *stats, n.head_weight,
                                                     n.head_bias]])

    d = torch.tensor(1.7, dtype=F64) if kind == "layernorm" else torch.rand(5, generator=gen, dtype=F64) + 0.5
    q = torch.rand(5, generator=gen, dtype=F64) + 0.5
    p = torch.randperm(5, generator=gen)
    assert gauge(kind, scale=d).apply(bw).max_abs_diff(flat(prenorm_scaling(net, d))) <= 1e-14
    assert gauge("hidden", scale=q).apply(bw).max_abs_diff(flat(neuron_scaling(net, q))) <= 1e-14
    assert gauge("hidden", perm=p).apply(bw).max_abs_diff(flat(permute_features(net, p))) == 0
