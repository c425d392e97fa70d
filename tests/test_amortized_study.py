"""The amortized-optimization protocol on tiny zoos: initial networks and splits, parameter
matching, the table, the operator cache, the SGD baseline and the claims."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from scalegmn_lite import NetworkSpec, WeightSpace
from scalegmn_lite.tasks.amortized.operator import AmortizedOperator, OperatorTrainConfig
from scalegmn_lite.tasks.amortized.protocol import (
    COLUMNS,
    KINDS,
    Setting,
    StudyConfig,
    count_params,
    full_settings,
    initial_networks,
    match_hidden,
    operator_overrides,
    sgd_baseline,
    split_initial,
    table_row,
    train_or_load_operator,
)
from scalegmn_lite.tasks.amortized.study import compute_claims, run_study
from scalegmn_lite.zoo import ZooRecipe, get_recipe, load_or_build


@pytest.fixture(autouse=True)
def tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SCALEGMN_LITE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def tiny_recipe(arch: str, name: str) -> ZooRecipe:
    return ZooRecipe(name=name, dataset="digits", arch=arch, activations=("tanh",), num_networks=6, epochs=2,
                     checkpoint_epochs=(0, 1, 2), train_size=200, batch_size=50, lr=(1e-2, 0.1),
                     init_scale=(0.5, 2.0), weight_decay=(1e-5, 1e-3))


CNN = tiny_recipe("conv2d 1-2-2/10 k3 tanh 1x8x8", "tiny-cnn")
MLP = tiny_recipe("mlp 64-4-10 tanh", "tiny-mlp")


def tiny_config(**kw) -> StudyConfig:
    base = dict(hidden_dim=4, num_layers=1, steps=3, batch_networks=2, data_batch=32, sgd_epochs=(1, 2),
                sgd_batch=100, split=(0.5, 0.17, 0.33), max_test_networks=4,
                settings=(Setting("cnn", CNN, "tanh", 0.0, ("scalegmn-b", "gmn")),
                          Setting("cnn-l1", CNN, "tanh", 1e-3, ("scalegmn-b",)),
                          Setting("mlp", MLP, "tanh", 0.0, ("scalegmn-b", "gmn"))))
    base.update(kw)
    return StudyConfig(**base)


def test_initial_networks_use_intermediate_checkpoints(tmp_cache):
    zoo = load_or_build(CNN, progress=False)
    ws = initial_networks(zoo)
    assert ws.batch_size == len(zoo) * 1  # checkpoints (0, 1, 2): only epoch 1 is intermediate
    assert ws.allclose(zoo.weights(1))
    both = initial_networks(zoo, checkpoints=(0, 1))
    assert both.batch_size == 2 * len(zoo)
    assert both[0:1].allclose(zoo.network(0, 0)) and both[1:2].allclose(zoo.network(0, 1))  # network-major


def test_split_is_by_network(tmp_cache):
    zoo = load_or_build(CNN, progress=False)
    tr, va, te = split_initial(zoo, (0.5, 0.17, 0.33), seed=0)
    assert tr.batch_size + va.batch_size + te.batch_size == len(zoo)
    rows = [tuple(r.tolist()) for w in (tr, va, te) for r in w.flatten()]
    assert len(set(rows)) == len(rows)  # disjoint
    _, _, capped = split_initial(zoo, (0.5, 0.17, 0.33), seed=0, max_test=1)
    assert capped.batch_size == 1


def test_match_hidden_matches_parameter_count():
    target = count_params(AmortizedOperator(**operator_overrides("scalegmn-b", 16, 2, 64)))
    h = match_hidden("gmn", target, 2, 64)
    n = lambda k: count_params(AmortizedOperator(**operator_overrides("gmn", k, 2, 64)))  # noqa: E731
    assert abs(n(h) - target) <= min(abs(n(h - 1) - target), abs(n(h + 1) - target))
    assert abs(n(h) - target) / target < 0.1
    with pytest.raises(ValueError, match="unknown operator kind"):
        operator_overrides("bogus", 8, 1)


def test_table_row_columns_and_values():
    spec = NetworkSpec.from_text("mlp 4-3-2 tanh")
    ws = WeightSpace.randn(spec, 5, generator=torch.Generator().manual_seed(0))
    x, y = torch.randn(20, 4), torch.randint(0, 2, (20,))
    same = table_row("s", "m", ws, ws, x, y, 0.5, 7)
    assert list(same) == COLUMNS
    assert same["l1_reduction_pct"] == pytest.approx(0.0, abs=1e-5) and same["near_zero_frac"] < 0.5
    zero = table_row("s", "m", ws, ws * 0.0, x, y, 0.5)
    assert zero["l1_reduction_pct"] == pytest.approx(100.0) and zero["near_zero_frac"] == 1.0
    assert zero["test_loss"] == pytest.approx(float(np.log(2)), rel=1e-5)  # zero network: uniform logits
    assert 0 <= same["mean_acc"] <= same["max_acc"] <= 1


def test_operator_cache_round_trip(tmp_cache):
    spec = NetworkSpec.from_text("mlp 4-3-2 tanh")
    ws = WeightSpace.randn(spec, 6, generator=torch.Generator().manual_seed(0))
    x, y = torch.randn(32, 4), torch.randint(0, 2, (32,))
    cfg = OperatorTrainConfig(steps=3, batch_networks=2, data_batch=16, warmup_steps=1)
    ov = operator_overrides("scalegmn-b", 4, 1)
    op1, rec1 = train_or_load_operator("scalegmn-b", ov, ws, x, y, cfg, "toy", progress=False)
    op2, rec2 = train_or_load_operator("scalegmn-b", ov, ws, x, y, cfg, "toy", progress=False)
    assert not rec1["cached"] and rec2["cached"] and rec2["steps"] == rec1["steps"] == 3
    for (k, a), (_, b) in zip(op1.state_dict().items(), op2.state_dict().items()):
        assert torch.equal(a, b), k
    assert op1(ws).allclose(op2(ws))
    # a different training set is a different key: trained afresh
    _, rec3 = train_or_load_operator("scalegmn-b", ov, ws * 2.0, x, y, cfg, "toy", progress=False)
    assert not rec3["cached"]
    # a corrupt cached file is retrained, not trusted
    for path in (tmp_cache / "operators").glob("scalegmn-b-*.pt"):
        path.write_bytes(b"garbage")
    _, rec4 = train_or_load_operator("scalegmn-b", ov, ws, x, y, cfg, "toy", progress=False)
    assert not rec4["cached"]


def test_sgd_baseline_checkpoints_and_l1_pressure():
    spec = NetworkSpec.from_text("mlp 4-6-2 tanh")
    ws = WeightSpace.randn(spec, 3, generator=torch.Generator().manual_seed(0))
    x, y = torch.randn(64, 4), torch.randint(0, 2, (64,))
    plain, sec = sgd_baseline(ws, x, y, (1, 3), 0.0, 0.05, 32, progress=False)
    l1, _ = sgd_baseline(ws, x, y, (1, 3), 0.05, 0.05, 32, progress=False)
    assert sorted(plain) == [1, 3] and sec > 0
    assert not plain[3].allclose(ws)
    from scalegmn_lite.tasks.losses import l1_norm

    assert (l1_norm(l1[3]) < l1_norm(plain[3])).all()


def test_run_study_tiny_end_to_end(tmp_cache):
    cfg = tiny_config()
    res = run_study(cfg, progress=False)
    t = res.table
    assert list(t.columns) == COLUMNS
    for s in ("cnn", "mlp"):
        assert set(t[t.setting == s].method) == {"initial", "scalegmn-b", "gmn", "sgd-1", "sgd-2"}
    assert np.isfinite(t[["mean_acc", "max_acc", "test_loss"]].to_numpy()).all()
    assert (t[t.method == "initial"]["l1_reduction_pct"].abs() < 1e-4).all()
    assert set(res.training.method) == {"scalegmn-b", "gmn"} and not res.training.cached.any()
    assert res.curves["cnn"].keys() == {0, 1, 2}
    kinds = {r["transfer"] for r in res.transfer}
    assert kinds == {"width/depth", "cnn -> mlp"}
    assert {r["arch"] for r in res.transfer if r["transfer"] == "width/depth"} == {
        "mlp 64-4-10 tanh", "mlp 64-8-10 tanh", "mlp 64-4-4-10 tanh"}
    json.dumps(res.to_json())  # JSON-serialisable
    again = run_study(cfg, progress=False)  # operators come from the cache
    assert again.training.cached.all()
    a = again.table[again.table.method == "scalegmn-b"]["mean_acc"].to_numpy()
    assert np.allclose(a, t[t.method == "scalegmn-b"]["mean_acc"].to_numpy())
    sgd_rows = lambda tab: tab[tab.method.str.startswith("sgd")].reset_index(drop=True)  # noqa: E731
    assert sgd_rows(again.table).equals(sgd_rows(t))  # SGD baselines (and their timings) from the cache
    claims = {c.id: c for c in compute_claims(t, cfg.settings, sgd_final=2)}
    assert set(claims) == {"one-shot-beats-sgd150-cnn", "l1-reduction-85", "one-shot-1000x-faster",
                           "equivariance-gap-mlp-vs-cnn"}


def test_relu_setting_with_l1_and_every_operator_kind_runs(tmp_cache):
    relu = ZooRecipe(**{**CNN.to_dict(), "name": "tiny-cnn-relu", "arch": ("conv2d 1-2-2/10 k3 relu 1x8x8",),
                        "activations": ("relu",)})
    cfg = tiny_config(settings=(Setting("cnn-relu-l1", relu, "relu", 1e-3, tuple(KINDS)),))
    res = run_study(cfg, progress=False)
    t = res.table
    assert set(t.method) == {"initial", *KINDS, "sgd-1", "sgd-2"}
    assert np.isfinite(t[["mean_acc", "max_acc", "test_loss", "l1_reduction_pct"]].to_numpy()).all()
    assert set(res.training.method) == set(KINDS)
    assert (res.training.rollbacks >= 0).all()


def test_full_settings_cover_the_protocol():
    settings = full_settings(lam=1e-3)
    combos = {(s.zoo, s.activation, s.lam) for s in settings}
    assert len(combos) == len(settings) == 16
    assert {s.activation for s in settings} == {"tanh", "relu"} and {s.lam for s in settings} == {0.0, 1e-3}
    assert all(set(s.kinds) == set(KINDS) for s in settings)
    recipes = [get_recipe(s.zoo, full=True) for s in settings]
    assert {r.dataset for r in recipes} == {"digits", "mnist1d"}
    assert {s.is_cnn for s in settings} == {True, False}
    assert all(r.num_networks >= 2000 for r in recipes)


def _fake_table(one_shot=0.5, sgd=0.45, red=90.0, acc_l1=0.4, init=0.38, t1=1e-3, t2=2.0, gap_mlp=0.05,
                gap_cnn=0.01) -> pd.DataFrame:
    rows = [("cnn", "initial", init, 0.0, 0.0), ("cnn", "scalegmn-b", one_shot, 0.0, t1),
            ("cnn", "gmn", one_shot - gap_cnn, 0.0, t1), ("cnn", "sgd-150", sgd, 0.0, t2),
            ("cnn-l1", "initial", init, 0.0, 0.0), ("cnn-l1", "scalegmn-b", acc_l1, red, t1),
            ("cnn-l1", "sgd-150", sgd, 50.0, t2), ("mlp", "initial", init, 0.0, 0.0),
            ("mlp", "scalegmn-b", 0.6, 0.0, t1), ("mlp", "gmn", 0.6 - gap_mlp, 0.0, t1),
            ("mlp", "sgd-150", 0.7, 0.0, t2)]
    df = pd.DataFrame(rows, columns=["setting", "method", "mean_acc", "l1_reduction_pct", "seconds_per_network"])
    return df


SETTINGS = (Setting("cnn", CNN, "tanh", 0.0, ("scalegmn-b", "gmn")),
            Setting("cnn-l1", CNN, "tanh", 1e-3, ("scalegmn-b",)),
            Setting("mlp", MLP, "tanh", 0.0, ("scalegmn-b", "gmn")))


def test_claims_from_fake_results_hold_and_miss():
    good = {c.id: c for c in compute_claims(_fake_table(), SETTINGS)}
    assert all(c.holds for c in good.values()), good
    assert good["one-shot-1000x-faster"].measured == pytest.approx(2000.0)
    assert good["equivariance-gap-mlp-vs-cnn"].measured == {"gap_mlp": 0.05, "gap_cnn": 0.01}
    bad = {c.id: c for c in compute_claims(_fake_table(one_shot=0.4, red=80.0, t2=0.5, gap_mlp=0.0), SETTINGS)}
    assert not any(c.holds for c in bad.values()), bad
    # L1 reduction met but accuracy below the initial networks': a miss
    low = {c.id: c for c in compute_claims(_fake_table(acc_l1=0.3), SETTINGS)}
    assert not low["l1-reduction-85"].holds
    # NaN measurements never hold
    nan = {c.id: c for c in compute_claims(_fake_table(t1=float("nan")), SETTINGS)}
    assert not nan["one-shot-1000x-faster"].holds


def test_experiment_is_registered():
    from scalegmn_lite.experiments import EXPERIMENT_MODULES, load_all

    assert "amortized" in EXPERIMENT_MODULES
    assert "amortized" in load_all()
