"""The amortized operator: equivariance of the proposed networks, the objective, stable training with
rollback, save/load, clear errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from scalegmn_lite import GaugeElement, NetworkSpec, WeightSpace, sample_non_symmetry
from scalegmn_lite.common.io import CorruptFileError
from scalegmn_lite.common.stable import StableTrainer
from scalegmn_lite.tasks.amortized.operator import (
    AmortizedOperator,
    OperatorTrainConfig,
    network_metrics,
    train_operator,
)
from scalegmn_lite.tasks.losses import amortized_objective

SPECS = {"tanh": "mlp 5-6-6-3 tanh", "relu": "mlp 5-6-6-3 relu", "cnn": "conv1d 1-3-4/3 k3 tanh 1x12"}


def _op(**kw):
    torch.manual_seed(0)
    return AmortizedOperator(hidden_dim=8, num_layers=2, **kw).double()


@pytest.mark.parametrize("arch", sorted(SPECS))
@pytest.mark.parametrize("bidirectional", [False, True])
def test_operator_is_gauge_equivariant(arch, bidirectional):
    spec = NetworkSpec.from_text(SPECS[arch])
    ws = WeightSpace.randn(spec, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    op = _op(bidirectional=bidirectional)
    with torch.no_grad():
        op.gmn.update_scales.fill_(0.5)  # a visible update
        g = GaugeElement.sample(spec, 4, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
        out, out_g = op(ws), op(g.apply(ws))
        assert g.apply(out).allclose(out_g, rtol=1e-9, atol=1e-10)
        assert out.max_abs_diff(ws) > 1e-3  # the operator does change the network
        x = torch.randn(20, *spec.input_shape, dtype=torch.float64)
        assert torch.allclose(out(x), out_g(x), atol=1e-9)  # same proposed function


def test_gmn_operator_is_not_scale_equivariant():
    spec = NetworkSpec.from_text(SPECS["relu"])
    ws = WeightSpace.randn(spec, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    op = _op(mode="permutation")
    with torch.no_grad():
        op.gmn.update_scales.fill_(0.5)
        g = GaugeElement.sample(spec, 4, generator=torch.Generator().manual_seed(2), permute=False,
                                dtype=torch.float64)
        assert g.apply(op(ws)).max_abs_diff(op(g.apply(ws))) > 1e-4


def test_operator_output_changes_under_non_symmetry():
    spec = NetworkSpec.from_text(SPECS["tanh"])
    ws = WeightSpace.randn(spec, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    op = _op()
    with torch.no_grad():
        op.gmn.update_scales.fill_(0.5)
        bad = sample_non_symmetry(ws, "uncoupled_permutation", torch.Generator().manual_seed(0))
        x = torch.randn(20, 5, dtype=torch.float64)
        assert (op(bad)(x) - op(ws)(x)).abs().max() > 1e-3


def test_objective_matches_hand_computation():
    spec = NetworkSpec.from_text("mlp 4-3-2 relu")
    ws = WeightSpace.randn(spec, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x, y = torch.randn(7, 4, dtype=torch.float64), torch.tensor([0, 1, 1, 0, 1, 0, 0])
    lam = 0.01
    got = amortized_objective(ws, x, y, lam)
    for b in range(3):
        m = ws.to_module(b)
        ce = nn.functional.cross_entropy(m(x), y)
        l1 = sum(p.abs().sum() for p in m.parameters())
        assert torch.allclose(got[b], lam * l1 + ce, atol=1e-12)


def test_training_reduces_objective_and_metrics_shapes():
    spec = NetworkSpec.from_text("mlp 5-8-3 tanh")
    ws = WeightSpace.randn(spec, 16, generator=torch.Generator().manual_seed(0))
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(256, 5, generator=gen)
    y = x[:, :3].argmax(1)
    torch.manual_seed(0)
    op = AmortizedOperator(hidden_dim=16, num_layers=2)
    before = amortized_objective(op(ws), x, y, 0.0).mean().item()
    hist = train_operator(op, ws, x, y, OperatorTrainConfig(steps=40, batch_networks=8, data_batch=128, lr=3e-3,
                                                            warmup_steps=5), progress=False)
    after = amortized_objective(op(ws), x, y, 0.0).mean().item()
    assert len(hist.losses) >= 40 and after < before
    m = network_metrics(op(ws).detach(), x, y)
    assert all(v.shape == (16,) for v in m.values())


def test_forced_spikes_are_skipped_then_rolled_back_in_operator_training():
    spec = NetworkSpec.from_text("mlp 5-8-3 tanh")
    ws = WeightSpace.randn(spec, 8, generator=torch.Generator().manual_seed(0))
    x, y = torch.randn(64, 5), torch.randint(0, 3, (64,))
    op = AmortizedOperator(hidden_dim=8, num_layers=1)
    opt = torch.optim.SGD(op.parameters(), lr=1e-2)
    trainer = StableTrainer(op, opt, snapshot_every=1, spike_min_history=3, progress=False)

    def step(t):
        loss = amortized_objective(op(ws), x, y, 0.0).mean()
        return loss * 1e6 if t in (6, 9, 10, 11) else loss

    hist = trainer.run(step, 14)
    # an isolated spike is skipped; three in a row (the third is rejected) roll back to a snapshot
    assert hist.skipped_spikes == [6, 9, 10]
    assert [(r.step, r.reason) for r in hist.rollbacks] == [(11, "loss_spike")]
    assert all(torch.isfinite(p).all() for p in op.parameters())


def test_save_load_round_trip(tmp_path):
    op = AmortizedOperator(hidden_dim=8, num_layers=1, bidirectional=True)
    op.trained_on = ["mlp 5-8-3 tanh"]
    op.save(tmp_path / "op.pt")
    back = AmortizedOperator.load(tmp_path / "op.pt")
    assert back.config == op.config and back.trained_on == op.trained_on
    ws = WeightSpace.randn(NetworkSpec.from_text("mlp 5-8-3 tanh"), 2)
    with torch.no_grad():
        assert op(ws).max_abs_diff(back(ws)) == 0
    data = (tmp_path / "op.pt").read_bytes()
    (tmp_path / "op.pt").write_bytes(data[:-100])
    with pytest.raises(CorruptFileError, match="op.pt"):
        AmortizedOperator.load(tmp_path / "op.pt")


def test_apply_to_plain_module_and_clear_errors():
    op = AmortizedOperator(hidden_dim=8, num_layers=1, max_kernel=3)
    model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3))
    new = op.apply_module(model)
    lin = [m for m in new.modules() if isinstance(m, nn.Linear)]
    assert isinstance(new, nn.Sequential) and lin[0].weight.shape == (8, 5)
    with pytest.raises(ValueError, match="max_kernel"):
        op(WeightSpace.randn(NetworkSpec.from_text("conv1d 1-3/2 k5 relu 1x12"), 1))
    with pytest.raises(Exception, match="BatchNorm1d"):
        op.apply_module(nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8), nn.Linear(8, 3)))
    nan = WeightSpace.randn(NetworkSpec.from_text("mlp 5-8-3 tanh"), 2).map(lambda t: t * float("nan"))
    with pytest.raises(ValueError, match="NaN"):
        train_operator(op, nan, torch.randn(4, 5), torch.zeros(4, dtype=torch.long),
                       OperatorTrainConfig(steps=1), progress=False)
