"""Beyond MLP and CNN (symbolic.residual): residual ReLU MLPs, BatchNorm and LayerNorm gauges, float64 and sympy."""

from __future__ import annotations

import random

import numpy as np
import pytest
import sympy as sp
import torch
import torch.nn.functional as F

from scalegmn_lite.symbolic.residual import (
    BN_CASES,
    LN_CASES,
    NormNet,
    ResidualSizes,
    apply_residual_gauge,
    batchnorm,
    check_norm_symbolic,
    check_residual_params,
    check_residual_symbolic,
    eps_invariance_error,
    flip_inner_sign,
    gauge_dims_summary,
    init_residual_params,
    layernorm,
    layernorm_counterexample,
    layernorm_scaling_derivation,
    layernorm_shift,
    log_scales_to_gauge,
    neuron_scaling,
    neuron_sign_flip,
    norm_forward,
    nullity,
    permute_features,
    plain_dim_formula,
    prenorm_scaling,
    prenorm_sign_flip,
    random_norm_net,
    residual_dim_formula,
    residual_forward,
    residual_invariance_error,
    residual_scaling_basis,
    residual_scaling_constraints,
    residual_scaling_dims,
    sample_residual_gauge,
)

EXACT = 1e-10  # float64 preservation
CLEAR = 1e-2  # a non-symmetry changes the O(1) outputs by at least this much
SIZES = [
    ResidualSizes(3, 4, (5, 2, 3), 2),
    ResidualSizes(3, 4, (5, 2, 3), 2, post_relu=True),
    ResidualSizes(2, 1, (3,), 1),  # n = 1 block, d_s = 1
    ResidualSizes(2, 1, (3,), 1, post_relu=True),
    ResidualSizes(1, 3, (1, 1), 2),
]


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _change(sizes, ws, bs, ws2, bs2, x, shortcut=True) -> float:
    return float((residual_forward(sizes, ws2, bs2, x, shortcut) - residual_forward(sizes, ws, bs, x, shortcut))
                 .abs().max())


# ---------------------------------------------------------------- residual: float64
@pytest.mark.parametrize("sizes", SIZES, ids=lambda s: s.to_text())
@pytest.mark.parametrize("seed", [0, 1])
def test_residual_gauge_preserves_function(sizes, seed):
    gen = _gen(seed)
    gauge = sample_residual_gauge(sizes, gen, log_std=1.0)
    assert gauge.shared
    assert residual_invariance_error(sizes, gauge, seed=seed) <= EXACT
    assert residual_invariance_error(sizes, seed=seed + 10) <= EXACT


@pytest.mark.parametrize("sizes", SIZES, ids=lambda s: s.to_text())
def test_unshared_stream_element_breaks_residual_but_not_plain_twin(sizes):
    gen = _gen(3)
    ws, bs = init_residual_params(sizes, gen)
    x = torch.randn(128, sizes.d_in, generator=gen, dtype=torch.float64)
    for permute in (False, True):
        gauge = sample_residual_gauge(sizes, gen, shared=False, permute=permute, log_std=1.0)
        assert not gauge.shared
        ws2, bs2 = apply_residual_gauge(sizes, ws, bs, gauge)
        assert _change(sizes, ws, bs, ws2, bs2, x) > CLEAR  # the shortcut's fixed weight 1 is violated
        assert _change(sizes, ws, bs, ws2, bs2, x, shortcut=False) <= EXACT  # positive control: plain twin


@pytest.mark.parametrize("sizes", SIZES, ids=lambda s: s.to_text())
def test_inner_sign_flip_is_not_a_symmetry(sizes):
    gen = _gen(4)
    ws, bs = init_residual_params(sizes, gen)
    x = torch.randn(128, sizes.d_in, generator=gen, dtype=torch.float64)
    ws2, bs2 = flip_inner_sign(sizes, ws, bs, block=1, unit=0)
    assert _change(sizes, ws, bs, ws2, bs2, x) > CLEAR


@pytest.mark.parametrize("sizes", SIZES, ids=lambda s: s.to_text())
def test_constraint_nullspace_is_exactly_the_symmetric_scalings(sizes):
    gen = _gen(5)
    rng = np.random.default_rng(5)
    ws, bs = init_residual_params(sizes, gen)
    x = torch.randn(128, sizes.d_in, generator=gen, dtype=torch.float64)
    B = residual_scaling_basis(sizes)
    A = residual_scaling_constraints(sizes)
    assert B.shape[1] == residual_dim_formula(sizes.d_s, sizes.hidden)
    assert not (A @ B).any()
    u_in = B @ rng.normal(size=B.shape[1])
    g_in = log_scales_to_gauge(sizes, u_in)
    assert _change(sizes, ws, bs, *apply_residual_gauge(sizes, ws, bs, g_in), x) <= EXACT
    u_out = u_in + rng.normal(size=B.shape[0])  # generic: A u != 0
    assert np.abs(A @ u_out).max() > 0.1
    ws2, bs2 = apply_residual_gauge(sizes, ws, bs, log_scales_to_gauge(sizes, u_out))
    assert _change(sizes, ws, bs, ws2, bs2, x) > CLEAR
    assert _change(sizes, ws, bs, ws2, bs2, x, shortcut=False) <= EXACT


def test_dims_closed_forms_equal_nullities_random_sizes():
    rng = random.Random(0)
    cases = [ResidualSizes(1, 1, (1,), 1), ResidualSizes(2, 1, (4,), 1), ResidualSizes(2, 3, (2,), 1)]
    cases += [ResidualSizes(rng.randint(1, 4), rng.randint(1, 5), tuple(rng.randint(1, 6) for _ in range(n)),
                            rng.randint(1, 3), post_relu=rng.random() < 0.5) for n in (1, 1, 2, 3, 4, 6)]
    for sizes in cases:
        for exact in (False, True):
            dims = residual_scaling_dims(sizes, exact=exact)
            assert dims.dim_residual == sum(sizes.hidden) + sizes.d_s
            assert dims.dim_plain == sum(sizes.hidden) + (sizes.n_blocks + 1) * sizes.d_s
            assert dims.matches_formula and dims.strictly_smaller and dims.theorem_holds
            assert dims.dim_plain - dims.dim_residual == sizes.n_blocks * sizes.d_s
    no_block = residual_scaling_dims(ResidualSizes(2, 3, (), 1))
    assert no_block.dim_residual == no_block.dim_plain == 3 and no_block.theorem_holds
    assert plain_dim_formula(2, (3, 4)) == 13 and residual_dim_formula(2, (3, 4)) == 9
    assert nullity(np.zeros((0, 4), dtype=int)) == 4


# ---------------------------------------------------------------- residual: sympy
@pytest.mark.parametrize("sizes", [ResidualSizes(2, 2, (2, 1), 1), ResidualSizes(2, 2, (2, 1), 1, post_relu=True),
                                   ResidualSizes(1, 1, (2,), 1)], ids=lambda s: s.to_text())
def test_residual_symbolic(sizes):
    shared = check_residual_symbolic(sizes, seed=1)
    assert shared.preserved
    unshared = check_residual_symbolic(sizes, shared=False, seed=1)
    assert not unshared.preserved and unshared.numeric_max_abs > CLEAR
    assert check_residual_symbolic(sizes, shared=False, shortcut=False, seed=1).preserved  # plain twin
    flip = check_residual_symbolic(sizes, sign_flip=True, seed=1)
    assert not flip.preserved and flip.numeric_max_abs > CLEAR


# ---------------------------------------------------------------- BatchNorm / LayerNorm: float64
def _norm_setup(kind, seed=0, width=6):
    gen = _gen(seed)
    net = random_norm_net(kind, 4, width, 3, gen)
    x = torch.randn(256, 4, generator=gen, dtype=torch.float64)
    return gen, net, x


def _norm_change(net, new, x, eps=0.0, eps_new=None) -> float:
    eps_new = eps if eps_new is None else eps_new
    return float((norm_forward(new, x, eps_new) - norm_forward(net, x, eps)).abs().max())


def test_norm_forward_matches_torch():
    gen, net, x = _norm_setup("batchnorm")
    z = x @ net.weight.T + net.bias
    ref = F.batch_norm(z, net.running_mean, net.running_var, net.gamma, net.beta, training=False, eps=1e-3)
    assert torch.allclose(batchnorm(z, net.running_mean, net.running_var, net.gamma, net.beta, 1e-3), ref,
                          atol=1e-12)
    _, ln, _ = _norm_setup("layernorm")
    z = x @ ln.weight.T + ln.bias
    ref = F.layer_norm(z, (ln.width,), ln.gamma, ln.beta, eps=1e-3)
    assert torch.allclose(layernorm(z, ln.gamma, ln.beta, 1e-3), ref, atol=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_batchnorm_symmetries(seed):
    gen, net, x = _norm_setup("batchnorm", seed)
    w = net.width
    d = torch.exp(torch.randn(w, generator=gen, dtype=torch.float64))
    q = torch.exp(torch.randn(w, generator=gen, dtype=torch.float64))
    perm = torch.randperm(w, generator=gen)
    signs = torch.tensor([-1.0, 1.0] * (w // 2), dtype=torch.float64)
    assert _norm_change(net, prenorm_scaling(net, d), x) <= EXACT  # free per-channel scale
    assert _norm_change(net, neuron_scaling(net, q), x) <= EXACT
    assert _norm_change(net, permute_features(net, perm), x) <= EXACT
    composite = permute_features(neuron_scaling(prenorm_scaling(net, d), q), perm)
    assert _norm_change(net, composite, x) <= EXACT
    # a sign flip of the BN input with gamma -> -gamma is exact, even with eps > 0
    assert _norm_change(net, prenorm_sign_flip(net, signs, flip_gamma=True), x, eps=1e-3) <= EXACT
    # eps -> d^2 eps per channel makes the pre-norm scaling exact
    assert _norm_change(net, prenorm_scaling(net, d), x, eps=1e-3, eps_new=1e-3 * d ** 2) <= EXACT


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_batchnorm_non_symmetries(seed):
    gen, net, x = _norm_setup("batchnorm", seed)
    signs = torch.ones(net.width, dtype=torch.float64)
    signs[0] = -1
    assert _norm_change(net, prenorm_sign_flip(net, signs, flip_gamma=False), x) > CLEAR
    assert _norm_change(net, neuron_sign_flip(net, 0), x) > CLEAR  # q = -1 after BN: the ReLU breaks
    assert _norm_change(net, permute_features(net, torch.roll(torch.arange(net.width), 1), with_affine=False),
                        x) > CLEAR


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_layernorm_symmetries(seed):
    gen, net, x = _norm_setup("layernorm", seed)
    w = net.width
    c = float(torch.exp(torch.randn(1, generator=gen, dtype=torch.float64)))
    q = torch.exp(torch.randn(w, generator=gen, dtype=torch.float64))
    v = torch.randn(4, generator=gen, dtype=torch.float64)
    perm = torch.randperm(w, generator=gen)
    assert _norm_change(net, prenorm_scaling(net, c), x) <= EXACT
    assert _norm_change(net, layernorm_shift(net, v, 0.7), x, eps=1e-3) <= EXACT  # exact for every eps
    assert _norm_change(net, permute_features(net, perm), x, eps=1e-3) <= EXACT
    assert _norm_change(net, neuron_scaling(net, q), x) <= EXACT
    composite = permute_features(neuron_scaling(layernorm_shift(prenorm_scaling(net, c), v, -0.3), q), perm)
    assert _norm_change(net, composite, x) <= EXACT
    assert _norm_change(net, prenorm_scaling(net, c), x, eps=1e-3, eps_new=1e-3 * c ** 2) <= EXACT


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_layernorm_non_symmetries(seed):
    gen, net, x = _norm_setup("layernorm", seed)
    d = torch.exp(torch.randn(net.width, generator=gen, dtype=torch.float64))
    assert _norm_change(net, prenorm_scaling(net, d), x) > CLEAR  # per-neuron scaling
    assert _norm_change(net, permute_features(net, torch.roll(torch.arange(net.width), 1), with_affine=False),
                        x) > CLEAR
    assert _norm_change(net, neuron_sign_flip(net, 0), x) > CLEAR


@pytest.mark.parametrize("kind", ["batchnorm", "layernorm"])
def test_eps_error_measured_and_bounded(kind):
    for eps in (1e-5, 1e-3):
        for scale in (0.1, 0.5, 2.0, 10.0):
            e = eps_invariance_error(kind, eps, scale)
            assert 0 < e.measured <= e.bound
            assert e.scaled_eps <= EXACT  # eps -> d^2 eps: exact
    assert eps_invariance_error(kind, 0.0, 10.0).measured <= EXACT
    assert eps_invariance_error(kind, 1e-3, 1.0).measured == 0.0
    # first order in eps: the deviation grows about linearly with eps
    small, large = eps_invariance_error(kind, 1e-6, 10.0), eps_invariance_error(kind, 1e-4, 10.0)
    assert 50 < large.measured / small.measured < 200


# ---------------------------------------------------------------- BatchNorm / LayerNorm: sympy
@pytest.mark.parametrize("kind,case", [("batchnorm", c) for c in BN_CASES] + [("layernorm", c) for c in LN_CASES])
def test_norm_symbolic_cases(kind, case):
    expected = {"batchnorm": BN_CASES, "layernorm": LN_CASES}[kind][case]
    check = check_norm_symbolic(kind, case, width=3, d_in=2, seed=0)
    assert check.preserved == expected
    if not expected:
        assert check.numeric_max_abs > 1e-3


@pytest.mark.parametrize("n", [2, 3, 4, 5])
def test_layernorm_scaling_dimension_is_one(n):
    der = layernorm_scaling_derivation(n)
    assert der.dim == 1
    assert list(der.basis) == [der.basis[0]] * n and der.basis[0] != 0  # u = multiple of (1, ..., 1)
    diff = layernorm_counterexample(n)
    assert any(e != 0 for e in diff)
    assert max(abs(float(e)) for e in diff) > 0.5


def test_summary_dims():
    s = gauge_dims_summary(4, (5, 2, 3), 4, derive_layernorm=True)
    assert s == {"residual": 14, "plain_twin": 26, "residual_deficit": 12, "batchnorm_free_scales": 4,
                 "layernorm_free_scales": 1, "plain_relu_layer": 4, "batchnorm_layer": 8, "layernorm_layer": 5}
    assert gauge_dims_summary(1, (3,), 2)["residual_deficit"] == 1


# ---------------------------------------------------------------- bad input
def test_bad_input_raises_helpful_errors():
    sizes = ResidualSizes(2, 3, (4, 2), 1)
    ws, bs = init_residual_params(sizes, _gen())
    with pytest.raises(ValueError, match="d_s must be >= 1"):
        ResidualSizes(2, 0, (4,), 1)
    with pytest.raises(ValueError, match="inner width"):
        ResidualSizes(2, 3, (4, 0), 1)
    bad = list(ws)
    bad[3] = torch.zeros(2, 4, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"weights\[3\] \(W1_2\).*expected \(2, 3\)"):
        check_residual_params(sizes, bad, bs)
    with pytest.raises(ValueError, match="init_residual_params"):
        residual_forward(sizes, ws[:-1], bs, torch.zeros(1, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"x must have shape \[batch, 2\]"):
        residual_forward(sizes, ws, bs, torch.zeros(1, 3, dtype=torch.float64))
    g = sample_residual_gauge(sizes, _gen())
    neg = type(g)(g.stream_perms, (-g.stream_scales[0],) * 3, g.inner_perms, g.inner_scales)
    with pytest.raises(ValueError, match="must be finite and > 0.*sign flips"):
        apply_residual_gauge(sizes, ws, bs, neg)
    badp = type(g)((torch.tensor([0, 0, 1]),) * 3, g.stream_scales, g.inner_perms, g.inner_scales)
    with pytest.raises(ValueError, match="permutation of 0..2"):
        apply_residual_gauge(sizes, ws, bs, badp)
    with pytest.raises(ValueError, match="3 stream and 2 inner"):
        apply_residual_gauge(sizes, ws, bs, type(g)(g.stream_perms[:2], g.stream_scales[:2], g.inner_perms,
                                                    g.inner_scales))
    with pytest.raises(ValueError, match="block must be in 1..2"):
        flip_inner_sign(sizes, ws, bs, block=3, unit=0)
    with pytest.raises(ValueError, match="one log-scale per free neuron"):
        log_scales_to_gauge(sizes, [0.0] * 5)

    _, net, x = _norm_setup("batchnorm")
    zero_var = NormNet("batchnorm", net.weight, net.bias, net.gamma, net.beta, net.head_weight, net.head_bias,
                       net.running_mean, torch.zeros_like(net.running_var))
    with pytest.raises(ValueError, match="running_var \\+ eps must be > 0.*pass eps > 0"):
        norm_forward(zero_var, x)
    assert norm_forward(zero_var, x, eps=1e-5).isfinite().all()
    with pytest.raises(ValueError, match="running_var must be >= 0"):
        NormNet("batchnorm", net.weight, net.bias, net.gamma, net.beta, net.head_weight, net.head_bias,
                net.running_mean, -net.running_var)
    with pytest.raises(ValueError, match="needs running_mean and running_var"):
        NormNet("batchnorm", net.weight, net.bias, net.gamma, net.beta, net.head_weight, net.head_bias)
    with pytest.raises(ValueError, match="gamma must have shape"):
        NormNet("batchnorm", net.weight, net.bias, net.gamma[:2], net.beta, net.head_weight, net.head_bias,
                net.running_mean, net.running_var)
    with pytest.raises(ValueError, match="kind must be one of"):
        random_norm_net("groupnorm", 2, 3, 1)
    with pytest.raises(ValueError, match="eps must be >= 0"):
        norm_forward(net, x, eps=-1e-5)
    with pytest.raises(ValueError, match="pre-norm scale d must be finite and > 0"):
        prenorm_scaling(net, -2.0)
    with pytest.raises(ValueError, match=r"shape \(6,\)"):
        prenorm_scaling(net, torch.ones(5, dtype=torch.float64))
    with pytest.raises(ValueError, match="neuron scale q must be finite and > 0"):
        neuron_scaling(net, torch.zeros(6, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"entries of \+-1"):
        prenorm_sign_flip(net, [2.0] * 6)
    with pytest.raises(ValueError, match="layernorm needs width >= 2"):
        random_norm_net("layernorm", 2, 1, 1)
    _, ln, _ = _norm_setup("layernorm")
    with pytest.raises(ValueError, match="prenorm_sign_flip is for batchnorm"):
        prenorm_sign_flip(ln, [1.0] * 6)
    with pytest.raises(ValueError, match="one entry per input"):
        layernorm_shift(ln, torch.zeros(3, dtype=torch.float64), 0.0)
    with pytest.raises(ValueError, match="all features equal"):
        layernorm(torch.ones(2, 6, dtype=torch.float64), ln.gamma, ln.beta)
    with pytest.raises(ValueError, match="unknown \\(kind, case\\)"):
        check_norm_symbolic("layernorm", "input_scale")
    with pytest.raises(ValueError, match="n >= 2"):
        layernorm_scaling_derivation(1)
    with pytest.raises(ValueError, match="need eps >= 0 and scale > 0"):
        eps_invariance_error("batchnorm", 1e-5, 0.0)
    with pytest.raises(ValueError, match="sign_flip needs at least one block"):
        check_residual_symbolic(ResidualSizes(1, 1, (), 1), sign_flip=True)


def test_symbolic_counterexample_is_exact():
    diff = layernorm_counterexample(3)
    assert diff == sp.Matrix([-sp.sqrt(6) / 2, sp.sqrt(6) / 2, 0])


@pytest.mark.parametrize("post_relu", [False, True])
def test_linear_stream_has_a_gl_gauge_unless_post_relu(post_relu):
    # the docstring's caveat: the diagonal count is the ScaleGMN-representable part; a linear stream has GL(d_s)
    sizes = ResidualSizes(3, 4, (5, 2, 3), 2, post_relu=post_relu)
    gen = _gen(6)
    ws, bs = init_residual_params(sizes, gen)
    x = torch.randn(128, sizes.d_in, generator=gen, dtype=torch.float64)
    A = torch.randn(4, 4, generator=gen, dtype=torch.float64) + 2 * torch.eye(4, dtype=torch.float64)
    Ai = torch.linalg.inv(A)
    ws2, bs2 = [A @ ws[0]], [A @ bs[0]]
    for i in range(sizes.n_blocks):
        ws2 += [ws[1 + 2 * i] @ Ai, A @ ws[2 + 2 * i]]
        bs2 += [bs[1 + 2 * i], A @ bs[2 + 2 * i]]
    ws2, bs2 = ws2 + [ws[-1] @ Ai], bs2 + [bs[-1]]
    change = _change(sizes, ws, bs, ws2, bs2, x)
    assert (change > CLEAR) if post_relu else (change <= EXACT)
