"""Progress bars: the one place that decides how often tqdm redraws.

Why this exists: a Jupyter kernel sends every redraw as a message on its IOPub channel, and a client
that is not reading while a long cell runs (nbval waits for the cell to finish first) lets those
messages queue up to ZeroMQ's high-water mark, after which they are dropped -- including the
"kernel idle" message, so nbval reports "Timeout ... waiting for output" on a cell that succeeded.
Bars here therefore redraw at most every ``SCALEGMN_LITE_PROGRESS_INTERVAL`` seconds (default 5)
and postfix updates never force a redraw. ``SCALEGMN_LITE_PROGRESS=0`` turns every bar off; the
notebooks' first cell (:func:`~scalegmn_lite.common.config.notebook_setup`) does so, so committed
notebooks carry no progress output (neither text bars nor widgets).

Bars are drawn only where someone watches them: a terminal (stderr is a TTY) or a Jupyter kernel.
Anywhere else (``reproduce ... > log``, CI, worker processes) a bar is replaced by :class:`StageLine`,
which writes *one line when its stage ends* ("fit INRs: 301 steps in 15.2 s (loss=...)"), at most one
line every ``SCALEGMN_LITE_PROGRESS_INTERVAL`` seconds (stages ending in between are counted into the
next line), so a log never holds carriage returns. ``SCALEGMN_LITE_PROGRESS=bars`` or ``=lines`` forces
either form.
"""

from __future__ import annotations

import os
import sys
import time
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


def watched() -> bool:
    """Whether a redrawn bar has a viewer: stderr is a terminal or this is a Jupyter kernel
    (``SCALEGMN_LITE_PROGRESS=bars`` / ``lines`` force the answer)."""
    mode = os.environ.get("SCALEGMN_LITE_PROGRESS", "").strip().lower()
    if mode in ("bars", "lines"):
        return mode == "bars"
    if "ipykernel" in sys.modules:
        try:
            from IPython import get_ipython

            if type(get_ipython()).__name__ == "ZMQInteractiveShell":
                return True
        except ImportError:  # pragma: no cover - ipykernel without IPython does not exist
            pass
    try:
        return bool(sys.stderr.isatty())
    except (AttributeError, ValueError):  # closed or replaced stream
        return False


class StageLine:
    """A bar's stand-in where nobody watches: iterates like the bar, accepts :func:`set_postfix` and
    ``close()``, and writes one line to ``stream`` (default stderr) when the stage ends, rate-limited
    across all stages (see the module docstring)."""

    _last_line = -float("inf")
    _held = 0

    def __init__(self, iterable: Iterable, desc: str | None, interval: float, stream=None) -> None:
        self.iterable, self.desc, self.interval = iterable, desc or "stage", interval
        self.stream = stream
        self.postfix: dict[str, Any] = {}
        self.n, self._t0, self._done = 0, None, False
        try:
            self.total = len(iterable)  # type: ignore[arg-type]
        except TypeError:
            self.total = None

    def __iter__(self):
        self._t0 = time.perf_counter()
        try:
            for item in self.iterable:
                self.n += 1
                yield item
        finally:
            self.close()

    def set_postfix(self, ordered_dict=None, refresh: bool = False, **values: Any) -> None:
        self.postfix.update(ordered_dict or {}, **values)

    def close(self) -> None:
        if self._done:
            return
        self._done = True
        now = time.perf_counter()
        cls = type(self)
        if now - cls._last_line < self.interval:
            cls._held += 1
            return
        seconds = now - (self._t0 if self._t0 is not None else now)
        what = f"{self.n} steps" if self.total is None or self.n == self.total else f"stopped after {self.n} of " \
                                                                                      f"{self.total} steps"
        extra = f" ({', '.join(f'{k}={v}' for k, v in self.postfix.items())})" if self.postfix else ""
        held = f" [+{cls._held} more stages since the last line]" if cls._held else ""
        print(f"{self.desc}: {what} in {seconds:.1f} s{extra}{held}", file=self.stream or sys.stderr, flush=True)
        cls._last_line, cls._held = now, 0


def progress_bar(iterable: Iterable, *, desc: str | None = None, enabled: bool = True, **kw: Any):
    """A rate-limited ``tqdm.auto`` bar over ``iterable`` that disappears when done (``leave=False``);
    disabled when ``enabled`` is false or :func:`bars_enabled` says so; a :class:`StageLine` (one line
    when the stage ends) when nobody watches (:func:`watched`)."""
    from tqdm.auto import tqdm

    enabled = enabled and bars_enabled()
    interval = min_interval()
    if enabled and not watched():
        return StageLine(iterable, desc, interval)

    kw.setdefault("leave", False)
    return tqdm(iterable, desc=desc, disable=not enabled, mininterval=interval, maxinterval=max(interval, 10.0),
                **kw)


def set_postfix(bar, **values: Any) -> None:
    """Update a bar's postfix without forcing a redraw (the next rate-limited redraw shows it)."""
    bar.set_postfix(refresh=False, **values)
