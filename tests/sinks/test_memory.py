from __future__ import annotations

import threading

import pytest

from costkit.errors import ConfigError
from costkit.sinks import MemorySink


def test_records_in_order_with_counters(make_record) -> None:
    sink = MemorySink()
    recs = [make_record(feature=f) for f in ("a", "b", "a")]
    for r in recs:
        sink.emit(r)
    assert sink.records == recs
    assert len(sink) == 3
    assert list(sink) == recs
    assert sink.where(feature="a") == [recs[0], recs[2]]
    assert sink.where(lambda r: r.feature == "b") == [recs[1]]
    assert (sink.emitted, sink.written, sink.dropped, sink.errors) == (3, 3, 0, 0)
    sink.clear()
    assert sink.records == []
    assert sink.emitted == 3  # counters keep what clear() removed
    sink.emit(recs[0])
    assert (sink.emitted, sink.stats.written, len(sink)) == (4, 4, 1)


def test_totals_skip_unpriced(make_record) -> None:
    sink = MemorySink()
    sink.emit(make_record(cost_usd=0.25, saved_usd=0.5))
    sink.emit(make_record(cost_usd=None, priced=False, saved_usd=0.0))
    sink.emit(make_record(cost_usd=0.125, saved_usd=0.25))
    assert sink.total_cost_usd == 0.375
    assert sink.total_saved_usd == 0.75


def test_max_records_keeps_newest_and_counts_drops(make_record) -> None:
    sink = MemorySink(max_records=2)
    recs = [make_record() for _ in range(5)]
    for r in recs:
        sink.emit(r)
    assert sink.records == recs[-2:]
    assert sink.dropped == 3
    assert sink.emitted == 5


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_bad_max_records(bad: object) -> None:
    with pytest.raises(ConfigError) as err:
        MemorySink(max_records=bad)  # type: ignore[arg-type]
    assert err.value.field == "max_records"


def test_thread_safe_under_concurrent_emit(make_record) -> None:
    sink = MemorySink()
    rec = make_record()

    def work() -> None:
        for _ in range(2000):
            sink.emit(rec)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(sink.records) == 16000
    assert sink.emitted == 16000
