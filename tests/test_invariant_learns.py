"""Issue 23: the pieces of the invariant study that make it learn and that show it: the DWSNets INR init
convention, INR learning-curve subsets, the learning curves of ``fit``, the gauge-transformed test set
and the experiment end to end on tiny zoos (every claim present, with intervals)."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from scalegmn_lite import NetworkSpec, WeightSpace
from scalegmn_lite.tasks.invariant.fit import FitConfig, fit
from scalegmn_lite.tasks.invariant.study import accuracy_task, compare, inr_task, make_model
from scalegmn_lite.zoo import Zoo
from scalegmn_lite.zoo.inr import init_siren
from scalegmn_lite.zoo.recipes import RecipeError, get_recipe, get_reference_recipe

CNN = NetworkSpec.from_text("conv1d 1-3-3/2 k3 relu 1x10")
SIREN = NetworkSpec.from_text("siren 2-6-6-1")


def _cnn_zoo(n=24, seed=0):
    gen = torch.Generator().manual_seed(seed)
    ws = [WeightSpace.randn(CNN, n, generator=gen) for _ in range(3)]
    md = pd.DataFrame({"net": range(n), "activation": "relu"})
    for c in (0, 1, 5):
        md[f"test_acc@{c}"] = torch.rand(n, generator=gen).numpy()
    return Zoo.from_weight_spaces([(ws, md)], (0, 1, 5))


def _inr_zoo(images=20, views=2, seed=0, init="dwsnets"):
    n = images * views
    w0 = init_siren(SIREN, list(range(seed, seed + n)), convention=init)
    w1 = w0.map(lambda t: t + 0.1 * torch.randn(t.shape, generator=torch.Generator().manual_seed(seed)))
    md = pd.DataFrame({"net": range(n), "image_index": np.arange(n) // views, "view": np.arange(n) % views,
                       "label": (np.arange(n) // views) % 3, "psnr": 30.0})
    return Zoo.from_weight_spaces([([w0, w1], md)], (0, 300),
                                  {"views": views, "image_size": 4, "inr_init": init} if init != "siren"
                                  else {"image_size": 4})


def test_dwsnets_init_is_low_frequency_with_zero_biases_and_siren_init_is_not():
    d = init_siren(SIREN, [0, 1], convention="dwsnets")
    s = init_siren(SIREN, [0, 1], convention="siren")
    bound_hidden = math.sqrt(6 / 2) / 30  # the first layer takes the hidden layers' bound
    assert d.weights[0].abs().max() <= bound_hidden < s.weights[0].abs().max() <= 0.5
    assert all(float(b.abs().max()) == 0 for b in d.biases) and all(float(b.abs().max()) > 0 for b in s.biases)
    # the later layers are drawn alike: the conventions differ in the first layer and the biases only
    assert torch.allclose(d.weights[1].abs().max(), s.weights[1].abs().max(), rtol=0.5)
    with pytest.raises(ValueError, match="unknown INR init convention"):
        init_siren(SIREN, [0], convention="xavier")


def test_recipe_inr_init_is_validated_and_keeps_old_cache_keys():
    r = get_recipe("inr-dws-digits")
    assert r.inr_init == "dwsnets" and "inr_init" in r.to_dict()
    old = get_recipe("inr-views-digits")
    assert "inr_init" not in old.to_dict()  # Sitzmann's init, the default: the old zoo keeps its hash
    assert replace(old, inr_init="dwsnets").hash() != old.hash()
    assert get_reference_recipe("inr-dws-digits").num_networks >= 4096
    with pytest.raises(RecipeError, match="inr_init must be"):
        replace(r, inr_init="kaiming")
    with pytest.raises(RecipeError, match="only applies to INR recipes"):
        replace(get_recipe("cnn1d-hp-mnist1d"), inr_init="dwsnets")


def test_inr_task_subsets_cut_training_images_only_and_keep_views_together():
    zoo = _inr_zoo(images=20, views=2)
    full = inr_task(zoo, seed=0)
    half = inr_task(zoo, seed=0, train_images=0.5)
    assert half.sizes()["train"] == full.sizes()["train"] // 2 and half.sizes()["train"] % 2 == 0
    assert half.test[0].max_abs_diff(full.test[0]) == 0 and half.val[0].max_abs_diff(full.val[0]) == 0
    three = inr_task(zoo, seed=0, train_images=3)
    assert three.sizes()["train"] == 6
    one = inr_task(zoo, seed=0, views=1)
    assert one.sizes()["test"] == full.sizes()["test"] // 2
    with pytest.raises(ValueError, match="train_images"):
        inr_task(zoo, train_images=0.0)
    with pytest.raises(ValueError, match="views must be in"):
        inr_task(zoo, views=3)


def test_fit_records_learning_curves_without_changing_training():
    data = accuracy_task(_cnn_zoo())
    runs = []
    for probe in (0, 5):
        torch.manual_seed(0)
        model, _ = make_model("statnn", data.spec, 1, hidden=8)
        model.fit_normalization(data.train[0])
        res = fit(model, *data.train, *data.val, "regression", FitConfig(epochs=3, batch_size=8, train_probe=probe),
                  progress=False)
        runs.append(res)
    assert [h["train_loss"] for h in runs[0].history] == [h["train_loss"] for h in runs[1].history]
    assert "train_score" not in runs[0].history[0]
    assert all(-1 <= h["train_score"] <= 1 for h in runs[1].history)


def test_transformed_test_gauge_keeps_functions_non_symmetry_does_not():
    data = accuracy_task(_cnn_zoo())
    x = torch.randn(4, 1, 10)
    ws = data.test[0]
    g, bad = data.transformed_test("gauge"), data.transformed_test("wrong_scaling")
    assert torch.allclose(ws(x), g(x), atol=1e-4) and not torch.allclose(ws(x), bad(x), atol=1e-2)
    assert g.max_abs_diff(ws) > 0.1  # the weights did move
    assert data.transformed_test("gauge").max_abs_diff(g) == 0  # one fixed draw: scores are paired


def test_compare_scores_gauge_transformed_test_scalegmn_unchanged_flatmlp_moves():
    data = accuracy_task(_cnn_zoo(40))
    df = compare(data, ("scalegmn", "flatmlp"), seeds=(0,), fit_config=FitConfig(epochs=1, batch_size=8),
                 hidden=8, layers=1, progress=False)
    row = df.set_index("model")
    assert abs(row.loc["scalegmn", "test_score"] - row.loc["scalegmn", "test_score_gauge"]) < 1e-9
    assert np.allclose(row.loc["scalegmn", "test_pred"], row.loc["scalegmn", "test_pred_gauge"], rtol=1e-4,
                       atol=1e-6)
    assert not np.allclose(row.loc["flatmlp", "test_pred"], row.loc["flatmlp", "test_pred_gauge"], atol=1e-4)
    assert not np.allclose(row.loc["scalegmn", "test_pred"], row.loc["scalegmn", "test_pred_nonsym"], atol=1e-6)
    assert len(row.loc["scalegmn", "history"]) == 1


def test_rendering_control_reads_the_digit_from_renderings():
    from scalegmn_lite.experiments.invariant import rendering_control
    from scalegmn_lite.zoo.inr import digit_images, fit_inrs

    images, labels = digit_images(8)
    idx = torch.arange(120)
    ws0 = init_siren(NetworkSpec.from_text("siren 2-16-16-1"), idx.tolist(), convention="dwsnets")
    ws, _, _ = fit_inrs(ws0, images[idx], 150, 1e-3, progress=False)
    md = pd.DataFrame({"net": idx.numpy(), "image_index": idx.numpy(), "label": labels[idx].numpy()})
    zoo = Zoo.from_weight_spaces([([ws], md)], (150,))
    acc = rendering_control(inr_task(zoo, seed=0), 8)
    assert acc > 0.5  # chance is 0.1; the renderings show the digits


def test_invariant_experiment_end_to_end_on_tiny_zoos(monkeypatch, tmp_path):
    from scalegmn_lite.common.claims import validate_claim
    from scalegmn_lite.experiments import RunContext
    from scalegmn_lite.experiments import invariant as inv

    monkeypatch.setattr(inv, "cnn_relu_zoo", lambda *a, **k: _cnn_zoo(30))
    monkeypatch.setattr(inv, "inr_zoo", lambda *a, **k: _inr_zoo(30, 2))
    monkeypatch.setattr(inv, "inr_init_twin", lambda *a, **k: _inr_zoo(30, 1, seed=7, init="siren"))
    monkeypatch.setattr(inv, "QUICK", dict(inv.QUICK, seeds=(0, 1), epochs=1, hidden=8, layers=1, inr_epochs=1,
                                           checkpoints=None, evidence=True, evidence_seeds=(0, 1),
                                           evidence_fractions=(0.5,), evidence_epochs=1))
    from dataclasses import asdict

    out = inv.run(RunContext(quick=True, out_dir=tmp_path, progress=False))
    claims = [asdict(c) for c in out["claims"]]
    ids = {c["id"] for c in claims}
    assert {"scalegmn-invariant", "scalegmn-beats-gmn-generalization", "scalegmn-beats-statnn",
            "scalegmn-beats-gmn-inr-classification", "scalegmn-beats-statnn-inr-classification",
            "accuracy-prediction-learns", "inr-classification-learns", "scalegmn-gauge-test-unchanged",
            "gauge-test-moves-baselines"} <= ids
    for c in claims:
        validate_claim(c, c["id"])
    assert out["gauge_test"]["accuracy-prediction"]["scalegmn"]["max_abs_change_gauge"] < 1e-9
    # issue 33: clusters stored (a network's checkpoints share one label), selection on validation,
    # the floor models and tau_max beside the scores, and judge() on the stored file gives the same claims
    g = np.asarray(out["test_groups"]["accuracy-prediction"])
    ck = np.asarray(out["test_checkpoints"])
    assert len(g) == len(ck) and len(np.unique(g)) * len(np.unique(ck)) == len(g)
    assert out["selection"]["accuracy-prediction"]["chosen_on"].startswith("validation")
    assert set(out["floors"]) == {"accuracy-prediction", "inr-classification"}
    assert "weight-norm" in out["scores"]["accuracy-prediction"]
    assert 0 < out["tau_max"] <= 1
    import json

    stored = json.loads(json.dumps({k: v for k, v in out.items() if k != "claims"}, default=float))
    again = inv.judge(stored)
    assert [c.to_dict() for c in again["claims"]] == [c.to_dict() for c in out["claims"]]
    kinds = {c["id"]: c["kind"] for c in claims}
    assert kinds["scalegmn-invariant"] == "check" and kinds["scalegmn-beats-gmn-generalization"] == "finding"
    labels = [p["label"] for p in out["inr_evidence"]["points"]]
    assert labels == ["images x0.5", "1 view", "1 view, Sitzmann init", "all images"]
    assert set(out["tau_by_checkpoint"]["scalegmn"]) == {"0", "1", "5"}
    assert all("history" in r for r in out["runs"])


def test_quick_run_leaves_the_inr_evidence_to_reference_size():
    """Issue 34: the quick run skips the INR evidence and so never builds its twin zoo; the reference run keeps both."""
    from scalegmn_lite.experiments import RunContext
    from scalegmn_lite.experiments import invariant as inv

    quick = [r.name for r in inv.zoos(RunContext(quick=True))]
    ref = [r.name for r in inv.zoos(RunContext(quick=True, reference=True))]
    assert "inr-dws-digits-siren-init" not in quick and "inr-dws-digits-siren-init" in ref
    assert not inv.QUICK["evidence"] and inv.REFERENCE["evidence"] and inv.FULL["evidence"]


def test_quick_checkpoints_are_recorded_by_the_quick_zoo():
    """The quick study's checkpoint subset names epochs the quick ``cnn1d-hp-mnist1d`` zoo records (the
    final one as -1), and the reference keeps every checkpoint."""
    from scalegmn_lite.experiments import invariant as inv
    from scalegmn_lite.zoo.recipes import checkpoint_schedule, get_recipe

    recorded = checkpoint_schedule(get_recipe("cnn1d-hp-mnist1d", full=False).epochs)
    wanted = [recorded[-1] if c == -1 else c for c in inv.QUICK["checkpoints"]]
    assert set(wanted) <= set(recorded) and len(set(wanted)) == len(wanted) and recorded[-1] in wanted
    assert inv.REFERENCE["checkpoints"] is None
