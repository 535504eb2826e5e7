"""costkit's own exceptions.

Provider exceptions (``openai.RateLimitError``, ``anthropic.APIStatusError``, ...) pass through
a wrapped client unchanged, so existing ``except`` clauses keep working. Everything costkit
raises itself derives from :class:`CostkitError`::

    CostkitError
    ├── ConfigError            a policy, sink or price was configured wrongly (raised at construction)
    ├── BudgetExceeded         a USD or token budget would be or was exceeded
    ├── GuardrailViolation     a request breaks a guardrail whose on_over is "reject"
    ├── CircuitOpen            the circuit for (provider, model) is open; the call failed fast
    ├── RetryBudgetExhausted   the fleet-wide retry budget refused another attempt (carries the last error)
    └── StateUnavailable       shared state is unreachable and the policy fails closed
        └── RedisUnavailable   ... that state is in Redis (``reason`` says what failed)

What degrades instead of failing (a sink dropping records, a cache store unreachable, an unknown
price) is said once per cause as a :class:`CostkitWarning` (a ``UserWarning``), and logged on the
``costkit`` logger.
"""

from __future__ import annotations

from typing import Any


class CostkitError(Exception):
    """Base class of every exception costkit raises itself."""


class ConfigError(CostkitError, ValueError):
    """A misconfiguration, raised when the object is built; ``field`` names what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


class BudgetExceeded(CostkitError):
    """A budget would be exceeded by this call (or was, by what was already spent)."""

    def __init__(
        self,
        message: str,
        *,
        scope: str = "",
        spent_usd: float = 0.0,
        limit_usd: float = 0.0,
        requested_usd: float = 0.0,
        details: dict[str, Any] | None = None,
    ) -> None:
        self.scope = scope
        self.spent_usd = spent_usd
        self.limit_usd = limit_usd
        self.requested_usd = requested_usd
        self.details = dict(details or {})
        super().__init__(
            f"{message} (scope={scope or '-'}, spent=${spent_usd:.6f}, "
            f"limit=${limit_usd:.6f}, this call up to ${requested_usd:.6f})"
        )


class GuardrailViolation(CostkitError):
    """A request breaks a guardrail configured to reject rather than clamp."""

    def __init__(self, rule: str, message: str, *, limit: float | None = None, actual: float | None = None) -> None:
        self.rule = rule
        self.limit = limit
        self.actual = actual
        super().__init__(f"{rule}: {message}")


class CircuitOpen(CostkitError):
    """The circuit for (provider, model) is open: the call failed fast without reaching the provider."""

    def __init__(self, provider: str, model: str, retry_after_s: float) -> None:
        self.provider = provider
        self.model = model
        self.retry_after_s = retry_after_s
        super().__init__(f"circuit open for {provider}/{model}; next probe in {retry_after_s:.2f}s")


class RetryBudgetExhausted(CostkitError):
    """The fleet-wide retry budget refused a retry; ``last_error`` is the provider's exception."""

    def __init__(self, message: str, last_error: BaseException | None = None) -> None:
        self.last_error = last_error
        super().__init__(message)


class StateUnavailable(CostkitError):
    """Shared state (Redis) is unreachable and the policy was built to fail closed."""


class RedisUnavailable(StateUnavailable):
    """Redis failed, or is being left alone after a recent failure; ``reason`` says which."""

    def __init__(self, what: str, reason: str) -> None:
        self.what = what
        self.reason = reason
        super().__init__(f"Redis for {what} is unavailable ({reason})")


class CostkitWarning(UserWarning):
    """A layer degraded (sink dropped records, cache store unreachable, unknown price ...)."""


__all__ = [
    "BudgetExceeded",
    "CircuitOpen",
    "ConfigError",
    "CostkitError",
    "CostkitWarning",
    "GuardrailViolation",
    "RedisUnavailable",
    "RetryBudgetExhausted",
    "StateUnavailable",
]
