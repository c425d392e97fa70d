"""Notebook 06's pipeline picture: a figure with the five labelled boxes in order (weights -> graph ->
ScaleGMN layers -> invariant readout -> prediction), the gauge row under them, readable labels."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from scalegmn_lite.course.diagrams import text_overlaps  # noqa: E402
from scalegmn_lite.course.pipeline import PIPELINE_BOXES, draw_invariant_pipeline  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _box_texts(fig):
    texts = [t for ax in fig.axes for t in ax.texts]
    return {t.get_gid()[4:]: t for t in texts if (t.get_gid() or "").startswith("box:")}


def test_pipeline_has_the_labelled_boxes_in_order():
    fig = draw_invariant_pipeline(num_layers=3)
    assert isinstance(fig, Figure)
    boxes = _box_texts(fig)
    assert tuple(boxes) == PIPELINE_BOXES == ("weights", "graph", "layers", "readout", "prediction")
    words = {"weights": "weights", "graph": "graph", "layers": "ScaleGMN layers", "readout": "invariant readout",
             "prediction": "prediction"}
    for key, word in words.items():
        assert word in boxes[key].get_text()
    assert "× 3" in boxes["layers"].get_text()  # the number of layers is the one asked for
    xs = [boxes[k].get_position()[0] for k in PIPELINE_BOXES]
    assert xs == sorted(xs)  # left to right
    # every box has its patch with the same gid, and arrows join them
    patches = {p.get_gid() for ax in fig.axes for p in ax.patches}
    assert {f"box:{k}" for k in PIPELINE_BOXES} <= patches
    assert "to_graph" in [t.get_text() for ax in fig.axes for t in ax.texts]


def test_pipeline_gauge_row_says_what_stays():
    fig = draw_invariant_pipeline()
    gauge = {t.get_gid()[6:]: t.get_text() for ax in fig.axes for t in ax.texts
             if (t.get_gid() or "").startswith("gauge:")}
    assert set(gauge) == set(PIPELINE_BOXES)
    assert "unchanged" in gauge["readout"] and "unchanged" in gauge["prediction"]
    assert "equivariant" in gauge["layers"] and "unchanged" not in gauge["layers"]


def test_pipeline_labels_are_readable():
    fig = draw_invariant_pipeline(outputs="a digit")
    assert "a digit" in _box_texts(fig)["prediction"].get_text()
    assert text_overlaps(fig, boxes=True) == []
    sizes = [t.get_fontsize() for ax in fig.axes for t in ax.texts if t.get_text().strip()]
    assert min(sizes) >= 8


def test_pipeline_draws_on_a_given_axes_and_rejects_zero_layers():
    fig, ax = plt.subplots(figsize=(10, 3.3))
    assert draw_invariant_pipeline(ax=ax) is fig
    with pytest.raises(ValueError, match="at least one"):
        draw_invariant_pipeline(num_layers=0)
