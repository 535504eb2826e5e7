"""What the resilience policies share: a sliding-window ring, a flow driver with state steps, Redis access.

* :class:`Ring` counts events in ``n`` buckets over a window. The same arithmetic runs in Python
  (in-process state) and in the Lua scripts (Redis state), so both backends decide alike.
* :class:`StateFlowPolicy` drives a flow like :class:`~costkit._pipeline.FlowPolicy`; the flow may
  also ``yield Do(fn)``: run a state operation (a lock-protected update, or a Redis script),
  inline in the sync driver and in a worker thread from the async driver, so a Redis round trip
  never blocks an event loop; and ``yield Wait(future, timeout_s)``: wait for another thread's
  or task's result (blocking in the sync driver, awaited in the async one).
* :class:`RedisState` wraps one Redis client for one policy: short socket timeouts (never a hang),
  atomic Lua scripts, and the failure mode. ``on_redis_error="open"`` (default): when Redis fails
  the policy falls back to this process's in-memory state (its guarantees then hold per process),
  warns once and counts the fallbacks; after a failure Redis is left alone for ``retry_s`` so a
  dead server costs one timeout, not one per call. ``"closed"``: the call fails with
  :class:`StateUnavailable` before reaching the provider.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from .._warn import warn_once
from ..errors import ConfigError, StateUnavailable

T = TypeVar("T")

FAIL_OPEN = "open"
FAIL_CLOSED = "closed"
FAIL_MODES = (FAIL_OPEN, FAIL_CLOSED)



# ----------------------------------------------------------------------------- validation


def check_positive(field: str, value: Any, *, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(field, f"must be a number, got {type(value).__name__}")
    if value != value or value in (float("inf"), float("-inf")):
        raise ConfigError(field, f"must be finite, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise ConfigError(field, f"must be {'>= 0' if allow_zero else '> 0'}, got {value!r}")
    return float(value)


def check_int(field: str, value: Any, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(field, f"must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ConfigError(field, f"must be >= {minimum}, got {value!r}")
    return value


def check_fail_mode(field: str, value: Any) -> str:
    if value not in FAIL_MODES:
        raise ConfigError(field, f"must be 'open' or 'closed', got {value!r}")
    return str(value)


def check_name(field: str, value: Any) -> str:
    if not isinstance(value, str) or not value or any(c in value for c in "{}"):
        raise ConfigError(field, f"must be a non-empty str without braces, got {value!r}")
    return value


# ----------------------------------------------------------------------------- sliding window


class Ring:
    """Counters in ``buckets`` slots of ``window_s / buckets`` seconds each: a sliding window.

    Slot ``i`` holds the bucket id it counts for (``floor(now / width)``); a slot whose id is
    older than the window is stale and is reset before reuse. Not thread-safe: callers lock.
    """

    def __init__(self, window_s: float, buckets: int, fields: tuple[str, ...]) -> None:
        self.width = window_s / buckets
        self.n = buckets
        self.fields = fields
        self._ids = [-1] * buckets
        self._counts = [dict.fromkeys(fields, 0) for _ in range(buckets)]

    def _bucket(self, now: float) -> int:
        return math.floor(now / self.width)

    def add(self, now: float, field: str, amount: int = 1) -> None:
        bucket = self._bucket(now)
        slot = bucket % self.n
        if self._ids[slot] != bucket:
            self._ids[slot] = bucket
            self._counts[slot] = dict.fromkeys(self.fields, 0)
        self._counts[slot][field] += amount

    def totals(self, now: float) -> dict[str, int]:
        bucket = self._bucket(now)
        out = dict.fromkeys(self.fields, 0)
        for slot in range(self.n):
            if bucket - self.n < self._ids[slot] <= bucket:
                for f in self.fields:
                    out[f] += self._counts[slot][f]
        return out

    def clear(self) -> None:
        self._ids = [-1] * self.n


# Lua twin of Ring, prepended to the scripts that need it. The ring lives in one hash:
# fields "id<i>" and "<field>_<i>" for slot i.
LUA_RING = """
local function ring_add(key, now, width, n, fields, field, amount)
  local bucket = math.floor(now / width)
  local slot = bucket % n
  local id = tonumber(redis.call('HGET', key, 'id' .. slot) or '-1')
  if id ~= bucket then
    for _, f in ipairs(fields) do redis.call('HDEL', key, f .. '_' .. slot) end
    redis.call('HSET', key, 'id' .. slot, bucket)
  end
  redis.call('HINCRBY', key, field .. '_' .. slot, amount)
end
local function ring_total(key, now, width, n, field)
  local bucket = math.floor(now / width)
  local total = 0
  for slot = 0, n - 1 do
    local id = tonumber(redis.call('HGET', key, 'id' .. slot) or '-1')
    if id > bucket - n and id <= bucket then
      total = total + tonumber(redis.call('HGET', key, field .. '_' .. slot) or '0')
    end
  end
  return total
end
local function ring_clear(key, n)
  for slot = 0, n - 1 do redis.call('HDEL', key, 'id' .. slot) end
end
"""


# ----------------------------------------------------------------------------- flow driver


# ----------------------------------------------------------------------------- Redis


def _redis_errors() -> tuple[type[BaseException], ...]:
    import redis

    return (redis.RedisError, OSError)


class RedisState:
    """One policy's Redis: a client with short timeouts, its scripts, and what to do when it fails."""

    def __init__(
        self,
        redis_arg: Any,
        *,
        field: str,
        on_error: str,
        timeout_s: float = 0.5,
        retry_s: float = 1.0,
        what: str = "state",
    ) -> None:
        self.field = field
        self.on_error = on_error
        self.retry_s = retry_s
        self.what = what
        if isinstance(redis_arg, str):
            try:
                import redis
            except ImportError:  # pragma: no cover - redis is a test dependency here
                raise ConfigError(field, "the redis package is not installed: pip install 'costkit[redis]'") from None
            if not redis_arg.startswith(("redis://", "rediss://", "unix://")):
                raise ConfigError(field, f"expected a redis:// URL or a redis.Redis client, got {redis_arg!r}")
            self.client: Any = redis.Redis.from_url(
                redis_arg, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, health_check_interval=30
            )
        elif callable(getattr(redis_arg, "register_script", None)) and not asyncio.iscoroutinefunction(
            getattr(redis_arg, "get", None)
        ):
            self.client = redis_arg
        else:
            raise ConfigError(field, f"expected a redis:// URL or a (sync) redis.Redis client, got {redis_arg!r}")
        self._down_until = 0.0
        self._lock = threading.Lock()
        self.failures = 0  # operations that failed against Redis
        self.fallbacks = 0  # operations answered by the in-process fallback instead

    def script(self, lua: str) -> Any:
        return self.client.register_script(lua)

    def available(self) -> bool:
        return time.monotonic() >= self._down_until

    def run(self, op: Callable[[], T], fallback: Callable[[], T]) -> T:
        """``op()`` against Redis; on failure (or while Redis is marked down) the fail mode decides."""
        if self.available():
            try:
                return op()
            except _redis_errors() as exc:
                with self._lock:
                    self.failures += 1
                    self._down_until = time.monotonic() + self.retry_s
                warn_once(
                    f"redis:{self.what}:{type(exc).__name__}",
                    f"costkit: Redis for {self.what} failed ({exc!r}); "
                    + (
                        "falling back to in-process state (on_redis_error='open')"
                        if self.on_error == FAIL_OPEN
                        else "failing calls (on_redis_error='closed')"
                    ),
                )
                return self._degrade(fallback, exc)
        return self._degrade(fallback, None)

    def _degrade(self, fallback: Callable[[], T], exc: BaseException | None) -> T:
        if self.on_error == FAIL_CLOSED:
            raise StateUnavailable(f"Redis for {self.what} is unavailable and on_redis_error='closed'") from exc
        with self._lock:
            self.fallbacks += 1
        return fallback()


__all__ = [
    "FAIL_CLOSED",
    "FAIL_MODES",
    "FAIL_OPEN",
    "LUA_RING",
    "RedisState",
    "Ring",
    "check_fail_mode",
    "check_int",
    "check_name",
    "check_positive",
]
