"""Monitor: the live side of the alerts, a sink that sees records as they are emitted.

    alerts = costkit.alerts.Monitor([CostAnomaly(), Burst(max_usd=2.0)], on_alert=page_someone)
    client = costkit.wrap(openai.OpenAI(), sink=[SQLiteSink("costs.db"), alerts],
                          policies=[costkit.Budget(limits, on_alert=alerts.budget)])

Every alert goes to each ``on_alert`` callback and is logged on ``costkit.alerts`` (WARNING), once.
Like every costkit sink it never slows or fails a completion: by default (``background=True``)
``emit`` only enqueues and the rules and callbacks run on a costkit thread; a callback that raises
is counted and warned about once. :func:`evaluate` finds the same alerts in stored records.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from .._warn import warn_once
from ..errors import ConfigError
from ..records import CostRecord, now
from ..sinks.background import DeferredSink
from .alert import Alert, Rule, iso

if TYPE_CHECKING:
    from ..report.store import Store

LOGGER_NAME = "costkit.alerts"
logger = logging.getLogger(LOGGER_NAME)
AlertCallback = Callable[[Alert], Any]


def _check_rules(rules: Iterable[Any]) -> tuple[Rule, ...]:
    out = tuple(rules)
    if not out:
        raise ConfigError("rules", "give at least one rule: CostAnomaly(), Burst(max_usd=...), CacheHealth(...)")
    for r in out:
        if not all(callable(getattr(r, m, None)) for m in ("new_state", "observe", "tick", "stored")):
            raise ConfigError("rules", f"{r!r} is not an alert rule (CostAnomaly, Burst, CacheHealth or your own)")
    return out


def _callbacks(on_alert: AlertCallback | Sequence[AlertCallback] | None) -> tuple[AlertCallback, ...]:
    if on_alert is None:
        return ()
    callbacks = tuple(on_alert) if isinstance(on_alert, list | tuple) else (on_alert,)
    for cb in callbacks:
        if not callable(cb):
            raise ConfigError("on_alert", f"expected a callable taking an Alert, got {type(cb).__name__}")
    return callbacks


class Monitor(DeferredSink):
    """Run alert ``rules`` over records as they are emitted (pass it as, or among, a client's sinks).

    ``on_alert``: a callable or a list of them, called with each :class:`Alert`. ``alerts`` keeps
    the last ``keep`` alerts; ``counts`` counts alerts per rule and failed callbacks.
    ``background=False`` runs the rules in ``emit`` (tests, replays); ``log=False`` keeps the alerts
    off the ``costkit.alerts`` logger (replays of stored records). :meth:`check` judges windows
    that closed while no record arrived; :meth:`budget` is a ``Budget(on_alert=...)`` callback.
    """

    def __init__(
        self,
        rules: Iterable[Rule],
        *,
        on_alert: AlertCallback | Sequence[AlertCallback] | None = None,
        background: bool = True,
        max_queue: int = 10_000,
        keep: int = 1000,
        log: bool = True,
    ) -> None:
        self.rules = _check_rules(rules)
        self.log = log
        self.callbacks = _callbacks(on_alert)
        self._init_deferred(background=background, max_queue=max_queue, name="alerts.Monitor")
        self._states = [r.new_state() for r in self.rules]
        self._state_lock = threading.Lock()
        self.alerts: deque[Alert] = deque(maxlen=keep)
        self.counts: Counter[str] = Counter()

    def _handle(self, record: CostRecord, _extra: Any) -> None:
        with self._state_lock:
            found = [
                a for rule, state in zip(self.rules, self._states, strict=True) for a in rule.observe(state, record)
            ]
        for alert in found:
            self.notify(alert)

    def check(self, at: float | None = None) -> list[Alert]:
        """Judge the windows closed by ``at`` (default: now, from costkit's clock) and return the new alerts."""
        self.flush()
        when = now() if at is None else at
        with self._state_lock:
            found = [a for rule, state in zip(self.rules, self._states, strict=True) for a in rule.tick(state, when)]
        for alert in found:
            self.notify(alert)
        return found

    def notify(self, alert: Alert) -> None:
        """Record ``alert``, log it on ``costkit.alerts`` and call every callback (failures counted, warned once)."""
        self.alerts.append(alert)
        self.counts[alert.rule] += 1
        if self.log:
            logger.warning("%s", alert.message, extra={"costkit_alert": alert.to_dict()})
        for cb in self.callbacks:
            try:
                cb(alert)
            except Exception as exc:
                self.counts["callback_errors"] += 1
                warn_once(f"alert-callback-{id(cb)}", f"costkit alerts: callback {cb!r} raised {exc!r}")

    def budget(self, budget_alert: Any) -> Alert:
        """``costkit.Budget(..., on_alert=monitor.budget)``: a budget threshold as an :class:`Alert`."""
        alert = from_budget_alert(budget_alert)
        self.notify(alert)
        return alert

    def __repr__(self) -> str:
        return (
            f"Monitor({list(self.rules)!r}, alerts={sum(v for k, v in self.counts.items() if k != 'callback_errors')})"
        )


def from_budget_alert(b: Any) -> Alert:
    """A :class:`~costkit.BudgetAlert` (spend crossed a share of a limit) as an :class:`Alert` (rule ``budget``)."""
    subject: dict[str, str | None] = {}
    for part in str(b.bucket).split(","):
        if "=" in part:
            k, v = part.split("=", 1)
            subject[k] = None if v == "-" else v
    usd = b.unit == "usd"
    spent = f"${b.spent:,.4f}" if usd else f"{b.spent:,.0f} tokens"
    limit = f"${b.limit_value:,.2f}" if usd else f"{b.limit_value:,.0f} tokens"
    at = now()
    return Alert(
        rule="budget",
        subject=subject,
        at=at,
        window_start_s=at,
        window_end_s=at,
        value=float(b.spent),
        threshold=float(b.threshold) * float(b.limit_value),
        message=f"budget {b.limit.label} [{b.bucket}] passed {b.threshold:.0%} of {limit} in window {b.window}: "
        f"{spent} spent",
        details={
            "limit": b.limit.label,
            "window": b.window,
            "unit": b.unit,
            "share": b.threshold,
            "limit_value": b.limit_value,
        },
    )


def evaluate(
    source: str | os.PathLike[str] | Store | Iterable[CostRecord],
    rules: Iterable[Rule],
    *,
    since: float | None = None,
    until: float | None = None,
) -> list[Alert]:
    """The alerts ``rules`` find in stored records, in time order.

    ``source``: a SQLite file, a ``postgresql://`` URL or a :class:`~costkit.report.store.Store`
    (read in SQL, from the rollups and the records in range), or an iterable of records (replayed
    through a :class:`Monitor`). ``until`` defaults to the last record's time: windows still open
    then (the hour being judged by the cache rule) are not judged. ``since`` defaults to the first
    record (the baseline before ``since`` is read all the same).
    """
    from ..report.store import Store, open_store

    checked = _check_rules(rules)
    if isinstance(source, str | os.PathLike | Store):
        store = open_store(source)
        try:
            span = store.time_range()
            if span is None:
                return []
            first, last = span
            lo = first if since is None else since
            hi = math.nextafter(last, math.inf) if until is None else until  # the last record included
            found = [a for rule in checked for a in rule.stored(store, lo, hi, first)]
        finally:
            if store is not source:
                store.close()
    else:
        monitor = Monitor(checked, background=False, log=False)  # a replay: its alerts are returned, not logged
        latest = None
        for r in source:
            if until is not None and r.timestamp >= until:
                continue
            monitor.emit(r)
            latest = r.timestamp if latest is None else max(latest, r.timestamp)
        if latest is not None or until is not None:
            monitor.check(until if until is not None else latest)
        found = [a for a in monitor.alerts if since is None or a.window_end_s > since]
    return sorted(found, key=lambda a: (a.at, a.rule, repr(a.key)))


def describe(alerts: Iterable[Alert]) -> list[str]:
    """One line per alert: time, rule, message."""
    return [f"{iso(a.at)}  {a.rule:<18} {a.message}" for a in alerts]


__all__ = ["LOGGER_NAME", "Monitor", "describe", "evaluate", "from_budget_alert"]
