"""Notebook 09's course module for sections 0-4 (scalegmn_lite.course.beyond): every exercise check (1-4) accepts
the notebook's folded solution and rejects typical wrong answers, unanswered stubs are "not attempted", and every
figure helper draws (the block diagram with its vertices, shortcuts and readable labels; legends outside the data).
Section 5 (block graphs, the checker's figures, exercise 5) is tested in test_course_block_figures.py."""

import math
import re
from pathlib import Path

import jupytext
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from scalegmn_lite.course.beyond import (  # noqa: E402
    EXERCISE_09_1_NETWORK,
    SYMMETRY_CANDIDATES,
    check_block_dims,
    check_layernorm_counterexample,
    check_scaled_eps,
    check_symmetries,
    draw_layernorm_two_features,
    draw_residual_block,
    plot_dim_counts,
    plot_eps_errors,
    plot_function_changes,
    plot_residual_functions,
    symmetry_verdicts,
)
from scalegmn_lite.course.diagrams import text_overlaps  # noqa: E402
from scalegmn_lite.weightspace.blocks import BlockNetworkSpec  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SOLUTION = re.compile(r"<details><summary>Solution</summary>.*?```python\n(.*?)```", re.S)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def stub(*args, **kwargs):
    raise NotImplementedError


def notebook_solutions() -> dict:
    """The names the folded solutions of notebook 09 define, executed as the notebook's reader would paste them."""
    src = next((ROOT / "notebooks" / "src").glob("09_*.py"))
    namespace: dict = {}
    for cell in jupytext.read(src, fmt="py:percent").cells:
        if cell.cell_type == "markdown":
            for code in SOLUTION.findall(cell.source):
                exec(code, namespace)
    return namespace


# ----------------------------------------------------------------------------------------- exercise checks
def test_the_notebooks_solutions_pass_their_checks():
    sol = notebook_solutions()
    assert check_block_dims(sol["block_dims"]).ok is True
    assert check_symmetries(sol["symmetries"]).ok is True
    assert check_layernorm_counterexample(sol["z_answer"], sol["d_answer"]).ok is True
    assert check_scaled_eps(sol["scaled_eps"]).ok is True


def test_block_dims():
    spec = BlockNetworkSpec.from_text(EXERCISE_09_1_NETWORK)
    assert spec.scale_dim == 160 and check_block_dims(160).ok is True
    per_depth = spec.gauge_plan(split_streams=True).scale_dim
    feedback = check_block_dims(per_depth)
    assert feedback.ok is False and "once per depth" in feedback.message
    assert check_block_dims(160 - 48).ok is False  # BatchNorm inputs forgotten
    assert check_block_dims(161).ok is False
    assert check_block_dims(None).ok is None


def test_symmetries():
    assert check_symmetries({"a", "c", "f", "g"}).ok is True
    assert check_symmetries(["A", "c", "f", "g"]).ok is True  # any iterable, any case
    assert check_symmetries({"a", "c", "f"}).ok is False
    assert check_symmetries({"a", "c", "f", "g", "h"}).ok is False
    assert check_symmetries({"a", "z"}).ok is False
    assert check_symmetries(None).ok is None


def test_symmetry_verdicts_are_clear_cut():
    verdicts = symmetry_verdicts()
    assert set(verdicts) == set(SYMMETRY_CANDIDATES)
    for key, (ok, change) in verdicts.items():
        assert change < 1e-12 if ok else change > 1e-6, key
    # the folded solution says (h) moves the outputs by "about 1e-5"
    assert round(math.log10(verdicts["h"][1])) == -5
    assert all(verdicts[k][1] > 1e-2 for k in ("b", "d", "e"))


def test_layernorm_counterexample():
    assert check_layernorm_counterexample((2, 1), (1, 4)).ok is True
    assert check_layernorm_counterexample((2, 1), (1, 1.5)).ok is False  # same side of z1 = z2
    assert check_layernorm_counterexample((2, 1), (3, 3)).ok is False  # a common scale
    assert check_layernorm_counterexample((2, 1), (-1, 4)).ok is False  # not positive
    assert check_layernorm_counterexample((1, 1), (1, 4)).ok is False  # 0/0
    assert check_layernorm_counterexample((2, 1, 0), (1, 4, 1)).ok is False  # three features
    assert check_layernorm_counterexample(None, None).ok is None


def test_scaled_eps():
    assert check_scaled_eps(lambda eps, d: d**2 * eps).ok is True
    assert check_scaled_eps(lambda eps, d: eps).ok is False
    assert check_scaled_eps(lambda eps, d: d * eps).ok is False
    assert check_scaled_eps(stub).ok is None


# ----------------------------------------------------------------------------------------- figures
def _legend_outside(fig) -> bool:
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    legend = ax.get_legend()
    return legend is not None and not legend.get_window_extent(renderer).overlaps(ax.get_window_extent(renderer))


@pytest.mark.parametrize("d_s, hidden", [(3, 4), (1, 1), (5, 2)])
def test_residual_block_diagram(d_s, hidden):
    fig = draw_residual_block(d_s=d_s, hidden=hidden)
    ax = fig.axes[0]
    gids = [p.get_gid() or "" for p in ax.patches] + [line.get_gid() or "" for line in ax.lines]
    assert sum(g.startswith("stream-t:") for g in gids) == d_s
    assert sum(g.startswith("stream-t+1:") for g in gids) == d_s
    assert sum(g.startswith("inner:") for g in gids) == hidden
    assert sum(g.startswith("shortcut:") for g in gids) == d_s
    assert sum(g.startswith("w1:") for g in gids) == sum(g.startswith("w2:") for g in gids) == d_s * hidden
    assert text_overlaps(fig) == []
    assert all(t.get_fontsize() >= 8 for t in ax.texts)


def test_residual_block_diagram_rejects_unreadable_sizes():
    with pytest.raises(ValueError, match="1 to 5"):
        draw_residual_block(d_s=6)


def test_figure_helpers_draw_with_legends_outside():
    x = torch.linspace(-1, 1, 20)
    figs = [
        plot_residual_functions(x, {"original": x.relu(), "copy": x.relu()}),
        plot_dim_counts([{"n": n, "residual": 8 * n + 4, "plain": 12 * n + 4} for n in range(4)]),
        plot_function_changes({"sym": 0.0, "not": 0.5}, {"sym": True, "not": False}),
        draw_layernorm_two_features(),
        plot_eps_errors([{"kind": k, "eps": e, "measured": e, "bound": 2 * e, "scaled_eps": 0.0}
                         for k in ("batchnorm", "layernorm") for e in (1e-6, 1e-4, 1e-2)]),
    ]
    for fig in figs:
        assert _legend_outside(fig)
        assert text_overlaps(fig) == []
