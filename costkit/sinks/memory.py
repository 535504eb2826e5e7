"""MemorySink: keep records in a list, for tests, notebooks and the report of a short run."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from ..outcomes import Outcome
from ..records import CostRecord, RecordDraft
from .base import _Counters


class MemorySink(_Counters):
    """Appends every record to :attr:`records`; ``emit`` is one list append (atomic, so thread-safe).

    The recorder may hand it a draft (priced, not yet built: see ``costkit.records.RecordDraft``);
    reading :attr:`records` builds what is still a draft, so a call pays for a list append only.

    ``max_records`` bounds memory in long-running processes: the oldest records are dropped
    (and counted in ``dropped``) once it is reached; that mode takes a lock per emit.
    ``emitted`` / ``written`` count the records in :attr:`records` plus those :meth:`clear` removed.
    """

    nonblocking = True  # a list append: delivered on the caller's thread, so records are there when it returns
    accepts_drafts = True  # built when read

    def __init__(self, max_records: int | None = None) -> None:
        from ..errors import ConfigError

        if max_records is not None and (
            isinstance(max_records, bool) or not isinstance(max_records, int) or max_records < 1
        ):
            raise ConfigError("max_records", f"expected a positive int or None, got {max_records!r}")
        super().__init__()
        self.max_records = max_records
        self._items: list[CostRecord] = []  # records, or drafts until read
        self.outcomes: list[Outcome] = []  # what costkit.outcome(...) wrote here
        self._lock = self._counter_lock
        self._removed = 0  # records taken out by clear() or by the max_records bound
        if max_records is not None:
            self.emit = self._emit_bounded  # type: ignore[method-assign]

    @property
    def records(self) -> list[CostRecord]:
        """The records emitted here, in order (the live list: it grows as calls finish)."""
        items = self._items
        for i, r in enumerate(items):
            if type(r) is RecordDraft:
                items[i] = r.build()
        return items

    def emit(self, record: CostRecord) -> None:
        self._items.append(record)

    def emit_outcome(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)

    def _emit_bounded(self, record: CostRecord) -> None:
        with self._lock:
            self._items.append(record)
            over = len(self._items) - self.max_records  # type: ignore[operator]
            if over > 0:
                del self._items[:over]
                self._removed += over
                self._dropped += over

    @property
    def emitted(self) -> int:
        return self._removed + len(self._items)

    @property
    def written(self) -> int:
        return self.emitted

    def flush(self) -> None:
        """Nothing is buffered."""

    def close(self) -> None:
        """Nothing to release; the records stay readable."""

    def snapshot(self) -> list[CostRecord]:
        """A copy of the records, safe to iterate while other threads emit."""
        with self._lock:
            return list(self.records)

    def clear(self) -> None:
        """Forget the records and outcomes (the counters keep counting the records)."""
        with self._lock:
            n = len(self._items)
            del self._items[:n]  # one atomic slice delete: records appended meanwhile stay
            del self.outcomes[: len(self.outcomes)]
            self._removed += n

    def where(self, predicate: Callable[[CostRecord], bool] | None = None, **fields: object) -> list[CostRecord]:
        """Records whose fields equal ``fields`` (e.g. ``feature="faq"``) and that pass ``predicate``."""
        return [
            r
            for r in self.snapshot()
            if all(getattr(r, k) == v for k, v in fields.items()) and (predicate is None or predicate(r))
        ]

    @property
    def total_cost_usd(self) -> float:
        """Sum of ``cost_usd`` over priced records."""
        return sum(r.cost_usd for r in self.snapshot() if r.cost_usd is not None)

    @property
    def total_saved_usd(self) -> float:
        return sum(r.saved_usd for r in self.snapshot())

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[CostRecord]:
        return iter(self.snapshot())

    def __repr__(self) -> str:
        return f"MemorySink({len(self._items)} records)"


__all__ = ["MemorySink"]
