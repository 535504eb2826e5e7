"""classify / is_retryable / retry_after_s on the SDKs' real exception classes."""

from __future__ import annotations

import asyncio
import email.utils
import os
import subprocess
import sys
import time

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import anthropic
import anthropic._base_client
import anthropic._exceptions
import httpx
import openai
import pytest

from costkit.classify import CATEGORIES, RETRYABLE, classify, is_retryable, retry_after_s
from costkit.errors import CircuitOpen

# the HTTP library the installed anthropic builds its errors on: its fork httpx2 from 1.0, httpx before
_AHTTP = getattr(anthropic._base_client, "httpx2", None) or httpx
# every anthropic exception class lives here; not every version exports all of them at the top
_AERR = anthropic._exceptions
_REQ = httpx.Request("POST", "https://api.openai.com/v1/chat/completions")
_AREQ = _AHTTP.Request("POST", "https://api.anthropic.com/v1/messages")


def oa(cls: type, status: int, *, headers: dict[str, str] | None = None, body: object = None, msg: str = "boom"):
    return cls(msg, response=httpx.Response(status, headers=headers, request=_REQ), body=body)


def an(cls: type, status: int, *, headers: dict[str, str] | None = None, body: object = None, msg: str = "boom"):
    return cls(msg, response=_AHTTP.Response(status, headers=headers, request=_AREQ), body=body)


def an_case(name: str, status: int, category: str) -> object:
    """A case for anthropic's class ``name``; skipped on a version that has no such class."""
    cls = getattr(_AERR, name, None)
    if cls is None:
        reason = f"anthropic {anthropic.__version__} has no {name}"
        return pytest.param(None, category, id=name, marks=pytest.mark.skip(reason=reason))
    return pytest.param(an(cls, status), category, id=name)


@pytest.mark.parametrize(
    ("exc", "category"),
    [
        (oa(openai.RateLimitError, 429), "rate_limit"),
        (oa(openai.InternalServerError, 500), "server"),
        (oa(openai.InternalServerError, 503), "server"),
        (openai.APITimeoutError(request=_REQ), "timeout"),
        (openai.APIConnectionError(request=_REQ), "connection"),
        (oa(openai.BadRequestError, 400), "bad_request"),
        (
            oa(
                openai.BadRequestError,
                400,
                body={"code": "context_length_exceeded", "message": "too long", "type": "invalid_request_error"},
            ),
            "context_overflow",
        ),
        (oa(openai.AuthenticationError, 401), "auth"),
        (oa(openai.PermissionDeniedError, 403), "auth"),
        (oa(openai.NotFoundError, 404), "not_found"),
        (oa(openai.UnprocessableEntityError, 422), "bad_request"),
        (oa(openai.ConflictError, 409), "other"),
        (oa(openai.APIStatusError, 502), "server"),
        (an(anthropic.RateLimitError, 429), "rate_limit"),
        an_case("OverloadedError", 529, "server"),
        an_case("ServiceUnavailableError", 503, "server"),
        (an(anthropic.InternalServerError, 500), "server"),
        an_case("RequestTimeoutError", 408, "timeout"),
        (anthropic.APITimeoutError(request=_AREQ), "timeout"),
        (anthropic.APIConnectionError(request=_AREQ), "connection"),
        (an(anthropic.BadRequestError, 400), "bad_request"),
        (
            an(
                anthropic.BadRequestError,
                400,
                body={
                    "type": "error",
                    "error": {"type": "invalid_request_error", "message": "prompt is too long: 210000 > 200000"},
                },
                msg="prompt is too long: 210000 tokens > 200000 maximum",
            ),
            "context_overflow",
        ),
        (an(anthropic.AuthenticationError, 401), "auth"),
        (an(anthropic.NotFoundError, 404), "not_found"),
        (httpx.ReadTimeout("slow"), "timeout"),
        (httpx.ConnectError("refused"), "connection"),
        (TimeoutError(), "timeout"),
        (asyncio.TimeoutError(), "timeout"),
        (ConnectionResetError(), "connection"),
        (ValueError("mine"), "other"),
        (CircuitOpen("openai", "gpt-4o", 1.0), "other"),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else v,
)
def test_classify_sdk_exceptions(exc: BaseException, category: str) -> None:
    assert category in CATEGORIES
    assert classify(exc) == category
    assert is_retryable(exc) is (category in RETRYABLE)


def test_litellm_exceptions() -> None:
    import litellm

    resp = httpx.Response(400, request=_REQ)
    assert classify(litellm.ContextWindowExceededError("too long", model="m", llm_provider="openai")) == (
        "context_overflow"
    )
    assert classify(litellm.RateLimitError("slow down", llm_provider="openai", model="m")) == "rate_limit"
    assert classify(litellm.ServiceUnavailableError("down", llm_provider="openai", model="m")) == "server"
    assert classify(litellm.Timeout("slow", model="m", llm_provider="openai")) == "timeout"
    assert classify(litellm.BadRequestError("bad", model="m", llm_provider="openai", response=resp)) == "bad_request"
    assert classify(litellm.AuthenticationError("no key", llm_provider="openai", model="m")) == "auth"
    assert is_retryable(litellm.ServiceUnavailableError("down", llm_provider="openai", model="m"))
    err = litellm.RateLimitError("slow", llm_provider="openai", model="m", headers={"Retry-After": "7"})
    assert retry_after_s(err) == 7.0


def test_x_should_retry_header_wins() -> None:
    assert is_retryable(oa(openai.ConflictError, 409, headers={"x-should-retry": "true"}))
    assert not is_retryable(oa(openai.InternalServerError, 500, headers={"x-should-retry": "false"}))


def test_retry_after_headers() -> None:
    assert retry_after_s(oa(openai.RateLimitError, 429, headers={"retry-after-ms": "1500"})) == 1.5
    assert retry_after_s(oa(openai.RateLimitError, 429, headers={"Retry-After": "3"})) == 3.0
    assert retry_after_s(oa(openai.RateLimitError, 429, headers={"retry-after": "0.25"})) == 0.25
    assert retry_after_s(an(anthropic.RateLimitError, 429, headers={"retry-after": "12"})) == 12.0
    # ms wins over seconds; a malformed ms header falls back to seconds
    both = {"retry-after-ms": "200", "retry-after": "9"}
    assert retry_after_s(oa(openai.RateLimitError, 429, headers=both)) == 0.2
    bad_ms = {"retry-after-ms": "soon", "retry-after": "9"}
    assert retry_after_s(oa(openai.RateLimitError, 429, headers=bad_ms)) == 9.0
    # an HTTP date
    date = email.utils.formatdate(time.time() + 30, usegmt=True)
    got = retry_after_s(oa(openai.RateLimitError, 429, headers={"retry-after": date}))
    assert got is not None and 25 <= got <= 31
    past = email.utils.formatdate(time.time() - 30, usegmt=True)
    assert retry_after_s(oa(openai.RateLimitError, 429, headers={"retry-after": past})) == 0.0
    assert retry_after_s(oa(openai.RateLimitError, 429, headers={"retry-after": "garbage"})) is None
    assert retry_after_s(oa(openai.RateLimitError, 429)) is None
    assert retry_after_s(openai.APITimeoutError(request=_REQ)) is None
    assert retry_after_s(ValueError()) is None


def test_classify_does_not_import_sdks() -> None:
    code = (
        "import sys\n"
        "from costkit.classify import classify, is_retryable, retry_after_s\n"
        "assert classify(TimeoutError()) == 'timeout'\n"
        "assert is_retryable(ConnectionError()) and retry_after_s(ValueError()) is None\n"
        "bad = sorted(m for m in ('openai', 'anthropic', 'litellm') if m in sys.modules)\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
