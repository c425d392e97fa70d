"""Issue 33: the memorization controls of the amortized study's headroom setting, the claim
``operator-beats-memorization``, the headroom margins, clustered intervals, the renamed record field,
the ``--full`` and gscale budgets, and re-judging a stored result without retraining."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from test_amortized_study import tiny_config, tiny_recipe

from scalegmn_lite.tasks.amortized.memorization import CONTROLS, memorization_controls, noise_perturbed
from scalegmn_lite.tasks.amortized.protocol import Setting, StudyConfig
from scalegmn_lite.tasks.amortized.study import StudyResult, compute_claims, run_study, setting_data

CNN12 = tiny_recipe("conv2d 1-2-2/10 k3 tanh 1x8x8", "tiny-cnn-12").with_size(12)
MARGINS = ("scalegmn-b-beats-gmn-b-headroom", "scalegmn-b-beats-gmn-b-aug-headroom")


def _cfg(**kw):
    base = dict(settings=(Setting("cnn", CNN12, "tanh", 0.0, ("scalegmn-b", "gmn", "gmn-aug"), role="headroom"),),
                eval_every=2, steps=4, diagnostics=True, curve_sizes=(1,), curve_steps=2, val_networks=2,
                val_images=64, adam_lrs=(), transfer=False, baselines=False, split=(0.5, 0.17, 0.33))
    base.update(kw)
    return tiny_config(**base)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """One tiny headroom study (a few seconds), shared by the tests of this module."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SCALEGMN_LITE_CACHE", str(tmp_path_factory.mktemp("memo") / "cache"))
        cfg = _cfg()
        res = run_study(cfg, progress=False, workers=1)
        data = setting_data(cfg.settings[0], cfg, progress=False)
        yield res, data


def _brute_accuracy(ws, x, y):
    """Accuracy of every network one at a time through its ``torch.nn`` module (not the batched forward)."""
    shape = ws.spec.input_shape
    out = []
    with torch.no_grad():
        for i in range(ws.batch_size):
            z = ws.to_module(i)(x.reshape(len(x), *shape))
            out.append(float((z.argmax(-1) == y).double().mean()))
    return np.array(out)


def test_controls_on_a_tiny_study_are_finite_with_the_right_shapes(study):
    res, d = study
    mem = res.memorization["cnn"]
    S, B = len(res.config.seeds), res.counts["cnn"]["test"]
    assert set(mem) == set(CONTROLS)
    for c in ("best-training-network", "nearest-training-network", "mean-of-k-best"):
        assert mem[c]["acc"].shape == (1, B), c  # the same for every operator seed
    assert mem["noise-perturbed-input"]["acc"].shape == (S, B)
    assert all(np.isfinite(v["acc"]).all() and ((0 <= v["acc"]) & (v["acc"] <= 1)).all() for v in mem.values())
    js = json.loads(json.dumps(res.to_json()))
    row = js["memorization"]["cnn"]
    assert set(row) == set(CONTROLS)
    for c, v in row.items():
        assert {"accuracy", "per_network", "detail"} <= set(v)
        assert v["accuracy"]["mean"] == pytest.approx(mem[c]["acc"].mean(), abs=1e-6)
        assert np.asarray(v["per_network"]).shape == mem[c]["acc"].shape
        assert v["detail"]["operator"] == "scalegmn-b"
    # every control scored on the held-out test images: the best training network's accuracy is its own
    best = mem["best-training-network"]["detail"]["train_index"]
    acc = _brute_accuracy(d["train"][best:best + 1], d["x_test"], d["y_test"])[0]
    assert mem["best-training-network"]["acc"][0, 0] == pytest.approx(acc, abs=1e-6)
    # nearest: one training index per test network
    near = mem["nearest-training-network"]["detail"]["train_index"]
    assert len(near) == B and all(0 <= i < d["train"].batch_size for i in near)


def test_best_training_network_is_the_argmax_of_training_image_accuracy(study):
    res, d = study
    tr_acc = _brute_accuracy(d["train"], d["x"], d["y"])
    detail = res.memorization["cnn"]["best-training-network"]["detail"]
    assert detail["train_index"] == int(np.argmax(tr_acc))  # the first of ties, like np.argmax
    assert detail["train_images_acc"] == pytest.approx(tr_acc.max(), abs=1e-6)
    # negative control: the test-image argmax may differ; what is used is the training-image one
    order = res.memorization["cnn"]["mean-of-k-best"]["detail"]["train_index"]
    assert order[0] == detail["train_index"]


def test_k_is_chosen_on_validation_never_on_test(study):
    _, d = study
    args = (d["train"], d["val"], d["test"], d["x"], d["y"])
    outs = [d["test"] * 1.1]
    a = memorization_controls(*args, d["x_test"], d["y_test"], outs, val_images=64, val_networks=2)
    g = torch.Generator().manual_seed(3)
    garbage_x = torch.randn(d["x_test"].shape, generator=g)
    garbage_y = torch.randint(0, 10, d["y_test"].shape, generator=g)
    b = memorization_controls(*args, garbage_x, garbage_y, outs, val_images=64, val_networks=2)
    ka, kb = a["mean-of-k-best"]["detail"], b["mean-of-k-best"]["detail"]
    assert ka["k"] == kb["k"] and ka["val_gain_by_k"] == kb["val_gain_by_k"]  # test data changes nothing
    assert ka["k"] == max(ka["k_grid"], key=lambda k: (ka["val_gain_by_k"][str(k)], -k))
    # ...but the validation images do choose it: a spy sees no test tensor before the choice
    from scalegmn_lite.tasks.amortized import memorization as mm

    seen = []
    orig = mm._acc

    def spy(ws, x, y, chunk=128):
        seen.append(x.data_ptr() == d["x_test"].data_ptr())
        return orig(ws, x, y, chunk)

    mm._acc = spy
    try:
        memorization_controls(*args, d["x_test"], d["y_test"], outs, val_images=64, val_networks=2,
                              k_grid=(1, 2))
    finally:
        mm._acc = orig
    # calls: train ranking, best on test, nearest on test, val networks, k=1, k=2 (validation), chosen k on test
    assert seen[3:6] == [False, False, False] and seen[6] is True


def test_noise_perturbation_norm_equals_the_operator_update_norm(study):
    res, d = study
    detail = res.memorization["cnn"]["noise-perturbed-input"]["detail"]
    upd, pert = np.asarray(detail["update_norm"]), np.asarray(detail["perturbation_norm"])
    assert upd.shape == pert.shape == (len(res.config.seeds), res.counts["cnn"]["test"])
    assert np.allclose(upd, pert, rtol=1e-4, atol=1e-6) and (upd > 0).all()
    first = (res.weights["cnn"]["scalegmn-b"].flatten().double() - d["test"].flatten().double()).norm(dim=1)
    assert np.allclose(upd[0], first.numpy(), rtol=1e-4, atol=1e-6)  # seed 0's own update
    # seeded, and a different direction from the update itself
    te, out = d["test"], res.weights["cnn"]["scalegmn-b"]
    n1, _ = noise_perturbed(te, out, 5)
    n2, _ = noise_perturbed(te, out, 5)
    n3, _ = noise_perturbed(te, out, 6)
    assert n1.allclose(n2) and not n1.allclose(n3) and not n1.allclose(out)


def test_operator_beats_memorization_and_the_margins_are_claimed(study):
    res, _ = study
    claims = {c.id: c for c in compute_claims(res)}
    c = claims["operator-beats-memorization"]
    assert c.status in ("holds", "refuted", "inconclusive") and c.kind == "finding"
    assert all(name in c.statement for name in CONTROLS)
    assert all(f"{name}_acc" in c.measured for name in CONTROLS)
    best = max(CONTROLS, key=lambda k: res.memorization["cnn"][k]["acc"].mean())
    assert c.measured["best_control"] == best
    op = res.per_network["cnn"]["scalegmn-b"]["acc"]
    assert c.measured[f"minus_{best}"] == pytest.approx((op - res.memorization["cnn"][best]["acc"]).mean())
    assert "best-training-network" in claims["operator-gain-cnn"].statement
    for cid, other in zip(MARGINS, ("gmn", "gmn-aug")):
        diff = res.per_network["cnn"]["scalegmn-b"]["acc"] - res.per_network["cnn"][other]["acc"]
        assert claims[cid].measured == pytest.approx(diff.mean()) and claims[cid].seeds == 2
    assert claims["one-shot-1000x-faster"].kind == "finding"
    # the record field measured on test images says so
    assert "val_networks_test_images_acc" in res.training and "val_acc" not in res.training


def _fake(op=0.6, controls=(0.5, 0.5, 0.5, 0.5), missing=(), seeds=3, n=40, noise=0.01):
    rng = np.random.default_rng(0)
    init = 0.35 + rng.normal(0, noise, (1, n))
    per = {"cnn": {"initial": {"acc": init}, "scalegmn-b": {"acc": op + rng.normal(0, noise, (seeds, n))},
                   "gmn": {"acc": op - 0.02 + rng.normal(0, noise, (seeds, n))}}}
    mem = {"cnn": {c: {"acc": m + rng.normal(0, noise, (1, n)), "detail": {}}
                   for c, m in zip(CONTROLS, controls) if c not in missing}}
    cfg = StudyConfig(settings=(Setting("cnn", tiny_recipe("conv2d 1-2-2/10 k3 tanh 1x8x8", "t"), "tanh", 0.0,
                                        ("scalegmn-b", "gmn"), role="headroom"),), seeds=tuple(range(seeds)))
    table = pd.DataFrame(columns=["setting", "method", "seconds_per_network_single"])
    return StudyResult(cfg, table, pd.DataFrame(), {}, [], {}, {}, {}, 0.0, per, {}, {}, {}, mem)


def test_operator_beats_memorization_holds_refutes_and_stays_inconclusive():
    def status(**kw):
        return {c.id: c for c in compute_claims(_fake(**kw))}

    assert status()["operator-beats-memorization"].status == "holds"
    beaten = status(controls=(0.7, 0.5, 0.5, 0.5))["operator-beats-memorization"]  # the single best network wins
    assert beaten.status == "refuted" and beaten.measured["best_control"] == "best-training-network"
    assert beaten.measured["minus_best-training-network"] == pytest.approx(-0.1, abs=0.01)
    # beats three controls but ties the fourth: not "holds"
    tie = status(controls=(0.5, 0.5, 0.6, 0.5), noise=0.05, n=10)["operator-beats-memorization"]
    assert tie.status == "inconclusive"
    # a control the result does not hold is reported missing, never invented
    gone = status(missing=("noise-perturbed-input",))["operator-beats-memorization"]
    assert gone.status == "inconclusive" and "missing" in gone.statement and "noise-perturbed-input" in gone.statement
    none = status(missing=CONTROLS)["operator-beats-memorization"]
    assert none.status == "inconclusive" and np.isnan(float(none.ci[0]))
    m = status()
    assert m["scalegmn-b-beats-gmn-b-headroom"].status == "holds"
    assert m["scalegmn-b-beats-gmn-b-aug-headroom"].status == "inconclusive"  # no GMN+aug: NaN interval


def test_intervals_resample_the_checkpoints_of_a_network_together():
    from scalegmn_lite.tasks.amortized.study import _row_clusters

    class Z:
        checkpoints = (0, 1, 3, 10)

    assert _row_clusters(Z, "final", 4) is None
    assert _row_clusters(Z, "intermediate", 5) == [0, 0, 1, 1, 2]  # epochs 1 and 3, network-major
    rng = np.random.default_rng(0)
    net = rng.normal(0, 0.1, 10)
    acc = np.repeat(net, 4)[None] + rng.normal(0, 0.001, (2, 40))  # 4 near-identical rows per network
    res = _fake()
    res.per_network = {"cnn": {"initial": {"acc": acc}}}
    res.counts = {"cnn": {"test_clusters": np.repeat(np.arange(10), 4).tolist()}}
    clustered = res.intervals()["cnn"]["initial"]["acc"]
    res.counts = {}
    rows = res.intervals()["cnn"]["initial"]["acc"]
    assert clustered["clusters"] == 10 and rows["clusters"] == 40
    assert clustered["ci"][1] - clustered["ci"][0] > 1.5 * (rows["ci"][1] - rows["ci"][0])


def test_recompute_result_reproduces_the_claims(study):
    from scalegmn_lite.tasks.amortized.recompute import recompute_result

    res, _ = study
    js = json.loads(json.dumps(res.to_json()))
    js["claims"] = [c.to_dict() for c in compute_claims(res)]
    again = recompute_result(js)
    old = {c["id"]: c for c in js["claims"]}
    new = {c["id"]: c for c in again["claims"]}
    assert set(new) == set(old) and again["recomputed"]["missing"] == [] and again["recomputed"]["changed"] == {}
    for k, c in old.items():
        assert new[k]["status"] == c["status"] and new[k]["kind"] == c["kind"], k
        if isinstance(c["measured"], float):
            assert new[k]["measured"] == pytest.approx(c["measured"], abs=1e-4), k
    for c in CONTROLS:
        assert again["memorization"]["cnn"][c]["accuracy"]["mean"] == pytest.approx(
            js["memorization"]["cnn"][c]["accuracy"]["mean"], abs=1e-4)
    # an older file without the controls: reported missing, the claim inconclusive
    old_file = {k: v for k, v in js.items() if k != "memorization"}
    stale = recompute_result(old_file)
    claim = next(c for c in stale["claims"] if c["id"] == "operator-beats-memorization")
    assert claim["status"] == "inconclusive" and "not in this result" in claim["statement"]
    assert len(stale["recomputed"]["missing"]) == len(CONTROLS)
    # a changed figure changes the verdict (the recomputation really reads the file)
    worse = json.loads(json.dumps(js))
    worse["per_network"]["cnn"]["scalegmn-b"]["acc"] = (np.asarray(worse["per_network"]["cnn"]["initial"]["acc"])
                                                        .repeat(2, 0) - 0.2).tolist()
    gain = next(c for c in recompute_result(worse)["claims"] if c["id"] == "operator-gain-cnn")
    assert gain["status"] == "refuted" and gain["measured"] == pytest.approx(-0.2, abs=1e-4)


def test_the_noise_control_is_rebuilt_from_the_stored_update_sizes(study, tmp_path, monkeypatch):
    """A file that kept no operator output but kept the first seed's relative update sizes (the
    reference run before the noise control existed) gets the noise control rebuilt from them: the same
    direction and norm as the study's own first-seed control."""
    from scalegmn_lite.recompute import amortized_controls_from_zoo
    from scalegmn_lite.zoo import recipes

    monkeypatch.setenv("SCALEGMN_LITE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(recipes.RECIPES, CNN12.name, (CNN12, CNN12))  # the file names its zoo recipe
    res, _ = study
    js = json.loads(json.dumps(res.to_json()))
    js["claims"] = [c.to_dict() for c in compute_claims(res)]
    ran = js["memorization"]["cnn"].pop("noise-perturbed-input")
    again = amortized_controls_from_zoo(js)
    rebuilt = again["memorization"]["cnn"]["noise-perturbed-input"]
    assert np.allclose(rebuilt["detail"]["update_norm"][0], ran["detail"]["update_norm"][0], rtol=1e-4, atol=1e-5)
    acc_now, acc_ran = np.asarray(rebuilt["per_network"][0]), np.asarray(ran["per_network"][0])
    assert acc_now.shape == acc_ran.shape and np.abs(acc_now - acc_ran).mean() < 0.02
    assert set(again["memorization"]["cnn"]) == set(CONTROLS)
    # without the stored update sizes the control stays missing: nothing is invented
    del js["diagnostics"]["cnn"]["update_size"]
    assert "noise-perturbed-input" not in amortized_controls_from_zoo(js)["memorization"]["cnn"]
    # update sizes for other networks than the test networks: refused
    js2 = json.loads(json.dumps(res.to_json()))
    js2["memorization"]["cnn"].pop("noise-perturbed-input")
    js2["diagnostics"]["cnn"]["update_size"]["scalegmn-b"]["per_network"] += [0.1]
    with pytest.raises(ValueError, match="update sizes"):
        amortized_controls_from_zoo(js2)


def test_recompute_gscale_result_from_per_network_figures():
    from scalegmn_lite.tasks.amortized.gscale import gscale_sweep, sweep_claims
    from scalegmn_lite.tasks.amortized.recompute import recompute_gscale_result

    rng = np.random.default_rng(0)
    counts = {"w8": {"spec": "mlp 40-8-10 relu"}, "w32": {"spec": "mlp 40-32-10 relu"}}
    per = {s: {"scalegmn-b": {"acc": 0.5 + g + rng.normal(0, 0.01, (3, 30))},
               "gmn": {"acc": 0.5 + rng.normal(0, 0.01, (3, 30))}} for s, g in (("w8", 0.0), ("w32", 0.05))}
    sweep = gscale_sweep(per, counts)
    stored = json.loads(json.dumps({"claims": [c.to_dict() for c in sweep_claims(sweep)], "gscale_sweep": sweep,
                                    "counts": counts,
                                    "per_network": {s: {m: {"acc": d["acc"].tolist()} for m, d in p.items()}
                                                    for s, p in per.items()}}))
    again = recompute_gscale_result(stored)
    assert [(c["id"], c["status"]) for c in again["claims"]] == [(c["id"], c["status"]) for c in stored["claims"]]
    assert again["gscale_sweep"]["slope"]["mean"] == pytest.approx(sweep["slope"]["mean"])
    # an older file (final networks, no per-network figures): its stored intervals are already clustered
    # (one row per network), so they are kept with their statuses, and the statement says so
    old = recompute_gscale_result({k: v for k, v in stored.items() if k != "per_network"})
    assert old["recomputed"]["missing"] == ["per_network"]
    assert [(c["id"], c["status"], c["ci"]) for c in old["claims"]] == \
        [(c["id"], c["status"], c["ci"]) for c in stored["claims"]]
    assert all("interval as stored" in c["statement"] and c["kind"] == "finding" for c in old["claims"])
    # with intermediate checkpoints as rows, a stored interval is not trusted: inconclusive, never invented
    inter = recompute_gscale_result({**{k: v for k, v in stored.items() if k != "per_network"},
                                     "config": {"start": "intermediate"}})
    assert all(c["status"] == "inconclusive" and "not stored" in c["statement"] for c in inter["claims"])


def test_full_uses_the_reference_protocol_and_gscale_reference_has_a_transfer_budget():
    from scalegmn_lite.tasks.amortized.protocol import gscale_settings
    from scalegmn_lite.zoo.recipes import get_reference_recipe

    ref, full = StudyConfig.reference_size(), StudyConfig.full_size()
    assert full.eval_every > 0 and full.diagnostics and full.start == ref.start
    assert [(s.name, s.role, s.kinds) for s in full.settings] == [(s.name, s.role, s.kinds) for s in ref.settings]
    assert full.hidden_dim > ref.hidden_dim and full.num_layers > ref.num_layers
    assert full.steps > ref.steps and len(full.seeds) > len(ref.seeds)
    head = [s for s in full.settings if s.role == "headroom"]
    assert head and head[0].is_cnn and head[0].lam == 0 and "scalegmn-b" in head[0].kinds  # transfer claims judged
    g = StudyConfig.gscale(reference=True)
    assert g.steps >= 2000 and g.eval_every > 0 and len(g.seeds) >= 3
    for s in g.settings:
        r = get_reference_recipe(s.zoo)
        train = int(r.num_networks * g.split[0]) if s.activation in r.activations and len(r.activations) == 1 \
            else int(r.num_networks / len(r.activations) * g.split[0])
        assert train >= 512, s.name
    # the reference sweep keeps a trend (three distinct dims) and the CNN with its unrolled twin; full adds two
    from scalegmn_lite.tasks.amortized.gscale import gscale_dim

    dims = {s.name: gscale_dim(get_reference_recipe(s.zoo).arch[0].replace("tanh", "relu")) for s in g.settings}
    assert len(set(dims.values())) >= 3 and {"cnn1d-s-relu", "mlp-twin-s-relu"} <= set(dims), dims
    assert {s.name for s in gscale_settings(False, True)} - {s.name for s in g.settings} == {"cnn1d-relu",
                                                                                          "mlp-w64-relu"}
