"""Redis as costkit uses it: a client that never hangs, and one way to survive its failures.

Every Redis-backed policy, backend or store needs the same two things, written once here:

* :func:`connect` turns a ``redis://`` URL (or a ready ``redis.Redis``) into a client whose socket
  timeouts are bounded and which never retries on its own: one bounded try, then the caller's
  failure mode decides (redis-py's default is several retries with backoff, i.e. an outage
  would cost many timeouts per call). :func:`connect_async` builds the ``redis.asyncio`` twin.
* One health state per Redis server (:func:`health_of`), shared by every policy, backend and
  store that talks to it: after a failure the server is left alone for ``retry_after_s``, by all
  of them, so a dead (or blackholed) Redis costs the whole process one timeout per back-off
  period, not one per policy per call. URL clients are shared too (:func:`connect` keeps one per
  URL and timeout), so the policies of one process share one connection pool.
* :class:`RedisGuard` runs one component's operations against that client. Each failure is
  counted and warned about once per cause; and ``on_redis_error`` says what a call gets while
  Redis is unavailable: ``"open"`` (default) the caller's fallback (in-process state, a miss, an
  unchecked call), counted in :attr:`RedisGuard.fallbacks`; ``"closed"`` :class:`RedisUnavailable`
  (a :class:`~costkit.errors.StateUnavailable`) before anything reaches the provider.

:meth:`RedisGuard.call` / :meth:`RedisGuard.acall` are the primitive (raise
:class:`RedisUnavailable` whatever the mode, for callers whose degraded answer depends on it);
:meth:`RedisGuard.run` / :meth:`RedisGuard.arun` add the fail-open/closed decision.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from ._warn import warn_once
from .errors import ConfigError, RedisUnavailable

T = TypeVar("T")

FAIL_OPEN = "open"
FAIL_CLOSED = "closed"
FAIL_MODES = (FAIL_OPEN, FAIL_CLOSED)
URL_SCHEMES = ("redis://", "rediss://", "unix://")
MARKED_DOWN = "redis marked down"


# ----------------------------------------------------------------------------- option checks


def check_positive(field: str, value: Any, *, allow_zero: bool = False) -> float:
    """A finite number ``> 0`` (``>= 0`` with ``allow_zero``), as float; else :class:`ConfigError`."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(field, f"must be a number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise ConfigError(field, f"must be finite, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise ConfigError(field, f"must be {'>= 0' if allow_zero else '> 0'}, got {value!r}")
    return float(value)


def check_fail_mode(field: str, value: Any) -> str:
    if value not in FAIL_MODES:
        raise ConfigError(field, f"must be 'open' or 'closed', got {value!r}")
    return str(value)


def check_name(field: str, value: Any) -> str:
    """A key part: non-empty, and no braces (they would break the ``{...}`` cluster hash tag)."""
    if not isinstance(value, str) or not value or any(c in value for c in "{}"):
        raise ConfigError(field, f"must be a non-empty str without braces, got {value!r}")
    return value


# ----------------------------------------------------------------------------- clients


def redis_errors() -> tuple[type[BaseException], ...]:
    """What an unreachable, slow or refusing Redis raises (imported lazily: redis is optional)."""
    import redis

    return (redis.RedisError, OSError)


def _import_redis(field: str) -> Any:
    try:
        import redis
    except ImportError:  # pragma: no cover - redis is installed wherever the tests run
        raise ConfigError(field, "the redis package is not installed: pip install 'costkit[redis]'") from None
    return redis


def _check_url(field: str, url: Any) -> str:
    if not isinstance(url, str) or not url.startswith(URL_SCHEMES):
        raise ConfigError(field, f"expected a redis:// URL or a redis.Redis client, got {url!r}")
    return url


def _client_options(timeout_s: float) -> dict[str, Any]:
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return {
        "socket_timeout": timeout_s,
        "socket_connect_timeout": timeout_s,
        "retry": Retry(NoBackoff(), 0),
        "retry_on_timeout": False,
        "health_check_interval": 30,
        # no CLIENT SETINFO on connect: against a server that does not answer, each of those is one
        # more socket timeout before the first real command (redis-py swallows their errors)
        **_no_setinfo(),
    }


def _no_setinfo() -> dict[str, Any]:
    import inspect

    from redis.connection import AbstractConnection

    if "driver_info" in inspect.signature(AbstractConnection.__init__).parameters:  # redis-py >= 7.1
        return {"driver_info": None}
    return {"lib_name": None, "lib_version": None}


def _is_async(client: Any) -> bool:
    if asyncio.iscoroutinefunction(getattr(client, "get", None)):
        return True
    try:
        import redis.asyncio
    except ImportError:  # pragma: no cover
        return False
    return isinstance(client, redis.asyncio.Redis | redis.asyncio.RedisCluster)


_CLIENTS: dict[tuple[str, float], Any] = {}
_CLIENTS_LOCK = threading.Lock()


def connect(target: Any, *, field: str = "redis", timeout_s: float = 0.5) -> Any:
    """A sync client: a URL becomes ``redis.Redis`` with bounded timeouts and no retries (one per URL
    and timeout, shared by everything in the process); a client is kept.

    A given client is used as it is (its timeouts are the caller's choice); an asyncio client is
    refused, because the operations here are blocking calls (run in worker threads from async code).
    """
    timeout_s = check_positive("timeout_s", timeout_s)
    if isinstance(target, str):
        redis = _import_redis(field)
        url = _check_url(field, target)
        with _CLIENTS_LOCK:
            client = _CLIENTS.get((url, timeout_s))
            if client is None:
                client = _CLIENTS[(url, timeout_s)] = redis.Redis.from_url(url, **_client_options(timeout_s))
        return client
    if callable(getattr(target, "register_script", None)) and not _is_async(target):
        return target
    raise ConfigError(field, f"expected a redis:// URL or a (sync) redis.Redis client, got {target!r}")


def connect_async(url: str, *, field: str = "redis", timeout_s: float = 0.5) -> Any:
    """The ``redis.asyncio`` twin of :func:`connect` for a URL (one per event loop: its connections belong to it)."""
    timeout_s = check_positive("timeout_s", timeout_s)
    _import_redis(field)
    import redis.asyncio

    return redis.asyncio.Redis.from_url(_check_url(field, url), **_client_options(timeout_s))


def as_text(value: Any) -> str:
    """A script's string reply (bytes unless the client decodes responses) as str."""
    return value.decode() if isinstance(value, bytes) else str(value)


# ----------------------------------------------------------------------------- failure handling


class RedisHealth:
    """Whether one Redis server is being left alone after a failure; shared by all its users."""

    def __init__(self, endpoint: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.endpoint = endpoint
        self._clock = clock
        self._down_until = 0.0
        self._lock = threading.Lock()

    def available(self) -> bool:
        return self._clock() >= self._down_until

    def mark_down(self, for_s: float) -> None:
        with self._lock:
            self._down_until = max(self._down_until, self._clock() + for_s)

    def __repr__(self) -> str:
        return f"RedisHealth({self.endpoint!r}, available={self.available()})"


_HEALTH: dict[str, RedisHealth] = {}
_HEALTH_LOCK = threading.Lock()


def endpoint_of(client: Any) -> str:
    """The server a client talks to (``host:port/db`` or a socket path), for sharing its health."""
    pool = getattr(client, "connection_pool", None)
    kwargs = getattr(pool, "connection_kwargs", None)
    if isinstance(kwargs, dict):
        where = kwargs.get("path") or f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}"
        return f"{where}/{kwargs.get('db', 0)}"
    return f"client:{id(client)}"


def forget_health() -> None:
    """Forget every server's health state (tests: a server marked down by one test is not by the next)."""
    with _HEALTH_LOCK:
        _HEALTH.clear()


def health_of(client: Any) -> RedisHealth:
    """The one health state of the server ``client`` talks to (sync and asyncio clients alike)."""
    endpoint = endpoint_of(client)
    with _HEALTH_LOCK:
        found = _HEALTH.get(endpoint)
        if found is None:
            found = _HEALTH[endpoint] = RedisHealth(endpoint)
        return found


class RedisGuard:
    """Runs one component's Redis operations: back-off after a failure, fail open/closed, warn once, counters.

    ``what`` names the component in warnings and errors ("retry budget 'default'", ...);
    ``when_open`` / ``when_closed`` say in the warning what happens to calls in each mode.
    Thread-safe; the async methods await the operation instead of calling it.
    """

    def __init__(
        self,
        what: str,
        *,
        client: Any = None,
        on_redis_error: str = FAIL_OPEN,
        retry_after_s: float = 1.0,
        when_open: str = "falling back to in-process state",
        when_closed: str = "failing calls",
        clock: Callable[[], float] = time.monotonic,
        health: RedisHealth | None = None,
    ) -> None:
        self.what = what
        self.on_redis_error = check_fail_mode("on_redis_error", on_redis_error)
        self.retry_after_s = check_positive("retry_after_s", retry_after_s, allow_zero=True)
        self._consequence = when_open if on_redis_error == FAIL_OPEN else when_closed
        if health is None:
            health = health_of(client) if client is not None else RedisHealth(f"guard:{what}", clock)
        self.health = health
        self._lock = threading.Lock()
        self.failures = 0  # operations that failed against Redis
        self.fallbacks = 0  # operations answered by the fail-open fallback instead

    def __repr__(self) -> str:
        return f"RedisGuard({self.what!r}, on_redis_error={self.on_redis_error!r})"

    def available(self) -> bool:
        """False while Redis is being left alone after a failure (by anyone using this server)."""
        return self.health.available()

    def failed(self, exc: BaseException) -> RedisUnavailable:
        """Count ``exc``, leave the server alone for ``retry_after_s``, warn once per cause; the error to raise."""
        with self._lock:
            self.failures += 1
        self.health.mark_down(self.retry_after_s)
        warn_once(
            f"redis:{self.what}:{type(exc).__name__}",
            f"costkit: Redis for {self.what} is unavailable ({exc!r}); {self._consequence} "
            f"(on_redis_error={self.on_redis_error!r}); Redis is tried again after {self.retry_after_s:g}s",
        )
        return RedisUnavailable(self.what, f"{type(exc).__name__}: {exc}")

    def call(self, op: Callable[[], T]) -> T:
        """``op()``, or :class:`RedisUnavailable` if it fails or Redis is being left alone (either mode)."""
        if not self.available():
            raise RedisUnavailable(self.what, MARKED_DOWN)
        try:
            return op()
        except redis_errors() as exc:
            raise self.failed(exc) from exc

    async def acall(self, op: Callable[[], Awaitable[T]]) -> T:
        """:meth:`call` for a coroutine operation (a ``redis.asyncio`` client's)."""
        if not self.available():
            raise RedisUnavailable(self.what, MARKED_DOWN)
        try:
            return await op()
        except redis_errors() as exc:
            raise self.failed(exc) from exc

    def run(self, op: Callable[[], T], fallback: Callable[[], T]) -> T:
        """``op()``; when Redis is unavailable, ``fallback()`` (open) or :class:`RedisUnavailable` (closed)."""
        try:
            return self.call(op)
        except RedisUnavailable as exc:
            return self.recover(exc, fallback)

    async def arun(self, op: Callable[[], Awaitable[T]], fallback: Callable[[], T]) -> T:
        """:meth:`run` for a coroutine operation."""
        try:
            return await self.acall(op)
        except RedisUnavailable as exc:
            return self.recover(exc, fallback)

    def recover(self, exc: RedisUnavailable, fallback: Callable[[], T]) -> T:
        """What an operation that found Redis unavailable gives: ``exc`` raised (closed), else ``fallback()``."""
        if self.on_redis_error == FAIL_CLOSED:
            raise exc
        with self._lock:
            self.fallbacks += 1
        return fallback()


__all__ = [
    "FAIL_CLOSED",
    "FAIL_MODES",
    "FAIL_OPEN",
    "MARKED_DOWN",
    "RedisGuard",
    "RedisHealth",
    "RedisUnavailable",
    "as_text",
    "check_fail_mode",
    "check_name",
    "check_positive",
    "connect",
    "connect_async",
    "endpoint_of",
    "forget_health",
    "health_of",
    "redis_errors",
]
