"""The dashboard's document: every number against the same number computed from the records in Python."""

from __future__ import annotations

from typing import Any

import expected
import pytest

from costkit.alerts import Burst, CacheHealth, CostAnomaly, evaluate
from costkit.dashboard import dashboard_data
from costkit.report.aggregate import aggregate, parse_time
from costkit.report.forecast import forecast_store
from costkit.report.store import open_store
from costkit.report.tasks import compare_arms, task_report

RULES = [CostAnomaly(min_usd=0.01), Burst(max_usd=0.05), CacheHealth(min_hit_rate=0.2, min_lookups=5)]


@pytest.fixture(scope="module")
def data(ledger) -> dict[str, Any]:
    with open_store(ledger["path"]) as store:
        return dashboard_data(store, days=36500, rules=RULES, title="t")


def _series(block: dict[str, Any], time: list[str]) -> dict[tuple[str, str], float]:
    return {
        (n, t): y for n, ys in zip(block["names"], block["series"], strict=True) for t, y in zip(time, ys, strict=True)
    }


def test_window_and_totals(data, ledger) -> None:
    records = ledger["records"]
    assert data["bucket"] == "day" and data["time"][0] == "2026-11-02" and data["time"][-1] == "2026-11-10"
    total = aggregate(records, by="feature").total
    assert data["totals"]["records"] == len(records) == total.records
    assert data["totals"]["cost_usd"] == pytest.approx(total.cost_usd, abs=1e-12)
    assert data["totals"]["requests"] == total.requests and data["totals"]["cache_hit_rate"] == total.cache_hit_rate


@pytest.mark.parametrize("dim", ["feature", "tenant", "model"])
def test_cost_over_time(data, ledger, dim) -> None:
    got = _series(data["cost_by"][dim], data["time"])
    want = expected.cost_by(ledger["records"], dim)
    assert set(k for k, v in got.items() if v) == set(k for k, v in want.items() if v)
    for key, usd in want.items():
        assert got[key] == pytest.approx(usd, abs=1e-12), key


def test_savings_stack_and_cache_health(data, ledger) -> None:
    got = _series(data["savings_by_layer"], data["time"])
    for key, usd in expected.savings_by_layer(ledger["records"]).items():
        assert got[key] == pytest.approx(usd, abs=1e-12), key
    assert set(data["savings_by_layer"]["names"]) == {"semantic", "exact", "router"}
    want = expected.cache_by_day(ledger["records"])
    cache = data["cache"]
    for i, d in enumerate(data["time"]):
        assert cache["hit_rate"][i] == pytest.approx(want[d]["hit_rate"], abs=1e-15), d
        assert cache["false_hit_estimate"][i] == pytest.approx(want[d]["false_hit_estimate"], abs=1e-15), d
    assert cache["delta"] == 0.02
    assert cache["false_hit_estimate"][-1] > 0.02 and cache["false_hit_estimate"][1] == 0.0  # a bad hour; a clean day


def test_arms_tasks_forecast_alerts_and_top_requests(data, ledger) -> None:
    records, outcomes = ledger["records"], ledger["outcomes"]
    arms = compare_arms(task_report(records, outcomes, by=("experiment", "arm")))
    assert data["arms"] == [a.to_dict() for a in arms]
    assert [a["arm"] for a in data["arms"]] == ["control", "v2"] and data["arms"][1]["success_rate"] > 0.75
    assert data["tasks"] == task_report(records, outcomes, by="feature").to_dict()
    with open_store(ledger["path"]) as store:
        assert data["forecast"] == [f.to_dict() for f in forecast_store(store)]
    # the same findings as replaying the records live up to the window's end (stored alerts are dated
    # at the end of their hour, live ones at the record that crossed the line)
    until = parse_time(data["until"])
    live = evaluate(records, RULES, until=until)
    key = lambda a: (a["rule"], sorted(a["subject"].items()), a["window_start_s"])  # noqa: E731
    assert sorted(map(key, data["alerts"])) == sorted(key(a.to_dict()) for a in live)
    rules = {a["rule"] for a in data["alerts"]}
    assert {"cost_anomaly", "burst", "cache_false_hits"} <= rules
    burst = next(a for a in data["alerts"] if a["rule"] == "burst")
    assert burst["subject"] == {"tenant": "initech"} and burst["at_iso"].startswith("2026-11-10T16:")
    per_request: dict[str, float] = {}
    for r in records:
        per_request[r.request_id] = per_request.get(r.request_id, 0.0) + (r.cost_usd or 0.0)
    top = sorted(per_request.items(), key=lambda kv: (-kv[1], kv[0]))[:20]
    assert [(t["request_id"], t["cost_usd"]) for t in data["top_requests"]] == [
        (rid, pytest.approx(usd, abs=1e-12)) for rid, usd in top
    ]


def test_a_window_of_the_last_days(ledger) -> None:
    with open_store(ledger["path"]) as store:
        d = dashboard_data(store, days=1)
    assert d["bucket"] == "hour" and d["since"] == "2026-11-09T20:00:00Z" and d["until"] == "2026-11-10T20:00:00Z"
    assert len(d["time"]) == 24
    assert d["totals"]["records"] == sum(
        1
        for r in ledger["records"]
        if r.timestamp >= 1_794_254_400.0  # 2026-11-09T20:00Z
    )
