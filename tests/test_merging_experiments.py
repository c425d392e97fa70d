"""Merging methods of issue 6 on small hand-checkable cases: INR/classifier path losses, the latent
path, the orbit test (decoded and weight-matched paths have no barrier, the naive one does), pairs."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from scalegmn_lite.tasks.losses import classification_loss, coordinate_grid
from scalegmn_lite.tasks.merging.autoencoder import AutoencoderConfig, WeightAutoencoder
from scalegmn_lite.tasks.merging.paths import interpolate
from scalegmn_lite.tasks.merging.study import (
    ClassifierMergeTask,
    INRMergeTask,
    barriers,
    function_distance_ratio,
    latent_loss_curve,
    merge_curves,
    orbit_partner,
    random_pairs,
    reconstruction_quality,
    same_class_pairs,
    summarize,
)
from scalegmn_lite.weightspace.spec import NetworkSpec
from scalegmn_lite.weightspace.weights import WeightSpace

F64 = torch.float64


def test_inr_path_loss_of_linear_networks_is_zero():
    """Without hidden layers, f_{theta_alpha} = (1 - alpha) f_0 + alpha f_1: the rendering equals the
    pixel-space blend of the end points, so the loss and barrier vanish along the whole path."""
    spec = NetworkSpec.from_text("mlp 2-1 identity")
    ws0 = WeightSpace.randn(spec, 3, torch.Generator().manual_seed(0), dtype=F64)
    ws1 = WeightSpace.randn(spec, 3, torch.Generator().manual_seed(1), dtype=F64)
    task = INRMergeTask(coordinate_grid(4, 4, dtype=F64))
    curves = merge_curves(None, ws0, ws1, task, alphas=5, methods=("naive", "weight_matching"))
    for c in curves.values():
        assert c.losses.shape == (3, 5) and float(c.losses.abs().max()) < 1e-28
    # a hidden ReLU layer breaks this: a non-negative barrier, positive for some pair
    spec2 = NetworkSpec.from_text("mlp 2-8-1 relu")
    a = WeightSpace.randn(spec2, 6, torch.Generator().manual_seed(2), dtype=F64)
    b = WeightSpace.randn(spec2, 6, torch.Generator().manual_seed(3), dtype=F64)
    bar = barriers(merge_curves(None, a, b, task, methods=("naive",)))["naive"]
    assert float(bar.min()) >= 0 and float(bar.max()) > 1e-4


def test_inr_path_target_is_the_blend_of_renderings():
    spec = NetworkSpec.from_text("siren 2-4-1")
    ws0 = WeightSpace.randn(spec, 2, torch.Generator().manual_seed(0), dtype=F64)
    ws1 = WeightSpace.randn(spec, 2, torch.Generator().manual_seed(1), dtype=F64)
    coords = coordinate_grid(3, 3, dtype=F64)
    fn = INRMergeTask(coords).loss_fn(ws0, ws1, [0.0, 0.25, 1.0])
    path = interpolate(ws0, ws1, [0.0, 0.25, 1.0])
    got = fn(path)
    want = []
    for a in (0.0, 0.25, 1.0):
        for b in range(2):
            target = (1 - a) * ws0[b](coords) + a * ws1[b](coords)
            want.append(float((path[len(want)](coords) - target).pow(2).mean()))
    assert torch.allclose(got, torch.tensor(want, dtype=F64), rtol=1e-12, atol=1e-15)
    assert float(got[0]) == 0 and float(got[-1]) < 1e-28


def test_classifier_path_loss_is_the_cross_entropy():
    spec = NetworkSpec.from_text("mlp 4-5-3 tanh")
    ws = WeightSpace.randn(spec, 2, torch.Generator().manual_seed(0), dtype=F64)
    x, y = torch.randn(20, 4, dtype=F64), torch.randint(0, 3, (20,))
    task = ClassifierMergeTask(x, y)
    assert torch.equal(task.loss_fn(ws, ws, 3)(ws), classification_loss(ws, x, y))
    q = task.quality(ws, ws)
    assert torch.equal(q["agreement"], torch.ones(2, dtype=F64))


@pytest.mark.parametrize("text", ["siren 2-6-6-1", "mlp 4-6-3 relu"])
def test_orbit_test_on_the_methods(text):
    """Network vs an exact gauge transform of itself: the invariant encoder gives the same code and the
    same decoded network, so decoded and latent curves are flat (barrier 0); weight matching recovers
    the transform (barrier 0); naive interpolation has a barrier for some network."""
    spec = NetworkSpec.from_text(text)
    torch.manual_seed(0)
    ae = WeightAutoencoder(spec, AutoencoderConfig(latent_dim=4, hidden_dim=6, num_layers=2, decoder_hidden=(8,)),
                           dtype=F64)
    with torch.no_grad():
        ae.decoder[-1].weight.normal_(std=0.3)  # a decoder that depends on the code
    gen = torch.Generator().manual_seed(1)
    ws = WeightSpace.randn(spec, 6, gen, dtype=F64)
    partner, g = orbit_partner(ws, 0.0, gen)
    assert g.is_symmetry()
    if spec.layers[0].activation == "sine":
        task = INRMergeTask(coordinate_grid(5, 5, dtype=F64))
    else:
        x = torch.randn(32, 4, generator=gen, dtype=F64)
        task = ClassifierMergeTask(x, torch.randint(0, 3, (32,), generator=gen))
    bars = barriers(merge_curves(ae, ws, partner, task))
    for m in ("decoded", "latent", "weight_matching"):
        assert float(bars[m].abs().max()) < 1e-9, (m, bars[m])
    assert float(bars["naive"].max()) > 1e-3
    z0, z1 = ae.encode_all(ws), ae.encode_all(partner)
    assert float((z0 - z1).abs().max()) < 1e-10
    # a noisy partner is no longer on the orbit: the latent code moves
    noisy, _ = orbit_partner(ws, 0.1, gen)
    assert float((ae.encode_all(noisy) - z0).abs().max()) > 1e-6


def test_latent_curve_decodes_the_interpolated_code():
    spec = NetworkSpec.from_text("mlp 4-5-3 tanh")
    torch.manual_seed(0)
    ae = WeightAutoencoder(spec, AutoencoderConfig(latent_dim=3, hidden_dim=4, num_layers=1, decoder_hidden=(8,)),
                           dtype=F64)
    with torch.no_grad():
        ae.decoder[-1].weight.normal_()
    z0, z1 = torch.randn(2, 3, dtype=F64), torch.randn(2, 3, dtype=F64)
    x = torch.randn(10, 4, dtype=F64)

    def fn(w):
        return w(x).pow(2).mean((1, 2))

    curve = latent_loss_curve(ae, z0, z1, fn, alphas=[0.0, 0.5, 1.0])
    assert curve.losses.shape == (2, 3)
    for i, a in enumerate((0.0, 0.5, 1.0)):
        want = fn(ae.decode((1 - a) * z0 + a * z1))
        assert torch.allclose(curve.losses[:, i], want, rtol=1e-12)


def test_pairs_and_summary():
    labels = [0, 1, 0, 1, 2, 0]
    p = same_class_pairs(labels, 3, seed=0)
    assert p.shape == (3, 2) and len({tuple(r) for r in p.tolist()}) == 3
    assert all(labels[i] == labels[j] and i != j for i, j in p.tolist())
    with pytest.raises(ValueError, match="same-class pairs"):
        same_class_pairs(labels, 5)
    r = random_pairs(5, 10, seed=1)
    assert sorted(map(tuple, r.tolist())) == [(i, j) for i in range(5) for j in range(i + 1, 5)]
    s = summarize({"naive": torch.tensor([1.0, 3.0])})["naive"]
    assert s["mean"] == 2.0 and s["n"] == 2 and np.isclose(s["std"], np.sqrt(2))


def test_reconstruction_quality_of_an_untrained_decoder():
    spec = NetworkSpec.from_text("siren 2-4-1")
    ws = WeightSpace.randn(spec, 3, torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    ae = WeightAutoencoder(spec, AutoencoderConfig(latent_dim=2, hidden_dim=4, num_layers=1, decoder_hidden=(4,)),
                           reference=ws)
    q = reconstruction_quality(ae, ws[:1], INRMergeTask(coordinate_grid(4, 4)))
    assert q["decoded_psnr"] > 100  # the zero-initialised decoder outputs ws[0] (the template) ...
    q2 = reconstruction_quality(ae, ws[1:], INRMergeTask(coordinate_grid(4, 4)))
    assert q2["decoded_psnr"] < 60  # ... which reconstructs the other networks poorly


def test_function_distance_ratio_detects_a_collapsed_decoder():
    spec = NetworkSpec.from_text("siren 2-4-1")
    ws = WeightSpace.randn(spec, 4, torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    ae = WeightAutoencoder(spec, AutoencoderConfig(latent_dim=2, hidden_dim=4, num_layers=1, decoder_hidden=(4,)),
                           reference=ws)
    task = INRMergeTask(coordinate_grid(4, 4))
    # the zero-initialised decoder outputs the template for every code: ratio 0
    assert function_distance_ratio(ae, ws[:2], ws[2:], task) == 0.0


def test_path_figures_report_absolute_losses_next_to_the_barrier():
    from scalegmn_lite.tasks.merging.paths import LossCurve
    from scalegmn_lite.tasks.merging.study import path_figures

    a = torch.linspace(0, 1, 5, dtype=torch.float64)
    # pair 0: flat path at a high loss (no barrier, bad endpoints); pair 1: a bump between good endpoints
    losses = torch.tensor([[3.0, 3.0, 3.0, 3.0, 3.0], [0.5, 0.8, 1.5, 0.8, 0.5]], dtype=torch.float64)
    f = path_figures({"decoded": LossCurve(a, losses)})["decoded"]
    assert torch.allclose(f["barrier"], torch.tensor([0.0, 1.0], dtype=torch.float64))
    assert torch.allclose(f["max_loss"], torch.tensor([3.0, 1.5], dtype=torch.float64))
    assert torch.allclose(f["endpoint_loss"], torch.tensor([3.0, 0.5], dtype=torch.float64))
    assert torch.allclose(f["mean_loss"], losses.mean(1))
    # the barrier alone ranks the bad flat path first; the absolute loss does not
    assert f["barrier"][0] < f["barrier"][1] and f["max_loss"][0] > f["max_loss"][1]


def test_zoo_claim_needs_every_zoo():
    from scalegmn_lite.experiments.merging import _zoo_claim

    good = {"a": {"mean": -0.2, "ci": [-0.3, -0.1], "seeds": 3}, "b": {"mean": -0.1, "ci": [-0.15, -0.05], "seeds": 3}}
    c = _zoo_claim("x", "s", good, "<")
    assert c.status == "holds" and c.measured["interval_of"] == "b" and c.ci == [-0.15, -0.05]
    mixed = dict(good, c={"mean": 0.0, "ci": [-0.1, 0.1], "seeds": 3})
    assert _zoo_claim("x", "s", mixed, "<").status == "inconclusive"
    bad = dict(good, c={"mean": 0.2, "ci": [0.1, 0.3], "seeds": 3})
    assert _zoo_claim("x", "s", bad, "<").status == "refuted"
    # refuted by one zoo while another straddles zero: the interval shown is the refuting zoo's
    both = dict(mixed, d={"mean": 0.05, "ci": [0.02, 0.08], "seeds": 3})
    c = _zoo_claim("x", "s", both, "<")
    assert c.status == "refuted" and c.measured["interval_of"] == "d" and c.ci == [0.02, 0.08]


def test_autoencoder_seeds_in_worker_processes_equal_serial(tmp_path, monkeypatch):
    """Issue 21: the experiment's autoencoders (one per zoo and seed) train side by side in spawned
    workers; each run draws everything from its own seeds, so the figures equal the serial ones up to
    float rounding, and the first seed's model is saved either way."""
    from scalegmn_lite.common.parallel import run_jobs
    from scalegmn_lite.experiments.merging import ZooSetup, prepare, seed_run
    from scalegmn_lite.zoo import ZooRecipe

    monkeypatch.setenv("SCALEGMN_LITE_CACHE", str(tmp_path / "cache"))
    recipe = ZooRecipe(name="tiny-ae-mlp", dataset="digits", arch="mlp 64-4-10 tanh", num_networks=40, epochs=1,
                       checkpoint_epochs=(0, 1), train_size=100, batch_size=50)
    setup = ZooSetup("mlp", recipe, "classifier", config=AutoencoderConfig(8, 4, 1, False, (16,)), steps=3,
                     batch_size=4, weight_loss=1.0)
    prepare(setup, progress=False)
    out = {}
    for w in (1, 2):
        jobs = [(setup, seed, "cpu", 0, True, str(tmp_path / f"ae{w}.pt") if seed == 0 else None, False, False, 4, 1,
                 None, 8) for seed in (0, 1)]
        out[w] = run_jobs(seed_run, jobs, w)
    for a, b in zip(out[1], out[2]):
        assert a["seed"] == b["seed"]
        for key in ("train_loss_first", "train_loss_last"):
            assert a[key] == pytest.approx(b[key], rel=1e-4, abs=1e-6), key
        assert a["reconstruction_test"] == pytest.approx(b["reconstruction_test"], rel=1e-3, abs=1e-5)
    assert out[1][0]["train_loss_last"] != pytest.approx(out[1][1]["train_loss_last"], rel=1e-6)  # seeds differ
    assert (tmp_path / "ae1.pt").is_file() and (tmp_path / "ae2.pt").is_file()


def _tiny_setups():
    from scalegmn_lite.experiments.merging import ZooSetup
    from scalegmn_lite.zoo import ZooRecipe

    inr = ZooRecipe(name="tiny-ae-inr", dataset="digits", arch="siren 2-6-6-1", task="inr", optimizer="adam",
                    lr=(1e-3, 1e-3), init_scale=(1.0, 1.0), weight_decay=(0.0, 0.0), num_networks=120, views=2,
                    epochs=5, checkpoint_epochs=(0, 5), image_size=6, inr_init="dwsnets")
    cnn = ZooRecipe(name="tiny-ae-cnn", dataset="mnist1d", arch="conv1d 1-3-3/10 k3 s2 relu 1x40",
                    activations=("tanh", "relu"), num_networks=80, epochs=1, checkpoint_epochs=(0, 1), train_size=200,
                    batch_size=50)
    cfg = AutoencoderConfig(8, 4, 1, False, (16,))
    return [ZooSetup("inr", inr, "inr", config=cfg, steps=3, batch_size=4, split_by="image_index"),
            ZooSetup("cnn-relu", cnn, "classifier", {"activation": "relu"}, cfg, steps=3, batch_size=4, top=30)], \
        [ZooSetup("inr-shared-init", replace(inr, name="tiny-ae-inr-shared", views=1, shared_init=True,
                                             inr_init="siren"), "inr", source="course"),
         ZooSetup("cnn-tanh", cnn, "classifier", {"activation": "tanh"}, source="course")]


def test_merging_experiment_end_to_end_on_tiny_zoos(tmp_path, monkeypatch):
    """Issue 24: the whole experiment (screen, floors, autoencoders, orbit test under P/D/PD, pairs,
    claims marked with their source) runs on tiny zoos; its figures are internally consistent."""
    from scalegmn_lite.cli import write_report
    from scalegmn_lite.common.claims import validate_claim
    from scalegmn_lite.experiments import RunContext
    from scalegmn_lite.experiments import merging as m

    monkeypatch.setenv("SCALEGMN_LITE_CACHE", str(tmp_path / "cache"))
    chosen, screen_setups = _tiny_setups()
    monkeypatch.setattr(m, "QUICK_SETUPS", chosen)
    monkeypatch.setattr(m, "SCREEN_SETUPS", screen_setups)
    monkeypatch.setattr(m, "N_PAIRS", 4)
    monkeypatch.setattr(m, "QUICK_SEEDS", (0, 1))
    r = m.run(RunContext(quick=True, out_dir=tmp_path / "out", progress=False))
    ids = [c.id for c in r["claims"]]
    assert ids == ["naive-barrier-exists", "orbit-no-barrier-after-canonicalization",
                   "orbit-permutation-matching-misses-diagonal", "ae-barrier-below-naive",
                   "ae-barrier-below-weight-matching", "ae-path-loss-below-weight-matching",
                   "ae-reconstruction-above-floor", "latent-invariant"]
    for c in r["claims"]:
        validate_claim(c.to_dict(), c.id)
        assert c.source in ("autoencoder paper", "course")
    assert set(r["screen"]) == {"inr", "cnn-relu", "inr-shared-init", "cnn-tanh"}
    assert r["screen"]["cnn-tanh"]["top"] == 30  # the screen's CNNs are selected like the merging zoo's
    for k in ("inr", "cnn-relu"):
        rs = r["runs_by_seed"][k]
        assert [x["seed"] for x in rs] == [0, 1]
        for g in ("P", "D", "PD"):
            o = r["zoos"][k]["orbit"][g]
            assert set(o["barrier"]) == set(m.ORBIT_METHODS)
            assert len(o["per_network_barrier"]["naive"]) == o["networks"] * o["runs"]
            assert min(min(v) for v in o["per_network_barrier"].values()) >= 0
        # naive and matching do not depend on the autoencoder seed (same draws)
        assert rs[0]["orbit"]["PD"]["barrier"]["naive"] == rs[1]["orbit"]["PD"]["barrier"]["naive"]
        assert rs[0]["orbit"]["D"]["barrier"]["weight_matching"] == rs[1]["orbit"]["D"]["barrier"]["weight_matching"]
    # the orbit test's INR loss is against the ground-truth digits: the originals' endpoint loss equals
    # their MSE to the digit (> 0), the same number the floors report as PSNR
    inr = r["zoos"]["inr"]
    mse0 = inr["orbit"]["P"]["endpoint_loss"]["naive"]
    assert mse0 > 0
    assert set(r["fairness"]["inr"]["floor"]) == {"mean_image_psnr", "original_psnr_vs_digit"}
    assert set(r["fairness"]["cnn-relu"]["floor"]) == {"one_network_accuracy", "one_network_agreement"}
    # REPORT.md marks each claim with its source
    report = write_report(tmp_path / "out", {"merging": {**r, "claims": [c.to_dict() for c in r["claims"]]}})
    text = report.read_text()
    assert "*[autoencoder paper]* Orbit test" in text and "*[course]* " in text


def test_weight_matching_groups_on_exact_orbits():
    """P matching undoes a permutation but not a sign flip; D undoes sign flips / scalings but not a
    permutation; PD undoes both (exact orbits, so 'undo' means the weights come back)."""
    from scalegmn_lite.tasks.merging.matching import align

    for text in ("siren 2-8-8-1", "mlp 5-8-8-3 relu"):
        spec = NetworkSpec.from_text(text)
        ws = WeightSpace.randn(spec, 4, torch.Generator().manual_seed(0), dtype=F64)
        for group in ("P", "D", "PD"):
            partner, _ = orbit_partner(ws, 0.0, torch.Generator().manual_seed(1), group)
            for method in ("P", "D", "PD"):
                back = align(ws, partner, group=method)
                err = max(float((a - b).abs().max()) for a, b in zip(back.params(), ws.params()))
                should = set(group) <= set(method)
                assert (err < 1e-6) == should, (text, group, method, err)


def test_merging_setup_and_orbit_errors_say_what_is_wrong(tmp_path, monkeypatch):
    from scalegmn_lite.experiments.merging import prepare

    monkeypatch.setenv("SCALEGMN_LITE_CACHE", str(tmp_path / "cache"))
    chosen, _ = _tiny_setups()
    with pytest.raises(ValueError, match="ranks by 'nope', which the zoo's metadata lacks"):
        prepare(replace(chosen[1], rank_by="nope"), progress=False)
    ws = WeightSpace.randn(NetworkSpec.from_text("mlp 3-4-2 tanh"), 2, torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="group must be one of"):
        orbit_partner(ws, 0.0, None, "PQ")


def test_shared_paths_equal_the_ones_computed_per_autoencoder(tmp_path, monkeypatch):
    """The naive and weight-matching paths are computed once per zoo and reused for every autoencoder
    seed: evaluating with the shared figures gives exactly what evaluating from scratch gives."""
    from scalegmn_lite.experiments.merging import evaluate, prepare, shared_figures

    monkeypatch.setenv("SCALEGMN_LITE_CACHE", str(tmp_path / "cache"))
    chosen, _ = _tiny_setups()
    prep = prepare(chosen[0], progress=False)
    torch.manual_seed(0)
    ae = WeightAutoencoder(prep.train.spec, chosen[0].config, reference=prep.train)
    shared = shared_figures(prep, "inr", 0, 4, 1, n_pairs=4)
    a = evaluate(ae, prep, "inr", 0, n_pairs=4, n_orbit=4, orbit_runs=1, shared=shared)
    b = evaluate(ae, prep, "inr", 0, n_pairs=4, n_orbit=4, orbit_runs=1)
    assert a["orbit"] == b["orbit"] and a["pair_path"] == b["pair_path"]
    assert set(a["orbit"]["PD"]["barrier"]) == {"naive", "weight_matching_P", "weight_matching_D", "weight_matching",
                                               "decoded"}
    with pytest.raises(ValueError, match="other pairs"):
        evaluate(ae, prep, "inr", 1, n_pairs=4, n_orbit=4, orbit_runs=1, shared=shared)
