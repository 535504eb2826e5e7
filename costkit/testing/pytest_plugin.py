"""pytest fixtures for testing offline with costkit's fake provider.

Registered through the ``pytest11`` entry point, so installing costkit makes them available::

    def test_answer(fake_openai, cost_records):
        fake_openai.fake.on("refund", "Refunds take 5 days.")
        client = costkit.wrap(fake_openai, sink=cost_records)
        ...

Every fixture is function-scoped and builds a fresh provider, so no script or call log leaks
between tests. Nothing heavy is imported until a fixture is used.

Every default location costkit writes to (the records file ``costkit.wrap`` opens when given no
``sink``, the default disk cache directories) points into a per-test temporary directory, so a test
that passes once passes again: no cache hit, and no record, survives into the next test or run. Turn
that off with ``costkit_isolate = false`` in the pytest ini file.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .clients import (
        FakeAnthropicClient,
        FakeAsyncAnthropicClient,
        FakeAsyncOpenAIClient,
        FakeLiteLLM,
        FakeOpenAIClient,
    )
    from .clock import SimClock
    from .handler import FakeProvider
    from .server import FakeServer


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "costkit_isolate",
        "point costkit's default records file and cache directories at a per-test temporary directory",
        type="bool",
        default=True,
    )


@pytest.fixture(autouse=True)
def _costkit_isolated_paths(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test gets its own default records file and cache directories (see the module docstring)."""
    if not request.config.getini("costkit_isolate"):
        return
    base = request.getfixturevalue("tmp_path") / "costkit-defaults"
    monkeypatch.setenv("COSTKIT_DB", str(base / "costs.db"))
    monkeypatch.setenv("COSTKIT_CACHE_DIR", str(base / "cache"))


@pytest.fixture
def fake_provider() -> FakeProvider:
    """A fresh :class:`~costkit.testing.FakeProvider`, shared by the client fixtures of one test."""
    from .handler import FakeProvider

    return FakeProvider()


@pytest.fixture
def fake_openai(fake_provider: FakeProvider) -> Iterator[FakeOpenAIClient]:
    """A real ``openai.OpenAI`` answered in process; ``.fake`` is the provider."""
    from .clients import FakeOpenAI

    client = FakeOpenAI(fake_provider)
    yield client
    client.close()


@pytest.fixture
def fake_async_openai(fake_provider: FakeProvider) -> FakeAsyncOpenAIClient:
    """A real ``openai.AsyncOpenAI`` answered in process; ``.fake`` is the provider.

    A plain fixture (works with any pytest-asyncio mode): the in-process transport holds no
    connection, so there is nothing to close."""
    from .clients import FakeAsyncOpenAI

    return FakeAsyncOpenAI(fake_provider)


@pytest.fixture
def fake_anthropic(fake_provider: FakeProvider) -> Iterator[FakeAnthropicClient]:
    """A real ``anthropic.Anthropic`` answered in process; ``.fake`` is the provider."""
    from .clients import FakeAnthropic

    client = FakeAnthropic(fake_provider)
    yield client
    client.close()


@pytest.fixture
def fake_async_anthropic(fake_provider: FakeProvider) -> FakeAsyncAnthropicClient:
    """A real ``anthropic.AsyncAnthropic`` answered in process; ``.fake`` is the provider."""
    from .clients import FakeAsyncAnthropic

    return FakeAsyncAnthropic(fake_provider)


@pytest.fixture
def fake_litellm(fake_provider: FakeProvider) -> FakeLiteLLM:
    """Called like the ``litellm`` module (``completion``, ``acompletion``), answered by the fake."""
    from .clients import FakeLiteLLM

    return FakeLiteLLM(fake_provider)


@pytest.fixture
def fake_server(fake_provider: FakeProvider) -> Iterator[FakeServer]:
    """A running :func:`~costkit.testing.serve` on 127.0.0.1 (``.base_url``, ``.anthropic_base_url``)."""
    from .server import serve

    server = serve(fake_provider)
    yield server
    server.close()


@pytest.fixture
def cost_records() -> Any:
    """A fresh ``costkit.sinks.MemorySink``: pass it as ``sink=`` and assert on ``.records`` (and on
    ``.outcomes``: ``costkit.outcome(...)`` writes there once a client is wrapped with it)."""
    from costkit.sinks import MemorySink

    return MemorySink()


@pytest.fixture
def sim_clock() -> Iterator[SimClock]:
    """A :class:`~costkit.testing.SimClock` stamping this test's records and outcomes (from
    2026-11-02 00:00 UTC); ``sim_clock.advance(seconds)`` moves it."""
    from .clock import SimClock

    with SimClock() as clock:
        yield clock


@pytest.fixture(autouse=True)
def _costkit_outcome_sinks() -> Iterator[None]:
    """Each test starts with no outcome destinations, so ``costkit.outcome`` writes to this test's sinks only."""
    yield
    import sys

    outcomes = sys.modules.get("costkit.outcomes")
    if outcomes is not None:
        outcomes.reset_registry()


@pytest.fixture
def settle_tasks(cost_records: Any) -> Any:
    """``settle_tasks(success, value=None, **labels)``: one outcome per task in ``cost_records`` that
    has none yet, judged by ``success(task, records)`` (see :func:`costkit.testing.outcomes.settle_tasks`)."""
    from functools import partial

    from .outcomes import settle_tasks as settle

    return partial(settle, cost_records)
