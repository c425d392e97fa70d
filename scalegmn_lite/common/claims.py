"""Claims: a statement, a measured figure, a target and whether it holds - computed, never typed.

Every experiment run by ``scalegmn-lite reproduce`` returns a list of claims; ``REPORT.md`` shows
them as a table. A claim has a ``status``:

* deterministic claims (:func:`claim`: a gauge identity, a zoo count) are ``"holds"`` or
  ``"refuted"`` from the measurement itself (``ci`` and ``seeds`` are ``None``);
* trained claims (:func:`interval_claim`) carry a 95% bootstrap interval ``ci = [lo, hi]`` over
  held-out networks and ``seeds`` training seeds (:mod:`scalegmn_lite.common.stats`): ``"holds"``
  when the interval excludes the opposite, ``"refuted"`` when it excludes the claim,
  ``"inconclusive"`` otherwise.

Every claim is also a ``kind``: a **finding** (``"finding"``) could have gone either way: a trained
comparison, a measured speed-up, a property of a zoo; a **check** (``"check"``) holds by construction
or by derivation when the code is right: an exact gauge identity, invariance of an invariant model,
a zoo's size. ``REPORT.md``, the README and the notebooks count findings and checks apart ("N of M
findings hold"), so a check that must hold never inflates the count of results. :func:`claim`
defaults to a check, :func:`interval_claim` to a finding.

``holds`` is always ``status == "holds"``. :func:`validate_claim` checks a claim dict read back from
a result file (the schema of ``results/*.json``).
"""

from __future__ import annotations

import math
import operator
from dataclasses import asdict, dataclass, replace
from typing import Any, Sequence

__all__ = ["SOURCES", "Claim", "claim", "interval_claim", "combine_status", "deciding_comparison", "validate_claim",
           "STATUSES", "KINDS", "count_claims"]

#: claim sources and how REPORT.md names them
SOURCES = {
    "autoencoder paper": "the autoencoder paper's claim (Symmetry-Aware Graph Metanetwork Autoencoders)",
    "one-shot paper": "the one-shot optimizer paper's claim (Symmetry-Aware Fully-Amortized Optimization with Scale "
                "Equivariant Graph Metanetworks)",
    "course": "this course's own check",
}

_OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt, "==": operator.eq}
STATUSES = ("holds", "refuted", "inconclusive")
#: a finding could have gone either way; a check holds by construction when the code is right
KINDS = ("finding", "check")


@dataclass(frozen=True)
class Claim:
    id: str
    statement: str
    measured: Any
    target: str
    holds: bool
    status: str = ""
    ci: list | None = None
    seeds: int | None = None
    #: whose claim it is, shown in REPORT.md: a source paper's (e.g. ``"autoencoder paper"``) or ``"course"``
    #: (a check this course adds); ``None`` leaves it unmarked
    source: str | None = None
    #: ``"finding"`` (could have gone either way) or ``"check"`` (holds by construction); see the module docstring
    kind: str = "finding"

    def __post_init__(self) -> None:
        status = self.status or ("holds" if self.holds else "refuted")
        if status not in STATUSES:
            raise ValueError(f"claim {self.id!r}: status must be one of {STATUSES}, got {status!r}")
        if self.kind not in KINDS:
            raise ValueError(f"claim {self.id!r}: kind must be one of {KINDS}, got {self.kind!r}")
        if bool(self.holds) != (status == "holds"):
            raise ValueError(f"claim {self.id!r}: holds={self.holds} contradicts status={status!r}")
        object.__setattr__(self, "status", status)

    def to_dict(self) -> dict:
        d = asdict(self)
        if d["source"] is None:  # result files of unmarked claims keep their old schema
            del d["source"]
        return d

    def marked(self, source: str) -> "Claim":
        """This claim with its ``source`` set (see :data:`SOURCES`)."""
        if source not in SOURCES:
            raise ValueError(f"claim {self.id!r}: source must be one of {sorted(SOURCES)}, got {source!r}")
        return replace(self, source=source)


def _num(x):
    if isinstance(x, float):
        return x if math.isfinite(x) else str(x)
    return x


def claim(id: str, statement: str, measured: Any, op: str | None = None, threshold: Any = None,
          *, holds: bool | None = None, target: str | None = None, kind: str = "check") -> Claim:
    """Build a deterministic claim whose ``holds`` is computed from the measurement.

    ``kind``: ``"check"`` (the default: exact, holds by construction when the code is right) or
    ``"finding"`` (a deterministic measurement that could have gone either way, e.g. a timing).
    A claim on a *sample* (networks, pairs) is never exact: use :func:`interval_claim`.

    Either compare ``measured <op> threshold`` (``op`` in ``>=, <=, >, <, ==``) or pass ``holds``
    computed by the caller from measured values (with a ``target`` text saying what was checked).
    A NaN measurement never holds. The status is ``"holds"`` or ``"refuted"``.
    """
    if op is not None:
        if op not in _OPS:
            raise ValueError(f"unknown comparison {op!r}")
        m = measured
        bad = isinstance(m, float) and not math.isfinite(m)
        holds = (not bad) and bool(_OPS[op](m, threshold))
        target = target or f"{op} {threshold}"
    elif holds is None:
        raise ValueError("claim needs either op/threshold or a computed holds")
    if isinstance(measured, dict):
        measured = {k: _num(v) for k, v in measured.items()}
    return Claim(id, statement, _num(measured), target or "", bool(holds), kind=kind)


def combine_status(statuses: Sequence[str]) -> str:
    """Status of a conjunction: ``holds`` if all hold, ``refuted`` if any is refuted, else ``inconclusive``."""
    statuses = list(statuses)
    if not statuses:
        return "inconclusive"
    if all(s == "holds" for s in statuses):
        return "holds"
    return "refuted" if "refuted" in statuses else "inconclusive"


def deciding_comparison(comps: dict) -> str:
    """The comparison whose interval decides a conjunction ``name -> (interval, op, threshold)`` (every
    one must hold, :func:`combine_status`): the one refuting most clearly if any is refuted, else the
    (finite) one closest to failing among the undecided, else among all."""
    import numpy as np

    from .stats import decide

    status = {n: decide(iv["ci"], op, thr) for n, (iv, op, thr) in comps.items()}

    def wrong(n):  # how far the interval lies on the wrong side (refuted ones)
        iv, op, thr = comps[n]
        return float(iv["ci"][0]) - thr if op.startswith("<") else thr - float(iv["ci"][1])

    def margin(n):  # how far the interval lies on the right side; NaN last
        iv, op, thr = comps[n]
        m = thr - float(iv["ci"][1]) if op.startswith("<") else float(iv["ci"][0]) - thr
        return m if np.isfinite(m) else np.inf

    refuted = [n for n, v in status.items() if v == "refuted"]
    if refuted:
        return max(refuted, key=wrong)
    return min([n for n, v in status.items() if v == "inconclusive"] or list(comps), key=margin)


def interval_claim(id: str, statement: str, interval: dict, op: str, threshold: float = 0.0, *,
                   measured: Any = None, target: str | None = None, status: str | None = None,
                   kind: str = "finding") -> Claim:
    """A trained claim ``mean <op> threshold`` decided by its interval.

    Args:
        interval: ``{"mean", "ci": [lo, hi], "seeds", ...}`` from
            :func:`~scalegmn_lite.common.stats.bootstrap_mean` / ``bootstrap_stat``.
        op: ``>``, ``>=``, ``<`` or ``<=``.
        measured: the figure shown (default: the interval's mean); may be a dict of figures.
        status: a status computed by the caller for a compound claim (:func:`combine_status`);
            default: :func:`~scalegmn_lite.common.stats.decide` on the interval.
    """
    from .stats import decide

    ci = [float(v) for v in interval["ci"]]
    st = status or decide(ci, op, threshold)
    if measured is None:
        measured = float(interval["mean"])
    if isinstance(measured, dict):
        measured = {k: _num(v) for k, v in measured.items()}
    return Claim(id, statement, _num(measured), target or f"{op} {threshold:g} (95% interval)", st == "holds",
                 st, [_num(v) for v in ci], int(interval.get("seeds") or 1), kind=kind)


def every_interval_claim(id: str, statement: str, comparisons: dict, op: str = ">", threshold: float = 0.0) -> Claim:
    """A claim that every interval of ``comparisons`` (``name -> interval``) lies on the claimed side: measured is
    each mean (and ``interval_of``: the comparison whose interval is shown, :func:`deciding_comparison`), the
    status their conjunction (:func:`combine_status`)."""
    from .stats import decide

    deciding = deciding_comparison({k: (v, op, threshold) for k, v in comparisons.items()})
    measured = {**{k: round(v["mean"], 4) for k, v in comparisons.items()}, "interval_of": deciding}
    return interval_claim(id, statement, comparisons[deciding], op, threshold, measured=measured,
                          status=combine_status([decide(v["ci"], op, threshold) for v in comparisons.values()]))


def count_claims(claims) -> dict:
    """``{"finding": {"holds", "refuted", "inconclusive", "total"}, "check": {...}}`` over claim dicts
    (or :class:`Claim` objects); a claim without ``kind`` (an older result file) counts as a finding."""
    out = {k: {s: 0 for s in (*STATUSES, "total")} for k in KINDS}
    for c in claims:
        d = c.to_dict() if isinstance(c, Claim) else c
        k = d.get("kind") or "finding"
        out[k][d.get("status") or ("holds" if d["holds"] else "refuted")] += 1
        out[k]["total"] += 1
    return out


_KEYS = {"id": str, "statement": str, "target": str, "holds": bool, "status": str}


def validate_claim(d: dict, where: str = "claim") -> None:
    """Raise ``ValueError`` (naming ``where`` and the field) unless ``d`` is a valid claim dict."""
    if not isinstance(d, dict):
        raise ValueError(f"{where}: a claim must be a JSON object, got {type(d).__name__}")
    for k, t in _KEYS.items():
        if k not in d:
            raise ValueError(f"{where}: missing field {k!r} (re-run `scalegmn-lite reproduce` with this version)")
        if not isinstance(d[k], t):
            raise ValueError(f"{where}: field {k!r} must be {t.__name__}, got {d[k]!r}")
    if "measured" not in d:
        raise ValueError(f"{where}: missing field 'measured'")
    if d["status"] not in STATUSES:
        raise ValueError(f"{where}: status {d['status']!r} is not one of {STATUSES}")
    if d["holds"] != (d["status"] == "holds"):
        raise ValueError(f"{where}: holds={d['holds']} contradicts status={d['status']!r}")
    if d.get("kind") is not None and d["kind"] not in KINDS:
        raise ValueError(f"{where}: kind {d['kind']!r} is not one of {KINDS}")
    if d.get("source") is not None and d["source"] not in SOURCES:
        raise ValueError(f"{where}: source {d['source']!r} is not one of {sorted(SOURCES)}")
    ci, seeds = d.get("ci"), d.get("seeds")
    if (ci is None) != (seeds is None):
        raise ValueError(f"{where}: 'ci' and 'seeds' go together (a trained claim has both, a deterministic none)")
    if ci is not None:
        if not (isinstance(ci, list) and len(ci) == 2):
            raise ValueError(f"{where}: ci must be [lo, hi], got {ci!r}")
        lo, hi = (float(v) for v in ci)
        if lo == lo and hi == hi and lo > hi:
            raise ValueError(f"{where}: ci {ci} has lo > hi")
        if (lo != lo or hi != hi) and d["status"] != "inconclusive":
            raise ValueError(f"{where}: a NaN interval can only be inconclusive")
        if not isinstance(seeds, int) or seeds < 1:
            raise ValueError(f"{where}: seeds must be an integer >= 1, got {seeds!r}")
