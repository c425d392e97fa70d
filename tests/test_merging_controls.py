"""Issue 33 (merging): the controls every merging claim must beat (constant decoder, mean network,
shuffled codes), clustered intervals over dependent pairs, and recomputing a stored result."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from merging_fakes import fake_merging_result

from scalegmn_lite.tasks.losses import coordinate_grid
from scalegmn_lite.tasks.merging.autoencoder import AutoencoderConfig, WeightAutoencoder
from scalegmn_lite.tasks.merging.controls import (
    CONTROLS,
    ConstantDecoder,
    constant_outputs,
    derangement,
    mean_network,
    output_path_figures,
    pair_clusters,
    shuffled_outputs,
)
from scalegmn_lite.tasks.merging.study import ClassifierMergeTask, INRMergeTask, barriers, merge_curves
from scalegmn_lite.weightspace.spec import NetworkSpec
from scalegmn_lite.weightspace.weights import WeightSpace

F64 = torch.float64


@pytest.mark.parametrize("n", [2, 3, 7, 24])
def test_derangement_moves_every_input_and_avoids_its_unit(n):
    for seed in range(5):
        p = derangement(n, seed)
        assert sorted(p.tolist()) == list(range(n)) and (p != np.arange(n)).all()
    units = np.repeat(np.arange((n + 1) // 2), 2)[:n]  # two "views" per image
    if n >= 4:
        p = derangement(n, 3, units)
        assert sorted(p.tolist()) == list(range(n))
        assert (units[p] != units).all()  # never the code of another view of the own image
    assert (derangement(n, 1) == derangement(n, 1)).all()  # seeded


def test_pair_clusters_join_pairs_that_share_a_network_or_an_image():
    pairs = [(0, 1), (2, 3), (1, 4), (5, 6)]
    assert pair_clusters(pairs) == [0, 1, 0, 2]  # (0,1) and (1,4) share network 1
    images = [0, 0, 1, 1, 2, 2, 3]  # networks 0,1 fit image 0; 2,3 image 1; 4,5 image 2
    # (0,1)~(1,4) by network 1, (1,4)~(5,6) by image 2; (2,3) stands alone
    assert pair_clusters(pairs, images) == [0, 1, 0, 0]
    assert pair_clusters([(0, 1), (2, 3)]) == [0, 1]  # disjoint pairs: cluster = pair


@pytest.mark.parametrize("text", ["siren 2-6-1", "mlp 4-6-3 relu"])
def test_constant_decoder_path_has_barrier_zero(text):
    """A decoder that outputs one network for every input has a flat path: barrier 0 (the INR loss is
    convex in alpha and never above its chord; the classifier loss is constant)."""
    spec = NetworkSpec.from_text(text)
    gen = torch.Generator().manual_seed(0)
    ws = WeightSpace.randn(spec, 8, gen, dtype=F64)
    if spec.layers[0].activation == "sine":
        task = INRMergeTask(coordinate_grid(5, 5, dtype=F64))
    else:
        x = torch.randn(32, 4, generator=gen, dtype=F64)
        task = ClassifierMergeTask(x, torch.randint(0, 3, (32,), generator=gen))
    pairs = [(0, 1), (2, 3), (4, 5), (6, 7), (1, 2)]
    for net in (ws[3:4], mean_network(ws)):
        f = output_path_figures(constant_outputs(net, ws.batch_size), ws, pairs, task)
        assert max(abs(v) for v in f["barrier"]) < 1e-12
        assert min(f["max_loss"]) > 0  # ... but the path's loss is not 0
    # the stand-in decoder goes wherever the autoencoder goes: decoded and latent paths are flat too
    i0, i1 = torch.tensor([0, 2, 4]), torch.tensor([1, 3, 5])
    bars = barriers(merge_curves(ConstantDecoder(ws[3:4]), ws[i0], ws[i1], task, methods=("decoded", "latent")))
    assert all(float(b.abs().max()) < 1e-12 for b in bars.values())


def test_mean_network_is_the_weight_mean():
    ws = WeightSpace.randn(NetworkSpec.from_text("mlp 3-4-2 tanh"), 5, torch.Generator().manual_seed(0), dtype=F64)
    m = mean_network(ws)
    assert m.batch_size == 1 and torch.allclose(m.flatten()[0], ws.flatten().mean(0))


def test_shuffled_codes_decode_another_inputs_code():
    spec = NetworkSpec.from_text("mlp 4-5-3 tanh")
    ws = WeightSpace.randn(spec, 6, torch.Generator().manual_seed(0), dtype=F64)
    torch.manual_seed(0)
    ae = WeightAutoencoder(spec, AutoencoderConfig(latent_dim=3, hidden_dim=4, num_layers=1, decoder_hidden=(8,)),
                           dtype=F64)
    with torch.no_grad():
        ae.decoder[-1].weight.normal_()
    perm = derangement(6, 0)
    sh = shuffled_outputs(ae, ws, perm)
    own = ae.reconstruct(ws)
    z = ae.encode_all(ws)
    assert torch.allclose(sh.flatten(), ae.decode(z[torch.as_tensor(perm)]).flatten())
    for i in range(6):  # no input keeps its own decoded network
        assert torch.allclose(sh.flatten()[i], own.flatten()[perm[i]])
        assert not torch.allclose(sh.flatten()[i], own.flatten()[i])


# ------------------------------------------------------------------------------- claims on made-up data
def _by_id(claims):
    return {(c["id"] if isinstance(c, dict) else c.id): (c if isinstance(c, dict) else c.to_dict()) for c in claims}


def test_claims_hold_for_a_good_decoder_and_name_the_controls():
    from scalegmn_lite.common.claims import validate_claim
    from scalegmn_lite.experiments.merging import recompute_result

    res = recompute_result(fake_merging_result())
    c = _by_id(res["claims"])
    for cid in ("naive-barrier-exists", "ae-barrier-below-naive", "ae-barrier-below-weight-matching",
                "ae-path-loss-below-weight-matching", "ae-reconstruction-above-floor",
                "orbit-permutation-matching-misses-diagonal"):
        assert c[cid]["status"] == "holds", (cid, c[cid])
        assert c[cid]["kind"] == "finding" and c[cid]["ci"] is not None
    for cid in ("ae-barrier-below-naive", "ae-reconstruction-above-floor"):
        assert all(name in c[cid]["statement"] for name in CONTROLS)
        assert {f"cnn/vs {n}" for n in CONTROLS} <= set(c[cid]["measured"])
    assert c["latent-invariant"]["kind"] == "check"
    assert c["orbit-no-barrier-after-canonicalization"]["kind"] == "check"
    for d in res["claims"]:
        validate_claim(d, d["id"])
    row = res["controls"]["cnn"]["constant-decoder"]
    assert row["barrier"]["mean"] == 0.0 and row["barrier"]["ci"] == [0.0, 0.0]
    assert row["decoded_minus_control"]["max_loss"]["ci"][1] < 0
    assert res["recompute_notes"] == []


def test_a_constant_decoder_in_place_of_the_autoencoder_fails_the_claims():
    """Feed the constant decoder's paths as the decoded ones: it beats naive interpolation and weight
    matching on the barrier (flat path), but not the controls, so the barrier claims no longer hold."""
    from scalegmn_lite.experiments.merging import recompute_result

    res = fake_merging_result()
    const = res["controls"]["cnn"]["constant-decoder"]
    for r in res["runs_by_seed"]["cnn"]:
        r["pair_path"]["decoded"] = copy.deepcopy(const["per_pair"])
        r["reconstruction_per_network"]["decoded_agreement"] = list(const["per_network"])
    c = _by_id(recompute_result(res)["claims"])
    for cid in ("ae-barrier-below-naive", "ae-barrier-below-weight-matching"):
        assert c[cid]["status"] != "holds", c[cid]
        m = c[cid]["measured"]
        assert m[f"cnn/vs {'naive' if cid.endswith('naive') else 'weight_matching'}"] < -0.2  # beats the method ...
        assert m["cnn/vs constant-decoder"] == 0.0  # ... but not the control it is
        assert m["interval_of"] in {f"cnn/vs {n}" for n in CONTROLS}
    assert c["ae-reconstruction-above-floor"]["status"] != "holds"
    # the shuffled-codes control alone also catches a decoder as bad as itself
    res2 = fake_merging_result()
    sh = res2["controls"]["cnn"]["shuffled-codes"]
    for s, r in enumerate(res2["runs_by_seed"]["cnn"]):
        r["pair_path"]["decoded"] = {k: v[s] for k, v in sh["per_pair"].items()}
    c2 = _by_id(recompute_result(res2)["claims"])
    assert c2["ae-path-loss-below-weight-matching"]["status"] != "holds"
    assert c2["ae-path-loss-below-weight-matching"]["measured"]["cnn/vs shuffled-codes"] == 0.0


def test_an_old_file_without_controls_is_inconclusive_and_says_why():
    from scalegmn_lite.experiments.merging import recompute_result

    res = fake_merging_result()
    del res["controls"], res["clusters"], res["screen"]["cnn"]["pair_clusters"]
    for r in res["runs_by_seed"]["cnn"]:
        del r["pair_path"], r["reconstruction_per_network"]
    out = recompute_result(res)
    c = _by_id(out["claims"])
    for cid in ("ae-barrier-below-naive", "ae-path-loss-below-weight-matching", "ae-reconstruction-above-floor"):
        assert c[cid]["status"] == "inconclusive"
        assert "not stored in this file" in c[cid]["statement"]
        assert c[cid]["measured"]["cnn/vs shuffled-codes"] == "missing"
    assert c["naive-barrier-exists"]["status"] == "holds"  # needs no control
    assert any("first autoencoder seed only" in n for n in out["recompute_notes"])
    assert any("shared networks only" in n for n in out["recompute_notes"])


def test_clusters_change_the_interval_as_intended():
    """Pairs that share a network move together: with every pair in one of 4 clusters the interval is
    wider than with 40 independent pairs, and it reports the number of clusters."""
    from scalegmn_lite.experiments.merging import _interval

    x = np.repeat(np.random.default_rng(0).standard_normal(4), 10) + 0.01 * np.arange(40)
    free, clustered = _interval(x, list(range(40))), _interval(x, np.repeat(np.arange(4), 10).tolist())
    assert free["clusters"] == 40 and clustered["clusters"] == 4
    assert clustered["ci"][1] - clustered["ci"][0] > 1.5 * (free["ci"][1] - free["ci"][0])
    one = _interval(x, [0] * 40)
    assert np.isnan(one["ci"][0]) and "fewer than 2" in one["note"]


# ------------------------------------------------------------------------------- tiny experiment
def test_tiny_run_controls_clusters_and_recompute(tmp_path, monkeypatch):
    """Tiny quick-mode run: controls and clusters are stored, shuffled codes are a derangement (also of
    images), the constant decoder's path has barrier 0, clusters are the connected components of pairs
    sharing a network / an image, and recompute_result on the JSON gives the same claims."""
    from test_merging_experiments import _tiny_setups

    from scalegmn_lite.experiments import RunContext
    from scalegmn_lite.experiments import merging as m

    monkeypatch.setenv("SCALEGMN_LITE_CACHE", str(tmp_path / "cache"))
    chosen, screen_setups = _tiny_setups()
    monkeypatch.setattr(m, "QUICK_SETUPS", chosen)
    monkeypatch.setattr(m, "SCREEN_SETUPS", screen_setups)
    monkeypatch.setattr(m, "N_PAIRS", 6)
    monkeypatch.setattr(m, "QUICK_SEEDS", (0, 1))
    r = m.run(RunContext(quick=True, out_dir=tmp_path / "out", progress=False))
    kinds = {c.id: c.kind for c in r["claims"]}
    assert kinds["latent-invariant"] == kinds["orbit-no-barrier-after-canonicalization"] == "check"
    assert all(v == "finding" for k, v in kinds.items() if k not in ("latent-invariant",
                                                                     "orbit-no-barrier-after-canonicalization"))
    for k in ("inr", "cnn-relu"):
        ctr = r["controls"][k]
        assert set(ctr) == set(CONTROLS)
        assert max(abs(v) for v in ctr["constant-decoder"]["per_pair"]["barrier"]) < 1e-9
        assert max(abs(v) for v in ctr["mean-network"]["per_pair"]["barrier"]) < 1e-9
        assert ctr["constant-decoder"]["barrier"]["mean"] == pytest.approx(0.0, abs=1e-9)
        assert len(ctr["shuffled-codes"]["per_pair"]["max_loss"]) == 2  # one row per autoencoder seed
        perm = np.asarray(ctr["shuffled-codes"]["permutation"])
        cl = r["clusters"][k]
        units = np.asarray(cl["networks"])
        assert sorted(perm.tolist()) == list(range(len(perm))) and (perm != np.arange(len(perm))).all()
        assert (units[perm] != units).all()  # INRs: never a view of the own image
        pairs = r["zoos"][k]["pairs"]
        assert cl["pairs"] == pair_clusters(pairs, units.tolist()) == r["screen"][k]["pair_clusters"]
        assert cl["by"] == ("image" if k == "inr" else "network")
        # the pairs' intervals resample the clusters
        assert r["fairness"][k]["decoded_minus_wm_barrier"]["clusters"] == len(set(cl["pairs"]))
        assert r["screen"][k]["barrier"]["naive"]["clusters"] == len(set(cl["pairs"]))
        assert r["fairness"][k]["reconstruction_minus_floor"]["clusters"] == len(set(cl["networks"]))
        assert "controls" not in r["runs_by_seed"][k][0] and "pair_path" in r["runs_by_seed"][k][1]
    if len(set(r["clusters"]["inr"]["networks"])) < len(r["clusters"]["inr"]["networks"]):
        assert r["clusters"]["inr"]["by"] == "image"  # several INRs per image: clustered by image
    stored = json.loads(json.dumps({**r, "claims": [c.to_dict() for c in r["claims"]]}))
    again = m.recompute_result(stored)
    assert again["recompute_notes"] == []
    a, b = _by_id(stored["claims"]), _by_id(again["claims"])
    assert list(a) == list(b)
    for cid in a:
        assert a[cid]["status"] == b[cid]["status"] and a[cid]["statement"] == b[cid]["statement"], cid
        assert json.dumps(a[cid]["ci"]) == json.dumps(b[cid]["ci"]) and a[cid]["measured"] == b[cid]["measured"], cid
    assert json.dumps(again["controls"], sort_keys=True) == json.dumps(stored["controls"], sort_keys=True)
