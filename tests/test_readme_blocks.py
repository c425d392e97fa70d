"""The README's generated blocks for a newcomer: three headline findings and the committed runs' cost, from
the result files (never typed): a claim that flips changes the words, and the times are the manifests'."""

import json

from scalegmn_lite.common.claims import claim, interval_claim
from scalegmn_lite.course.reference import HEADLINES, VERDICT_WORDS, headline_markdown, run_times_markdown


def _write_run(folder, status_of: dict[str, tuple[float, float]], seconds=(300.0, 120.0)):
    folder.mkdir(parents=True)
    by_exp: dict[str, list] = {}
    for _, exp, items in HEADLINES:
        for cid, _ in items:
            lo, hi = status_of[cid]
            c = interval_claim(cid, f"statement of {cid}", {"mean": (lo + hi) / 2, "ci": [lo, hi], "seeds": 3}, ">")
            by_exp.setdefault(exp, []).append(c.to_dict())
    by_exp.setdefault("gauge", []).append(claim("exact", "an identity", 1.0, "==", 1.0).to_dict())
    for exp, claims in by_exp.items():
        (folder / f"{exp}.json").write_text(json.dumps({"mode": "reference", "claims": claims}))
    per = {f"e{i}": {"seconds": s} for i, s in enumerate(seconds)}
    (folder / "manifest.json").write_text(json.dumps({"mode": "reference", "cpu_count": 2, "cpu": "test cpu",
                                                      "per_experiment": per}))
    return folder


def _ids():
    return [cid for _, _, items in HEADLINES for cid, _ in items]


def test_headline_follows_the_claims_and_counts_findings_apart(tmp_path):
    ids = _ids()
    good = _write_run(tmp_path / "good", {cid: (0.1, 0.3) for cid in ids})
    text = headline_markdown(good)
    assert f"**{len(ids)} of {len(ids)} findings hold**" in text and "1 of 1 exact checks hold" in text
    assert text.count("**holds**, +0.2 [+0.1, +0.3]") == len(ids)
    flipped = {cid: (0.1, 0.3) for cid in ids} | {ids[1]: (-0.3, -0.1), ids[2]: (-0.1, 0.1)}
    text = headline_markdown(_write_run(tmp_path / "flipped", flipped))
    assert f"**{len(ids) - 2} of {len(ids)} findings hold**, 1 are refuted and 1 inconclusive" in text
    assert f"**refuted**, -0.2 [-0.3, -0.1] (claim `{ids[1]}`" in text
    assert f"*inconclusive*, +0 [-0.1, +0.1] (claim `{ids[2]}`" in text
    for word in VERDICT_WORDS:
        assert f"*{word}*:" in text  # the verdict words defined once, where they are used


def test_headline_says_when_a_claim_is_missing(tmp_path):
    d = _write_run(tmp_path / "r", {cid: (0.1, 0.3) for cid in _ids()})
    data = json.loads((d / "merging.json").read_text())
    data["claims"] = []
    (d / "merging.json").write_text(json.dumps(data))
    assert "not in this run (`ae-barrier-below-weight-matching`)" in headline_markdown(d)


def test_run_times_are_the_manifests_sums(tmp_path):
    ids = {cid: (0.1, 0.3) for cid in _ids()}
    q = _write_run(tmp_path / "q", ids, seconds=(600.0, 300.0))
    r = _write_run(tmp_path / "r", ids, seconds=(3000.0, 600.0, 2400.0))
    text = run_times_markdown(q, r)
    assert "the experiments' own times add up to **15 process-minutes** (2 experiments" in text
    assert "the experiments' own times add up to **100 process-minutes** (3 experiments" in text
    assert text.index("`quick`") < text.index("**15 process-minutes**") < text.index("`reference`")


def test_run_times_lead_with_the_measured_wait(tmp_path):
    ids = {cid: (0.1, 0.3) for cid in _ids()}
    q = _write_run(tmp_path / "q", ids, seconds=(600.0, 300.0))
    r = _write_run(tmp_path / "r", ids, seconds=(3000.0,))
    bench = tmp_path / "reproduce_quick.json"
    assert "The wait" not in run_times_markdown(q, r, bench)  # no measurement yet: nothing said
    for wall, verdict in ((1140.0, "met"), (1500.0, "missed")):
        bench.write_text(json.dumps({"command": "scalegmn-lite reproduce --quick --jobs 2", "wall_seconds": wall,
                                     "target_minutes": 20.0, "cpu_count": 2, "cpu": "AMD EPYC",
                                     "date": "2026-12-07T17:00:00+0000"}))
        first = run_times_markdown(q, r, bench).splitlines()[0]
        assert f"took **{wall / 60:.0f} minutes** wall to wall on a 2-core AMD EPYC (2026-12-07, " in first
        assert first.endswith(f"the target is 20 minutes, {verdict}).")
    busy = dict(json.loads(bench.read_text()), load_average_at_start=[1.3, 1.0, 0.8])
    bench.write_text(json.dumps(busy))
    assert "beside other work: load average 1.3 at the start" in run_times_markdown(q, r, bench)
    quiet = dict(busy, load_average_at_start=[0.6, 1.4, 1.9], experiment_seconds_total=2728.2)
    bench.write_text(json.dumps(quiet))
    first = run_times_markdown(q, r, bench).splitlines()[0]
    assert ("a quiet machine: load average 0.6 at the start; its experiments' own times add up to 45 "
            "process-minutes") in first
    assert "beside other work" not in first


def test_flops_table_is_the_benchmark_file(tmp_path):
    """issue 37: the FLOP/s table is generated from bench_flops.py's output, share of peak and ratio included."""
    from scalegmn_lite.course.reference import flops_markdown

    row = {"case": "operator-quick", "flops_per_step_before": 2e8, "flops_per_step_after": 2e8,
           "seconds_per_step_before": 0.05, "seconds_per_step_after": 0.025, "steps_per_second_ratio": 2.0,
           "share_of_peak_before": 0.04, "share_of_peak_after": 0.08, "peak_gflops": 100.0}
    f = tmp_path / "flops.json"
    f.write_text(json.dumps({"command": "python benchmarks/bench_flops.py", "commit": "abcdef1234567",
                             "before": "f018134", "repeats": 2, "date": "2026-12-07T00:00:00+0000", "rows": [row]}))
    text = flops_markdown(f)
    assert "| operator-quick | 0.2 | 50.0 | 25.0 | **2.00x** | 4.0% / 8.0% |" in text
    assert "against `f018134`" in text and "100 GFLOP/s" in text
