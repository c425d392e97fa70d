"""Figures and plain-word lines of notebook 07 (scalegmn_lite.course.operator_figures)."""

import re

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from scalegmn_lite.common.claims import interval_claim  # noqa: E402
from scalegmn_lite.course.operator_figures import (  # noqa: E402
    claim_line,
    interval_verdict,
    mean_accuracy_lines,
    plot_before_after,
    plot_regime,
    plot_training_runs,
    points,
    training_summary,
    transfer_lines,
)

E_NOTATION = re.compile(r"\d[eE][+-]?\d")


def _clean(text: str) -> bool:
    return "nan" not in text.lower() and not E_NOTATION.search(text)


def test_points():
    assert points(0.0906) == "+9.1"
    assert points(-0.05, sign=False) == "-5.0"


def test_before_after_title_and_validation():
    before = np.array([0.3, 0.4, 0.5, 0.6])
    after = before + np.array([0.1, 0.1, -0.02, 0.1])
    fig = plot_before_after(before, after)
    title = fig.axes[0].get_title()
    assert "4 held-out networks" in title and "+7.0 points" in title and "95% interval" in title
    plt.close(fig)
    with pytest.raises(ValueError):
        plot_before_after(before, after[:3])


def _training():
    return pd.DataFrame({"setting": ["a", "a", "b"], "method": ["scalegmn-b", "scalegmn-b", "gmn"], "seed": [0, 1, 0],
                         "first_loss": [1.6, 1.5, 1.0], "final_loss": [1.5, 1.4, 1.1], "rollbacks": [0, 1, 0],
                         "seconds": [10.0, 12.0, 8.0]})


def test_training_runs_and_summary():
    fig = plot_training_runs(_training())
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == ["a · scalegmn-b", "b · gmn"]
    plt.close(fig)
    text = training_summary(_training())
    assert text.startswith("3 runs, 1 rollback in all; the training loss fell in 2 of 3 runs") and _clean(text)


def test_regime_without_published_row():
    table = pd.DataFrame({"setting": ["s", "s"], "method": ["gmn-aug", "sgd-150"], "gain": [0.06, 0.2],
                          "published gain": [np.nan, 0.066]})
    fig = plot_regime(table)
    assert "published" in [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    plt.close(fig)


@pytest.mark.parametrize("lo, hi, op, t, want", [
    (0.01, 0.02, ">", 0.0, "holds"), (-0.02, -0.01, ">", 0.0, "refuted"), (-0.01, 0.01, ">", 0.0, "inconclusive"),
    (0.05, 0.09, ">=", 0.1, "refuted"), (0.09, 0.11, ">=", 0.1, "inconclusive"), (-0.2, -0.1, "<", 0.0, "holds"),
])
def test_interval_verdict(lo, hi, op, t, want):
    assert interval_verdict(lo, hi, op, t) == want


def test_claim_line_words_follow_the_interval():
    holds = interval_claim("operator-gain-cnn", "s", {"mean": 0.09, "ci": [0.076, 0.105], "seeds": 3}, ">", 0.0)
    refuted = interval_claim("cnn-one-shot-beats-sgd150", "s", {"mean": -0.04, "ci": [-0.05, -0.03]}, ">", 0.0)
    straddles = interval_claim("operator-gain-cnn-published", "s", {"mean": 0.09, "ci": [0.076, 0.105]}, ">=", 0.1)
    assert "-> reproduced" in claim_line(holds) and "not reproduced" not in claim_line(holds)
    assert "not reproduced at this budget: the interval lies on the other side" in claim_line(refuted)
    line = claim_line(straddles)
    assert "not reproduced at this budget: the interval contains the target" in line and "(target >= 10)" in line
    assert "+9.0 [95% interval +7.6 to +10.5] points" in line
    for c in (holds, refuted, straddles):
        assert _clean(claim_line(c)) and claim_line(c) == claim_line(c.to_dict())


def test_claim_line_special_units_and_mismatch():
    speed = {"id": "one-shot-1000x-faster", "status": "refuted", "ci": None, "measured": 179.8, "target": ">= 1000"}
    assert claim_line(speed) == "one-shot-1000x-faster: 180x (target >= 1000) -> not reproduced at this budget"
    slope = {"id": "gain-grows-with-gscale-dim", "status": "holds", "ci": [1.2e-05, 1.2e-04], "target": "> 0",
             "measured": {"slope": 6.8e-05, "mlp": [8, -0.003]}}
    assert _clean(claim_line(slope)) and "+0.0068" in claim_line(slope)
    wrong = {"id": "x", "status": "holds", "ci": [-0.1, -0.05], "measured": -0.07, "target": "> 0 (95% interval)"}
    with pytest.raises(ValueError, match="interval says 'refuted'"):
        claim_line(wrong)


def test_accuracy_and_transfer_lines_have_no_nan():
    table = pd.DataFrame({"setting": ["a", "a", "b"], "method": ["initial", "gmn-aug", "initial"],
                          "mean_acc": [0.321, 0.323, 0.622]})
    assert mean_accuracy_lines(table) == ["a: initial 32.1%, gmn-aug 32.3%", "b: initial 62.2%"]
    rows = [{"transfer": "width/depth", "arch": "mlp 40-64-10 tanh", "seen_in_training": False, "networks": 12.0,
             "initial_acc": 0.2367, "one_shot_acc": 0.2351, "gain": -0.0016, "target": np.nan,
             "own_operator_acc": np.nan},
            {"transfer": "cnn -> mlp", "arch": np.nan, "seen_in_training": np.nan, "networks": np.nan,
             "initial_acc": 0.409, "one_shot_acc": 0.402, "gain": -0.007, "target": "mlp 40-32-10 tanh",
             "own_operator_acc": 0.4077}]
    lines = transfer_lines(rows)
    assert lines[0] == "width/depth, mlp 40-64-10 tanh (never seen, 12 networks): 23.7% -> 23.5% (-0.2 points)"
    assert lines[1].endswith("its own operator reaches 40.8%") and all(_clean(x) for x in lines)


def test_plot_claims_one_row_per_interval_claim():
    from scalegmn_lite.course.operator_figures import plot_claims

    claims = [interval_claim("a", "s", {"mean": 0.09, "ci": [0.076, 0.105]}, ">", 0.0),
              interval_claim("b", "s", {"mean": 0.09, "ci": [0.076, 0.105]}, ">=", 0.1),
              {"id": "one-shot-1000x-faster", "status": "refuted", "ci": None, "measured": 179.8, "target": ">= 1000"}]
    fig = plot_claims(claims)
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["a", "b"]
    plt.close(fig)


def test_gauge_diagram_records_the_permutation_and_scalings():
    import sympy as sp

    from scalegmn_lite.course.operator_figures import draw_gauge_action, gauge_diagram
    from scalegmn_lite.symbolic.mlp import sample_symbolic_gauge
    from scalegmn_lite.weightspace.spec import NetworkSpec

    spec = NetworkSpec.from_text("mlp 3-3-3-2 relu")
    perms, scales = sample_symbolic_gauge(spec, seed=0)
    d = gauge_diagram(spec.widths, perms, scales)
    assert [s.tolist() for s in d.source[1:-1]] == [list(p) for p in perms]
    assert d.source[0].tolist() == [0, 1, 2] and d.source[-1].tolist() == [0, 1]  # input, output fixed
    assert d.labels[1][0] == f"${sp.latex(scales[0][0])}$" and d.labels[0] == ("",) * 3
    fig = draw_gauge_action(d)
    # the g . theta panel numbers every slot by the neuron it holds: a permutation of each hidden layer
    shown = [t.get_text() for t in fig.axes[1].texts if t.get_text().isdigit()]
    assert sorted(shown) == sorted(str(i) for n in spec.widths for i in range(n))
    plt.close(fig)
    assert gauge_diagram([2, 3, 1], [[2, 0, 1]], [[1, -1, 1]]).labels[1] == ("1", "-1", "1")


def test_gauge_diagram_rejects_bad_input():
    from scalegmn_lite.course.operator_figures import gauge_diagram

    with pytest.raises(ValueError, match="not a permutation"):
        gauge_diagram([2, 3, 1], [[0, 0, 1]], [[1, 1, 1]])
    with pytest.raises(ValueError, match="one permutation and one scaling per hidden layer"):
        gauge_diagram([2, 3, 3, 1], [[0, 1, 2]], [[1, 1, 1]])
    with pytest.raises(ValueError, match="no hidden layer"):
        gauge_diagram([2, 1], [], [])
    with pytest.raises(ValueError, match="2 scalings for 3 neurons"):
        gauge_diagram([2, 3, 1], [[0, 1, 2]], [[1, 1]])


def _operator_and_nets():
    import torch

    from scalegmn_lite.tasks.amortized.operator import AmortizedOperator
    from scalegmn_lite.weightspace.gauge import GaugeElement
    from scalegmn_lite.weightspace.spec import NetworkSpec
    from scalegmn_lite.weightspace.weights import WeightSpace

    torch.manual_seed(0)
    op = AmortizedOperator(hidden_dim=8, num_layers=1).double()
    with torch.no_grad():
        op.gmn.update_scales.fill_(0.5)
    spec = NetworkSpec.from_text("mlp 6-5-3 tanh")
    ws = WeightSpace.randn(spec, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    g = GaugeElement.sample(spec, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    return op, ws, g


def test_update_panels_equal_under_gauge_not_under_non_symmetry():
    from scalegmn_lite.course.operator_figures import draw_update_equivariance, update_panels
    from scalegmn_lite.weightspace.gauge import sample_non_symmetry

    op, ws, g = _operator_and_nets()
    p = update_panels(op, ws, g, lambda w: sample_non_symmetry(w, "wrong_scaling"), layer=1, index=1)
    assert p.delta_g.shape == p.g_delta.shape == p.delta_t.shape == (3, 5)
    assert np.abs(p.g_delta).max() > 1e-3  # a visible update
    assert p.gauge_gap < 1e-9 < 1e-3 < p.non_symmetry_gap
    fig = draw_update_equivariance(p)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert [t for t in titles if t.startswith("difference")] == [
        f"difference: max |diff| = {p.gauge_gap:.1e}", f"difference: max |diff| = {p.non_symmetry_gap:.1e}"]
    plt.close(fig)


def test_update_panels_rejects_bad_input():
    from scalegmn_lite.course.operator_figures import draw_update_equivariance, update_panels
    from scalegmn_lite.weightspace.gauge import GaugeElement
    from scalegmn_lite.weightspace.spec import NetworkSpec

    op, ws, g = _operator_and_nets()
    with pytest.raises(ValueError, match="layer 2 out of range"):
        update_panels(op, ws, g, lambda w: w, layer=2)
    with pytest.raises(ValueError, match="index 5 out of range"):
        update_panels(op, ws, g, lambda w: w, index=5)
    other = GaugeElement.identity(NetworkSpec.from_text("mlp 6-4-3 tanh"), 2)
    with pytest.raises(ValueError, match="the gauge element is for"):
        update_panels(op, ws, other, lambda w: w)
    p = update_panels(op, ws, g, lambda w: w)
    with pytest.raises(ValueError, match="expected 6 axes"):
        draw_update_equivariance(p, axes=plt.subplots(1, 2)[1])
    plt.close("all")
