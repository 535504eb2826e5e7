"""CacheHealth: hit rate under a floor, the live false-hit estimate over delta, entries past their TTL."""

from __future__ import annotations

import sqlite3
import time

import pytest
from alert_traffic import record, stored

import costkit
from costkit.alerts import CacheHealth, Monitor, evaluate
from costkit.alerts.cache_health import HourCounts
from costkit.errors import ConfigError

H10 = 1_793_491_200.0 + 10 * 3600  # 2026-11-01 10:00 UTC


def test_hit_rate_under_the_floor_is_judged_when_the_hour_is_over(traffic, tmp_path) -> None:
    t = traffic("2026-11-02T10:00:00Z")
    monitor = Monitor([CacheHealth(min_hit_rate=0.5, min_lookups=10)], background=False)
    t.client = costkit.wrap(t.fake, policies=[costkit.ExactCache(store="memory")], sink=[t.sink, monitor])
    q = [{"role": "user", "content": "What is the refund window?"}]
    for i in range(10):  # 10 lookups; q asked twice: the second is a hit (10%)
        with costkit.tags(feature="faq"):
            content = q if i in (3, 7) else [{"role": "user", "content": f"question {i}"}]
            t.client.chat.completions.create(model="gpt-4o-mini", messages=content, temperature=0)
        t.clock.advance(60)
    assert [r.kind for r in t.sink.records].count("cache_hit") == 1  # the first ask of q stored it
    assert list(monitor.alerts) == []  # the hour is not over yet
    t.at("2026-11-02T11:05:00Z")
    t.ask(1, feature="faq")
    (alert,) = monitor.alerts
    assert alert.rule == "cache_hit_rate" and alert.subject == {"feature": "faq"}
    assert alert.value == 0.1 and alert.details["lookups"] == 10 and alert.threshold == 0.5
    assert alert.at == alert.window_end_s == alert.window_start_s + 3600
    assert monitor.check(t.clock.now() + 3600) == []  # 11:00 has 1 lookup: under min_lookups
    assert [
        a.key for a in evaluate(stored(tmp_path, t.sink.records), [CacheHealth(min_hit_rate=0.5, min_lookups=10)])
    ] == [alert.key]


def test_lookups_of_one_cache_are_the_requests_that_reached_it() -> None:
    c = HourCounts(calls=20, hits={"dedup": 5, "exact": 10, "semantic": 15})
    assert CacheHealth(cache="any").hit_rate(c) == (30 / 50, 50)
    assert CacheHealth(cache="dedup").hit_rate(c) == (5 / 50, 50)
    assert CacheHealth(cache="exact").hit_rate(c) == (10 / 45, 45)
    assert CacheHealth(cache="semantic").hit_rate(c) == (15 / 35, 35)


def _semantic_hour(*, hits: int, sampled_ok: int, calls: int, refuted: int, delta: float = 0.02) -> list:
    recs = []
    for i in range(hits):
        notes: dict = {"max_false_hit_rate": delta}
        if i < sampled_ok:
            notes["cache_verified"] = True
        recs.append(
            record(
                request_id=f"h{i}",
                kind="cache_hit",
                attempt=0,
                cache="semantic",
                cost_usd=0.0,
                timestamp=H10 + i,
                notes=notes,
            )
        )
    for i in range(calls):
        notes = {"cache_verified": False} if i < refuted else {}
        recs.append(record(request_id=f"c{i}", timestamp=H10 + 100 + i, notes=notes))
    # values that are not a verdict are ignored, whatever they look like
    for i, junk in enumerate(("yes", 1, None, {"a": 1}, [True])):
        recs.append(
            record(
                request_id=f"j{i}",
                kind="cache_hit",
                attempt=0,
                cache="semantic",
                cost_usd=0.0,
                timestamp=H10 + 200 + i,
                notes={"cache_verified": junk, "max_false_hit_rate": "0.5"},
            )
        )
    recs.append(record(request_id="next", timestamp=H10 + 3600 + 1))  # closes the hour
    return recs


def test_live_false_hit_estimate_from_sampled_verdicts(tmp_path) -> None:
    recs = _semantic_hour(hits=30, sampled_ok=10, calls=20, refuted=2)
    # 12 verdicts, 2 wrong; the cache would have answered 30 + 5 junk + 2 directly, out of 20 + 35 lookups
    expected = (2 / 12) * (35 + 2) / (20 + 35)
    (alert,) = evaluate(recs, [CacheHealth(min_sampled=12)])
    assert alert.rule == "cache_false_hits" and alert.value == pytest.approx(expected, abs=1e-15)
    assert alert.threshold == 0.02 and alert.details == {"sampled": 12, "wrong": 2}
    assert evaluate(recs, [CacheHealth(min_sampled=13)]) == []  # too few verdicts to judge
    assert evaluate(recs, [CacheHealth(min_sampled=12, max_false_hit_rate=0.2)]) == []  # a looser delta
    path = stored(tmp_path, recs)
    with sqlite3.connect(path) as conn:  # a row whose notes are not JSON at all: never an error
        conn.execute("UPDATE cost_records SET notes = '{\"cache_verified\": tru' WHERE request_id = 'j0'")
    (from_sql,) = evaluate(path, [CacheHealth(min_sampled=12)])
    assert from_sql.key == alert.key and from_sql.value == pytest.approx(expected, abs=1e-15)


def test_an_entry_served_past_its_ttl(traffic, tmp_path) -> None:
    # the exact cache stamps entries with the wall clock: start the simulated clock there
    t = traffic(time.time())
    t.client = costkit.wrap(t.fake, policies=[costkit.ExactCache(store="memory")], sink=t.sink)
    monitor = Monitor([CacheHealth(ttl_s={"faq": 3600})], background=False)
    q = [{"role": "user", "content": "What is the refund window?"}]
    for _ in range(2):
        for feature in ("faq", "other"):
            with costkit.tags(feature=feature):
                t.client.chat.completions.create(model="gpt-4o-mini", messages=q, temperature=0)
        t.clock.advance(7200)
    for r in t.sink.records:
        monitor.emit(r)
    (alert,) = monitor.alerts  # "other" has no TTL to break
    hit = next(r for r in t.sink.records if r.kind == "cache_hit" and r.feature == "faq")
    assert alert.rule == "cache_stale" and alert.subject == {"feature": "faq"} and alert.at == hit.timestamp
    assert 7199 < alert.value < 7260 and alert.threshold == 3600
    assert [a.key for a in evaluate(stored(tmp_path, t.sink.records), [CacheHealth(ttl_s={"faq": 3600})])] == [
        alert.key
    ]


def test_a_ttl_noted_on_the_hit_wins_over_the_rules() -> None:
    hit = record(
        kind="cache_hit",
        attempt=0,
        cache="exact",
        cost_usd=0.0,
        timestamp=H10,
        notes={"cached_at": H10 - 100, "ttl_s": 60},
    )
    (alert,) = evaluate([hit], [CacheHealth(ttl_s=3600)])
    assert (alert.value, alert.threshold) == (100, 60)
    assert evaluate([hit], [CacheHealth(ttl_s=3600, stale=False)]) == []
    garbage = record(
        kind="cache_hit",
        attempt=0,
        cache="exact",
        cost_usd=0.0,
        timestamp=H10,
        notes={"cached_at": "yesterday", "ttl_s": True},
    )
    assert evaluate([garbage], [CacheHealth(ttl_s=1)]) == []


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"min_hit_rate": 1.5}, "min_hit_rate"),
        ({"max_false_hit_rate": -0.1}, "max_false_hit_rate"),
        ({"cache": "redis"}, "cache"),
        ({"min_lookups": 0}, "min_lookups"),
        ({"by": "user"}, "by"),
        ({"ttl_s": 0}, "ttl_s"),
    ],
)
def test_bad_configuration_names_the_field(kwargs, field) -> None:
    with pytest.raises(ConfigError) as err:
        CacheHealth(**kwargs)
    assert err.value.field == field
