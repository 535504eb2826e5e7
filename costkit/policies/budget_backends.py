"""Where budget counters live: in this process, or in Redis for every process and host.

A counter is one limit for one bucket (tenant, feature ...) in one window (a UTC day ...),
in integer units: nano-dollars for USD (no float drift: $1 is 10**9), plain tokens for token
budgets. Each counter keeps ``spent`` (settled) and ``reserved`` (held for calls in flight).

The three operations are what makes a budget hold under concurrency (a check made before the
spend is recorded is what lets concurrent requests overrun a budget):

* ``reserve(holds)``: atomically, for *all* counters at once, check
  ``spent + reserved + amount <= limit`` and, only if every one passes, add each amount to
  ``reserved``. A reservation expires after ``ttl_s`` (a crashed process does not hold budget
  forever).
* ``settle(reservation, actual)``: drop the hold and add what the call really cost to ``spent``;
  returns each counter's spent before/after (threshold alerts are computed from them, once).
* ``release(reservation)``: drop the hold, spend nothing (the call failed or was not made).

:class:`InProcessBudgetBackend` guards a dict with one lock (threads and asyncio alike: no
operation waits on anything while holding it). :class:`RedisBudgetBackend` runs each operation
as one Lua script, so the same guarantee holds across processes; when Redis cannot be reached it
fails open or closed (``on_redis_error``, :mod:`costkit._redis`), after at most its socket timeouts, never hanging.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import math
import os
import threading
import time
import uuid
from collections.abc import Sequence
from typing import Any, Protocol

import attrs

from .._redis import FAIL_OPEN, RedisGuard, RedisUnavailable, check_name, connect
from ..errors import ConfigError

NANO_PER_USD = 10**9
WINDOWS = ("hour", "day", "week", "month", "total")


def usd_to_nano(usd: float, *, round_up: bool = False) -> int:
    """USD as integer nano-dollars; ``round_up`` for worst cases (a hold never under-covers)."""
    scaled = round(float(usd) * NANO_PER_USD, 3)
    return math.ceil(scaled) if round_up else math.floor(scaled + 0.5)


def nano_to_usd(nano: int) -> float:
    return nano / NANO_PER_USD


def window_of(window: str, now: float) -> tuple[str, float | None]:
    """The UTC window containing ``now``: its id and when it ends (None for ``total``).

    Every window starts on a UTC hour, so the answer is memoized per (window, hour).
    """
    hour = int(now // 3600)
    found = _window_memo.get((window, hour))
    if found is None:
        found = _window_of(window, hour * 3600.0)
        if len(_window_memo) > 256:
            _window_memo.clear()
        _window_memo[(window, hour)] = found
    return found


_window_memo: dict[tuple[str, int], tuple[str, float | None]] = {}


def _window_of(window: str, now: float) -> tuple[str, float | None]:
    t = dt.datetime.fromtimestamp(now, dt.timezone.utc)
    if window == "hour":
        start = t.replace(minute=0, second=0, microsecond=0)
        return start.strftime("%Y-%m-%dT%H"), (start + dt.timedelta(hours=1)).timestamp()
    if window == "day":
        start = t.replace(hour=0, minute=0, second=0, microsecond=0)
        return start.strftime("%Y-%m-%d"), (start + dt.timedelta(days=1)).timestamp()
    if window == "week":
        start = (t - dt.timedelta(days=t.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
        year, week, _ = start.isocalendar()
        return f"{year}-W{week:02d}", (start + dt.timedelta(days=7)).timestamp()
    if window == "month":
        start = t.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        nxt = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
        return start.strftime("%Y-%m"), nxt.timestamp()
    if window == "total":
        return "total", None
    raise ConfigError("window", f"must be one of {', '.join(WINDOWS)}, got {window!r}")


@attrs.frozen(kw_only=True, slots=True)
class Hold:
    """One counter a reservation touches: its key, its limit and the amount held (integer units)."""

    key: str
    limit: int
    amount: int
    expires_at: float | None = None  # when the window is over and its counter can be dropped


@attrs.frozen(kw_only=True, slots=True)
class Reservation:
    """What ``reserve`` returns. ``ok=False``: nothing was held; ``refused`` names the counter that refused.

    ``enforced=False`` means the backend was unavailable and failed open: the call goes ahead unchecked.
    """

    id: str
    holds: tuple[Hold, ...]
    ok: bool
    refused: Hold | None = None
    spent: int = 0  # of the refusing counter, at the time of the refusal
    reserved: int = 0
    enforced: bool = True
    error: str | None = None


@attrs.frozen(slots=True)
class CounterState:
    """A counter's state: ``spent`` (settled) and ``reserved`` (in flight), in integer units."""

    spent: int = 0
    reserved: int = 0


class BudgetBackend(Protocol):
    def reserve(self, holds: Sequence[Hold], ttl_s: float) -> Reservation: ...

    def settle(self, reservation: Reservation, actual: Sequence[int]) -> list[tuple[int, int]]: ...

    def release(self, reservation: Reservation) -> None: ...

    def usage(self, key: str) -> CounterState: ...

    async def areserve(self, holds: Sequence[Hold], ttl_s: float) -> Reservation: ...

    async def asettle(self, reservation: Reservation, actual: Sequence[int]) -> list[tuple[int, int]]: ...

    async def arelease(self, reservation: Reservation) -> None: ...


_ID_PREFIX = uuid.uuid4().hex[:12]
_id_counter = itertools.count(1)


def new_reservation_id() -> str:
    """Unique across processes and hosts (a random per-import prefix and the pid: a fork gets its own)."""
    return f"{_ID_PREFIX}-{os.getpid()}-{next(_id_counter)}"


class _Counter:
    __slots__ = ("expires_at", "holds", "reserved", "spent")

    def __init__(self, expires_at: float | None) -> None:
        self.spent = 0
        self.reserved = 0
        self.holds: dict[str, tuple[int, float]] = {}  # reservation id -> (amount, monotonic deadline)
        self.expires_at = expires_at

    def purge(self, now_mono: float) -> None:
        if not self.holds:
            return
        dead = [rid for rid, (_, deadline) in self.holds.items() if deadline <= now_mono]
        for rid in dead:
            self.reserved -= self.holds.pop(rid)[0]


class InProcessBudgetBackend:
    """Counters in a dict behind one lock: exact under threads and asyncio tasks of one process.

    The async methods run the same code directly (the lock is never held across a wait).
    Counters of windows that ended are dropped on the next operation after ``sweep_every_s``.
    """

    def __init__(self, *, clock: Any = time.time, monotonic: Any = time.monotonic, sweep_every_s: float = 60.0) -> None:
        self._counters: dict[str, _Counter] = {}
        self._lock = threading.Lock()
        self._clock = clock
        self._mono = monotonic
        self._sweep_every = sweep_every_s
        self._next_sweep = 0.0

    def __repr__(self) -> str:
        return f"InProcessBudgetBackend(counters={len(self._counters)})"

    def _counter(self, hold: Hold) -> _Counter:
        c = self._counters.get(hold.key)
        if c is None:
            c = self._counters[hold.key] = _Counter(hold.expires_at)
        return c

    def _sweep(self, now_mono: float) -> None:
        if now_mono < self._next_sweep:
            return
        self._next_sweep = now_mono + self._sweep_every
        now = self._clock()
        for key in [k for k, c in self._counters.items() if c.expires_at is not None and c.expires_at < now]:
            c = self._counters[key]
            c.purge(now_mono)
            if not c.holds:
                del self._counters[key]

    def reserve(self, holds: Sequence[Hold], ttl_s: float) -> Reservation:
        rid = new_reservation_id()
        now_mono = self._mono()
        with self._lock:
            self._sweep(now_mono)
            counters = [self._counter(h) for h in holds]
            for hold, c in zip(holds, counters, strict=True):
                c.purge(now_mono)
                if c.spent + c.reserved + hold.amount > hold.limit:
                    return Reservation(
                        id=rid, holds=tuple(holds), ok=False, refused=hold, spent=c.spent, reserved=c.reserved
                    )
            deadline = now_mono + ttl_s
            for hold, c in zip(holds, counters, strict=True):
                c.reserved += hold.amount
                c.holds[rid] = (hold.amount, deadline)
        return Reservation(id=rid, holds=tuple(holds), ok=True)

    def settle(self, reservation: Reservation, actual: Sequence[int]) -> list[tuple[int, int]]:
        out = []
        with self._lock:
            for hold, amount in zip(reservation.holds, actual, strict=True):
                c = self._counter(hold)
                held = c.holds.pop(reservation.id, None)
                if held is not None:
                    c.reserved -= held[0]
                before = c.spent
                c.spent += int(amount)
                out.append((before, c.spent))
        return out

    def release(self, reservation: Reservation) -> None:
        with self._lock:
            for hold in reservation.holds:
                c = self._counters.get(hold.key)
                if c is not None:
                    held = c.holds.pop(reservation.id, None)
                    if held is not None:
                        c.reserved -= held[0]

    def forget(self, keys: Sequence[str]) -> None:
        """Drop counters that will not be used again (a finished ``budgeted`` invocation's)."""
        with self._lock:
            for key in keys:
                self._counters.pop(key, None)

    def usage(self, key: str) -> CounterState:
        with self._lock:
            c = self._counters.get(key)
            if c is None:
                return CounterState()
            c.purge(self._mono())
            return CounterState(c.spent, c.reserved)

    async def areserve(self, holds: Sequence[Hold], ttl_s: float) -> Reservation:
        return self.reserve(holds, ttl_s)

    async def asettle(self, reservation: Reservation, actual: Sequence[int]) -> list[tuple[int, int]]:
        return self.settle(reservation, actual)

    async def arelease(self, reservation: Reservation) -> None:
        self.release(reservation)


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


def thresholds_crossed(before: int, after: int, limit: int, thresholds: Sequence[float]) -> list[float]:
    """The alert thresholds (fractions of ``limit``) that ``before -> after`` crossed."""
    if limit <= 0 or after <= before:
        return []
    return [t for t in thresholds if before < t * limit <= after]


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
    "thresholds_crossed",
    "usd_to_nano",
    "window_of",
]
