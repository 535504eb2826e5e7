"""CostAnomaly: an hour far above the same hour on the previous days, live and over stored records."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

import pytest
from alert_traffic import record, stored

import costkit
from costkit.alerts import CostAnomaly, Monitor, evaluate
from costkit.alerts.anomaly import robust_line
from costkit.errors import ConfigError


def test_robust_line_is_median_plus_k_mad_spreads() -> None:
    # baseline 1, 2, 3, 4, 100: median 3, |dev| 2, 1, 0, 1, 97 -> MAD 1 -> spread 1.4826
    median, spread, line = robust_line([1, 2, 3, 4, 100], k=4, min_usd=0.0, rel_spread=0.0)
    assert (median, spread) == (3, 1.4826) and line == pytest.approx(3 + 4 * 1.4826)
    # a steady baseline keeps rel_spread x median of room, and at least min_usd
    assert robust_line([10, 10, 10], k=4, min_usd=0.5, rel_spread=0.1) == (10, 1.0, 14.0)
    assert robust_line([0, 0, 0], k=4, min_usd=0.5, rel_spread=0.1) == (0, 0.0, 0.5)


def _hourly(records) -> dict:
    out: dict = defaultdict(float)
    for r in records:
        out[(r.feature, int(r.timestamp // 3600))] += r.cost_usd or 0.0
    return out


def test_a_spike_against_the_same_hour_of_day_fires_once_with_its_numbers(traffic) -> None:
    t = traffic("2026-11-02T00:00:00Z")
    monitor = Monitor([CostAnomaly(by=("feature",), min_usd=0.0001, min_days=3)], background=False)
    t.client = costkit.wrap(t.fake, sink=[t.sink, monitor])
    for day in range(5):
        for hour in (9, 14):  # 14:00 is always busy: 6 calls against 2 at 09:00
            t.at(f"2026-11-{2 + day:02d}T{hour:02d}:10:00Z")
            t.ask(6 if hour == 14 else 2, feature="faq", gap_s=30)
    assert list(monitor.alerts) == []  # the daily busy hour is the baseline, not an anomaly
    t.at("2026-11-07T09:10:00Z")
    t.ask(12, feature="faq", words=40, gap_s=10)  # a 09:00 like no other
    (alert,) = monitor.alerts
    sums = _hourly(t.sink.records)
    hour = int(dt.datetime(2026, 11, 7, 9, tzinfo=dt.timezone.utc).timestamp() // 3600)
    baseline = [sums[("faq", hour - 24 * d)] for d in range(1, 6)]
    median, spread, line = robust_line(baseline, k=4.0, min_usd=0.0001, rel_spread=0.1)
    assert alert.rule == "cost_anomaly" and alert.subject == {"feature": "faq"}
    assert (alert.window_start_s, alert.window_end_s) == (hour * 3600.0, (hour + 1) * 3600.0)
    assert alert.threshold == pytest.approx(line, abs=1e-15)
    assert alert.details["baseline_days"] == 5 and alert.details["median_usd"] == pytest.approx(median)
    assert alert.details["spread_usd"] == pytest.approx(spread)
    # it fired at the record that crossed the line: the spend so far passed it, one call earlier did not
    so_far = [r for r in t.sink.records if int(r.timestamp // 3600) == hour and r.timestamp <= alert.at]
    assert alert.value == pytest.approx(sum(r.cost_usd for r in so_far)) and alert.value > line
    assert sum(r.cost_usd for r in so_far[:-1]) <= line
    assert alert.at == so_far[-1].timestamp


def test_no_baseline_no_alert_and_days_before_the_first_record_do_not_count() -> None:
    rule = CostAnomaly(by=("feature",), min_days=3, min_usd=0.01)
    day = 86400.0
    # two days of history only: 09:00 on day 3 cannot be judged yet
    recs = [record(request_id=f"a{d}", timestamp=1_793_491_200.0 + d * day + 9 * 3600, cost_usd=0.25) for d in range(2)]
    recs.append(record(request_id="spike", timestamp=1_793_491_200.0 + 2 * day + 9 * 3600, cost_usd=50.0))
    assert evaluate(recs, [rule]) == []
    # a third day of history (with no 09:00 spend: it counts as $0) makes a baseline of 3 days
    recs.insert(0, record(request_id="early", timestamp=1_793_491_200.0 - day + 3600, cost_usd=0.25))
    (alert,) = evaluate(recs, [rule])
    assert alert.details["baseline_days"] == 3 and alert.details["median_usd"] == 0.25 and alert.value == 50.0


def test_stored_records_give_the_same_alerts_as_the_live_replay(tmp_path) -> None:
    recs = []
    for d in range(8):
        for h in range(24):
            cost = 0.125 * (1 + h % 3) * (8 if (d, h) in ((7, 3), (6, 20)) else 1)
            for k, (feature, tenant) in enumerate((("faq", "acme"), ("chat", "globex"))):
                ts = 1_793_491_200.0 + d * 86400 + h * 3600 + 60 * k
                recs.append(
                    record(request_id=f"{d}-{h}-{k}", timestamp=ts, cost_usd=cost, feature=feature, tenant=tenant)
                )
    rules = [CostAnomaly(min_usd=0.1)]
    live = evaluate(recs, rules)
    from_sql = evaluate(stored(tmp_path, recs), rules)
    assert {a.key for a in live} == {a.key for a in from_sql} and len(
        live
    ) == 8  # 2 spikes x 2 features x 2 tenants... by dim
    assert sorted(a.threshold for a in live) == pytest.approx(sorted(a.threshold for a in from_sql))
    assert {(a.subject.get("feature") or a.subject.get("tenant")) for a in live} == {"faq", "chat", "acme", "globex"}


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"by": ("user",)}, "by"), ({"days": 0}, "days"), ({"k": -1}, "k"), ({"min_days": 9}, "min_days")],
)
def test_bad_configuration_names_the_field(kwargs, field) -> None:
    with pytest.raises(ConfigError) as err:
        CostAnomaly(**kwargs)
    assert err.value.field == field
