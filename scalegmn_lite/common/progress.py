"""Progress bars: the one place that decides how often tqdm redraws.

Why this exists: a Jupyter kernel sends every redraw as a message on its IOPub channel, and a client
that is not reading while a long cell runs (nbval waits for the cell to finish first) lets those
messages queue up to ZeroMQ's high-water mark, after which they are dropped -- including the
"kernel idle" message, so nbval reports "Timeout ... waiting for output" on a cell that succeeded.
Bars here therefore redraw at most every ``SCALEGMN_LITE_PROGRESS_INTERVAL`` seconds (default 5)
and postfix updates never force a redraw. ``SCALEGMN_LITE_PROGRESS=0`` turns every bar off; the
notebooks' first cell (:func:`~scalegmn_lite.common.config.notebook_setup`) does so, so committed
notebooks carry no progress output (neither text bars nor widgets).
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


def bars_enabled() -> bool:
    """False when ``SCALEGMN_LITE_PROGRESS`` is ``0``/``off``/``false``/``no`` (default: on)."""
    return os.environ.get("SCALEGMN_LITE_PROGRESS", "1").strip().lower() not in ("0", "off", "false", "no")


def progress_bar(iterable: Iterable, *, desc: str | None = None, enabled: bool = True, **kw: Any):
    """A rate-limited ``tqdm.auto`` bar over ``iterable`` that disappears when done (``leave=False``);
    disabled when ``enabled`` is false or :func:`bars_enabled` says so."""
    from tqdm.auto import tqdm

    enabled = enabled and bars_enabled()

    kw.setdefault("leave", False)
    interval = min_interval()
    return tqdm(iterable, desc=desc, disable=not enabled, mininterval=interval, maxinterval=max(interval, 10.0),
                **kw)


def set_postfix(bar, **values: Any) -> None:
    """Update a bar's postfix without forcing a redraw (the next rate-limited redraw shows it)."""
    bar.set_postfix(refresh=False, **values)
