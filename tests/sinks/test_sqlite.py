from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from costkit.errors import ConfigError
from costkit.records import FIELDS, CostRecord
from costkit.sinks import SQLiteSink
from costkit.sinks.sqlite import _SQLiteWriter, iter_sqlite


def test_wal_mode_indexed_schema_with_every_field(tmp_path: Path) -> None:
    path = tmp_path / "costs.db"
    SQLiteSink(path).close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    cols = [r[1] for r in conn.execute("PRAGMA table_info(cost_records)")]
    assert cols == ["id", *FIELDS, "firsts"]  # firsts: the rollups' request bits
    indexes = {r[1] for r in conn.execute("PRAGMA index_list(cost_records)")}
    assert {
        "cost_records_ts",
        "cost_records_tenant_ts",
        "cost_records_feature_ts",
        "cost_records_model_ts",
        "cost_records_request",
    } <= indexes
    plan = " ".join(
        r[3] for r in conn.execute("EXPLAIN QUERY PLAN SELECT * FROM cost_records WHERE tenant = 'a' AND timestamp > 0")
    )
    assert "cost_records_tenant_ts" in plan
    conn.close()


def test_records_round_trip_exactly(tmp_path: Path, edge_records: list[CostRecord]) -> None:
    recs = edge_records
    sink = SQLiteSink(tmp_path / "costs.db", batch_size=3)
    for r in recs:
        sink.emit(r)
    assert sink.records() == recs
    sink.close()
    assert SQLiteSink.read(tmp_path / "costs.db") == recs


def test_one_transaction_per_batch(tmp_path: Path, make_record) -> None:
    path = tmp_path / "costs.db"
    SQLiteSink(path).close()
    writer = _SQLiteWriter(path, "cost_records")
    writer.write_batch([make_record()])  # opens the connection
    assert writer._conn is not None
    statements: list[str] = []
    writer._conn.set_trace_callback(statements.append)
    writer.write_batch([make_record() for _ in range(50)])
    control = [s for s in statements if s in ("BEGIN IMMEDIATE", "COMMIT", "ROLLBACK") or s.startswith("BEGIN")]
    assert control == ["BEGIN IMMEDIATE", "COMMIT"]  # records and their rollups: one transaction
    assert len([s for s in statements if s.startswith('INSERT INTO "cost_records" (')]) == 50
    writer.close()
    assert len(SQLiteSink.read(path)) == 51


def test_a_failing_batch_is_rolled_back_whole(tmp_path: Path, make_record) -> None:
    path = tmp_path / "costs.db"
    SQLiteSink(path).close()
    writer = _SQLiteWriter(path, "cost_records")
    bad = make_record(request_id=None)  # violates NOT NULL
    with pytest.raises(sqlite3.IntegrityError):
        writer.write_batch([make_record(), bad])
    writer.write_batch([make_record(request_id="ok")])
    writer.close()
    assert [r.request_id for r in SQLiteSink.read(path)] == ["ok"]


def test_filters(tmp_path: Path, make_record) -> None:
    path = tmp_path / "costs.db"
    with SQLiteSink(path) as sink:
        a = make_record(tenant="acme", feature="faq", timestamp=100.0)
        b = make_record(tenant="globex", feature="faq", timestamp=200.0)
        c = make_record(tenant="acme", feature="summary", timestamp=300.0)
        d = make_record(tenant=None, feature="faq", timestamp=400.0)
        for r in (a, b, c, d):
            sink.emit(r)
        assert sink.records(tenant="acme") == [a, c]
        assert sink.records(since=200.0, until=400.0) == [b, c]
        assert sink.records(feature="faq", tenant=None) == [d]
        assert sink.records(limit=2) == [a, b]
    with pytest.raises(ConfigError) as err:
        list(iter_sqlite(path, colour="red"))
    assert err.value.field == "colour"


def test_several_writers_share_one_file(tmp_path: Path, make_record) -> None:
    path = tmp_path / "costs.db"
    sinks = [SQLiteSink(path, batch_size=7, flush_interval_s=0.01) for _ in range(3)]

    def work(s: SQLiteSink) -> None:
        for _ in range(200):
            s.emit(make_record())

    threads = [threading.Thread(target=work, args=(s,)) for s in sinks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in sinks:
        s.close()
    assert sum(s.written for s in sinks) == 600
    assert len(SQLiteSink.read(path)) == 600


def test_bad_paths_fail_at_construction(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        SQLiteSink(":memory:")
    assert err.value.field == "path"
    not_a_db = tmp_path / "notes.txt"
    not_a_db.write_text("this is not a database " * 100)
    with pytest.raises(ConfigError) as err:
        SQLiteSink(not_a_db)
    assert err.value.field == "path"


def test_missing_file_on_read(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        SQLiteSink.read(tmp_path / "nope.db")
    assert not (tmp_path / "nope.db").exists()


def test_old_file_gains_new_columns(tmp_path: Path, make_record) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TABLE cost_records (id INTEGER PRIMARY KEY, request_id TEXT NOT NULL, attempt INTEGER NOT NULL, "
        "kind TEXT NOT NULL, timestamp REAL NOT NULL, provider TEXT NOT NULL, requested_model TEXT NOT NULL, "
        "model TEXT NOT NULL)"
    )
    conn.execute("INSERT INTO cost_records VALUES (1, 'r', 1, 'call', 5.0, 'openai', 'm', 'm')")
    conn.commit()
    conn.close()
    rec = make_record()
    with SQLiteSink(path) as sink:
        sink.emit(rec)
        old, new = sink.records()
    assert (old.request_id, old.cost_usd, old.savings, old.success, old.input_tokens) == ("r", None, {}, True, 0)
    assert new == rec


def test_a_wrapped_client_records_into_sqlite(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import costkit
    from costkit.testing import FakeOpenAI, FakeProvider

    path = tmp_path / "costs.db"
    sink = SQLiteSink(path)
    client = costkit.wrap(FakeOpenAI(FakeProvider(default="Hello there")), sink=sink)
    with costkit.tags(tenant="acme", feature="faq"):
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    (rec,) = sink.records()
    assert (rec.tenant, rec.feature, rec.model, rec.kind, rec.success) == ("acme", "faq", "gpt-4o-mini", "call", True)
    assert rec.input_tokens > 0 and rec.output_tokens > 0
    assert rec.cost_usd is not None and rec.cost_usd > 0
    sink.close()


def test_files_and_directories_it_creates_are_private(tmp_path: Path, make_record) -> None:
    path = tmp_path / "new" / "deeper" / "costs.db"
    with SQLiteSink(path) as sink:
        sink.emit(make_record())
    for d in (tmp_path / "new", tmp_path / "new" / "deeper"):
        assert d.stat().st_mode & 0o777 == 0o700
    for f in path.parent.iterdir():  # the database, its -wal and -shm
        assert f.stat().st_mode & 0o777 == 0o600, f


def test_an_existing_file_keeps_its_mode(tmp_path: Path, make_record) -> None:
    path = tmp_path / "costs.db"
    SQLiteSink(path).close()
    path.chmod(0o640)
    SQLiteSink(path).close()
    assert path.stat().st_mode & 0o777 == 0o640


def test_outcomes_table_round_trips_and_old_files_gain_it(tmp_path: Path, make_record) -> None:
    from costkit.outcomes import make_outcome

    path = tmp_path / "costs.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE cost_records (id INTEGER PRIMARY KEY, request_id TEXT NOT NULL)")
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    o1, o2 = make_outcome("t1", True, 3.0, channel="web"), make_outcome("t2", False)
    with SQLiteSink(path) as sink:
        sink.emit_outcome(o1)
        sink.emit_outcome(o2)
        assert sink.outcomes() == [o1, o2]
    conn = sqlite3.connect(path)
    cols = {row[1] for row in conn.execute("PRAGMA table_info(cost_records)")}
    assert {"task", "experiment", "arm"} <= cols
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
