"""Fixtures for the batch lane: wrapped fake clients, a state file, a back-off that does not wait."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import costkit
from costkit.batch import Backoff
from costkit.pricing import litellm_cost_map_path
from costkit.sinks import MemorySink
from costkit.testing import FakeAnthropic, FakeOpenAI, FakeProvider

MODEL = "gpt-4o-mini"
CLAUDE = "claude-haiku-4-5"
FAST = Backoff(initial_s=0.0, max_s=0.0, jitter=0.0)


def chat(i: int, **extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "messages": [{"role": "user", "content": f"question number {i}"}], **extra}


def claude(i: int, **extra: Any) -> dict[str, Any]:
    messages = [{"role": "user", "content": f"question number {i}"}]
    return {"model": CLAUDE, "max_tokens": 200, "messages": messages, **extra}


def map_batch_cost(model: str, input_tokens: int, output_tokens: int) -> float:
    """The batch-rate cost straight from LiteLLM's cost map (no costkit pricing code involved)."""
    entry = _cost_map()[model]
    return input_tokens * entry["input_cost_per_token_batches"] + output_tokens * entry["output_cost_per_token_batches"]


def map_interactive_cost(model: str, input_tokens: int, output_tokens: int) -> float:
    entry = _cost_map()[model]
    return input_tokens * entry["input_cost_per_token"] + output_tokens * entry["output_cost_per_token"]


_MAP: dict[str, Any] = {}


def _cost_map() -> dict[str, Any]:
    if not _MAP:
        path = litellm_cost_map_path()
        assert path is not None
        _MAP.update(json.loads(Path(path).read_text()))
    return _MAP


@pytest.fixture
def fake() -> FakeProvider:
    return FakeProvider()


@pytest.fixture
def sink() -> MemorySink:
    return MemorySink()


@pytest.fixture
def state(tmp_path: Path) -> str:
    return str(tmp_path / "jobs.db")


@pytest.fixture
def openai_client(fake: FakeProvider, sink: MemorySink) -> Iterator[Any]:
    yield costkit.wrap(FakeOpenAI(fake), sink=sink)


@pytest.fixture
def anthropic_client(fake: FakeProvider, sink: MemorySink) -> Iterator[Any]:
    yield costkit.wrap(FakeAnthropic(fake), sink=sink)
