"""Fixtures of the alert tests (helpers live in alert_traffic.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from alert_traffic import Traffic

from costkit.sinks import MemorySink
from costkit.testing import SimClock


@pytest.fixture
def traffic() -> Iterator[Callable[..., Traffic]]:
    clocks: list[SimClock] = []

    def make(start: str = "2026-11-02T00:00:00Z", policies: list[Any] | None = None) -> Traffic:
        clock = SimClock(start).install()
        clocks.append(clock)
        return Traffic(clock, MemorySink(), policies)

    yield make
    for c in reversed(clocks):
        c.uninstall()
