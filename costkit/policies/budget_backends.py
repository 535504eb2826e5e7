"""Budget counters in Redis, for every process and host: :class:`RedisBudgetBackend`.

The counter model and the in-process backend are the core's (:mod:`costkit._ledger`, re-exported
here); this backend runs each of the same three operations as one atomic Lua script, so the
guarantee holds across processes. When Redis cannot be reached it fails open or closed
(``on_redis_error``, :mod:`costkit._redis`), after at most its socket timeouts, never hanging.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Sequence
from typing import Any

from .._ledger import (
    NANO_PER_USD,
    WINDOWS,
    BudgetBackend,
    CounterState,
    Hold,
    InProcessBudgetBackend,
    Reservation,
    nano_to_usd,
    new_reservation_id,
    thresholds_crossed,
    usd_to_nano,
    window_of,
)
from .._redis import FAIL_OPEN, RedisGuard, RedisUnavailable, check_name, connect
from ..errors import ConfigError

# --------------------------------------------------------------------------------------- Redis
# Each counter key K is a hash {spent, reserved}; K..":h" a zset of reservation ids scored by
# their deadline (ms, Redis' own clock) and K..":a" a hash id -> amount. Expired holds are
# purged before every check, so a crashed holder's reservation lapses after its TTL.

_PURGE = """
-- amounts stay strings end to end: Lua would print a large number as 1e+14, which HINCRBY rejects
local function unhold(k, amt)
  if amt and amt ~= '0' then redis.call('HINCRBY', k, 'reserved', '-' .. amt) end
end
local function drop_hold(k, rid)
  local amt = redis.call('HGET', k .. ':a', rid)
  if amt then
    redis.call('HDEL', k .. ':a', rid)
    redis.call('ZREM', k .. ':h', rid)
    unhold(k, amt)
  end
end
local function purge(k, now)
  local dead = redis.call('ZRANGEBYSCORE', k .. ':h', '-inf', now)
  for _, rid in ipairs(dead) do
    unhold(k, redis.call('HGET', k .. ':a', rid))
    redis.call('HDEL', k .. ':a', rid)
  end
  if #dead > 0 then redis.call('ZREMRANGEBYSCORE', k .. ':h', '-inf', now) end
end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function expire(k, at)
  if at > 0 then
    redis.call('EXPIREAT', k, at); redis.call('EXPIREAT', k .. ':h', at); redis.call('EXPIREAT', k .. ':a', at)
  end
end
"""

# KEYS: counters. ARGV: rid, ttl_ms, then per key: limit, amount, expire_at (s, 0 = never).
_RESERVE = (
    _PURGE
    + """
local rid, ttl = ARGV[1], tonumber(ARGV[2])
local now = now_ms()
for i, k in ipairs(KEYS) do
  purge(k, now)
  local limit, amount = tonumber(ARGV[3 * i]), tonumber(ARGV[3 * i + 1])
  local spent = tonumber(redis.call('HGET', k, 'spent') or '0')
  local reserved = tonumber(redis.call('HGET', k, 'reserved') or '0')
  if spent + reserved + amount > limit then
    return {0, i, spent, reserved}
  end
end
for i, k in ipairs(KEYS) do
  local amount = ARGV[3 * i + 1]
  redis.call('HINCRBY', k, 'reserved', amount)
  redis.call('ZADD', k .. ':h', now + ttl, rid)
  redis.call('HSET', k .. ':a', rid, amount)
  expire(k, tonumber(ARGV[3 * i + 2]))
end
return {1, 0, 0, 0}
"""
)

# KEYS: counters. ARGV: rid, then per key: actual, expire_at. Returns spent before/after per key.
_SETTLE = (
    _PURGE
    + """
local rid = ARGV[1]
local out = {}
for i, k in ipairs(KEYS) do
  drop_hold(k, rid)
  local before = tonumber(redis.call('HGET', k, 'spent') or '0')
  local after = redis.call('HINCRBY', k, 'spent', ARGV[2 * i])
  expire(k, tonumber(ARGV[2 * i + 1]))
  out[#out + 1] = before
  out[#out + 1] = after
end
return out
"""
)

# KEYS: counters. ARGV: rid.
_RELEASE = (
    _PURGE
    + """
local rid = ARGV[1]
for _, k in ipairs(KEYS) do
  drop_hold(k, rid)
end
return 1
"""
)

# KEYS: one counter. Returns spent, reserved (after purging expired holds).
_USAGE = (
    _PURGE
    + """
purge(KEYS[1], now_ms())
return {tonumber(redis.call('HGET', KEYS[1], 'spent') or '0'), tonumber(redis.call('HGET', KEYS[1], 'reserved') or '0')}
"""
)


class RedisBudgetBackend:
    """Counters in Redis, every operation one atomic Lua script: the guarantee holds across processes and hosts.

    ``url`` (or a ready ``client``, a ``redis.Redis``). Keys are ``{prefix}:...`` with the prefix
    in a hash tag, so a reservation's counters share one cluster slot. Redis is reached through
    :mod:`costkit._redis`: socket timeouts bounded by ``timeout_s`` and no client-side retries;
    when Redis fails, ``on_redis_error="open"`` lets calls through unchecked (counted in
    :attr:`unenforced`, warned once) and ``"closed"`` refuses them (``BudgetExceeded`` with
    ``details["reason"] == "backend_unavailable"``). After a failure Redis is not tried again for
    ``retry_after_s``, so an outage costs one timeout, not one per call. Settlements that could
    not be written are counted in :attr:`dropped`.
    The async methods run the same client in a worker thread (bounded by the same timeouts).
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        client: Any = None,
        prefix: str = "costkit:budget",
        on_redis_error: str = FAIL_OPEN,
        timeout_s: float = 0.25,
        retry_after_s: float = 1.0,
    ) -> None:
        if (url is None) == (client is None):
            raise ConfigError("url", "give a Redis url or a client (exactly one)")
        self.prefix = check_name("prefix", prefix)
        self.redis_guard = RedisGuard(
            f"budget {prefix!r}",
            on_redis_error=on_redis_error,
            retry_after_s=retry_after_s,
            when_open="letting calls through unchecked",
            when_closed="refusing calls",
        )
        self.client = connect(
            url if client is None else client, field="url" if client is None else "client", timeout_s=timeout_s
        )
        self.on_redis_error = on_redis_error
        self.retry_after_s = self.redis_guard.retry_after_s
        self.unenforced = 0
        self.dropped = 0
        self._lock = threading.Lock()
        self._scripts = {
            name: self.client.register_script(src)
            for name, src in (("reserve", _RESERVE), ("settle", _SETTLE), ("release", _RELEASE), ("usage", _USAGE))
        }

    def __repr__(self) -> str:
        return f"RedisBudgetBackend(prefix={self.prefix!r}, on_redis_error={self.on_redis_error!r})"

    def key(self, counter: str) -> str:
        return f"{{{self.prefix}}}:{counter}"

    def _script(self, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Run one script through the guard: :class:`RedisUnavailable` (either mode) when Redis is not there."""
        script = self._scripts[name]
        return self.redis_guard.call(lambda: script(keys=list(keys), args=list(args)))

    def _count(self, name: str) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + 1)

    def _unavailable(self, holds: Sequence[Hold], rid: str, error: str) -> Reservation:
        open_ = self.on_redis_error == FAIL_OPEN
        if open_:
            self._count("unenforced")
        return Reservation(id=rid, holds=tuple(holds), ok=open_, enforced=False, error=error)

    @staticmethod
    def _expire_at(hold: Hold) -> int:
        # keep a window's counter a day past its end (late settlements land in it), never for total
        return 0 if hold.expires_at is None else int(hold.expires_at) + 86400

    # -- operations
    def reserve(self, holds: Sequence[Hold], ttl_s: float) -> Reservation:
        rid = new_reservation_id()
        args: list[Any] = [rid, max(1, int(ttl_s * 1000))]
        for h in holds:
            args += [h.limit, h.amount, self._expire_at(h)]
        try:
            ok, index, spent, reserved = self._script("reserve", [self.key(h.key) for h in holds], args)
        except RedisUnavailable as exc:
            return self._unavailable(holds, rid, exc.reason)
        if ok:
            return Reservation(id=rid, holds=tuple(holds), ok=True)
        return Reservation(
            id=rid,
            holds=tuple(holds),
            ok=False,
            refused=holds[int(index) - 1],
            spent=int(spent),
            reserved=int(reserved),
        )

    def settle(self, reservation: Reservation, actual: Sequence[int]) -> list[tuple[int, int]]:
        args: list[Any] = [reservation.id]
        for h, amount in zip(reservation.holds, actual, strict=True):
            args += [int(amount), self._expire_at(h)]
        try:
            flat = self._script("settle", [self.key(h.key) for h in reservation.holds], args)
        except RedisUnavailable:
            self._count("dropped")
            return [(0, 0) for _ in reservation.holds]
        return [(int(flat[i]), int(flat[i + 1])) for i in range(0, len(flat), 2)]

    def release(self, reservation: Reservation) -> None:
        if not reservation.enforced:
            return  # nothing was held
        with contextlib.suppress(RedisUnavailable):  # the hold lapses by its TTL
            self._script("release", [self.key(h.key) for h in reservation.holds], [reservation.id])

    def usage(self, key: str) -> CounterState:
        spent, reserved = self._scripts["usage"](keys=[self.key(key)], args=[])
        return CounterState(int(spent), int(reserved))

    async def areserve(self, holds: Sequence[Hold], ttl_s: float) -> Reservation:
        return await asyncio.to_thread(self.reserve, holds, ttl_s)

    async def asettle(self, reservation: Reservation, actual: Sequence[int]) -> list[tuple[int, int]]:
        return await asyncio.to_thread(self.settle, reservation, actual)

    async def arelease(self, reservation: Reservation) -> None:
        await asyncio.to_thread(self.release, reservation)

    def close(self) -> None:
        self.client.close()


__all__ = [
    "NANO_PER_USD",
    "WINDOWS",
    "BudgetBackend",
    "CounterState",
    "Hold",
    "InProcessBudgetBackend",
    "RedisBudgetBackend",
    "Reservation",
    "nano_to_usd",
    "new_reservation_id",
    "thresholds_crossed",
    "usd_to_nano",
    "window_of",
]
