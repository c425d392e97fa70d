"""Sentences computed from results, so that a notebook's prose cannot drift from its numbers.

    print(ranking({"scalegmn": iv1, "gmn": iv2}, "Kendall tau", focus="scalegmn", chance=0.0,
                  paired={"gmn": iv_scalegmn_minus_gmn}))

Each value is an :class:`~scalegmn_lite.common.stats.Interval`-like mapping ``{"mean", "ci": [lo, hi]}``.
Where two models were scored on the same test networks and seeds, the interval of their *paired*
difference (the one a claim such as ``scalegmn-beats-gmn-generalization`` is decided on) says more than
whether their separate intervals overlap, and the sentences follow it.
"""

from __future__ import annotations

import textwrap
from typing import Mapping

import numpy as np

from ..common.stats import decide

__all__ = ["ranking", "overlaps", "paired_differences", "gauge_effect", "claims_with_notes", "DIFFERENCE_PREFIX"]

#: the prefix of a task's paired differences in an invariant study's ``differences`` (``tau_a_minus_b``)
DIFFERENCE_PREFIX = {"accuracy-prediction": "tau_", "inr-classification": "inr_acc_"}


def overlaps(a: Mapping, b: Mapping) -> bool:
    """True when the two intervals ``a["ci"]`` and ``b["ci"]`` share a point."""
    return a["ci"][0] <= b["ci"][1] and b["ci"][0] <= a["ci"][1]


def _iv(iv: Mapping, digits: int) -> str:
    return f"{iv['mean']:.{digits}f} [{iv['ci'][0]:.{digits}f}, {iv['ci'][1]:.{digits}f}]"


def _paired_sentence(focus: str, other: str, diff: Mapping, higher_is_better: bool, digits: int,
                     separate_overlap: bool | None) -> str:
    """What the paired difference ``focus minus other`` says: who is ahead, or that the run does not
    resolve it; decided exactly as a claim ``focus minus other > 0`` (``< 0`` when lower is better)."""
    status = decide(diff["ci"], ">" if higher_is_better else "<", 0.0)
    what = f"the paired difference {focus} minus {other} (same test networks and seeds), {_iv(diff, digits)},"
    verdict = (f"puts {focus} ahead, at this budget." if status == "holds" else
               f"puts {other} ahead, at this budget." if status == "refuted" else
               "includes 0: this run does not resolve which of the two is better.")
    if separate_overlap is None:
        return f"Against {other}: {what} {verdict}"
    decided = status != "inconclusive"
    if separate_overlap:
        lead = f"Its interval overlaps {other}'s, {'but' if decided else 'and'} "
    else:
        lead = f"Its interval does not overlap {other}'s, {'and' if decided else 'but'} "
    return lead + f"{what} {verdict}"


def ranking(results: Mapping[str, Mapping], metric: str, focus: str, chance: float | None = None,
            higher_is_better: bool = True, digits: int = 2, paired: Mapping[str, Mapping] | None = None,
            diff_digits: int = 3) -> str:
    """A ranked list of ``results`` (name -> interval) and what it does and does not show about ``focus``:
    its rank, how it compares with the best other model, and its position against ``chance``.

    ``paired``: other model -> interval of the paired difference ``focus minus other`` (the same test
    units and seeds). Where the best other model has one, the comparison is decided on it, as the claim
    ``focus beats other`` is (two separate intervals can overlap while the paired difference excludes 0);
    without it, on whether the separate intervals overlap. Every other model with a paired difference gets
    a sentence too. Differences are printed with ``diff_digits`` decimals."""
    if focus not in results:
        raise KeyError(f"{focus!r} is not among the results {sorted(results)}")
    paired = dict(paired or {})
    order = sorted(results, key=lambda k: results[k]["mean"], reverse=higher_is_better)
    f = f"{{:.{digits}f}}"
    lines = [f"  {i + 1}. {k:<12} {f.format(results[k]['mean'])}  [{f.format(results[k]['ci'][0])}, "
             f"{f.format(results[k]['ci'][1])}]" for i, k in enumerate(order)]
    rank = order.index(focus) + 1
    lines.append(f"{focus} ranks {rank} of {len(order)} on {metric}" + (" (last)." if rank == len(order) and rank > 1
                                                                         else "."))
    best = next(k for k in order if k != focus) if len(order) > 1 else None
    if best is not None:
        if best in paired:
            lines.append(_paired_sentence(focus, best, paired[best], higher_is_better, diff_digits,
                                          overlaps(results[focus], results[best])))
        elif overlaps(results[focus], results[best]):
            lines.append(f"Its interval overlaps {best}'s: this run does not resolve which of the two is better.")
        else:
            better = order.index(best) < order.index(focus)
            lines.append(f"Its interval does not overlap {best}'s: {best if better else focus} is better here, "
                         "at this budget.")
    for other in order:
        if other not in (focus, best) and other in paired:
            lines.append(_paired_sentence(focus, other, paired[other], higher_is_better, diff_digits, None))
    if chance is not None:
        lo, hi = results[focus]["ci"]
        where = "above" if lo > chance else "below" if hi < chance else "not distinguishable from"
        lines.append(f"Chance level is {f.format(chance)}: {focus} is {where} chance.")
    return "\n".join(lines)


def paired_differences(study: Mapping, task: str, focus: str = "scalegmn") -> dict[str, dict]:
    """other model -> interval of ``focus minus other`` on ``task``, from an invariant study's
    ``differences`` (the intervals its ``scalegmn-beats-*`` claims are decided on); floor models included
    where stored."""
    prefix = f"{DIFFERENCE_PREFIX[task]}{focus}_minus_"
    return {k[len(prefix):]: v for k, v in (study.get("differences") or {}).items() if k.startswith(prefix)}


def gauge_effect(runs, task: str, gauge_test: Mapping | None = None, tol: float = 1e-3,
                 digits: int = 3) -> tuple[str, dict[str, bool]]:
    """(sentence, {baseline: its score drops}) for the gauge test of one task: does each baseline (every
    model not named ``scalegmn*``) score lower on gauge-transformed test networks than on the originals?

    ``runs``: the study's per-seed runs (a DataFrame or a list of dicts with ``task, model, seed,
    test_score, test_score_gauge``). Where ``gauge_test[task][model]`` holds ``drop_under_gauge`` (the
    paired interval of original minus transformed score, the one the claim ``gauge-test-moves-baselines``
    uses) a baseline drops when that interval lies above 0; otherwise (a result file without per-network
    predictions on the transformed networks) when it scores lower by more than ``tol`` on every seed."""
    import pandas as pd

    runs = pd.DataFrame(runs)
    here = runs[runs.task == task]
    stored = (gauge_test or {}).get(task) or {}
    parts, drops, with_iv = [], {}, []
    for m in [m for m in here.model.unique() if not m.startswith("scalegmn")]:
        iv = (stored.get(m) or {}).get("drop_under_gauge")
        if iv is not None and all(np.isfinite(float(v)) for v in iv["ci"]):
            drops[m] = decide(iv["ci"], ">", 0.0) == "holds"
            with_iv.append(m)
            parts.append(f"{m} {_iv(iv, digits)}")
            continue
        r = here[here.model == m].sort_values("seed")
        d = (r.test_score - r.test_score_gauge).to_numpy()
        drops[m] = bool((d > tol).all())
        parts.append(f"{m} loses {d.mean():.{digits}f} (lower on every seed)" if drops[m] else
                     f"{m} changes by " + ", ".join(f"{-x + 0.0:+.{digits}f}" for x in d) + " (per seed)")
    moved = [m for m, v in drops.items() if v]
    rest = [m for m in drops if m not in moved]
    clearly = " clearly" if with_iv else ""
    head = ("every baseline's score drops" if len(moved) == len(drops) else
            f"no baseline's score{clearly} drops" if not moved else
            f"{', '.join(moved)} drop{'s' if len(moved) == 1 else ''}, {', '.join(rest)} "
            f"do{'es' if len(rest) == 1 else ''} not{clearly}")
    how = " (original minus gauge-transformed score, 95% interval)" if with_iv else ""
    return f"{head}{how}: " + "; ".join(parts), drops


def claims_with_notes(result: Mapping, digits: int = 3, width: int = 110) -> str:
    """The claims table of a result for reading (:func:`~scalegmn_lite.course.reference.claims_table`): a
    claim without an interval says so, and a claim over several comparisons (its measured figures a dict
    with ``interval_of``) names in the measured column the comparison its interval belongs to, with a
    footnote listing the others; the status of such a claim (all must hold) is decided by that one."""
    from .reference import claims_table

    tab = claims_table(result, digits)
    col = "measured [95% interval]"
    tab.loc[tab[col] == "see REPORT.md", col] = "no interval (not measured)"
    notes = []
    for c in result["claims"]:
        m = c.get("measured")
        if not (isinstance(m, dict) and m.get("interval_of") in m):
            continue
        key = m["interval_of"]
        tab.loc[tab.claim == c["id"], col] += f" ({key})"
        others = ", ".join(f"{k} {v:.{digits}f}" for k, v in m.items() if k not in ("interval_of", key))
        notes.append(textwrap.fill(f"({key}): {c['id']} holds only if every one of its {len(m) - 1} comparisons "
                                   f"does; the interval shown is the one that decides its status, {key}'s. The "
                                   f"others (means): {others}.", width, break_on_hyphens=False))
    return tab.to_string(index=False) + ("\n\n" + "\n".join(notes) if notes else "")
