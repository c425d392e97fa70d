"""Notebook 05's figures (scalegmn_lite.course.layer_figures): each returns a Figure with the expected axes and
labels, the heat-maps show equal features for symmetries and different ones for a non-symmetry, the
views plot shows the library's views, and the section figures (scaling bars, per-edge ratios, toy graph,
heat-maps from given tensors, library-vs-rebuilt scatter) plot the data they are given and expose the
stated scalings."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from scalegmn_lite import NetworkSpec, WeightSpace  # noqa: E402
from scalegmn_lite.course.layer_figures import (  # noqa: E402
    FeaturePanels,
    agreement,
    default_feature_panels,
    draw_agreement,
    draw_edge_scaling,
    draw_equivariance_heatmaps,
    draw_invariant_views,
    draw_scalegmn_layer,
    draw_scaling_bars,
    draw_toy_graph,
    edge_scaling,
    feature_panels,
    gauge_on_vertices,
    invariant_view_curves,
    scaling_bars,
    vertex_feature_panels,
)
from scalegmn_lite.nn.layers import VIEW_SIGN, symmetrize  # noqa: E402
from scalegmn_lite.nn.scalegmn import ScaleGMN, ScaleGMNConfig  # noqa: E402
from scalegmn_lite.weightspace.gauge import GaugeElement  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def panels():
    return default_feature_panels()


def _texts(fig):
    return " ".join(t.get_text() for ax in fig.axes for t in ax.texts + [ax.title, ax.xaxis.label, ax.yaxis.label])


@pytest.mark.parametrize("bidirectional", [True, False])
def test_layer_schematic_names_the_library_pieces(bidirectional):
    fig = draw_scalegmn_layer(bidirectional=bidirectional)
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    text = _texts(fig)
    for piece in ["ScaleInv", "ScaleEq", "m_{st}", r"\sum_s", "x_t'", "e_{st}'", "edge MLP", "ScaleGMNLayer"]:
        assert piece in text, piece
    assert ("B_t" in text) == bidirectional
    assert len(fig.axes[0].patches) >= 8  # the boxes


def test_layer_schematic_draws_on_a_given_axes():
    fig, ax = plt.subplots()
    assert draw_scalegmn_layer(ax) is fig
    with pytest.raises(ValueError, match="expected 1 axes"):
        draw_scalegmn_layer([ax, ax])


def test_view_curves_are_the_library_views():
    c = invariant_view_curves()
    # positive view: one point for the whole ray q x, q > 0, on the unit circle; the opposite one for -q x
    assert np.allclose(c.view_pos, c.view_pos[0]) and np.isclose(np.linalg.norm(c.view_pos[0]), 1)
    assert np.allclose(c.view_neg, -c.view_pos)
    # sign view: u tanh(u/2) = SiLU(u) + SiLU(-u), even, as the library's symmetrize computes it
    assert np.allclose(c.even, c.u * np.tanh(c.u / 2)) and np.allclose(c.silu_sum, c.even)
    assert np.allclose(c.even, c.even[::-1]) and np.allclose(c.even_abs, np.abs(c.u))
    u = torch.as_tensor(c.u)
    assert np.allclose(symmetrize(u, VIEW_SIGN).numpy(), c.even)
    # against q: positive view flat on q > 0 but not sign invariant; sign view even in q but not flat
    pos = c.q > 0
    assert np.allclose(c.scaled_pos[pos], c.scaled_pos[pos][0])
    assert not np.allclose(c.scaled_pos[~pos], c.scaled_pos[pos][0])
    assert np.allclose(c.scaled_sign, c.scaled_sign[::-1]) and np.ptp(c.scaled_sign[pos]) > 0.1


def test_views_figure_plots_the_curves():
    c = invariant_view_curves()
    fig = draw_invariant_views(c)
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    a, b, d = fig.axes
    assert a.get_xlabel() == "channel 1" and b.get_ylabel() == "$v(u)$" and d.get_xlabel() == "$q$"
    ys = [line.get_ydata() for line in b.lines]
    assert any(len(y) == len(c.even) and np.allclose(y, c.even) for y in ys)
    assert any(line.get_label().startswith("VIEW_POSITIVE") for line in d.lines)
    assert any(line.get_label().startswith("VIEW_SIGN") for line in d.lines)


@pytest.mark.parametrize("bad", [(0.0, 0.0), (1.0,), [[1.0, 2.0]], (float("nan"), 1.0)])
def test_views_reject_bad_vectors(bad):
    with pytest.raises(ValueError, match="nonzero 1-D vector"):
        invariant_view_curves(x=bad)


def test_views_reject_bad_grid_and_curves():
    with pytest.raises(ValueError, match="q_max"):
        invariant_view_curves(q_max=0)
    with pytest.raises(TypeError, match="ViewCurves"):
        draw_invariant_views(curves={"u": [1, 2]})


def test_heatmap_data_equal_for_symmetries_and_not_otherwise(panels):
    assert [p.is_symmetry for p in panels] == [True, True, False]
    for p in panels:
        assert p.features.shape == p.transformed.shape == p.predicted.shape == (8, 6)
        assert len(p.labels) == 8 and p.labels[0] == "h1.0" and p.layer_starts == [0, 4]
        assert np.abs(p.features).max() > 1e-3  # something to see
    sym, sign, wrong = panels
    assert sym.max_error < 1e-10 and sign.max_error < 1e-10
    assert wrong.max_error > 1e-2
    # the transformation visibly moves and rescales rows: f(g theta) differs from f(theta)
    assert not np.allclose(sym.transformed, sym.features) and not np.allclose(sign.transformed, sign.features)


def test_heatmap_figure_shows_the_panels(panels):
    fig = draw_equivariance_heatmaps(panels)
    assert isinstance(fig, Figure)
    images = [ax for ax in fig.axes if ax.images]
    assert len(images) == 4 * len(panels)
    for r, p in enumerate(panels):
        shown = [np.asarray(ax.images[0].get_array()) for ax in images[4 * r:4 * r + 4]]
        assert np.allclose(shown[0], p.features) and np.allclose(shown[1], p.transformed)
        assert np.allclose(shown[2], p.predicted) and np.allclose(shown[3], p.transformed - p.predicted)
    assert images[0].get_title() == r"$f(\theta)$" and "max |diff|" in images[3].get_title()
    assert "NOT a symmetry" in images[8].get_ylabel().replace("\n", " ")


def test_gauge_on_vertices_matches_the_graph_action():
    spec = NetworkSpec.from_text("mlp 2-3-4-1 relu")
    gen = torch.Generator().manual_seed(3)
    ws = WeightSpace.randn(spec, 1, gen, dtype=torch.float64)
    g = GaugeElement.sample(spec, 1, gen, dtype=torch.float64)
    index, scale = gauge_on_vertices(g)
    from scalegmn_lite.nn.graphs import to_graph

    x, xg = to_graph(ws).x[:, 0], to_graph(g.apply(ws)).x[:, 0]  # vertex feature = bias
    assert torch.allclose(xg, scale * x[index])
    assert index[:2].tolist() == [0, 1] and scale[:2].tolist() == [1.0, 1.0] and scale[-1] == 1.0


def test_panels_with_a_given_model_and_full_graph():
    spec = NetworkSpec.from_text("mlp 2-3-2 tanh")
    gen = torch.Generator().manual_seed(1)
    ws = WeightSpace.randn(spec, 1, gen, dtype=torch.float64)
    g = GaugeElement.sample(spec, 1, gen, dtype=torch.float64)
    torch.manual_seed(0)
    model = ScaleGMN(ScaleGMNConfig(hidden_dim=4, num_layers=2, mode="auto")).double()
    p = vertex_feature_panels(ws, g, model, "tanh", hidden_only=False)
    assert isinstance(p, FeaturePanels) and p.features.shape == (7, 4) and p.layer_starts == [0, 2, 5]
    assert p.labels[0] == "in0" and p.labels[-1] == "out1" and p.max_error < 1e-10
    fig = draw_equivariance_heatmaps([p])
    assert len([ax for ax in fig.axes if ax.images]) == 4


def test_panels_reject_bad_input():
    spec = NetworkSpec.from_text("mlp 2-3-2 relu")
    ws = WeightSpace.randn(spec, 2, dtype=torch.float64)
    g1 = GaugeElement.sample(spec, 1)
    with pytest.raises(ValueError, match="batch size 1"):
        vertex_feature_panels(ws, g1)
    with pytest.raises(ValueError, match="batch size 1"):
        vertex_feature_panels(ws[0:1], GaugeElement.sample(spec, 2))
    other = GaugeElement.sample(NetworkSpec.from_text("mlp 2-3-3 relu"), 1)
    with pytest.raises(ValueError, match="g is for"):
        vertex_feature_panels(ws[0:1], other)
    with pytest.raises(TypeError, match="WeightSpace"):
        vertex_feature_panels(torch.zeros(3), g1)
    with pytest.raises(TypeError, match="GaugeElement"):
        gauge_on_vertices("g")
    with pytest.raises(TypeError, match="ScaleGMN"):
        vertex_feature_panels(ws[0:1], g1, model=torch.nn.Linear(2, 2))
    with pytest.raises(TypeError, match="FeaturePanels"):
        draw_equivariance_heatmaps([])
    with pytest.raises(ValueError, match="expected 4 axes"):
        draw_equivariance_heatmaps(default_feature_panels()[:1], axes=plt.subplots(1, 3)[1])


# ---------------------------------------------------------------------------------------- section figures
def _toy():
    """Notebook 05's toy graph (2 -> 2 -> 1) with random features, and a hand-built message m_st."""
    gen = torch.Generator().manual_seed(0)
    ei = torch.tensor([[0, 1, 0, 1, 2, 3], [2, 2, 3, 3, 4, 4]])
    x, e = torch.randn(5, 3, generator=gen, dtype=torch.float64), torch.randn(6, 3, generator=gen, dtype=torch.float64)
    q = torch.tensor([[1.0], [1.0], [2.5], [0.3], [1.0]], dtype=torch.float64)
    W = torch.randn(3, 3, generator=gen, dtype=torch.float64)

    def forward(x, e):  # scales like the receiver: (e_st * x_s) scales like q_t, the view of x_t is invariant
        return (e * x[ei[0]]) @ W * (x[ei[1]] / x[ei[1]].norm(dim=-1, keepdim=True))

    def backward(x, e):  # scales like the sender
        return x[ei[0]] * torch.tanh(x[ei[1]] / x[ei[1]].norm(dim=-1, keepdim=True))

    qe = q[ei[1]] / q[ei[0]]
    return ei, q, x, e, qe, forward, backward


def test_scaling_bars_show_equivariant_and_invariant_factors():
    x, q = torch.tensor([0.5, -1.0, 2.0]), 3.0
    gamma = torch.tensor([[1.0, 2.0, 0.0], [0.0, 1.0, -1.0], [1.0, 0.0, 1.0]])
    view = lambda v: v / v.norm()  # noqa: E731
    bars = [scaling_bars("Gx", gamma @ x, gamma @ (q * x), q), scaling_bars("gate", view(x), view(q * x), 1.0),
            scaling_bars("wrong", x, x ** 2, q)]
    assert bars[0].max_error < 1e-6 and bars[1].max_error < 1e-6 and bars[2].max_error > 0.1
    assert np.allclose(bars[0].after, q * bars[0].before) and np.allclose(bars[1].after, bars[1].before)
    fig = draw_scaling_bars(bars)
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    for ax, b in zip(fig.axes, bars):
        before, after = ([r.get_height() for r in c] for c in ax.containers[:2])
        assert np.allclose(before, b.before) and np.allclose(after, b.after)
    assert "scales by q = 3.00" in fig.axes[0].get_title() and "unchanged" in fig.axes[1].get_title()
    # a leading batch dimension of 1 is dropped; autograd tensors are detached
    w = torch.ones(1, 3, requires_grad=True)
    assert scaling_bars("w", w, 2 * w, 2.0).before.shape == (3,)


def test_scaling_bars_reject_bad_input():
    with pytest.raises(ValueError, match="same number of channels"):
        scaling_bars("a", [1.0, 2.0], [1.0, 2.0, 3.0], 2.0)
    with pytest.raises(ValueError, match="factor"):
        scaling_bars("a", [1.0], [1.0], 0.0)
    with pytest.raises(ValueError, match="finite"):
        scaling_bars("a", [float("inf")], [1.0], 1.0)
    with pytest.raises(TypeError, match="ScalingBars"):
        draw_scaling_bars([])
    with pytest.raises(ValueError, match="expected 2 axes"):
        draw_scaling_bars([scaling_bars("a", [1.0], [1.0], 1.0)] * 2, axes=plt.subplots(1, 3)[1])


def test_edge_scaling_forward_like_receiver_backward_like_sender():
    ei, q, x, e, qe, forward, backward = _toy()
    fwd = edge_scaling(forward(x, e), forward(q * x, qe * e), ei, q, "m", "receiver")
    bwd = edge_scaling(backward(x, e), backward(q * x, qe * e), ei, q, "b", scales_like="sender")
    assert fwd.edge_labels[0] == "0->2" and fwd.ratio.shape == (6, 3)
    assert np.allclose(fwd.q_receiver, [2.5, 2.5, 0.3, 0.3, 1, 1]) and np.allclose(fwd.q_sender, [1, 1, 1, 1, 2.5, 0.3])
    assert np.allclose(fwd.ratio, fwd.q_receiver[:, None]) and fwd.max_error < 1e-10
    assert np.allclose(bwd.ratio, bwd.q_sender[:, None]) and bwd.max_error < 1e-10
    # the claim is checked, not assumed: the forward message does not scale like the sender
    wrong = edge_scaling(forward(x, e), forward(q * x, qe * e), ei, q, "m", "sender")
    assert wrong.max_error > 0.5
    fig = draw_edge_scaling([fwd, bwd])
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    for ax, it in zip(fig.axes, [fwd, bwd]):
        dots = ax.collections[2].get_offsets()
        assert np.allclose(dots[:, 1], it.ratio.reshape(-1))
        assert np.allclose(np.round(dots[:, 0]), np.repeat(np.arange(6), 3))
        assert ax.get_yscale() == "log"
    assert "like $q_t$" in fig.axes[0].get_title() and "like $q_s$" in fig.axes[1].get_title()


def test_edge_scaling_skips_zeros_and_rejects_bad_input():
    ei, q, x, e, qe, forward, _ = _toy()
    before = forward(x, e)
    before[0, 0] = 0.0
    it = edge_scaling(before, forward(q * x, qe * e), ei, q)
    assert np.isnan(it.ratio[0, 0]) and np.isfinite(it.max_error)
    with pytest.raises(ValueError, match="scales_like"):
        edge_scaling(before, before, ei, q, scales_like="both")
    with pytest.raises(ValueError, match=r"edge_index \[2, E\]"):
        edge_scaling(before[:5], before[:5], ei, q)
    with pytest.raises(ValueError, match="must index"):
        edge_scaling(before, before, ei, q[:4])
    with pytest.raises(ValueError, match="must index"):
        edge_scaling(before, before, ei, -q)
    with pytest.raises(ValueError, match="2 dimension"):
        edge_scaling(before[0], before[0], ei, q)
    with pytest.raises(TypeError, match="EdgeScaling"):
        draw_edge_scaling([before])


def test_toy_graph_draws_every_vertex_and_edge():
    ei, q, *_ = _toy()
    fig = draw_toy_graph(ei, q)
    ax = fig.axes[0]
    texts = [t.get_text() for t in ax.texts]
    assert [t for t in texts if t.isdigit()] == ["0", "1", "2", "3", "4"]
    assert "q=2.5" in texts and "q=0.3" in texts
    assert len([c for c in ax.get_children() if type(c).__name__ == "Annotation"]) == 6
    with pytest.raises(ValueError, match="edge_index"):
        draw_toy_graph(ei, q[:3])


def test_feature_panels_from_tensors():
    ei, q, x, e, qe, forward, _ = _toy()

    def aggregate(x, e):
        return torch.zeros_like(x).index_add(0, ei[1], forward(x, e))

    p = feature_panels(aggregate(x, e), aggregate(q * x, qe * e), q, [f"v{i}" for i in range(5)], "M", [0, 2, 4])
    assert p.max_error < 1e-12 and np.allclose(p.predicted, q.numpy() * p.features)
    assert np.allclose(p.features[:2], 0) and not np.allclose(p.transformed, p.features)
    fig = draw_equivariance_heatmaps([p])
    assert np.allclose(np.asarray(fig.axes[1].images[0].get_array()), p.transformed)
    bad = feature_panels(x, x, q, list("abcde"))  # x is not the rescaled x: a visible difference
    assert bad.max_error > 0.1
    with pytest.raises(ValueError, match="one shape"):
        feature_panels(x, x[:4], q, list("abcde"))
    with pytest.raises(ValueError, match="labels"):
        feature_panels(x, x, q, ["a"])


def test_agreement_scatter_is_on_the_diagonal():
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(4, 3, generator=gen, dtype=torch.float64)
    items = [agreement("same", a, a.clone()), agreement("rounded", a, a + 1e-14)]
    assert items[0].max_diff == 0 and items[1].max_diff < 1e-13
    fig = draw_agreement(items)
    ax = fig.axes[0]
    for coll, it in zip(ax.collections, items):
        pts = coll.get_offsets()
        assert np.allclose(pts[:, 0], it.reference) and np.allclose(pts[:, 1], pts[:, 0])
    assert ax.get_title().startswith("max |diff| = ") and ax.get_xlabel() == "library"
    assert "1.0e-14" in draw_agreement([agreement("off", [0.0, 1.0], [0.0, 1.0 + 1e-14])]).axes[0].get_title()
    with pytest.raises(ValueError, match="same shape"):
        agreement("x", a, a[:3])
    with pytest.raises(TypeError, match="Agreement"):
        draw_agreement([(a, a)])
