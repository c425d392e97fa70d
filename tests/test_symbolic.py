"""Symbolic derivations: activation scalings, the gauge action on symbolic MLPs, conv gauge dims."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from scalegmn_lite import GaugeElement, NetworkSpec, Symmetry, WeightSpace, symmetry_of
from scalegmn_lite.symbolic.activations import ReLU, derive_scalings, implied_symmetry
from scalegmn_lite.symbolic.conv import (
    check_conv_scaling_numerically,
    conv1d_index,
    conv2d_index,
    is_convolution,
    layer_scaling_dims,
    network_index,
    network_scaling_dims,
    symbolic_kernel,
    toeplitz_matrix,
    unrolled_matrix,
)
from scalegmn_lite.symbolic.latex import scalings_table_latex
from scalegmn_lite.symbolic.mlp import apply_gauge, check_gauge_invariance, sample_symbolic_gauge, symbolic_mlp
from scalegmn_lite.weightspace.spec import ACTIVATIONS

EXPECTED = {
    Symmetry.POSITIVE_SCALE: sp.Interval.open(0, sp.oo),
    Symmetry.SIGN: sp.FiniteSet(-1, 1),
    Symmetry.PERMUTATION: sp.FiniteSet(1),
}


# ---------------------------------------------------------------- (a) activations
@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_derived_symmetry_equals_spec(name):
    sol = derive_scalings(name)
    assert sol.symmetry is symmetry_of(name)
    assert sol.matches_spec
    if name == "identity":  # q -> qx commutes with every q != 0
        assert sol.solutions == sp.Union(sp.Interval.open(-sp.oo, 0), sp.Interval.open(0, sp.oo))
    else:
        assert sol.solutions == EXPECTED[sol.symmetry]
    assert r"\iff q \in" in sol.latex


def test_derivation_depends_on_the_activation_parameter():
    # a LeakyReLU with slope 1 is the identity: negative scalings commute too
    assert sp.Interval.open(-sp.oo, 0).is_subset(derive_scalings("leaky_relu", param=1.0).solutions)
    assert derive_scalings("leaky_relu", param=0.2).solutions == sp.Interval.open(0, sp.oo)
    assert derive_scalings("sine", param=1.0).solutions == sp.FiniteSet(-1, 1)


def test_implied_symmetry_rejects_other_sets():
    with pytest.raises(ValueError):
        implied_symmetry(sp.FiniteSet(1, 2))


def test_relu_pulls_positive_factors_out():
    z = sp.Symbol("z", real=True)
    q = sp.Symbol("q", positive=True)
    assert ReLU(q * z) == q * ReLU(z)
    assert ReLU(sp.Integer(-3)) == 0 and ReLU(sp.Rational(5, 2)) == sp.Rational(5, 2)
    assert ReLU(-q * z) != q * ReLU(z)


def test_latex_table_has_one_row_per_activation():
    tex = scalings_table_latex({n: derive_scalings(n) for n in ("relu", "tanh", "sigmoid")})
    assert tex.count(r"\\") == 4 and r"\left\{-1, 1\right\}" in tex


# ---------------------------------------------------------------- (b) symbolic MLP
@pytest.mark.parametrize("act", ["relu", "leaky_relu", "tanh", "sine", "sigmoid", "silu"])
def test_symbolic_mlp_invariance(act):
    check = check_gauge_invariance(f"mlp 3-3-3-2 {act}", seed=1)
    assert check.is_zero and check.numeric_max_abs == 0.0


@pytest.mark.parametrize("act", ["relu", "tanh", "sigmoid"])
def test_symbolic_negative_controls_are_detected(act):
    spec = NetworkSpec.from_text(f"mlp 3-3-3-2 {act}")
    perms, scales = sample_symbolic_gauge(spec, seed=1)
    q = 2 if symmetry_of(act) is Symmetry.SIGN else -1
    wrong = [[sp.Integer(q), *s[1:]] for s in scales]
    bad = check_gauge_invariance(spec, perms, wrong)
    assert not bad.is_zero and bad.numeric_max_abs > 1e-3
    unc = check_gauge_invariance(spec, perms, scales, uncoupled=True)
    assert not unc.is_zero and unc.numeric_max_abs > 1e-3


def test_negative_scaling_is_a_symmetry_of_the_identity_activation():
    spec = NetworkSpec.from_text("mlp 2-3-2 identity")
    assert check_gauge_invariance(spec, [[2, 0, 1]], [[-1, sp.Rational(1, 3), -5]]).is_zero


def test_symbolic_action_equals_library_action():
    spec = NetworkSpec.from_text("mlp 3-4-3-2 relu")
    gen = torch.Generator().manual_seed(0)
    ws = WeightSpace.randn(spec, 1, generator=gen, dtype=torch.float64)
    g = GaugeElement.sample(spec, 1, generator=gen, dtype=torch.float64)
    net = symbolic_mlp(spec)
    perms = [p[0].tolist() for p in g.perms]
    scales = [[sp.Float(v, 30) for v in s[0].tolist()] for s in g.scales]
    new = apply_gauge(net, perms, scales)
    values = {}
    for m, t in zip((*net.weights, *net.biases), (*ws.weights, *ws.biases)):
        arr = t[0].reshape(m.shape).tolist()
        for i in range(m.rows):
            for j in range(m.cols):
                values[m[i, j]] = arr[i][j]
    lib = g.apply(ws)
    for m, t in zip((*new.weights, *new.biases), (*lib.weights, *lib.biases)):
        got = np.array(m.xreplace(values).evalf(), dtype=np.float64).reshape(t[0].shape)
        np.testing.assert_allclose(got, t[0].numpy(), rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- (c) convolutions
def test_toeplitz_matrix_by_hand():
    k = symbolic_kernel(1, 1, 2)
    a, b = k[0, 0, 0], k[0, 0, 1]
    assert toeplitz_matrix(k, 4) == sp.Matrix([[a, b, 0, 0], [0, a, b, 0], [0, 0, a, b]])
    M2 = toeplitz_matrix(symbolic_kernel(1, 1, 2, 2), (3, 3))
    assert M2.shape == (4, 9) and len(M2.free_symbols) == 4


@settings(max_examples=15, deadline=None)
@given(c_out=st.integers(1, 3), c_in=st.integers(1, 3), k=st.integers(1, 4), extra=st.integers(0, 4),
       stride=st.integers(1, 2), padding=st.integers(0, 1), two_d=st.booleans())
def test_unrolled_matrix_is_the_convolution(c_out, c_in, k, extra, stride, padding, two_d):
    gen = torch.Generator().manual_seed(0)
    n = k + extra
    if two_d:
        w = torch.randn(c_out, c_in, k, k, generator=gen, dtype=torch.float64)
        x = torch.randn(2, c_in, n, n, generator=gen, dtype=torch.float64)
        index = conv2d_index(c_out, c_in, (k, k), (n, n), stride, padding)
        y = F.conv2d(x, w, stride=stride, padding=padding)
    else:
        w = torch.randn(c_out, c_in, k, generator=gen, dtype=torch.float64)
        x = torch.randn(2, c_in, n, generator=gen, dtype=torch.float64)
        index = conv1d_index(c_out, c_in, k, n, stride, padding)
        y = F.conv1d(x, w, stride=stride, padding=padding)
    M = unrolled_matrix(w, index)
    torch.testing.assert_close(x.reshape(2, -1) @ M.T, y.reshape(2, -1), rtol=1e-12, atol=1e-12)
    assert is_convolution(M, index)


def test_conv_dims_hand_checked():
    # one layer D_out M D_in^{-1}, conv1d 1->1, n=4, k=2: u_p = v_p + a, v_p = v_0 + p(a - b): 3 parameters
    d = layer_scaling_dims(1, 1, 2, 4)
    assert (d.dim_cnn, d.dim_mlp) == (3, 7) and d.strictly_smaller
    assert layer_scaling_dims(1, 1, 2, 4, exact=True).dim_cnn == 3
    # network 1 -> 1 -> 1 -> dense: hidden conv layers with 3 and 2 positions
    net = network_scaling_dims("conv1d 1-1-1/2 k2 relu 1x4", exact=True)
    assert (net.dim_cnn, net.dim_mlp) == (2, 5) and not net.degenerate
    assert network_scaling_dims("conv1d 1-1-1/2 k2 relu 1x4") == net


def test_degenerate_conv_equals_dense():
    d = network_scaling_dims("conv1d 2-4/3 k4 relu 2x4")
    assert d.degenerate and d.dim_cnn == d.dim_mlp == 4
    assert network_scaling_dims("mlp 3-5-2 relu").dim_cnn == 5


@settings(max_examples=12, deadline=None)
@given(chans=st.lists(st.integers(1, 4), min_size=2, max_size=4), k=st.integers(1, 3),
       extra=st.integers(0, 4), two_d=st.booleans(), padding=st.integers(0, 1))
def test_conv_gauge_is_one_factor_per_channel(chans, k, extra, two_d, padding):
    family = "conv2d" if two_d else "conv1d"
    n = k + extra + len(chans) * (k - 1)
    shape = f"{chans[0]}x{n}" + (f"x{n}" if two_d else "")
    spec = NetworkSpec.from_text(f"{family} {'-'.join(map(str, chans))}/2 k{k} p{padding} relu {shape}")
    d = network_scaling_dims(spec)
    _, _, pos = network_index(spec)
    assert d.dim_cnn == sum(spec.hidden_widths)
    assert d.dim_mlp == sum(w * p for w, p in zip(spec.hidden_widths, pos[:-1]))
    assert d.strictly_smaller or d.degenerate
    assert network_scaling_dims(spec, bias=True).dim_cnn == d.dim_cnn


def test_torch_conv_per_channel_vs_per_position_scaling():
    r = check_conv_scaling_numerically(3, 2, 3, 8, stride=2, padding=1, generator=torch.Generator().manual_seed(0))
    assert r["unrolled_matches_conv"] < 1e-12 and r["per_channel_matches_kernel"] < 1e-12
    assert r["per_channel_is_conv"] and not r["per_position_is_conv"]
    one = check_conv_scaling_numerically(2, 2, 8, 8, generator=torch.Generator().manual_seed(0))
    assert one["per_position_is_conv"]  # one position: per position == per channel
