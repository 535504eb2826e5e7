"""The rollups answer exactly what reading every record answers."""

from __future__ import annotations

import random
from pathlib import Path

import attrs
import pytest

from costkit.report.aggregate import aggregate_many
from costkit.report.source import load_records, load_reports
from costkit.sinks import SQLiteSink

GROUPINGS = [
    ["feature"],
    ["tenant", "day"],
    ["model"],
    ["kind"],
    ["cache", "feature"],
    ["success"],
    ["hour"],
    ["prompt_version", "month"],
]


def _same(a, b) -> None:
    assert a.by == b.by
    assert [g.key for g in a.groups] == [g.key for g in b.groups]
    for x, y in zip([a.total, *a.groups], [b.total, *b.groups], strict=True):
        dx, dy = x.to_dict(), y.to_dict()
        for k in dx:
            if isinstance(dx[k], float):
                assert dx[k] == pytest.approx(dy[k], abs=1e-12), (x.key, k)
            elif k == "savings":
                assert dx[k].keys() == dy[k].keys() and all(
                    dx[k][n] == pytest.approx(dy[k][n]) for n in dx[k]
                ), x.key
            else:
                assert dx[k] == dy[k], (x.key, k)


def _write(path: Path, records) -> None:
    with SQLiteSink(path, batch_size=7) as sink:  # small batches: requests straddle them
        for r in records:
            sink.emit(r)


def test_the_workload_answers_the_same_from_rollups(tmp_path: Path, records, monkeypatch) -> None:
    path = tmp_path / "costs.db"
    _write(path, records)
    from costkit.report import rollups

    calls = []
    real = rollups.rollup_reports
    monkeypatch.setattr(rollups, "rollup_reports", lambda *a, **k: calls.append(1) or real(*a, **k))
    for by in GROUPINGS:
        fast = load_reports(path, [by])
        assert calls, by  # answered from the rollups
        calls.clear()
        _same(fast[0], aggregate_many(records, [by])[0])


def test_random_traffic_with_retries_escalations_and_hits(tmp_path: Path, make_record) -> None:
    rng = random.Random(7)
    recs = []
    t = 1_793_000_000.0
    for i in range(600):
        rid = f"q{i}"
        tenant, feature = rng.choice(["a", "b", None]), rng.choice(["faq", "sum", None])
        t += rng.uniform(0, 400)
        if rng.random() < 0.15:
            recs.append(make_record(rid, kind="cache_hit", cache=rng.choice(["exact", "semantic"]), attempt=0,
                                    tenant=tenant, feature=feature, cost_usd=0.0, saved_usd=0.25,
                                    savings={"exact_cache": 0.25}, timestamp=t))
            continue
        for attempt in range(1, rng.choice([2, 2, 3, 4])):
            kind = "call" if attempt == 1 else rng.choice(["retry", "escalation"])
            ok = rng.random() > 0.2
            recs.append(make_record(rid, attempt=attempt, kind=kind, tenant=tenant, feature=feature,
                                    model=rng.choice(["gpt-4o-mini", "gpt-4o"]), success=ok,
                                    error_type=None if ok else "RateLimitError",
                                    cost_usd=rng.choice([0.125, 0.25, None]), priced=True,
                                    savings={"router": 0.5} if rng.random() < 0.3 else {},
                                    timestamp=t + attempt))
    recs = [attrs.evolve(r, saved_usd=sum(r.savings.values()), priced=r.cost_usd is not None) for r in recs]
    path = tmp_path / "costs.db"
    _write(path, recs)
    for by in GROUPINGS:
        _same(load_reports(path, [by])[0], aggregate_many(recs, [by])[0])
    # filters on kept dimensions and whole hours are answered too
    since = (int(recs[100].timestamp) // 3600 + 1) * 3600
    fast = load_reports(path, [["feature"]], since=since, tenant="a")
    slow = aggregate_many(load_records(path, since=since, tenant="a"), [["feature"]])
    _same(fast[0], slow[0])


def test_old_files_and_unkept_dimensions_fall_back_to_the_records(tmp_path: Path, records) -> None:
    import sqlite3

    path = tmp_path / "costs.db"
    _write(path, records)
    conn = sqlite3.connect(path)
    conn.execute('UPDATE cost_records_meta SET value = 99')  # as if the rows predated the rollups
    conn.commit()
    conn.close()
    _same(load_reports(path, [["feature"]])[0], aggregate_many(records, [["feature"]])[0])
    _same(load_reports(path, [["user"]])[0], aggregate_many(records, [["user"]])[0])
