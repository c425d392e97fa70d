"""Vectorized training equals training the networks one at a time with torch.nn + torch.optim."""

import pytest
import torch

from scalegmn_lite.weightspace.spec import NetworkSpec
from scalegmn_lite.zoo.data import load_dataset
from scalegmn_lite.zoo.train import evaluate, init_weights, train_batched, train_loop

ARCHS = [("mnist1d", "mlp 40-16-16-10 tanh"), ("mnist1d", "conv1d 1-4-4/10 k3 s2 relu 1x40"),
         ("digits", "conv2d 1-4-4/10 k3 tanh 1x8x8")]


def _setup(name, arch, dtype, B=4):
    d = load_dataset(name, dtype=dtype).subset(200, 60)
    spec = NetworkSpec.from_text(arch)
    seeds = list(range(10, 10 + B))
    ws = init_weights(spec, seeds, torch.linspace(0.5, 2.0, B), dtype=dtype)
    lr = torch.logspace(-2.5, -0.7, B)
    wd = torch.logspace(-5, -2, B)
    return d, ws, seeds, lr, wd


@pytest.mark.parametrize("name,arch", ARCHS)
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.float64, 1e-11)])
def test_batched_equals_loop_per_network_seeds(name, arch, dtype, tol):
    d, ws, seeds, lr, wd = _setup(name, arch, dtype)
    res = train_batched(ws, d, 2, lr, wd, 64, seeds=seeds, max_steps=4, progress=False)
    ref = train_loop(ws, d, 2, lr, wd, 64, seeds=seeds, max_steps=4)
    assert ws.max_abs_diff(res.ws) > 1e-3  # the networks did move
    assert res.ws.max_abs_diff(ref) <= tol
    # negative control: the loop with the learning rates of other networks is far away
    wrong = train_loop(ws, d, 2, lr.flip(0), wd, 64, seeds=seeds, max_steps=4)
    assert res.ws.max_abs_diff(wrong) > 1e-3


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_batched_equals_loop_shared_order_with_extra_loss(optimizer):
    d, ws, _, lr, wd = _setup("mnist1d", "mlp 40-16-16-10 relu", torch.float64)
    lr = lr / 10 if optimizer == "adam" else lr

    def l1(w):
        return 1e-3 * w.flatten().abs().sum(1)

    res = train_batched(ws, d, 1, lr, wd, 50, generator=torch.Generator().manual_seed(5), extra_loss=l1,
                        max_steps=5, progress=False, optimizer=optimizer)
    ref = train_loop(ws, d, 1, lr, wd, 50, generator=torch.Generator().manual_seed(5), extra_loss=l1, max_steps=5,
                     optimizer=optimizer)
    assert res.ws.max_abs_diff(ref) <= 1e-11
    no_l1 = train_batched(ws, d, 1, lr, wd, 50, generator=torch.Generator().manual_seed(5), max_steps=5,
                          progress=False, optimizer=optimizer)
    assert res.ws.max_abs_diff(no_l1.ws) > 1e-6
    assert float(l1(res.ws).sum()) < float(l1(no_l1.ws).sum())


def test_checkpoints_metrics_and_evaluate():
    d, ws, seeds, lr, wd = _setup("digits", "conv2d 1-4-4/10 k3 relu 1x8x8", torch.float32)
    res = train_batched(ws, d, 3, lr, wd, 64, seeds=seeds, checkpoint_epochs=(0, 1, 3), progress=False)
    assert sorted(res.checkpoints) == [0, 1, 3] and res.checkpoints[0].max_abs_diff(ws) == 0
    assert res.checkpoints[3].max_abs_diff(res.ws) == 0
    assert res.metrics["test_acc"].shape == (3, 4) and res.history.shape == (3, 4)
    loss, acc = evaluate(res.ws, d.x_test, d.y_test, chunk=7)
    assert torch.allclose(loss, res.metrics["test_loss"][-1], atol=1e-5)
    for b in range(4):  # against torch.nn
        out = res.ws.to_module(b)(d.x_test)
        assert abs(float((out.argmax(1) == d.y_test).float().mean()) - float(acc[b])) < 1e-6
        assert abs(float(torch.nn.functional.cross_entropy(out, d.y_test)) - float(loss[b])) < 1e-4


def test_divergent_network_is_frozen_finite_and_flagged():
    d, ws, seeds, _, wd = _setup("mnist1d", "mlp 40-16-16-10 relu", torch.float32)
    lr = torch.tensor([0.01, 1e6, 0.01, 0.01])
    res = train_batched(ws, d, 2, lr, wd, 64, seeds=seeds, progress=False)
    assert res.diverged.tolist() == [False, True, False, False]
    res.ws.check_finite()


def test_bad_arguments_are_clear_errors():
    d, ws, seeds, lr, wd = _setup("mnist1d", "mlp 40-16-16-10 relu", torch.float32)
    with pytest.raises(ValueError, match="lr must be a scalar or a \\[B=4\\]"):
        train_batched(ws, d, 1, lr[:2], wd, 64, progress=False)
    with pytest.raises(ValueError, match="3 seeds for B=4"):
        train_batched(ws, d, 1, lr, wd, 64, seeds=[1, 2, 3], progress=False)
    with pytest.raises(ValueError, match="optimizer must be"):
        train_batched(ws, d, 1, lr, wd, 64, optimizer="rmsprop", progress=False)
