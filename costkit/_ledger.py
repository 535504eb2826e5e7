"""The ledger: integer money, UTC windows, and budget counters that hold under concurrency.

Shared by :class:`~costkit.Budget` (a policy) and ``@costkit.budgeted`` (the core's scope check),
so it lives in the core and imports nothing from ``costkit.policies``.

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
operation waits on anything while holding it). The Redis backend
(:class:`costkit.policies.budget_backends.RedisBudgetBackend`) runs each operation as one Lua script.
:class:`RequestSpend` reads what a request spent below a layer from its
:class:`~costkit._scope.RequestScope`.
"""

from __future__ import annotations

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

from ._call import SOURCE_PROVIDER, Call, Result
from .errors import ConfigError

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


def thresholds_crossed(before: int, after: int, limit: int, thresholds: Sequence[float]) -> list[float]:
    """The alert thresholds (fractions of ``limit``) that ``before -> after`` crossed."""
    if limit <= 0 or after <= before:
        return []
    return [t for t in thresholds if before < t * limit <= after]


class RequestSpend:
    """What a request spent below a layer, read from its :class:`~costkit._scope.RequestScope`.

    Records added to the scope while the layer waited are its attempts below (a provider attempt
    each; cache hits are not provider attempts). A streamed attempt is recorded when its stream
    ends, so a streamed answer is counted from its final result instead. Without a scope (a bare
    Pipeline) the answer's own ``cost_usd`` is used.
    """

    __slots__ = ("_mark", "_scope", "_stream")

    def __init__(self, call: Call) -> None:
        self._scope = call.scope
        self._mark = call.scope.mark() if call.scope is not None else 0
        self._stream = call.stream

    def failed(self) -> tuple[float, int]:
        """Spend of a request that raised: the attempts recorded before the error."""
        return self._scope.spent_since(self._mark) if self._scope is not None else (0.0, 0)

    def total(self, final: Result) -> tuple[float, int]:
        """(USD, tokens) the request spent, given its final (completed) result."""
        if self._scope is not None and not self._stream:
            return self._scope.spent_since(self._mark)
        usd, tokens = self.failed()
        if final.source == SOURCE_PROVIDER:
            usd += final.cost_usd or 0.0
            tokens += final.usage.total_tokens
        return usd, tokens


__all__ = [
    "NANO_PER_USD",
    "WINDOWS",
    "BudgetBackend",
    "CounterState",
    "Hold",
    "InProcessBudgetBackend",
    "RequestSpend",
    "Reservation",
    "nano_to_usd",
    "new_reservation_id",
    "thresholds_crossed",
    "usd_to_nano",
    "window_of",
]
