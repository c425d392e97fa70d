"""The dim G_scale sweep (issue 13, the open question of the one-shot paper): gauge dimensions of the sweep's
architectures, the CNN / unrolled-twin pairing, the slope and its interval on synthetic gains, and the
operators-only study it runs."""

from __future__ import annotations

import numpy as np
import pytest

from scalegmn_lite.symbolic.conv import network_scaling_dims
from scalegmn_lite.tasks.amortized.gscale import gscale_dim, gscale_sweep, sweep_claims
from scalegmn_lite.tasks.amortized.protocol import StudyConfig, gscale_settings
from scalegmn_lite.zoo import get_recipe
from scalegmn_lite.zoo.recipes import get_reference_recipe


def _spec(setting):
    return get_recipe(setting.zoo, full=False).arch[0]


def test_sweep_settings_span_several_gauge_dimensions():
    for reference in (False, True):
        settings = gscale_settings(reference)
        dims = {s.name: gscale_dim(_spec(s)) for s in settings}
        assert all(s.activation == "relu" and s.lam == 0 and set(s.kinds) == {"scalegmn-b", "gmn"} for s in settings)
        assert len(set(dims.values())) >= 3, dims
    dims = {s.name: gscale_dim(_spec(s)) for s in gscale_settings(True)}
    assert dims == {"cnn1d-s-relu": 8, "mlp-w8-relu": 8, "mlp-twin-s-relu": 100, "mlp-relu": 32}
    # full adds the 64-wide MLP and the 16+16 CNN (a second dim-32 point), left out of the reference budget
    assert {s.name: gscale_dim(_spec(s)) for s in gscale_settings(True, full=True)} == {
        **dims, "mlp-w64-relu": 64, "cnn1d-relu": 32}
    # the twin is the small CNN unrolled: the MLP's gauge dimension is the CNN's dim_mlp
    cnn = network_scaling_dims(_spec(gscale_settings()[0]))
    assert (cnn.dim_cnn, cnn.dim_mlp) == (8, 100)
    for s in gscale_settings(True, full=True):
        assert get_reference_recipe(s.zoo).num_networks >= 256  # 256 ReLU networks at reference size


def test_tanh_and_sigmoid_have_no_continuous_scaling_gauge():
    assert gscale_dim("mlp 40-32-10 tanh") == 0 and gscale_dim("mlp 40-32-10 sigmoid") == 0
    assert gscale_dim("mlp 40-32-10 relu") == 32 and gscale_dim("mlp 40-16-16-10 relu") == 32


def _per(gains: dict[str, float], seeds=3, n=60, noise=0.02, seed=0):
    rng = np.random.default_rng(seed)
    per = {}
    for name, g in gains.items():
        base = rng.uniform(0.2, 0.6, (1, n))
        per[name] = {"scalegmn-b": {"acc": base + g + rng.normal(0, noise, (seeds, n))},
                     "gmn": {"acc": base + rng.normal(0, noise, (seeds, n))}}
    return per


COUNTS = {"cnn-s": {"spec": "conv1d 1-4-4/10 k5 s2 relu 1x40"}, "twin": {"spec": "mlp 40-72-28-10 relu"},
          "w8": {"spec": "mlp 40-8-10 relu"}, "w32": {"spec": "mlp 40-32-10 relu"}}


def test_a_growing_gain_holds_a_flat_one_is_not_called_growing():
    dims = {"cnn-s": 8, "twin": 100, "w8": 8, "w32": 32}
    grow = gscale_sweep(_per({k: 0.001 * d for k, d in dims.items()}), COUNTS, n_boot=300)
    assert {p["setting"]: p["dim_gscale"] for p in grow["points"]} == dims
    assert grow["slope"]["mean"] == pytest.approx(0.001, abs=3e-4) and grow["slope"]["ci"][0] > 0
    assert grow["twins"] and grow["twins"][0]["cnn"] == "cnn-s" and grow["twins"][0]["mlp"] == "twin"
    claims = {c.id: c for c in sweep_claims(grow)}
    assert claims["gain-grows-with-gscale-dim"].status == "holds"
    assert claims["twin-gain-exceeds-cnn"].status == "holds"
    flat = gscale_sweep(_per({k: 0.02 for k in dims}, seed=1), COUNTS, n_boot=300)
    assert flat["slope"]["ci"][0] < 0 < flat["slope"]["ci"][1]
    assert {c.id: c.status for c in sweep_claims(flat)} == {"gain-grows-with-gscale-dim": "inconclusive",
                                                            "twin-gain-exceeds-cnn": "inconclusive"}
    shrink = gscale_sweep(_per({k: 0.05 - 0.0005 * d for k, d in dims.items()}, seed=2), COUNTS, n_boot=300)
    assert sweep_claims(shrink)[0].status == "refuted"


def test_one_dimension_gives_no_trend():
    sw = gscale_sweep(_per({"w32": 0.01}), {"w32": COUNTS["w32"]}, n_boot=50)
    assert np.isnan(sw["slope"]["mean"]) and "no trend" in sw["note"]
    assert sweep_claims(sw)[0].status == "inconclusive" and len(sweep_claims(sw)) == 1  # no twin pair


def test_gscale_config_trains_operators_only(tmp_path, monkeypatch):
    """The sweep's study: no SGD/Adam rows, no transfer; a tiny run on a tiny ReLU zoo pair."""
    monkeypatch.setenv("SCALEGMN_LITE_CACHE", str(tmp_path / "cache"))
    from scalegmn_lite.tasks.amortized.protocol import Setting
    from scalegmn_lite.tasks.amortized.study import run_study
    from scalegmn_lite.zoo import ZooRecipe

    def recipe(arch, name):
        return ZooRecipe(name=name, dataset="mnist1d", arch=arch, activations=("relu",), num_networks=8, epochs=1,
                         checkpoint_epochs=(0, 1), train_size=200, batch_size=50, lr=(1e-2, 0.1),
                         init_scale=(0.5, 2.0), weight_decay=(1e-5, 1e-3))

    k = ("scalegmn-b", "gmn")
    cfg = StudyConfig.gscale(settings=(Setting("c", recipe("conv1d 1-2-2/10 k5 s2 relu 1x40", "t-c"), "relu", 0.0, k),
                                       Setting("m", recipe("mlp 40-36-14-10 relu", "t-m"), "relu", 0.0, k)),
                             hidden_dim=4, num_layers=1, steps=2, batch_networks=2, data_batch=32, seeds=(0, 1),
                             split=(0.5, 0.2, 0.3), max_test_networks=3, timing_networks=1)
    assert not cfg.baselines and not cfg.transfer
    res = run_study(cfg, progress=False)
    assert set(res.table.method) == {"initial", "scalegmn-b", "gmn"} and res.transfer == []
    sw = gscale_sweep(res.per_network, res.counts, n_boot=50)
    assert [p["dim_gscale"] for p in sw["points"]] == [4, 50]
    assert sw["twins"] and sw["twins"][0]["dims"] == [4, 50]  # 2x18 + 2x7 = 36 + 14: the unrolled twin
    assert all(p["gain"]["seeds"] == 2 for p in sw["points"])
