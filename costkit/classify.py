"""What kind of failure an exception is, read from the SDKs' own exception classes.

Retry, the circuit breaker and the router's fallback all need the same answer to "was this a
rate limit, a server error, a timeout, or my own bad request?". The answer comes from the
exception classes of openai, anthropic and litellm (litellm's derive from openai's), then from
the HTTP status they carry, then from httpx / builtin network errors.

An SDK is looked at only if it is already imported (``sys.modules``): an exception of an SDK that
was never imported cannot exist, so ``classify`` never pays for importing one.

Categories: ``rate_limit``, ``server``, ``timeout``, ``connection`` (transient: retryable),
``context_overflow``, ``bad_request``, ``auth``, ``not_found``, ``other`` (not retryable).

:func:`reached_provider` answers the billing question: may the provider have processed (and
billed) a request that failed on our side?
"""

from __future__ import annotations

import email.utils
import math
import sys
import time
from collections.abc import Mapping
from typing import Any

RATE_LIMIT = "rate_limit"
SERVER = "server"
TIMEOUT = "timeout"
CONNECTION = "connection"
CONTEXT_OVERFLOW = "context_overflow"
BAD_REQUEST = "bad_request"
AUTH = "auth"
NOT_FOUND = "not_found"
OTHER = "other"

CATEGORIES = (RATE_LIMIT, SERVER, TIMEOUT, CONNECTION, CONTEXT_OVERFLOW, BAD_REQUEST, AUTH, NOT_FOUND, OTHER)
RETRYABLE = frozenset({RATE_LIMIT, SERVER, TIMEOUT, CONNECTION})

# (module, class name, category), most specific first: the first isinstance match wins.
# litellm's classes subclass openai's, so litellm's specific ones come before openai's.
_SDK_CLASSES: tuple[tuple[str, str, str], ...] = (
    ("litellm.exceptions", "ContextWindowExceededError", CONTEXT_OVERFLOW),
    ("litellm.exceptions", "ContentPolicyViolationError", BAD_REQUEST),
    ("litellm.exceptions", "Timeout", TIMEOUT),
    ("litellm.exceptions", "ServiceUnavailableError", SERVER),
    ("litellm.exceptions", "BadGatewayError", SERVER),
    ("litellm.exceptions", "InternalServerError", SERVER),
    ("litellm.exceptions", "RateLimitError", RATE_LIMIT),
    ("litellm.exceptions", "APIConnectionError", CONNECTION),
    ("litellm.exceptions", "BudgetExceededError", OTHER),
    ("openai", "RateLimitError", RATE_LIMIT),
    ("openai", "InternalServerError", SERVER),
    ("openai", "APITimeoutError", TIMEOUT),
    ("openai", "APIConnectionError", CONNECTION),
    ("openai", "BadRequestError", BAD_REQUEST),
    ("openai", "UnprocessableEntityError", BAD_REQUEST),
    ("openai", "AuthenticationError", AUTH),
    ("openai", "PermissionDeniedError", AUTH),
    ("openai", "NotFoundError", NOT_FOUND),
    ("anthropic", "RateLimitError", RATE_LIMIT),
    ("anthropic", "InternalServerError", SERVER),  # OverloadedError (529), 503, 504 derive from it
    ("anthropic", "RetryableError", SERVER),
    ("anthropic", "RequestTimeoutError", TIMEOUT),
    ("anthropic", "APITimeoutError", TIMEOUT),
    ("anthropic", "APIConnectionError", CONNECTION),
    ("anthropic", "BadRequestError", BAD_REQUEST),
    ("anthropic", "ContentTooLargeError", BAD_REQUEST),
    ("anthropic", "UnprocessableEntityError", BAD_REQUEST),
    ("anthropic", "AuthenticationError", AUTH),
    ("anthropic", "PermissionDeniedError", AUTH),
    ("anthropic", "NotFoundError", NOT_FOUND),
    ("httpx", "TimeoutException", TIMEOUT),
    ("httpx", "NetworkError", CONNECTION),
    ("httpx", "RemoteProtocolError", CONNECTION),
    ("httpx2", "TimeoutException", TIMEOUT),
    ("httpx2", "NetworkError", CONNECTION),
    ("httpx2", "RemoteProtocolError", CONNECTION),
)

# Codes and phrases the providers use when the prompt does not fit the model's context window.
_CONTEXT_CODES = frozenset({"context_length_exceeded", "string_above_max_length"})
_CONTEXT_PHRASES = (
    "context_length_exceeded",
    "maximum context length",
    "context window",
    "prompt is too long",
    "input is too long",
    "too many input tokens",
)


def _loaded_classes() -> list[tuple[type, str]]:
    out: list[tuple[type, str]] = []
    for module_name, name, category in _SDK_CLASSES:
        module = sys.modules.get(module_name)
        cls = getattr(module, name, None) if module is not None else None
        if isinstance(cls, type):
            out.append((cls, category))
    return out


def _status_code(exc: BaseException) -> int | None:
    code = getattr(exc, "status_code", None)
    if isinstance(code, int):
        return code
    response = getattr(exc, "response", None)
    code = getattr(response, "status_code", None)
    return code if isinstance(code, int) else None


def _from_status(status: int) -> str:
    if status == 429:
        return RATE_LIMIT
    if status == 408:
        return TIMEOUT
    if status >= 500:
        return SERVER
    if status in (401, 403):
        return AUTH
    if status == 404:
        return NOT_FOUND
    if status in (400, 413, 422):
        return BAD_REQUEST
    return OTHER


def _is_context_overflow(exc: BaseException) -> bool:
    codes = {getattr(exc, "code", None), getattr(exc, "error_code", None)}
    body = getattr(exc, "body", None)
    if isinstance(body, Mapping):
        err = body.get("error", body)
        if isinstance(err, Mapping):
            codes.add(err.get("code"))
    if codes & _CONTEXT_CODES:
        return True
    text = f"{getattr(exc, 'message', '')} {exc}".lower()
    return any(phrase in text for phrase in _CONTEXT_PHRASES)


def classify(exc: BaseException) -> str:
    """The failure category of ``exc`` (one of :data:`CATEGORIES`)."""
    category: str | None = None
    for cls, cat in _loaded_classes():
        if isinstance(exc, cls):
            category = cat
            break
    if category is None:
        status = _status_code(exc)
        if status is not None and status >= 400:
            category = _from_status(status)
        elif isinstance(exc, TimeoutError):  # also asyncio.TimeoutError and socket.timeout
            category = TIMEOUT
        elif isinstance(exc, ConnectionError):
            category = CONNECTION
        else:
            category = OTHER
    if category == BAD_REQUEST and _is_context_overflow(exc):
        category = CONTEXT_OVERFLOW
    return category


def _headers(exc: BaseException) -> list[Any]:
    """Where the response headers may be: the HTTP response, then litellm's ``exc.headers``."""
    found = []
    for headers in (getattr(getattr(exc, "response", None), "headers", None), getattr(exc, "headers", None)):
        if headers is not None and callable(getattr(headers, "get", None)):
            found.append(headers)
    return found


def _header(sources: list[Any], name: str) -> str | None:
    for headers in sources:
        value = headers.get(name)
        if value is None and isinstance(headers, Mapping):
            # a plain dict is case-sensitive; httpx.Headers is not
            value = {str(k).lower(): v for k, v in headers.items()}.get(name)
        if value is not None:
            return str(value)
    return None


def is_retryable(exc: BaseException) -> bool:
    """Whether another attempt may succeed: transient categories, or the server's ``x-should-retry``."""
    should = _header(_headers(exc), "x-should-retry")
    if should == "true":
        return True
    if should == "false":
        return False
    return classify(exc) in RETRYABLE


def retry_after_s(exc: BaseException) -> float | None:
    """Seconds the server asked us to wait (``retry-after-ms``, then ``retry-after``: seconds or a date)."""
    headers = _headers(exc)
    ms = _header(headers, "retry-after-ms")
    if ms is not None:
        try:
            value = float(ms) / 1000.0
        except ValueError:
            value = math.nan
        if math.isfinite(value):
            return max(0.0, value)
    raw = _header(headers, "retry-after")
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        try:
            parsed = email.utils.parsedate_tz(raw)
            if parsed is None:
                return None
            value = float(email.utils.mktime_tz(parsed)) - time.time()
        except (TypeError, ValueError, OverflowError):
            return None
    return max(0.0, value) if math.isfinite(value) else None


# Transport errors raised before a byte of the request left: nothing can have been billed.
_NOT_SENT = frozenset({"ConnectError", "ConnectTimeout", "PoolTimeout", "UnsupportedProtocol", "InvalidURL"})


def _chain(exc: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        out.append(cur)
        cur = cur.__cause__ or cur.__context__
    return out


def reached_provider(exc: BaseException) -> bool:
    """Whether a request that ended in ``exc`` may have been processed by the provider.

    An HTTP error status is the provider refusing the request (not billed). A cancellation, a
    timeout or a connection lost while waiting for the answer happen after the request was sent:
    the provider may well have read (and billed) the whole prompt. A failure to connect at all
    did not send anything. Anything else unknown counts as not sent.
    """
    chain = _chain(exc)
    if any(_status_code(e) is not None for e in chain):
        return False
    if any(type(e).__name__ in _NOT_SENT for e in chain):
        return False
    import asyncio

    if isinstance(exc, asyncio.CancelledError | KeyboardInterrupt):
        return True
    return classify(exc) in (TIMEOUT, CONNECTION)


__all__ = [
    "AUTH",
    "BAD_REQUEST",
    "CATEGORIES",
    "CONNECTION",
    "CONTEXT_OVERFLOW",
    "NOT_FOUND",
    "OTHER",
    "RATE_LIMIT",
    "RETRYABLE",
    "SERVER",
    "TIMEOUT",
    "classify",
    "is_retryable",
    "reached_provider",
    "retry_after_s",
]
