"""Bad input is never silent (issue 11): NaN/inf weights, a mode that contradicts the spec, dtypes
and devices of apply_module, meta tensors, plain torch.save checkpoints."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from torch import nn

from scalegmn_lite import NetworkSpec, WeightSpace
from scalegmn_lite.common.io import CorruptFileError
from scalegmn_lite.nn.baselines import FlatMLP, StatNN
from scalegmn_lite.nn.graphs import to_graph
from scalegmn_lite.nn.scalegmn import ScaleGMN, ScaleGMNConfig
from scalegmn_lite.tasks.invariant.fit import FitConfig, UndefinedScoreWarning, fit, predict, score
from scalegmn_lite.weightspace.weights import NonFiniteWeightsError

torch.set_num_threads(1)
SPEC = NetworkSpec.from_text("mlp 3-4-2 relu")


def _ws(n=5, spec=SPEC, seed=0, dtype=torch.float32):
    return WeightSpace.randn(spec, n, torch.Generator().manual_seed(seed), dtype=dtype)


def _poison(ws, nets, layer=1, value=math.nan):
    ws = ws.clone()
    for i in nets:
        ws.weights[layer][i].view(-1)[0] = value
    return ws


def _gmn(**kw):
    torch.manual_seed(0)
    return ScaleGMN(ScaleGMNConfig(hidden_dim=8, num_layers=1, **kw))


# ---------------------------------------------------------------------- NaN/inf weights
def test_from_modules_keeps_nonfinite_networks_and_reports_them():
    mods = [nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)) for _ in range(3)]
    with torch.no_grad():
        mods[1][2].bias[0] = math.inf
    ws = WeightSpace.from_modules(mods)
    assert ws.batch_size == 3 and ws.nonfinite_networks() == [1]
    assert ws.finite_mask().tolist() == [True, False, True]
    with pytest.raises(NonFiniteWeightsError, match=r"networks \[1\].*layers 1 bias") as info:
        ws.check_finite()
    assert info.value.networks == [1]


@pytest.mark.parametrize("head", ["invariant", "equivariant"])
def test_scalegmn_forward_names_the_networks(head):
    model = _gmn(head=head)
    bad = _poison(_ws(), [1, 3])
    with pytest.raises(NonFiniteWeightsError, match=r"networks \[1, 3\]"):
        model(bad)
    # a list: indices count across the list in order
    with pytest.raises(NonFiniteWeightsError, match=r"networks \[6, 8\]") as info:
        model([_ws(5, seed=1), _poison(_ws(), [1, 3], value=-math.inf)])
    assert info.value.networks == [6, 8]
    # a graph batch
    with pytest.raises(NonFiniteWeightsError, match=r"graphs \[1, 3\]"):
        model(to_graph([bad], kernel_dim=model.config.max_kernel))
    if head == "equivariant":
        with pytest.raises(NonFiniteWeightsError):
            model.update(bad)
    # clean input still works and is finite
    out = model(_ws())
    assert all(bool(torch.isfinite(t).all()) for t in (out.params() if head == "equivariant" else [out]))


@pytest.mark.parametrize("cls", [StatNN, FlatMLP])
def test_baselines_raise(cls):
    model = cls(SPEC, 1, hidden=8)
    with pytest.raises(NonFiniteWeightsError, match=r"networks \[2\]"):
        model.fit_normalization(_poison(_ws(), [2]))
    model.fit_normalization(_ws())
    with pytest.raises(NonFiniteWeightsError, match=rf"{cls.__name__} input.*networks \[0\]"):
        model(_poison(_ws(), [0], layer=0))


def test_autoencoder_encode_raises():
    from scalegmn_lite.tasks.merging.autoencoder import AutoencoderConfig, WeightAutoencoder

    ws = _ws(4)
    ae = WeightAutoencoder(SPEC, AutoencoderConfig(latent_dim=4, hidden_dim=8, num_layers=1, decoder_hidden=(16,)),
                           reference=ws)
    assert ae.encode(ws).shape == (4, 4)
    with pytest.raises(NonFiniteWeightsError, match=r"WeightAutoencoder.encode.*networks \[3\]"):
        ae.encode(_poison(ws, [3]))


def test_predict_raises_or_gives_nan_rows():
    model = StatNN(SPEC, 1, hidden=8).fit_normalization(_ws(8, seed=3))
    bad = _poison(_ws(6), [2, 5])
    with pytest.raises(NonFiniteWeightsError, match=r"networks \[2, 5\]"):
        predict(model, bad)
    out = predict(model, bad, batch_size=4, on_nonfinite="nan")
    assert out.shape == (6, 1)
    assert torch.isnan(out[[2, 5]]).all() and torch.isfinite(out[[0, 1, 3, 4]]).all()
    clean = predict(model, bad[torch.tensor([0, 1, 3, 4])])
    assert torch.allclose(out[[0, 1, 3, 4]], clean)
    assert torch.isnan(predict(model, _poison(_ws(2), [0, 1]), on_nonfinite="nan")).all()


def test_fit_raises_or_drops():
    ws, y = _ws(12, seed=4), torch.rand(12)
    bad = _poison(ws, [3])
    cfg = FitConfig(epochs=2, batch_size=4, warmup_epochs=0)
    with pytest.raises(NonFiniteWeightsError, match=r"training networks.*networks \[3\]"):
        fit(StatNN(SPEC, 1, hidden=8), bad, y, ws, y, "regression", cfg, progress=False)
    with pytest.raises(NonFiniteWeightsError, match=r"validation networks.*networks \[3\]"):
        fit(StatNN(SPEC, 1, hidden=8), ws, y, bad, y, "regression", cfg, progress=False)
    y_nan = y.clone()
    y_nan[7] = math.nan
    with pytest.raises(NonFiniteWeightsError, match=r"targets of networks \[7\]"):
        fit(StatNN(SPEC, 1, hidden=8), ws, y_nan, ws, y, "regression", cfg, progress=False)
    with pytest.warns(UserWarning, match="dropped 2 of 12"):
        res = fit(StatNN(SPEC, 1, hidden=8).fit_normalization(ws), bad, y_nan, ws, y, "regression", cfg,
                  progress=False, on_nonfinite="drop")
    assert len(res.history) == 2 and all(math.isfinite(h["train_loss"]) for h in res.history)


def test_score_never_turns_an_undefined_tau_into_zero():
    y = torch.tensor([0.1, 0.5, 0.3, 0.9])
    assert score("regression", y * 2, y) == pytest.approx(1.0)
    cases = {"all equal": (torch.ones(4), y), "targets are all equal": (y, torch.ones(4)),
             "NaN/inf": (torch.tensor([0.1, math.nan, 0.2, 0.3]), y), "at least 2": (y[:1], y[:1])}
    for reason, (p, t) in cases.items():
        with pytest.warns(UndefinedScoreWarning, match=reason):
            assert math.isnan(score("regression", p, t))
        with pytest.raises(ValueError, match=reason):
            score("regression", p, t, undefined="raise")
    logits = torch.tensor([[1.0, 0.0], [math.nan, 0.0]])
    with pytest.warns(UndefinedScoreWarning, match="NaN/inf"):
        assert math.isnan(score("classification", logits, torch.tensor([0, 1])))


def test_fit_does_not_pick_an_epoch_with_undefined_score():
    class Constant(nn.Module):  # a collapsed model: the same prediction for every network
        def __init__(self):
            super().__init__()
            self.b = nn.Parameter(torch.zeros(1))

        def forward(self, ws):
            return self.b.expand(ws.batch_size, 1)

    ws, y = _ws(8), torch.rand(8)
    with pytest.warns(UndefinedScoreWarning, match="undefined in every epoch"):
        res = fit(Constant(), ws, y, ws, y, "regression", FitConfig(epochs=2, batch_size=4, warmup_epochs=0),
                  progress=False)
    assert res.best_epoch == -1 and all(math.isnan(h["val_score"]) for h in res.history)
    assert "all equal" in res.history[0]["val_note"]


# ---------------------------------------------------------------------- mode vs spec
@pytest.mark.parametrize("mode,text,found", [
    ("scale", "mlp 3-4-4-2 tanh", "tanh: sign"),
    ("scale", "siren 2-5-1", "sine: sign"),
    ("scale", "mlp 3-4-2 sigmoid", "sigmoid: permutation"),
    ("sign", "mlp 3-4-2 relu", "relu: positive_scale"),
    ("sign", "conv2d 1-3-4/2 k3 relu", "relu: positive_scale"),
])
def test_mode_contradicting_the_spec_raises_with_the_fix(mode, text, found):
    ws = _ws(2, NetworkSpec.from_text(text))
    for head in ["invariant", "equivariant"]:
        model = _gmn(mode=mode, head=head)
        with pytest.raises(ValueError, match=rf"mode='{mode}'.*{found}.*mode='auto'"):
            model(ws)
        with pytest.raises(ValueError, match="mode='auto'"):
            model(to_graph([ws], kernel_dim=model.config.max_kernel))
        _gmn(mode="auto", head=head)(ws)  # the fix works
        _gmn(mode="permutation", head=head)(ws)  # the GMN baseline assumes nothing
        _gmn(mode=mode, head=head, check_mode=False)(ws)  # deliberate ablation


def test_matching_modes_pass():
    _gmn(mode="scale")([_ws(2, NetworkSpec.from_text("mlp 3-4-2 relu")),
                        _ws(2, NetworkSpec.from_text("mlp 3-4-2 leaky_relu"))])
    _gmn(mode="sign")(_ws(2, NetworkSpec.from_text("siren 2-5-5-1")))


# ---------------------------------------------------------------------- apply_module dtype/device
def _operator():
    from scalegmn_lite.tasks.amortized.operator import AmortizedOperator

    torch.manual_seed(0)
    return AmortizedOperator(hidden_dim=8, num_layers=1)


@pytest.mark.parametrize("dtype", [torch.float16, torch.float64, torch.bfloat16])
def test_apply_module_keeps_the_users_dtype(dtype):
    op = _operator()
    torch.manual_seed(1)
    module = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)).to(dtype)
    op.train()
    out = op.apply_module(module)
    assert op.training  # the caller's mode is restored
    assert all(p.dtype == dtype for p in out.parameters())
    x = torch.randn(5, 3, dtype=dtype)
    assert out(x).dtype == dtype  # runs on the user's input (float32 parameters would raise here)
    ref = op.apply_module(module.float())
    assert all(torch.allclose(a.float(), b, atol=1e-2, rtol=1e-2) for a, b in zip(out.parameters(), ref.parameters()))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_apply_module_keeps_the_users_device():
    op = _operator()  # the operator stays on CPU
    module = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)).cuda()
    out = op.apply_module(module)
    assert all(p.device.type == "cuda" for p in out.parameters())
    assert out(torch.randn(5, 3, device="cuda")).device.type == "cuda"


def test_apply_module_raises_on_nonfinite_weights():
    module = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    with torch.no_grad():
        module[0].weight[0, 0] = math.nan
    with pytest.raises(NonFiniteWeightsError, match="input module"):
        _operator().apply_module(module)


# ---------------------------------------------------------------------- meta tensors
def test_meta_inputs_name_the_fix():
    with torch.device("meta"):
        module = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    ws = WeightSpace.from_modules([module])
    assert ws.device.type == "meta"
    fix = "meta.*to_empty"
    with pytest.raises(ValueError, match=fix):
        _gmn()(ws)
    with pytest.raises(ValueError, match=fix):
        _gmn(head="equivariant").update(ws)
    with pytest.raises(ValueError, match=fix):
        _operator().apply_module(module)
    with pytest.raises(ValueError, match=fix):
        predict(StatNN(SPEC, 1, hidden=8), ws)
    with pytest.raises(ValueError, match=fix):
        StatNN(SPEC, 1, hidden=8)(ws)


# ---------------------------------------------------------------------- plain torch.save checkpoints
def test_plain_torch_save_checkpoints_name_the_fix(tmp_path):
    from scalegmn_lite.tasks.amortized.operator import AmortizedOperator
    from scalegmn_lite.tasks.merging.autoencoder import AutoencoderConfig, WeightAutoencoder, load_autoencoder
    from scalegmn_lite.zoo.storage import load_zoo

    op = _operator()
    torch.save(op.state_dict(), tmp_path / "op.pt")
    with pytest.raises(CorruptFileError, match=r"op.pt.*plain torch.save.*op.save\(path\).*load_state_dict"):
        AmortizedOperator.load(tmp_path / "op.pt")
    ae = WeightAutoencoder(SPEC, AutoencoderConfig(latent_dim=4, hidden_dim=8, num_layers=1, decoder_hidden=(16,)),
                           reference=_ws(2))
    torch.save(ae.state_dict(), tmp_path / "ae.pt")
    with pytest.raises(CorruptFileError, match=r"ae.pt.*plain torch.save.*save_autoencoder\(model, path\)"):
        load_autoencoder(tmp_path / "ae.pt")
    torch.save({"weights": _ws(2).flatten()}, tmp_path / "zoo.pt")
    with pytest.raises(CorruptFileError, match=r"zoo.pt: a file.*save_zoo.*torch.save"):
        load_zoo(tmp_path / "zoo.pt")
    # files saved the library's way still load
    op.save(tmp_path / "ok.pt")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        AmortizedOperator.load(tmp_path / "ok.pt")


# ---------------------------------------------------------------- huge but finite weights
HUGE = ["mlp 3-8-8-2 relu", "conv2d 1-4-4/10 k3 relu 1x8x8", "mlp 40-32-10 relu"]


def _flat_out(out):
    return out if isinstance(out, torch.Tensor) else out.flatten()  # equivariant head: a WeightSpace


@pytest.mark.parametrize("path", ["dense", "graph"])
@pytest.mark.parametrize("head", ["invariant", "equivariant"])
@pytest.mark.parametrize("text", HUGE)
def test_weights_times_1e10_stay_finite_in_float32(text, head, path):
    """The network itself is finite at x1e10 (checked); so are ScaleGMN's output and gradients."""
    spec = NetworkSpec.from_text(text)
    ws = WeightSpace.randn(spec, 3, torch.Generator().manual_seed(0)) * 1e10
    x = torch.randn(5, *spec.input_shape) if spec.input_shape else torch.randn(5, spec.widths[0])
    assert bool(torch.isfinite(ws(x)).all())
    torch.manual_seed(0)
    model = ScaleGMN(ScaleGMNConfig(hidden_dim=16, num_layers=4, head=head, path=path, max_kernel=9))
    out = _flat_out(model(ws))
    assert bool(torch.isfinite(out).all())
    if head == "invariant":  # bounded output: its gradients are finite too
        out.pow(2).mean().backward()
        bad = [n for n, p in model.named_parameters() if p.grad is not None and not bool(torch.isfinite(p.grad).all())]
        assert not bad
    # (the equivariant output scales with the weights, ~1e16 here, and so do its parameter gradients,
    # which leave float32's range: train on such networks in float64)
    # the positive-scale view itself is finite and exact far beyond that
    from scalegmn_lite.nn.layers.invariant import safe_norm

    v = torch.full((2, 8), 3e37)
    assert bool(torch.isfinite(safe_norm(v)).all()) and torch.allclose(safe_norm(v / 3e37) * 3e37, safe_norm(v))


def test_overflow_is_a_clear_error_and_float64_is_the_fix():
    """A deep float32 network x1e10 compounds past float32's range: an error naming the networks and
    the fix, never a silent NaN; in float64 the same networks go through."""
    ws = WeightSpace.randn(NetworkSpec.from_text("mlp 3-8-8-8-8-2 relu"), 2, torch.Generator().manual_seed(0)) * 1e10
    torch.manual_seed(0)
    model = ScaleGMN(ScaleGMNConfig(hidden_dim=16, num_layers=4))
    with pytest.raises(FloatingPointError, match=r"overflowed torch.float32 on networks \[0, 1\].*float64"):
        model(ws)
    assert bool(torch.isfinite(model.double()(ws)).all())
