"""Notebook 09's course module for section 5 (scalegmn_lite.course.block_figures): exercise 5's check accepts the
notebook's folded solution and rejects typical wrong answers, its measured verdicts are clear cut, and every figure
helper draws (the block graph drawn from to_block_graph, edge by edge; the checker's figure and the blind pairs;
legends outside the data)."""

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402
from test_course_beyond import _close_figures, _legend_outside, notebook_solutions  # noqa: E402, F401

from scalegmn_lite.course.block_figures import (  # noqa: E402
    CONSTRUCTION_CHECKS,
    EXERCISE_09_5_NETWORK,
    check_construction_failures,
    construction_failures,
    draw_block_graph,
    measure_block_checks,
    plot_blind_pairs,
    plot_block_checks,
)
from scalegmn_lite.course.diagrams import text_overlaps  # noqa: E402
from scalegmn_lite.nn.block_graphs import EDGE_NORM, EDGE_SHORTCUT, VARIANTS, to_block_graph  # noqa: E402
from scalegmn_lite.nn.scalegmn import ScaleGMN  # noqa: E402
from scalegmn_lite.weightspace.block_weights import BlockWeights  # noqa: E402
from scalegmn_lite.weightspace.blocks import BlockNetworkSpec  # noqa: E402


# ----------------------------------------------------------------------------------------- exercise 5
def test_the_notebooks_solution_passes_its_check():
    assert check_construction_failures(notebook_solutions()["construction_fails"]).ok is True


SOLUTION_5 = {"exact": set(), "plain_twin": {"unshared_stream_scale", "shortcut_edge_rescaled"},
              "norm_affine": {"batchnorm_scale", "batchnorm_sign"}, "layernorm_per_vertex": set()}


def test_construction_failures():
    """The measured verdicts of exercise 5 are clear cut (rounding against failures many orders above it)."""
    truth = construction_failures()
    assert {k: set(v) for k, v in truth.items()} == SOLUTION_5
    assert all(v > 1e-5 for v in truth["norm_affine"].values())
    assert all(v < 1e-13 for v in truth["plain_twin"].values())
    assert set(CONSTRUCTION_CHECKS) >= set().union(*SOLUTION_5.values())
    assert BlockNetworkSpec.from_text(EXERCISE_09_5_NETWORK).scale_dim_terms["layernorm"] == 0  # no LayerNorm


def test_check_construction_failures():
    assert check_construction_failures(SOLUTION_5).ok is True
    as_lists = {k: sorted(v) for k, v in SOLUTION_5.items()}
    assert check_construction_failures(as_lists).ok is True
    no_blindness = {**SOLUTION_5, "plain_twin": set()}  # equivariant, so it "passes": the blindness is missed
    feedback = check_construction_failures(no_blindness)
    assert feedback.ok is False and "plain_twin also fails" in feedback.message
    ln_too = {**SOLUTION_5, "norm_affine": {"batchnorm_scale", "batchnorm_sign", "layernorm_scale"}}
    feedback = check_construction_failures(ln_too)
    assert feedback.ok is False and "passes layernorm_scale" in feedback.message
    assert check_construction_failures({"exact": set()}).ok is False  # a construction missing
    assert check_construction_failures({**SOLUTION_5, "exact": {"everything"}}).ok is False
    assert check_construction_failures(None).ok is None


# ----------------------------------------------------------------------------------------- figures
def _block_weights(text: str, batch: int = 1) -> BlockWeights:
    spec = BlockNetworkSpec.from_text(text)
    return BlockWeights.randn(spec, batch, torch.Generator().manual_seed(0), dtype=torch.float64)


@pytest.mark.parametrize("text, variant", [("mlp 3-4-[5bn-4]-[4ln-4]-2 relu eps=0", "exact"),
                                           ("mlp 3-4-[5bn-4]-[4ln-4]-2 relu eps=0", "plain_twin"),
                                           ("mlp 3-4bn-[5-4]x2-[4-3|proj]-2 relu", "exact"),
                                           ("mlp 2-[3-2]:identity-4ln-2 tanh", "exact")])
def test_block_graph_is_drawn_from_to_block_graph(text, variant):
    bw = _block_weights(text)
    graph = to_block_graph(bw, variant=variant)
    fig = draw_block_graph(bw, variant=variant)
    ax = fig.axes[0]
    vertices = [p.get_gid() for p in ax.patches if (p.get_gid() or "").startswith("vertex:")]
    edges = [line.get_gid() for line in ax.lines if (line.get_gid() or "").startswith("edge:")]
    assert len(vertices) == graph.num_nodes and len(edges) == graph.num_edges
    drawn_types = [int(g.split(":")[1]) for g in edges]
    assert drawn_types == graph.edge_type.tolist()
    assert drawn_types.count(EDGE_SHORTCUT) == int((graph.edge_type == EDGE_SHORTCUT).sum())
    assert drawn_types.count(EDGE_NORM) == int((graph.edge_type == EDGE_NORM).sum())
    pools = [p for p in ax.patches if (p.get_gid() or "").startswith("pool:")]
    assert len(pools) == len(set(graph.vpool[graph.vpool >= 0].tolist()))
    assert text_overlaps(fig) == []
    assert all(t.get_fontsize() >= 8 for t in ax.texts)
    assert _legend_outside(fig)
    legend = ax.get_legend()
    fig.canvas.draw()
    assert fig.bbox.contains(*legend.get_window_extent().p1)  # not cut off on the right
    if variant == "plain_twin":
        assert EDGE_SHORTCUT not in drawn_types


def test_block_graph_rejects_unreadable_networks():
    with pytest.raises(ValueError, match="too large to draw"):
        draw_block_graph(_block_weights("mlp 3-12-2 relu"))


@pytest.fixture(scope="module")
def block_checks():
    bw = _block_weights("mlp 3-4-[5bn-4]-[4ln-4]-2 relu eps=0")
    torch.manual_seed(0)
    models = {h: ScaleGMN(hidden_dim=8, num_layers=2, head=h, max_layers=16, max_kernel=1).double()
              for h in ("invariant", "equivariant")}
    return measure_block_checks(models, bw)


def test_measured_block_checks(block_checks):
    errors, changes = block_checks
    assert len(errors) == 2 * len(VARIANTS) * 8 and len(changes) == 2 * len(VARIANTS) * 4
    for r in errors:
        broken = r["construction"] == "norm_affine" and r["part"].startswith(("batchnorm", "layernorm"))
        assert (r["error"] > 1e-6) if broken else (r["error"] < 1e-13), r
    blind = {(r["construction"], r["kind"]) for r in changes if r["head"] == "invariant" and r["change"] < 1e-12}
    assert blind == {("plain_twin", "unshared_stream_scale"), ("plain_twin", "shortcut_edge_rescaled"),
                     ("layernorm_per_vertex", "layernorm_neuron_scale")}


def test_checker_and_pair_figures(block_checks):
    errors, changes = block_checks
    fig = plot_block_checks(errors, changes)
    assert len(fig.axes) == 3
    for ax in fig.axes:
        bars = [p for p in ax.patches if (p.get_gid() or "").startswith("bars:")]
        assert len(bars) == len(VARIANTS) * (8 if ax is not fig.axes[-1] else 4)
        assert ax.get_yscale() == "log"
        assert all(t.get_fontsize() >= 8 for t in ax.get_xticklabels() + ax.get_yticklabels())
    assert _legend_outside(fig) and text_overlaps(fig) == []
    rows = [dict(pair="a\nb", function=0.7, exact=5e-4, ablation="plain_twin", ablation_change=0.0),
            dict(pair="c", function=0.2, exact=1e-2, ablation="layernorm_per_vertex", ablation_change=8e-16)]
    fig = plot_blind_pairs(rows)
    assert len([p for p in fig.axes[0].patches if (p.get_gid() or "").startswith("pair:")]) == 6
    assert _legend_outside(fig) and text_overlaps(fig) == []
