from __future__ import annotations

import datetime as dt

import pytest

from costkit.errors import ConfigError
from costkit.report.aggregate import aggregate, aggregate_many, filter_records, parse_time
from costkit.sinks import MemorySink

NOV1 = dt.datetime(2026, 11, 1, 10, tzinfo=dt.timezone.utc).timestamp()
NOV2 = dt.datetime(2026, 11, 2, 9, tzinfo=dt.timezone.utc).timestamp()

TOTAL = 0.25 + 0.125 + 1.0 + 0.0625 + 0.5  # 1.9375


def test_total(records) -> None:
    t = aggregate(records).total
    assert t.key == ()
    assert (t.requests, t.attempts, t.cache_hits, t.records) == (6, 7, 1, 8)
    assert t.cost_usd == TOTAL == 1.9375
    assert t.saved_usd == 0.75
    assert dict(t.savings) == {"router": 0.5, "exact": 0.25}
    assert (t.errors, t.unpriced) == (1, 1)
    assert t.input_tokens == 100 + 0 + 100 + 1000 + 0 + 100 + 100 + 100
    assert t.output_tokens == 20 + 0 + 20 + 200 + 0 + 20 + 20 + 20
    assert t.cached_read_tokens == 50
    assert t.cache_hit_rate == 1 / 6
    assert t.share == 1.0
    assert t.would_have_cost_usd == 2.6875
    assert t.savings_rate == 0.75 / 2.6875


def test_by_feature_sorted_by_cost(records) -> None:
    rep = aggregate(records, by="feature")
    assert [g.key for g in rep.groups] == [("summary",), (None,), ("faq",)]
    faq = rep.group("faq")
    assert (faq.requests, faq.attempts, faq.cache_hits, faq.records) == (3, 3, 1, 4)
    assert faq.cost_usd == 0.375
    assert faq.saved_usd == 0.75
    assert dict(faq.savings) == {"router": 0.5, "exact": 0.25}
    assert faq.cache_hit_rate == 1 / 3
    assert (faq.errors, faq.unpriced) == (1, 0)
    assert faq.share == 0.375 / 1.9375
    assert faq.cost_per_request == 0.125
    summary = rep.group("summary")
    assert (summary.requests, summary.cost_usd, summary.unpriced, summary.share) == (2, 1.0, 1, 1.0 / 1.9375)
    none = rep.group(None)
    assert (none.requests, none.attempts, none.cost_usd) == (1, 2, 0.5625)
    assert sum(g.share for g in rep.groups) == pytest.approx(1.0)
    assert rep.layers == ("router", "exact")


def test_by_model_counts_a_cascade_request_in_both_models(records) -> None:
    rep = aggregate(records, by="model")
    assert [(g.key[0], g.requests, g.cost_usd) for g in rep.groups] == [
        ("gpt-4o", 2, 1.5),
        ("gpt-4o-mini", 4, 0.4375),
        ("mystery-1", 1, 0.0),
    ]
    assert rep.total.requests == 6


def test_by_two_dimensions(records) -> None:
    rep = aggregate(records, by=("tenant", "day"))
    assert {g.key: g.cost_usd for g in rep.groups} == {
        ("acme", "2026-11-01"): 1.25,
        ("globex", "2026-11-01"): 0.125,
        ("acme", "2026-11-02"): 0.5625,
        ("globex", "2026-11-02"): 0.0,
    }
    assert rep.groups[0].key == ("acme", "2026-11-01")


@pytest.mark.parametrize(
    ("by", "expected"),
    [
        ("kind", {("call",): 1.3125, ("retry",): 0.125, ("escalation",): 0.5, ("cache_hit",): 0.0}),
        ("cache", {("none",): 1.9375, ("exact",): 0.0}),
        ("provider", {("openai",): 1.9375, ("litellm",): 0.0}),
        ("route", {("/ask",): 0.25, (None,): 1.6875}),
        ("success", {("ok",): 1.9375, ("error",): 0.0}),
        ("month", {("2026-11",): 1.9375}),
    ],
)
def test_other_dimensions(records, by, expected) -> None:
    assert {g.key: g.cost_usd for g in aggregate(records, by=by).groups} == expected


def test_many_groupings_in_one_pass_over_an_iterator(records) -> None:
    by_feature, by_tenant = aggregate_many(iter(records), [["feature"], ["tenant"]])
    assert by_feature.total == by_tenant.total
    assert [(g.key, g.cost_usd) for g in by_tenant.groups] == [(("acme",), 1.8125), (("globex",), 0.125)]


def test_works_on_a_memory_sink(records) -> None:
    sink = MemorySink()
    for r in records:
        sink.emit(r)
    assert aggregate(sink).total.cost_usd == 1.9375


def test_empty_input() -> None:
    rep = aggregate([], by="feature")
    assert rep.groups == ()
    assert (rep.total.requests, rep.total.cost_usd, rep.total.cache_hit_rate, rep.total.share) == (0, 0.0, 0.0, 0.0)


def test_to_dict_is_json_ready(records) -> None:
    d = aggregate(records, by="feature").to_dict()
    assert d["by"] == ["feature"]
    assert d["groups"][0]["feature"] == "summary"
    assert d["groups"][0]["cost_usd"] == 1.0
    assert d["total"]["requests"] == 6


def test_unknown_dimension_is_a_config_error(records) -> None:
    with pytest.raises(ConfigError) as err:
        aggregate(records, by="colour")
    assert err.value.field == "by"
    with pytest.raises(ConfigError):
        aggregate(records, by=("tenant", "tenant"))


def test_filters(records) -> None:
    nov2 = list(filter_records(records, since=parse_time("2026-11-02")))
    assert {r.request_id for r in nov2} == {"r5", "r6"}
    nov1 = list(filter_records(records, until=parse_time("2026-11-01", end=True)))
    assert {r.request_id for r in nov1} == {"r1", "r2", "r3", "r4"}
    acme_faq = list(filter_records(records, tenant="acme", feature="faq"))
    assert [r.request_id for r in acme_faq] == ["r1", "r4"]
    with pytest.raises(ConfigError) as err:
        filter_records(records, colour="red")
    assert err.value.field == "colour"


def test_parse_time() -> None:
    assert parse_time("2026-11-01") == dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc).timestamp()
    assert parse_time("2026-11-01", end=True) == dt.datetime(2026, 11, 2, tzinfo=dt.timezone.utc).timestamp()
    assert parse_time("2026-11-02T09:00:00Z") == NOV2
    assert parse_time("2026-11-01T10:00:00") == NOV1  # naive means UTC
    assert parse_time("2026-11-01T12:00:00+02:00") == NOV1
    assert parse_time(12.5) == 12.5
    with pytest.raises(ConfigError) as err:
        parse_time("last tuesday", field="until")
    assert err.value.field == "until"
