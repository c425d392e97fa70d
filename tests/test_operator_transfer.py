"""Issue 22: operator training with model selection on validation networks, the cosine schedule, gauge
augmentation of the symmetry-broken baseline, the transfer diagnostics and the transfer claims."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from test_amortized_study import CNN, MLP, tiny_config

from scalegmn_lite import NetworkSpec, WeightSpace
from scalegmn_lite.tasks.amortized.diagnostics import (
    calibration_control,
    size_curve,
    steps_curve,
    update_size,
    who_gains,
)
from scalegmn_lite.tasks.amortized.operator import AmortizedOperator, OperatorTrainConfig, train_operator
from scalegmn_lite.tasks.amortized.protocol import (
    AUGMENTED_KINDS,
    CNN_PLATEAU_ZOO,
    CNN_ZOO,
    KINDS,
    MLP_PLATEAU_ZOO,
    Setting,
    StudyConfig,
    quick_settings,
    reference_settings,
)
from scalegmn_lite.tasks.amortized.study import compute_claims, run_study

SPEC = NetworkSpec.from_text("mlp 5-6-6-3 tanh")


@pytest.fixture(autouse=True)
def tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SCALEGMN_LITE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _data(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 5, generator=g), torch.randint(0, 3, (n,), generator=g)


def _nets(b, seed):
    return WeightSpace.randn(SPEC, b, generator=torch.Generator().manual_seed(seed))


def _op(mode="auto", seed=0):
    torch.manual_seed(seed)
    return AmortizedOperator(hidden_dim=6, num_layers=1, mode=mode, update_scale_init=0.3)


def _acc_gain(op, ws, x, y):
    from scalegmn_lite.tasks.losses import accuracy

    with torch.no_grad():
        return float(accuracy(op(ws), x, y).mean() - accuracy(ws, x, y).mean())


def test_selection_keeps_the_best_validation_step_and_never_changes_the_steps():
    x, y = _data()
    tr, va = _nets(8, 1), _nets(6, 2)
    cfg = OperatorTrainConfig(steps=12, batch_networks=4, data_batch=32, lr=3e-2, warmup_steps=1, eval_every=4)
    plain = _op()
    h0 = train_operator(plain, tr, x, y, cfg, progress=False)
    op = _op()
    h = train_operator(op, tr, x, y, cfg, progress=False, monitor={"val": (va, x, y), "train": (tr, x, y)},
                       select="val")
    assert [e["step"] for e in h.evals] == [0, 4, 8, 12] and set(h.evals[0]) == {"step", "val", "train"}
    assert h.losses == h0.losses  # scoring the monitored sets does not move the training steps
    best = max(h.evals, key=lambda e: e["val"])  # the first of equal scores
    assert h.best_step == best["step"]
    assert _acc_gain(op, va, x, y) == pytest.approx(best["val"], abs=1e-6)  # the kept weights are that step's
    if h.best_step != 12:  # and differ from the last step's (negative control: selection did something)
        assert any(not torch.equal(a, b) for a, b in zip(op.state_dict().values(), plain.state_dict().values()))


def test_monitor_and_schedule_errors_say_what_to_fix():
    x, y = _data()
    tr = _nets(4, 1)
    with pytest.raises(ValueError, match="eval_every"):
        train_operator(_op(), tr, x, y, OperatorTrainConfig(steps=2, batch_networks=2), progress=False,
                       monitor={"val": (tr, x, y)})
    with pytest.raises(ValueError, match="select='test' names no monitored score"):
        train_operator(_op(), tr, x, y, OperatorTrainConfig(steps=2, batch_networks=2, eval_every=1), progress=False,
                       monitor={"val": (tr, x, y)}, select="test")
    with pytest.raises(ValueError, match="objective scores need config.lam > 0"):
        train_operator(_op(), tr, x, y, OperatorTrainConfig(steps=2, batch_networks=2, eval_every=1), progress=False,
                       monitor={"val": (tr, x, y)}, select="val_objective")
    with pytest.raises(ValueError, match="schedule"):
        OperatorTrainConfig(schedule="linear")
    with pytest.raises(ValueError, match="eval_every"):
        OperatorTrainConfig(eval_every=-1)


def test_cosine_schedule_decays_the_learning_rate_to_zero():
    x, y = _data()
    cfg = OperatorTrainConfig(steps=10, batch_networks=2, data_batch=16, lr=1e-2, warmup_steps=1, schedule="cosine")
    h = train_operator(_op(), _nets(4, 1), x, y, cfg, progress=False)
    assert h.lrs[0] == pytest.approx(1e-2) and h.lrs[-1] < 0.05 * 1e-2
    assert all(a >= b - 1e-12 for a, b in zip(h.lrs, h.lrs[1:]))


def test_gauge_augmentation_changes_nothing_for_scalegmn_and_something_for_gmn():
    """The ScaleGMN-B objective is gauge invariant (equivariant operator, the same proposed functions), so
    augmenting its training networks with random gauge elements leaves the losses as they were (up to
    rounding); the symmetry-broken GMN sees other inputs and trains differently (the control)."""
    assert AUGMENTED_KINDS == {"gmn-aug"} and KINDS["gmn-aug"] == KINDS["gmn"]
    x, y = _data()
    tr = _nets(6, 3)
    losses = {}
    for mode in ("auto", "permutation"):
        for aug in (False, True):
            cfg = OperatorTrainConfig(steps=5, batch_networks=3, data_batch=32, lr=1e-2, warmup_steps=1, augment=aug)
            op = _op(mode).double()
            losses[mode, aug] = train_operator(op, tr.to(dtype=torch.float64), x.double(), y, cfg,
                                               progress=False).losses
    assert np.allclose(losses["auto", False], losses["auto", True], rtol=1e-7, atol=1e-9)
    assert not np.allclose(losses["permutation", False], losses["permutation", True], rtol=1e-4, atol=1e-6)


def test_update_size_and_calibration_control():
    ws = _nets(5, 4)
    assert np.allclose(update_size(ws, ws), 0.0)
    assert np.allclose(update_size(ws, ws.map(lambda t: 1.5 * t)), 0.5)
    x, y = _data(200, 5)
    # a pure temperature change (last layer x 3): no accuracy gain, and a fitted temperature does at least as well
    last = len(ws.weights) - 1
    hot = WeightSpace(ws.spec, [w * 3 if i == last else w for i, w in enumerate(ws.weights)],
                      [b * 3 if i == last else b for i, b in enumerate(ws.biases)])
    cal = calibration_control(ws, hot, x, y, x, y)
    assert np.allclose(cal["acc_gain"], 0.0)
    assert (cal["temperature_loss_gain"] >= cal["loss_gain"] - 1e-6).all()
    assert (cal["temperature_loss_gain"] >= -1e-6).all()  # T = 1 is on the grid
    assert cal["temperature"].shape == (5,)


def test_who_gains_and_curves():
    md = pd.DataFrame({"train_fraction": [0.1, 0.25, 0.5, 1.0], "lr": [0.1, 0.1, 0.1, 0.1],
                       "optimizer": ["sgd", "adam", "sgd", "adam"], "init_scale": [1, 2, 3, 4],
                       "weight_decay": [4, 3, 2, 1]})
    gain = np.array([0.0, 0.1, 0.2, 0.3])
    w = who_gains(gain, md, np.array([0.5, 0.4, 0.3, 0.2]))
    assert w["spearman"]["train_fraction"]["rho"] == pytest.approx(1.0)
    assert w["spearman"]["weight_decay"]["rho"] == pytest.approx(-1.0)
    assert w["spearman"]["initial_acc"]["rho"] == pytest.approx(-1.0)
    assert w["spearman"]["lr"] is None  # a constant column has no correlation
    assert w["mean_gain_by_optimizer"]["adam"] == {"gain": 0.2, "networks": 2}
    with pytest.raises(ValueError, match="metadata rows"):
        who_gains(gain[:3], md, gain)
    recs = [{"evals": [{"step": 0, "val": 0.0, "test": 0.1}, {"step": 5, "val": 0.2, "test": 0.3}]},
            {"evals": [{"step": 0, "val": 0.2, "test": 0.1}, {"step": 5, "val": 0.4, "test": 0.5}]}]
    sc = steps_curve(recs)
    assert sc["step"] == [0, 5] and sc["val"] == [0.1, 0.3] and sc["test"] == [0.1, 0.4] and sc["seeds"] == 2
    assert steps_curve([{"evals": []}]) == {}
    pts = size_curve({16: dict(evals=[{"step": 5, "train": 0.3, "val": 0.1, "test": 0.05}]),
                      4: dict(evals=[{"step": 5, "train": 0.5, "val": 0.0, "test": 0.0}])})
    assert [p["networks"] for p in pts] == [4, 16] and pts[0]["in_sample_gain"] == 0.5


def test_headroom_setting_runs_with_diagnostics_and_transfer_claims():
    cfg = tiny_config(settings=(Setting("cnn", CNN, "tanh", 0.0, ("scalegmn-b", "gmn", "gmn-aug"), role="headroom"),
                                Setting("mlp", MLP, "tanh", 0.0, ("scalegmn-b",), steps=2)),
                      eval_every=2, steps=4, diagnostics=True, curve_sizes=(1,), curve_steps=2, val_networks=2,
                      val_images=64, split=(0.5, 0.17, 0.33), adam_lrs=(), transfer=False)
    res = run_study(cfg, progress=False, workers=1)
    d = res.diagnostics["cnn"]
    assert "mlp" not in res.diagnostics  # only the headroom setting is diagnosed
    assert set(d["steps_curve"]) == {"scalegmn-b", "gmn", "gmn-aug"}
    assert d["steps_curve"]["gmn"]["step"] == [0, 2, 4] and {"val", "train", "test"} <= set(d["steps_curve"]["gmn"])
    te = res.counts["cnn"]["test"]
    assert np.asarray(d["in_sample"]["scalegmn-b"]["acc_gain"]).shape == (2, te)
    assert [p["networks"] for p in d["size_curve"]] == [1, res.counts["cnn"]["train"]]
    assert d["overfit_control"]["networks"] == 1 and d["size_curve"][0]["steps"] == 2
    assert len(d["update_size"]["gmn"]["per_network"]) == te
    assert {"acc_gain", "loss_gain", "temperature_loss_gain"} <= set(d["calibration"]["scalegmn-b"])
    assert "spearman" in d["who_gains"] and len(d["who_gains"]["per_network"]["gain"]) == te
    tr = res.training
    assert set(tr[tr.setting == "mlp"].steps) == {2} and set(tr[tr.setting == "cnn"].steps) == {4}  # per setting
    assert tr.best_step.notna().all()  # chosen on validation networks
    js = json.loads(json.dumps(res.to_json()))
    assert js["diagnostics"]["cnn"]["size_curve"] == d["size_curve"]
    claims = {c.id: c for c in compute_claims(res, sgd_final=2)}
    assert {"operator-gain-cnn", "operator-gain-cnn-published", "operator-generalizes"} <= set(claims)
    held = res.per_network["cnn"]["scalegmn-b"]["acc"] - res.per_network["cnn"]["initial"]["acc"]
    assert claims["operator-gain-cnn"].measured == pytest.approx(held.mean())
    # the Table 1 claims do not look at the headroom setting: no CNN table1 row here
    assert claims["cnn-one-shot-beats-sgd150"].status == "inconclusive"


def _fake(held, inside, seeds=3, n=30, noise=0.01):
    from scalegmn_lite.tasks.amortized.study import StudyResult

    rng = np.random.default_rng(1)
    init = 0.4 + rng.normal(0, noise, (1, n))
    per = {"cnn": {"initial": {"acc": init}, "scalegmn-b": {"acc": init + held + rng.normal(0, noise, (seeds, n))}}}
    diag = {"cnn": {"in_sample": {"scalegmn-b": {"acc_gain": (inside + rng.normal(0, noise, (seeds, n))).tolist(),
                                                 "mean": inside}}}}
    cfg = StudyConfig(settings=(Setting("cnn", CNN, "tanh", 0.0, ("scalegmn-b",), role="headroom"),),
                      seeds=tuple(range(seeds)))
    table = pd.DataFrame(columns=["setting", "method", "seconds_per_network_single"])
    return StudyResult(cfg, table, pd.DataFrame(), {}, [], {}, {}, {}, 0.0, per, {}, {}, diag)


def test_transfer_claims_hold_and_refute():
    ok = {c.id: c for c in compute_claims(_fake(held=0.12, inside=0.14))}
    assert ok["operator-gain-cnn"].status == "holds" and ok["operator-gain-cnn-published"].status == "holds"
    assert ok["operator-generalizes"].status == "holds"
    memorised = {c.id: c for c in compute_claims(_fake(held=0.01, inside=0.10))}
    assert memorised["operator-generalizes"].status == "refuted"
    assert memorised["operator-gain-cnn-published"].status == "refuted"
    assert memorised["operator-gain-cnn"].status == "holds"
    none = {c.id: c for c in compute_claims(_fake(held=-0.05, inside=0.0))}
    assert none["operator-gain-cnn"].status == "refuted"


def test_quick_and_reference_settings_judge_table1_on_plateau_zoos():
    for settings in (quick_settings(), reference_settings(table1_steps=7)):
        head = [s for s in settings if s.role == "headroom"]
        table1 = [s for s in settings if s.role == "table1"]
        assert [s.zoo for s in head] == [CNN_ZOO] and {"scalegmn-b", "gmn", "gmn-aug"} <= set(head[0].kinds)
        assert {s.zoo for s in table1} == {CNN_PLATEAU_ZOO, MLP_PLATEAU_ZOO}
        assert all(s.activation == "tanh" for s in settings)
    assert all(s.steps == 7 for s in reference_settings(table1_steps=7) if s.role == "table1")
    q, r = StudyConfig.quick(), StudyConfig.reference_size()
    assert q.eval_every > 0 and r.eval_every > 0 and q.diagnostics and r.diagnostics
    assert r.hidden_dim > q.hidden_dim and r.steps > q.steps and len(r.seeds) >= 3


def test_regime_table_sets_start_gain_and_final_beside_the_published_ones():
    from scalegmn_lite.tasks.amortized.study import regime_table

    def iv(m):
        return {"acc": {"mean": m}}

    intervals = {"cnn1d-plateau-tanh": {"initial": iv(0.6), "scalegmn-b": iv(0.65), "sgd-150": iv(0.67)},
                 "mlp-plateau-tanh": {"initial": iv(0.4), "gmn": iv(0.41), "gmn-aug": iv(0.42)}}
    counts = {"cnn1d-plateau-tanh": {"spec": "conv1d 1-16-16/10 k5 s2 tanh 1x40"},
              "mlp-plateau-tanh": {"spec": "mlp 40-32-10 tanh"}}
    t = regime_table(intervals, counts).set_index(["setting", "method"])
    row = t.loc[("cnn1d-plateau-tanh", "scalegmn-b")]
    assert row["gain"] == pytest.approx(0.05) and row["published start"] == 0.379
    assert row["published gain"] == pytest.approx(0.124)
    assert t.loc[("mlp-plateau-tanh", "gmn"), "published final"] == 0.350
    assert t.loc[("mlp-plateau-tanh", "gmn-aug"), "published final"] is None or \
        np.isnan(t.loc[("mlp-plateau-tanh", "gmn-aug"), "published final"])
    assert len(t) == 4


def test_an_l1_objective_is_selected_by_its_own_decrease_not_by_accuracy():
    """With lam > 0 the kept step is the one whose proposals lower the validation *objective* most; the
    accuracy gain is still recorded (an L1 operator trades accuracy for sparsity)."""
    from scalegmn_lite.tasks.losses import amortized_objective

    x, y = _data()
    tr, va = _nets(8, 1), _nets(6, 2)
    cfg = OperatorTrainConfig(steps=12, batch_networks=4, data_batch=32, lr=3e-2, warmup_steps=1, eval_every=4,
                              lam=1e-2)
    op = _op()
    h = train_operator(op, tr, x, y, cfg, progress=False, monitor={"val": (va, x, y)}, select="val_objective")
    assert set(h.evals[0]) == {"step", "val", "val_objective"}
    best = max(h.evals, key=lambda e: e["val_objective"])
    assert h.best_step == best["step"]
    with torch.no_grad():
        dec = float(amortized_objective(va, x, y, 1e-2).mean() - amortized_objective(op(va), x, y, 1e-2).mean())
    assert dec == pytest.approx(best["val_objective"], abs=1e-5)


def test_size_curve_runs_in_workers_do_not_replace_the_main_records(tmp_path, monkeypatch):
    """The size-curve run on all training networks has the same kind and seed as the main run; the
    records trained in worker processes are told apart by job name (a bug that once gave the main run
    of seed 0 the curve run's record)."""
    from scalegmn_lite.tasks.amortized.study import run_setting

    cfg = tiny_config(settings=(Setting("cnn", CNN, "tanh", 0.0, ("scalegmn-b",), role="headroom"),),
                      eval_every=2, steps=4, diagnostics=True, curve_sizes=(1,), curve_steps=2, val_networks=2,
                      val_images=64, adam_lrs=(), baselines=False)
    out = run_setting(cfg.settings[0], cfg, progress=False, workers=2)
    for seed in cfg.seeds:
        rec = out["records"][f"scalegmn-b/s{seed}"]
        assert rec["steps"] == 4 and rec["best_step"] is not None and not rec["cached"], (seed, rec)
    assert [p["steps"] for p in out["diagnostics"]["size_curve"]] == [2, 2]
