"""Notebook 06's generated sentences (scalegmn_lite.course.narrate) say what the claims say: a ranking decides
"who is ahead" on the paired difference a claim is decided on, the gauge test's sentence on the interval the
claim uses, and a claim over several comparisons names the one its interval belongs to."""

import json
from pathlib import Path

import pandas as pd
import pytest

from scalegmn_lite.course.narrate import claims_with_notes, gauge_effect, paired_differences, ranking

ROOT = Path(__file__).resolve().parents[1]
#: (task, other model) -> the claim "scalegmn beats other" of the invariant study
BEATS = {("accuracy-prediction", "gmn"): "scalegmn-beats-gmn-generalization",
         ("accuracy-prediction", "statnn"): "scalegmn-beats-statnn",
         ("inr-classification", "gmn"): "scalegmn-beats-gmn-inr-classification",
         ("inr-classification", "statnn"): "scalegmn-beats-statnn-inr-classification"}


def iv(mean, lo, hi):
    return {"mean": mean, "ci": [lo, hi]}


def test_overlapping_intervals_with_a_clear_paired_difference_name_the_winner():
    # the quick study's case: separate intervals overlap, the paired difference excludes 0
    res = {"gmn": iv(0.82, 0.80, 0.84), "statnn": iv(0.78, 0.75, 0.81), "scalegmn": iv(0.77, 0.74, 0.81)}
    text = ranking(res, "Kendall tau", focus="scalegmn", paired={"gmn": iv(-0.048, -0.068, -0.029),
                                                                 "statnn": iv(-0.006, -0.039, 0.024)})
    assert "does not resolve which of the two is better" not in text.split("\n")[-2]  # the gmn sentence
    assert ("Its interval overlaps gmn's, but the paired difference scalegmn minus gmn (same test networks and "
            "seeds), -0.048 [-0.068, -0.029], puts gmn ahead" in text)
    assert "Against statnn: the paired difference scalegmn minus statnn" in text and "includes 0" in text
    # without the paired difference the old, weaker sentence is all it can say
    assert "this run does not resolve" in ranking(res, "Kendall tau", focus="scalegmn")


@pytest.mark.parametrize("ci, words", [([0.01, 0.2], "puts scalegmn ahead"), ([-0.2, -0.01], "puts gmn ahead"),
                                       ([-0.1, 0.1], "includes 0")])
def test_the_paired_sentence_follows_the_claims_rule(ci, words):
    res = {"scalegmn": iv(0.5, 0.3, 0.7), "gmn": iv(0.5, 0.3, 0.7)}
    assert words in ranking(res, "accuracy", focus="scalegmn", paired={"gmn": iv(sum(ci) / 2, *ci)})
    lower = ranking(res, "loss", focus="scalegmn", higher_is_better=False, paired={"gmn": iv(sum(ci) / 2, *ci)})
    flipped = {"puts scalegmn ahead": "puts gmn ahead", "puts gmn ahead": "puts scalegmn ahead"}.get(words, words)
    assert flipped in lower  # a lower loss is better: a negative difference puts the focus ahead


def stored(name):
    path = ROOT / "results" / name / "invariant.json"
    if not path.is_file():
        pytest.skip(f"no {path}")
    return json.loads(path.read_text())


@pytest.mark.parametrize("name", ["quick", "reference"])
def test_ranking_agrees_with_the_stored_claims(name):
    """The contradiction a reader found ("does not resolve" beside a refuted claim) cannot come back: for
    every "scalegmn beats X" claim, the ranking's sentence about X says what the claim's status says."""
    study = stored(name)
    claims = {c["id"]: c for c in study["claims"]}
    for (task, other), cid in BEATS.items():
        paired = paired_differences(study, task)
        assert paired[other]["ci"] == claims[cid]["ci"], cid  # the same interval
        res = {m: study["scores"][task][m] for m in ("scalegmn", "gmn", "statnn")}
        text = ranking(res, "score", focus="scalegmn", paired=paired)
        sentence = next(line for line in text.split("\n") if f"scalegmn minus {other} " in line)
        expected = {"holds": "puts scalegmn ahead", "refuted": f"puts {other} ahead",
                    "inconclusive": "does not resolve"}[claims[cid]["status"]]
        assert expected in sentence, (cid, claims[cid]["status"], sentence)


def runs_frame():
    rows = []
    for seed, (g, s) in enumerate([(0.05, 0.10), (0.04, -0.02), (0.06, 0.03)]):
        rows += [{"task": "t", "model": "scalegmn", "seed": seed, "test_score": 0.7, "test_score_gauge": 0.7},
                 {"task": "t", "model": "gmn", "seed": seed, "test_score": 0.8, "test_score_gauge": 0.8 - g},
                 {"task": "t", "model": "statnn", "seed": seed, "test_score": 0.6, "test_score_gauge": 0.6 - s}]
    return pd.DataFrame(rows)


def test_gauge_effect_uses_the_claims_interval_where_stored():
    runs = runs_frame()
    text, drops = gauge_effect(runs, "t")  # per seed: gmn lower every time, statnn not
    assert drops == {"gmn": True, "statnn": False} and text.startswith("gmn drops, statnn does not:")
    gt = {"t": {"gmn": {"drop_under_gauge": iv(0.05, 0.03, 0.07)},
                "statnn": {"drop_under_gauge": iv(0.04, 0.01, 0.08)}}}
    text, drops = gauge_effect(runs, "t", gt)  # the paired intervals both lie above 0
    assert drops == {"gmn": True, "statnn": True} and text.startswith("every baseline's score drops (original minus")
    assert "statnn 0.040 [0.010, 0.080]" in text
    gt["t"]["gmn"]["drop_under_gauge"] = iv(0.004, -0.023, 0.031)
    gt["t"]["statnn"]["drop_under_gauge"] = iv(-0.015, -0.054, 0.025)
    text, drops = gauge_effect(runs, "t", gt)
    assert not any(drops.values()) and text.startswith("no baseline's score clearly drops")


@pytest.mark.parametrize("name", ["quick", "reference"])
def test_gauge_sentences_agree_with_the_stored_claim(name):
    study = stored(name)
    claim = next(c for c in study["claims"] if c["id"] == "gauge-test-moves-baselines")
    if not isinstance(claim["measured"], dict):
        pytest.skip(f"the {name} result keeps no paired intervals of the gauge test")
    runs = pd.DataFrame(study["runs"])
    drops = {f"{t}/{m}": v for t in study["gauge_test"]
             for m, v in gauge_effect(runs, t, study["gauge_test"])[1].items()}
    assert set(drops) == set(claim["measured"]) - {"interval_of"}
    assert (claim["status"] == "holds") == all(drops.values())
    assert drops[claim["measured"]["interval_of"]] == (claim["status"] == "holds")


def test_claims_table_names_the_deciding_comparison():
    claim = {"id": "moves", "status": "inconclusive", "kind": "finding", "holds": False, "seeds": 3,
             "statement": "every baseline drops", "target": "> 0 (95% interval)", "ci": [-0.054, 0.025],
             "measured": {"cnn/gmn": 0.04, "inr/statnn": -0.0146, "interval_of": "inr/statnn"}}
    exact = {"id": "exact", "status": "holds", "kind": "check", "holds": True, "seeds": 3, "statement": "s",
             "target": "<= 0.001", "measured": 0.0}
    text = claims_with_notes({"claims": [claim, exact]})
    row = next(line for line in text.split("\n") if line.strip().startswith("moves"))
    assert "-0.015 [-0.054, 0.025] (inr/statnn)" in row
    assert "(inr/statnn): moves holds only if every one of its 2 comparisons does" in text
    assert "cnn/gmn 0.040" in text
