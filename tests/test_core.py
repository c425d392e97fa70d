"""Core properties over random architectures: the gauge action preserves the function, non-symmetries
do not, group laws hold, conversions round-trip, and bad input fails with a clear error."""

from __future__ import annotations

import random

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from scalegmn_lite import (
    ACTIVATIONS,
    GaugeElement,
    NetworkSpec,
    NonFiniteWeightsError,
    NotASymmetryError,
    Sine,
    SpecError,
    Symmetry,
    WeightSpace,
    sample_non_symmetry,
)
from scalegmn_lite.testing import random_spec, specs

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _inputs(spec: NetworkSpec, n: int, seed: int, dtype=torch.float64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, *spec.input_shape, generator=g, dtype=dtype)


def _rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / (b.abs().max() + 1e-12))


def _networks(spec: NetworkSpec, seed: int, B: int = 3) -> WeightSpace:
    # sines with w0 = 30 on N(0, 1/fan_in) weights are chaotic; SIREN-style init keeps them tame
    ws = WeightSpace.randn(spec, B, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    if any(layer.activation == "sine" for layer in spec.layers):
        ws = ws * (1.0 / 30.0)
    return ws


# ---------------------------------------------------------------------------------- the gauge action
@SETTINGS
@given(spec=specs(), seed=st.integers(0, 10_000))
def test_gauge_action_preserves_function(spec, seed):
    ws = _networks(spec, seed)
    g = GaugeElement.sample(spec, ws.batch_size, generator=torch.Generator().manual_seed(seed + 1),
                            dtype=torch.float64)
    x = _inputs(spec, 16, seed)
    out, out_g = ws(x), g.apply(ws)(x)
    assert out.shape == (ws.batch_size, 16, spec.widths[-1])
    assert _rel_err(out_g, out) < 1e-9


@SETTINGS
@given(spec=specs(), seed=st.integers(0, 10_000))
def test_gauge_action_changes_weights(spec, seed):
    """The check above is not vacuous: the transformed weights differ from the originals."""
    if max(spec.hidden_widths, default=0) < 2 and all(s is Symmetry.PERMUTATION for s in spec.symmetries):
        return  # nothing to permute or scale: the group is trivial
    ws = _networks(spec, seed)
    g = GaugeElement.sample(spec, ws.batch_size, generator=torch.Generator().manual_seed(seed + 1),
                            dtype=torch.float64)
    if g.equals(GaugeElement.identity(spec, ws.batch_size, dtype=torch.float64)):
        return  # a random element can be the identity for tiny groups
    assert ws.max_abs_diff(g.apply(ws)) > 0


@pytest.mark.parametrize("kind", ["uncoupled_permutation", "mismatched_scaling", "wrong_scaling"])
@pytest.mark.parametrize("family", ["mlp", "siren", "conv1d", "conv2d"])
def test_non_symmetries_change_function(kind, family):
    rng = random.Random(f"{kind}-{family}")
    acts = ["sine"] if family == "siren" else [a for a in ACTIVATIONS if a != "identity" or kind != "wrong_scaling"]
    for trial in range(6):
        act = rng.choice(acts)
        spec = random_spec(rng, family=family, activation=act, max_width=8)
        if min(spec.hidden_widths) < 2:
            continue
        ws = _networks(spec, trial)
        bad = sample_non_symmetry(ws, kind, generator=torch.Generator().manual_seed(trial))
        x = _inputs(spec, 64, trial)
        err = _rel_err(bad(x), ws(x))
        assert err > 1e-4, f"{kind} did not change {spec.to_text()} (relative change {err:.2e})"


def test_identity_activation_is_positive_scaling_only_in_spec():
    """A purely linear hidden layer has an even larger group (any invertible map); our spec declares
    positive scaling, a subgroup, so every sampled element must still preserve the function."""
    spec = NetworkSpec.from_text("mlp 5-4-3 identity")
    assert spec.symmetries == (Symmetry.POSITIVE_SCALE,)


@pytest.mark.parametrize("act,sym", sorted(ACTIVATIONS.items()))
def test_strict_apply_rejects_wrong_scaling(act, sym):
    spec = NetworkSpec.from_text(f"mlp 3-4-2 {act}")
    ident = GaugeElement.identity(spec, 1)
    q = {Symmetry.POSITIVE_SCALE: -1.0, Symmetry.SIGN: 2.0, Symmetry.PERMUTATION: -1.0}[sym]
    bad = GaugeElement(spec, ident.perms, [torch.full((1, 4), q)])
    assert not bad.is_symmetry()
    with pytest.raises(NotASymmetryError, match="admits only"):
        bad.apply(WeightSpace.randn(spec, 1))


# ---------------------------------------------------------------------------------- group laws
@SETTINGS
@given(spec=specs(), seed=st.integers(0, 10_000))
def test_group_laws(spec, seed):
    gen = torch.Generator().manual_seed(seed)
    ws = _networks(spec, seed)
    B = ws.batch_size
    g1, g2, g3 = (GaugeElement.sample(spec, B, generator=gen, dtype=torch.float64) for _ in range(3))
    e = GaugeElement.identity(spec, B, dtype=torch.float64)
    assert (g2 @ g1).apply(ws).allclose(g2.apply(g1.apply(ws)), rtol=1e-10, atol=1e-12)
    assert ((g3 @ g2) @ g1).equals(g3 @ (g2 @ g1), atol=1e-12)
    assert (g1 @ g1.inverse()).equals(e, atol=1e-12) and (g1.inverse() @ g1).equals(e, atol=1e-12)
    assert g1.inverse().apply(g1.apply(ws)).allclose(ws, rtol=1e-10, atol=1e-12)
    assert e.apply(ws).max_abs_diff(ws) == 0


def test_sample_is_seeded():
    spec = NetworkSpec.from_text("mlp 4-6-6-2 relu")
    a = GaugeElement.sample(spec, 4, generator=torch.Generator().manual_seed(3))
    b = GaugeElement.sample(spec, 4, generator=torch.Generator().manual_seed(3))
    c = GaugeElement.sample(spec, 4, generator=torch.Generator().manual_seed(4))
    assert a.equals(b) and not a.equals(c)


def test_transform_hidden_matches_weight_action():
    """Activations of the transformed network are the transformed activations of the original."""
    spec = NetworkSpec.from_text("mlp 3-5-2 tanh")
    ws = _networks(spec, 0, B=2)
    g = GaugeElement.sample(spec, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x = _inputs(spec, 7, 0)
    h = torch.tanh(torch.einsum("boi,ni->bno", ws.weights[0], x) + ws.biases[0][:, None])
    gws = g.apply(ws)
    h_g = torch.tanh(torch.einsum("boi,ni->bno", gws.weights[0], x) + gws.biases[0][:, None])
    assert torch.allclose(g.transform_hidden(1, h), h_g, atol=1e-12)


# ---------------------------------------------------------------------------------- conversions
@SETTINGS
@given(spec=specs(), seed=st.integers(0, 10_000))
def test_module_round_trip_and_batched_forward(spec, seed):
    torch.manual_seed(seed)
    modules = [spec.build_module().double() for _ in range(3)]
    ws = WeightSpace.from_modules(modules, spec)
    assert NetworkSpec.from_sequential(modules[0], spec.input_shape).layers == spec.layers
    x = _inputs(spec, 5, seed)
    batched = ws(x)
    for i, m in enumerate(modules):
        with torch.no_grad():
            assert torch.allclose(batched[i], m(x), atol=1e-10)
        back = WeightSpace.from_module(ws.to_module(i), spec.input_shape)
        assert back.max_abs_diff(ws[i]) == 0


@SETTINGS
@given(spec=specs(), seed=st.integers(0, 10_000))
def test_flatten_stack_index_round_trips(spec, seed):
    ws = _networks(spec, seed, B=4)
    flat = ws.flatten()
    assert flat.shape == (4, spec.num_params)
    assert WeightSpace.unflatten(spec, flat).max_abs_diff(ws) == 0
    assert WeightSpace.stack([ws[i] for i in range(4)]).max_abs_diff(ws) == 0
    assert ws[1:3].batch_size == 2 and ws[2].batch_size == 1


def test_text_round_trip():
    for text in ["mlp 64-32-10 relu", "siren 2-32-32-1", "conv1d 1-8-8/10 k3 tanh 1x40",
                 "conv2d 1-8-16/32-10 k3 p1 relu 1x8x8", "mlp 4-4-2 leaky_relu a=0.2", "mlp 3-2 identity"]:
        spec = NetworkSpec.from_text(text)
        assert NetworkSpec.from_text(spec.to_text()) == spec


def test_symmetry_per_activation_from_one_table():
    assert NetworkSpec.from_text("mlp 3-4-4-2 relu").symmetries == (Symmetry.POSITIVE_SCALE,) * 2
    assert NetworkSpec.from_text("mlp 3-4-2 tanh").symmetries == (Symmetry.SIGN,)
    assert NetworkSpec.from_text("siren 2-8-1").symmetries == (Symmetry.SIGN,)
    for act in ("sigmoid", "gelu", "silu"):
        assert NetworkSpec.from_text(f"mlp 3-4-2 {act}").symmetries == (Symmetry.PERMUTATION,)
    model = nn.Sequential(nn.Conv1d(1, 4, 3), nn.LeakyReLU(0.1), nn.AdaptiveAvgPool1d(1), nn.Flatten(),
                          nn.Dropout(0.1), nn.Linear(4, 3), nn.Identity())
    spec = NetworkSpec.from_sequential(model, (1, 12))
    assert spec.symmetries == (Symmetry.POSITIVE_SCALE,) and spec.layers[0].activation_param == pytest.approx(0.1)
    siren = nn.Sequential(nn.Linear(2, 8), Sine(30.0), nn.Linear(8, 1))
    assert NetworkSpec.from_sequential(siren).symmetries == (Symmetry.SIGN,)


# ---------------------------------------------------------------------------------- clear errors
@pytest.mark.parametrize("bad,name", [
    (nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2)), "BatchNorm1d"),
    (nn.Sequential(nn.Linear(4, 4), nn.MultiheadAttention(4, 1)), "MultiheadAttention"),
    (nn.Sequential(nn.Linear(4, 4), nn.Softplus(), nn.Linear(4, 2)), "Softplus"),
])
def test_unsupported_module_is_named(bad, name):
    with pytest.raises(SpecError) as err:
        NetworkSpec.from_sequential(bad)
    assert name in str(err.value) and "Linear" in str(err.value)  # names it and lists what is supported


def test_residual_blocks_are_rejected():
    class Residual(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(4, 4)

        def forward(self, x):
            return x + self.lin(x)

    with pytest.raises(SpecError, match="Residual"):
        NetworkSpec.from_sequential(nn.Sequential(nn.Linear(4, 4), Residual(), nn.Linear(4, 2)))


def test_mismatched_shapes_are_explained():
    with pytest.raises(SpecError, match="mismatched shapes"):
        NetworkSpec.from_sequential(nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(6, 2)))
    with pytest.raises(SpecError, match="cannot parse"):
        NetworkSpec.from_text("mlp 4-x-2 relu")
    with pytest.raises(SpecError, match="names no activation"):
        NetworkSpec.from_text("mlp 4-3-2")
    spec = NetworkSpec.from_text("mlp 4-3-2 relu")
    with pytest.raises((ValueError, SpecError)):
        WeightSpace(spec, [torch.zeros(1, 3, 5), torch.zeros(1, 2, 3)], [torch.zeros(1, 3), torch.zeros(1, 2)])


def test_non_finite_weights_are_reported():
    spec = NetworkSpec.from_text("mlp 4-3-2 relu")
    ws = WeightSpace.randn(spec, 2)
    w = list(ws.weights)
    w[1] = w[1].clone()
    w[1][1, 0, 0] = float("nan")
    bad = ws.replace_params(weights=w)
    with pytest.raises(NonFiniteWeightsError, match=r"networks \[1\]"):
        bad.check_finite()
    with pytest.raises(NonFiniteWeightsError):
        bad(torch.randn(3, 4), check=True)


def test_gauge_element_for_other_architecture_is_rejected():
    g = GaugeElement.identity(NetworkSpec.from_text("mlp 4-3-2 relu"))
    with pytest.raises(ValueError, match="gauge element is for"):
        g.apply(WeightSpace.randn(NetworkSpec.from_text("mlp 4-5-2 relu"), 1))
