"""The figures of notebook 03 show what they claim, and refuse bad input with a clear error."""

from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from scalegmn_lite.course.zoo_figures import (  # noqa: E402
    draw_loss_curves,
    draw_one_step,
    draw_recipe_samples,
    draw_split_membership,
    recipe_ranges,
    split_membership,
)
from scalegmn_lite.zoo import get_recipe  # noqa: E402


def _part(nets):
    return SimpleNamespace(metadata=pd.DataFrame({"net": nets}), checkpoints=[0, 1, 5])


def test_one_step_plots_the_given_losses():
    fig = draw_one_step([0.01, 0.1], [2.3, 2.3], [2.2, 1.9], [2.2, 1.9])
    ax = fig.axes[0]
    heights = [p.get_height() for p in ax.patches]
    assert heights == [2.3, 2.3, 2.2, 1.9]
    np.testing.assert_allclose(ax.collections[0].get_offsets()[:, 1], [2.2, 1.9])
    plt.close(fig)
    with pytest.raises(ValueError, match="one value per network"):
        draw_one_step([0.01], [2.3, 2.3], [2.2, 1.9], [2.2, 1.9])
    with pytest.raises(ValueError, match="non-finite"):
        draw_one_step([0.01, 0.1], [2.3, np.nan], [2.2, 1.9], [2.2, 1.9])


def test_loss_curves_put_loop_points_on_batched_lines():
    curves = np.array([[2.3, 2.4], [2.0, 2.2], [1.8, 2.1]])
    fig = draw_loss_curves(curves, curves.copy(), labels=["a", "b"])
    ax = fig.axes[0]
    for b, (line, pts) in enumerate(zip(ax.lines, ax.collections)):
        np.testing.assert_array_equal(line.get_ydata(), pts.get_offsets()[:, 1])
        np.testing.assert_array_equal(line.get_ydata(), curves[:, b])
    plt.close(fig)
    with pytest.raises(ValueError, match="differ in shape"):
        draw_loss_curves(curves, curves[:2])
    with pytest.raises(ValueError, match="labels"):
        draw_loss_curves(curves, curves, labels=["a"])


def test_recipe_samples_lie_in_the_drawn_ranges():
    r = get_recipe("cnn2d-digits")
    md = pd.DataFrame([r.sample(i) for i in range(64)])  # the rows a zoo build draws
    assert set(md["optimizer"]) == {"sgd", "adam"}
    assert recipe_ranges(r, "lr") == [r.lr, r.adam_lr]
    fig = draw_recipe_samples({"z": md}, {"z": r})
    for ax, col in zip(fig.axes, ("lr", "init_scale", "weight_decay")):
        drawn = ax.collections[0].get_offsets()[:, 0]
        np.testing.assert_allclose(np.sort(drawn), np.sort(md[col].to_numpy()))
        ranges = recipe_ranges(r, col)
        assert all(any(lo * (1 - 1e-9) <= v <= hi * (1 + 1e-9) for lo, hi in ranges) for v in drawn)
    plt.close(fig)
    with pytest.raises(ValueError, match="no metadata column 'lr'"):
        draw_recipe_samples({"z": md.drop(columns="lr")}, {"z": r})
    with pytest.raises(ValueError, match="same zoos"):
        draw_recipe_samples({"z": md}, {"other": r})
    with pytest.raises(ValueError, match="no sampled range"):
        recipe_ranges(r, "epochs")


def test_split_membership_one_part_per_network():
    parts = [_part([0, 3, 4]), _part([1]), _part([2, 5])]
    member = split_membership(parts)
    assert member.tolist() == [0, 1, 2, 0, 0, 2]
    fig = draw_split_membership(parts)
    grid = fig.axes[0].images[0].get_array()
    assert grid.shape == (3, 6)
    assert (grid == grid[0]).all()  # every checkpoint of a network in the same part
    plt.close(fig)
    with pytest.raises(ValueError, match="in part 0 and part 1"):
        split_membership([_part([0, 1]), _part([1])])
    with pytest.raises(ValueError, match="no metadata column 'net'"):
        split_membership([SimpleNamespace(metadata=pd.DataFrame({"x": [0]}))])
    with pytest.raises(ValueError, match="names"):
        draw_split_membership(parts, names=["train", "test"])
