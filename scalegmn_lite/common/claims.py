"""Claims: a statement, a measured figure, a target and whether it holds - computed, never typed.

Every experiment run by ``scalegmn-lite reproduce`` returns a list of claims; ``REPORT.md`` shows
them as a table.
"""

from __future__ import annotations

import math
import operator
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["Claim", "claim"]

_OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt, "==": operator.eq}


@dataclass(frozen=True)
class Claim:
    id: str
    statement: str
    measured: Any
    target: str
    holds: bool

    def to_dict(self) -> dict:
        return asdict(self)


def _num(x):
    if isinstance(x, float):
        return x if math.isfinite(x) else str(x)
    return x


def claim(id: str, statement: str, measured: Any, op: str | None = None, threshold: Any = None,
          *, holds: bool | None = None, target: str | None = None) -> Claim:
    """Build a claim whose ``holds`` is computed from the measurement.

    Either compare ``measured <op> threshold`` (``op`` in ``>=, <=, >, <, ==``) or pass ``holds``
    computed by the caller from measured values (with a ``target`` text saying what was checked).
    A NaN measurement never holds.
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
    return Claim(id, statement, _num(measured), target or "", bool(holds))
