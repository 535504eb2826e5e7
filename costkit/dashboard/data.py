"""What the dashboard shows, as one JSON-ready document built from a ledger in SQL.

Every number comes from a :class:`~costkit.report.store.Store`: costs, savings and cache counts
from the hourly rollups; the costliest requests, task costs and the caches' notes from the
records in the window (on the timestamp index); alerts from :func:`costkit.alerts.evaluate`;
the forecast from :func:`costkit.report.forecast.forecast_store`. The page plots exactly these
numbers (and writes back what it plotted, so a test can compare).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from typing import Any

from ..alerts import Alert, CacheHealth, CostAnomaly, Rule, evaluate
from ..alerts.cache_health import HourCounts
from ..records import now as clock_now
from ..report.forecast import forecast_store
from ..report.store import Store
from ..report.tasks import compare_arms, task_report_from_costs

SERIES_DIMS = ("feature", "tenant", "model")
MAX_SERIES = 8  # lines per chart; the rest are summed as "other"
OTHER = "(other)"
DAY_BUCKET_AFTER_S = 3 * 86400  # windows longer than this are drawn per day, shorter per hour


def default_rules() -> list[Rule]:
    """Anomalies per feature and tenant, and the caches' false hits (against the noted delta) and stale entries."""
    return [CostAnomaly(), CacheHealth()]


def _label(bucket: int, day: bool) -> str:
    t = dt.datetime.fromtimestamp(bucket * (86400 if day else 3600), dt.timezone.utc)
    return t.strftime("%Y-%m-%d") if day else t.strftime("%Y-%m-%dT%H:00Z")


def _iso(ts: float | None) -> str | None:
    return None if ts is None else dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Axis:
    """The time buckets of the window (hours, or days for long windows)."""

    def __init__(self, since: float, until: float) -> None:
        self.day = until - since > DAY_BUCKET_AFTER_S
        size = 86400 if self.day else 3600
        self.first = int(since // size)
        self.last = max(self.first, math.ceil(until / size) - 1)  # until is exclusive
        self.buckets = list(range(self.first, self.last + 1))
        self.labels = [_label(b, self.day) for b in self.buckets]

    def of_hour(self, hour: int) -> int | None:
        b = hour // 24 if self.day else hour
        return b - self.first if self.first <= b <= self.last else None


def _series(rows: Iterable[tuple[int, Any, float]], axis: _Axis, limit: int = MAX_SERIES) -> dict[str, Any]:
    """(hour, name, value) rows as ``{"names", "series"}`` on the axis, the largest ``limit`` names kept."""
    per: dict[Any, list[float]] = {}
    for hour, name, value in rows:
        i = axis.of_hour(hour)
        if i is None:
            continue
        per.setdefault(name, [0.0] * len(axis.buckets))[i] += float(value or 0.0)
    ranked = sorted(per, key=lambda k: (-sum(per[k]), str(k)))
    keep, rest = ranked[:limit], ranked[limit:]
    names = ["(none)" if k is None else str(k) for k in keep]
    series = [per[k] for k in keep]
    if rest:
        names.append(OTHER)
        series.append([sum(per[k][i] for k in rest) for i in range(len(axis.buckets))])
    return {"names": names, "series": series}


def _cache_series(store: Store, axis: _Axis, since_h: int, until_h: int, since: float, until: float) -> dict[str, Any]:
    counts = [HourCounts() for _ in axis.buckets]
    for hour, kind, cache, n in store.hourly(["kind", "cache"], ["records"], since_hour=since_h, until_hour=until_h):
        i = axis.of_hour(hour)
        if i is None:
            continue
        if kind == "call":
            counts[i].calls += int(n)
        elif kind == "cache_hit" and cache is not None:
            counts[i].hits[cache] = counts[i].hits.get(cache, 0) + int(n)
    for hour, _, ok, bad in store.verified(None, since=since, until=until):
        i = axis.of_hour(hour)
        if i is not None:
            counts[i].verified_ok += ok
            counts[i].verified_wrong += bad
    deltas = [d for _, _, d in store.noted_delta(None, since=since, until=until)]
    any_cache, estimate = CacheHealth(), CacheHealth(min_sampled=1)
    hit_rate, lookups, false_hits, sampled = [], [], [], []
    for c in counts:
        rate, n = any_cache.hit_rate(c)
        hit_rate.append(rate if n else None)
        lookups.append(n)
        found = estimate.false_hits(c)
        false_hits.append(None if found is None else found[0])
        sampled.append(c.verified_ok + c.verified_wrong)
    return {
        "hit_rate": hit_rate,
        "lookups": lookups,
        "false_hit_estimate": false_hits,
        "sampled": sampled,
        "delta": min(deltas) if deltas else None,
    }


def dashboard_data(
    store: Store,
    *,
    since: float | None = None,
    until: float | None = None,
    days: float = 7.0,
    rules: Sequence[Rule] | None = None,
    title: str = "costkit",
    top: int = 20,
) -> dict[str, Any]:
    """The dashboard's document over ``[since, until)``, read from one snapshot of the ledger.

    ``until`` defaults to just after the latest record, ``since`` to ``days`` before ``until``;
    both are rounded out to whole hours (what the rollups hold).
    """
    with store.snapshot():
        return _document(store, since=since, until=until, days=days, rules=rules, title=title, top=top)


def _document(
    store: Store,
    *,
    since: float | None,
    until: float | None,
    days: float,
    rules: Sequence[Rule] | None,
    title: str,
    top: int,
) -> dict[str, Any]:
    span = store.time_range()
    generated = clock_now()
    if span is None:
        return {"title": title, "source": store.source, "generated_at": _iso(generated), "empty": True}
    hi = _hour_ceil(until if until is not None else span[1] + 1e-6)  # whole hours: what the rollups hold
    lo = _hour_floor(since if since is not None else max(span[0], hi - days * 86400))
    axis = _Axis(lo, hi)
    since_h, until_h = int(lo // 3600), int(hi // 3600) + 1
    window_reports = store.reports([("feature",)], since=lo, until=hi)
    total = window_reports[0].total
    cost_by = {
        dim: _series(
            ((h, v, c) for h, v, c in store.hourly([dim], ["cost_usd"], since_hour=since_h, until_hour=until_h)), axis
        )
        for dim in SERIES_DIMS
    }
    savings = _series(store.hourly_savings(since_hour=since_h, until_hour=until_h), axis)
    outcomes = store.outcomes()
    by_arm: dict[tuple[tuple[Any, ...], str], float] = {}
    by_feature: dict[tuple[tuple[Any, ...], str], float] = {}
    # one pass over the window's tasks for both tables
    for ((feature, experiment, arm), task), usd in store.task_costs(
        ["feature", "experiment", "arm"], since=lo, until=hi
    ).items():
        by_arm[((experiment, arm), task)] = by_arm.get(((experiment, arm), task), 0.0) + usd
        by_feature[((feature,), task)] = by_feature.get(((feature,), task), 0.0) + usd
    arms = compare_arms(task_report_from_costs(by_arm, outcomes, ("experiment", "arm")))
    tasks = task_report_from_costs(by_feature, outcomes, ("feature",))
    alerts: list[Alert] = evaluate(store, rules if rules is not None else default_rules(), since=lo, until=hi)
    return {
        "title": title,
        "source": store.source,
        "generated_at": _iso(generated),
        "since": _iso(lo),
        "until": _iso(hi),
        "bucket": "day" if axis.day else "hour",
        "time": axis.labels,
        "totals": total.to_dict(),
        "cost_by": cost_by,
        "savings_by_layer": savings,
        "cache": _cache_series(store, axis, since_h, until_h, lo, hi),
        "arms": [a.to_dict() for a in arms],
        "tasks": tasks.to_dict(),
        "alerts": [a.to_dict() for a in alerts[-200:]],
        "forecast": [f.to_dict() for f in forecast_store(store, as_of=span[1] if until is None else min(hi, span[1]))],
        "top_requests": [{**r, "time": _iso(r["timestamp"])} for r in store.top_requests(top, since=lo, until=hi)],
    }


def _hour_floor(ts: float) -> float:
    return (ts // 3600) * 3600.0


def _hour_ceil(ts: float) -> float:
    return -((-ts) // 3600) * 3600.0


__all__ = ["MAX_SERIES", "OTHER", "SERIES_DIMS", "dashboard_data", "default_rules"]
