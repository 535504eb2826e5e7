"""What the resilience policies share: option checks and a sliding-window ring, in Python and in Lua.

* :class:`Ring` counts events in ``n`` buckets over a window. The same arithmetic runs in Python
  (in-process state) and in the Lua scripts (Redis state, :data:`LUA_RING_SCRIPT`), so both
  backends decide alike.
* :func:`state_in`: a policy's ``redis=``, ``name=`` and ``on_redis_error=`` checked, its client and guard.
* Redis itself (the client, backing off after a failure, ``on_redis_error="open"|"closed"``, the
  warning and the counters) is :mod:`costkit._redis`, shared with the budget backend.
"""

from __future__ import annotations

import math
from typing import Any

from .._redis import RedisGuard, check_fail_mode, check_name, connect
from ..errors import ConfigError

# ----------------------------------------------------------------------------- validation


def check_int(field: str, value: Any, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(field, f"must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ConfigError(field, f"must be >= {minimum}, got {value!r}")
    return value


def state_in(redis: Any, what: str, name: Any, on_redis_error: Any) -> tuple[str, Any, RedisGuard | None]:
    """Where a policy keeps its state: its checked ``name`` and, for a Redis URL or client, that
    client and the guard its operations run through (``None, None``: in this process)."""
    name = check_name("name", name)
    check_fail_mode("on_redis_error", on_redis_error)
    if redis is None:
        return name, None, None
    client = connect(redis, field="redis")
    return name, client, RedisGuard(f"{what} {name!r}", client=client, on_redis_error=on_redis_error)


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


# A ring script's prologue: KEYS[1] the ring's hash, ARGV[1] the operation, ARGV[2] now (s),
# ARGV[3] the bucket width (s), ARGV[4] the bucket count; the script's own arguments follow.
LUA_RING_SCRIPT = (
    LUA_RING
    + """
local key = KEYS[1]
local op = ARGV[1]
local now = tonumber(ARGV[2])
local width = tonumber(ARGV[3])
local n = tonumber(ARGV[4])
"""
)


__all__ = ["LUA_RING", "LUA_RING_SCRIPT", "Ring", "check_int", "state_in"]
