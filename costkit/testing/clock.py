"""SimClock: a clock a test moves by hand, so records, outcomes and alerts happen at chosen times.

    with SimClock("2026-11-02T09:00:00Z") as clock:
        client.chat.completions.create(...)      # its record is stamped 09:00:00
        clock.advance(3600)
        costkit.outcome("t1", success=True)       # stamped 10:00:00

While it is active, every record and outcome in the process is stamped from it
(:func:`costkit.records.set_clock`); leaving the block restores the wall clock.
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

from ..records import set_clock


def _epoch(start: float | str | dt.datetime) -> float:
    if isinstance(start, str):
        start = dt.datetime.fromisoformat(start.replace("Z", "+00:00"))
    if isinstance(start, dt.datetime):
        if start.tzinfo is None:
            start = start.replace(tzinfo=dt.timezone.utc)
        return start.timestamp()
    return float(start)


class SimClock:
    """A settable clock (epoch seconds); use as a context manager or :meth:`install` / :meth:`uninstall`."""

    def __init__(self, start: float | str | dt.datetime = "2026-11-02T00:00:00Z") -> None:
        self._now = _epoch(start)
        self._lock = threading.Lock()
        self._previous: Any = None

    def __call__(self) -> float:
        return self._now

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> float:
        """Move forward ``seconds``; returns the new time."""
        if seconds < 0:
            raise ValueError("a clock only moves forward")
        with self._lock:
            self._now += seconds
            return self._now

    def set(self, when: float | str | dt.datetime) -> float:
        with self._lock:
            self._now = _epoch(when)
            return self._now

    def install(self) -> SimClock:
        self._previous = set_clock(self)
        return self

    def uninstall(self) -> None:
        set_clock(self._previous)
        self._previous = None

    def __enter__(self) -> SimClock:
        return self.install()

    def __exit__(self, *exc: object) -> None:
        self.uninstall()


__all__ = ["SimClock"]
