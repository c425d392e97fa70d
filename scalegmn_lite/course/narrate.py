"""Sentences computed from results, so that a notebook's prose cannot drift from its numbers.

    print(ranking({"scalegmn": iv1, "gmn": iv2}, "Kendall tau", focus="scalegmn", chance=0.0))

Each value is an :class:`~scalegmn_lite.common.stats.Interval`-like mapping ``{"mean", "ci": [lo, hi]}``.
"""

from __future__ import annotations

from typing import Mapping

__all__ = ["ranking", "overlaps"]


def overlaps(a: Mapping, b: Mapping) -> bool:
    """True when the two intervals ``a["ci"]`` and ``b["ci"]`` share a point."""
    return a["ci"][0] <= b["ci"][1] and b["ci"][0] <= a["ci"][1]


def ranking(results: Mapping[str, Mapping], metric: str, focus: str, chance: float | None = None,
            higher_is_better: bool = True, digits: int = 2) -> str:
    """A ranked list of ``results`` (name -> interval) and what it does and does not show about ``focus``:
    its rank, whether its interval overlaps the best other model's, and its position against ``chance``."""
    if focus not in results:
        raise KeyError(f"{focus!r} is not among the results {sorted(results)}")
    order = sorted(results, key=lambda k: results[k]["mean"], reverse=higher_is_better)
    f = f"{{:.{digits}f}}"
    lines = [f"  {i + 1}. {k:<12} {f.format(results[k]['mean'])}  [{f.format(results[k]['ci'][0])}, "
             f"{f.format(results[k]['ci'][1])}]" for i, k in enumerate(order)]
    rank = order.index(focus) + 1
    lines.append(f"{focus} ranks {rank} of {len(order)} on {metric}" + (" (last)." if rank == len(order) and rank > 1
                                                                         else "."))
    best = next(k for k in order if k != focus) if len(order) > 1 else None
    if best is not None:
        if overlaps(results[focus], results[best]):
            lines.append(f"Its interval overlaps {best}'s: this run does not resolve which of the two is better.")
        else:
            better = order.index(best) < order.index(focus)
            lines.append(f"Its interval does not overlap {best}'s: {best if better else focus} is better here, "
                         "at this budget.")
    if chance is not None:
        lo, hi = results[focus]["ci"]
        where = "above" if lo > chance else "below" if hi < chance else "not distinguishable from"
        lines.append(f"Chance level is {f.format(chance)}: {focus} is {where} chance.")
    return "\n".join(lines)
