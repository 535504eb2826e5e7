"""Outcomes: how a task ended, so the report can divide spend by what it bought.

A **task** is one user-visible unit of work (answer a ticket, summarize a document) that may take
many calls; tag the calls with ``costkit.tags(task=...)`` (or ``costkit={"task": ...}`` per call)
and say how it ended with::

    costkit.outcome("ticket-8812", success=True, value=12.0, channel="email")

The report joins outcomes to records by task: cost per successful task, success rate, the cost
of failed tasks, by feature, prompt version, model or experiment arm.

Where an outcome goes: to ``sink=`` when given; otherwise to every sink of the clients wrapped in
this process (``costkit.wrap`` registers its sink here), once per distinct ledger (two default
SQLite sinks on the same file count once). A sink takes outcomes when it has
``emit_outcome(outcome)``: the memory, SQLite, JSONL, Postgres, OTel and Prometheus sinks and
``FanoutSink`` do; a plain callable sink does not (it was written for CostRecords). An outcome
that no sink takes is counted in :data:`stats` and warned about once: it never raises into
the application.
"""

from __future__ import annotations

import math
import threading
import weakref
from collections import Counter
from collections.abc import Mapping
from typing import Any

import attrs

from ._warn import warn_once
from .errors import ConfigError
from .records import now


@attrs.frozen(kw_only=True, slots=True)
class Outcome:
    """How one task ended: ``success``, an optional ``value`` (revenue, a quality score...), labels."""

    task: str
    success: bool
    value: float | None = None
    labels: Mapping[str, str] = attrs.field(factory=dict)
    timestamp: float = 0.0  # seconds since the epoch, UTC

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "success": self.success,
            "value": self.value,
            "labels": dict(self.labels),
            "timestamp": self.timestamp,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Outcome:
        """From a stored row: only the known fields, each checked (stored data is not trusted)."""
        labels = data.get("labels") or {}
        value = data.get("value")
        return cls(
            task=str(data["task"]),
            success=bool(data["success"]),
            value=float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None,
            labels={str(k): str(v) for k, v in labels.items()} if isinstance(labels, Mapping) else {},
            timestamp=float(data.get("timestamp") or 0.0),
        )


def make_outcome(task: str, success: bool, value: float | None = None, **labels: str) -> Outcome:
    """A checked :class:`Outcome` stamped now; ``ConfigError`` names the bad argument."""
    if not isinstance(task, str) or not task:
        raise ConfigError("task", f"must be a non-empty str (the task tag of its calls), got {task!r}")
    if not isinstance(success, bool):
        raise ConfigError("success", f"must be True or False, got {success!r}")
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(float(value))
    ):
        raise ConfigError("value", f"must be a finite number or None, got {value!r}")
    for k, v in labels.items():
        if not isinstance(v, str):
            raise ConfigError(k, f"labels are str values, got {type(v).__name__}")
    return Outcome(
        task=task, success=success, value=None if value is None else float(value), labels=labels, timestamp=now()
    )


# -- where outcomes go ---------------------------------------------------------------------------

_lock = threading.Lock()
_sinks: dict[Any, weakref.ref[Any]] = {}
#: ``delivered``: outcomes a sink accepted; ``dropped``: outcomes no sink took; ``errors``: sinks that raised
stats: Counter[str] = Counter()


def _ledger_key(sink: Any) -> Any:
    key = getattr(sink, "ledger_key", None)
    return key if key is not None else ("object", id(sink))


def accepts_outcomes(sink: Any) -> bool:
    return callable(getattr(sink, "emit_outcome", None))


def register_sink(sink: Any) -> None:
    """Make ``sink`` a default destination of :func:`outcome` while it lives (``costkit.wrap`` calls this)."""
    if sink is None or not accepts_outcomes(sink):
        return
    try:
        ref = weakref.ref(sink)
    except TypeError:  # an object without weakref support: keep none rather than leak it
        return
    with _lock:
        _sinks[_ledger_key(sink)] = ref


def registered_sinks() -> list[Any]:
    """The live default destinations, one per ledger."""
    with _lock:
        out = []
        for key, ref in list(_sinks.items()):
            sink = ref()
            if sink is None or getattr(sink, "closed", False):
                del _sinks[key]
            else:
                out.append(sink)
        return out


def reset_registry() -> None:
    """Forget every registered sink (the pytest plugin calls this between tests)."""
    with _lock:
        _sinks.clear()
    stats.clear()


def outcome(
    task: str,
    success: bool,
    value: float | None = None,
    *,
    sink: Any = None,
    **labels: str,
) -> Outcome:
    """Record how ``task`` ended (see the module docstring for where it is written); returns the Outcome."""
    made = make_outcome(task, success, value, **labels)
    targets = [sink] if sink is not None else registered_sinks()
    delivered = False
    for target in targets:
        emit = getattr(target, "emit_outcome", None)
        if not callable(emit):
            raise ConfigError("sink", f"{target!r} does not take outcomes (it has no emit_outcome)")
        try:
            emit(made)
        except Exception as exc:
            stats["errors"] += 1
            warn_once(f"outcome-sink-{id(target)}", f"costkit: sink {target!r} failed to take an outcome ({exc!r})")
        else:
            delivered = True
    if delivered:
        stats["delivered"] += 1
    else:
        stats["dropped"] += 1
        warn_once(
            "outcome-nowhere",
            "costkit.outcome: no sink took the outcome (wrap a client with a sink that has emit_outcome, "
            "or pass sink=); outcomes are being dropped (see costkit.outcomes.stats)",
        )
    return made


__all__ = [
    "Outcome",
    "accepts_outcomes",
    "make_outcome",
    "outcome",
    "register_sink",
    "registered_sinks",
    "reset_registry",
    "stats",
]
