"""Alert: what a rule found, as one frozen value; and the protocol every rule follows.

A rule is written once and runs two ways: **live**, seeing records one at a time as they are
emitted (:meth:`Rule.observe`, :meth:`Rule.tick`), and **over stored records**, reading the same
per-bucket sums from a ledger in SQL (:meth:`Rule.stored`). Both apply the same check to the same
buckets (an hour, a few seconds), so replaying a ledger's records through a live monitor and
evaluating the ledger in SQL find the same alerts (same rule, subject and window).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from ..records import CostRecord

if TYPE_CHECKING:
    from ..report.store import Store

RULES = ("cost_anomaly", "burst", "cache_hit_rate", "cache_false_hits", "cache_stale", "budget")


@attrs.frozen(kw_only=True)
class Alert:
    """One finding: which ``rule``, about whom (``subject``: ``{"feature": "faq"}``), when and why.

    ``at`` is when it was detected (live: the time of the record that crossed the line; stored:
    the end of the window, or the end of the range read). ``window_start_s`` / ``window_end_s``
    bound the time the ``value`` was measured over; ``threshold`` is the line it crossed.
    """

    rule: str
    subject: Mapping[str, str | None]
    at: float
    window_start_s: float
    window_end_s: float
    value: float
    threshold: float
    message: str
    details: Mapping[str, Any] = attrs.field(factory=dict)

    @classmethod
    def in_hour(cls, hour: int, **fields: Any) -> Alert:
        """An alert about one clock hour (hours since the epoch, as the report store counts them)."""
        return cls(window_start_s=hour * 3600.0, window_end_s=(hour + 1) * 3600.0, **fields)

    @property
    def key(self) -> tuple[Any, ...]:
        """(rule, subject, window start): what makes two alerts the same finding."""
        return (self.rule, tuple(sorted(self.subject.items(), key=lambda kv: kv[0])), self.window_start_s)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "subject": dict(self.subject),
            "at": self.at,
            "at_iso": iso(self.at),
            "window_start_s": self.window_start_s,
            "window_end_s": self.window_end_s,
            "value": self.value,
            "threshold": self.threshold,
            "message": self.message,
            "details": dict(self.details),
        }


def iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def hour_label(hour: int) -> str:
    start = dt.datetime.fromtimestamp(hour * 3600, dt.timezone.utc)
    return f"{start:%Y-%m-%d %H}:00-{(start + dt.timedelta(hours=1)):%H}:00 UTC"


def who(subject: Mapping[str, str | None]) -> str:
    """``feature=faq`` / ``tenant=(none)`` / ``all traffic``."""
    if not subject:
        return "all traffic"
    return ", ".join(f"{k}={'(none)' if v is None else v}" for k, v in subject.items())


class Rule(Protocol):
    """What a monitor and :func:`~costkit.alerts.evaluate` drive. Rules are configuration; their
    state lives in the object :meth:`new_state` returns, one per monitor."""

    @property
    def name(self) -> str: ...

    def new_state(self) -> Any: ...

    def observe(self, state: Any, record: CostRecord) -> list[Alert]:
        """Take one record live; return the alerts it triggers now."""
        ...

    def tick(self, state: Any, now: float) -> list[Alert]:
        """Time moved to ``now``: return the alerts of windows that closed."""
        ...

    def stored(self, store: Store, since: float, until: float, history_start: float) -> list[Alert]:
        """The alerts of windows in ``[since, until)`` from a ledger; ``history_start``: its first record's time."""
        ...


__all__ = ["RULES", "Alert", "Rule", "hour_label", "iso", "who"]
