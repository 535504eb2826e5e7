"""How much a sink adds to each completion, and how fast records reach disk / the report.

    python benchmarks/bench_sinks.py [--n 100000] [--repeat 5]

Compares, in the same run, the time ``emit`` takes on the caller's thread for each sink against
a naive synchronous SQLite sink (one INSERT + COMMIT per record, WAL, synchronous=NORMAL), then
the background throughput of JSONL and SQLite (records written per second, flush included) and
the report's aggregation speed. Medians over ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from costkit.records import CostRecord
from costkit.report.aggregate import aggregate_many
from costkit.report.source import load_records
from costkit.sinks import BackgroundSink, CallableSink, JSONLSink, MemorySink, SQLiteSink
from costkit.sinks.sqlite import FIELDS, _q, _row


def make_records(n: int) -> list[CostRecord]:
    feats = ["faq", "summary", "support_answer", "search", "triage"]
    tenants = [f"t{i}" for i in range(20)]
    models = ["gpt-4o-mini", "gpt-4o", "claude-3-5-haiku", "claude-sonnet-4"]
    return [
        CostRecord(
            request_id=f"req-{i // 2}",
            attempt=1 + i % 2,
            kind="call" if i % 2 == 0 else "retry",
            timestamp=1_795_000_000.0 + i,
            provider="openai",
            requested_model="gpt-4o",
            model=models[i % 4],
            tenant=tenants[i % 20],
            feature=feats[i % 5],
            route="/ask",
            prompt_version="v3",
            input_tokens=500 + i % 300,
            output_tokens=80 + i % 50,
            cached_read_tokens=128 if i % 3 == 0 else 0,
            cost_usd=0.000125 * (1 + i % 7),
            saved_usd=0.0005 if i % 4 == 0 else 0.0,
            savings={"router": 0.0005} if i % 4 == 0 else {},
            cache="exact" if i % 10 == 0 else "none",
            latency_ms=400.0 + i % 900,
            notes={"routed_from": "gpt-4o"} if i % 4 == 0 else {},
        )
        for i in range(n)
    ]


class NaiveSQLite:
    """The baseline: what a sink without a queue does — write and commit on the caller's thread."""

    def __init__(self, path: Path) -> None:
        SQLiteSink(path).close()  # same schema
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.execute("PRAGMA synchronous = NORMAL")
        self.sql = f"INSERT INTO cost_records ({', '.join(map(_q, FIELDS))}) VALUES ({', '.join('?' * len(FIELDS))})"

    def emit(self, r: CostRecord) -> None:
        self.conn.execute("BEGIN")
        self.conn.execute(self.sql, _row(r))
        self.conn.execute("COMMIT")


def optional_sinks() -> list[tuple[str, Callable[[], object]]]:
    """OTel (BatchSpanProcessor, as in production) and Prometheus, when their libraries are installed."""
    out: list[tuple[str, Callable[[], object]]] = []
    try:
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        from costkit.sinks import OTelSink

        def otel(background: bool) -> Callable[[], OTelSink]:
            def make() -> OTelSink:
                tp = TracerProvider()
                tp.add_span_processor(BatchSpanProcessor(InMemorySpanExporter(), max_queue_size=1_000_000))
                mp = MeterProvider(metric_readers=[InMemoryMetricReader()])
                return OTelSink(tracer_provider=tp, meter_provider=mp, background=background)

            return make

        out.append(("OTelSink, span + metrics in emit (background=False)", otel(False)))
        out.append(("OTelSink, default (background)", otel(True)))
    except ImportError:
        pass
    try:
        from prometheus_client import CollectorRegistry

        from costkit.sinks import PrometheusSink

        out.append(
            (
                "PrometheusSink, in emit (background=False)",
                lambda: PrometheusSink(registry=CollectorRegistry(), background=False),
            )
        )
        out.append(("PrometheusSink, default (background)", lambda: PrometheusSink(registry=CollectorRegistry())))
    except ImportError:
        pass
    return out


def time_emits(emit: Callable[[CostRecord], None], records: list[CostRecord]) -> float:
    """Nanoseconds per emit on the caller's thread."""
    t = time.perf_counter_ns()
    for r in records:
        emit(r)
    return (time.perf_counter_ns() - t) / len(records)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    records = make_records(args.n)
    naive_n = min(args.n, 3000)
    tmp = Path(tempfile.mkdtemp(prefix="costkit-bench-"))
    print(
        f"costkit sinks benchmark: n={args.n:,} records, {args.repeat} runs, medians; python {sys.version.split()[0]}, "
        f"{os.cpu_count()} cpus"
    )

    # -- emit cost on the caller's thread ----------------------------------------------------------
    results: dict[str, list[float]] = {}
    written: dict[str, list[float]] = {}
    drops: dict[str, int] = {}
    for run in range(args.repeat):
        naive = NaiveSQLite(tmp / f"naive{run}.db")
        results.setdefault("naive SQLite (INSERT+COMMIT per record)", []).append(
            time_emits(naive.emit, records[:naive_n])
        )
        naive.conn.close()
        lst: list[CostRecord] = []
        results.setdefault("list.append (floor)", []).append(time_emits(lst.append, records))
        results.setdefault("MemorySink", []).append(time_emits(MemorySink().emit, records))
        results.setdefault("CallableSink(noop)", []).append(time_emits(CallableSink(lambda r: None).emit, records))
        for name, factory in (
            ("JSONLSink", lambda: JSONLSink(tmp / f"b{run}.jsonl", max_queue=args.n)),
            ("SQLiteSink", lambda: SQLiteSink(tmp / f"b{run}.db", max_queue=args.n)),
        ):
            sink = factory()
            t0 = time.perf_counter()
            results.setdefault(name, []).append(time_emits(sink.emit, records))
            sink.flush(timeout=600)
            elapsed = time.perf_counter() - t0
            written.setdefault(name, []).append(sink.written / elapsed)
            drops[name] = drops.get(name, 0) + sink.dropped
            sink.close()
        for name, factory in optional_sinks():
            sink = factory()
            results.setdefault(name, []).append(time_emits(sink.emit, records))
            drops[name] = drops.get(name, 0) + getattr(sink, "dropped", 0)
            getattr(sink, "close", lambda: None)()
        small = BackgroundSink(lambda r: time.sleep(0.001), max_queue=1000)  # a slow sink: 1 ms per record
        results.setdefault("BackgroundSink(1 ms/record writer), queue 1000", []).append(time_emits(small.emit, records))
        drops["BackgroundSink(1 ms/record writer), queue 1000"] = small.dropped
        small.close(timeout=0.1)

    base = statistics.median(results["naive SQLite (INSERT+COMMIT per record)"])
    print("\nemit() on the caller's thread (ns per record; ratio to the naive synchronous SQLite sink)")
    for name, vals in results.items():
        med = statistics.median(vals)
        extra = f"  dropped {drops[name]:,}" if drops.get(name) else ""
        print(f"  {name:<48} {med:>10,.0f} ns   {med / base:>7.4f}x{extra}")

    print("\nbackground throughput (records written per second, emit to flush complete)")
    for name, vals in written.items():
        print(f"  {name:<48} {statistics.median(vals):>10,.0f} rec/s   dropped {drops.get(name, 0):,}")
    naive_rate = 1e9 / base
    print(f"  {'naive SQLite (INSERT+COMMIT per record)':<48} {naive_rate:>10,.0f} rec/s")

    # -- report ------------------------------------------------------------------------------------
    db, jl = tmp / "b0.db", tmp / "b0.jsonl"
    for label, path in (("SQLite", db), ("JSONL", jl)):
        times = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            reps = aggregate_many(load_records(path), [["feature"], ["tenant", "day"], ["model"]])
            times.append(time.perf_counter() - t)
        med = statistics.median(times)
        print(
            f"\nreport from {label} ({reps[0].total.records:,} records, 3 groupings): "
            f"{med:.3f} s median, {reps[0].total.records / med:,.0f} records/s"
        )
    t_mem = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        aggregate_many(records, [["feature"], ["tenant", "day"], ["model"]])
        t_mem.append(time.perf_counter() - t)
    print(
        f"report from memory (aggregation only): {statistics.median(t_mem):.3f} s, "
        f"{args.n / statistics.median(t_mem):,.0f} records/s"
    )


if __name__ == "__main__":
    main()
