"""Test costkit, and the application using it, offline: a scripted fake OpenAI/Anthropic provider.

* :class:`FakeProvider`: the script (rules, failures, latency) and the call log.
* :func:`FakeOpenAI`, :func:`FakeAsyncOpenAI`, :func:`FakeAnthropic`, :func:`FakeAsyncAnthropic`:
  the real SDK clients answered in process by a fake provider; :class:`FakeLiteLLM` for litellm.
* :func:`serve`: the same provider over HTTP on 127.0.0.1, for the SDKs' own network stack.
* :class:`SimClock`: stamp records and outcomes at simulated times (alerts, reports, forecasts).
* The pytest plugin (``costkit.testing.pytest_plugin``) gives these as fixtures.

The SDKs are imported only when a fake client is built.
"""

from __future__ import annotations

from .clients import (
    AsyncFakeTransport,
    FakeAnthropic,
    FakeAsyncAnthropic,
    FakeAsyncOpenAI,
    FakeLiteLLM,
    FakeOpenAI,
    FakeTransport,
)
from .clock import SimClock
from .handler import FakeCall, FakeProvider, FakeResponse
from .policies import arun_policy, run_policy
from .rules import Failure, FakeRequest, Reply, ToolCall, refusal, text, tool_call
from .server import FakeServer, serve

__all__ = [
    "AsyncFakeTransport",
    "Failure",
    "FakeAnthropic",
    "FakeAsyncAnthropic",
    "FakeAsyncOpenAI",
    "FakeCall",
    "FakeLiteLLM",
    "FakeOpenAI",
    "FakeProvider",
    "FakeRequest",
    "FakeResponse",
    "FakeServer",
    "FakeTransport",
    "Reply",
    "SimClock",
    "ToolCall",
    "arun_policy",
    "refusal",
    "run_policy",
    "serve",
    "text",
    "tool_call",
]
