"""Budget counters in Redis, for every process and host: :class:`RedisBudgetBackend`.

The counter model and the in-process backend are the core's (:mod:`costkit._ledger`); this backend
runs each of the same three operations as one atomic Lua script, so the guarantee holds across
processes. When Redis cannot be reached it fails open or closed
(``on_redis_error``, :mod:`costkit._redis`), after at most its socket timeouts, never hanging.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from .._ledger import (
    CounterState,
    Hold,
    Reservation,
    new_reservation_id,
)
from .._redis import FAIL_OPEN, RedisGuard, RedisUnavailable, as_text, check_name, connect
from .._redis_batch import RedisCheck, RedisWrite
from .._warn import warn_once
from ..errors import ConfigError

EPOCH_KEY = "epoch"  # {prefix}:epoch, next to the counters (same cluster slot)
COUNTERS_LOST = "counters_lost"

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

# KEYS: the epoch key, then the counters. ARGV: rid, ttl_ms, the epoch this process knows ('' if
# none yet), a fresh epoch to create, then per counter: limit, amount, expire_at (s, 0 = never).
# The epoch key is written with the first counter and never expires: if it is gone (or another
# one replaced it) while this process knew one, the counters were lost (a Redis restarted
# without persistence, a FLUSHALL) and nothing is reserved: {-1, 0, 0, 0, epoch}.
_RESERVE = (
    _PURGE
    + """
local rid, ttl, known, fresh = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
local epoch = redis.call('GET', KEYS[1])
if (not epoch and known ~= '') or (epoch and known ~= '' and epoch ~= known) then
  return {-1, 0, 0, 0, epoch or ''}
end
if not epoch then
  epoch = fresh
  redis.call('SET', KEYS[1], epoch)
end
local now = now_ms()
for i = 2, #KEYS do
  local k, a = KEYS[i], 5 + 3 * (i - 2)
  purge(k, now)
  local limit, amount = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  local spent = tonumber(redis.call('HGET', k, 'spent') or '0')
  local reserved = tonumber(redis.call('HGET', k, 'reserved') or '0')
  if spent + reserved + amount > limit then
    return {0, i - 1, spent, reserved, epoch}
  end
end
for i = 2, #KEYS do
  local k, a = KEYS[i], 5 + 3 * (i - 2)
  local amount = ARGV[a + 1]
  redis.call('HINCRBY', k, 'reserved', amount)
  redis.call('ZADD', k .. ':h', now + ttl, rid)
  redis.call('HSET', k .. ':a', rid, amount)
  expire(k, tonumber(ARGV[a + 2]))
end
return {1, 0, 0, 0, epoch}
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
    The async methods run the same client in a worker thread (bounded by the same timeouts); a
    reservation whose awaiting task is cancelled is released as soon as its thread finishes.

    Spend lives in Redis, so Redis must keep it: run it with AOF persistence (``appendonly yes``);
    the backend warns once when ``INFO persistence`` says nothing is persisted. Counters lost anyway
    (a restart without persistence, a FLUSHALL) are detected by an epoch key written with the first
    counter: a process that knew the epoch finds it gone or replaced. Then ``on_redis_error="closed"``
    refuses every call (``BudgetExceeded`` with ``details["reason"] == "counters_lost"``) until
    :meth:`acknowledge_reset`; ``"open"`` warns once, counts it in :attr:`resets` and goes on with
    the counters Redis has now.
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
        self.client = connect(
            url if client is None else client, field="url" if client is None else "client", timeout_s=timeout_s
        )
        self.redis_guard = RedisGuard(
            f"budget {prefix!r}",
            client=self.client,
            on_redis_error=on_redis_error,
            retry_after_s=retry_after_s,
            when_open="letting calls through unchecked",
            when_closed="refusing calls",
        )
        self.on_redis_error = on_redis_error
        self.retry_after_s = self.redis_guard.retry_after_s
        self.unenforced = 0
        self.dropped = 0
        self.resets = 0  # times this process found the counters lost (epoch gone or replaced)
        self._epoch = ""  # the counters' epoch as this process knows it ("" until the first reserve)
        self._lost = False  # counters lost and, failing closed, not yet acknowledged
        self._checked_persistence = False
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

    # -- the counters' survival
    def _check_persistence(self) -> None:
        """Warn once if this Redis would lose the spend on a restart (no AOF, no snapshots)."""
        if self._checked_persistence:
            return
        self._checked_persistence = True
        try:
            info = self.redis_guard.call(lambda: self.client.info("persistence"))
            config = self.redis_guard.call(lambda: self.client.config_get("save"))
        except Exception:  # INFO / CONFIG may be refused (managed Redis): nothing to say
            return
        save = str(config.get("save", config.get(b"save", "")) or "").strip()
        if not int(info.get("aof_enabled", 0)) and not save:
            warn_once(
                f"budget-persistence:{self.prefix}",
                f"costkit: the Redis holding budget {self.prefix!r} persists nothing (appendonly no, no save "
                "points): a restart loses every counter and the budget starts again from $0. Run it with "
                "'appendonly yes' (check: redis-cli CONFIG GET appendonly).",
            )

    def _counters_lost(self, holds: Sequence[Hold], ttl_s: float, rid: str, epoch: str) -> Reservation:
        """The epoch this process knew is gone: act as ``on_redis_error`` says."""
        with self._lock:
            self.resets += 1
            if self.on_redis_error == FAIL_OPEN:
                self._epoch = epoch  # go on with the counters as they are now (empty, or another epoch's)
            else:
                self._lost = True
        warn_once(
            f"budget-counters-lost:{self.prefix}",
            f"costkit: the budget counters of {self.prefix!r} were lost (Redis restarted without persistence "
            f"or was flushed); spend recorded before is gone. "
            + (
                "Calls go on against empty counters (on_redis_error='open')."
                if self.on_redis_error == FAIL_OPEN
                else "Calls are refused until RedisBudgetBackend.acknowledge_reset() (on_redis_error='closed')."
            ),
        )
        if self.on_redis_error == FAIL_OPEN:
            return self._reserve(holds, ttl_s, rid, retrying=True)
        return Reservation(id=rid, holds=tuple(holds), ok=False, enforced=False, error=COUNTERS_LOST)

    def acknowledge_reset(self) -> None:
        """Accept that the counters were lost and start again from the ones Redis has now (fail-closed mode)."""
        with self._lock:
            self._lost = False
            self._epoch = ""

    # -- operations
    def reserve(self, holds: Sequence[Hold], ttl_s: float) -> Reservation:
        return self._reserve(holds, ttl_s, new_reservation_id(), retrying=False)

    def _reserve(self, holds: Sequence[Hold], ttl_s: float, rid: str, *, retrying: bool) -> Reservation:
        if self._lost:
            return Reservation(id=rid, holds=tuple(holds), ok=False, enforced=False, error=COUNTERS_LOST)
        return self._reserve_check(holds, ttl_s, rid, retrying=retrying).run()

    def reserve_check(self, holds: Sequence[Hold], ttl_s: float) -> RedisCheck | None:
        """:meth:`reserve` as a check the request's other checks go with (one round trip before the
        call); None when there is nothing to ask Redis (the counters were lost, failing closed)."""
        if self._lost:
            return None
        return self._reserve_check(holds, ttl_s, new_reservation_id(), retrying=False)

    def _reserve_check(self, holds: Sequence[Hold], ttl_s: float, rid: str, *, retrying: bool) -> RedisCheck:
        args: list[Any] = [rid, max(1, int(ttl_s * 1000)), self._epoch, uuid.uuid4().hex]
        for h in holds:
            args += [h.limit, h.amount, self._expire_at(h)]

        def read(answer: Any) -> Reservation:
            self._check_persistence()
            ok, index, spent, reserved, epoch = answer
            epoch = as_text(epoch)
            if int(ok) == -1:
                if retrying:  # another process replaced the epoch again meanwhile: do not loop
                    return self._unavailable(holds, rid, COUNTERS_LOST)
                return self._counters_lost(holds, ttl_s, rid, epoch)
            if not self._epoch:
                self._epoch = epoch
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

        return RedisCheck(
            self.redis_guard,
            self._scripts["reserve"],
            (self.key(EPOCH_KEY), *(self.key(h.key) for h in holds)),
            tuple(args),
            go_if="r[1] == 1",
            read=read,
            go=lambda res: bool(res.ok),
            on_error=lambda exc: self._unavailable(holds, rid, exc.reason),
            undo=lambda res: self.release(res) if res.ok else None,
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

    def settle_write(
        self, reservation: Reservation, actual: Sequence[int], then: Callable[[list[tuple[int, int]]], None]
    ) -> RedisWrite:
        """:meth:`settle` as a write the request's other Redis writes can go with (one pipeline)."""
        args: list[Any] = [reservation.id]
        for h, amount in zip(reservation.holds, actual, strict=True):
            args += [int(amount), self._expire_at(h)]

        def done(flat: Any) -> None:
            then([(int(flat[i]), int(flat[i + 1])) for i in range(0, len(flat), 2)])

        return RedisWrite(
            self.redis_guard,
            self._scripts["settle"],
            tuple(self.key(h.key) for h in reservation.holds),
            tuple(args),
            then=done,
            fallback=lambda: self._count("dropped"),
        )

    def release(self, reservation: Reservation) -> None:
        if not reservation.enforced:
            return  # nothing was held
        with contextlib.suppress(RedisUnavailable):  # the hold lapses by its TTL
            self._script("release", [self.key(h.key) for h in reservation.holds], [reservation.id])

    def usage(self, key: str) -> CounterState:
        spent, reserved = self._scripts["usage"](keys=[self.key(key)], args=[])
        return CounterState(int(spent), int(reserved))

    async def areserve(self, holds: Sequence[Hold], ttl_s: float) -> Reservation:
        """:meth:`reserve` in a worker thread. If the awaiting task is cancelled meanwhile, the
        reservation the thread makes anyway is released when it finishes (never held to its TTL)."""
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(None, self.reserve, holds, ttl_s)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            future.add_done_callback(self._release_orphan)
            raise

    def _release_orphan(self, future: asyncio.Future[Reservation]) -> None:
        if future.cancelled() or future.exception() is not None:
            return
        reservation = future.result()
        if reservation.ok and reservation.enforced:  # off the event loop: release is a blocking call
            threading.Thread(target=self.release, args=(reservation,), name="costkit-release", daemon=True).start()

    async def asettle(self, reservation: Reservation, actual: Sequence[int]) -> list[tuple[int, int]]:
        return await asyncio.to_thread(self.settle, reservation, actual)

    async def arelease(self, reservation: Reservation) -> None:
        await asyncio.to_thread(self.release, reservation)

    def close(self) -> None:
        self.client.close()


__all__ = ["COUNTERS_LOST", "EPOCH_KEY", "RedisBudgetBackend"]
