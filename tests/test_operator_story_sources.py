"""Notebook 07's reading aids (issue: the learner's read-through): which figure averages what, the display
names of the methods, the orientation label of a published level from another data set, units and exact
figures in the verdict table, and the verdict changes in words (no commit hashes)."""

import json
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from test_operator_story import _claim, _reference  # noqa: E402

from scalegmn_lite.course import operator_story as story  # noqa: E402
from scalegmn_lite.course.reference import VERDICT_WORDS  # noqa: E402

HASH = re.compile(r"\b[0-9a-f]{7,40}\b")


def _with_sources(ref):
    """The fixture with what :func:`story.gain_sources` reads beyond the story: an in-sample curve, the
    training records' kept steps, the monitor sizes."""
    name = "cnn1d-tanh"
    curve = ref["diagnostics"][name]["steps_curve"]["scalegmn-b"]
    curve["train"] = [0.8 * v for v in curve["test"]]
    curve["seeds"] = 3
    ref["config"].update(val_networks=64, val_images=1000)
    ref["training"] = [{"setting": name, "method": "scalegmn-b", "seed": s, "best_step": k}
                       for s, k in ((2, 6000), (0, 6000), (1, 5250))] + [
        {"setting": name, "method": "gmn", "seed": 0, "best_step": 250}]
    return ref


def test_gain_sources_tell_the_headline_from_the_curve():
    ref = _with_sources(_reference())
    w = story.gain_sources(ref)
    assert w.facts["kept"] == [6000, 5250, 6000]  # seed order, ScaleGMN-B only
    assert abs(w.facts["held_out"] - 0.09) < 1e-12  # the per-network mean: (0.1 + 0.08 + 0.09) / 3
    assert w.facts["in_sample"] == 0.094 and w.facts["curve_held_out"] == ref["diagnostics"]["cnn1d-tanh"][
        "steps_curve"]["scalegmn-b"]["test"][-1]
    rows = [line for line in w.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert len(rows) == 4
    assert "64 held-out | test images | each seed at its kept step (6000, 5250, 6000) | +9.0 |" in rows[0]
    assert "64 training | test images" in rows[1] and "+9.4" in rows[1]
    assert "step 6000, no step kept" in rows[2] and "1000 training images" in rows[3]
    del ref["training"]  # an older file without training records still reads
    assert "each seed at its kept step |" in story.gain_sources(ref)


def test_story_says_which_in_sample_figure_and_whose_threshold():
    text = story.reference_story(_reference())
    assert "Scored the same way on as many of its own training networks (the same test images" in text
    assert "yardstick" not in text and "for orientation only" in text
    assert f"the paper's {story._p(story.published_gain())} points, measured on CIFAR-10" in text


def test_method_names_in_legends_and_ticks():
    assert [story.method_name(k) for k in ("scalegmn-b", "gmn", "gmn-aug", "sgd-150", "adam-25", "other")] == [
        "ScaleGMN-B", "GMN", "GMN+aug", "SGD-150", "Adam-25", "other"]
    fig, ax = plt.subplots()
    curves = {k: {"step": [0, 250, 500], "train": [0, 0.01, 0.02], "val": [0, 0.01, 0.01], "test": [0, 0.005, 0.01]}
              for k in ("scalegmn-b", "gmn", "gmn-aug")}
    story.plot_steps_curve(ax, curves, "steps", kept={"held_out": 0.009, "in_sample": 0.012})
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[:3] == ["ScaleGMN-B", "GMN", "GMN+aug"] and len(labels) == 3 + 3 + 2
    assert all("training images" in lb for lb in labels if lb.startswith(("in-sample", "validation")))
    stars = [line for line in ax.lines if line.get_marker() == "*"]
    assert [round(float(line.get_ydata()[0]), 6) for line in stars] == [0.9, 1.2]  # in points
    assert all(line.get_xdata()[0] > 500 for line in stars) and ax.get_xlim()[1] > max(s.get_xdata()[0] for s in stars)
    fig.canvas.draw()
    assert min(t.get_fontsize() for t in ax.get_legend().get_texts()) >= 8
    runs = {"this run": {"initial": {"acc": [[0.3, 0.4]]}, "gmn": {"acc": [[0.31, 0.4]]},
                         "gmn-aug": {"acc": [[0.31, 0.41]]}}}
    fig = story.plot_gain_comparison(runs, ["gmn", "gmn-aug"])
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["GMN", "GMN+aug"]
    plt.close("all")


def test_verdict_table_labels_orientation_units_and_exact_figures():
    claims = [_claim("operator-gain-cnn-published", 0.091, 0.076, 0.105, op=">=", thr=0.10),
              {"id": "one-shot-1000x-faster", "status": "refuted", "measured": 179.8, "target": ">= 1000",
               "ci": None, "statement": "speed", "kind": "finding"},
              {"id": "l1-larger-reduction-lower-loss", "status": "refuted", "ci": [-3.96, -0.92],
               "target": "reduction diff > 0 and loss diff < 0 (both 95% intervals)",
               "statement": "a larger L1-norm reduction (points, minus SGD-150's; interval shown)",
               "measured": {"l1_reduction_diff": -2.389, "test_loss_diff": 0.029, "test_loss_diff_ci_lo": 0.0069,
                            "test_loss_diff_ci_hi": 0.0527}}]
    rows = story.verdict_table({"reference run": claims}).splitlines()[2:]
    pub, speed, l1 = rows
    assert "(the scale of the paper's +12.4 points, on CIFAR-10)" in pub
    assert "**inconclusive** (the paper's level on CIFAR-10; a different data set)" in pub
    assert "| >= 1000x | 180x (exact: no interval) | **refuted** |" in speed
    assert "-2.4 [-4.0, -0.9] points of L1-norm reduction; test loss +0.029 [+0.007, +0.053]" in l1
    assert "(ScaleGMN-B minus SGD-150)" in l1
    assert "exactly" in VERDICT_WORDS["holds"] and "exact figure" in VERDICT_WORDS["refuted"]
    assert "exactly" in story.verdict_definition()


def test_verdict_changes_in_words_without_hashes(tmp_path):
    def row(cid, old, new, old_ci, new_ci, exp="amortized", flipped=False):
        return {"experiment": exp, "id": cid, "kind": "finding", "run": "reference", "old_status": old,
                "new_status": new, "old_ci": old_ci, "new_ci": new_ci, "flipped": flipped}

    rows = [row("a-new", None, "refuted", None, [-0.36, -0.30]),
            row("b-kept", "holds", "holds", [0.07573281, 0.1054], [0.07573282, 0.1054]),
            row("c-moved", "holds", "holds", [0.01, 0.02], [0.03, 0.04], exp="gscale"),
            row("d-flip", "holds", "inconclusive", [0.01, 0.02], [-0.01, 0.02], flipped=True),
            row("e-other-experiment", None, "holds", None, [0.1, 0.2], exp="merging"),
            dict(row("f-check", None, "holds", None, None), kind="check")]
    path = tmp_path / "verdict_changes.json"
    path.write_text(json.dumps({"before": "f0181341df", "rows": rows}))
    w = story.verdict_changes_words(path)
    assert w.facts == {"new": ["a-new"], "flipped": ["d-flip"], "moved": ["c-moved"], "kept": ["b-kept"]}
    assert "1 claim is new: `a-new` (**refuted**)" in w and "`d-flip` (holds -> **inconclusive**)" in w
    assert "the other 1 claims kept" in w and not HASH.search(w)
    path.write_text(json.dumps({"before": "f0181341df", "rows": rows[:2]}))
    assert "no earlier verdict changed" in story.verdict_changes_words(path)


def test_small_run_words_name_the_curve_and_the_headline():
    ref = _with_sources(_reference())
    claims = [_claim("operator-gain-cnn", 0.002, -0.002, 0.008)]
    text = story.small_run_words(ref, claims, 200, 16, 2, 358, 3, 32)
    assert "the mean of its 3 seeds at each step" in text
    assert "its headline +9.0 takes each seed at its kept step instead" in text
