"""The sink protocol: where cost records go.

A sink is anything with ``emit(record)``; ``flush()`` and ``close()`` are optional. A plain
function works too (:func:`as_sink` adapts it), so ``sink=print`` or ``sink=my_queue.put`` is
enough to get records out.

Nothing a sink does may slow or stall the call that produced the record, so ``costkit.wrap``
delivers every sink off the caller's thread (:func:`~costkit.sinks.background.off_the_caller`:
a bounded queue drained by one thread, a full queue drops and counts, ``emit`` never blocks) unless
the sink says its ``emit`` never blocks (``nonblocking = True``: costkit's memory, queue-backed,
OTel and Prometheus sinks) or the user opts in to delivery on the caller's thread with
:class:`Inline`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any, Protocol, cast, runtime_checkable

import attrs

from .._warn import warn_once
from ..errors import ConfigError
from ..records import CostRecord


@runtime_checkable
class Sink(Protocol):
    """Receives one :class:`CostRecord` per provider attempt and per cache hit."""

    def emit(self, record: CostRecord) -> None: ...


@attrs.frozen(slots=True)
class SinkStats:
    """A snapshot of a sink's counters.

    ``emitted``: records handed to ``emit``; ``written``: records the backend accepted;
    ``dropped``: records lost (queue full, writer failed, sink closed); ``errors``: exceptions
    caught from the backend.
    """

    emitted: int = 0
    written: int = 0
    dropped: int = 0
    errors: int = 0


class _Counters:
    """Thread-safe counters shared by the sinks (``emitted``, ``written``, ``dropped``, ``errors``)."""

    def __init__(self) -> None:
        self._counter_lock = threading.Lock()
        self._emitted = 0
        self._written = 0
        self._dropped = 0
        self._errors = 0

    def _count(self, *, emitted: int = 0, written: int = 0, dropped: int = 0, errors: int = 0) -> None:
        with self._counter_lock:
            self._emitted += emitted
            self._written += written
            self._dropped += dropped
            self._errors += errors

    @property
    def emitted(self) -> int:
        return self._emitted

    @property
    def written(self) -> int:
        return self._written

    @property
    def dropped(self) -> int:
        return self._dropped

    @property
    def errors(self) -> int:
        return self._errors

    @property
    def stats(self) -> SinkStats:
        with self._counter_lock:
            return SinkStats(self.emitted, self.written, self.dropped, self.errors)


def _name_of(obj: Any) -> str:
    return getattr(obj, "__qualname__", None) or type(obj).__qualname__


class Inline:
    """Deliver ``sink`` on the caller's thread (opt-in): each record is in the sink when the call
    returns, and a slow sink slows the call. ``sink=costkit.sinks.Inline(my_sink)``."""

    nonblocking = True  # not true of the sink: the user chose to take that cost

    def __init__(self, sink: Any) -> None:
        self.sink = as_sink(sink)

    def emit(self, record: CostRecord) -> None:
        self.sink.emit(record)

    def flush(self) -> None:
        flush_sink(self.sink)

    def close(self) -> None:
        close_sink(self.sink)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sink, name)

    def __repr__(self) -> str:
        return f"Inline({self.sink!r})"


class CallableSink(_Counters):
    """Adapts a function ``fn(record)`` into a sink.

    An exception from ``fn`` is caught, counted and warned about once: a broken sink never
    fails the completion it is recording.
    """

    def __init__(self, fn: Callable[[CostRecord], Any]) -> None:
        if not callable(fn):
            raise ConfigError("fn", f"expected a callable taking a CostRecord, got {type(fn).__name__}")
        super().__init__()
        self.fn = fn

    def emit(self, record: CostRecord) -> None:
        try:
            self.fn(record)
        except Exception as exc:
            self._count(emitted=1, dropped=1, errors=1)
            warn_once(
                f"sink-callable-{id(self)}",
                f"costkit sink {_name_of(self.fn)} raised {type(exc).__name__}: {exc}; "
                "records are being dropped (see .dropped)",
            )
        else:
            self._count(emitted=1, written=1)

    def flush(self) -> None:
        """Nothing is buffered."""

    def close(self) -> None:
        """Nothing to release."""

    def __repr__(self) -> str:
        return f"CallableSink({_name_of(self.fn)})"


class FanoutSink(_Counters):
    """Emits every record to several sinks; one failing sink does not stop the others."""

    def __init__(self, sinks: Iterable[Any]) -> None:
        super().__init__()
        self.sinks: tuple[Sink, ...] = tuple(as_sink(s) for s in sinks)
        if not self.sinks:
            raise ConfigError("sinks", "expected at least one sink")

    def emit(self, record: CostRecord) -> None:
        self._count(emitted=1)
        failed = False
        for sink in self.sinks:
            failed = not safe_emit(sink, record) or failed
        self._count(errors=1 if failed else 0, written=0 if failed else 1)

    def emit_outcome(self, outcome: Any) -> None:
        """Hand an outcome to every member sink that takes outcomes (see :mod:`costkit.outcomes`)."""
        takers = [emit for sink in self.sinks if callable(emit := getattr(sink, "emit_outcome", None))]
        if not takers:
            raise TypeError("none of its sinks takes outcomes (no emit_outcome)")
        for emit in takers:
            try:
                emit(outcome)
            except Exception as exc:
                warn_once(f"sink-outcome-{id(emit)}", f"costkit sink {emit!r} failed to take an outcome: {exc!r}")

    def flush(self) -> None:
        for sink in self.sinks:
            _call_optional(sink, "flush")

    def close(self) -> None:
        for sink in self.sinks:
            _call_optional(sink, "close")

    def __repr__(self) -> str:
        return f"FanoutSink({list(self.sinks)!r})"


def as_sink(obj: Any) -> Sink:
    """Turn what the user passed as ``sink=`` into a :class:`Sink`.

    An object with ``emit`` is used as is; a plain callable is wrapped in :class:`CallableSink`;
    a list or tuple of those becomes a :class:`FanoutSink`. Anything else is a ``ConfigError``.
    """
    if obj is None:
        raise ConfigError("sink", "expected a sink (an object with emit(record)) or a callable, got None")
    emit = getattr(obj, "emit", None)
    if callable(emit):
        return cast(Sink, obj)
    if isinstance(obj, list | tuple):
        return FanoutSink(obj)
    if callable(obj):
        return CallableSink(obj)
    raise ConfigError("sink", f"expected an object with emit(record) or a callable, got {type(obj).__name__}")


def safe_emit(sink: Sink, record: CostRecord) -> bool:
    """Emit without ever raising into the caller; a failure is warned about once. Returns success."""
    try:
        sink.emit(record)
    except Exception as exc:
        warn_once(
            f"sink-emit-{id(sink)}",
            f"costkit sink {sink!r} raised {type(exc).__name__}: {exc}; the record was dropped",
        )
        return False
    return True


def _call_optional(sink: Any, method: str, *args: Any) -> None:
    fn = getattr(sink, method, None)
    if not callable(fn):
        return
    try:
        fn(*args)
    except Exception as exc:
        warn_once(f"sink-{method}-{id(sink)}", f"costkit sink {sink!r}.{method}() raised {type(exc).__name__}: {exc}")


def flush_sink(sink: Any) -> None:
    """Call ``sink.flush()`` if it has one (never raises)."""
    _call_optional(sink, "flush")


def close_sink(sink: Any) -> None:
    """Call ``sink.close()`` if it has one (never raises)."""
    _call_optional(sink, "close")


__all__ = [
    "CallableSink",
    "FanoutSink",
    "Inline",
    "Sink",
    "SinkStats",
    "as_sink",
    "close_sink",
    "flush_sink",
    "safe_emit",
]
