"""Helpers of the alert tests: traffic from the fake provider at a SimClock, stored ledgers, records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import costkit
from costkit.records import CostRecord
from costkit.sinks import MemorySink, SQLiteSink
from costkit.testing import FakeOpenAI, SimClock


class Traffic:
    """``ask(n, **tags)`` sends ``n`` chat calls (distinct questions) at the clock's current time."""

    def __init__(self, clock: SimClock, sink: MemorySink, policies: list[Any] | None = None) -> None:
        self.clock = clock
        self.sink = sink
        self.fake = FakeOpenAI()
        self.client = costkit.wrap(self.fake, policies=policies or [], sink=sink)
        self.n = 0

    def ask(self, n: int = 1, *, model: str = "gpt-4o-mini", words: int = 5, gap_s: float = 0.0, **tags: str) -> None:
        for _ in range(n):
            self.n += 1
            text = f"question {self.n} " + "word " * words
            with costkit.tags(**tags):
                self.client.chat.completions.create(
                    model=model, messages=[{"role": "user", "content": text}], temperature=0
                )
            if gap_s:
                self.clock.advance(gap_s)

    def at(self, when: str) -> None:
        self.clock.set(when)


def stored(tmp_path: Path, records: list[CostRecord], name: str = "costs.db") -> Path:
    """The records in a SQLite ledger, as the sink writes them (small batches: requests straddle them)."""
    path = tmp_path / name
    with SQLiteSink(path, batch_size=7) as sink:
        sink.write_many(records)
    return path


def record(**kw: Any) -> CostRecord:
    base: dict[str, Any] = {
        "request_id": "r",
        "attempt": 1,
        "kind": "call",
        "timestamp": 1_793_491_200.0,
        "provider": "openai",
        "requested_model": "gpt-4o",
        "model": "gpt-4o",
        "feature": "faq",
        "tenant": "acme",
        "cost_usd": 0.25,
    }
    base.update(kw)
    return CostRecord(**base)
