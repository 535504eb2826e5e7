"""What an outcome needs from the records before it: the task's feature, experiment and arm.

An :class:`~costkit.outcomes.Outcome` names only its task; metrics want it by experiment arm (a
bounded label set), never by task id. The OTel and Prometheus sinks remember, for the most recent
tasks they saw records of, the feature, experiment and arm, and label outcomes with those.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from ..records import CostRecord

TaskLabels = tuple[str | None, str | None, str | None]  # feature, experiment, arm
UNKNOWN: TaskLabels = (None, None, None)


class TaskMemory:
    """The labels of the last ``max_tasks`` tasks seen in records (least recently seen forgotten first)."""

    def __init__(self, max_tasks: int = 100_000) -> None:
        self.max_tasks = max_tasks
        self._seen: OrderedDict[str, TaskLabels] = OrderedDict()
        self._lock = threading.Lock()

    def note(self, record: CostRecord) -> None:
        if record.task is None:
            return
        labels = (record.feature, record.experiment, record.arm)
        with self._lock:
            self._seen[record.task] = labels
            self._seen.move_to_end(record.task)
            if len(self._seen) > self.max_tasks:
                self._seen.popitem(last=False)

    def labels(self, task: str) -> TaskLabels:
        with self._lock:
            return self._seen.get(task, UNKNOWN)


__all__ = ["UNKNOWN", "TaskLabels", "TaskMemory"]
