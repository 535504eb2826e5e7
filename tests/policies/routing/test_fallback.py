"""Which failures move a call to another model."""

from __future__ import annotations

import httpx
import openai

from costkit.errors import BudgetExceeded, CircuitOpen, RetryBudgetExhausted
from costkit.policies.routing.fallback import fallback_reason

REQ = httpx.Request("POST", "https://api.openai.com/v1/chat/completions")


def status(cls: type[openai.APIStatusError], code: int, body: object = None) -> openai.APIStatusError:
    return cls("x", response=httpx.Response(code, request=REQ), body=body)


def test_transient_errors_circuits_and_overflows_fall_back() -> None:
    assert fallback_reason(status(openai.RateLimitError, 429)) == "rate_limit"
    assert fallback_reason(status(openai.InternalServerError, 503)) == "server"
    assert fallback_reason(openai.APITimeoutError(request=REQ)) == "timeout"
    assert fallback_reason(openai.APIConnectionError(request=REQ)) == "connection"
    assert fallback_reason(CircuitOpen("openai", "m", 1.0)) == "circuit_open"
    overflow = status(openai.BadRequestError, 400, {"error": {"code": "context_length_exceeded"}})
    assert fallback_reason(overflow) == "context_overflow"


def test_caller_errors_do_not() -> None:
    assert fallback_reason(status(openai.BadRequestError, 400)) is None
    assert fallback_reason(status(openai.AuthenticationError, 401)) is None
    assert fallback_reason(BudgetExceeded("over")) is None
    assert fallback_reason(ValueError("mine")) is None


def test_an_exhausted_retry_budget_falls_back_on_what_exhausted_it() -> None:
    assert fallback_reason(RetryBudgetExhausted("no", last_error=status(openai.RateLimitError, 429))) == "rate_limit"
    assert fallback_reason(RetryBudgetExhausted("no", last_error=status(openai.BadRequestError, 400))) is None
    assert fallback_reason(RetryBudgetExhausted("no")) is None
