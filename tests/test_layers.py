"""Layers: ScaleInv views, ScaleEq and one message-passing layer, per view kind."""

import pytest
import torch

from scalegmn_lite.nn.layers import (
    VIEW_FREE,
    VIEW_NONZERO,
    VIEW_POSITIVE,
    VIEW_SIGN,
    GraphTopology,
    KindGroups,
    ScaleEq,
    ScaleGMNLayer,
    ScaleInv,
    normalize_guarded,
)

torch.set_num_threads(1)


def _q(kind, n, gen):
    if kind == VIEW_POSITIVE:
        return torch.exp(torch.empty(n, 1, dtype=torch.float64).uniform_(-2, 2, generator=gen))
    if kind == VIEW_SIGN:
        return torch.randint(0, 2, (n, 1), generator=gen).double() * 2 - 1
    if kind == VIEW_NONZERO:
        return _q(VIEW_POSITIVE, n, gen) * _q(VIEW_SIGN, n, gen)
    return torch.ones(n, 1, dtype=torch.float64)


@pytest.mark.parametrize("sign_view", ["symmetrize", "abs"])
@pytest.mark.parametrize("kind", [VIEW_FREE, VIEW_POSITIVE, VIEW_SIGN, VIEW_NONZERO])
def test_scale_inv_invariant_and_scale_eq_equivariant(kind, sign_view):
    gen = torch.Generator().manual_seed(kind)
    x = torch.randn(20, 6, generator=gen, dtype=torch.float64)
    q = _q(kind, 20, gen)
    inv = ScaleInv(6, sign_view).double()
    assert torch.allclose(inv(q * x, kind), inv(x, kind), atol=1e-12)
    eq = ScaleEq(6, 4, sign_view).double()
    assert torch.allclose(eq(q * x, kind), q * eq(x, kind), atol=1e-12)


def test_wrong_view_is_not_invariant():
    """x/||x|| is not sign invariant; |x| is not invariant to positive scaling."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(10, 5, generator=gen, dtype=torch.float64)
    inv = ScaleInv(5, "abs").double()
    assert not torch.allclose(inv(-x, VIEW_POSITIVE), inv(x, VIEW_POSITIVE))
    assert not torch.allclose(inv(3 * x, VIEW_SIGN), inv(x, VIEW_SIGN))
    assert not torch.allclose(inv(2 * x, VIEW_FREE), inv(x, VIEW_FREE))


def test_mixed_kinds_per_row():
    gen = torch.Generator().manual_seed(1)
    kinds = torch.tensor([VIEW_FREE, VIEW_POSITIVE, VIEW_SIGN, VIEW_NONZERO] * 5)
    x = torch.randn(20, 6, generator=gen, dtype=torch.float64)
    q = torch.cat([_q(int(k), 1, gen) for k in kinds])
    eq = ScaleEq(6, 3).double()
    groups = KindGroups(kinds)
    assert torch.allclose(eq(q * x, groups), q * eq(x, groups), atol=1e-12)
    for k in range(4):  # rows agree with the single-kind computation
        assert torch.allclose(eq(x, groups)[kinds == k], eq(x[kinds == k], k))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_guard_finite_values_and_gradients(dtype):
    x = torch.tensor([[0.0, 0.0, 0.0], [1e-30, 0.0, -1e-30], [1e-8, 2e-8, 0.0], [1.0, 2.0, 3.0]], dtype=dtype,
                     requires_grad=True)
    eq = ScaleEq(3, 2).to(dtype)
    y = normalize_guarded(x, 1e-6).sum() + eq(x, VIEW_POSITIVE).sum() + eq(x, VIEW_NONZERO).sum()
    y.backward()
    assert torch.isfinite(y) and bool(torch.isfinite(x.grad).all())
    # ScaleEq is homogeneous of degree 1: its gradient stays bounded near zero
    x2 = x.detach().clone().requires_grad_(True)
    eq(x2, VIEW_POSITIVE).sum().backward()
    assert float(x2.grad.abs().max()) < 1e3
    # invariance holds where the guard is inactive (norm >= eps), and not below it
    z = torch.randn(4, 3, dtype=torch.float64) * 1e-3
    assert torch.allclose(normalize_guarded(5 * z), normalize_guarded(z))
    assert not torch.allclose(normalize_guarded(5 * z * 1e-6), normalize_guarded(z * 1e-6))


def _toy_graph(gen):
    """Two layers 3 -> 4 -> 2 (input, hidden, output vertices)."""
    s = torch.arange(3).repeat_interleave(4)
    t = torch.arange(3, 7).repeat(3)
    s2 = torch.arange(3, 7).repeat_interleave(2)
    t2 = torch.arange(7, 9).repeat(4)
    ei = torch.stack([torch.cat([s, s2]), torch.cat([t, t2])])
    return ei


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("kind", [VIEW_POSITIVE, VIEW_SIGN])
def test_layer_equivariant(kind, bidirectional):
    gen = torch.Generator().manual_seed(2)
    ei = _toy_graph(gen)
    d = 5
    vk = torch.tensor([VIEW_FREE] * 3 + [kind] * 4 + [VIEW_FREE] * 2)
    ek = torch.where((vk[ei[0]] != VIEW_FREE) | (vk[ei[1]] != VIEW_FREE), kind, VIEW_FREE)
    groups = GraphTopology(vk, ek, ei)
    layer = ScaleGMNLayer(d, bidirectional=bidirectional).double()
    x = torch.randn(9, d, generator=gen, dtype=torch.float64)
    e = torch.randn(ei.shape[1], d, generator=gen, dtype=torch.float64)
    q = torch.ones(9, 1, dtype=torch.float64)
    q[3:7] = _q(kind, 4, gen)
    x1, (e1,) = layer(x, [e], groups)
    x2, (e2,) = layer(q * x, [q[ei[1]] / q[ei[0]] * e], groups)
    assert torch.allclose(x2, q * x1, atol=1e-12)
    assert torch.allclose(e2, q[ei[1]] / q[ei[0]] * e1, atol=1e-12)
    # a mismatched edge scaling (not a symmetry) changes the result
    x3, _ = layer(q * x, [e], groups)
    assert not torch.allclose(x3, q * x1, atol=1e-6)
