"""costkit.sinks: where cost records go.

A sink is anything with ``emit(record)`` (optional ``flush()`` / ``close()``), or a plain
callable. Sinks that do I/O (JSONL, SQLite, Postgres, your own) sit behind :class:`BackgroundSink`, so
``emit`` only enqueues. OTel and Prometheus import their libraries when constructed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports
from .base import CallableSink, FanoutSink, Inline, Sink, SinkStats, as_sink, close_sink, flush_sink, safe_emit
from .memory import MemorySink

_LAZY = {
    "BackgroundSink": "costkit.sinks.background",
    "JSONLSink": "costkit.sinks.jsonl",
    "SQLiteSink": "costkit.sinks.sqlite",
    "PostgresSink": "costkit.sinks.postgres",
    "OTelSink": "costkit.sinks.otel",
    "PrometheusSink": "costkit.sinks.prometheus",
}

__all__ = [
    "BackgroundSink",
    "CallableSink",
    "FanoutSink",
    "Inline",
    "JSONLSink",
    "MemorySink",
    "OTelSink",
    "PostgresSink",
    "PrometheusSink",
    "SQLiteSink",
    "Sink",
    "SinkStats",
    "as_sink",
    "close_sink",
    "flush_sink",
    "safe_emit",
]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())


if TYPE_CHECKING:  # pragma: no cover
    from .background import BackgroundSink
    from .jsonl import JSONLSink
    from .otel import OTelSink
    from .postgres import PostgresSink
    from .prometheus import PrometheusSink
    from .sqlite import SQLiteSink
