"""Networks whose layers differ (activation and its parameter, kernel, stride, padding, pooling or
Flatten): every path that prints, saves, loads or trains a spec works on them, and ScaleGMN keeps
its exact symmetries (issue 11)."""

from __future__ import annotations

import copy
import random

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from scalegmn_lite import GaugeElement, LayerSpec, NetworkSpec, SpecError, WeightSpace, sample_non_symmetry
from scalegmn_lite.nn.checks import check_equivariance, check_invariance, check_sensitivity
from scalegmn_lite.nn.scalegmn import ScaleGMN, ScaleGMNConfig
from scalegmn_lite.tasks.amortized.operator import AmortizedOperator, OperatorTrainConfig, train_operator
from scalegmn_lite.tasks.merging.autoencoder import (
    AutoencoderConfig,
    WeightAutoencoder,
    load_autoencoder,
    save_autoencoder,
)
from scalegmn_lite.testing import heterogeneous_specs, random_spec, specs
from scalegmn_lite.zoo.storage import load_zoo, save_zoo
from scalegmn_lite.zoo.zoo import Zoo

torch.set_num_threads(1)

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=12, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                       HealthCheck.filter_too_much])
# sensitivity of a tiny random ScaleGMN to non-symmetries is small on some networks (relative change
# down to 4.9e-6 in a 56-case sweep, against ~1e-15 for true symmetries): fixed examples, no flakes
FIXED = settings(SLOW, derandomize=True)


def _networks(spec: NetworkSpec, seed: int, B: int = 2, dtype=torch.float64) -> WeightSpace:
    ws = WeightSpace.randn(spec, B, torch.Generator().manual_seed(seed), dtype=dtype)
    if any(layer.activation == "sine" for layer in spec.layers):
        ws = ws * (1.0 / 30.0)  # keep sines out of their chaotic regime
    return ws


def _inputs(spec: NetworkSpec, n: int, seed: int, dtype=torch.float64) -> torch.Tensor:
    return torch.randn(n, *spec.input_shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


# ---------------------------------------------------------------------------------- text form
SHORT = ["mlp 64-32-10 relu", "conv1d 1-8-8/10 k3 tanh 1x40", "conv1d 1-8-8/10 k3 s2 relu 1x40",
         "conv2d 1-8-8/10 k3x3 relu 1x8x8", "conv2d 1-8-16/32-10 k3x3 p1 relu", "mlp 2-32-32-1 sine",
         "mlp 2-16-16-1 sine a=10", "mlp 40-32-32-10 tanh out=relu", "conv1d 2-4/3 k4 relu 2x4"]


@pytest.mark.parametrize("text", SHORT)
def test_uniform_networks_keep_their_short_text(text):
    spec = NetworkSpec.from_text(text)
    assert spec.to_text() == text
    assert NetworkSpec.from_text("siren 2-32-32-1").to_text() == "mlp 2-32-32-1 sine"


@FAST
@given(spec=st.one_of(heterogeneous_specs(), specs()))
def test_text_round_trip_is_exact(spec):
    text = spec.to_text()
    assert NetworkSpec.from_text(text) == spec, text
    assert spec.describe().startswith(text)
    assert text in repr(WeightSpace.zeros(spec, 1))


def test_per_layer_text_examples():
    spec = NetworkSpec.from_text("conv2d 1-6-16/32-10 k5,3 s1,2 p0,1 relu,leaky_relu=0.2,tanh flatten 1x28x28")
    convs = spec.layers[:2]
    assert [c.kernel_size for c in convs] == [(5, 5), (3, 3)] and [c.stride for c in convs] == [1, 2]
    assert [c.padding for c in convs] == [0, 1]
    assert [x.activation for x in spec.layers] == ["relu", "leaky_relu", "tanh", None]
    assert spec.layers[1].activation_param == 0.2
    assert spec.layers[2].flatten_size == 12 * 12  # 28 -5+1 = 24; (24 + 2 - 3) // 2 + 1 = 12
    assert spec.to_text() == "conv2d 1-6-16/32-10 k5x5,3x3 s1,2 p0,1 flatten relu,leaky_relu=0.2,tanh 1x28x28"
    odd = LayerSpec("linear", 3, 4, activation="leaky_relu", activation_param=0.1 + 0.2)  # 0.30000000000000004
    spec = NetworkSpec((odd, LayerSpec("linear", 4, 2)))
    assert NetworkSpec.from_text(spec.to_text()).layers[0].activation_param == 0.1 + 0.2


@pytest.mark.parametrize("text, match", [
    ("mlp 4-8-8-2 relu,tanh,relu", "3 hidden activations for 2 layers"),
    ("conv1d 1-4-4/2 k3,3,3 relu 1x10", "3 kernel sizes for 2 layers"),
    ("mlp 4-8-2 relu a=0.3", "no hidden activation takes a parameter"),
    ("mlp 4-8-2 relu leaky=0.3", "cannot parse token"),
    ("conv1d 1-4/2 k3 relu flatten", "flatten needs the input shape"),
    ("conv1d 1-4/2 k3 relu flatten=7 1x10", "flatten_size=7"),
    ("conv1d 1-4-4 k3 relu flatten 1x10", "flatten needs dense layers"),
    ("conv1d 1-4/2 k9 relu 1x5", "larger than its input"),
])
def test_bad_text_is_a_clear_error(text, match):
    with pytest.raises(SpecError, match=match):
        NetworkSpec.from_text(text)


# ---------------------------------------------------------------------------------- torch.nn and forward
def _rounding_sensitivity(module: torch.nn.Module, x: torch.Tensor, trials: int = 3) -> float:
    """Largest output change of ``module`` (float64) when every parameter is multiplied by
    ``1 + 2^-52 z`` (``z`` standard normal): how much float64 rounding alone can move its outputs."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        ref = module(x)
        worst = 0.0
        for _ in range(trials):
            moved = copy.deepcopy(module)
            for prm in moved.parameters():
                prm.mul_(1 + 2.0 ** -52 * torch.randn(prm.shape, generator=g, dtype=prm.dtype))
            worst = max(worst, float((moved(x) - ref).abs().max()))
    return worst


@FAST
@given(spec=heterogeneous_specs(), seed=st.integers(0, 10_000))
def test_module_round_trip_and_forward(spec, seed):
    torch.manual_seed(seed)
    module = spec.build_module().double()
    assert NetworkSpec.from_sequential(module, spec.input_shape) == spec
    ws = WeightSpace.from_module(module, spec.input_shape)
    x = _inputs(spec, 5, seed)
    with torch.no_grad():
        want = module(x)
        diff = float((ws(x)[0] - want).abs().max())
    # equal up to float64 rounding: deep SIREN chains (several sine layers with w0 = 30) amplify a
    # rounding-level change of the weights by orders of magnitude, so the bound is that amplification,
    # measured on this network, never a fixed tolerance
    assert diff <= 1e-12 + 100 * _rounding_sensitivity(module, x), diff
    again = ws.to_module(0)
    assert WeightSpace.from_module(again, spec.input_shape).max_abs_diff(ws) == 0


@FAST
@given(spec=heterogeneous_specs(), seed=st.integers(0, 10_000))
def test_gauge_action_preserves_function(spec, seed):
    ws = _networks(spec, seed, B=3)
    g = GaugeElement.sample(spec, 3, torch.Generator().manual_seed(seed + 1), dtype=torch.float64)
    x = _inputs(spec, 8, seed)
    out = ws(x)
    assert float((g.apply(ws)(x) - out).abs().max()) <= 1e-9 * (float(out.abs().max()) + 1e-12)


@settings(FAST, max_examples=30, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(spec=heterogeneous_specs(max_width=8), seed=st.integers(0, 10_000),
       kind=st.sampled_from(["uncoupled_permutation", "mismatched_scaling", "wrong_scaling"]))
def test_non_symmetries_change_function(spec, seed, kind):
    """Mixed activations (sines, saturating layers) damp a non-symmetry more than uniform ones:
    relative change >= 1.8e-4 in a 1134-case sweep (>= 5.5e-5 in a LeNet-only one; >= 0.11 for
    LeNets with one activation), so this asks for a change far above float64 rounding (1e-15)
    rather than test_core's 1e-4. Networks whose output is constant (a dead ReLU output) are skipped."""
    assume(spec.num_layers >= 2 and min(spec.hidden_widths) >= 2)
    assume(kind != "wrong_scaling" or any(x.activation is not None for x in spec.layers[:-1]))
    ws = _networks(spec, seed)
    x = _inputs(spec, 64, seed)
    out = ws(x)
    assume(float(out.std(1).max()) > 1e-3 * float(out.abs().max()))
    bad = sample_non_symmetry(ws, kind, torch.Generator().manual_seed(seed))
    assert float((bad(x) - out).abs().max()) > 1e-6 * float(out.abs().max()), (spec.to_text(), kind)


def test_stacking_different_structures_names_both():
    a = WeightSpace.zeros(NetworkSpec.from_text("mlp 4-8-8-2 relu,tanh"), 1)
    b = WeightSpace.zeros(NetworkSpec.from_text("mlp 4-8-8-2 tanh,relu"), 1)
    with pytest.raises(SpecError, match=r"different structures: 'mlp 4-8-8-2 relu,tanh' vs 'mlp 4-8-8-2 tanh,relu'"):
        WeightSpace.stack([a, b])


# ---------------------------------------------------------------------------------- saving and loading
@SLOW
@given(spec=heterogeneous_specs(max_width=6), seed=st.integers(0, 10_000))
def test_zoo_save_load_round_trip(spec, seed, tmp_path_factory):
    other = random_spec(random.Random(seed), heterogeneous=True, flatten=None, max_width=6)
    assume(other != spec)
    groups = [(spec, 3), (other, 2)]
    flats = tuple(_networks(s, seed + g, n, torch.float32).flatten().unsqueeze(0) for g, (s, n) in enumerate(groups))
    md = pd.DataFrame({"group": [0, 0, 0, 1, 1], "row": [0, 1, 2, 0, 1], "arch": [s.to_text() for s, n in groups
                                                                               for _ in range(n)]})
    zoo = Zoo((spec, other), flats, (1,), md, {"name": "hetero"})
    repr(zoo)
    folder = tmp_path_factory.mktemp("zoo")
    save_zoo(zoo, folder)
    back = load_zoo(folder)
    assert back.specs == (spec, other)
    for a, b in zip(back.flat, zoo.flat):
        assert torch.equal(a, b)
    assert set(back.by_spec()) == {spec.to_text(), other.to_text()}


@SLOW
@given(spec=heterogeneous_specs(max_width=6, max_layers=4), seed=st.integers(0, 10_000))
def test_autoencoder_save_load_round_trip(spec, seed, tmp_path_factory):
    torch.manual_seed(seed)
    ref = _networks(spec, seed, B=3, dtype=torch.float32)
    model = WeightAutoencoder(spec, AutoencoderConfig(latent_dim=4, hidden_dim=4, num_layers=1,
                                                      decoder_hidden=(8,)), reference=ref)
    path = tmp_path_factory.mktemp("ae") / "ae.pt"
    save_autoencoder(model, path)
    back = load_autoencoder(path)
    assert back.spec == spec
    z, dec = model(ref)
    z2, dec2 = back(ref)
    assert torch.equal(z, z2) and dec.max_abs_diff(dec2) == 0


# ---------------------------------------------------------------------------------- training
def _classifiers(spec_text: str, seed: int = 0):
    spec = NetworkSpec.from_text(spec_text)
    ws = _networks(spec, seed, B=4, dtype=torch.float32)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(32, *spec.input_shape, generator=g)
    y = torch.randint(0, spec.widths[-1], (32,), generator=g)
    return spec, ws, x, y


HETERO_CLASSIFIERS = ["conv1d 1-4-4/6-3 k3,2 s1,2 p1,0 relu,tanh,leaky_relu=0.2 1x12",
                      "conv2d 1-3-4/5-3 k3,2 s2,1 relu,tanh,sigmoid flatten 1x7x7",
                      "mlp 6-5-4-3 sine=3,relu"]


@pytest.mark.parametrize("text", HETERO_CLASSIFIERS)
def test_train_operator_runs_on_heterogeneous_networks(text):
    spec, ws, x, y = _classifiers(text)
    torch.manual_seed(0)
    op = AmortizedOperator(hidden_dim=6, num_layers=1, max_kernel=spec.max_kernel_numel)
    before = [p.detach().clone() for p in op.parameters()]
    hist = train_operator(op, ws, x, y, OperatorTrainConfig(steps=3, batch_networks=2, data_batch=8,
                                                            warmup_steps=1), progress=False)
    assert op.trained_on == [spec.to_text()]
    assert len(hist.losses) == 3 and all(np.isfinite(hist.losses))
    assert any(not torch.equal(a, b) for a, b in zip(before, op.parameters()))


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(heterogeneous_specs(), st.integers(0, 2**16))
def test_train_operator_and_save_on_random_heterogeneous_networks(spec, seed):
    """Property version: any per-layer-heterogeneous structure trains for a few steps, records its
    exact text, and the operator saves and loads (the old code raised after all its steps)."""
    import tempfile
    from pathlib import Path

    _, ws, x, y = _classifiers(spec.to_text(), seed)
    torch.manual_seed(seed)
    op = AmortizedOperator(hidden_dim=4, num_layers=1, max_kernel=spec.max_kernel_numel)
    hist = train_operator(op, ws, x, y, OperatorTrainConfig(steps=2, batch_networks=2, data_batch=8,
                                                            warmup_steps=0), progress=False)
    assert op.trained_on == [spec.to_text()] and NetworkSpec.from_text(op.trained_on[0]) == spec
    assert len(hist.losses) == 2 and all(np.isfinite(hist.losses))
    with tempfile.TemporaryDirectory() as tmp:
        op.save(Path(tmp) / "op.pt")
        assert AmortizedOperator.load(Path(tmp) / "op.pt").trained_on == op.trained_on


@pytest.mark.parametrize("problem", ["edge_width", "labels", "inputs"])
def test_train_operator_fails_before_any_step(problem):
    spec, ws, x, y = _classifiers(HETERO_CLASSIFIERS[1])
    kernel = spec.max_kernel_numel - 1 if problem == "edge_width" else spec.max_kernel_numel
    if problem == "labels":
        y = y.clone()
        y[-1] = spec.widths[-1]  # one label out of range, far from the first samples
    if problem == "inputs":
        x = torch.randn(32, 1, 9, 9)  # the flattened conv output no longer has flatten_size positions
    op = AmortizedOperator(hidden_dim=6, num_layers=1, max_kernel=kernel)
    before = [p.detach().clone() for p in op.parameters()]
    with pytest.raises((SpecError, ValueError)):
        train_operator(op, ws, x, y, OperatorTrainConfig(steps=3, batch_networks=2, data_batch=8, warmup_steps=0),
                       progress=False)
    assert op.trained_on == []
    assert all(torch.equal(a, b) for a, b in zip(before, op.parameters())), "a step ran before the error"


# ---------------------------------------------------------------------------------- ScaleGMN
def _model(spec_list, head, bidirectional=True):
    torch.manual_seed(0)
    k = max(s.max_kernel_numel for s in spec_list)
    return ScaleGMN(ScaleGMNConfig(hidden_dim=6, num_layers=2, mode="auto", bidirectional=bidirectional,
                                   head=head, out_dim=3, max_kernel=k))


@SLOW
@given(spec=heterogeneous_specs(max_width=6, max_layers=4), seed=st.integers(0, 10_000),
       head=st.sampled_from(["invariant", "equivariant"]))
def test_scalegmn_symmetries_exact_on_heterogeneous_networks(spec, seed, head):
    ws = _networks(spec, seed)
    model = _model([spec], head, bidirectional=bool(seed % 2))
    check = check_invariance if head == "invariant" else check_equivariance
    res = check(model, ws, n_samples=2, generator=torch.Generator().manual_seed(seed))
    assert res.max_relative < 1e-10, (spec.to_text(), res)


@FIXED
@given(spec=heterogeneous_specs(max_width=6, max_layers=4), seed=st.integers(0, 10_000),
       head=st.sampled_from(["invariant", "equivariant"]))
def test_scalegmn_sees_non_symmetries_of_heterogeneous_networks(spec, seed, head):
    assume(spec.num_layers >= 2 and min(spec.hidden_widths) >= 2)
    ws = _networks(spec, seed)
    sens = check_sensitivity(_model([spec], head), ws, generator=torch.Generator().manual_seed(seed))
    assert min(sens.values()) > 1e-6, (spec.to_text(), sens)


def test_mixed_heterogeneous_batch_is_exact():
    texts = HETERO_CLASSIFIERS + ["conv2d 2-3-3/2 k1x3,3 p1,0 gelu,sine=7 2x5x4"]
    wss = [_networks(NetworkSpec.from_text(t), i) for i, t in enumerate(texts)]
    for head in ("invariant", "equivariant"):
        model = _model([w.spec for w in wss], head)
        check = check_invariance if head == "invariant" else check_equivariance
        res = check(model, wss, n_samples=2, generator=torch.Generator().manual_seed(0))
        assert res.max_relative < 1e-10, res


def test_describe_pairs_each_activation_with_its_own_symmetry():
    assert NetworkSpec.from_text("mlp 3-5-5-5-2 relu,tanh,sigmoid").describe().endswith(
        "[relu -> positive_scale, tanh -> sign, sigmoid -> permutation]")
    assert NetworkSpec.from_text("mlp 6-5-4-3 sine=3,relu").describe().endswith(
        "[sine -> sign, relu -> positive_scale]")
    assert NetworkSpec.from_text("mlp 3-2 relu").describe().endswith("[no hidden layer]")
