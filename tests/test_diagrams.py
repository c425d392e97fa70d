"""The course's schematic diagrams: each returns a figure with its labelled boxes, no two labels overlap (or
leave the figure), and the network-to-graph picture has exactly the library graph's vertices and edges."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from scalegmn_lite import NetworkSpec, WeightSpace, to_graph  # noqa: E402
from scalegmn_lite.course.diagrams import (  # noqa: E402
    draw_autoencoder_merge,
    draw_network_to_graph,
    draw_operator_loop,
    text_overlaps,
)
from scalegmn_lite.course.plots import draw_network_graph, shared_norm  # noqa: E402

SPECS = ["mlp 2-3-1 relu", "conv2d 1-3-3/2 k3 relu 1x8x8", "conv1d 1-4-4/3 k5 tanh 1x16", "mlp 8-8-8-8 tanh"]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _texts(fig):
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def _box_texts(fig):
    texts = [t for ax in fig.axes for t in ax.texts]
    return {t.get_gid()[4:]: t.get_text() for t in texts if (t.get_gid() or "").startswith("box:")}


def _drawn_counts(fig):
    ax = fig.axes[0]
    vertices = sum(len(c.get_offsets()) for c in ax.collections if c.get_gid() == "graph-vertices")
    edges = sum(len(c.get_segments()) for c in ax.collections if c.get_gid() == "graph-edges")
    return vertices, edges


@pytest.mark.parametrize("text", SPECS)
def test_network_graph_matches_the_library_graph(text):
    spec = NetworkSpec.from_text(text)
    fig = draw_network_to_graph(spec)
    g = to_graph(WeightSpace.randn(spec, 1, torch.Generator().manual_seed(0)))
    assert _drawn_counts(fig) == (g.num_nodes, g.num_edges)
    texts = "\n".join(_texts(fig))
    assert f"{g.num_nodes} vertices" in texts and f"{g.num_edges} edges" in texts
    assert "input" in texts and "hidden" in texts and "output" in texts
    name = "K" if spec.layers[0].is_conv else "W"
    assert f"${name}_1$" in texts and "$b_1$" in texts  # the weights and biases on the left
    assert f"${name}_1[t,s]" in texts  # an edge feature labelled on the right
    if spec.layers[0].is_conv:
        assert f"\\mathbb{{R}}^{{{spec.layers[0].kernel_numel}}}" in texts  # the kernel is a vector edge feature
    assert text_overlaps(fig, boxes=True) == []


def test_network_graph_accepts_text_and_an_axes():
    fig, ax = plt.subplots(figsize=(10, 4))
    assert draw_network_to_graph("mlp 2-3-1 relu", ax=ax) is fig


def test_network_graph_rejects_what_it_cannot_draw():
    spec = NetworkSpec.from_text("mlp 2-3-1 relu")
    with pytest.raises(TypeError, match="pass its .spec"):
        draw_network_to_graph(WeightSpace.randn(spec, 1))
    with pytest.raises(TypeError, match="NetworkSpec"):
        draw_network_to_graph(42)
    with pytest.raises(ValueError, match="flattens"):
        draw_network_to_graph("conv2d 1-2-2/3 k3 relu flatten 1x6x6")
    with pytest.raises(ValueError, match="too large"):
        draw_network_to_graph("mlp 64-32-10 relu")


def test_operator_loop_has_its_boxes():
    fig = draw_operator_loop()
    boxes = _box_texts(fig)
    assert {"zoo", "operator", "proposal", "loss", "batch", "heldout", "frozen", "test-proposal"} <= set(boxes)
    assert "zoo of trained" in boxes["zoo"] and "ScaleGMN operator" in boxes["operator"]
    assert "one shot" in boxes["proposal"] and "\\lambda" in boxes["loss"] and "frozen" in boxes["frozen"]
    assert any("only the operator's weights" in t for t in _texts(fig))  # the gradient's label
    assert text_overlaps(fig, boxes=True) == []


def test_autoencoder_merge_has_its_boxes():
    fig = draw_autoencoder_merge()
    boxes = _box_texts(fig)
    assert "ScaleGMN" in boxes["encoder"] and "invariant" in boxes["encoder"]
    assert "MLP" in boxes["decoder"] and "canonical gauge" in boxes["theta-hat"]
    assert {"merge:naive", "merge:weight matching", "merge:canonical path", "merge:latent path"} <= set(boxes)
    assert "z_A" in boxes["merge:latent path"] and "\\pi" in boxes["merge:weight matching"]
    # the canonical path decodes both ends, then interpolates the weights; the latent path decodes every point
    assert "D(z_A)" in boxes["merge:canonical path"] and "D(z_B)" in boxes["merge:canonical path"]
    assert "D\\,((1-\\alpha)" in boxes["merge:latent path"]
    assert text_overlaps(fig, boxes=True) == []


def test_overlap_checker_sees_overlaps():
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.text(0.5, 0.5, "one label")
    ax.text(0.52, 0.5, "another label")
    assert len(text_overlaps(fig)) == 1
    ax.text(1.5, 0.5, "cut off")
    assert ("cut off", "outside the figure") in text_overlaps(fig)


def test_weight_labels_of_the_graph_plot_do_not_overlap():
    spec = NetworkSpec.from_text("mlp 2-3-1 relu")
    gs = [to_graph(WeightSpace.randn(spec, 1, torch.Generator().manual_seed(s))) for s in range(3)]
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    norm = shared_norm(*[g.x for g in gs])
    for ax, g in zip(axes, gs):
        draw_network_graph(g, ax, norm, 3.0, title="MLP 2-3-1")
    labels = [t for ax in fig.axes for t in ax.texts if t.get_gid() == "edge-label"]
    assert len(labels) >= 3 * 6  # most of the 9 weights of each graph are labelled
    assert [p for p in text_overlaps(fig) if "outside" not in p[1]] == []
