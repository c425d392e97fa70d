"""Exercise checks of notebooks 06-08 added to scalegmn_lite.course.metanets: the published solution (the
same code as the notebooks' <details> blocks) passes, a plausible wrong answer fails, the stub is "not
attempted"."""

import math
from dataclasses import replace

import torch
from torch import nn

from scalegmn_lite import NetworkSpec
from scalegmn_lite.course.metanets import (
    check_best_scale,
    check_collapsed_loss,
    check_distillation,
    check_equivariance_verdicts,
    check_gauge_shift,
    check_gmn_encoder,
    check_noise_power,
    check_operator_equivariance,
    check_sum_readout,
    check_two_round_operator,
    check_weight_loss_floor,
)
from scalegmn_lite.nn.checks import check_equivariance
from scalegmn_lite.nn.graphs import graph_to_weights, to_graph
from scalegmn_lite.nn.layers import ScaleEq, ScaleInv
from scalegmn_lite.nn.layers.invariant import Kinds
from scalegmn_lite.nn.scalegmn import ScaleGMN, ScaleGMNConfig, apply_update, edge_view_kinds, vertex_view_kinds
from scalegmn_lite.tasks.merging.autoencoder import WeightAutoencoder


def stub(*args, **kwargs):
    raise NotImplementedError


# ----------------------------------------------------------------- notebook 07's minimal operator
INPUT, OUTPUT = 0, 2


class MinimalOperator(nn.Module):
    """As in notebook 07 (one message round in ``step``)."""

    def __init__(self, d=16, max_layers=8):
        super().__init__()
        self.embed_v, self.embed_e = nn.Linear(1, d, bias=False), nn.Linear(1, d, bias=False)
        self.io = nn.Parameter(0.5 * torch.randn(2, d))
        self.gamma_e, self.gamma_v = nn.Linear(d, d, bias=False), nn.Linear(d, d, bias=False)
        self.message, self.update = ScaleEq(2 * d, d), ScaleEq(2 * d, d)
        self.view = ScaleInv(d)
        self.gamma_out = nn.Linear(d, 1, bias=False)
        self.phi_out = nn.Sequential(nn.Linear(3 * d, d), nn.SiLU(), nn.Linear(d, 1))
        self.bias_out = ScaleEq(d, 1)
        self.steps = nn.Parameter(torch.full((max_layers,), 0.05))

    def step(self, x, e, src, dst, vk):
        z = torch.cat([x[dst], self.gamma_e(e) * self.gamma_v(x[src])], dim=-1)
        M = torch.zeros_like(x).index_add(0, dst, self.message(z, Kinds(vk[dst])))
        return x + self.update(torch.cat([x, M], dim=-1), Kinds(vk))

    def forward(self, ws):
        g = to_graph(ws)
        vk = vertex_view_kinds(g, "auto")
        ek = edge_view_kinds(vk, g.edge_index)
        src, dst = g.edge_index
        x = self.embed_v(g.x)
        x = x + (g.vtype == INPUT)[:, None] * self.io[0] + (g.vtype == OUTPUT)[:, None] * self.io[1]
        e = self.embed_e(g.edge_attr)
        x = self.step(x, e, src, dst, vk)
        views = torch.cat([self.view(x[src], Kinds(vk[src])), self.view(x[dst], Kinds(vk[dst])),
                           self.view(e, Kinds(ek))], dim=-1)
        d_weights = self.gamma_out(e) * self.phi_out(views)
        d_biases = self.bias_out(x, Kinds(vk))
        delta = graph_to_weights(g, d_biases, d_weights)[0]
        return apply_update(ws, delta, self.steps)


class TwoRoundOperator(MinimalOperator):  # the published solution of 07.2
    def step(self, x, e, src, dst, vk):
        for _ in range(2):
            x = super().step(x, e, src, dst, vk)
        return x


class StubOperator(MinimalOperator):  # the notebook's stub
    def step(self, x, e, src, dst, vk):
        raise NotImplementedError


# ----------------------------------------------------------------- reference solutions (as in the notebooks)
def my_gauge_shift(model, ws, g):
    a, b = model(ws), model(g.apply(ws))
    return float((a - b).abs().max() / a.abs().max())


def equivariant(op, ws):
    return check_equivariance(op, ws).ok()


def weight_loss_floor(theta, g_theta):
    return 0.5 * (theta.flatten() - g_theta.flatten()).pow(2).sum(1)


def distill(student, teacher, T):
    log_ps, log_pt = (student / T).log_softmax(-1), (teacher / T).log_softmax(-1)
    return T ** 2 * (log_pt.exp() * (log_pt - log_ps)).sum(-1).mean(1)


# ----------------------------------------------------------------- tests
def test_06_3_gauge_shift():
    assert check_gauge_shift(my_gauge_shift)
    assert not check_gauge_shift(lambda m, ws, g: float((m(ws) - m(g.apply(ws))).abs().mean()))  # not relative
    assert check_gauge_shift(stub).ok is None


def test_06_4_sum_readout():
    torch.manual_seed(0)
    summed = ScaleGMN(ScaleGMNConfig(hidden_dim=8, num_layers=2, readout="sum"))
    assert check_sum_readout(summed, True)
    assert not check_sum_readout(summed, False)  # it is still invariant
    assert not check_sum_readout(ScaleGMN(ScaleGMNConfig(hidden_dim=8, num_layers=2)), True)  # mean readout
    assert check_sum_readout(None, None).ok is None


def test_07_1_stub_left_at_none():
    assert check_operator_equivariance(None).ok is None
    assert check_operator_equivariance(stub).ok is None


def test_07_2_two_rounds():
    torch.manual_seed(0)
    fb = check_two_round_operator(TwoRoundOperator())
    assert fb, fb
    torch.manual_seed(0)
    one = check_two_round_operator(MinimalOperator())  # one round: equivariant but one hop only
    assert not one and "one hop" in one.message
    assert check_two_round_operator(StubOperator()).ok is None
    assert check_two_round_operator(None).ok is None


def test_07_3_collapsed_loss():
    assert check_collapsed_loss(math.log(10))
    assert not check_collapsed_loss(0.0)
    assert not check_collapsed_loss(math.log(2))
    assert check_collapsed_loss(None).ok is None


def test_07_4_equivariance_verdicts():
    assert check_equivariance_verdicts(equivariant)
    assert not check_equivariance_verdicts(lambda op, ws: check_equivariance(op, ws, scale=False).ok())  # perms only
    assert not check_equivariance_verdicts(lambda op, ws: True)
    assert check_equivariance_verdicts(stub).ok is None


def test_08_2_weight_loss_floor():
    assert check_weight_loss_floor(weight_loss_floor)
    assert not check_weight_loss_floor(lambda a, b: (a.flatten() - b.flatten()).pow(2).sum(1))  # the full distance
    assert check_weight_loss_floor(stub).ok is None


def test_08_3_distillation():
    assert check_distillation(distill)
    assert not check_distillation(lambda s, t, T: distill(s, t, T) / T ** 2)  # forgot the T^2 factor
    assert not check_distillation(lambda s, t, T: distill(t, s, T))  # KL in the wrong direction
    assert check_distillation(stub).ok is None


def test_08_4_noise_power():
    assert check_noise_power(4)
    assert not check_noise_power(2)  # the path and the blend differ at second order; the MSE squares it
    assert check_noise_power(None).ok is None


def test_08_5_best_scale():
    def closed_form(a0, a1, c0, c1):  # the positive root of the stationarity quartic, by a fine search
        t = torch.linspace(-6, 6, 24001, dtype=a0.dtype).exp()[None]
        A, C = (a1 * a1).sum(1, keepdim=True), (a0 * a1).sum(1, keepdim=True)
        B, D = (c1 * c1).sum(1, keepdim=True), (c0 * c1).sum(1, keepdim=True)
        return t[0][(t * t * A - 2 * t * C + B / t / t - 2 * D / t).argmin(1)]

    assert check_best_scale(closed_form)
    # matching the row norms (the canonical scale) is not the closest scaling
    assert not check_best_scale(lambda a0, a1, c0, c1: a0.norm(dim=1) / a1.norm(dim=1))
    assert not check_best_scale(lambda a0, a1, c0, c1: -closed_form(a0, a1, c0, c1))  # not positive
    assert not check_best_scale(lambda a0, a1, c0, c1: torch.ones(3, dtype=a0.dtype))  # wrong size
    assert check_best_scale(lambda *a: None).ok is None


def test_08_6_gmn_encoder():
    torch.manual_seed(0)
    ae = WeightAutoencoder(NetworkSpec.from_text("siren 2-8-8-1"))
    gmn = ScaleGMN(replace(ae.encoder.config, mode="permutation"))
    fb = check_gmn_encoder(gmn, "sign")
    assert fb, fb
    assert not check_gmn_encoder(gmn, "permutation")
    assert not check_gmn_encoder(ae.encoder, "sign")  # mode "auto": still invariant to sign flips
    assert check_gmn_encoder(None, None).ok is None
