"""Re-judge a stored result without retraining (issue 33): rebuild every interval and claim of an
``amortized.json`` (:func:`recompute_result`) or a ``gscale.json`` (:func:`recompute_gscale_result`)
from the per-network figures stored in it, with today's bootstrap
(:func:`~scalegmn_lite.common.stats.bootstrap_mean`, clustered by ``counts[setting]["test_clusters"]``)
and today's claim definitions (:func:`~scalegmn_lite.tasks.amortized.study.compute_claims`,
:func:`~scalegmn_lite.tasks.amortized.gscale.sweep_claims`).

Nothing is invented: a figure an older file does not hold (the memorization controls, the per-network
accuracies of an old sweep) is reported under ``"recomputed"]["missing"]`` and the claims that need it
come out inconclusive, saying so in their statement.

Usage::

    import json
    from scalegmn_lite.tasks.amortized.recompute import recompute_result
    new = recompute_result(json.load(open("results/reference/amortized.json")))
    [(c["id"], c["status"]) for c in new["claims"]]
"""

from __future__ import annotations

import copy
from dataclasses import fields

import numpy as np
import pandas as pd

from ...common.claims import interval_claim
from .protocol import Setting, StudyConfig

__all__ = ["study_result_from_json", "recompute_result", "recompute_gscale_result"]

_TUPLES = {f.name for f in fields(StudyConfig) if "tuple" in str(f.type)}


def _config(d: dict) -> StudyConfig:
    names = {f.name for f in fields(StudyConfig)}
    kw = {k: (tuple(v) if k in _TUPLES and isinstance(v, list) else v) for k, v in d.items()
          if k in names and k != "settings"}
    sfields = {f.name for f in fields(Setting)}
    settings = tuple(Setting(**{k: (tuple(v) if k == "kinds" else v) for k, v in s.items() if k in sfields})
                     for s in d.get("settings", []))
    return StudyConfig(**kw, settings=settings)


def _arrays(d):
    if isinstance(d, dict):
        return {k: _arrays(v) for k, v in d.items()}
    return np.asarray(d, dtype=np.float64)


def _table(result: dict) -> pd.DataFrame:
    """The stored table with the one-at-a-time seconds taken from ``accuracy_vs_time`` where it holds
    them (the table rounds them to 5 decimals)."""
    table = pd.DataFrame(result.get("table") or [])
    if table.empty or "seconds_per_network_single" not in table:
        return table
    table = table.copy()
    table["seconds_per_network_single"] = table["seconds_per_network_single"].astype(object)
    for setting, tm in (result.get("accuracy_vs_time") or {}).items():
        for kind, rec in (tm.get("operators") or {}).items():
            sel = (table.setting == setting) & (table.method == kind)
            if rec.get("seconds_single") is not None:
                table.loc[sel, "seconds_per_network_single"] = float(rec["seconds_single"])
        for opt in ("sgd", "adam"):
            for rec in tm.get(opt) or []:
                sel = (table.setting == setting) & (table.method == f"{opt}-{rec['epochs']}")
                if rec.get("seconds_single") is not None:
                    table.loc[sel, "seconds_per_network_single"] = float(rec["seconds_single"])
    return table


def study_result_from_json(result: dict):
    """A :class:`~scalegmn_lite.tasks.amortized.study.StudyResult` holding what ``compute_claims`` reads,
    rebuilt from a stored ``amortized.json`` (no weights, no operators)."""
    from .study import StudyResult

    cfg = _config(result["config"])
    per = _arrays(result.get("per_network") or {})
    memo = {s: {c: {"acc": np.asarray(v.get("per_network", []), dtype=np.float64), "detail": v.get("detail", {})}
                for c, v in m.items()}
            for s, m in (result.get("memorization") or {}).items()}
    return StudyResult(cfg, _table(result), pd.DataFrame(result.get("training") or []), {}, result.get("transfer", []),
                       copy.deepcopy(result.get("counts") or {}), {}, {}, float(result.get("seconds", 0.0)), per,
                       result.get("accuracy_vs_time") or {}, result.get("adam_tuning") or {},
                       result.get("diagnostics") or {}, memo)


def _claims_json(claims, old: list | None) -> list[dict]:
    sources = {c.get("id"): c.get("source") for c in old or [] if isinstance(c, dict)}
    out = []
    for c in claims:
        if sources.get(c.id):
            c = c.marked(sources[c.id])
        out.append(c.to_dict())
    return out


def recompute_result(result: dict) -> dict:
    """A copy of a stored ``amortized.json`` whose ``intervals``, ``memorization`` intervals and
    ``claims`` are rebuilt from its ``per_network`` figures (and ``memorization`` per-network figures,
    ``diagnostics``, ``accuracy_vs_time``) with today's bootstrap and claims. Adds ``"recomputed"``:
    ``{"by", "missing": [what the file lacks], "changed": {claim id: [old status, new status]}}``."""
    from .memorization import CONTROLS
    from .study import _headroom, compute_claims

    res = study_result_from_json(result)
    out = copy.deepcopy(result)
    out["intervals"] = res.intervals()
    if res.memorization:
        mem = res.memorization_json()
        for s, m in mem.items():  # keep the stored details as they were
            for c, v in m.items():
                v["detail"] = (result.get("memorization") or {}).get(s, {}).get(c, {}).get("detail", v["detail"])
        out["memorization"] = mem
    missing = []
    head = _headroom(res)
    if head is not None:
        have = set(res.memorization.get(head.name, {}))
        missing += [f"memorization/{head.name}/{c}" for c in CONTROLS if c not in have]
    if not result.get("per_network"):
        missing.append("per_network")
    claims = compute_claims(res)
    out["claims"] = _claims_json(claims, result.get("claims"))
    old = {c.get("id"): c.get("status") for c in result.get("claims") or [] if isinstance(c, dict)}
    notes = ["amortized: intervals and claims rebuilt from per_network (clustered bootstrap by test_clusters)"]
    if missing:
        notes.append(f"amortized: not in this file, so not recomputed and never invented: {', '.join(missing)} "
                     "(operator-beats-memorization is inconclusive until the study is rerun)")
    out["recomputed"] = {"by": "scalegmn_lite.tasks.amortized.recompute.recompute_result", "missing": missing,
                         "notes": notes,
                         "changed": {c["id"]: [old.get(c["id"]), c["status"]] for c in out["claims"]
                                     if old.get(c["id"]) != c["status"]}}
    return out


def recompute_gscale_result(result: dict) -> dict:
    """A copy of a stored ``gscale.json`` whose ``gscale_sweep`` and ``claims`` are rebuilt from its
    ``per_network`` accuracies (stored since issue 33). An older file without them keeps its sweep
    and, where every test row is one final network (``start="final"``: its stored bootstrap over networks
    and seeds already is the clustered one), its claims' stored intervals and statuses, saying so;
    otherwise its claims come out inconclusive, saying the figures are missing (never invented)."""
    from .gscale import gscale_sweep, sweep_claims

    out = copy.deepcopy(result)
    per = result.get("per_network")
    old = {c.get("id"): c.get("status") for c in result.get("claims") or [] if isinstance(c, dict)}
    if per:
        sweep = gscale_sweep(_arrays(per), result["counts"])
        out["gscale_sweep"] = sweep
        out["intervals"] = {s: {m: {k: _bootstrap(v, result["counts"], s) for k, v in d.items()} for m, d in p.items()}
                            for s, p in _arrays(per).items()}
        claims = sweep_claims(sweep)
        missing = []
    elif (result.get("config") or {}).get("start", "final") == "final" and result.get("claims"):
        # an older file: no per-network accuracies, but every test row is one final network, so its stored
        # interval (networks and seeds resampled) already is the clustered one: kept, with its status
        claims = []
        for c in result["claims"]:
            why = ("; interval as stored: this gscale.json keeps no per-network accuracies (written before issue "
                   "33), and its rows are independent final networks, so the stored bootstrap over networks and "
                   "seeds is the clustered one")
            m = c["measured"]
            mean = m.get(m.get("interval_of") or "slope") if isinstance(m, dict) else m
            iv = {"mean": float(mean) if isinstance(mean, (int, float)) else float("nan"), "ci": c["ci"],
                  "seeds": c.get("seeds") or 1}
            cl = interval_claim(c["id"], c["statement"] + why, iv, ">", 0.0, measured=m, target=c["target"],
                                status=c["status"])
            claims.append(cl)
        missing = ["per_network"]
    else:
        nan = {"mean": float("nan"), "ci": [float("nan"), float("nan")], "seeds": 1}
        why = ("; per-network accuracies are not stored in this gscale.json (written before issue 33): the "
               "interval cannot be recomputed and is not invented")
        ids = [c.get("id") for c in result.get("claims") or []] or ["gain-grows-with-gscale-dim"]
        statements = {c.get("id"): c.get("statement", "") for c in result.get("claims") or []}
        claims = [interval_claim(i, statements.get(i, i) + why, nan, ">", 0.0) for i in ids]
        missing = ["per_network"]
    out["claims"] = _claims_json(claims, result.get("claims"))
    notes = (["gscale: sweep and claims rebuilt from per_network"] if per else
             ["gscale: this file stores no per-network accuracies (written before issue 33): its stored intervals "
              "(independent final networks and seeds) are kept; `reproduce --only gscale` reruns it at the new budget"])
    out["recomputed"] = {"by": "scalegmn_lite.tasks.amortized.recompute.recompute_gscale_result", "missing": missing,
                         "notes": notes,
                         "changed": {c["id"]: [old.get(c["id"]), c["status"]] for c in out["claims"]
                                     if old.get(c["id"]) != c["status"]}}
    return out


def _bootstrap(v, counts: dict, setting: str):
    from ...common.stats import bootstrap_mean

    return bootstrap_mean(v, clusters=(counts.get(setting) or {}).get("test_clusters"))
