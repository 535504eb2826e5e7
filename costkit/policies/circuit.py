"""CircuitBreaker: stop paying for calls to a (provider, model) that is down.

One circuit per (provider, model actually called). **Closed**: calls go through; the circuit
counts consecutive failures and the failure rate over a sliding ``window_s``. It **opens** when
``failure_threshold`` consecutive calls failed, or when at least ``min_calls`` calls in the window
failed at ``failure_rate`` or more. **Open**: calls fail fast with :class:`costkit.CircuitOpen`
(no provider call, no cost) for ``open_s`` seconds; a router placed outside the breaker can catch
it and fall back to another model. Then **half-open**: up to ``half_open_probes`` calls per
``open_s`` go through as probes; a probe that succeeds closes the circuit, one that fails opens it
again. A probe whose caller vanished frees its slot after ``open_s``.

What counts as a failure is a category from :mod:`costkit.policies.classify` (default: server
errors, timeouts, connection errors, rate limits). Any other exception means the provider
answered (a bad request is the caller's fault), so it counts as a success. A stream counts as a
success once it has started.

State lives in this process (threads and asyncio tasks share it) or, with ``redis=``, in one Redis
hash per circuit updated by an atomic Lua script, so every process and host sees the same
circuit. ``on_redis_error="open"`` falls back to this process's circuits while Redis is down;
``"closed"`` fails calls with :class:`~costkit.errors.StateUnavailable` (see :mod:`costkit._redis`).

Place it inside the retry budget (``[..., RetryBudget(), CircuitBreaker()]``) so that every
attempt is counted and an open circuit is not retried.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator, Iterable
from typing import Any

import attrs

from .._call import Call
from .._pipeline import Ahead, Flow, FlowPolicy, Io
from .._redis import FAIL_OPEN, RedisGuard, as_text, check_positive
from .._redis_batch import RedisCheck, RedisWrite, write_now_or_later
from ..classify import CATEGORIES, CONNECTION, RATE_LIMIT, SERVER, TIMEOUT, classify
from ..errors import CircuitOpen, ConfigError
from ._redis_state import LUA_RING_SCRIPT, Ring, check_int, state_in

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half_open"

ADMIT = "admit"
PROBE = "probe"
REJECT = "reject"

DEFAULT_FAILURES = (SERVER, TIMEOUT, CONNECTION, RATE_LIMIT)
_BUCKETS = 10


@attrs.frozen(slots=True)
class Settings:
    """The numbers one circuit decides with (shared by both backends)."""

    failure_threshold: int | None
    failure_rate: float | None
    min_calls: int
    window_s: float
    open_s: float
    half_open_probes: int


@attrs.frozen(slots=True)
class CircuitStats:
    """What this instance saw since it was built."""

    admitted: int  # calls let through while closed
    probes: int  # calls let through as half-open probes
    rejected: int  # calls failed fast with CircuitOpen
    failures: int  # attempts that counted as failures
    opened: int  # times this instance's reports opened a circuit


# ----------------------------------------------------------------------------- in-process state


class _Circuit:
    __slots__ = ("consecutive", "lease_until", "opened_at", "probes", "ring", "state")

    def __init__(self, s: Settings) -> None:
        self.state = CLOSED
        self.opened_at = 0.0
        self.consecutive = 0
        self.probes = 0
        self.lease_until = 0.0
        self.ring = Ring(s.window_s, _BUCKETS, ("total", "failures"))


class _MemoryCircuits:
    """Every (provider, model) circuit of this process, behind one lock; the same logic as the Lua script."""

    def __init__(self, s: Settings, clock: Callable[[], float]) -> None:
        self.s = s
        self._clock = clock
        self._lock = threading.Lock()
        self._circuits: dict[tuple[str, str], _Circuit] = {}

    def _get(self, key: tuple[str, str]) -> _Circuit:
        c = self._circuits.get(key)
        if c is None:
            c = self._circuits[key] = _Circuit(self.s)
        return c

    def _open(self, c: _Circuit, now: float) -> None:
        c.state, c.opened_at, c.consecutive, c.probes = OPEN, now, 0, 0
        c.ring.clear()

    def _close(self, c: _Circuit) -> None:
        c.state, c.consecutive, c.probes = CLOSED, 0, 0
        c.ring.clear()

    def before(self, key: tuple[str, str]) -> tuple[str, float]:
        s = self.s
        with self._lock:
            now = self._clock()
            c = self._get(key)
            if c.state == OPEN:
                if now < c.opened_at + s.open_s:
                    return REJECT, c.opened_at + s.open_s - now
                c.state, c.probes, c.lease_until = HALF_OPEN, 0, now + s.open_s
            if c.state == HALF_OPEN:
                if now >= c.lease_until:
                    c.probes, c.lease_until = 0, now + s.open_s
                if c.probes < s.half_open_probes:
                    c.probes += 1
                    return PROBE, 0.0
                return REJECT, c.lease_until - now
            return ADMIT, 0.0

    def after(self, key: tuple[str, str], failed: bool, probe: bool) -> bool:
        """Report an outcome; returns whether this report opened the circuit."""
        s = self.s
        with self._lock:
            now = self._clock()
            c = self._get(key)
            if probe:
                if c.state == HALF_OPEN:
                    if failed:
                        self._open(c, now)
                        return True
                    self._close(c)
                return False
            c.ring.add(now, "total")
            if not failed:
                c.consecutive = 0
                return False
            c.ring.add(now, "failures")
            c.consecutive += 1
            if c.state != CLOSED:
                return False
            t = c.ring.totals(now)
            by_count = s.failure_threshold is not None and c.consecutive >= s.failure_threshold
            by_rate = (
                s.failure_rate is not None
                and t["total"] >= s.min_calls
                and t["failures"] / t["total"] >= s.failure_rate
            )
            if by_count or by_rate:
                self._open(c, now)
                return True
            return False

    def state(self, key: tuple[str, str]) -> str:
        with self._lock:
            c = self._circuits.get(key)
            if c is None:
                return CLOSED
            if c.state == OPEN and self._clock() >= c.opened_at + self.s.open_s:
                return HALF_OPEN
            return c.state


# ----------------------------------------------------------------------------- Redis state

_LUA_CIRCUIT = (
    LUA_RING_SCRIPT
    + """
local threshold = tonumber(ARGV[5])
local rate = tonumber(ARGV[6])
local min_calls = tonumber(ARGV[7])
local open_s = tonumber(ARGV[8])
local max_probes = tonumber(ARGV[9])
local failed = ARGV[10] == '1'
local probe = ARGV[11] == '1'
local ttl_ms = tonumber(ARGV[12])
local state = redis.call('HGET', key, 'state') or 'closed'

local function set_open()
  redis.call('HSET', key, 'state', 'open', 'opened_at', tostring(now), 'consec', 0, 'probes', 0)
  ring_clear(key, n)
end
local function set_closed()
  redis.call('HSET', key, 'state', 'closed', 'consec', 0, 'probes', 0)
  ring_clear(key, n)
end

if op == 'read' then
  if state == 'open' and now >= tonumber(redis.call('HGET', key, 'opened_at')) + open_s then
    return 'half_open'
  end
  return state
end

redis.call('PEXPIRE', key, ttl_ms)
if op == 'before' then
  if state == 'open' then
    local opened_at = tonumber(redis.call('HGET', key, 'opened_at'))
    if now < opened_at + open_s then
      return {'reject', tostring(opened_at + open_s - now)}
    end
    state = 'half_open'
    redis.call('HSET', key, 'state', 'half_open', 'probes', 0, 'lease_until', tostring(now + open_s))
  end
  if state == 'half_open' then
    local lease = tonumber(redis.call('HGET', key, 'lease_until') or '0')
    local probes = tonumber(redis.call('HGET', key, 'probes') or '0')
    if now >= lease then
      probes = 0
      lease = now + open_s
      redis.call('HSET', key, 'probes', 0, 'lease_until', tostring(lease))
    end
    if probes < max_probes then
      redis.call('HSET', key, 'probes', probes + 1)
      return {'probe', '0'}
    end
    return {'reject', tostring(lease - now)}
  end
  return {'admit', '0'}
end

-- op == 'after'
if probe then
  if state == 'half_open' then
    if failed then
      set_open()
      return 1
    end
    set_closed()
  end
  return 0
end
local fields = {'total', 'failures'}
ring_add(key, now, width, n, fields, 'total', 1)
if not failed then
  redis.call('HSET', key, 'consec', 0)
  return 0
end
ring_add(key, now, width, n, fields, 'failures', 1)
local consec = redis.call('HINCRBY', key, 'consec', 1)
if state ~= 'closed' then
  return 0
end
local total = ring_total(key, now, width, n, 'total')
local failures = ring_total(key, now, width, n, 'failures')
if (threshold > 0 and consec >= threshold) or (rate > 0 and total >= min_calls and failures / total >= rate) then
  set_open()
  return 1
end
return 0
"""
)


class _RedisCircuits:
    """The same circuits in Redis, one hash per (provider, model), one atomic script per step."""

    def __init__(
        self,
        client: Any,
        guard: RedisGuard,
        name: str,
        s: Settings,
        clock: Callable[[], float],
        fallback: _MemoryCircuits,
    ) -> None:
        self._guard = guard
        self._name = name
        self._script = client.register_script(_LUA_CIRCUIT)
        self._clock = clock
        self._fallback = fallback
        self._static = [
            repr(s.window_s / _BUCKETS),
            _BUCKETS,
            s.failure_threshold or 0,
            repr(s.failure_rate or 0.0),
            s.min_calls,
            repr(s.open_s),
            s.half_open_probes,
        ]
        self._ttl_ms = int(max(s.window_s, s.open_s) * 2000) + 1000

    def key(self, key: tuple[str, str]) -> str:
        return f"costkit:{{circuit:{self._name}:{key[0]}/{key[1]}}}"

    def _run(self, op: str, key: tuple[str, str], failed: bool = False, probe: bool = False) -> Any:
        args = [op, repr(self._clock()), *self._static, int(failed), int(probe), self._ttl_ms]
        return self._script(keys=[self.key(key)], args=args)

    def before_check(self, key: tuple[str, str]) -> RedisCheck:
        """The admission as a check the request's other checks go with (one round trip before the call)."""
        return RedisCheck(
            self._guard,
            self._script,
            (self.key(key),),
            ("before", repr(self._clock()), *self._static, 0, 0, self._ttl_ms),
            go_if="r[1] ~= 'reject'",
            read=lambda answer: (as_text(answer[0]), float(answer[1])),
            go=lambda verdict: verdict[0] != REJECT,
            on_error=lambda exc: self._guard.recover(exc, lambda: self._fallback.before(key)),
        )

    def before(self, key: tuple[str, str]) -> tuple[str, float]:
        return self.before_check(key).run()

    def after(self, key: tuple[str, str], failed: bool, probe: bool) -> bool:
        return self._guard.run(
            lambda: int(self._run("after", key, failed, probe)) == 1, lambda: self._fallback.after(key, failed, probe)
        )

    def after_write(self, key: tuple[str, str], failed: bool, probe: bool, opened: Callable[[], None]) -> RedisWrite:
        """:meth:`after` as a write the request's other Redis writes go with (one round trip at its end)."""
        args = ("after", repr(self._clock()), *self._static, int(failed), int(probe), self._ttl_ms)

        def fallback() -> None:
            if self._guard.on_redis_error == FAIL_OPEN and self._fallback.after(key, failed, probe):
                opened()

        return RedisWrite(
            self._guard,
            self._script,
            (self.key(key),),
            args,
            then=lambda answer: opened() if int(answer) == 1 else None,
            fallback=fallback,
        )

    def state(self, key: tuple[str, str]) -> str:
        return self._guard.run(lambda: as_text(self._run("read", key)), lambda: self._fallback.state(key))


# ----------------------------------------------------------------------------- the policy


class CircuitBreaker(FlowPolicy):
    """Fail fast on a (provider, model) that keeps failing; probe it again after ``open_s`` (module docstring).

    ``failure_threshold`` consecutive failures, or ``failure_rate`` of at least ``min_calls`` calls
    in ``window_s``, open the circuit (either may be ``None`` to disable it). ``failures`` lists
    the :mod:`~costkit.policies.classify` categories that count.
    """

    def __init__(
        self,
        failure_threshold: int | None = 5,
        failure_rate: float | None = 0.5,
        *,
        min_calls: int = 20,
        window_s: float = 60.0,
        open_s: float = 30.0,
        half_open_probes: int = 1,
        failures: Iterable[str] = DEFAULT_FAILURES,
        redis: Any = None,
        name: str = "default",
        on_redis_error: str = FAIL_OPEN,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if failure_threshold is not None:
            check_int("failure_threshold", failure_threshold, minimum=1)
        if failure_rate is not None:
            rate = check_positive("failure_rate", failure_rate)
            if rate > 1:
                raise ConfigError("failure_rate", f"must be in (0, 1], got {failure_rate!r}")
        if failure_threshold is None and failure_rate is None:
            raise ConfigError("failure_threshold", "set failure_threshold or failure_rate (both are None)")
        if isinstance(failures, str):
            raise ConfigError("failures", "must be a list of categories, not a str")
        self.failures = frozenset(failures)
        unknown = sorted(self.failures - set(CATEGORIES))
        if unknown or not self.failures:
            raise ConfigError(
                "failures", f"unknown category {unknown[0]!r}" if unknown else "must name at least one category"
            )
        self.settings = Settings(
            failure_threshold=failure_threshold,
            failure_rate=None if failure_rate is None else float(failure_rate),
            min_calls=check_int("min_calls", min_calls, minimum=1),
            window_s=check_positive("window_s", window_s),
            open_s=check_positive("open_s", open_s),
            half_open_probes=check_int("half_open_probes", half_open_probes, minimum=1),
        )
        if not callable(clock):
            raise ConfigError("clock", "must be a callable returning seconds")
        self._memory = _MemoryCircuits(self.settings, clock)
        self._circuits: _MemoryCircuits | _RedisCircuits = self._memory
        self.name, client, self.redis_guard = state_in(redis, "circuit", name, on_redis_error)
        self.joins_checks = client is not None  # in process, the admission is kept at once: after the checks above
        if client is not None:
            assert self.redis_guard is not None
            self._circuits = _RedisCircuits(client, self.redis_guard, self.name, self.settings, clock, self._memory)
        self._lock = threading.Lock()
        self._n = dict.fromkeys(("admitted", "probes", "rejected", "failures", "opened"), 0)

    def _count(self, name: str) -> None:
        with self._lock:
            self._n[name] += 1

    @property
    def stats(self) -> CircuitStats:
        with self._lock:
            return CircuitStats(**self._n)

    def state(self, provider: str, model: str) -> str:
        """``closed``, ``open`` or ``half_open`` (open past ``open_s``: the next call is a probe)."""
        return self._circuits.state((provider, model))

    def is_failure(self, exc: BaseException) -> bool:
        return classify(exc) in self.failures

    def _admitted(self, verdict: str) -> None:
        self._count({ADMIT: "admitted", PROBE: "probes"}.get(verdict, "rejected"))

    def _after(self, key: tuple[str, str], failed: bool, probe: bool) -> None:
        if failed:
            self._count("failures")
        if self._circuits.after(key, failed, probe):
            self._count("opened")

    def flow(self, call: Call) -> Flow:
        key = (call.provider, call.model)
        if isinstance(self._circuits, _RedisCircuits):  # with the request's other checks, in one round trip
            verdict, wait = yield Ahead(self._circuits.before_check(key), call)
        else:
            verdict, wait = self._circuits.before(key)
        self._admitted(verdict)
        if verdict == REJECT:
            raise CircuitOpen(call.provider, call.model, max(0.0, wait))
        probe = verdict == PROBE
        try:
            result = yield call
        except Exception as exc:
            yield from self._record_outcome(call, key, self.is_failure(exc), probe)
            raise
        yield from self._record_outcome(call, key, False, probe)
        return result

    def _record_outcome(self, call: Call, key: tuple[str, str], failed: bool, probe: bool) -> Generator[Io, Any, None]:
        """The attempt's outcome: in process at once; in Redis with the request's other writes."""
        if not isinstance(self._circuits, _RedisCircuits):
            self._after(key, failed, probe)
            return
        if failed:
            self._count("failures")
        yield from write_now_or_later(
            call.scope, self._circuits.after_write(key, failed, probe, lambda: self._count("opened"))
        )

    def __repr__(self) -> str:
        s = self.settings
        where = "redis" if self.redis_guard is not None else "memory"
        return (
            f"CircuitBreaker(failure_threshold={s.failure_threshold}, failure_rate={s.failure_rate}, "
            f"open_s={s.open_s}, backend={where})"
        )


__all__ = ["CLOSED", "DEFAULT_FAILURES", "HALF_OPEN", "OPEN", "CircuitBreaker", "CircuitStats", "Settings"]
