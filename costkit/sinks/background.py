"""BackgroundSink: take a slow sink off the hot path.

``emit`` appends to a bounded in-memory queue and returns; one daemon thread drains the queue in
batches into the wrapped writer. Nothing the writer does (raise, block, crawl) can fail or slow
the completion that emitted the record: when the queue is full the record is dropped and counted,
an exception from the writer is caught, counted and warned about once.

The writer is anything with ``write_batch(records)`` (preferred: one transaction / one write per
batch), or any sink or callable (called once per record). A writer with ``write_outcomes(outcomes)``
also takes :class:`~costkit.outcomes.Outcome` s (``emit_outcome``), through the same queue.

Back-pressure is opt-in, for batch jobs and backfills, never for a request path:
``write_many(records)`` hands over many records and waits for room instead of dropping, and
``block_when_full=True`` makes every ``emit`` wait for room (at most ``block_timeout_s``).
"""

from __future__ import annotations

import abc
import atexit
import itertools
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar, runtime_checkable

from .._files import create_private_file, make_private_dirs
from .._warn import warn_once
from ..errors import ConfigError
from ..outcomes import Outcome
from ..records import CostRecord, RecordDraft, as_record
from .base import _Counters, _name_of


@runtime_checkable
class BatchWriter(Protocol):
    """A backend that writes many records at once (one transaction, one ``write``)."""

    def write_batch(self, records: Sequence[CostRecord]) -> None: ...


_S = TypeVar("_S", bound="BackgroundSink")


def _positive(field: str, value: Any, *, integer: bool = False) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and value > 0
    if not ok or (integer and not isinstance(value, int)):
        raise ConfigError(field, f"expected a positive {'int' if integer else 'number'}, got {value!r}")


class BackgroundSink(_Counters):
    """Wraps ``writer`` so that ``emit`` only enqueues; a background thread writes in batches.

    * ``max_queue``: records waiting at most; beyond it ``emit`` drops the record (counted in ``dropped``).
    * ``batch_size``: records handed to the writer at once, at most.
    * ``flush_interval_s``: how long a record may wait for its batch to fill before it is written.
    * ``close_timeout_s``: how long ``close()`` (and interpreter exit) waits for pending records.
    * ``block_when_full``: ``emit`` waits for room (at most ``block_timeout_s``, None: as long as it
      takes) instead of dropping; for batch jobs, not for request paths. Default False.

    Counters: ``emitted`` (handed to emit), ``written`` (accepted by the writer), ``dropped``
    (queue full, writer failed, or emitted after close), ``errors`` (writer exceptions). Outcomes
    count like records.
    """

    nonblocking = True  # emit only enqueues
    accepts_drafts = True  # records are built on the writer's thread, not the caller's

    def __init__(
        self,
        writer: Any,
        *,
        max_queue: int = 10_000,
        batch_size: int = 500,
        flush_interval_s: float = 0.5,
        close_timeout_s: float = 5.0,
        name: str | None = None,
        block_when_full: bool = False,
        block_timeout_s: float | None = None,
    ) -> None:
        _positive("max_queue", max_queue, integer=True)
        if not isinstance(block_when_full, bool):
            raise ConfigError("block_when_full", f"must be a bool, got {block_when_full!r}")
        if block_timeout_s is not None:
            _positive("block_timeout_s", block_timeout_s)
        _positive("batch_size", batch_size, integer=True)
        _positive("flush_interval_s", flush_interval_s)
        _positive("close_timeout_s", close_timeout_s)
        super().__init__()
        self._write: Callable[[Sequence[CostRecord]], None]
        if isinstance(writer, BatchWriter):
            self._write = writer.write_batch
        elif callable(getattr(writer, "emit", None)):
            self._write = _per_record(writer.emit)
        elif callable(writer):
            self._write = _per_record(writer)
        else:
            raise ConfigError("writer", "expected an object with write_batch(records), emit(record), or a callable")
        self.writer = writer
        self.max_queue = max_queue
        self.batch_size = batch_size
        self.flush_interval_s = float(flush_interval_s)
        self.close_timeout_s = float(close_timeout_s)
        self.block_when_full = block_when_full
        self.block_timeout_s = None if block_timeout_s is None else float(block_timeout_s)
        self._write_outcomes = getattr(writer, "write_outcomes", None)
        self.name = name or _name_of(writer)
        self._init_state()
        _live.add(self)

    def _init_state(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._pending: deque[Any] = deque()  # CostRecords and Outcomes
        self._enqueued = 0  # records ever accepted into the queue
        self._processed = 0  # records taken off the queue and handed to the writer (ok or failed)
        self._flush_waiters = 0
        self._stopping = False
        self._closed = False
        self._thread: threading.Thread | None = None

    # -- hot path -------------------------------------------------------------------------------

    def emit(self, record: CostRecord) -> None:
        """Enqueue ``record``; never blocks on the writer (unless ``block_when_full``) and never raises."""
        self._enqueue(record)

    def emit_outcome(self, outcome: Outcome) -> None:
        """Enqueue an outcome for the writer's ``write_outcomes`` (the same queue, order and counters)."""
        self._enqueue(outcome)

    def _enqueue(self, record: Any) -> None:
        with self._cond:
            # ``_emitted`` is only ever written here, under this lock: one lock per emit on the hot path.
            self._emitted += 1
            if self.block_when_full and not self._closed and len(self._pending) >= self.max_queue:
                self._wait_for_room(1, self.block_timeout_s)
            if self._closed or len(self._pending) >= self.max_queue:
                reason = "closed" if self._closed else "full"
            else:
                self._pending.append(record)
                self._enqueued += 1
                n = len(self._pending)
                if self._thread is not None:
                    if n == 1 or n == self.batch_size:
                        self._cond.notify()
                    return
                try:
                    self._start()
                    return
                except RuntimeError:  # no new threads (interpreter shutting down, thread limit)
                    self._pending.pop()
                    self._enqueued -= 1
                    self._thread = None
                    reason = "unable to start its writer thread"
        self._count(dropped=1)
        what = {"closed": "queue closed", "full": f"queue full ({self.max_queue})"}.get(reason, reason)
        warn_once(
            f"sink-{reason}-{id(self)}",
            f"costkit sink {self.name}: {what}; records are being dropped (see .dropped)",
        )

    def _wait_for_room(self, n: int, timeout_s: float | None) -> bool:
        """Wait (holding the condition) until ``n`` more items fit; False on timeout or close."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while not self._closed and len(self._pending) + n > self.max_queue:
            if self._thread is None or not self._thread.is_alive():
                return False  # nobody drains the queue: waiting would never end
            self._cond.notify_all()
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return False
            self._cond.wait(remaining if remaining is not None else 1.0)
        return not self._closed

    def write_many(self, records: Iterable[CostRecord], *, timeout_s: float | None = None) -> int:
        """Hand over many records (a backfill, a replay), waiting for room instead of dropping.

        Blocks the caller while the writer catches up: for batch jobs, never a request path.
        Returns how many were queued; the rest (closed sink, or ``timeout_s`` passed while waiting
        for room) are counted as dropped. ``flush()`` afterwards waits until they are written.
        """
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        it = iter(records)
        queued = 0
        chunk = list(itertools.islice(it, self.batch_size))
        while chunk:
            with self._cond:
                self._emitted += len(chunk)
                if self._thread is None and not self._closed:
                    self._start()
                remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
                if not self._wait_for_room(min(len(chunk), self.max_queue), remaining):
                    lost = len(chunk) + sum(1 for _ in it)
                    self._emitted += lost - len(chunk)
                    break
                room = self.max_queue - len(self._pending)
                take, rest = chunk[:room], chunk[room:]
                self._pending.extend(take)
                self._enqueued += len(take)
                queued += len(take)
                self._cond.notify()
            chunk = rest or list(itertools.islice(it, self.batch_size))
        else:
            return queued
        self._count(dropped=lost)
        warn_once(
            f"sink-write-many-{id(self)}",
            f"costkit sink {self.name}: write_many stopped ({'closed' if self._closed else 'timed out'}); "
            f"{lost} records dropped",
        )
        return queued

    @property
    def pending(self) -> int:
        """Records waiting in the queue."""
        return len(self._pending)

    @property
    def closed(self) -> bool:
        return self._closed

    # -- flush / close ---------------------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every record queued before this call was handed to the writer.

        Returns False if ``timeout`` (default ``close_timeout_s``) passed first, e.g. because the
        writer is blocked.
        """
        deadline = time.monotonic() + (self.close_timeout_s if timeout is None else timeout)
        with self._cond:
            target = self._enqueued
            if self._processed >= target:
                return True
            self._flush_waiters += 1
            self._cond.notify_all()
            try:
                while self._processed < target:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or self._thread is None or not self._thread.is_alive():
                        return False
                    self._cond.wait(remaining)
                return True
            finally:
                self._flush_waiters -= 1

    def close(self, timeout: float | None = None) -> bool:
        """Write what is queued (waiting at most ``timeout``), stop the thread and close the writer.

        Records emitted after ``close`` are dropped and counted. Returns False if pending records
        could not be written in time (they are counted as dropped).
        """
        timeout = self.close_timeout_s if timeout is None else timeout
        with self._cond:
            if self._closed:
                return True
            self._closed = True
            self._stopping = True
            thread = self._thread
            self._cond.notify_all()
        _live.discard(self)
        if thread is None:
            _close_writer(self.writer, self.name)
            return True
        thread.join(timeout)
        if thread.is_alive():
            with self._cond:
                lost = len(self._pending)
                self._pending.clear()
            self._count(dropped=lost)
            warn_once(
                f"sink-close-timeout-{id(self)}",
                f"costkit sink {self.name}: writer still busy after {timeout:.1f}s at close; {lost} records dropped",
            )
            return False
        return True

    def __enter__(self: _S) -> _S:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the worker ------------------------------------------------------------------------------

    def _start(self) -> None:
        thread = threading.Thread(target=self._run, name=f"costkit-sink-{self.name}", daemon=True)
        thread.start()
        self._thread = thread

    def _next_batch(self) -> list[CostRecord] | None:
        """Block until a batch is due; None when stopping with nothing left."""
        with self._cond:
            while not self._pending:
                if self._stopping:
                    return None
                self._cond.wait()
            deadline = time.monotonic() + self.flush_interval_s
            while len(self._pending) < self.batch_size and not self._stopping and not self._flush_waiters:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            n = min(self.batch_size, len(self._pending))
            return [self._pending.popleft() for _ in range(n)]

    def _run(self) -> None:
        try:
            while (batch := self._next_batch()) is not None:
                self._write_one_batch(batch)
        finally:
            _close_writer(self.writer, self.name)

    def _write_one_batch(self, items: list[Any]) -> None:
        items = [x.build() if type(x) is RecordDraft else x for x in items]
        batch: list[CostRecord] = items
        if any(type(x) is Outcome for x in items):
            batch = [x for x in items if type(x) is not Outcome]
            self._hand_outcomes([x for x in items if type(x) is Outcome])
        if batch:
            self._write_records(batch)
        with self._cond:
            self._processed += len(items)
            self._cond.notify_all()

    def _hand_outcomes(self, outcomes: list[Outcome]) -> None:
        write = self._write_outcomes
        if not callable(write):
            self._count(dropped=len(outcomes))
            warn_once(f"sink-no-outcomes-{id(self)}", f"costkit sink {self.name}: its writer takes no outcomes")
            return
        try:
            write(outcomes)
        except Exception as exc:
            self._count(dropped=len(outcomes), errors=1)
            warn_once(f"sink-outcomes-{id(self)}", f"costkit sink {self.name}: writing outcomes raised {exc!r}")
        else:
            self._count(written=len(outcomes))

    def _write_records(self, batch: list[CostRecord]) -> None:
        try:
            self._write(batch)
        except _PartialFailure as exc:
            self._count(written=len(batch) - exc.failed, dropped=exc.failed, errors=exc.failed)
            warn_once(
                f"sink-writer-{id(self)}",
                f"costkit sink {self.name}: writer raised {exc}; records are being dropped (see .dropped / .errors)",
            )
        except Exception as exc:
            self._count(dropped=len(batch), errors=1)
            warn_once(
                f"sink-writer-{id(self)}",
                f"costkit sink {self.name}: writer raised {type(exc).__name__}: {exc}; "
                "records are being dropped (see .dropped / .errors)",
            )
        else:
            self._count(written=len(batch))

    def _after_fork_in_child(self) -> None:
        # The worker thread does not exist in a forked child; the parent's pending records are the parent's.
        # Locks are recreated: another parent thread may have held one at the moment of the fork.
        self._counter_lock = threading.Lock()
        self._init_state()

    def __repr__(self) -> str:
        return f"BackgroundSink({self.name}, pending={self.pending}, written={self.written}, dropped={self.dropped})"


def usable_path(
    path: str | os.PathLike[str],
    check: Callable[[Path], Any],
    problem: str,
    errors: tuple[type[BaseException], ...] = (OSError,),
) -> Path:
    """``Path(path)``, its directory created and ``check(path)`` passed, so a file sink fails at construction.

    Records name tenants, users and what they spent: directories costkit creates are 0700 and the
    file, when costkit creates it, 0600 (existing ones keep their modes).
    ``ConfigError("path", f"{problem}: {error}")`` when that raises one of ``errors``.
    """
    resolved = Path(path)
    try:
        make_private_dirs(resolved.parent)
        create_private_file(resolved)
        check(resolved)
    except errors as exc:
        raise ConfigError("path", f"{problem}: {exc}") from None
    return resolved


def _per_record(emit: Callable[[CostRecord], Any]) -> Callable[[Sequence[CostRecord]], None]:
    """Adapt a per-record sink to a batch writer; one failing record does not lose the rest."""

    def write(records: Sequence[CostRecord]) -> None:
        first: Exception | None = None
        failed = 0
        for r in records:
            try:
                emit(r)
            except Exception as exc:
                failed += 1
                first = first or exc
        if first is not None:
            raise _PartialFailure(failed, len(records), first)

    return write


class _PartialFailure(Exception):
    def __init__(self, failed: int, total: int, first: Exception) -> None:
        self.failed = failed
        super().__init__(f"{failed}/{total} records failed; first: {type(first).__name__}: {first}")


def _close_writer(writer: Any, name: str) -> None:
    for method in ("flush", "close"):
        fn = getattr(writer, method, None)
        if callable(fn):
            try:
                fn()
            except Exception as exc:
                warn_once(f"sink-writer-{method}-{id(writer)}", f"costkit sink {name}: {method}() raised {exc!r}")


# -- process lifecycle ---------------------------------------------------------------------------

_live: weakref.WeakSet[BackgroundSink] = weakref.WeakSet()
EXIT_TIMEOUT_S = 5.0  # total time interpreter exit may spend writing pending records


def _close_all_at_exit() -> None:
    """Flush and close every live sink, bounded in total by EXIT_TIMEOUT_S."""
    deadline = time.monotonic() + EXIT_TIMEOUT_S
    for sink in list(_live):
        remaining = max(0.0, deadline - time.monotonic())
        try:
            sink.close(timeout=min(remaining, sink.close_timeout_s))
        except Exception as exc:  # never fail interpreter exit
            warn_once(f"sink-exit-{id(sink)}", f"costkit sink {sink.name}: close at exit failed: {exc!r}")


def _reset_after_fork() -> None:
    for sink in list(_live):
        sink._after_fork_in_child()


atexit.register(_close_all_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


class DeferredSink(abc.ABC, _Counters):
    """Base of sinks whose per-record work is CPU, not I/O (OTel, Prometheus): done off the hot path.

    With ``background=True`` (the default) ``emit`` hands ``(record, extra)`` to a
    :class:`BackgroundSink` and returns; ``background=False`` does the work in ``emit`` (simpler
    to reason about in tests, one thread fewer). Either way failures are caught and counted.
    Subclasses implement ``_handle(record, extra)`` and may override ``_capture()`` to take
    something from the caller's thread at emit time (OTel takes the current trace context).
    """

    _bg: BackgroundSink | None = None
    nonblocking = True  # queued (background=True), or CPU work the user asked to do inline
    accepts_drafts = True  # built in _handle_item: on the worker's thread when queued

    def _init_deferred(self, *, background: bool, max_queue: int, name: str) -> None:
        super().__init__()
        self._name = name
        if background:
            self._bg = BackgroundSink(
                self._handle_item, max_queue=max_queue, batch_size=256, flush_interval_s=0.2, name=name
            )

    def _capture(self) -> Any:
        return None

    @abc.abstractmethod
    def _handle(self, record: CostRecord, extra: Any) -> None:
        """Do the sink's work for one record (``extra`` is what ``_capture`` returned at emit)."""

    def _handle_outcome(self, outcome: Outcome) -> None:
        """Do the sink's work for one outcome (default: nothing; OTel and Prometheus count them)."""

    def _handle_item(self, item: tuple[Any, Any]) -> None:
        if type(item[0]) is Outcome:
            self._handle_outcome(item[0])
        else:
            self._handle(as_record(item[0]), item[1])

    def emit_outcome(self, outcome: Outcome) -> None:
        bg = self._bg
        if bg is not None:
            bg.emit((outcome, None))  # type: ignore[arg-type]  # the writer gets the pair back
            return
        try:
            self._handle_outcome(outcome)
        except Exception as exc:
            self._count(errors=1)
            warn_once(f"sink-deferred-outcome-{id(self)}", f"costkit {self._name} failed on an outcome ({exc!r})")

    def emit(self, record: CostRecord) -> None:
        bg = self._bg
        if bg is not None:
            bg.emit((record, self._capture()))  # type: ignore[arg-type]  # the writer gets the pair back
            return
        try:
            self._handle(record, self._capture())
        except Exception as exc:
            self._count(emitted=1, dropped=1, errors=1)
            warn_once(f"sink-deferred-{id(self)}", f"costkit {self._name} failed ({type(exc).__name__}: {exc})")
        else:
            self._count(emitted=1, written=1)

    # counters: the background queue's when there is one
    @property
    def emitted(self) -> int:
        return self._bg.emitted if self._bg is not None else self._emitted

    @property
    def written(self) -> int:
        return self._bg.written if self._bg is not None else self._written

    @property
    def dropped(self) -> int:
        return self._bg.dropped if self._bg is not None else self._dropped

    @property
    def errors(self) -> int:
        return self._bg.errors if self._bg is not None else self._errors

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until queued records were handled (background mode); True when done."""
        return self._bg.flush(timeout) if self._bg is not None else True

    def close(self, timeout: float | None = None) -> bool:
        """Handle what is queued and stop the thread (background mode)."""
        return self._bg.close(timeout) if self._bg is not None else True


def off_the_caller(sink: Any) -> Any:
    """``sink`` as ``costkit.wrap`` delivers it: as is when its ``emit`` never blocks (it says so with
    ``nonblocking = True``), else behind a :class:`BackgroundSink` (a fan-out: each of its sinks)."""
    from .base import CallableSink, FanoutSink

    if isinstance(sink, FanoutSink):
        return FanoutSink(off_the_caller(s) for s in sink.sinks)
    if getattr(sink, "nonblocking", False) is True:
        return sink
    if isinstance(sink, CallableSink):  # the queue calls the function itself: one set of counters
        return BackgroundSink(sink.fn)
    return BackgroundSink(sink)


__all__ = ["EXIT_TIMEOUT_S", "BackgroundSink", "BatchWriter", "DeferredSink", "off_the_caller"]
