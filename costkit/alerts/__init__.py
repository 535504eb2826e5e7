"""costkit.alerts: know before the invoice. Cost anomalies, loops, cache health and budgets.

Rules (configuration; each runs live and over stored records):

* :class:`CostAnomaly`: a feature's (tenant's ...) hourly spend against the same hour of day over
  the previous 7 days (median + k robust spreads);
* :class:`Burst`: a tenant's spend (or call count) over a short sliding window: loops;
* :class:`CacheHealth`: hit rate under a floor, the live false-hit estimate over delta, entries
  served past their TTL;
* budget thresholds: ``costkit.Budget(..., on_alert=monitor.budget)``.

Live: a :class:`Monitor` is a sink (``sink=[SQLiteSink(...), monitor]``); every alert goes to
its ``on_alert`` callbacks and to the ``costkit.alerts`` logger. Stored: :func:`evaluate` reads a
SQLite file or Postgres ledger in SQL (or replays records) and finds the same alerts.
"""

from __future__ import annotations

from .alert import RULES, Alert, Rule
from .anomaly import CostAnomaly
from .burst import Burst
from .cache_health import CacheHealth
from .monitor import LOGGER_NAME, Monitor, describe, evaluate, from_budget_alert

__all__ = [
    "LOGGER_NAME",
    "RULES",
    "Alert",
    "Burst",
    "CacheHealth",
    "CostAnomaly",
    "Monitor",
    "Rule",
    "describe",
    "evaluate",
    "from_budget_alert",
]
