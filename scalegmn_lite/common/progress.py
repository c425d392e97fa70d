"""Progress bars: the one place that decides how often tqdm redraws.

Why this exists: a Jupyter kernel sends every redraw as a message on its IOPub channel, and a client
that is not reading while a long cell runs (nbval waits for the cell to finish first) lets those
messages queue up to ZeroMQ's high-water mark, after which they are dropped -- including the
"kernel idle" message, so nbval reports "Timeout ... waiting for output" on a cell that succeeded.
Bars here therefore redraw at most every ``SCALEGMN_LITE_PROGRESS_INTERVAL`` seconds (default 5)
and postfix updates never force a redraw.
"""

from __future__ import annotations

import os
from typing import Any, Iterable


def min_interval() -> float:
    """Seconds between redraws (environment ``SCALEGMN_LITE_PROGRESS_INTERVAL``, default 5)."""
    raw = os.environ.get("SCALEGMN_LITE_PROGRESS_INTERVAL", "5")
    try:
        value = float(raw)
    except ValueError as exc:
        raise ValueError(f"SCALEGMN_LITE_PROGRESS_INTERVAL must be a number of seconds, got {raw!r}") from exc
    if value < 0:
        raise ValueError(f"SCALEGMN_LITE_PROGRESS_INTERVAL must be >= 0 seconds, got {value}")
    return value


def progress_bar(iterable: Iterable, *, desc: str | None = None, enabled: bool = True, **kw: Any):
    """A rate-limited ``tqdm.auto`` bar over ``iterable`` that disappears when done (``leave=False``)."""
    from tqdm.auto import tqdm

    kw.setdefault("leave", False)
    interval = min_interval()
    return tqdm(iterable, desc=desc, disable=not enabled, mininterval=interval, maxinterval=max(interval, 10.0),
                **kw)


def set_postfix(bar, **values: Any) -> None:
    """Update a bar's postfix without forcing a redraw (the next rate-limited redraw shows it)."""
    bar.set_postfix(refresh=False, **values)
