"""What the retry-budget and circuit-breaker tests share: SDK errors, a call, a clock, a scripted terminal."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import httpx
import openai

from costkit import Call, Result

_REQ = httpx.Request("POST", "https://api.openai.com/v1/chat/completions")


def status_error(cls: type, status: int, headers: dict[str, str] | None = None) -> Exception:
    return cls(f"status {status}", response=httpx.Response(status, headers=headers, request=_REQ), body=None)


def rate_limited(after: str | None = None) -> Exception:
    return status_error(openai.RateLimitError, 429, {"retry-after": after} if after else None)


def server_error() -> Exception:
    return status_error(openai.InternalServerError, 500)


def bad_request() -> Exception:
    return status_error(openai.BadRequestError, 400)


def timeout() -> Exception:
    return openai.APITimeoutError(request=_REQ)


def make_call(model: str = "gpt-4o-mini", **kw: Any) -> Call:
    return Call(
        provider="openai",
        api="chat",
        requested_model=model,
        model=model,
        messages=({"role": "user", "content": "hi"},),
        **kw,
    )


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Scripted:
    """A terminal answering from ``outcomes`` (an exception is raised), then as ``fail(call)`` says, else ``ok``.

    Records every call.
    """

    def __init__(self, outcomes: list[Any] | None = None, fail: Callable[[Call], Exception | None] | None = None):
        self.outcomes = list(outcomes or [])
        self.fail = fail
        self.calls: list[Call] = []
        self._lock = threading.Lock()

    def __call__(self, call: Call) -> Result:
        with self._lock:
            self.calls.append(call)
            outcome = self.outcomes.pop(0) if self.outcomes else None
        if outcome is None and self.fail is not None:
            outcome = self.fail(call)
        if isinstance(outcome, BaseException):
            raise outcome
        return Result(text="ok", model=call.model, cost_usd=0.001)

    async def acall(self, call: Call) -> Result:
        await asyncio.sleep(0)
        return self(call)
