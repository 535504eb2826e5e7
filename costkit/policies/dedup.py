"""Dedup: one provider call for identical concurrent calls, and the first answer for a client's retry.

A client that times out and retries makes the backend generate twice; a hundred workers asking
the same deterministic question at once pay a hundred times. ``Dedup`` gives every call an
**idempotency key** and lets one call per key reach the provider:

* **In flight**: the first call with a key leads; identical calls arriving while it runs wait for
  its result (threads block, asyncio tasks await, other processes poll Redis) instead of calling.
  A leader's provider error is shared with the calls waiting on it in the same process; a leader
  that vanished (cancelled, interrupted, a stream closed early or broken) hands over to one waiter.
* **Completed**: the answer is kept ``ttl_s`` seconds, so a retry with the same key after a
  timeout gets the first result instead of a second generation.

The answer a follower gets is the leader's final result with ``source="dedup"`` (a streamed
leader's assembled result: the wrapper replays it as the SDK's own chunks), and costkit records
it as a ``cache_hit`` whose ``dedup`` saving is what the leader paid.

**Which calls have a key** (:func:`dedup_key`):

* ``tags.idempotency_key`` set (``costkit.tags(idempotency_key=...)`` or ``costkit={...}`` per
  call): the key is that value *and* the exact-cache key of the request, so a key reused for a
  different request (or another tenant) never returns the wrong answer. Sampled calls too.
* otherwise, with ``derive="deterministic"`` (default), calls sent with ``temperature=0`` (and
  ``n`` unset or 1) are keyed by their exact-cache key
  (:func:`costkit.policies.cache.keys.exact_key`: requested model, messages, output-changing
  parameters, tenant, versions). An unset temperature means the provider's default (1.0):
  sampled, so those calls are *not* coalesced, since two samples are what the caller asked for.
  ``derive="never"``: only explicit keys; ``derive="always"``: every call.

**Across processes and hosts** (``redis=``): the leader holds a ``SET NX PX lease_s`` lock and
stores the answer as JSON (:mod:`costkit._serialize`, never pickle) for ``ttl_s``; waiters poll
every ``poll_s``. A leader that dies leaves a lock that expires after ``lease_s``. Within a
process, only one thread or task per key talks to Redis; the others wait on it.
``on_redis_error="open"`` (default) keeps in-process dedup while Redis is down (warned once,
counted); ``"closed"`` fails the call with :class:`~costkit.errors.StateUnavailable` (see :mod:`costkit._redis`).
A waiter never waits longer than ``wait_timeout_s``: then it makes its own call.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import hashlib
import threading
import time
import uuid
from collections.abc import Callable, Generator
from typing import Any

import attrs

from .._call import SOURCE_DEDUP, Call, Result
from .._pipeline import Ahead, Flow, FlowPolicy, Sleep, Wait
from .._redis import FAIL_OPEN, as_text, check_positive
from .._redis_batch import RedisCheck, RedisWrite, write_now_or_later
from .._serialize import SerializationError, result_from_json, result_to_json
from .._warn import warn_once
from ..errors import ConfigError
from ._redis_state import check_int, state_in

DERIVE_MODES = ("deterministic", "never", "always")

HIT = "hit"
FOLLOW = "follow"
LEAD = "lead"


class _Abandoned:
    """What a flight resolves to when its leader vanished: a waiter takes over."""

    def __repr__(self) -> str:
        return "ABANDONED"


ABANDONED = _Abandoned()


# ----------------------------------------------------------------------------- keys


def is_deterministic(call: Call) -> bool:
    """``temperature == 0`` sent explicitly, one choice: the caller asked for *the* answer, not a sample."""
    params = call.params
    temperature = params.get("temperature")
    if isinstance(temperature, bool) or not isinstance(temperature, int | float) or temperature != 0:
        return False
    n = params.get("n")
    return n is None or n == 1 or type(n).__name__ in ("NotGiven", "Omit")


def dedup_key(call: Call, *, derive: str = "deterministic", scope_user: bool = False) -> str | None:
    """The idempotency key of ``call``, or None when it must not be coalesced (module docstring)."""
    from .cache.keys import exact_key

    explicit = call.tags.idempotency_key
    if explicit is not None:
        request = exact_key(call, scope_user=scope_user)
        return "idem:" + hashlib.sha256(f"{explicit}\n{request}".encode()).hexdigest()
    if derive == "always" or (derive == "deterministic" and is_deterministic(call)):
        return "exact:" + exact_key(call, scope_user=scope_user)
    return None


# ----------------------------------------------------------------------------- in-process flights


def _resolve(future: concurrent.futures.Future[Any], value: Any = None, error: BaseException | None = None) -> None:
    with contextlib.suppress(concurrent.futures.InvalidStateError):
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)


class _LocalFlights:
    """In-flight calls and completed answers of this process (threads and asyncio tasks), behind one lock."""

    def __init__(self, ttl_s: float, max_entries: int, clock: Callable[[], float]) -> None:
        self._ttl_s = ttl_s
        self._max = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._inflight: dict[str, concurrent.futures.Future[Any]] = {}
        self._done: collections.OrderedDict[str, tuple[float, Result]] = collections.OrderedDict()

    def claim(self, key: str) -> tuple[str, Any]:
        with self._lock:
            entry = self._done.get(key)
            if entry is not None:
                if entry[0] > self._clock():
                    return HIT, entry[1]
                del self._done[key]
            flight = self._inflight.get(key)
            if flight is not None:
                return FOLLOW, flight
            flight = self._inflight[key] = concurrent.futures.Future()
            return LEAD, flight

    def _release(self, key: str, flight: concurrent.futures.Future[Any]) -> None:
        if self._inflight.get(key) is flight:
            del self._inflight[key]

    def complete(self, key: str, flight: concurrent.futures.Future[Any], result: Result) -> None:
        with self._lock:
            self._release(key, flight)
            if self._ttl_s > 0:
                self._done[key] = (self._clock() + self._ttl_s, result)
                self._done.move_to_end(key)
                while len(self._done) > self._max:
                    self._done.popitem(last=False)
        _resolve(flight, result)

    def fail(self, key: str, flight: concurrent.futures.Future[Any], error: BaseException) -> None:
        with self._lock:
            self._release(key, flight)
        _resolve(flight, error=error)

    def abandon(self, key: str, flight: concurrent.futures.Future[Any]) -> None:
        with self._lock:
            self._release(key, flight)
        _resolve(flight, ABANDONED)

    def sizes(self) -> tuple[int, int]:
        with self._lock:
            return len(self._inflight), len(self._done)


# ----------------------------------------------------------------------------- Redis

_LUA_CLAIM = """
local done = redis.call('GET', KEYS[1])
if done then return {'hit', done} end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return {'lead', ''} end
return {'wait', ''}
"""

_LUA_COMPLETE = """
if ARGV[2] ~= '' then redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) end
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
return 1
"""


@attrs.frozen(slots=True)
class DedupStats:
    """What this instance did since it was built."""

    leaders: int  # calls that went down the chain for their key
    coalesced: int  # calls answered by an in-flight leader in this process
    replayed: int  # calls answered by a completed answer within ttl_s (this process)
    shared: int  # calls answered from Redis (another process's leader)
    passthrough: int  # calls without a key
    takeovers: int  # waiters that became leader because the leader vanished
    wait_timeouts: int  # waiters that gave up after wait_timeout_s and called on their own
    store_failures: int  # answers that could not be stored (serialization or Redis)
    corrupt: int  # stored answers that could not be read back (dropped; the call went on as leader)


class Dedup(FlowPolicy):
    """Idempotency keys and in-flight coalescing (module docstring)."""

    def __init__(
        self,
        ttl_s: float = 300.0,
        *,
        derive: str = "deterministic",
        scope_user: bool = False,
        wait_timeout_s: float = 300.0,
        max_entries: int = 10_000,
        redis: Any = None,
        name: str = "default",
        lease_s: float = 300.0,
        poll_s: float = 0.02,
        on_redis_error: str = FAIL_OPEN,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_s = check_positive("ttl_s", ttl_s, allow_zero=True)
        if derive not in DERIVE_MODES:
            raise ConfigError("derive", f"must be one of {', '.join(DERIVE_MODES)}, got {derive!r}")
        self.derive = derive
        if not isinstance(scope_user, bool):
            raise ConfigError("scope_user", "must be a bool")
        self.scope_user = scope_user
        self.wait_timeout_s = check_positive("wait_timeout_s", wait_timeout_s)
        self.max_entries = check_int("max_entries", max_entries, minimum=1)
        self.lease_s = check_positive("lease_s", lease_s)
        self.poll_s = check_positive("poll_s", poll_s)
        if not callable(clock):
            raise ConfigError("clock", "must be a callable returning seconds")
        self._local = _LocalFlights(self.ttl_s, self.max_entries, clock)
        self.name, client, self.redis_guard = state_in(redis, "dedup", name, on_redis_error)
        if client is not None:
            self._redis = client
            self._claim_script = client.register_script(_LUA_CLAIM)
            self._complete_script = client.register_script(_LUA_COMPLETE)
        self._lock = threading.Lock()
        self._n = dict.fromkeys((a.name for a in attrs.fields(DedupStats)), 0)

    # -- counters ---------------------------------------------------------------------------
    def _count(self, name: str) -> None:
        with self._lock:
            self._n[name] += 1

    @property
    def stats(self) -> DedupStats:
        with self._lock:
            return DedupStats(**self._n)

    def key_for(self, call: Call) -> str | None:
        if call.scope is not None and (call.scope.raw_response or call.scope.beta):
            return None  # the caller wants this request's own HTTP response, or a beta's own answer type
        return dedup_key(call, derive=self.derive, scope_user=self.scope_user)

    # -- Redis steps (run through Io: inline when sync, in a worker thread from asyncio) -----
    def _keys(self, key: str) -> list[str]:
        base = f"costkit:{{dedup:{self.name}:{key}}}"
        return [base + ":done", base + ":lock"]

    def _claim_check(self, call: Call, key: str, token: str) -> RedisCheck:
        """The Redis claim, as a check the request's other checks go with: ``(hit, result)``,
        ``(lead, None)``, ``(wait, None)``, or ``(local, None)`` when Redis is down (fail-open)."""
        assert self.redis_guard is not None
        guard = self.redis_guard

        def read(answer: Any) -> tuple[str, Any]:
            verdict, payload = as_text(answer[0]), answer[1]
            if verdict != HIT:
                return verdict, None
            import json

            try:
                return HIT, result_from_json(json.loads(payload), source=SOURCE_DEDUP, call=call)
            except Exception as exc:  # stored data is untrusted: drop it, count it, answer from the provider
                self._count("corrupt")
                warn_once(f"dedup-read:{self.name}", f"costkit: a stored dedup answer could not be read ({exc!r})")
                guard.call(lambda: self._redis.delete(self._keys(key)[0]))
                return "local", None

        return RedisCheck(
            guard,
            self._claim_script,
            tuple(self._keys(key)),
            (token, int(self.lease_s * 1000)),
            go_if="r[1] == 'lead'",
            read=read,
            go=lambda claim: claim[0] == LEAD,
            on_error=lambda exc: guard.recover(exc, lambda: ("local", None)),
            undo=lambda claim: self._redis_finish(key, token, None) if claim[0] == LEAD else None,
        )

    def _finish_write(self, key: str, token: str, shared: Result | None) -> RedisWrite:
        """Store the answer (if any) and release the lock, as a write the request's other Redis writes
        go with (one round trip when the request ends)."""
        assert self.redis_guard is not None
        ttl_ms = max(1, int(self.ttl_s * 1000))
        return RedisWrite(
            self.redis_guard,
            self._complete_script,
            tuple(self._keys(key)),
            (token, self._payload(shared), ttl_ms),
            fallback=lambda: self._count("store_failures"),  # the call succeeded: its answer is not thrown away
        )

    def _payload(self, shared: Result | None) -> str:
        import json

        payload = ""
        if shared is not None:
            try:
                payload = json.dumps(result_to_json(shared), separators=(",", ":"))
            except (SerializationError, TypeError, ValueError) as exc:
                self._count("store_failures")
                warn_once(f"dedup-store:{type(exc).__name__}", f"costkit: a dedup answer could not be stored ({exc!r})")
        return payload

    def _redis_finish(self, key: str, token: str, shared: Result | None) -> None:
        """:meth:`_finish_write` sent at once (a stream's end, an abandoned flight); never fails the call."""
        self._finish_write(key, token, shared).run()

    def _finish_later(self, key: str, token: str, shared: Result | None) -> None:
        """From a stream's completion hook: off the event loop when there is one."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._redis_finish(key, token, shared)
        else:
            loop.run_in_executor(None, self._redis_finish, key, token, shared)

    # -- I/O-free decisions ---------------------------------------------------------------
    @staticmethod
    def shareable(final: Result) -> Result | None:
        """The answer followers get, or None when the leader's result must not be shared."""
        notes = final.notes
        if notes.get("stream_error") or notes.get("stream_incomplete") or notes.get("error") is not None:
            return None
        return final.evolve(stream=None, source=SOURCE_DEDUP)

    def _on_stream_final(
        self, key: str, flight: concurrent.futures.Future[Any], token: str | None
    ) -> Callable[[Result], None]:
        def on_final(final: Result) -> None:
            shared = self.shareable(final)
            if shared is None:
                self._local.abandon(key, flight)
            else:
                self._local.complete(key, flight, shared)
            if token is not None:
                self._finish_later(key, token, shared)

        return on_final

    # -- the flow ---------------------------------------------------------------------------
    def flow(self, call: Call) -> Flow:
        key = self.key_for(call)
        if key is None:
            self._count("passthrough")
            return (yield call)
        started = time.monotonic()
        while True:
            verdict, payload = self._local.claim(key)
            if verdict == HIT:
                self._count("replayed")
                return payload
            if verdict == LEAD:
                break
            remaining = self.wait_timeout_s - (time.monotonic() - started)
            try:
                outcome = yield Wait(payload, max(0.0, remaining))
            except TimeoutError:
                self._count("wait_timeouts")
                return (yield call)
            if outcome is ABANDONED:
                self._count("takeovers")
                continue
            self._count("coalesced")
            return outcome

        flight: concurrent.futures.Future[Any] = payload
        token: str | None = None
        candidate = uuid.uuid4().hex  # the Redis lock's value if this call wins it
        settled = False
        try:
            if self.redis_guard is not None:
                shared, token = yield from self._lead_in_redis(call, key, candidate, started)
                if shared is not None:
                    settled = True
                    self._count("shared")
                    self._local.complete(key, flight, shared)
                    return shared
            self._count("leaders")
            try:
                result = yield call
            except Exception as exc:
                settled = True
                self._local.fail(key, flight, exc)
                if token is not None:
                    yield from write_now_or_later(call.scope, self._finish_write(key, token, None))
                raise
            settled = True
            if result.stream is not None:
                result.when_complete(self._on_stream_final(key, flight, token))
                return result
            shared = self.shareable(result)
            if shared is None:
                self._local.abandon(key, flight)
            else:
                self._local.complete(key, flight, shared)
            if token is not None:
                yield from write_now_or_later(call.scope, self._finish_write(key, token, shared))
            return result
        finally:
            if not settled:  # cancelled or interrupted before an outcome: a waiter takes over
                self._local.abandon(key, flight)
                if self.redis_guard is not None:  # a no-op unless the lock holds our value
                    with contextlib.suppress(Exception):
                        self._redis_finish(key, candidate, None)

    def _lead_in_redis(
        self, call: Call, key: str, token: str, started: float
    ) -> Generator[Ahead | RedisCheck | Sleep, Any, tuple[Result | None, str | None]]:
        """Sub-flow of the process-local leader: ``(answer, None)`` from another process, ``(None, token)``
        when it holds the lock, ``(None, None)`` when it calls without one (Redis down, fail-open; or waited out)."""
        check = self._claim_check(call, key, token)
        verdict, payload = yield Ahead(check, call)  # with the request's other checks, in one round trip
        while True:
            if verdict == HIT:
                return payload, None
            if verdict == LEAD:
                return None, token
            if verdict == "local":
                return None, None
            if time.monotonic() - started >= self.wait_timeout_s:
                self._count("wait_timeouts")
                return None, None
            yield Sleep(self.poll_s)
            verdict, payload = yield check  # polling: alone

    def __repr__(self) -> str:
        where = "redis" if self.redis_guard is not None else "memory"
        return f"Dedup(ttl_s={self.ttl_s}, derive={self.derive!r}, backend={where})"


__all__ = ["ABANDONED", "DERIVE_MODES", "Dedup", "DedupStats", "dedup_key", "is_deterministic"]
