"""costkit.sinks: where cost records go.

A sink is anything with ``emit(record)`` (optional ``flush()`` / ``close()``), or a plain
callable. Sinks that do I/O (JSONL, SQLite, Postgres, your own) sit behind :class:`BackgroundSink`, so
``emit`` only enqueues. OTel and Prometheus import their libraries when constructed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'costkit.sinks' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # pragma: no cover
    from .background import BackgroundSink
    from .jsonl import JSONLSink
    from .otel import OTelSink
    from .postgres import PostgresSink
    from .prometheus import PrometheusSink
    from .sqlite import SQLiteSink
