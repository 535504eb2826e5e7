"""Forecast: what each feature will have cost by the end of the month, with a 95% interval.

Method (per feature, and for the total on its own series):

* **spent** = cost from the first of the month (UTC) to the end of the ``as_of`` hour;
* the **daily rate** is the mean ``m`` of the last ``days`` complete UTC days before ``as_of``'s day
  (14 by default; days before the ledger's first record do not count, a day with no spend counts
  as $0), with standard deviation ``s`` over those ``n`` days;
* **forecast** = spent + m x R, where R is the days left until the end of the month;
* the **interval** is a prediction interval for the sum of R future days, treating days as
  independent draws around ``m``: ``forecast +- t(0.975, n-1) x s x sqrt(R + R^2 / n)`` (the first
  term is the days' own variation, the second the uncertainty of ``m``), never below what is
  already spent. It needs ``n >= 2``; with fewer complete days there is a forecast from the rate
  so far this month, and no interval.

Weekly cycles and trends are not modelled: the interval is honest about day-to-day noise, not
about a launch next week. ``benchmarks/forecast.py`` measures how often it holds.
"""

from __future__ import annotations

import calendar
import datetime as dt
import math
import statistics
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from .store import Store

DAY_S = 86400
TOTAL = "(all)"
# two-sided 95% Student t quantiles by degrees of freedom; beyond 30, the normal 1.96
_T975: tuple[float, ...] = (
    12.706,
    4.303,
    3.182,
    2.776,
    2.571,
    2.447,
    2.365,
    2.306,
    2.262,
    2.228,
    2.201,
    2.179,
    2.160,
    2.145,
    2.131,
)
_T975 += (2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def t975(df: int) -> float:
    return _T975[df - 1] if 1 <= df <= len(_T975) else 1.959963984540054


@attrs.frozen(kw_only=True)
class Forecast:
    """Month-end spend of one feature (``key``; :data:`TOTAL` for everything)."""

    key: str | None
    month: str  # "2026-11"
    as_of: float
    spent_usd: float
    daily_mean_usd: float
    daily_sd_usd: float | None
    days_used: int
    remaining_days: float
    forecast_usd: float
    low_usd: float | None
    high_usd: float | None

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


def month_bounds(ts: float) -> tuple[float, float, str]:
    """(start, end, "YYYY-MM") of the UTC month holding ``ts``."""
    d = dt.datetime.fromtimestamp(ts, dt.timezone.utc)
    start = dt.datetime(d.year, d.month, 1, tzinfo=dt.timezone.utc)
    days = calendar.monthrange(d.year, d.month)[1]
    return start.timestamp(), start.timestamp() + days * DAY_S, f"{d.year:04d}-{d.month:02d}"


def forecast_series(
    key: str | None,
    hours: Mapping[int, float],
    *,
    as_of: float,
    history_start: float,
    days: int = 14,
) -> Forecast:
    """The forecast of one hourly spend series (epoch hour -> USD), as in the module docstring."""
    as_of_hour = int(as_of // 3600)
    start, end, label = month_bounds(as_of_hour * 3600.0)
    cut = min(float((as_of_hour + 1) * 3600), end)  # spent covers the whole as_of hour
    spent = sum(v for h, v in hours.items() if start <= h * 3600 < cut)
    today = int(as_of_hour // 24)
    first_hour = int(history_start // 3600)
    complete = [d for d in range(today - days, today) if d * 24 >= first_hour]
    per_day: dict[int, float] = {d: 0.0 for d in complete}
    for h, v in hours.items():
        d = h // 24
        if d in per_day:
            per_day[d] += v
    remaining = max(0.0, (end - cut) / DAY_S)
    values = list(per_day.values())
    if values:
        mean = statistics.fmean(values)
    else:  # no complete day yet: the rate so far this month
        observed = (cut - max(start, first_hour * 3600.0)) / DAY_S
        mean = spent / observed if observed > 0 else 0.0
    sd = statistics.stdev(values) if len(values) >= 2 else None
    forecast = spent + mean * remaining
    low = high = None
    if sd is not None:
        half = t975(len(values) - 1) * sd * math.sqrt(remaining + remaining * remaining / len(values))
        low, high = max(spent, forecast - half), forecast + half
    return Forecast(
        key=key,
        month=label,
        as_of=as_of,
        spent_usd=spent,
        daily_mean_usd=mean,
        daily_sd_usd=sd,
        days_used=len(values),
        remaining_days=remaining,
        forecast_usd=forecast,
        low_usd=low,
        high_usd=high,
    )


def forecast_store(store: Store, *, by: str = "feature", as_of: float | None = None, days: int = 14) -> list[Forecast]:
    """Month-end forecasts per value of ``by`` and for the total (first), from a ledger's rollups.

    ``as_of`` defaults to the latest record's time: "from the records so far".
    """
    span = store.time_range()
    if span is None:
        return []
    first, last = span
    when = last if as_of is None else as_of
    start, _, _ = month_bounds(when)
    since_hour = int(min(start, (int(when // DAY_S) - days) * DAY_S) // 3600)
    until_hour = int(when // 3600) + 1
    series: dict[str | None, dict[int, float]] = {}
    total: dict[int, float] = {}
    for hour, value, cost in store.hourly([by], ["cost_usd"], since_hour=since_hour, until_hour=until_hour):
        usd = float(cost or 0.0)
        series.setdefault(value, {})[hour] = series.get(value, {}).get(hour, 0.0) + usd
        total[hour] = total.get(hour, 0.0) + usd
    out = [forecast_series(TOTAL, total, as_of=when, history_start=first, days=days)]
    rest = [forecast_series(k, v, as_of=when, history_start=first, days=days) for k, v in series.items()]
    return out + sorted(rest, key=lambda f: (-f.forecast_usd, str(f.key)))


__all__ = ["TOTAL", "Forecast", "forecast_series", "forecast_store", "month_bounds", "t975"]
