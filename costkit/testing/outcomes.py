"""Outcomes in tests: settle every task the fake provider served, by a rule you state once.

    settle_tasks(cost_records, lambda task, records: "refund" in records[-1].completion_text)

A test that checks cost per successful task needs an outcome for each task; writing
``costkit.outcome(...)`` after every call buries the rule. :func:`settle_tasks` reads the tasks
from a sink's records (a ``MemorySink``, or any sink with ``records()``), asks ``success(task,
records)`` (and ``value(task, records)``) for each task without an outcome yet, and emits the
outcomes to that sink, stamped by costkit's clock (a ``SimClock`` when one is active). The
``settle_tasks`` pytest fixture is this function bound to the ``cost_records`` sink.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..outcomes import Outcome, outcome
from ..records import CostRecord

Judge = Callable[[str, Sequence[CostRecord]], bool]


def _read(sink: Any, name: str) -> list[Any]:
    value = getattr(sink, name, None)
    if callable(value):
        value = value()
    return list(value or [])


def settle_tasks(
    sink: Any,
    success: Judge,
    *,
    value: Callable[[str, Sequence[CostRecord]], float | None] | None = None,
    **labels: str,
) -> list[Outcome]:
    """One outcome per task of ``sink``'s records that has none yet; returns them in task order."""
    tasks: dict[str, list[CostRecord]] = {}
    for r in _read(sink, "records"):
        if r.task is not None:
            tasks.setdefault(r.task, []).append(r)
    settled = {o.task for o in _read(sink, "outcomes")}
    out = []
    for task, records in tasks.items():
        if task in settled:
            continue
        ok = bool(success(task, records))
        out.append(outcome(task, success=ok, value=value(task, records) if value else None, sink=sink, **labels))
    return out


__all__ = ["settle_tasks"]
