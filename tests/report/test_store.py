"""Store: the ledger queries the dashboard, alerts and forecast share, on SQLite and imported records."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from costkit.outcomes import make_outcome
from costkit.report.aggregate import aggregate_many
from costkit.report.store import Store, open_sql_store, open_store
from costkit.sinks import JSONLSink, SQLiteSink
from costkit.sinks.sqlite import rebuild_rollups


def _write(path: Path, records, outcomes=()) -> Path:
    with SQLiteSink(path, batch_size=3) as sink:
        for r in records:
            sink.emit(r)
        for o in outcomes:
            sink.emit_outcome(o)
    return path


def test_series_from_the_rollups(tmp_path, records) -> None:
    with open_store(_write(tmp_path / "c.db", records)) as store:
        rows = store.hourly(["feature"], ["cost_usd", "records"])
        by_hour: dict = {}
        for r in records:
            key = (int(r.timestamp // 3600), r.feature)
            cost, n = by_hour.get(key, (0.0, 0))
            by_hour[key] = (cost + (r.cost_usd or 0.0), n + 1)
        assert {(h, f): (c, n) for h, f, c, n in rows} == by_hour  # (none) comes back as None
        assert store.hourly_savings() == [
            (int(records[0].timestamp // 3600), "exact", 0.25),
            (int(records[0].timestamp // 3600), "router", 0.5),
        ]
        assert store.time_range() == (min(r.timestamp for r in records), max(r.timestamp for r in records))


def test_costliest_requests_and_task_costs(tmp_path, records, make_record) -> None:
    extra = [
        make_record(f"t{i}", task=f"task{i % 2}", experiment="e", arm="a" if i % 2 else "b", cost_usd=0.5)
        for i in range(4)
    ]
    with open_store(_write(tmp_path / "c.db", [*records, *extra])) as store:
        top = store.top_requests(3)
        assert [(t["request_id"], t["cost_usd"], t["records"]) for t in top] == [
            ("r3", 1.0, 1),
            ("r6", 0.5625, 2),
            ("t0", 0.5, 1),
        ]
        assert store.task_costs(["experiment", "arm"]) == {(("e", "b"), "task0"): 1.0, (("e", "a"), "task1"): 1.0}
        with pytest.raises(ValueError):
            store.task_costs(["colour"])


def test_notes_are_read_defensively(tmp_path, make_record) -> None:
    recs = [
        make_record(
            "a",
            kind="cache_hit",
            cache="semantic",
            notes={"cache_verified": True, "max_false_hit_rate": 0.02, "cached_at": 100.0},
        ),
        make_record("b", notes={"cache_verified": False}),
        make_record("c", notes={"cache_verified": "true", "max_false_hit_rate": "x"}),
        make_record("d", kind="cache_hit", cache="semantic", notes={"cache_verified": 1, "cached_at": "then"}),
        make_record("e", notes={"note": "cache_verified"}),
    ]
    path = _write(tmp_path / "c.db", recs)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE cost_records SET notes = 'cache_verified: {not json' WHERE request_id = 'e'")
    with open_store(path) as store:
        hour = int(recs[0].timestamp // 3600)
        assert store.verified(None) == [(hour, None, 1, 1)]
        assert store.noted_delta("feature") == [(hour, "faq", 0.02)]
        assert [(f, ca) for _, _, f, ca, _ in store.aged_hits("tenant")] == [("faq", 100.0)]


def test_jsonl_and_records_are_imported_into_a_private_temporary_ledger(tmp_path, records) -> None:
    path = tmp_path / "c.jsonl"
    with JSONLSink(path) as sink:
        for r in records:
            sink.emit(r)
        sink.emit_outcome(make_outcome("t1", success=True))
    store = open_store(path)
    location = Path(store.location)
    assert location.exists() and (location.parent.stat().st_mode & 0o777) == 0o700
    assert [o.task for o in store.outcomes()] == ["t1"]
    got = store.reports([("feature",), ("tenant", "day")])
    want = aggregate_many(records, [("feature",), ("tenant", "day")])
    assert [g.key for g in got[0].groups] == [g.key for g in want[0].groups]
    assert got[1].total.cost_usd == want[1].total.cost_usd and got[1].total.requests == want[1].total.requests
    store.close()
    assert not location.exists()


def test_a_file_from_before_the_rollups_is_imported_or_rebuilt(tmp_path, records) -> None:
    path = _write(tmp_path / "old.db", records)
    with sqlite3.connect(path) as conn:  # as if written before the rollups: they cover nothing
        conn.execute("UPDATE cost_records_meta SET value = 999 WHERE key = 'rollup_from_id'")
    with open_sql_store(path) as store:
        assert not store.rollups_cover()
    with open_store(path) as store:
        assert store.location != str(path) and store.rollups_cover()  # imported
    assert rebuild_rollups(path) == len(records)
    with open_store(path) as store:
        assert store.location == str(path) and store.rollups_cover()
        want = aggregate_many(records, [("feature",), ("model",), ("hour",)])
        for got, exp in zip(store.reports([("feature",), ("model",), ("hour",)]), want, strict=True):
            assert [(g.key, g.requests, g.cost_usd, dict(g.savings)) for g in got.groups] == [
                (g.key, g.requests, g.cost_usd, dict(g.savings)) for g in exp.groups
            ]


def test_missing_files() -> None:
    with pytest.raises(FileNotFoundError):
        open_store("/nonexistent/costs.db")
    with pytest.raises(FileNotFoundError):
        open_sql_store("/nonexistent/costs.db")


def test_an_empty_ledger(tmp_path) -> None:
    with Store.from_records([]) as store:
        assert (
            store.time_range() is None and store.top_requests() == [] and store.hourly(["feature"], ["records"]) == []
        )
