"""The residual study (issue 36) end to end on a tiny residual zoo: every model trains, the gauge-transformed test
networks are scored, the claims come out of :func:`judge` and are recomputed from the stored result."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from scalegmn_lite.common.claims import validate_claim
from scalegmn_lite.experiments import RunContext
from scalegmn_lite.experiments import residual as res
from scalegmn_lite.zoo import ZooRecipe, build_zoo
from scalegmn_lite.zoo.recipes import RESIDUAL_RECIPES


@pytest.fixture(scope="module")
def tiny_zoo():
    recipe = ZooRecipe(name="tiny-resmlp-bn", dataset="mnist1d", arch="mlp 40-8bn-[8bn-8bn]-10 relu", num_networks=24,
                       epochs=2, checkpoint_epochs=(0, 1, 2), train_size=300, batch_size=50, lr=(1e-2, 0.3),
                       optimizers=("sgd", "adam"), adam_lr=(1e-3, 3e-2), train_fractions=(0.5, 1.0))
    return build_zoo(recipe, progress=False)


@pytest.fixture(scope="module")
def tiny_result(tiny_zoo):
    p = dict(res.QUICK, zoos=("tiny",), models=("scalegmn", "scalegmn-plain", "scalegmn-normaffine", "gmn", "statnn"),
             seeds=(0, 1), epochs=1, hidden=8, layers=1, checkpoints=(0, -1), curve_fractions=(0.5,))
    ctx = RunContext(quick=True, progress=False)
    out = {"zoos": {"tiny": res.run_zoo(tiny_zoo, p, ctx, curve=True)}, "settings": p, "mode": "quick",
           "zoo_table": {"tiny": {"networks": 24}}}
    out.update(res.judge(out, n_boot=200))
    return out, p


def test_residual_study_runs_and_judges_from_its_file(tiny_result):
    out, p = tiny_result
    ids = [c.id for c in out["claims"]]
    assert ids == ["residual-accuracy-prediction-learns", "residual-scalegmn-gauge-test-unchanged",
                   "residual-gauge-test-moves-baselines", "residual-scalegmn-beats-naive", "residual-zoo-sizes"]
    # 24 networks is not a quick-size zoo: the size check fails, it does not pass by construction
    assert {c.id: c.status for c in out["claims"]}["residual-zoo-sizes"] == "refuted"
    # the data curve: ScaleGMN and StatNN on half the training networks, then on all of them (the main runs)
    curve = out["zoos"]["tiny"]["data_curve"]
    n = out["zoos"]["tiny"]["training_networks"]
    assert [c["fraction"] for c in curve] == [0.5, 1.0] and [c["training_networks"] for c in curve] == [round(n / 2), n]
    assert all(set(c["test_score"]) == {"scalegmn", "statnn"} and len(c["test_score"]["statnn"]) == 2 for c in curve)
    for c in out["claims"]:
        validate_claim(c.to_dict(), c.id)
    z = out["zoos"]["tiny"]
    assert z["spec"] == "mlp 40-8bn-[8bn-8bn]-10 relu" and z["floor"]["name"] == "weight-norm"
    # the exact ScaleGMN's score barely moves on gauge-transformed networks (eps > 0 in the norms: not exactly 0)
    assert out["per_zoo"]["tiny"]["scalegmn_gauge_change"] < 1e-3
    assert set(z["in_sample"]) <= set(p["models"]) and z["in_sample"]
    measured = {c.id: c.measured for c in out["claims"]}
    assert set(measured["residual-gauge-test-moves-baselines"]) >= {"tiny/gmn", "tiny/statnn"}
    assert set(measured["residual-scalegmn-beats-naive"]) >= {"tiny/scalegmn-plain", "tiny/scalegmn-normaffine"}
    stored = json.loads(json.dumps({k: v for k, v in out.items() if k not in ("claims", "per_zoo")}, default=float))
    again = res.judge(stored, n_boot=200)
    assert [c.to_dict() for c in again["claims"]] == [c.to_dict() for c in out["claims"]]
    from scalegmn_lite.recompute import recompute_result

    rejudged = recompute_result("residual", stored, zoos=False, n_boot=200)
    assert rejudged["claims"] == [c.to_dict() for c in out["claims"]]


def test_residual_sizes_and_zoos():
    assert set(res.QUICK["zoos"]) <= set(RESIDUAL_RECIPES) and set(res.REFERENCE["zoos"]) <= set(RESIDUAL_RECIPES)
    quick = [r.num_networks for r in res.zoos(RunContext(quick=True))]
    ref = [r.num_networks for r in res.zoos(RunContext(quick=True, reference=True))]
    assert quick == [1024] * len(res.QUICK["zoos"])
    assert ref == [4096] * len(res.REFERENCE["zoos"] + res.REFERENCE["report"])
    assert set(res.REFERENCE["report"]) <= set(RESIDUAL_RECIPES) and not set(res.REFERENCE["report"]) & set(
        res.REFERENCE["zoos"])
    assert set(res.NAIVE) <= set(res.QUICK["models"]) and "scalegmn" in res.QUICK["models"]


def test_fewer_training_networks_keeps_whole_networks(tiny_zoo):
    from scalegmn_lite.tasks.invariant.study import accuracy_task

    data = accuracy_task(tiny_zoo, [0, 1, 2], seed=0)
    n = data.n_train_networks
    half = res.fewer_training_networks(data, 0.5)
    k = half.n_train_networks
    assert k == round(n / 2) and half.train[0].batch_size == 3 * k and half.val[0] is data.val[0]
    for c in range(3):  # every checkpoint of each kept network, and only of those
        assert half.train[0][torch.arange(c * k, (c + 1) * k)].max_abs_diff(
            data.train[0][torch.arange(c * n, c * n + k)]) == 0
        assert torch.equal(half.train[1][c * k:(c + 1) * k], data.train[1][c * n:c * n + k])
    with pytest.raises(ValueError, match="n_train_networks"):
        res.fewer_training_networks(dataclasses.replace(data, n_train_networks=None), 0.5)


def test_subsample_is_seeded_and_keeps_zoo_order(tiny_zoo):
    a, b = res.subsample(tiny_zoo, 10, 0), res.subsample(tiny_zoo, 10, 0)
    assert len(a) == 10 and a.metadata["net"].tolist() == b.metadata["net"].tolist()
    assert a.metadata["net"].is_monotonic_increasing
    assert res.subsample(tiny_zoo, 10, 1).metadata["net"].tolist() != a.metadata["net"].tolist()
    assert res.subsample(tiny_zoo, None, 0) is tiny_zoo and res.subsample(tiny_zoo, 99, 0) is tiny_zoo


def test_residual_is_a_reproduce_experiment():
    from scalegmn_lite.cli import COST_ORDER
    from scalegmn_lite.experiments import EXPERIMENT_MODULES, ZOOS, load_all
    from scalegmn_lite.recompute import RECOMPUTABLE

    assert "residual" in load_all() and "residual" in EXPERIMENT_MODULES and "residual" in COST_ORDER
    assert "residual" in RECOMPUTABLE
    ref = [r.name for r in ZOOS["residual"](RunContext(quick=True, reference=True))]
    assert ref == list(res.REFERENCE["zoos"] + res.REFERENCE["report"])


def test_the_course_draws_the_study_from_its_file(tiny_result, tiny_zoo):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from scalegmn_lite.common.stats import decide
    from scalegmn_lite.course import residual_story as story

    out, p = tiny_result
    stored = json.loads(json.dumps({**out, "claims": [c.to_dict() for c in out["claims"]]}, default=float))
    df = story.scores_frame(stored)
    assert set(df.model) == set(p["models"]) | {"weight-norm"} and df["chosen on validation"].eq("yes").sum() == 1
    chosen = df.loc[df["chosen on validation"] == "yes", "model"].item()
    assert chosen == max(stored["per_zoo"]["tiny"]["validation_score"],
                         key=stored["per_zoo"]["tiny"]["validation_score"].get)
    row = df.set_index("model").loc["scalegmn"]
    assert row["held-out tau"].startswith(f"{stored['per_zoo']['tiny']['scores']['scalegmn']['mean']:.3f}")
    ax = story.plot_gauge_test(stored, "tiny")
    assert len(ax.patches) == 2 * len(p["models"])  # original and transformed, per model
    ax = story.plot_validation_curves(stored, "tiny")
    assert len(ax.get_legend().get_texts()) == len(p["models"])
    ax = story.plot_data_curve(stored)
    assert ax is not None and len(ax.get_legend().get_texts()) == 4  # scalegmn and statnn, held out and in-sample
    axes = story.plot_zoo_accuracy(tiny_zoo, n_curves=5)
    assert len(axes[0].lines) == 5
    words = story.reading(stored)
    pz = stored["per_zoo"]["tiny"]
    assert f"held-out tau {pz['scores'][chosen]['mean']:.3f}" in words and "**Data curve (tiny).**" in words
    for m, d in pz["gauge_drop"].items():  # the verb follows the paired interval, never typed
        status = decide(d["ci"], ">", 0)
        verb = {"holds": "drops", "refuted": "rises", "inconclusive": "does not measurably move"}[status]
        assert f"{story.MODEL_LABELS[m]} {verb} ({d['mean']:+.3f}" in words
    assert set(pz["beats_naive"]) == {"scalegmn-plain", "scalegmn-normaffine"}
    no_curve = {**stored, "zoos": {"tiny": {k: v for k, v in stored["zoos"]["tiny"].items() if k != "data_curve"}}}
    assert story.plot_data_curve(no_curve) is None
    plt.close("all")
