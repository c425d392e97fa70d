"""Notebook 08's merging vocabulary, tables and reference paragraph (issue 34): the held-out images of
the shipped autoencoder, full claims tables with named columns, verdicts that agree with every
comparison, and legends outside the data."""

from __future__ import annotations

import copy

import matplotlib
import numpy as np
import pandas as pd
import pytest
import torch
from merging_fakes import fake_merging_result

matplotlib.use("Agg")

from scalegmn_lite.common.claims import combine_status  # noqa: E402
from scalegmn_lite.course.merging_story import (  # noqa: E402
    COMBINED_WORDS,
    PATH_NAMES,
    ZOO_WORDS,
    claim_comparisons,
    claim_parts,
    claims_markdown,
    classifier_floor_story,
    comparisons_markdown,
    heldout_images_of_split,
    legend_below,
    orbit_level_story,
    orbit_thresholds,
    plot_paths,
    reconstruction_summary,
    reference_story,
    verdicts_markdown,
)
from scalegmn_lite.tasks.merging.controls import CONTROLS  # noqa: E402
from scalegmn_lite.weightspace.spec import NetworkSpec  # noqa: E402
from scalegmn_lite.weightspace.weights import WeightSpace  # noqa: E402
from scalegmn_lite.zoo.zoo import Zoo  # noqa: E402


# ------------------------------------------------------------------------------- held-out images
@pytest.mark.parametrize("n_images,views,seed", [(10, 2, 0), (37, 3, 1), (50, 1, 5)])
def test_heldout_images_follow_zoo_split(n_images, views, seed):
    spec = NetworkSpec.from_text("mlp 2-3-1 relu")
    n = n_images * views
    ws = WeightSpace.randn(spec, n, torch.Generator().manual_seed(0))
    md = pd.DataFrame({"net": np.arange(n), "image_index": np.repeat(np.arange(n_images), views)})
    zoo = Zoo.from_weight_spaces([([ws], md)], checkpoints=[0])
    _, test = zoo.split((0.8, 0.2), seed=seed, by="image_index")
    expected = np.unique(test.metadata["image_index"].to_numpy())
    assert np.array_equal(heldout_images_of_split(n_images, (0.8, 0.2), seed), expected)


def test_shipped_split_matches_the_shipped_models_index():
    from scalegmn_lite.course.shipped import shipped_index

    try:
        entry = shipped_index()["autoencoder-inr"]
    except FileNotFoundError:
        pytest.skip("no shipped models in this checkout")
    held = int(entry["heldout_sample"].split(" of the ")[1].split()[0])  # "... of the 1077 held-out INRs"
    trained = int(entry["trained_on"].split()[0])  # "4314 INRs of ..."
    images = heldout_images_of_split()
    assert len(images) * (held + trained) == held * 1797  # the same share of images and of INRs held out
    assert len(np.unique(images)) == len(images) and images.max() < 1797


# ------------------------------------------------------------------------------- claims on made-up data
def _fake(n_pairs=30, seeds=2, good=True, controls=True, seed=0):
    """A recomputed ``merging.json`` of one INR zoo and one CNN zoo with disjoint pairs: the decoder
    beats naive interpolation, weight matching and (``good``) every control by a clear margin, or
    (``good=False``) loses to the shuffled codes."""
    from scalegmn_lite.experiments.merging import recompute_result

    res = fake_merging_result({"inr": "inr", "cnn-relu": "classifier"}, n_pairs=n_pairs, seeds=seeds, noise=0.02,
                              shuffled_loss=2.5 if good else 0.5, seed=seed)
    if not controls:
        del res["controls"]
    out = recompute_result(res)
    out["screen"]["inr-shared-init"] = copy.deepcopy(out["screen"]["inr"])
    return out


def _rows(md: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip().strip("|").split("|")] for line in md.strip().splitlines()]


@pytest.mark.parametrize("good,controls", [(True, True), (False, True), (True, False)])
def test_tables_are_complete_and_verdicts_agree_with_every_comparison(good, controls):
    ref = _fake(good=good, controls=controls)
    rows = _rows(claims_markdown(ref))
    assert rows[0] == ["claim", "what is checked", "whose", "verdict", "the number shown", "mean [95% interval]",
                       "needed"]
    parts = claim_parts(ref)
    assert set(parts) == {"ae-barrier-below-naive", "ae-barrier-below-weight-matching",
                          "ae-path-loss-below-weight-matching", "ae-reconstruction-above-floor"}
    # one row per claim, three for a claim with a control check: its comparison, the check, the combination
    assert len(rows) == 2 + len(ref["claims"]) + 2 * len(parts) and all(len(r) == 7 for r in rows)
    by_id: dict[str, list] = {}
    for r in rows[2:]:
        by_id.setdefault(r[0].split("`")[1], []).append(r)
    assert by_id["orbit-permutation-matching-misses-diagonal"][0][2] == "the paper's, as we state it"
    assert by_id["ae-path-loss-below-weight-matching"][0][2] == "the course's"
    own, check, combined = by_id["ae-barrier-below-naive"]
    assert own[1].startswith("its comparison") and own[2] == "the paper's"
    assert check[1].startswith("the control check") and check[2] == "the course's"
    assert combined[1] == COMBINED_WORDS[True] and "as the course judges it" in combined[1]
    status = {c["id"]: c["status"] for c in ref["claims"]}
    for cid, p in parts.items():
        o, k, comb = by_id[cid]
        assert o[3] == f"**{p['own_verdict']}**" and k[3] == f"**{p['control_verdict']}**"
        assert comb[3] == f"**{status[cid]}**"
        assert combine_status([p["own_verdict"], p["control_verdict"]]) == status[cid], cid
        assert {r["zoo"] for r in p["own"]} == set(ref["runs_by_seed"])  # every zoo's own interval is shown
        assert all(ZOO_WORDS[z] in o[5] for z in ref["runs_by_seed"])
    for c in ref["claims"]:
        assert f"**{c['status']}**" in by_id[c["id"]][-1][3]
        assert "..." not in by_id[c["id"]][0][0] and "e+" not in by_id[c["id"]][0][5]
        assert "decoded/" not in " ".join(by_id[c["id"]][0])  # the canonical path is never named "decoded"
    comps = claim_comparisons(ref)
    for cid, rs in comps.items():
        assert combine_status([r["verdict"] for r in rs]) == status[cid], cid
        assert {r["against"] for r in rs} >= set(CONTROLS)
    table = _rows(comparisons_markdown(ref))
    assert table[0] == ["the difference", "mean [95% interval]", "needed", "verdict", "counts for"]
    assert len(table) == 2 + 2 * (3 + 1 + 3 + 3)  # per zoo: 3 path comparisons, floor, 3 + 3 control rows
    counts = [r[4] for r in table[2:]]
    assert sum(c.startswith("the control check of") for c in counts) == 2 * (3 + 3)
    assert sum(c == "the paper's comparison of `ae-barrier-below-naive`" for c in counts) == 2


def test_the_paper_s_comparison_and_the_control_check_get_their_own_verdicts():
    """A paper's claim whose own comparison holds but which loses to a control reads holds, refuted and
    refuted (combined), never a bare "refuted" for the paper's comparison."""
    ref = _fake(good=False)
    p = claim_parts(ref)["ae-barrier-below-naive"]
    assert p["own_verdict"] == "holds" and p["control_verdict"] == "refuted" and p["status"] == "refuted"
    assert p["deciding_control"]["against"] == "shuffled-codes"
    text, facts = reference_story(ref)
    assert facts["parts"]["ae-barrier-below-naive"] == {"own": "holds", "controls": "refuted"}
    line = next(li for li in text.splitlines() if li.startswith("* `ae-barrier-below-naive`"))
    assert line.startswith(f"* `ae-barrier-below-naive`, {COMBINED_WORDS[True]}: **refuted**")
    assert "The paper's comparison" in line and "verdict of this part: **holds**" in line
    assert "verdict of this part: **refuted**" in line


def test_story_names_the_controls_each_claim_beats():
    changes = {"before": "abc", "rows": [{"experiment": "merging", "run": "reference", "id": "ae-barrier-below-naive",
                                          "old_status": "holds"}]}
    text, facts = reference_story(_fake(good=True), changes)
    assert facts["status"]["ae-path-loss-below-weight-matching"] == "holds"
    assert facts["beats"]["ae-path-loss-below-weight-matching"]["inr"] == list(CONTROLS)
    assert "beats constant decoder, mean network and shuffled-codes control" in text
    assert "judged against the naive path, weight matching and the floor only" in text
    assert facts["earlier_holds"] == ["ae-barrier-below-naive"]
    assert "abc" not in text  # no commit hash in the course's prose

    text, facts = reference_story(_fake(good=False))
    assert facts["status"]["ae-path-loss-below-weight-matching"] == "refuted"
    assert facts["not_beaten"]["ae-path-loss-below-weight-matching"]["cnn-relu"] == ["shuffled-codes"]
    assert "loses to shuffled-codes control" in text and "**refuted**" in text

    text, facts = reference_story(_fake(controls=False))
    assert facts["status"]["ae-barrier-below-naive"] == "inconclusive"
    assert "has no measurement against constant decoder, mean network and shuffled-codes control" in text
    assert facts["earlier_holds"] == []


def _with_classifier_figures(ref, floor_acc=0.718, orig_acc=0.56, dec_acc=0.609, canon=1.12, orig_loss=1.17):
    """The figures of a classifier zoo the floor and orbit sentences read, set on a fake result."""
    ref = copy.deepcopy(ref)
    ref["fairness"]["cnn-relu"]["floor"] = {"one_network_accuracy": floor_acc, "one_network_agreement": 0.578}
    ref["fairness"]["cnn-relu"]["reconstruction_test_by_seed"] = [
        {"decoded_accuracy": dec_acc + d, "decoded_agreement": 0.69 + d, "original_accuracy": orig_acc}
        for d in (-0.001, 0.001)]
    ref["zoos"]["cnn-relu"]["orbit"]["PD"]["mean_curves"] = {"naive": [orig_loss, 2.0, orig_loss],
                                                             "decoded": [canon] * 3}
    return ref


def test_floor_and_orbit_sentences_choose_their_words_from_the_data():
    ref = _fake(good=True)
    rec = reconstruction_summary(_with_classifier_figures(ref), "cnn-relu")
    assert rec["decoded_accuracy"] == pytest.approx(0.609) and rec["original_accuracy"] == pytest.approx(0.56)

    text, facts = classifier_floor_story(_with_classifier_figures(ref))
    assert facts["strong"] and "71.8% accurate" in text and "more accurate than both the originals (56.0%)" in text
    assert facts["verdict"] == "holds" and "still lower" in text  # the fake's decoder beats the constant decoder
    text, facts = classifier_floor_story(_with_classifier_figures(ref, floor_acc=0.5))
    assert not facts["strong"] and "less accurate than both" in text and "strong network that" not in text

    text, facts = orbit_level_story(_with_classifier_figures(ref))
    assert facts["below"] and facts["more_accurate"] and "*below* the originals' 1.17" in text and "1.12" in text
    assert "60.9% against 56.0%" in text
    text, facts = orbit_level_story(_with_classifier_figures(ref, canon=1.3, dec_acc=0.5))
    assert not facts["below"] and "above the originals' 1.17" in text and "less accurate" in text


def test_orbit_thresholds_are_read_from_the_claim():
    ref = _fake()
    assert orbit_thresholds(ref) == {"P-only keeps": 0.5, "PD keeps": 0.01}
    bad = copy.deepcopy(ref)
    for c in bad["claims"]:
        if c["id"] == "orbit-permutation-matching-misses-diagonal":
            c["target"] = "something else"
    with pytest.raises(ValueError):
        orbit_thresholds(bad)


def test_verdict_words_are_defined_once():
    md = verdicts_markdown()
    assert [line.split("**")[1] for line in md.splitlines()] == ["holds", "refuted", "inconclusive"]


# ------------------------------------------------------------------------------- figures
def test_legend_below_the_data_and_labels_at_least_8pt():
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(8, 3), layout="constrained")
    for ax in axes:
        plot_paths(ax, {m: np.sin(np.linspace(0, 3, 11)) + k for k, m in enumerate(PATH_NAMES)}, ylabel="loss",
                   title="t")
    leg = legend_below(fig, axes)
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    lb = leg.get_window_extent(r)
    for ax in axes:
        assert lb.y1 <= ax.get_window_extent(r).y0 + 1  # below every axes, never over the data
        assert ax.xaxis.label.get_size() >= 8 and ax.yaxis.label.get_size() >= 8
        assert all(t.get_size() >= 8 for t in ax.get_xticklabels())
    assert [t.get_text() for t in leg.get_texts()] == list(PATH_NAMES.values())  # each once, in the usual order
    assert all(t.get_size() >= 8 for t in leg.get_texts())
    plt.close(fig)
