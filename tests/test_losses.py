"""Tests for scalegmn_lite.tasks.losses: batched objectives checked against per-network loops."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from scalegmn_lite.tasks.losses import (
    accuracy,
    amortized_objective,
    classification_loss,
    coordinate_grid,
    distillation_kl,
    inr_mse,
    l1_norm,
    l1_reduction,
    near_zero_fraction,
    psnr,
    render_inr,
)
from scalegmn_lite.weightspace.gauge import GaugeElement, sample_non_symmetry
from scalegmn_lite.weightspace.spec import NetworkSpec, SpecError
from scalegmn_lite.weightspace.weights import WeightSpace

SPECS = ["mlp 6-5-4-3 relu", "mlp 6-5-3 tanh", "conv1d 2-4-3/3 k3 relu 2x9"]


def _data(spec: NetworkSpec, n: int, gen: torch.Generator):
    shape = spec.input_shape or (spec.layers[0].in_dim,)
    x = torch.randn(n, *shape, generator=gen, dtype=torch.float64)
    y = torch.randint(0, spec.layers[-1].out_dim, (n,), generator=gen)
    return x, y


@pytest.mark.parametrize("text", SPECS)
def test_classification_loss_and_accuracy_match_loop(text):
    gen = torch.Generator().manual_seed(0)
    spec = NetworkSpec.from_text(text)
    ws = WeightSpace.randn(spec, 4, gen, dtype=torch.float64)
    x, y = _data(spec, 17, gen)
    ce, acc = classification_loss(ws, x, y), accuracy(ws, x, y)
    assert ce.shape == acc.shape == (4,)
    for b, m in enumerate(ws.to_modules()):
        z = m(x)
        assert math.isclose(float(ce[b]), float(F.cross_entropy(z, y)), rel_tol=1e-10)
        assert math.isclose(float(acc[b]), float((z.argmax(1) == y).double().mean()), abs_tol=1e-12)


def test_per_network_data():
    gen = torch.Generator().manual_seed(1)
    spec = NetworkSpec.from_text("mlp 6-5-3 relu")
    ws = WeightSpace.randn(spec, 3, gen, dtype=torch.float64)
    x = torch.randn(3, 8, 6, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 3, (3, 8), generator=gen)
    ce = classification_loss(ws, x, y, per_network=True)
    for b in range(3):
        assert torch.allclose(ce[b], classification_loss(ws[b], x[b], y[b])[0])


def test_loss_is_gauge_invariant_but_not_under_non_symmetry():
    gen = torch.Generator().manual_seed(2)
    spec = NetworkSpec.from_text("mlp 6-5-4-3 relu")
    ws = WeightSpace.randn(spec, 3, gen, dtype=torch.float64)
    x, y = _data(spec, 20, gen)
    g = GaugeElement.sample(spec, 3, gen, dtype=torch.float64)
    assert torch.allclose(classification_loss(g.apply(ws), x, y), classification_loss(ws, x, y), atol=1e-12)
    bad = sample_non_symmetry(ws, "uncoupled_permutation", gen)
    assert (classification_loss(bad, x, y) - classification_loss(ws, x, y)).abs().max() > 1e-3
    # the L1 norm is *not* scale invariant: this is what lets the penalty choose a point on the orbit
    assert (l1_norm(g.apply(ws)) - l1_norm(ws)).abs().max() > 1e-3


def test_norms_by_hand():
    spec = NetworkSpec.from_text("mlp 2-2-1 relu")
    ws = WeightSpace(
        spec,
        [torch.tensor([[[1.0, -2.0], [0.0, 1e-4]]]), torch.tensor([[[3.0, 0.0]]])],
        [torch.tensor([[0.5, 0.0]]), torch.tensor([[-1.0]])],
    )
    assert float(l1_norm(ws)[0]) == pytest.approx(1 + 2 + 1e-4 + 3 + 0.5 + 1)
    assert float(l1_norm(ws, include_biases=False)[0]) == pytest.approx(1 + 2 + 1e-4 + 3)
    # 9 parameters; |p| < 1e-3: 0, 1e-4, 0 (weight), 0 (bias) -> 4/9
    assert float(near_zero_fraction(ws, tol=1e-3)[0]) == pytest.approx(4 / 9)
    assert float(near_zero_fraction(ws, tol=1e-3, include_biases=False)[0]) == pytest.approx(3 / 6)
    assert float(l1_reduction(ws, ws * 0.25)[0]) == pytest.approx(75.0)


def test_amortized_objective_value_and_gradient():
    gen = torch.Generator().manual_seed(3)
    spec = NetworkSpec.from_text("mlp 6-5-3 tanh")
    ws = WeightSpace.randn(spec, 2, gen, dtype=torch.float64).requires_grad_()
    x, y = _data(spec, 10, gen)
    lam = 0.01
    obj = amortized_objective(ws, x, y, lam)
    assert torch.allclose(obj, lam * l1_norm(ws) + classification_loss(ws, x, y))
    obj.sum().backward()
    grads = [t.grad for t in ws.params()]
    assert all(gr is not None and torch.isfinite(gr).all() for gr in grads)
    # the L1 part contributes lam * sign(theta): compare with the CE-only gradient
    ws2 = ws.detach().clone().requires_grad_()
    classification_loss(ws2, x, y).sum().backward()
    for t, t2 in zip(ws.params(), ws2.params()):
        assert torch.allclose(t.grad - t2.grad, lam * torch.sign(t.detach()), atol=1e-12)
    with pytest.raises(ValueError, match="lam"):
        amortized_objective(ws, x, y, -1.0)


def test_distillation_kl():
    gen = torch.Generator().manual_seed(4)
    spec = NetworkSpec.from_text("mlp 6-5-3 relu")
    teacher = WeightSpace.randn(spec, 3, gen, dtype=torch.float64).requires_grad_()
    student = WeightSpace.randn(spec, 3, gen, dtype=torch.float64).requires_grad_()
    x, _ = _data(spec, 12, gen)
    assert distillation_kl(teacher, teacher.detach(), x, 2.0).abs().max() < 1e-12
    T = 3.0
    kl = distillation_kl(student, teacher, x, T)
    zs, zt = student(x), teacher(x).detach()
    manual = F.kl_div(F.log_softmax(zs / T, -1), F.log_softmax(zt / T, -1), log_target=True,
                      reduction="none").sum(-1).mean(1) * T * T
    assert torch.allclose(kl, manual, atol=1e-12)
    assert (kl > 0).all()
    # precomputed teacher logits give the same value; the teacher receives no gradient
    assert torch.allclose(distillation_kl(student, zt, x, T), kl)
    kl.sum().backward()
    assert all(t.grad is None for t in teacher.params())
    assert all(t.grad is not None for t in student.params())
    with pytest.raises(SpecError, match="teacher"):
        distillation_kl(student, teacher[:2], x)


def test_inr_render_mse_psnr():
    gen = torch.Generator().manual_seed(5)
    spec = NetworkSpec.from_text("mlp 2-8-8-1 sine")
    ws = WeightSpace.randn(spec, 3, gen, dtype=torch.float64)
    coords = coordinate_grid(4, 5, dtype=torch.float64)
    assert coords.shape == (20, 2) and float(coords.min()) == -1.0 and float(coords.max()) == 1.0
    img = render_inr(ws, coords)
    assert img.shape == (3, 20, 1)
    assert torch.allclose(img[1], ws.to_module(1)(coords))
    assert inr_mse(ws, ws, coords).abs().max() == 0
    target = img + 0.1  # MSE 0.01 -> PSNR 20 dB at data range 1
    assert torch.allclose(inr_mse(ws, target, coords), torch.full((3,), 0.01, dtype=torch.float64))
    assert torch.allclose(psnr(ws, target, coords), torch.full((3,), 20.0, dtype=torch.float64))
    assert torch.allclose(psnr(ws, target, coords, data_range=2.0), torch.full((3,), 20 + 20 * math.log10(2),
                                                                              dtype=torch.float64))
    with pytest.raises(SpecError, match="coords"):
        render_inr(ws, torch.zeros(10, 3))


def test_clear_errors():
    gen = torch.Generator().manual_seed(6)
    mlp = WeightSpace.randn(NetworkSpec.from_text("mlp 6-5-3 relu"), 2, gen)
    x = torch.randn(4, 6)
    with pytest.raises(SpecError, match="expects \\(6,\\)"):
        classification_loss(mlp, torch.randn(4, 7), torch.zeros(4, dtype=torch.long))
    with pytest.raises(SpecError, match="outputs"):
        classification_loss(mlp, x, torch.tensor([0, 1, 2, 3]))
    with pytest.raises(SpecError, match="integer"):
        classification_loss(mlp, x, torch.zeros(4))
    with pytest.raises(SpecError, match="one label per input"):
        classification_loss(mlp, x, torch.zeros(5, dtype=torch.long))
    with pytest.raises(SpecError, match="per_network"):
        classification_loss(mlp, torch.randn(3, 4, 6), torch.zeros(4, dtype=torch.long), per_network=True)
    conv = WeightSpace.randn(NetworkSpec.from_text("conv1d 2-4-3/3 k3 relu 2x9"), 2, gen)
    with pytest.raises(SpecError, match="expects"):
        classification_loss(conv, torch.randn(4, 2, 10), torch.zeros(4, dtype=torch.long))
    conv_noshape = WeightSpace.randn(NetworkSpec.from_text("conv1d 2-4-3/3 k3 relu"), 2, gen)
    with pytest.raises(SpecError, match="channel"):
        classification_loss(conv_noshape, torch.randn(4, 9), torch.zeros(4, dtype=torch.long))
