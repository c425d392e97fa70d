"""Notebook 07's generated story (scalegmn_lite.course.operator_story) and its schematic
(scalegmn_lite.course.diagrams.draw_operator_pipeline): the words follow the numbers."""

import copy
import re
from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from scalegmn_lite.common.claims import interval_claim  # noqa: E402
from scalegmn_lite.course import operator_story as story  # noqa: E402
from scalegmn_lite.course.diagrams import draw_operator_pipeline, text_overlaps  # noqa: E402

E_NOTATION = re.compile(r"\d[eE][+-]?\d")


def _claim(cid, mean, lo, hi, op=">", thr=0.0, **kw):
    c = interval_claim(cid, f"statement of {cid}", {"mean": mean, "ci": [lo, hi], "seeds": 3}, op, thr, **kw)
    return c.to_dict()


def _reference(gain=(0.09, 0.076, 0.105), eq=(0.023, 0.007, 0.041), memo=(-0.33, -0.36, -0.30), rise=0.018,
               held=(-0.057, 0.024, 0.031, 0.041)):
    """A small amortized.json with the fields the story reads."""
    name = "cnn1d-tanh"
    steps = list(range(0, 6001, 250))
    test = list(np.linspace(0.0, 0.094 - rise, len(steps) - 4)) + [0.094 - rise + rise * k / 4 for k in range(1, 5)]
    acc = lambda m: {"acc": {"mean": m, "ci": [m - 0.01, m + 0.01]}}  # noqa: E731
    iv = {"initial": acc(0.35), "scalegmn-b": acc(0.35 + gain[0]), "sgd-150": acc(0.59), "gmn": acc(0.42),
          "gmn-aug": acc(0.41)}
    claims = [
        _claim("operator-gain-cnn", *gain), _claim("operator-gain-cnn-published", *gain, op=">=", thr=0.10),
        _claim("operator-generalizes", 0.044, 0.031, 0.057, op=">="),
        _claim("operator-beats-memorization", *memo, measured={"best_control": "best-training-network"}),
        _claim("scalegmn-b-beats-gmn-b-headroom", *eq), _claim("scalegmn-b-beats-gmn-b-aug-headroom", *eq),
        {"id": "one-shot-1000x-faster", "status": "refuted", "measured": 180.0, "target": ">= 1000",
         "statement": "speed", "kind": "finding", "ci": None},
    ]
    per_network = {name: {"initial": {"acc": [[0.3, 0.4]]},
                          "scalegmn-b": {"acc": [[0.4, 0.5], [0.38, 0.48], [0.39, 0.49]]}}}
    return {
        "config": {"settings": [{"name": name, "role": "headroom", "lam": 0.0, "steps": None}], "seeds": [0, 1, 2],
                   "hidden_dim": 32, "num_layers": 3, "steps": 6000},
        "counts": {name: {"train": 1429, "test": 64}},
        "intervals": {name: iv},
        "claims": claims,
        "per_network": per_network,
        "memorization": {name: {"best-training-network": {"accuracy": {"mean": 0.77}},
                                "nearest-training-network": {"accuracy": {"mean": 0.34}}}},
        "diagnostics": {name: {
            "in_sample": {"scalegmn-b": {"mean": 0.094, "held_out_mean": gain[0]}},
            "steps_curve": {"scalegmn-b": {"step": steps, "test": test}},
            "size_curve": [{"networks": n, "steps": 2000, "in_sample_gain": 0.19, "held_out_gain": h}
                           for n, h in zip((16, 128, 512, 1429), held)],
            "update_size": {"scalegmn-b": {"median": 2.47}},
            "calibration": {"scalegmn-b": {"mean_loss_gain": 0.378, "mean_temperature_loss_gain": 0.034}},
            "who_gains": {"spearman": {"initial_acc": {"rho": -0.76}, "train_fraction": {"rho": -0.70}}},
        }},
    }


def test_reference_story_follows_the_numbers():
    text = story.reference_story(_reference())
    assert "`operator-gain-cnn` **holds**" in text and "+9.0 [+7.6, +10.5]" in text
    assert "But copying a training network does better." in text and "Equivariance helps here." in text
    assert "still rising" in text and "rises with every step" in text
    assert "CIFAR-10" in text and "different data set" in text  # the published level is labelled
    assert "not reproduced" not in text and "undecided" not in text and not E_NOTATION.search(text)
    assert text.facts["memorization"] == "refuted" and text.facts["best_control_acc"] > text.facts["operator_acc"]


def test_reference_story_other_branches():
    text = story.reference_story(_reference(gain=(0.01, -0.01, 0.03), eq=(-0.02, -0.03, -0.01), memo=(0.05, 0.02, 0.08),
                                            rise=-0.01, held=(0.01, 0.00, 0.02, 0.03)))
    assert "`operator-gain-cnn` **inconclusive**" in text
    assert "The symmetry-broken operator does better here." in text
    assert "It also beats copying a training network." in text
    assert "falling" in text and "does not move in one direction" in text
    assert "still rising" not in text and "Equivariance helps" not in text


def test_shipped_vs_reference_cases():
    ref = _reference()
    before = torch.tensor([0.3, 0.4], dtype=torch.float64)
    shipped = SimpleNamespace(target=before, reference=torch.tensor([0.38, 0.48], dtype=torch.float64),
                              info={"tolerance": 1e-6, "commit": "abcdef1234"})
    w = story.shipped_vs_reference(shipped, ref)
    assert w.facts["case"] == "seed" and w.facts["seed"] == 1
    assert "seed 1, one of its 3 seeds" in w and "+8.0" in w and "mean over its 3 seeds" in w
    rerun = copy.copy(shipped)
    rerun.reference = torch.tensor([0.31, 0.41], dtype=torch.float64)
    w = story.shipped_vs_reference(rerun, ref)
    assert w.facts["case"] == "rerun" and "rerun since" in w and "abcdef1" not in w  # no commit hashes in prose
    other = copy.copy(shipped)
    other.target = torch.tensor([0.2, 0.25], dtype=torch.float64)
    assert story.shipped_vs_reference(other, ref).facts["case"] == "other-networks"


def _sweep(steps, gains, slope_ci, twin_ci):
    settings = [("cnn1d-s-relu", "conv1d", 8), ("mlp-w8-relu", "mlp", 8), ("mlp-twin-s-relu", "mlp", 100)]
    points = [{"setting": s, "family": f, "dim_gscale": d, "gain": {"mean": g[0], "ci": [g[1], g[2]], "seeds": 3}}
              for (s, f, d), g in zip(settings, gains)]
    slope = {"mean": sum(slope_ci) / 2, "ci": list(slope_ci), "seeds": 3}
    twin = {"mean": sum(twin_ci) / 2, "ci": list(twin_ci), "seeds": 3, "n": 2}
    claims = [_claim("gain-grows-with-gscale-dim", slope["mean"], *slope_ci),
              _claim("twin-gain-exceeds-cnn", twin["mean"], *twin_ci)]
    return {"config": {"steps": steps, "seeds": [0, 1, 2], "hidden_dim": 16, "num_layers": 2},
            "counts": {s: {"train": 2860, "test": 64, "zoo_networks": 4096} for s, _, _ in settings},
            "gscale_sweep": {"points": points, "slope": slope,
                             "twins": [{"cnn": "cnn1d-s-relu", "mlp": "mlp-twin-s-relu", "dims": [8, 100],
                                        "gain_mlp_minus_cnn": twin}]},
            "claims": claims}


def test_gscale_story_pilot_has_no_conclusion():
    sw = _sweep(400, [(-0.01, -0.02, -0.001), (0.0, -0.01, 0.01), (0.0, -0.01, 0.01)], (1e-5, 1e-4), (0.001, 0.02))
    text = story.gscale_story(sw, reference_steps=2000)
    assert text.facts["pilot"] and "A pilot, not a result." in text and "400 operator steps" in text
    assert "never" not in text and "grows" not in text and "2000 steps" in text


def test_gscale_story_conclusion_follows_the_claims():
    worse = [(-0.01, -0.02, -0.001), (0.0, -0.01, 0.01), (0.0, -0.01, 0.01)]
    text = story.gscale_story(_sweep(2000, worse, (1e-5, 1e-4), (0.001, 0.02)), reference_steps=2000)
    assert not text.facts["pilot"] and "**holds**): the gain grows" in text
    assert "On no architecture of this sweep is ScaleGMN-B measurably better" in text and "gap that closes" in text
    better = [(0.02, 0.01, 0.03), (0.0, -0.01, 0.01), (0.03, 0.02, 0.04)]
    text = story.gscale_story(_sweep(2000, better, (-1e-4, 1e-4), (-0.01, 0.02)), reference_steps=2000)
    assert "better on 2 of 3" in text and "no trend distinguishable from zero" in text
    assert "not distinguishable" in text and "On no architecture" not in text


def test_verdict_table_and_definition():
    claims = [_claim("operator-gain-cnn", 0.091, 0.076, 0.105), _claim("operator-generalizes", 0.0, float("nan"),
                                                                       float("nan"), op=">=")]
    table = story.verdict_table({"this run": claims, "reference": claims[:1]})
    assert "| `operator-gain-cnn` | > 0 points | +9.1 [+7.6, +10.5] | **holds** | +9.1 [+7.6, +10.5] | **holds** |" \
        in table
    assert "not measured by this run" in table and "not in this run" in table and "nan" not in table.lower()
    words = story.verdict_definition()
    assert all(f"**{w}**" in words for w in ("holds", "refuted", "inconclusive"))


def test_user_network_words():
    assert "raises" in story.user_network_words(0.298, 0.390) and "+9.2 points" in story.user_network_words(0.298, 0.39)
    assert "lowers" in story.user_network_words(0.4, 0.3)
    assert "leaves unchanged" in story.user_network_words(0.4001, 0.4002)


@pytest.mark.parametrize("kinds", [("scalegmn-b", "gmn", "gmn-aug")])
def test_figures_keep_legends_outside_and_labels_readable(kinds):
    fig, axes = plt.subplots(1, 3)
    curves = {k: {"step": [0, 250, 500], "train": [0, 0.01, 0.02], "val": [0, 0.01, 0.01], "test": [0, 0.005, 0.01]}
              for k in kinds}
    story.plot_steps_curve(axes[0], curves, "steps")
    story.plot_size_curve(axes[1], [{"networks": 16, "steps": 200, "in_sample_gain": 0.2, "held_out_gain": -0.05},
                                    {"networks": 128, "steps": 200, "in_sample_gain": 0.1, "held_out_gain": 0.02}], "n")
    story.plot_calibration(axes[2], {"loss_gain": [0.1, 0.2], "acc_gain": [0.01, 0.02],
                                     "temperature_loss_gain": [0.01, 0.02]}, "cal")
    legend = axes[0].get_legend()
    assert len(legend.get_texts()) == len(kinds) + 3  # kinds and splits apart, not kinds x splits
    fig.canvas.draw()
    for ax in axes:
        lg = ax.get_legend()
        assert min(t.get_fontsize() for t in lg.get_texts()) >= 8
        assert not lg.get_window_extent().overlaps(ax.get_window_extent())  # below the axes, off the data
    runs = {"this run": {"initial": {"acc": [[0.3, 0.4]]}, "scalegmn-b": {"acc": [[0.31, 0.4], [0.3, 0.42]]}},
            "reference": {"initial": {"acc": [[0.3, 0.4]]}, "scalegmn-b": {"acc": [[0.4, 0.5]]}}}
    fig = story.plot_gain_comparison(runs, ["scalegmn-b"])
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["this run", "reference"]
    plt.close("all")


def test_operator_pipeline_diagram():
    fig = draw_operator_pipeline()
    texts = [t for ax in fig.axes for t in ax.texts]
    boxes = {t.get_gid()[4:]: t.get_text() for t in texts if (t.get_gid() or "").startswith("box:")}
    assert ["theta", "graph", "scalegmn", "delta", "proposal"] == list(boxes)
    assert "ScaleGMN" in boxes["scalegmn"] and "θ'" in boxes["proposal"]
    assert min(t.get_fontsize() for ax in fig.axes for t in ax.texts) >= 8
    assert text_overlaps(fig, boxes=True) == []
    plt.close("all")
