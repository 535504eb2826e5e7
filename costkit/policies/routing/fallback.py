"""When a failed attempt should move to the next eligible model instead of failing the call.

A transient provider error (rate limit, server, timeout, connection) that got past the retry
layer, an open circuit, and a prompt that overflowed the model's context window are all things
another model may not suffer from. A bad request, an auth error or costkit's own budget refusal
are the caller's to see: a different model would fail the same way or must not be tried.
"""

from __future__ import annotations

from ...errors import CircuitOpen, RetryBudgetExhausted

FALLBACK_KINDS = frozenset({"rate_limit", "server", "timeout", "connection", "context_overflow"})


def fallback_reason(exc: BaseException) -> str | None:
    """The kind of failure that justifies trying another model, or None to re-raise."""
    if isinstance(exc, CircuitOpen):
        return "circuit_open"
    if isinstance(exc, RetryBudgetExhausted):
        # The fleet refused more retries *of this model*; another model is another capacity pool.
        return fallback_reason(exc.last_error) if exc.last_error is not None else None
    from ...classify import classify

    try:
        kind = classify(exc)
    except Exception:  # an exception we cannot read is not a reason to call another model
        return None
    return kind if kind in FALLBACK_KINDS else None


__all__ = ["FALLBACK_KINDS", "fallback_reason"]
