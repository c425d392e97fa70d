"""The committed reference run (``results/reference/``, written by ``scalegmn-lite reproduce
--reference``) for the notebooks: "with more compute you get this", next to each quick figure.

    ref = load_reference("amortized")          # None (with a printed reason) if there is no run
    claims_frame(ref)                          # id, mean, 95% interval, seeds, status
    invariant_intervals(load_reference("invariant"))   # task -> model -> interval

The files are validated against the claim schema on load (:func:`~scalegmn_lite.common.claims.validate_claim`),
so a damaged or hand-edited file fails with its name instead of showing wrong figures.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..common.claims import validate_claim
from ..common.io import result_files

__all__ = ["reference_dir", "load_reference", "manifest", "claims_frame", "invariant_intervals", "describe_run",
           "summary_markdown", "zoo_table_markdown", "result_files", "plain_words_markdown", "benchmark_markdown",
           "verdict_changes_markdown", "claim_interval"]


def reference_dir() -> Path | None:
    """``results/reference`` of the checkout (``SCALEGMN_LITE_REFERENCE`` overrides), or None."""
    env = os.environ.get("SCALEGMN_LITE_REFERENCE")
    cands = [Path(env)] if env else []
    cands += [Path(__file__).resolve().parents[2] / "results" / "reference"]
    cands += [p / "results" / "reference" for p in (Path.cwd(), *Path.cwd().parents)]
    return next((p for p in cands if (p / "manifest.json").is_file()), None)


def load_reference(name: str, quiet: bool = False) -> dict | None:
    """The reference run's ``<name>.json`` (claims validated), or None with a printed reason."""
    d = reference_dir()
    path = d / f"{name}.json" if d else None
    if path is None or not path.is_file():
        if not quiet:
            print(f"no committed reference result {name}.json (looked for results/reference/ in the checkout); "
                  "run `scalegmn-lite reproduce --reference --jobs 2 --out results/reference` to make one")
        return None
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc}); restore it with `git checkout {path}`") from None
    if data.get("mode") != "reference":
        raise ValueError(f"{path}: mode is {data.get('mode')!r}, not 'reference'; it was not written by "
                         "`reproduce --reference`")
    for c in data.get("claims", []):
        validate_claim(c, f"{path.name} claim {c.get('id')}")
    return data


def manifest() -> dict | None:
    d = reference_dir()
    return json.loads((d / "manifest.json").read_text()) if d else None


def recomputed_since(experiment: str, m: dict | None = None) -> list[str]:
    """Dates (``YYYY-MM-DD``) on which ``experiment``'s committed claims were recomputed from its stored
    figures (``tools/recompute_claims.py``) *after* that part ran; a rerun since makes older records moot."""
    m = manifest() if m is None else m
    part = ((m or {}).get("per_experiment") or {}).get(experiment) or {}
    return [str(r["date"])[:10] for r in (m or {}).get("recomputed") or []
            if experiment in r.get("experiments", []) and str(r.get("date", "")) > str(part.get("finished") or "")]


def describe_run(experiment: str | None = None) -> str:
    """One line: when, on what, how long, at which commit. With ``experiment``, the line of that part of
    the run only (when it finished, its own minutes; the commit that produced it is in the manifest, not in
    the course's prose), so a notebook's footnote does not change when another experiment is rerun."""
    m = manifest()
    if m is None:
        return "no committed reference run"
    if experiment is not None:
        part = (m.get("per_experiment") or {}).get(experiment)
        if part is None:
            return f"the reference run's manifest has no part {experiment!r}"
        when = (part.get("finished") or m["started"])[:10]
        again = ("; claims recomputed since from the stored figures, without retraining"
                 if recomputed_since(experiment, m) else "")
        return (f"reference {experiment} results: finished {when}, {part['seconds'] / 60:.0f} process-minutes on "
                f"{m['cpu_count']} CPU cores ({m['cpu']}), torch {m['versions']['torch']}{again} (which commit "
                "produced it: results/reference/manifest.json)")
    return (f"reference run of {m['started'][:10]} at commit {m['commit'][:10]}: {_timing(m)}, on "
            f"{m['cpu_count']} CPU cores ({m['cpu']}), torch {m['versions']['torch']}")


def claims_frame(result: dict):
    """The claims of one result as a DataFrame: id, measured (the number the interval belongs to), lo, hi,
    seeds, status, and (when any claim of the result is marked) whose claim it is: ``"paper"`` for a
    source paper's claim, ``"course"`` for this course's own check."""
    import pandas as pd

    rows = []
    marked = any(c.get("source") for c in result["claims"])
    for c in result["claims"]:
        ci = c.get("ci") or [None, None]
        row = {"claim": c["id"], "measured": _mean_of(c), "lo": ci[0], "hi": ci[1], "seeds": c.get("seeds"),
               "status": c["status"]}
        if marked:
            src = c.get("source")
            row["whose"] = "" if src is None else ("course" if src == "course" else "paper")
        rows.append(row)
    return pd.DataFrame(rows)


def readable_number(v: float | None, digits: int = 3) -> str:
    """``v`` for a reader: rounded to ``digits`` decimals, never in e-notation; a nonzero value too
    small to show reads ``< 0.001`` (for ``digits=3``); ``None`` or NaN reads as an empty string."""
    if v is None or not np.isfinite(v):
        return ""
    tiny = 10.0 ** -digits
    if v != 0 and abs(v) < tiny:
        return f"{'-' if v < 0 else ''}< {tiny:.{digits}f}" if v > 0 else f"> -{tiny:.{digits}f}"
    return f"{v:.{digits}f}"


def claims_table(result: dict, digits: int = 3):
    """:func:`claims_frame` for reading: claim, whose (when marked), status and one column "measured
    [95% interval]" with rounded numbers (no e-notation, no NaN: an exact claim shows its value
    alone, a claim measured per zoo or setting lists them)."""
    import pandas as pd

    cf = claims_frame(result)
    cells = []
    for row, c in zip(cf.itertuples(), result["claims"]):
        m = readable_number(row.measured, digits)
        if m and row.lo is not None and row.lo == row.lo:
            m += f" [{readable_number(row.lo, digits)}, {readable_number(row.hi, digits)}]"
        if not m and isinstance(c["measured"], dict):  # per zoo / per setting figures
            m = ", ".join(f"{k} {readable_number(v, digits) if isinstance(v, float) else v}"
                          for k, v in c["measured"].items() if k != "interval_of")
        cells.append(m or "see REPORT.md")
    cols = {"claim": cf["claim"]}
    if "whose" in cf:
        cols["whose"] = cf["whose"]
    cols.update({"status": cf["status"], "measured [95% interval]": cells})
    return pd.DataFrame(cols)


def invariant_intervals(result: dict, n_boot: int = 1000) -> dict[str, dict[str, dict]]:
    """task -> model -> 95% interval of the test score (Kendall tau or accuracy), from the reference
    run's per-network test predictions (clustered bootstrap over independent test units, the file's
    ``test_groups``: a network with all its checkpoints, an image with all its INRs, and seeds)."""
    from ..experiments.invariant import score_interval

    preds: dict[tuple[str, str], list[tuple[int, list]]] = {}
    for key, p in result["test_predictions"].items():
        task, model, seed = key.split("/")
        preds.setdefault((task, model), []).append((int(seed[1:]), p))
    out: dict[str, dict[str, dict]] = {}
    for (task, model), runs in preds.items():
        y = np.asarray(result["test_targets"][task], dtype=np.float64)
        p = np.array([v for _, v in sorted(runs)], dtype=np.float64)
        kind = "regression" if task == "accuracy-prediction" else "classification"
        groups = (result.get("test_groups") or {}).get(task)
        out.setdefault(task, {})[model] = score_interval(kind, y, p, n_boot=n_boot, groups=groups)
    return out


def _mean_of(c: dict) -> float | None:
    """The number a claim's interval belongs to: the measured value, or for a claim whose measured
    field is a dict, the entry its interval was computed for (``interval_of`` names it, or the slope,
    or the only entry inside the interval; None when that is ambiguous)."""
    m = c["measured"]
    if isinstance(m, bool) or not isinstance(m, (int, float, dict)):
        return None
    if not isinstance(m, dict):
        return float(m)
    for key in (m.get("interval_of"), "slope", "l1_reduction_diff"):
        if key in m and isinstance(m[key], (int, float)):
            return float(m[key])
    if not c.get("ci"):  # a dict of exact figures (per zoo, per activation): no single number
        return None
    # no key names the interval's figure (results files sort their keys, so "the first entry" means
    # nothing): the one entry that lies inside the interval, or none when that is ambiguous
    lo, hi = (float(v) for v in c["ci"])  # a NaN bound is stored as the string "nan"
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return None
    inside = [float(v) for v in m.values() if isinstance(v, (int, float)) and not isinstance(v, bool)
              and lo <= v <= hi]
    return inside[0] if len(inside) == 1 else None


def _fmt(c: dict) -> str:
    m, mean = c["measured"], _mean_of(c)
    zoo = f" ({m['interval_of']})" if isinstance(m, dict) and "interval_of" in m else ""
    if c.get("ci") and not all(np.isfinite(float(v)) for v in c["ci"]):
        return "no interval: see REPORT.md"
    if c.get("ci") and mean is not None:
        return f"{mean:+.3g} [{float(c['ci'][0]):+.3g}, {float(c['ci'][1]):+.3g}]{zoo}"
    if mean is not None and not isinstance(m, dict):
        return f"{mean:.3g}"
    return "see REPORT.md"


def _load_dir(d: Path) -> dict[str, dict]:
    out = {}
    for p in result_files(d):
        data = json.loads(p.read_text())
        for c in data.get("claims", []):
            validate_claim(c, f"{p} claim {c.get('id')}")
        out[p.stem] = data
    return out


def _timing(m: dict) -> str:
    """Wall time of a run; for a resumed one, what was reused from which commit and what ran again."""
    if not m.get("resumed"):
        return f"{m['wall_seconds'] / 60:.0f} min wall, {m.get('jobs', 1)} process(es)"
    per = m.get("per_experiment", {})
    first = m.get("first_invocation") or {}
    fresh = sorted(n for n, v in per.items() if not v.get("reused"))
    by_commit: dict[str, list[str]] = {}
    for n, v in sorted(per.items()):
        if v.get("reused"):
            commit = ((v.get("source") or {}).get("commit") or first.get("commit") or "unrecorded")[:10]
            by_commit.setdefault(commit, []).append(n)
    span = ""
    if first.get("started") and first.get("ended"):
        span = f"; the first invocation ran {first['started'][11:16]}-{first['ended'][11:16]} UTC"
    reused = "; ".join(f"{', '.join(ns)} at commit {c}" for c, ns in by_commit.items())
    return (f"resumed: {reused} reused, {', '.join(fresh) or 'nothing'} run again{span}; the experiments' own "
            f"times add up to {m.get('experiment_seconds_total', 0) / 60:.0f} process-minutes over "
            f"{m.get('jobs', 1)} process(es)")


def _records(m: dict) -> str:
    """What was done to a run's files after it ran: claims recomputed (``tools/recompute_claims.py``) and
    reruns adopted from a worktree (``tools/adopt_run.py``), by commit."""
    events = []
    for key, what in (("recomputed", "claims recomputed from the stored figures"), ("adopted", "rerun adopted")):
        for r in m.get(key) or []:
            events.append((str(r.get("date", "")), f"{', '.join(r.get('experiments', []))}: {what} at commit "
                                                   f"{str(r.get('commit') or r.get('from_commit') or '?')[:10]}"))
    parts = [text for _, text in sorted(events, key=lambda e: e[0])]  # in the order they happened
    return f" Since: {'; '.join(parts)}." if parts else ""


def summary_markdown(reference: str | Path, quick: str | Path | None = None,
                     order: tuple[str, ...] = ("gauge", "zoo", "invariant", "amortized", "gscale", "merging",
                                               "residual", "distributed")) -> str:
    """A markdown table of every trained claim (those with an interval): the quick run's and the
    reference run's mean, 95% interval and status side by side, plus one line per run (commit, wall
    time, CPU) and the counts of findings and of exact checks that hold, apart
    (:func:`~scalegmn_lite.common.claims.count_claims`). Exact checks are counted, not listed.
    Used for the README block and the site's landing page (never typed by hand)."""
    reference = Path(reference)
    runs = {"reference": _load_dir(reference)}
    mans = {"reference": json.loads((reference / "manifest.json").read_text())}
    if quick is not None and (Path(quick) / "manifest.json").is_file():
        runs["quick"] = _load_dir(Path(quick))
        mans["quick"] = json.loads((Path(quick) / "manifest.json").read_text())
    cols = [k for k in ("quick", "reference") if k in runs]
    lines = []
    for k in cols:
        m, res = mans[k], runs[k]
        from ..common.claims import count_claims

        n = count_claims([c for r in res.values() for c in r["claims"]])
        f, ch = n["finding"], n["check"]
        lines.append(f"- **{k}** (`{m['command']}`, commit `{m['commit'][:10]}`, {m['started'][:10]}, "
                     f"{_timing(m)} on {m['cpu_count']} CPU cores): **{f['holds']} of {f['total']} findings hold**, "
                     f"{f['refuted']} refuted, {f['inconclusive']} inconclusive; {ch['holds']} of {ch['total']} exact "
                     "checks hold." + _records(m))
    head = " | ".join(f"{k}: mean [95% interval], status" for k in cols)
    lines += ["", f"| experiment | trained claim | {head} |", "|---|---|" + "---|" * len(cols)]
    shown = {"holds": "holds", "refuted": "**refuted**", "inconclusive": "*inconclusive*"}
    names = [n for n in order if n in runs["reference"]] + [n for n in runs["reference"] if n not in order]
    for name in names:
        ids = [c["id"] for c in runs["reference"][name]["claims"] if c.get("ci")]
        for cid in ids:
            cells = []
            for k in cols:
                c = next((c for c in runs[k].get(name, {}).get("claims", []) if c["id"] == cid), None)
                cells.append(f"{_fmt(c)}, {shown.get(c['status'], c['status'])}" if c else "not run")
            lines.append(f"| {name} | `{cid}` | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def zoo_table_markdown(reference: str | Path, quick: str | Path | None = None) -> str:
    """A markdown table of the named zoos from the ``zoo`` experiment's files (and the ``residual`` study's, which
    builds the residual zoos and reports them the same way, :func:`~scalegmn_lite.experiments.zoo.zoo_row`): what each
    is for, its networks at quick and reference size, checkpoints, final-accuracy quantiles, build seconds on one
    core, size on disk and the time to load it with every hash verified (never typed by hand). What a zoo
    is used by is a fact of the code, not of a run: it comes from
    :data:`~scalegmn_lite.zoo.recipes.USED_BY` (the files' ``used_by`` where the code has no entry)."""
    from ..zoo.recipes import USED_BY

    def rows(folder) -> dict:
        """The zoo experiment's rows, plus those of the zoos the residual study builds (its ``zoo_table``)."""
        out = {}
        for name in ("residual", "zoo"):
            path = Path(folder) / f"{name}.json"
            if path.is_file():
                d = json.loads(path.read_text())
                out.update(d["zoos"] if name == "zoo" else d.get("zoo_table", {}))
        return out

    ref = rows(reference)
    qz = rows(quick) if quick is not None else {}

    def secs(z):
        if z is None:  # not built by that run
            return "-"
        v = z.get("seconds_build")
        return "cached" if v is None else f"{v:.0f}"

    lines = ["| zoo | used by | networks quick / reference | checkpoints (reference) | final metric 10/50/90% "
             "(reference) | build s quick / reference (1 core) | MiB, load + verify s (reference) |",
             "|---|---|---|---|---|---|---|"]
    order = sorted(ref, key=lambda n: (not ref[n].get("trained_on", False), n))
    for name in order:
        z, q = ref[name], qz.get(name)
        qs = z["quantiles_0_10_25_50_75_90_100"]
        metric = "PSNR dB" if z["metric"] == "psnr" else "test acc"
        fmt = (lambda v: f"{v:.1f}") if z["metric"] == "psnr" else (lambda v: f"{v:.2f}")
        views = f" ({z['images']} images x {z['views']} views)" if "views" in z else ""
        used = USED_BY.get(name, z.get("used_by", ""))
        lines.append(
            f"| `{name}`{' **(trained on)**' if z.get('trained_on') else ''} | {used} | "
            f"{q['networks'] if q else '-'} / {z['networks']}{views} | {len(z['checkpoints'])}: "
            f"{', '.join(map(str, z['checkpoints']))} | {metric} {fmt(qs[1])} / {fmt(qs[3])} / {fmt(qs[5])} | "
            f"{secs(q)} / {secs(z)} | {z.get('megabytes', float('nan')):.0f}, "
            f"{z.get('seconds_load_verified', 0):.1f} |")
    return "\n".join(lines) + "\n"


#: how each experiment is introduced in the plain-words block (the figures come from the files)
_PLAIN_HEADINGS = {
    "invariant": "ScaleGMN's invariant tasks (accuracy prediction, INR classification)",
    "amortized": "One-shot optimizers (*Symmetry-Aware Fully-Amortized Optimization with Scale Equivariant "
                 "Graph Metanetworks*)",
    "gscale": "That paper's open question: does the gain grow with the scaling gauge's dimension?",
    "merging": "Merging in a canonical gauge (*Symmetry-Aware Graph Metanetwork Autoencoders*)",
    "residual": "Beyond MLP and CNN: accuracy prediction on residual and normalized networks (notebook 09)",
    "zoo": "The model zoos",
    "gauge": "Gauge groups",
    "distributed": "Scale-out",
}
#: the one verdict vocabulary of the course (README, results/README.md, notebooks): defined once in
#: :data:`VERDICT_WORDS`
_VERDICT = {"holds": "**holds**", "refuted": "**refuted**", "inconclusive": "*inconclusive*"}
VERDICT_WORDS = {
    "holds": "the 95% interval lies wholly on the claimed side of the claim's threshold (a figure measured exactly, "
             "without an interval, counts as its own interval)",
    "refuted": "the interval (or the exact figure) lies wholly on the other side",
    "inconclusive": "the interval straddles the threshold (or a figure it needs was not measured)",
}


def plain_words_markdown(reference: str | Path,
                         order: tuple[str, ...] = ("invariant", "amortized", "gscale", "merging", "residual", "zoo")
                         ) -> str:
    """The reference run's findings in plain words, one line per finding: its verdict, its statement
    and its figure with the 95% interval, generated from the result files (so the README never types
    a number); exact checks are counted per experiment, not listed."""
    from ..common.claims import count_claims

    runs = _load_dir(Path(reference))
    lines = []
    for name in [n for n in order if n in runs] + [n for n in runs if n not in order]:
        claims = runs[name]["claims"]
        n = count_claims(claims)
        findings = [c for c in claims if (c.get("kind") or "finding") == "finding"]
        head = _PLAIN_HEADINGS.get(name, name)
        f, k = n["finding"], n["check"]
        checks = f"; {k['holds']} of {k['total']} exact checks hold" if k["total"] else ""
        lines.append(f"- **{head}**: {f['holds']} of {f['total']} findings hold{checks}.")
        lines += ["  " + line for line in findings_lines(findings)]
    return "\n".join(lines) + "\n"


def findings_lines(claims: list[dict]) -> list[str]:
    """One markdown bullet per claim: its verdict in words, its statement and its figure with the 95% interval."""
    out = []
    for c in claims:
        fig = _fmt(c)
        fig = "" if fig == "see REPORT.md" else f" ({fig})"
        out.append(f"- {_VERDICT[c['status']]}: {c['statement']}{fig}.")
    return out


def benchmark_markdown(path: str | Path) -> str:
    """A markdown table of a committed benchmark output (``benchmarks/results/*.json``, written by the
    benchmark's ``--out``): every row's rates before and after and their ratio, measured in one run, with
    the machine and date it ran on (never typed by hand)."""
    d = json.loads(Path(path).read_text())
    lines = [f"Measured by `{d['command']}` on {d['cores']} cores ({d.get('cpu', 'CPU')}), {d['date'][:10]}, "
             f"commit `{d['commit'][:10]}` against `{d['before']}`; median of {d['repeats']} interleaved rounds.", "",
             "| trainer | measurement | before /s | after /s | ratio | workers | final loss before / after |",
             "|---|---|---|---|---|---|---|"]
    for r in d["rows"]:
        lines.append(f"| {r['trainer']} | {r['measurement']} ({r['unit']}) | {r['before']:.3g} | {r['after']:.3g} | "
                     f"**{r['ratio']:.2f}x** | {r['workers']} | {r['loss_before']:.4g} / {r['loss_after']:.4g} |")
    return "\n".join(lines) + "\n"


def flops_markdown(path: str | Path) -> str:
    """A markdown table of ``benchmarks/bench_flops.py``'s committed output: per trainer and size, FLOPs and time per
    step before and after, the steps-per-second ratio and the share of the core's dense-matmul rate (never typed by
    hand)."""
    d = json.loads(Path(path).read_text())
    peak = d["rows"][0]["peak_gflops"]
    lines = [f"Measured by `{d['command']}` on one thread, {d['date'][:10]}, commit `{d['commit'][:10]}` against "
             f"`{d['before']}`; median of {d['repeats']} rounds; the core's dense float32 matmul: {peak:.0f} GFLOP/s.",
             "", "| trainer, size | GFLOP/step | ms/step before | ms/step after | steps/s ratio | share of peak "
             "before / after |", "|---|---|---|---|---|---|"]
    for r in d["rows"]:
        before, after = r["seconds_per_step_before"] * 1e3, r["seconds_per_step_after"] * 1e3
        lines.append(f"| {r['case']} | {r['flops_per_step_after'] / 1e9:.3g} | {before:.1f} | {after:.1f} | "
                     f"**{r['steps_per_second_ratio']:.2f}x** | {r['share_of_peak_before']:.1%} / "
                     f"{r['share_of_peak_after']:.1%} |")
    return "\n".join(lines) + "\n"


def verdict_changes_markdown(path: str | Path, run: str = "reference", findings_only: bool = True,
                             experiment: str | None = None, before_label: str | None = None) -> str:
    """A markdown table of the claims of ``run`` whose verdict or interval changed, from the committed
    ``results/verdict_changes.json`` (``tools/compare_verdicts.py``): old and new status and interval
    ("(no interval)" where a figure it needs was not stored), flips in bold, new claims marked new (never
    typed by hand). ``before_label``: the header of the old column (default: how the old verdicts were
    judged, in words; pass ``f"before (`{commit}`)"`` where provenance is the point, as results/README.md)."""
    d = json.loads(Path(path).read_text())

    def ci(v):
        if not v:
            return "exact"
        if not all(np.isfinite(float(x)) for x in v):
            return "(no interval)"
        return f"[{float(v[0]):+.3g}, {float(v[1]):+.3g}]"

    head = before_label or "before (row intervals, no controls)"
    lines = [f"| experiment | claim | {head} | now |", "|---|---|---|---|"]
    for r in d["rows"]:
        if r["run"] != run or (findings_only and r["kind"] == "check"):
            continue
        if experiment and r["experiment"] != experiment:
            continue
        old = "new claim" if r["old_status"] is None else f"{r['old_status']} {ci(r['old_ci'])}"
        new = "removed" if r["new_status"] is None else f"{r['new_status']} {ci(r['new_ci'])}"
        if r["flipped"]:
            new = f"**{new}**"
        if old == new:
            continue
        lines.append(f"| {r['experiment']} | `{r['id']}` | {old} | {new} |")
    return "\n".join(lines) + "\n"


def claim_interval(c: dict) -> dict:
    """``{"mean", "ci"}`` of a stored claim: the figure its interval belongs to (see :func:`_mean_of`) and
    the interval, for narrating a claim like any other interval."""
    m = _mean_of(c)
    return {"mean": float("nan") if m is None else m, "ci": c.get("ci") or [float("nan"), float("nan")]}


#: the README's headline findings: (question, experiment, ((claim id, what its figure measures), ...)); the
#: words name the question and the quantity, never the answer, which comes from the claims' statuses and intervals
HEADLINES = (
    ("Can a metanetwork read what a network encodes from its weights?", "invariant",
     (("inr-classification-learns", "accuracy classifying INRs of digit images it never saw (chance 0.1)"),)),
    ("Does one forward pass of the operator improve networks it never saw, and by more than copying a "
     "training network?", "amortized",
     (("operator-gain-cnn", "test-accuracy gain on held-out CNNs (fraction of test images)"),
      ("operator-beats-memorization", "held-out accuracy after the operator minus the best copying control's"))),
    ("Does merging through the autoencoder's canonical gauge beat weight matching and the do-nothing "
     "controls?", "merging",
     (("ae-barrier-below-weight-matching",
       "barrier of the canonical path (decode both networks, interpolate) minus weight matching's"),)),
)


def _claim_words(c: dict) -> str:
    m = _mean_of(c)
    ci = c.get("ci")
    if m is None or not ci or not all(np.isfinite(float(v)) for v in ci):
        return f"{_VERDICT[c['status']]}, no interval (see `REPORT.md`)"
    return f"{_VERDICT[c['status']]}, {m:+.3g} [{float(ci[0]):+.3g}, {float(ci[1]):+.3g}]"


def headline_markdown(reference: str | Path, headlines=HEADLINES) -> str:
    """Three questions the reference run answers, in plain words for the README's newcomer: per claim what
    its figure measures, its verdict, mean and 95% interval and the claim's threshold, generated from the
    result files (the full statements, controls included, are in results/README.md); then the run's counts
    of findings and exact checks, and the verdict words defined once. Nothing is typed: a claim that flips
    changes the words."""
    from ..common.claims import count_claims

    runs = _load_dir(Path(reference))
    n = count_claims([c for r in runs.values() for c in r["claims"]])
    f, k = n["finding"], n["check"]
    lines = [f"The reference run (`results/reference`): **{f['holds']} of {f['total']} findings hold**, "
             f"{f['refuted']} are refuted and {f['inconclusive']} inconclusive; {k['holds']} of {k['total']} exact "
             "checks hold. Three questions it answers:", ""]
    for question, exp, items in headlines:
        claims = {c["id"]: c for c in runs.get(exp, {}).get("claims", [])}
        lines.append(f"- **{question}**")
        for cid, what in items:
            c = claims.get(cid)
            if c is None:
                lines.append(f"  - {what}: not in this run (`{cid}`).")
                continue
            lines.append(f"  - {what}: {_claim_words(c)} (claim `{cid}`: {c.get('target', '')}).")
    words = "; ".join(f"*{w}*: {d}" for w, d in VERDICT_WORDS.items())
    lines += ["", f"Verdicts: {words}."]
    return "\n".join(lines) + "\n"


def run_times_markdown(quick: str | Path, reference: str | Path, measured: str | Path | None = None) -> str:
    """What the committed runs cost, from their manifests: per run, the experiments' own seconds (zoo
    builds included) summed, in process-minutes, and the CPU they ran on. One sentence per run. With
    ``measured`` (the output of ``benchmarks/bench_reproduce.py``, when it exists), first the wall time a
    newcomer waits: the quick command on an empty cache, timed wall to wall."""
    out = []
    if measured is not None and Path(measured).is_file():
        b = json.loads(Path(measured).read_text())
        minutes, target = float(b["wall_seconds"]) / 60, float(b.get("target_minutes", 20))
        load = (b.get("load_average_at_start") or [0.0])[0]
        # a 1-minute load of a full core or more means another job shared the machine
        busy = (f", beside other work: load average {load:.1f} at the start, so a quiet machine is faster"
                if load >= 1.0 else f", a quiet machine: load average {load:.1f} at the start")
        own = b.get("process_seconds_total", b.get("experiment_seconds_total"))
        own = (f"; its experiments' own times{' and zoo builds' if b.get('zoo_build_seconds') else ''} add up to "
               f"{float(own) / 60:.0f} process-minutes" if own else "")
        out.append(f"- **The wait**: `{b['command']}` on an empty cache took **{minutes:.0f} minutes** wall to wall "
                   f"on a {b.get('cpu_count')}-core {b.get('cpu')} ({b['date'][:10]}{busy}{own}, "
                   f"`benchmarks/bench_reproduce.py`; the target is {target:.0f} minutes, "
                   f"{'met' if minutes <= target else 'missed'}).")
    for name, d in (("quick", Path(quick)), ("reference", Path(reference))):
        m = json.loads((d / "manifest.json").read_text())
        per = m.get("per_experiment") or {}
        total = (sum(float(v.get("seconds") or 0.0) for v in per.values())
                 + float(m.get("zoo_build_seconds_total") or 0.0))  # zoos built ahead of the experiments
        first = min((str(v.get("finished", ""))[:10] for v in per.values() if v.get("finished")), default="")
        last = max((str(v.get("finished", ""))[:10] for v in per.values() if v.get("finished")), default="")
        when = f", finished {first}" + (f" to {last}" if last != first else "") if first else ""
        out.append(f"- `{name}` (the committed results' own runs{when}): the experiments' own times add up to "
                   f"**{total / 60:.0f} process-minutes** ({len(per)} experiments, zoo builds included, on a "
                   f"{m.get('cpu_count')}-core {m.get('cpu')}, not always on a quiet machine; `--jobs 2` runs two at "
                   f"a time, so the wall time is shorter).")
    return "\n".join(out) + "\n"
