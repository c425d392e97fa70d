"""The ``gauge`` experiment's block-network claims (scalegmn_lite.experiments.gauge_blocks): each is a check that holds
on today's code, and each fails when the piece it checks is broken (a wrong closed form, a dropped constraint, a
non-symmetry passed as a symmetry, an ablated graph construction, a broken ScaleGMN internal)."""

from __future__ import annotations

from dataclasses import replace

import pytest
import sympy as sp
import torch

import scalegmn_lite.nn.scalegmn as scalegmn_module
from scalegmn_lite.experiments import gauge_blocks as gb
from scalegmn_lite.symbolic.residual import ResidualSizes
from scalegmn_lite.weightspace import BlockNetworkSpec
from scalegmn_lite.weightspace.block_gauge import BlockGauge, sample_non_symmetry

IDS = ["residual-gauge-smaller-than-plain", "batchnorm-free-scaling", "layernorm-single-scalar",
       "residual-scalegmn-exact", "norm-affine-construction-not-equivariant", "plain-twin-graph-blind-to-shortcut",
       "layernorm-per-vertex-over-invariant", "shortcut-edge-of-one-is-consistent"]
RESIDUAL = [ResidualSizes(2, 1, (3, 2), 1, post_relu=True), "mlp 5-6-[7-6]x2-[8-4|proj]-3 relu"]


@pytest.fixture(scope="module")
def quick():
    return gb.block_claims()


def test_every_block_claim_is_a_check_that_holds(quick):
    claims, seconds = quick
    assert [c.id for c in claims] == IDS and set(seconds) == set(IDS)
    for c in claims:
        assert c.kind == "check" and c.status == "holds" and c.holds, (c.id, c.measured)
        assert c.ci is None and c.statement and c.target
    dims = {text: (r, p) for text, r, p in claims[0].measured["dims"]}
    assert dims["mlp 5-6-[7-6]x2-[8-4|proj]-[5-4]-3 relu"] == (7 + 7 + 8 + 5 + 6 + 4, 7 + 7 + 8 + 5 + 3 * 6 + 2 * 4)
    assert claims[1].measured["algebra_dim_by_width"] == {"2": 2, "3": 3, "5": 5}
    assert claims[2].measured["algebra_dim_by_width"] == claims[2].measured["algebra_dim_by_derivative"] == \
        {"3": 1, "4": 1}


# ---------------------------------------------------------------- the derivations
def test_derived_dims_closed_forms_and_stripping():
    spec = BlockNetworkSpec.from_text("mlp 5-6-[7-6]x2-3 relu")
    assert gb.derived_dims(spec) == gb.closed_form_dims(spec) == (7 + 7 + 6, 7 + 7 + 3 * 6)
    bn = BlockNetworkSpec.from_text("mlp 5-6bn-[7ln-6]-3 relu")
    assert gb.strip_norms(bn).to_text() == "mlp 5-6-[7-6]-3 relu"
    assert gb.strip_norms(bn, ("layernorm",)).to_text() == "mlp 5-6bn-[7-6]-3 relu"
    assert gb.derived_dims(bn)[0] == bn.scale_dim == gb.derived_dims(gb.strip_norms(bn))[0] + 6 + 1
    dim, basis, n_eq = gb.prenorm_scaling_algebra("layernorm", 3)
    assert dim == 1 and n_eq > 0 and basis == sp.Matrix([1, 1, 1])
    assert gb.prenorm_scaling_algebra("batchnorm", 4)[:1] == (4,)
    with pytest.raises(ValueError, match="without norms"):
        gb.closed_form_dims(bn)


# ---------------------------------------------------------------- each claim can fail
def test_residual_dims_fail_with_a_wrong_closed_form(monkeypatch):
    assert gb.residual_dims_claim(RESIDUAL).status == "holds"
    monkeypatch.setattr(gb, "residual_dim_formula", lambda d_s, hidden: sum(hidden) + 2 * d_s)
    c = gb.residual_dims_claim(RESIDUAL)
    assert c.status == "refuted" and c.measured["closed_forms_agree"] is False


def test_residual_dims_fail_without_the_shortcut_rows(monkeypatch):
    original = gb.scaling_constraints
    monkeypatch.setattr(gb, "scaling_constraints", lambda spec, shortcuts=True: original(spec, False))
    c = gb.residual_dims_claim(RESIDUAL)
    assert c.status == "refuted"
    assert all(r == p for _, r, p in c.measured["dims"])  # the dims the constraints give: residual = plain
    assert c.measured["residual_element_max_change"] > 1e-3  # and its "symmetries" change the function


def test_batchnorm_claim_fails_on_a_non_symmetry(monkeypatch):
    flip = lambda bw, gen: sample_non_symmetry(bw, "batchnorm_sign_without_gamma", gen).weights
    c = gb.batchnorm_claim(gb.BN_SPECS["quick"], symmetry=flip)
    assert c.status == "refuted" and c.measured["symmetry_max_change"] > 1e-3
    # a pre-norm scaling that forgets var -> D^2 var is no symmetry either
    original = gb.prenorm_scaling
    monkeypatch.setattr(gb, "prenorm_scaling", lambda net, d: replace(original(net, d), running_var=net.running_var))
    c = gb.batchnorm_claim(gb.BN_SPECS["quick"])
    assert c.status == "refuted" and c.measured["symmetry_max_change"] > 1e-3


def test_batchnorm_claim_fails_when_the_algebra_is_cut(monkeypatch):
    """BatchNorm treated like LayerNorm (one common scalar): the dimension gain is no longer the width."""
    original = gb._norm_rows
    monkeypatch.setattr(gb, "_norm_rows", lambda kind, n: original("layernorm", n))
    c = gb.batchnorm_claim(gb.BN_SPECS["quick"])
    assert c.status == "refuted" and all(want != gain for _, want, gain in c.measured["dims"])


def test_layernorm_claim_fails_on_a_per_neuron_scaling_or_a_wrong_dimension(monkeypatch):
    per_neuron = lambda bw, gen: sample_non_symmetry(bw, "layernorm_neuron_scale", gen).weights
    c = gb.layernorm_claim(gb.LN_SPECS["quick"], widths=(3,), symmetry=per_neuron)
    assert c.status == "refuted" and c.measured["common_scalar_max_change"] > 1e-3
    original = gb.layernorm_scaling_derivation
    monkeypatch.setattr(gb, "layernorm_scaling_derivation", lambda n: replace(original(n), dim=2))
    c = gb.layernorm_claim(gb.LN_SPECS["quick"], widths=(3,))
    assert c.status == "refuted" and c.measured["algebra_dim_by_width"] == {"3": 2}


def test_scalegmn_exact_fails_on_ablations_and_a_broken_internal(monkeypatch):
    template = gb.GMN_TEMPLATES["quick"]
    # norms as affine layers: not equivariant
    c = gb.scalegmn_exact_claim(template, acts=("relu",), variant="norm_affine")
    assert c.status == "refuted" and c.measured["per_part_max"]["batchnorm_scale"] > 1e-4
    # the plain twin's graph: exact, but blind to the shortcut non-symmetries (the negative control fails)
    c = gb.scalegmn_exact_claim(template, acts=("relu",), variant="plain_twin")
    assert c.status == "refuted" and c.measured["max_rel_error"] <= 1e-9
    assert c.measured["non_symmetry_min_change"]["shortcut_edge_rescaled"] <= 1e-12
    # ScaleGMN forgetting that BatchNorm inputs are scaled (mode="auto" would RMS-normalise them)
    monkeypatch.setattr(scalegmn_module, "SYM_NONZERO", -1)
    c = gb.scalegmn_exact_claim(template, acts=("tanh",))
    assert c.status == "refuted" and c.measured["per_part_max"]["batchnorm_scale"] > 1e-6


@pytest.mark.parametrize("fn, variant", [(gb.norm_affine_claim, "norm_affine"),
                                         (gb.plain_twin_claim, "plain_twin"),
                                         (gb.layernorm_per_vertex_claim, "layernorm_per_vertex")])
def test_each_ablation_claim_is_refuted_by_the_exact_construction(fn, variant):
    assert fn(variant=variant).status == "holds"
    assert fn(variant="exact").status == "refuted"


def test_shortcut_edge_claim_fails_without_the_compensating_edge(monkeypatch):
    monkeypatch.setattr(BlockGauge, "shortcut_edge_factors", lambda self: (1.0,) * len(self.plan.shortcuts))
    c = gb.shortcut_edge_claim()
    assert c.status == "refuted"
    assert c.measured["compensated_function_change"] > 1e-3 and c.measured["invariant_rel_error"] > 1e-9


def test_block_claims_follow_the_device_and_seed():
    c = gb.shortcut_edge_claim(seed=3, device=torch.device("cpu"))
    assert c.status == "holds" and c.measured["shortcut_edge_max_dev_from_1"] == 0.0
