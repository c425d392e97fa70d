"""Issue 33: committed results are re-judged by a committed tool (tools/recompute_claims.py ->
scalegmn_lite.recompute), never edited by hand: the claims come back from the stored
figures, the manifest records the run, and what a file lacks is reported, not invented."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from scalegmn_lite.common.claims import count_claims, validate_claim
from scalegmn_lite.recompute import recompute_dir

ROOT = Path(__file__).resolve().parents[1]
A, I = "accuracy-prediction", "inr-classification"


def _invariant_result(rng, good: bool = True) -> dict:
    """A stored invariant result: 30 networks x 3 checkpoints, 20 images x 3 INRs, 2 seeds."""
    nets, ck = 30, 3
    y_acc = np.round(rng.uniform(0.1, 0.9, nets * ck), 3)
    g_acc = np.tile(np.arange(nets), ck)
    y_inr = np.repeat(rng.integers(0, 10, 20), 3).astype(float)
    g_inr = np.repeat(np.arange(20), 3)
    preds, gauge, runs = {}, {}, []
    tasks = ((A, y_acc, ("scalegmn", "gmn", "statnn", "flatmlp")), (I, y_inr, ("scalegmn", "gmn", "statnn")))
    for task, y, models in tasks:
        for m in models:
            for s in (0, 1):
                if task == A:
                    p = y + rng.normal(0, 0.05 if good else 5.0, len(y))
                    pg = p if m == "scalegmn" else p + rng.normal(0, 0.3, len(y))
                    score = 0.9
                else:
                    p = np.where(rng.random(len(y)) < (0.9 if good else 0.1), y, (y + 1) % 10)
                    pg = p if m == "scalegmn" else np.where(rng.random(len(y)) < 0.5, p, (p + 1) % 10)
                    score = 0.9
                preds[f"{task}/{m}/s{s}"] = p.tolist()
                gauge[f"{task}/{m}/s{s}"] = pg.tolist()
                runs.append({"task": task, "model": m, "seed": s, "best_val": 0.95 if m == "flatmlp" else 0.8,
                             "test_score": score,
                             "test_score_gauge": score if m == "scalegmn" else score - 0.05,
                             "test_score_nonsym": 0.5, "gauge_shift": 1e-7 if m == "scalegmn" else 0.3})
    floors = {A: {"name": "weight-norm", "test_pred": rng.normal(size=len(y_acc)).tolist(),
                  "sign_on_training_networks": 1.0},
              I: {"name": "majority-class", "test_pred": [3.0] * len(y_inr), "class": 3}}
    return {"experiment": "invariant", "mode": "quick", "runs": runs, "test_predictions": preds,
            "test_predictions_gauge": gauge, "test_targets": {A: y_acc.tolist(), I: y_inr.tolist()},
            "test_groups": {A: g_acc.tolist(), I: g_inr.tolist()}, "floors": floors, "settings": {"checkpoints": None},
            "claims": [{"id": "accuracy-prediction-learns", "statement": "old", "measured": 0.9, "target": ">= 0.8",
                        "holds": True, "status": "holds", "ci": [0.85, 0.95], "seeds": 2}]}


def _zoo_result() -> dict:
    """An older zoo.json: the plateau claims were stored as exact, with their interval in `measured`."""
    q = [0, .2, .3, .4, .5, .6, .9]
    zoos = {"cnn1d-hp-mnist1d": {"networks": 1024, "metric": "test_acc", "quantiles_0_10_25_50_75_90_100": q,
                                 "by_activation": {"tanh": {"mean": 0.4, "quantiles_0_10_25_50_75_90_100": q}}}}
    sgd = {"cnn1d-hp-mnist1d": {"tanh": {"gain": 0.1}}, "cnn1d-plateau-mnist1d": {"tanh": {"gain": 0.05}}}
    old = {"id": "plateau-less-headroom-cnn1d-tanh", "statement": "s", "target": "t", "holds": True,
           "status": "holds",
           "measured": {"difference": -0.05, "ci": [-0.07, 0.01]}}
    det = {"id": "zoo-deterministic", "statement": "s", "target": "t", "holds": True, "status": "holds",
           "measured": True}
    return {"experiment": "zoo", "mode": "quick", "zoos": zoos, "max_weight_difference": 1e-7,
            "sgd150_from_final": sgd,
            "sgd150_networks_per_activation": 8, "claims": [det, old]}


def _folder(tmp_path, good=True) -> Path:
    d = tmp_path / "run"
    d.mkdir()
    rng = np.random.default_rng(0)
    (d / "invariant.json").write_text(json.dumps(_invariant_result(rng, good)))
    (d / "zoo.json").write_text(json.dumps(_zoo_result()))
    (d / "manifest.json").write_text(json.dumps({"mode": "quick", "commit": "x"}))
    return d


def test_recompute_dir_rejudges_records_and_reports(tmp_path, monkeypatch):
    from scalegmn_lite.zoo import recipes

    monkeypatch.setattr(recipes, "TRAINED_RECIPES", ("cnn1d-hp-mnist1d",))
    d = _folder(tmp_path)
    changes = recompute_dir(d, zoos=False, commit="abc", n_boot=200)
    inv = json.loads((d / "invariant.json").read_text())
    for c in inv["claims"]:
        validate_claim(c, c["id"])
    st = {c["id"]: c for c in inv["claims"]}
    learns = st["accuracy-prediction-learns"]
    assert learns["status"] == "holds" and learns["kind"] == "finding"
    assert "chosen on validation" in st["accuracy-prediction-learns"]["statement"]
    assert st["scalegmn-invariant"]["kind"] == "check"
    # the clusters were used: 30 networks and 20 images, not 90 and 60 rows
    assert inv["scores"][A]["scalegmn"]["clusters"] == 30 and inv["scores"][I]["scalegmn"]["clusters"] == 20
    assert inv["selection"][A]["chosen"] == "flatmlp"  # the highest validation score, not the test score
    assert inv["recomputed"]["tool"] == "tools/recompute_claims.py" and inv["recomputed"]["commit"] == "abc"
    # the old sampled claim stored as exact is an interval claim now, and its interval (across 0) is inconclusive
    zoo = {c["id"]: c for c in json.loads((d / "zoo.json").read_text())["claims"]}
    assert zoo["plateau-less-headroom-cnn1d-tanh"]["status"] == "inconclusive"
    assert zoo["plateau-less-headroom-cnn1d-tanh"]["ci"] == [-0.07, 0.01]
    assert zoo["zoo-deterministic"]["kind"] == "check"
    flips = {r["id"]: (r["old_status"], r["new_status"]) for r in changes["zoo"]}
    assert flips["plateau-less-headroom-cnn1d-tanh"] == ("holds", "inconclusive")
    man = json.loads((d / "manifest.json").read_text())
    assert man["recomputed"][-1]["experiments"] == ["invariant", "zoo"] and man["recomputed"][-1]["commit"] == "abc"
    report = (d / "REPORT.md").read_text()
    n = count_claims(inv["claims"] + list(zoo.values()))
    assert f"**{n['finding']['holds']} of {n['finding']['total']} findings hold**" in report
    assert "## Exact checks" in report


def test_a_bad_model_is_not_saved_by_recomputing(tmp_path, monkeypatch):
    from scalegmn_lite.zoo import recipes

    monkeypatch.setattr(recipes, "TRAINED_RECIPES", ("cnn1d-hp-mnist1d",))
    d = _folder(tmp_path, good=False)
    recompute_dir(d, only=["invariant"], zoos=False, n_boot=200)
    st = {c["id"]: c["status"] for c in json.loads((d / "invariant.json").read_text())["claims"]}
    assert st["accuracy-prediction-learns"] != "holds" and st["inr-classification-learns"] != "holds"


def test_missing_clusters_are_never_invented(tmp_path):
    d = _folder(tmp_path)
    data = json.loads((d / "invariant.json").read_text())
    del data["test_groups"]
    (d / "invariant.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match="rerun"):
        recompute_dir(d, only=["invariant"], zoos=False, n_boot=200)
    with pytest.raises(ValueError, match="no result file"):
        recompute_dir(d, only=["amortized"], zoos=False)


def test_recompute_claims_command_line(tmp_path):
    d = _folder(tmp_path)
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "recompute_claims.py"), str(d), "--only", "invariant",
                           "--no-zoos", "--n-boot", "100"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "accuracy-prediction-learns" in proc.stdout and "invariant" in proc.stdout


def test_adopt_run_takes_the_rerun_and_keeps_the_recompute_records(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    c = {"id": "x", "statement": "s", "measured": 1.0, "target": "t", "holds": True, "status": "holds", "kind": "check"}
    (src / "merging.json").write_text(json.dumps({"claims": [c], "seconds": 1.0}))
    (dst / "merging.json").write_text(json.dumps({"claims": [], "seconds": 2.0}))
    (src / "manifest.json").write_text(json.dumps({"mode": "reference", "commit": "abc", "per_experiment": {
        "merging": {"reused": False, "seconds": 5.0}, "zoo": {"reused": True, "source": {"commit": "stale"}}},
        "zoo_builds": {"b": 4.0}}))
    dst_per = {"zoo": {"seconds": 7.0, "source": {"commit": "z"}}, "merging": {"seconds": 1.0}}
    (dst / "manifest.json").write_text(json.dumps({"mode": "reference", "commit": "old", "recomputed": [{"a": 1}],
                                                   "per_experiment": dst_per, "zoo_builds": {"a": 3.0, "b": 9.0}}))
    tool = str(ROOT / "tools" / "adopt_run.py")
    proc = subprocess.run([sys.executable, tool, str(src), str(dst), "--only", "merging"], capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr
    man = json.loads((dst / "manifest.json").read_text())
    assert man["commit"] == "abc" and man["recomputed"] == [{"a": 1}]
    # the adopted part's record is the rerun's; every other part keeps the destination's
    assert man["per_experiment"]["merging"] == {"reused": False, "seconds": 5.0}
    assert man["per_experiment"]["zoo"]["source"]["commit"] == "z" and man["experiment_seconds_total"] == 12.0
    assert man["adopted"][0]["experiments"] == ["merging"]
    # the destination's zoo builds stay counted; a zoo the rerun built again counts with the rerun's time
    assert man["zoo_builds"] == {"a": 3.0, "b": 4.0} and man["zoo_build_seconds_total"] == 7.0
    assert json.loads((dst / "merging.json").read_text())["claims"] == [c]
    assert "1 of 1 exact checks hold" in (dst / "REPORT.md").read_text()
    # a part the rerun only reused from another commit is refused
    proc = subprocess.run([sys.executable, tool, str(src), str(dst), "--only", "zoo"], capture_output=True, text=True)
    assert proc.returncode != 0 and "fresh run" in (proc.stdout + proc.stderr)
    # one run at the rerun's own commit by an earlier invocation in the same checkout is adopted
    man = json.loads((src / "manifest.json").read_text())
    man["per_experiment"]["zoo"]["source"]["commit"] = "abc"
    (src / "manifest.json").write_text(json.dumps(man))
    (src / "zoo.json").write_text(json.dumps({"claims": [c]}))
    proc = subprocess.run([sys.executable, tool, str(src), str(dst), "--only", "zoo"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
