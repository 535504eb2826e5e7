"""Month-end forecast: spent so far + the daily mean x days left, with a t prediction interval."""

from __future__ import annotations

import datetime as dt
import math
import statistics

import pytest

from costkit.records import CostRecord
from costkit.report.forecast import TOTAL, forecast_series, forecast_store, month_bounds, t975
from costkit.report.store import Store

DAY = 86400


def ts(day: int, hour: int = 12) -> float:
    return dt.datetime(2026, 11, day, hour, tzinfo=dt.timezone.utc).timestamp()


def hours_of(daily: dict[int, float]) -> dict[int, float]:
    """Each November day's spend put in its noon hour."""
    return {int(ts(d) // 3600): usd for d, usd in daily.items()}


def test_month_bounds() -> None:
    start, end, label = month_bounds(ts(17))
    assert (label, end - start) == ("2026-11", 30 * DAY)
    assert month_bounds(dt.datetime(2026, 2, 3, tzinfo=dt.timezone.utc).timestamp())[2] == "2026-02"


def test_steady_spend_forecasts_exactly_with_no_width() -> None:
    f = forecast_series("faq", hours_of({d: 2.0 for d in range(1, 21)}), as_of=ts(20), history_start=ts(1, 0))
    # spent Nov 1..20 = 40; 14 complete days before the 20th at $2; 10.5 days left after the 20th's 12:00 hour
    assert f.spent_usd == 40.0 and f.days_used == 14 and f.daily_mean_usd == 2.0 and f.daily_sd_usd == 0.0
    assert f.remaining_days == pytest.approx((ts(30, 0) + DAY - ts(20, 13)) / DAY)
    assert f.forecast_usd == pytest.approx(40 + 2 * f.remaining_days)
    assert f.low_usd == f.high_usd == pytest.approx(f.forecast_usd)


def test_interval_is_a_t_prediction_interval_for_the_days_left() -> None:
    daily = {1: 1.0, 2: 3.0, 3: 2.0, 4: 6.0, 5: 3.0}
    f = forecast_series(None, hours_of({**daily, 6: 0.5}), as_of=ts(6, 12), history_start=ts(1, 0), days=14)
    values = list(daily.values())
    n, m, s = 5, statistics.fmean(values), statistics.stdev(values)
    r = (ts(30, 0) + DAY - ts(6, 13)) / DAY
    half = t975(n - 1) * s * math.sqrt(r + r * r / n)
    assert (f.days_used, f.daily_mean_usd, f.daily_sd_usd) == (5, m, s)
    assert f.forecast_usd == pytest.approx(sum(values) + 0.5 + m * r)
    assert f.low_usd == pytest.approx(f.forecast_usd - half) and f.high_usd == pytest.approx(f.forecast_usd + half)
    assert t975(4) == 2.776 and t975(100) == pytest.approx(1.96, abs=1e-3)


def test_days_before_the_first_record_do_not_count_and_one_day_gives_no_interval() -> None:
    f = forecast_series("x", hours_of({10: 4.0, 11: 4.0}), as_of=ts(11, 20), history_start=ts(10, 6))
    assert f.days_used == 0 and f.low_usd is None  # the 10th began before the first record: not complete
    assert f.daily_mean_usd == pytest.approx(8.0 / ((ts(11, 21) - ts(10, 6)) / DAY))  # the rate so far
    f = forecast_series("x", hours_of({10: 4.0, 11: 4.0, 12: 1.0}), as_of=ts(12, 20), history_start=ts(10, 0))
    assert f.days_used == 2 and f.daily_mean_usd == 4.0 and f.low_usd is not None
    f = forecast_series("x", hours_of({11: 4.0, 12: 1.0}), as_of=ts(12, 20), history_start=ts(10, 0))
    assert f.days_used == 2 and f.daily_mean_usd == 2.0  # the 10th is observed and cost nothing


def test_the_lower_bound_never_goes_under_what_is_spent() -> None:
    f = forecast_series("x", hours_of({1: 0.0, 2: 50.0, 3: 0.0, 4: 0.0}), as_of=ts(4, 23), history_start=ts(1, 0))
    assert f.low_usd == f.spent_usd == 50.0


def test_forecast_store_matches_the_series_of_its_records() -> None:
    recs = []
    for d in range(1, 12):
        for feature, usd in (("faq", 0.25 * d), ("chat", 1.0)):
            recs.append(
                CostRecord(
                    request_id=f"{feature}{d}",
                    attempt=1,
                    kind="call",
                    timestamp=ts(d, 9),
                    provider="openai",
                    requested_model="m",
                    model="m",
                    feature=feature,
                    cost_usd=usd,
                )
            )
    with Store.from_records(recs) as store:
        got = forecast_store(store, days=7)
    assert [f.key for f in got] == [TOTAL, "faq", "chat"]  # the total first, then by forecast
    first = ts(1, 9)
    for f in got:
        mine = [r for r in recs if f.key in (TOTAL, r.feature)]
        hours: dict[int, float] = {}
        for r in mine:
            hours[int(r.timestamp // 3600)] = hours.get(int(r.timestamp // 3600), 0.0) + r.cost_usd
        want = forecast_series(f.key, hours, as_of=recs[-1].timestamp, history_start=first, days=7)
        assert f == want
    assert got[2].daily_sd_usd == 0.0 and got[2].forecast_usd == pytest.approx(11 + 1.0 * got[2].remaining_days)
