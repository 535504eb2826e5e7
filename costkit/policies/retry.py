"""RetryBudget: retries that cannot multiply the bill.

Three limits, checked in this order when an attempt fails:

1. **Retryable?** Only transient failures (rate limit, server error, timeout, connection; or the
   server's ``x-should-retry: true``) are retried, as told by the SDKs' own exception classes
   (:mod:`costkit.policies.classify`). A bad request is never sent twice.
2. **Attempts**: at most ``max_attempts`` provider attempts per call (the first one included).
3. **Fleet-wide ratio** (gRPC / Finagle retry budgets): over a sliding ``window_s`` window,
   ``retries <= budget_ratio x calls + min_retries_per_s x window_s``, counted over every call
   through this instance (share one instance between wrappers, or give it ``redis=`` to share
   it between processes and hosts). In an outage every call fails once and only the ratio is
   retried, so the provider sees at most ``(1 + budget_ratio)`` times the traffic, not
   ``max_attempts`` times. The small reserve keeps a quiet service able to retry at all.

The wait before a retry is the server's ``Retry-After`` / ``retry-after-ms`` when it sent one
(a wait longer than ``max_retry_after_s`` is not worth holding the caller: the error is raised),
otherwise exponential backoff with full jitter, ``uniform(0, min(backoff_max_s, backoff_base_s x
2**(retry-1)))`` (AWS architecture blog, "Exponential Backoff And Jitter").

Each attempt goes down the chain as its own call (``kind="retry"``, ``attempt`` + 1), so every
attempt gets its cost record. The SDKs retry internally too (openai and anthropic default to 2):
this policy's ``bind(env)`` asks ``costkit.wrap`` to turn them off (``client.with_options(max_retries=0)``)
so the wrapped calls are retried once, here, and every attempt is seen and priced.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import attrs

from .._call import Call
from .._env import Env
from .._pipeline import Flow, FlowPolicy, Sleep, blocking
from .._redis import FAIL_OPEN, RedisGuard, check_positive
from .._redis_batch import RedisWrite, write_now_or_later
from ..classify import is_retryable, retry_after_s
from ..errors import ConfigError, RetryBudgetExhausted, StateUnavailable
from ._redis_state import LUA_RING_SCRIPT, Ring, check_int, state_in

_EPS = 1e-9
_BUCKETS = 10
ON_EXHAUSTED = ("reraise", "raise")


class FullJitterBackoff:
    """``uniform(0, min(max_s, base_s * 2**(retry_number - 1)))`` seconds: spreads a thundering herd."""

    def __init__(self, base_s: float = 0.5, max_s: float = 20.0, rng: random.Random | None = None) -> None:
        self.base_s = check_positive("backoff_base_s", base_s, allow_zero=True)
        self.max_s = check_positive("backoff_max_s", max_s, allow_zero=True)
        self._rng = rng or random.Random()

    def cap(self, retry_number: int) -> float:
        return min(self.max_s, self.base_s * (2.0 ** max(0, retry_number - 1)))

    def __call__(self, retry_number: int) -> float:
        cap = self.cap(retry_number)
        return self._rng.uniform(0.0, cap) if cap > 0 else 0.0


@attrs.frozen(slots=True)
class RetryStats:
    """What this instance did since it was built (``window_*``: the shared sliding window now)."""

    calls: int
    retries: int
    refused: int  # retries the budget refused
    not_retryable: int  # failures raised at once (not transient)
    attempts_exhausted: int  # failures raised after max_attempts
    retry_after_too_long: int  # failures raised because the server asked for a wait > max_retry_after_s
    window_calls: int
    window_retries: int


# ----------------------------------------------------------------------------- budget state


class _MemoryBudget:
    """The sliding-window counters of one process, lock-protected."""

    def __init__(self, window_s: float, ratio: float, reserve: float, clock: Callable[[], float]) -> None:
        self._ring = Ring(window_s, _BUCKETS, ("calls", "retries"))
        self._ratio = ratio
        self._reserve = reserve
        self._clock = clock
        self._lock = threading.Lock()

    def record_call(self) -> None:
        with self._lock:
            self._ring.add(self._clock(), "calls")

    def try_retry(self) -> bool:
        with self._lock:
            now = self._clock()
            t = self._ring.totals(now)
            if t["retries"] + 1 <= self._ratio * t["calls"] + self._reserve + _EPS:
                self._ring.add(now, "retries")
                return True
            return False

    def window(self) -> tuple[int, int]:
        with self._lock:
            t = self._ring.totals(self._clock())
            return t["calls"], t["retries"]


_LUA_BUDGET = (
    LUA_RING_SCRIPT
    + """
local ratio = tonumber(ARGV[5])
local reserve = tonumber(ARGV[6])
local ttl_ms = tonumber(ARGV[7])
local fields = {'calls', 'retries'}
if op == 'call' then
  ring_add(key, now, width, n, fields, 'calls', 1)
  redis.call('PEXPIRE', key, ttl_ms)
  return 1
end
local calls = ring_total(key, now, width, n, 'calls')
local retries = ring_total(key, now, width, n, 'retries')
if op == 'retry' then
  if retries + 1 <= ratio * calls + reserve + 1e-9 then
    ring_add(key, now, width, n, fields, 'retries', 1)
    redis.call('PEXPIRE', key, ttl_ms)
    return 1
  end
  return 0
end
return {calls, retries}
"""
)


class _RedisBudget:
    """The same counters in one Redis hash, updated by one atomic script per operation."""

    def __init__(
        self,
        client: Any,
        guard: RedisGuard,
        name: str,
        window_s: float,
        ratio: float,
        reserve: float,
        clock: Callable[[], float],
        fallback: _MemoryBudget,
    ) -> None:
        self._guard = guard
        self._key = f"costkit:{{retry:{name}}}:window"
        self._script = client.register_script(_LUA_BUDGET)
        self._width = window_s / _BUCKETS
        self._ratio = ratio
        self._reserve = reserve
        self._ttl_ms = int(window_s * 2000) + 1000
        self._clock = clock
        self._fallback = fallback

    def _run(self, op: str) -> Any:
        args = [
            op,
            repr(self._clock()),
            repr(self._width),
            _BUCKETS,
            repr(self._ratio),
            repr(self._reserve),
            self._ttl_ms,
        ]
        return self._script(keys=[self._key], args=args)

    def record_call(self) -> None:
        # fail-closed refuses retries (below); the first attempt is not the budget's to stop
        with contextlib.suppress(StateUnavailable):
            self._guard.run(lambda: self._run("call"), self._fallback.record_call)

    def call_write(self) -> RedisWrite:
        """:meth:`record_call` as a write the request's other Redis writes go with (nothing waits for it)."""
        args = ("call", repr(self._clock()), repr(self._width), _BUCKETS, repr(self._ratio), repr(self._reserve))
        return RedisWrite(
            self._guard, self._script, (self._key,), (*args, self._ttl_ms), fallback=self._fallback.record_call
        )

    def try_retry(self) -> bool:
        try:
            return self._guard.run(lambda: int(self._run("retry")) == 1, self._fallback.try_retry)
        except StateUnavailable:
            return False

    def window(self) -> tuple[int, int]:
        def read() -> tuple[int, int]:
            calls, retries = self._run("read")
            return int(calls), int(retries)

        try:
            return self._guard.run(read, self._fallback.window)
        except StateUnavailable:
            return 0, 0


# ----------------------------------------------------------------------------- the policy


class RetryBudget(FlowPolicy):
    """Retry transient failures, within ``max_attempts`` per call and a fleet-wide ratio (module docstring).

    ``on_exhausted``: when the ratio refuses a retry, ``"reraise"`` (default) raises the
    provider's own exception unchanged (so ``except openai.RateLimitError`` keeps working);
    ``"raise"`` raises :class:`costkit.RetryBudgetExhausted` carrying it as ``last_error``.
    ``redis``: a ``redis://`` URL or a ``redis.Redis`` client to share the window between
    processes under ``name``; ``on_redis_error="open"`` falls back to this process's window when
    Redis fails, ``"closed"`` refuses retries while it is down.
    """

    owns_retries = True  # this policy retries: bind() turns the SDK's own retries off

    def bind(self, env: Env) -> None:
        """Retries happen here, each priced: the wrapper turns the SDK's own retries off."""
        env.turn_off_sdk_retries()

    def __init__(
        self,
        max_attempts: int = 3,
        budget_ratio: float = 0.1,
        *,
        window_s: float = 10.0,
        min_retries_per_s: float = 1.0,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 20.0,
        max_retry_after_s: float = 60.0,
        retry_on: Callable[[BaseException], bool] | None = None,
        on_exhausted: str = "reraise",
        redis: Any = None,
        name: str = "default",
        on_redis_error: str = FAIL_OPEN,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.max_attempts = check_int("max_attempts", max_attempts, minimum=1)
        self.budget_ratio = check_positive("budget_ratio", budget_ratio, allow_zero=True)
        self.window_s = check_positive("window_s", window_s)
        self.min_retries_per_s = check_positive("min_retries_per_s", min_retries_per_s, allow_zero=True)
        self.backoff = FullJitterBackoff(backoff_base_s, backoff_max_s, rng)
        self.max_retry_after_s = check_positive("max_retry_after_s", max_retry_after_s, allow_zero=True)
        if retry_on is not None and not callable(retry_on):
            raise ConfigError("retry_on", "must be a callable taking the exception and returning a bool")
        self.retry_on: Callable[[BaseException], bool] = retry_on or is_retryable
        if on_exhausted not in ON_EXHAUSTED:
            raise ConfigError("on_exhausted", f"must be one of {', '.join(ON_EXHAUSTED)}, got {on_exhausted!r}")
        self.on_exhausted = on_exhausted
        if not callable(clock):
            raise ConfigError("clock", "must be a callable returning seconds")
        reserve = self.min_retries_per_s * self.window_s
        self._memory = _MemoryBudget(self.window_s, self.budget_ratio, reserve, clock)
        self._budget: _MemoryBudget | _RedisBudget = self._memory
        self.name, client, self.redis_guard = state_in(redis, "retry budget", name, on_redis_error)
        if client is not None:
            assert self.redis_guard is not None
            self._budget = _RedisBudget(
                client, self.redis_guard, self.name, self.window_s, self.budget_ratio, reserve, clock, self._memory
            )
        self._blocking = redis is not None
        self._lock = threading.Lock()
        self._n = dict.fromkeys(
            ("calls", "retries", "refused", "not_retryable", "attempts_exhausted", "retry_after_too_long"), 0
        )

    # -- counters -------------------------------------------------------------------------
    def _count(self, name: str) -> None:
        with self._lock:
            self._n[name] += 1

    @property
    def stats(self) -> RetryStats:
        window_calls, window_retries = self._budget.window()
        with self._lock:
            return RetryStats(**self._n, window_calls=window_calls, window_retries=window_retries)

    # -- I/O-free decisions ---------------------------------------------------------------
    def delay_for(self, exc: BaseException, retry_number: int) -> float | None:
        """Seconds to wait before retry ``retry_number`` (1, 2, ...); None: the server's wait is too long."""
        after = retry_after_s(exc)
        if after is not None:
            return after if after <= self.max_retry_after_s else None
        return self.backoff(retry_number)

    def _record_call(self) -> None:
        self._count("calls")
        self._budget.record_call()

    def _try_retry(self) -> bool:
        ok = self._budget.try_retry()
        self._count("retries" if ok else "refused")
        return ok

    def flow(self, call: Call) -> Flow:
        if isinstance(self._budget, _RedisBudget):  # counted with the request's other Redis writes
            self._count("calls")
            yield from write_now_or_later(call.scope, self._budget.call_write())
        else:
            self._record_call()
        current = call
        attempts = 1
        while True:
            try:
                return (yield current)
            except Exception as exc:
                if not self.retry_on(exc):
                    self._count("not_retryable")
                    raise
                if attempts >= self.max_attempts:
                    self._count("attempts_exhausted")
                    raise
                delay = self.delay_for(exc, attempts)
                if delay is None:
                    self._count("retry_after_too_long")
                    raise
                if not (yield from blocking(self._try_retry, io=self._blocking)):
                    if self.on_exhausted == "raise":
                        raise RetryBudgetExhausted(
                            f"retry budget {self.name!r} refused a retry of {call.provider}/{current.model} "
                            f"(ratio {self.budget_ratio} over {self.window_s}s)",
                            last_error=exc,
                        ) from exc
                    raise
            if delay > 0:
                yield Sleep(delay)
            attempts += 1
            current = current.evolve(kind="retry", attempt=current.attempt + 1)

    def __repr__(self) -> str:
        where = "redis" if self.redis_guard is not None else "memory"
        return (
            f"RetryBudget(max_attempts={self.max_attempts}, budget_ratio={self.budget_ratio}, "
            f"window_s={self.window_s}, backend={where})"
        )


__all__ = ["FullJitterBackoff", "RetryBudget", "RetryStats"]
