"""The invariant pipeline on block networks (issue 36): every model of tasks.invariant.blocks builds and predicts on
residual MLPs (BatchNorm, LayerNorm) and a residual conv1d; ScaleGMN is invariant under random gauge elements
(float64, eps = 0) and sees non-symmetries, the baselines are not invariant; fit trains on BlockWeights; non-finite
networks and bad input are handled; chain networks keep their old path."""

from __future__ import annotations

import warnings

import pytest
import torch

from scalegmn_lite import NetworkSpec, WeightSpace
from scalegmn_lite.nn.block_baselines import BlockFlatMLP, BlockGMN, BlockStatNN, parameter_statistics
from scalegmn_lite.nn.block_scalegmn import BlockScaleGMN
from scalegmn_lite.nn.scalegmn import ScaleGMN
from scalegmn_lite.tasks.invariant.blocks import (
    BLOCK_MODEL_NAMES,
    gauge_transform,
    make_block_model,
    non_symmetry_transform,
)
from scalegmn_lite.tasks.invariant.fit import FitConfig, as_networks, fit, predict
from scalegmn_lite.tasks.invariant.study import MODEL_NAMES, TaskData, gauge_shift, make_model
from scalegmn_lite.weightspace import BlockNetworkSpec, BlockWeights
from scalegmn_lite.weightspace.weights import NonFiniteWeightsError

F64 = torch.float64
SPECS = {
    "mlp_bn": "mlp 6-8bn-[8-8]x2-3 relu",
    "mlp_ln": "mlp 6-8ln-[8ln-8]x2-3 relu",
    "conv_bn": "conv1d 2-4bn-[4bn-4]x2/4-3 k3 p1 relu 2x12",
}
INVARIANT = {"scalegmn", "scalegmn-b", "scalegmn-plain"}  # exactly invariant under the true gauge group
NOT_INVARIANT = {"gmn", "statnn", "flatmlp", "scalegmn-normaffine"}
EXACT, BROKEN = 1e-9, 1e-4


def _spec(key: str) -> BlockNetworkSpec:
    return BlockNetworkSpec.from_text(SPECS[key]).with_eps(0.0)


def _weights(key: str, batch: int = 6, seed: int = 0, dtype=F64) -> BlockWeights:
    return BlockWeights.randn(_spec(key), batch, torch.Generator().manual_seed(seed), dtype=dtype)


def _model(name: str, spec, out: int = 2, fit_on: BlockWeights | None = None):
    torch.manual_seed(0)
    model, aug = make_model(name, spec, out, hidden=8, layers=2)
    model = model.double()
    if fit_on is not None and hasattr(model, "fit_normalization"):
        model.fit_normalization(fit_on)
    return model, aug


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / a.abs().max().clamp_min(1e-12))


def _inputs(spec: BlockNetworkSpec, n: int = 9) -> torch.Tensor:
    return torch.randn(n, *spec.input_shape, generator=torch.Generator().manual_seed(5), dtype=F64)


# ---------------------------------------------------------------- transforms
@pytest.mark.parametrize("key", SPECS)
def test_gauge_transform_keeps_the_function_non_symmetry_changes_it(key):
    bw = _weights(key)
    x = _inputs(bw.spec)
    f = bw.forward(x, eps=0.0)
    g = gauge_transform(bw, seed=3)
    assert bw.max_abs_diff(g) > 0.1  # the parameters moved
    assert _rel(f, g.forward(x, eps=0.0)) < 1e-12
    assert _rel(f, gauge_transform(bw, seed=3, max_log_scale=2.0).forward(x, eps=0.0)) < 1e-12
    assert gauge_transform(bw, 3).max_abs_diff(g) == 0  # seeded
    assert _rel(f, non_symmetry_transform(bw, "wrong_scaling", seed=3).forward(x, eps=0.0)) > 1e-2
    with pytest.raises(TypeError, match="BlockWeights"):
        gauge_transform(WeightSpace.randn(NetworkSpec.from_text("mlp 2-3-1 relu"), 2), 0)
    with pytest.raises(ValueError, match="unknown non-symmetry"):
        non_symmetry_transform(bw, "teleport")


# ---------------------------------------------------------------- models
@pytest.mark.parametrize("key", SPECS)
def test_every_model_predicts_and_only_scalegmn_is_gauge_invariant(key):
    bw = _weights(key)
    for name in BLOCK_MODEL_NAMES:
        model, aug = _model(name, bw.spec, fit_on=bw)
        assert (aug is not None) == name.endswith("+aug")
        pred = predict(model, bw)
        assert pred.shape == (bw.batch_size, 2) and bool(torch.isfinite(pred).all())
        shifts = [_rel(pred, predict(model, gauge_transform(bw, seed))) for seed in (1, 2)]
        if name in INVARIANT:
            assert max(shifts) <= EXACT, (name, shifts)
            assert gauge_shift(model, bw, seed=4) <= EXACT
        elif name.removesuffix("+aug") in NOT_INVARIANT:
            assert min(shifts) > BROKEN, (name, shifts)
            assert gauge_shift(model, bw, seed=4) > BROKEN


def test_model_types():
    spec = _spec("mlp_bn")
    built = {name: make_block_model(name, spec, 1, hidden=8, layers=1)[0] for name in BLOCK_MODEL_NAMES}
    assert type(built["scalegmn"]) is ScaleGMN and built["scalegmn"].config.mode == "auto"
    assert built["scalegmn-b"].config.bidirectional
    assert isinstance(built["scalegmn-plain"], BlockScaleGMN) and built["scalegmn-plain"].variant == "plain_twin"
    assert built["scalegmn-normaffine"].variant == "norm_affine"
    assert isinstance(built["gmn"], BlockGMN) and built["gmn"].config.mode == "permutation"
    assert isinstance(built["statnn"], BlockStatNN) and isinstance(built["flatmlp"], BlockFlatMLP)
    assert parameter_statistics(_weights("mlp_bn")).shape == (6, 7 * len(spec.param_shapes))
    # every chain model name has a block counterpart
    assert set(MODEL_NAMES) <= set(BLOCK_MODEL_NAMES)


@pytest.mark.parametrize("key,kinds", [
    ("mlp_bn", ("wrong_scaling", "unshared_stream_scale", "batchnorm_sign_without_gamma")),
    ("mlp_ln", ("wrong_scaling", "unshared_stream_scale", "layernorm_neuron_scale")),
    ("conv_bn", ("wrong_scaling", "unshared_stream_scale", "batchnorm_sign_without_gamma")),
])
def test_scalegmn_sees_non_symmetries(key, kinds):
    bw = _weights(key)
    model, _ = _model("scalegmn", bw.spec)
    plain, _ = _model("scalegmn-plain", bw.spec)
    pred = predict(model, bw)
    for kind in kinds:
        other = non_symmetry_transform(bw, kind, seed=7)
        assert _rel(pred, predict(model, other)) > BROKEN, kind
    # the plain twin (shortcuts dropped) cannot tell an unshared stream scaling from a symmetry
    other = non_symmetry_transform(bw, "unshared_stream_scale", seed=7)
    assert _rel(predict(plain, bw), predict(plain, other)) <= EXACT


def test_transformed_test_dispatches_to_blocks():
    bw = _weights("mlp_bn", 4)
    y = torch.zeros(4)
    data = TaskData("t", "regression", 1, (bw, y), (bw, y), (bw, y))
    assert data.spec == bw.spec and data.sizes() == {"train": 4, "val": 4, "test": 4}
    x = _inputs(bw.spec)
    assert _rel(bw.forward(x, eps=0.0), data.transformed_test("gauge").forward(x, eps=0.0)) < 1e-12
    assert _rel(bw.forward(x, eps=0.0), data.transformed_test("wrong_scaling").forward(x, eps=0.0)) > 1e-2


# ---------------------------------------------------------------- training
def _task(key: str, n: int, seed: int):
    """Networks (float32) and an invariant target: the output bias of class 0 (the output neurons are fixed by the
    gauge group, so every model may read it)."""
    bw = BlockWeights.randn(_spec(key), n, torch.Generator().manual_seed(seed), bias_std=1.0)
    return bw, bw.params[-1][:, 0].clone()


@pytest.mark.parametrize("name,key", [("scalegmn", "mlp_bn"), ("scalegmn", "mlp_ln"), ("gmn", "conv_bn"),
                                      ("statnn", "mlp_ln"), ("flatmlp+aug", "mlp_bn")])
def test_fit_decreases_the_training_loss(name, key):
    (tr, ytr), (va, yva) = _task(key, 32, 0), _task(key, 12, 1)
    torch.manual_seed(0)
    model, aug = make_model(name, tr.spec, 1, hidden=16, layers=2)
    if hasattr(model, "fit_normalization"):
        model.fit_normalization(tr)
    cfg = FitConfig(epochs=8, batch_size=8, lr=3e-3, warmup_epochs=1, augment=aug, train_probe=16)
    res = fit(model, tr, ytr, va, yva, "regression", cfg, progress=False)
    losses = [h["train_loss"] for h in res.history]
    assert len(losses) == 8 and min(losses[-3:]) < 0.9 * losses[0], losses
    assert res.best_epoch >= 0 and "train_score" in res.history[0]
    assert predict(model, va).shape == (12, 1)
    if name == "scalegmn":  # it really learns the target: ranks validation networks well
        assert res.best_val > 0.4, res.best_val


def test_nonfinite_networks_are_dropped_or_named():
    (tr, ytr), (va, yva) = _task("mlp_bn", 10, 0), _task("mlp_bn", 6, 1)
    bad = tr.replace_params({"2.branch.0.weight": tr.param("2.branch.0.weight").clone().index_fill_(0,
                                                                                                   torch.tensor([3]),
                                                                                                   float("nan"))})
    assert bad.nonfinite_networks() == [3] and bool(tr.finite_mask().all())
    model, _ = make_model("scalegmn", tr.spec, 1, hidden=8, layers=1)
    with pytest.raises(NonFiniteWeightsError, match=r"networks \[3\].*2.branch.0.weight") as info:
        predict(model, bad)
    assert info.value.networks == [3]
    pred = predict(model, bad, on_nonfinite="nan")
    assert bool(torch.isnan(pred[3]).all()) and bool(torch.isfinite(pred[torch.arange(10) != 3]).all())
    assert torch.allclose(pred[:3], predict(model, tr[:3]))
    with pytest.raises(NonFiniteWeightsError):
        fit(model, bad, ytr, va, yva, "regression", FitConfig(epochs=1), progress=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = fit(model, bad, ytr, va, yva, "regression", FitConfig(epochs=1, batch_size=4), progress=False,
                  on_nonfinite="drop")
    assert len(res.history) == 1 and any("dropped 1 of 10" in str(w.message) for w in caught)
    stat = BlockStatNN(tr.spec, 1)
    with pytest.raises(NonFiniteWeightsError):
        stat.fit_normalization(bad)


# ---------------------------------------------------------------- bad input
def test_bad_input_raises_clearly():
    a, b = _weights("mlp_bn", 3), _weights("mlp_ln", 3)
    model, _ = _model("scalegmn", a.spec)
    with pytest.raises(ValueError, match="one spec"):
        predict(model, [a, b])
    with pytest.raises(ValueError, match="one spec"):
        fit(model, [a, b], torch.zeros(6), a, torch.zeros(3), "regression", progress=False)
    assert as_networks([a, a[:1]]).batch_size == 4 and as_networks(a) is a
    chain = WeightSpace.randn(NetworkSpec.from_text("mlp 6-8-3 relu"), 3)
    assert as_networks(chain) is chain
    with pytest.raises(TypeError, match="one kind"):
        predict(model, [a, chain])
    with pytest.raises(TypeError, match="validation networks"):
        fit(model, a, torch.zeros(3), chain, torch.zeros(3), "regression", progress=False)
    with pytest.raises(TypeError, match="WeightSpace or BlockWeights"):
        predict(model, torch.zeros(3, 4))
    with pytest.raises(ValueError, match="unknown model"):
        make_model("transformer", a.spec, 1)
    with pytest.raises(ValueError, match="needs block networks"):
        make_model("scalegmn-plain", chain.spec, 1)
    stat, _ = _model("statnn", a.spec, fit_on=a)
    with pytest.raises(TypeError, match="BlockWeights"):
        stat(chain)
    with pytest.raises(ValueError, match="fixed architecture"):
        stat(b)
    with pytest.raises(ValueError, match="one architecture"):
        stat([a, b])
    with pytest.raises(TypeError, match="BlockNetworkSpec"):
        make_block_model("scalegmn", chain.spec, 1)


def test_chain_models_unchanged():
    spec = NetworkSpec.from_text("conv1d 1-3-3/2 k3 relu 1x10")
    for name in MODEL_NAMES:
        torch.manual_seed(0)
        model, _ = make_model(name, spec, 1, hidden=8, layers=1)
        assert not isinstance(model, (BlockGMN, BlockStatNN, BlockFlatMLP, BlockScaleGMN)), name
    torch.manual_seed(0)
    gmn, _ = make_model("gmn", spec, 1, hidden=8, layers=1)
    assert type(gmn) is ScaleGMN and gmn.config.mode == "permutation"
