"""ScaleGMN models: invariance/equivariance for every mode x family x direction x head, in float64
and float32, failures under non-symmetries, heterogeneous batches, gradients at zero weights, CUDA."""

import pytest
import torch

from scalegmn_lite import NetworkSpec, WeightSpace
from scalegmn_lite.nn.checks import check_equivariance, check_invariance, check_sensitivity, default_tolerance
from scalegmn_lite.nn.scalegmn import ScaleGMN, ScaleGMNConfig, apply_update

torch.set_num_threads(1)

FAMILIES = {
    "mlp": "mlp 3-4-5-2 relu",
    "cnn": "conv2d 1-3-4/2 k3 relu",
    "inr": "siren 2-5-5-1",
}
# which families' full gauge group each mode respects (else only permutations are checked)
RESPECTS = {"scale": {"mlp", "cnn"}, "sign": {"inr"}, "permutation": set(), "auto": {"mlp", "cnn", "inr"}}


def _ws(family, n=2, seed=0, dtype=torch.float64):
    return WeightSpace.randn(NetworkSpec.from_text(FAMILIES[family]), n, torch.Generator().manual_seed(seed),
                             dtype=dtype)


def _model(mode, bidirectional, head, **kw):
    torch.manual_seed(0)
    return ScaleGMN(ScaleGMNConfig(hidden_dim=6, num_layers=2, mode=mode, bidirectional=bidirectional,
                                   head=head, out_dim=3, **kw))


def _check(model, ws, head, **kw):
    fn = check_invariance if head == "invariant" else check_equivariance
    return fn(model, ws, n_samples=2, generator=torch.Generator().manual_seed(1), **kw)


@pytest.mark.parametrize("head", ["invariant", "equivariant"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("family", list(FAMILIES))
@pytest.mark.parametrize("mode", ["scale", "sign", "permutation", "auto"])
def test_symmetry_float64(mode, family, bidirectional, head):
    ws = _ws(family)
    # a mode that assumes a symmetry the spec's hidden layers lack is refused unless asked for (an ablation)
    contradicts = mode in ("scale", "sign") and family not in RESPECTS[mode]
    if contradicts:
        with pytest.raises(ValueError, match="mode='auto'"):
            _model(mode, bidirectional, head)(ws)
    model = _model(mode, bidirectional, head, check_mode=not contradicts)
    full = family in RESPECTS[mode]
    res = _check(model, ws, head, scale=full)
    assert res.max_relative < 1e-10, res
    if not full:  # the scalings this mode ignores are not symmetries of the model
        assert _check(model, ws, head).max_relative > 1e-4


@pytest.mark.parametrize("head", ["invariant", "equivariant"])
@pytest.mark.parametrize("family", list(FAMILIES))
def test_symmetry_float32(family, head):
    model, ws = _model("auto", True, head), _ws(family, dtype=torch.float32)
    res = _check(model, ws, head, dtype=torch.float32)
    assert res.max_relative < default_tolerance(torch.float32), res


def test_gmn_is_not_scale_invariant():
    ws = _ws("mlp", 4)
    gmn = _model("permutation", False, "invariant")
    assert _check(gmn, ws, "invariant", scale=False).max_relative < 1e-10
    assert _check(gmn, ws, "invariant").max_relative > 1e-3
    assert _check(_model("scale", False, "invariant"), ws, "invariant").max_relative < 1e-10


@pytest.mark.parametrize("head", ["invariant", "equivariant"])
def test_non_symmetries_change_the_output(head):
    ws = [_ws("mlp", 2), _ws("cnn", 2, 1), _ws("inr", 2, 2)]
    sens = check_sensitivity(_model("auto", True, head), ws, generator=torch.Generator().manual_seed(0))
    assert set(sens) == {"uncoupled_permutation", "mismatched_scaling", "wrong_scaling"}
    assert min(sens.values()) > 1e-6, sens


@pytest.mark.parametrize("head", ["invariant", "equivariant"])
@pytest.mark.parametrize("mode", ["auto", "sign", "permutation"])
@pytest.mark.parametrize("family", ["inr", "tanh"])
def test_normalised_layers_still_see_a_whole_layer_rescaled(family, mode, head):
    # every layer of these networks is RMS-normalised at the input; doubling a whole layer's outputs
    # is not a symmetry of sine/tanh and must still move the output (through the log-RMS gain)
    spec = NetworkSpec.from_text("siren 2-5-5-1" if family == "inr" else "mlp 3-4-5-2 tanh")
    ws = WeightSpace.randn(spec, 3, torch.Generator().manual_seed(0), dtype=torch.float64)
    model = _model(mode, True, head)
    sens = check_sensitivity(model, ws, generator=torch.Generator().manual_seed(0))
    assert min(sens.values()) > 1e-4, sens
    if mode != "permutation":  # ... while the model stays exactly invariant/equivariant
        assert _check(model, ws, head).max_relative < default_tolerance(torch.float64)


def test_heterogeneous_batch_matches_separate_batches():
    ws = [_ws("mlp", 2), _ws("cnn", 3, 1), _ws("inr", 1, 2),
          WeightSpace.randn(NetworkSpec.from_text("conv1d 1-2-3/2 k2 sigmoid"), 2, dtype=torch.float64)]
    for head in ["invariant", "equivariant"]:
        model = _model("auto", True, head).double()
        together = model(ws)
        for i, w in enumerate(ws):
            alone = model(w)
            if head == "invariant":
                start = sum(x.batch_size for x in ws[:i])
                assert torch.allclose(together[start : start + w.batch_size], alone, atol=1e-12)
            else:
                assert together[i].allclose(alone, atol=1e-12)
        assert _check(model, ws, head).max_relative < 1e-10


def test_update_is_equivariant_and_small():
    ws = [_ws("mlp", 2), _ws("cnn", 2, 1)]
    model = _model("auto", True, "equivariant").double()
    assert check_equivariance(model.update, ws, 2, torch.Generator().manual_seed(0)).max_relative < 1e-10
    new = model.update(ws)
    assert all(n.spec == w.spec for n, w in zip(new, ws))
    delta = model(ws)
    manual = apply_update(ws[0], delta[0], model.update_scales)
    assert manual.allclose(new[0], atol=1e-12)
    assert 0 < new[0].max_abs_diff(ws[0]) < 1.0


@pytest.mark.parametrize("mode", ["scale", "sign", "permutation", "auto"])
@pytest.mark.parametrize("head", ["invariant", "equivariant"])
def test_finite_gradients_at_zero_and_tiny_weights(mode, head):
    spec = NetworkSpec.from_text("mlp 3-4-2 relu")
    zero = WeightSpace.zeros(spec, 1)
    tiny = WeightSpace.randn(spec, 1, torch.Generator().manual_seed(0)) * 1e-20
    mixed = _ws("mlp", 1, dtype=torch.float32).map(lambda t: t * (torch.rand_like(t) > 0.5))
    model = _model(mode, True, head, max_kernel=1, check_mode=mode != "sign")  # sign on ReLU: an ablation
    for ws in [zero, tiny, mixed]:
        ws = ws.clone().requires_grad_(True)
        out = model(ws)
        loss = out.pow(2).sum() if head == "invariant" else out.flatten().pow(2).sum()
        loss.backward()
        grads = [p.grad for p in model.parameters() if p.grad is not None] + [t.grad for t in ws.params()]
        assert torch.isfinite(loss) and all(bool(torch.isfinite(g).all()) for g in grads)
        model.zero_grad()


def test_config_errors():
    with pytest.raises(ValueError, match="mode"):
        ScaleGMNConfig(mode="nope")
    model = _model("auto", False, "invariant", max_kernel=4)
    with pytest.raises(ValueError, match="max_kernel"):
        model(_ws("cnn"))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_matches_cpu():
    ws = [_ws("mlp", 2), _ws("cnn", 2, 1)]
    for head in ["invariant", "equivariant"]:
        model = _model("auto", True, head).double()
        cpu = model(ws)
        gpu = model.cuda()([w.to("cuda") for w in ws])
        if head == "invariant":
            assert torch.allclose(cpu, gpu.cpu(), atol=1e-10)
        else:
            assert all(a.allclose(b.to("cpu"), atol=1e-10) for a, b in zip(cpu, gpu))
        assert _check(model, [w.to("cuda") for w in ws], head).max_relative < 1e-10
