from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path

import pytest

from costkit._warn import CostkitWarning
from costkit.errors import ConfigError
from costkit.records import CostRecord
from costkit.sinks import BackgroundSink, MemorySink


class BatchRecorder:
    def __init__(self) -> None:
        self.batches: list[list[CostRecord]] = []
        self.closed_in: str | None = None

    def write_batch(self, records: Sequence[CostRecord]) -> None:
        self.batches.append(list(records))

    def close(self) -> None:
        self.closed_in = threading.current_thread().name


class BlockingWriter:
    """Blocks inside write_batch until released; tells the test when it got there."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.written: list[CostRecord] = []

    def write_batch(self, records: Sequence[CostRecord]) -> None:
        self.entered.set()
        assert self.release.wait(30)
        self.written.extend(records)


def test_batches_are_bounded_and_flush_writes_everything(make_record) -> None:
    writer = BatchRecorder()
    sink = BackgroundSink(writer, batch_size=4, flush_interval_s=60)
    recs = [make_record() for _ in range(10)]
    for r in recs:
        sink.emit(r)
    assert sink.flush(timeout=30) is True
    assert [r for b in writer.batches for r in b] == recs
    assert all(1 <= len(b) <= 4 for b in writer.batches)
    assert (sink.emitted, sink.written, sink.dropped, sink.errors) == (10, 10, 0, 0)
    assert sink.pending == 0
    assert sink.close() is True
    assert writer.closed_in is not None and writer.closed_in.startswith("costkit-sink-")


def test_full_queue_drops_and_counts(make_record) -> None:
    writer = BlockingWriter()
    sink = BackgroundSink(writer, max_queue=3, batch_size=1, flush_interval_s=0.01)
    sink.emit(make_record())  # taken by the worker, which then blocks in the writer
    assert writer.entered.wait(30)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(5):
            sink.emit(make_record())  # 3 fit in the queue, 2 are dropped
    assert sink.pending == 3
    assert sink.dropped == 2
    assert sink.emitted == 6
    assert len([w for w in caught if w.category is CostkitWarning and "full (3)" in str(w.message)]) == 1
    writer.release.set()
    assert sink.flush(timeout=30)
    assert len(writer.written) == 4
    assert (sink.written, sink.dropped, sink.errors) == (4, 2, 0)
    sink.close()


def test_blocked_writer_never_blocks_emit(make_record) -> None:
    writer = BlockingWriter()
    sink = BackgroundSink(writer, max_queue=100, batch_size=10)
    rec = make_record()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(10_000):  # would hang forever if emit waited on the writer
            sink.emit(rec)
    assert writer.entered.wait(30)
    assert sink.emitted == 10_000
    in_flight = sink.emitted - sink.dropped - sink.pending  # taken by the worker, stuck in the writer
    assert 1 <= in_flight <= 10
    assert sink.pending <= 100
    assert sink.flush(timeout=0.05) is False  # the writer is stuck
    writer.release.set()
    assert sink.flush(timeout=30) is True
    assert sink.written + sink.dropped == 10_000
    sink.close()


def test_raising_writer_never_raises_into_emit(make_record) -> None:
    class Broken:
        def write_batch(self, records: Sequence[CostRecord]) -> None:
            raise OSError("database is locked")

    sink = BackgroundSink(Broken(), batch_size=2, flush_interval_s=60)
    with pytest.warns(CostkitWarning, match="database is locked"):
        for _ in range(4):
            sink.emit(make_record())
        assert sink.flush(timeout=30)
    assert sink.errors == 2  # two batches of two
    assert sink.dropped == 4
    assert sink.written == 0
    sink.close()


def test_per_record_sink_and_callable_are_accepted(make_record) -> None:
    mem = MemorySink()
    calls: list[CostRecord] = []
    a = BackgroundSink(mem)
    b = BackgroundSink(calls.append)
    recs = [make_record() for _ in range(3)]
    for r in recs:
        a.emit(r)
        b.emit(r)
    assert a.flush(30) and b.flush(30)
    assert mem.records == recs
    assert calls == recs
    a.close()
    b.close()


def test_partial_failure_of_a_per_record_sink_counts_only_the_failed(make_record) -> None:
    def sometimes(record: CostRecord) -> None:
        if record.feature == "bad":
            raise ValueError("bad record")

    sink = BackgroundSink(sometimes, batch_size=10, flush_interval_s=60)
    with pytest.warns(CostkitWarning, match="1/3 records failed"):
        for f in ("ok", "bad", "ok"):
            sink.emit(make_record(feature=f))
        assert sink.flush(30)
    assert (sink.written, sink.dropped, sink.errors) == (2, 1, 1)
    sink.close()


def test_close_writes_pending_then_drops_later_emits(make_record) -> None:
    writer = BatchRecorder()
    sink = BackgroundSink(writer, batch_size=1000, flush_interval_s=60)
    for _ in range(7):
        sink.emit(make_record())
    assert sink.close(timeout=30) is True
    assert sum(len(b) for b in writer.batches) == 7
    with pytest.warns(CostkitWarning, match="closed"):
        sink.emit(make_record())
    assert sink.dropped == 1
    assert sink.close() is True  # idempotent


def test_close_is_bounded_when_the_writer_is_stuck(make_record) -> None:
    writer = BlockingWriter()
    sink = BackgroundSink(writer, batch_size=1, flush_interval_s=0.01)
    sink.emit(make_record())
    assert writer.entered.wait(30)
    sink.emit(make_record())
    sink.emit(make_record())
    with pytest.warns(CostkitWarning, match="2 records dropped"):
        assert sink.close(timeout=0.05) is False
    assert sink.dropped == 2
    writer.release.set()


def test_close_without_any_emit_closes_the_writer() -> None:
    writer = BatchRecorder()
    BackgroundSink(writer).close()
    assert writer.closed_in == threading.current_thread().name


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("max_queue", {"max_queue": 0}),
        ("max_queue", {"max_queue": 1.5}),
        ("batch_size", {"batch_size": -1}),
        ("flush_interval_s", {"flush_interval_s": 0}),
        ("close_timeout_s", {"close_timeout_s": True}),
    ],
)
def test_bad_config(field: str, kwargs: dict) -> None:
    with pytest.raises(ConfigError) as err:
        BackgroundSink(BatchRecorder(), **kwargs)
    assert err.value.field == field


def test_not_a_writer_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        BackgroundSink(42)


def test_pending_records_are_written_at_interpreter_exit(tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    script = textwrap.dedent(
        f"""
        from costkit.records import CostRecord
        from costkit.sinks import BackgroundSink

        class W:
            def write_batch(self, records):
                with open({str(out)!r}, "a") as f:
                    for r in records:
                        f.write(r.request_id + "\\n")

        sink = BackgroundSink(W(), flush_interval_s=3600, batch_size=10_000)
        for i in range(50):
            sink.emit(CostRecord(request_id=f"r{{i}}", attempt=1, kind="call", timestamp=0.0,
                                 provider="openai", requested_model="m", model="m"))
        # no flush, no close: atexit must write them
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    assert out.read_text().split() == [f"r{i}" for i in range(50)]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_gets_its_own_worker(make_record) -> None:
    writer = BatchRecorder()
    sink = BackgroundSink(writer, flush_interval_s=0.01)
    sink.emit(make_record())
    assert sink.flush(30)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        try:
            sink.emit(make_record())
            ok = sink.flush(10) and len(writer.batches) == 2
            os.write(w, b"1" if ok else b"0")
        finally:
            os._exit(0)
    os.close(w)
    assert os.read(r, 1) == b"1"
    os.waitpid(pid, 0)
    sink.close()


def test_no_thread_available_drops_instead_of_raising(monkeypatch, make_record) -> None:
    writer = BatchRecorder()
    sink = BackgroundSink(writer)

    def refuse(self) -> None:
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading.Thread, "start", refuse)
    with pytest.warns(CostkitWarning, match="unable to start its writer thread"):
        sink.emit(make_record())
    assert (sink.emitted, sink.dropped, sink.pending) == (1, 1, 0)
    monkeypatch.undo()
    sink.emit(make_record())  # threads work again: the sink recovers
    assert sink.flush(30)
    assert sink.written == 1
    sink.close()


class SlowWriter:
    """Takes a millisecond a batch: the caller outruns it, as a backfill loop does."""

    def __init__(self) -> None:
        self.written: list[CostRecord] = []

    def write_batch(self, records: Sequence[CostRecord]) -> None:
        import time

        time.sleep(0.001)
        self.written.extend(records)


def test_write_many_waits_for_room_instead_of_dropping(make_record) -> None:
    writer = SlowWriter()
    sink = BackgroundSink(writer, max_queue=50, batch_size=10, flush_interval_s=0.01)
    recs = [make_record() for _ in range(2_000)]
    assert sink.write_many(recs) == 2_000
    assert sink.flush(timeout=30)
    assert writer.written == recs  # all of them, in order
    assert (sink.emitted, sink.written, sink.dropped) == (2_000, 2_000, 0)
    sink.close()


def test_emit_in_a_loop_drops_without_back_pressure_and_not_with_it(make_record) -> None:
    recs = [make_record() for _ in range(2_000)]
    dropping = BackgroundSink(SlowWriter(), max_queue=50, batch_size=10, flush_interval_s=0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CostkitWarning)
        for r in recs:
            dropping.emit(r)
    dropping.flush(timeout=30)
    assert dropping.dropped > 1_000  # the default never blocks the caller: it drops and counts
    writer = SlowWriter()
    blocking = BackgroundSink(writer, max_queue=50, batch_size=10, flush_interval_s=0.01, block_when_full=True)
    for r in recs:
        blocking.emit(r)
    blocking.flush(timeout=30)
    assert (blocking.dropped, len(writer.written)) == (0, 2_000)
    dropping.close()
    blocking.close()


def test_write_many_on_a_closed_sink_counts_the_drop(make_record) -> None:
    sink = BackgroundSink(SlowWriter(), max_queue=5, batch_size=5)
    sink.close()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CostkitWarning)
        assert sink.write_many([make_record() for _ in range(12)]) == 0
    assert (sink.emitted, sink.dropped) == (12, 12)


def test_outcomes_go_through_the_queue_to_write_outcomes(make_record) -> None:
    from costkit.outcomes import make_outcome

    class Both(BatchRecorder):
        outcomes: list = []

        def write_outcomes(self, outcomes) -> None:
            self.outcomes = [*self.outcomes, *outcomes]

    writer = Both()
    sink = BackgroundSink(writer, batch_size=4)
    rec, o = make_record(), make_outcome("t1", True, 2.5, channel="web")
    sink.emit(rec)
    sink.emit_outcome(o)
    assert sink.flush(timeout=30)
    assert ([r for b in writer.batches for r in b], writer.outcomes) == ([rec], [o])
    assert (sink.written, sink.dropped) == (2, 0)
    sink.close()
