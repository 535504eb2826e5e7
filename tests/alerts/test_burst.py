"""Burst: a tenant's spend over a short sliding window (a loop), one alert per episode."""

from __future__ import annotations

import pytest
from alert_traffic import record, stored

import costkit
from costkit.alerts import Burst, Monitor, evaluate
from costkit.errors import ConfigError

T0 = 1_793_491_200.0  # 2026-11-01 00:00 UTC


def test_a_loop_fires_at_the_call_that_passes_the_limit(traffic) -> None:
    t = traffic("2026-11-02T10:00:00Z")
    monitor = Monitor([Burst(max_usd=0.001, window_s=60)], background=False)
    t.client = costkit.wrap(t.fake, sink=[t.sink, monitor])
    t.ask(3, tenant="acme", gap_s=30)  # normal pace
    assert list(monitor.alerts) == []
    t.ask(40, tenant="acme", words=60, gap_s=1)  # an agent stuck in a loop
    (alert,) = monitor.alerts
    recent = [r for r in t.sink.records if alert.at - 60 < r.timestamp <= alert.at]
    # the window is the last 6 ten-second steps up to the crossing record's step
    in_window = [r for r in t.sink.records if alert.window_start_s <= r.timestamp <= alert.at]
    assert alert.rule == "burst" and alert.subject == {"tenant": "acme"} and alert.threshold == 0.001
    assert alert.value == pytest.approx(sum(r.cost_usd for r in in_window)) and alert.value > 0.001
    assert alert.value - in_window[-1].cost_usd <= 0.001  # one call earlier it had not passed
    assert alert.details["records"] == len(in_window) and len(recent) >= len(in_window)
    assert alert.window_end_s - alert.window_start_s == 60


def _loop(start: float, n: int, *, tenant: str = "acme", gap_s: float = 1.0, usd: float = 0.125) -> list:
    return [
        record(request_id=f"{tenant}{start}{i}", tenant=tenant, timestamp=start + i * gap_s, cost_usd=usd)
        for i in range(n)
    ]


def test_one_alert_per_episode_and_again_after_a_quiet_window(tmp_path) -> None:
    rule = Burst(max_usd=1.0, window_s=60, steps=6)
    recs = _loop(T0, 50) + _loop(T0 + 95, 30) + _loop(T0 + 400, 30) + _loop(T0, 5, tenant="globex", gap_s=20)
    recs.sort(key=lambda r: r.timestamp)
    live = evaluate(recs, [rule])
    # acme: 0-49 s and 95-124 s are one episode (the rate never stayed low for a window); 400 s is another
    assert [(a.subject["tenant"], a.window_end_s - T0) for a in live] == [("acme", 10.0), ("acme", 410.0)]
    # the first crossing: 9 calls at $0.125 in 0..8 s = $1.125
    assert live[0].value == 1.125 and live[0].details["records"] == 9 and live[0].at == T0 + 8
    assert {a.key for a in evaluate(stored(tmp_path, recs), [rule])} == {a.key for a in live}


def test_a_call_count_limit_catches_cheap_loops(tmp_path) -> None:
    rule = Burst(max_calls=20, window_s=30, steps=3)
    recs = _loop(T0, 25, usd=0.0, gap_s=0.5)
    (alert,) = evaluate(recs, [rule])
    assert alert.details["records"] == 21 and alert.value == 0.0
    assert [a.key for a in evaluate(stored(tmp_path, recs), [rule])] == [alert.key]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({}, "max_usd"),
        ({"max_usd": -1}, "max_usd"),
        ({"max_usd": 1, "window_s": 10, "steps": 3}, "window_s"),
        ({"max_usd": 1, "steps": 0}, "steps"),
        ({"max_usd": 1, "by": "colour"}, "by"),
    ],
)
def test_bad_configuration_names_the_field(kwargs, field) -> None:
    with pytest.raises(ConfigError) as err:
        Burst(**kwargs)
    assert err.value.field == field


def test_a_relative_limit_catches_a_loop_in_a_small_tenant(tmp_path) -> None:
    # two tenants for an hour: big spends $1.00 a minute, small $0.01; then small loops at $0.05 a minute
    recs = []
    for minute in range(70):
        recs.append(record(request_id=f"b{minute}", tenant="big", timestamp=T0 + minute * 60 + 1, cost_usd=1.0))
        recs.append(record(request_id=f"s{minute}", tenant="small", timestamp=T0 + minute * 60 + 2, cost_usd=0.01))
    loop = [
        record(request_id=f"l{i}", tenant="small", timestamp=T0 + 65 * 60 + 5 + i, cost_usd=0.05 / 60)
        for i in range(240)
    ]
    recs = sorted(recs + loop, key=lambda r: r.timestamp)
    absolute = Burst(max_usd=1.5)  # above big's normal rate: blind to small's loop
    relative = Burst(factor=3.0, min_usd=0.02)
    assert evaluate(recs, [absolute]) == []
    (alert,) = evaluate(recs, [relative])
    assert alert.subject == {"tenant": "small"} and alert.details["baseline_usd"] == pytest.approx(0.01)
    assert alert.threshold == pytest.approx(0.03) and alert.value > 0.03
    assert T0 + 65 * 60 + 5 < alert.at < T0 + 66 * 60 + 5  # within the loop's first minute
    assert [a.key for a in evaluate(stored(tmp_path, recs), [relative])] == [alert.key]
