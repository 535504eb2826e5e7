"""Where cached answers live: in memory (LRU), on disk (diskcache) or in Redis.

Every store keeps plain JSON documents under string keys, with an optional TTL and a set of
*labels* (``"tenant=acme"``, ``"feature=faq"``, ``"ns=exact"`` ...) that :meth:`invalidate` uses
to drop every entry carrying one. Nothing is ever pickled: a cache directory or a Redis key is
not a trusted code path, so the disk store refuses pickled rows even if someone planted them.

A store never fails the caller's completion. Every public method catches what the backend
raises (unreachable Redis, corrupt file, undecodable JSON), warns once per cause, counts it in
``errors`` and answers like an empty cache: ``get`` returns None, ``set`` returns False.

Async: the memory store is called directly (a dict lookup); the disk store runs SQLite in a
worker thread (``asyncio.to_thread``: a locked database must not stall the event loop); the
Redis store uses ``redis.asyncio``.
"""

from __future__ import annotations

import abc
import asyncio
import json
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..._files import create_private_file, make_private_dirs
from ..._warn import warn_once
from ...errors import ConfigError

Doc = dict[str, Any]


def default_cache_dir(*parts: str) -> Path:
    """The per-user cache dir: ``$COSTKIT_CACHE_DIR``, else ``$XDG_CACHE_HOME/costkit``, else ``~/.cache/costkit``."""
    root = os.environ.get("COSTKIT_CACHE_DIR")
    if root:
        base = Path(root)
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        base = (Path(xdg) if xdg else Path.home() / ".cache") / "costkit"
    return base.joinpath(*parts)


def encode(value: Mapping[str, Any], labels: Iterable[str]) -> str:
    return json.dumps({"v": dict(value), "l": sorted(set(labels))}, separators=(",", ":"), ensure_ascii=False)


def decode(raw: str | bytes) -> tuple[Doc, list[str]]:
    env = json.loads(raw)
    if not isinstance(env, dict) or not isinstance(env.get("v"), dict) or not isinstance(env.get("l"), list):
        raise ValueError("not a costkit cache entry")
    return env["v"], [str(x) for x in env["l"]]


def _check_ttl(ttl_s: float | None) -> None:
    if ttl_s is not None and (not isinstance(ttl_s, int | float) or ttl_s <= 0):
        raise ValueError(f"ttl_s must be a positive number or None, got {ttl_s!r}")


class CacheStore(abc.ABC):
    """Base class: the guard that turns backend failures into misses, plus the async defaults.

    Subclasses implement ``_get``, ``_set``, ``_delete``, ``_invalidate``, ``_clear`` (and may
    override the ``_a*`` twins). ``errors`` counts failed operations; ``dropped`` counts writes lost.
    """

    kind = "store"

    def __init__(self) -> None:
        self.errors = 0
        self.dropped = 0

    # -- what subclasses write ------------------------------------------------------------
    @abc.abstractmethod
    def _get(self, key: str) -> Doc | None:
        """Backend operation (may raise: the public method turns it into a miss)."""

    @abc.abstractmethod
    def _set(self, key: str, value: Mapping[str, Any], ttl_s: float | None, labels: tuple[str, ...]) -> None:
        """Backend operation (may raise: the public method turns it into a miss)."""

    @abc.abstractmethod
    def _delete(self, key: str) -> None:
        """Backend operation (may raise: the public method turns it into a miss)."""

    @abc.abstractmethod
    def _invalidate(self, label: str) -> int:
        """Backend operation (may raise: the public method turns it into a miss)."""

    @abc.abstractmethod
    def _clear(self) -> None:
        """Backend operation (may raise: the public method turns it into a miss)."""

    async def _aget(self, key: str) -> Doc | None:
        return await asyncio.to_thread(self._get, key)

    async def _aset(self, key: str, value: Mapping[str, Any], ttl_s: float | None, labels: tuple[str, ...]) -> None:
        await asyncio.to_thread(self._set, key, value, ttl_s, labels)

    # -- the guard ------------------------------------------------------------------------
    def _failed(self, op: str, exc: BaseException, *, warn: bool = True) -> None:
        self.errors += 1
        if op == "set":
            self.dropped += 1
        if warn:
            self._warn(op, exc)

    def _warn(self, op: str, exc: BaseException) -> None:
        warn_once(
            f"cache-store:{self.kind}:{op}:{type(exc).__name__}",
            f"costkit: {self.kind} cache store failed on {op} ({exc!r}); treating it as a miss "
            "(further failures of this kind are counted in store.errors, not warned)",
        )

    def get_check(self, key: str) -> Any:
        """:meth:`get` as a check a request's other Redis checks can go with (a ``costkit._redis_batch.RedisCheck``),
        or None: this store is not in Redis."""
        return None

    def get(self, key: str) -> Doc | None:
        """The stored document, or None (missing, expired, corrupt or unreachable)."""
        try:
            return self._get(key)
        except Exception as exc:
            self._failed("get", exc)
            return None

    def set(
        self, key: str, value: Mapping[str, Any], *, ttl_s: float | None = None, labels: Iterable[str] = ()
    ) -> bool:
        """Store ``value`` (JSON-able) for ``ttl_s`` seconds (None: until evicted); False if it was dropped."""
        _check_ttl(ttl_s)
        try:
            self._set(key, value, ttl_s, tuple(labels))
            return True
        except Exception as exc:
            self._failed("set", exc)
            return False

    def delete(self, key: str) -> None:
        try:
            self._delete(key)
        except Exception as exc:
            self._failed("delete", exc)

    def invalidate(self, label: str) -> int:
        """Drop every entry carrying ``label``; returns how many were dropped (0 on failure)."""
        try:
            return self._invalidate(label)
        except Exception as exc:
            self._failed("invalidate", exc)
            return 0

    def clear(self) -> None:
        try:
            self._clear()
        except Exception as exc:
            self._failed("clear", exc)

    async def aget(self, key: str) -> Doc | None:
        try:
            return await self._aget(key)
        except Exception as exc:
            self._failed("get", exc)
            return None

    async def aset(
        self, key: str, value: Mapping[str, Any], *, ttl_s: float | None = None, labels: Iterable[str] = ()
    ) -> bool:
        _check_ttl(ttl_s)
        try:
            await self._aset(key, value, ttl_s, tuple(labels))
            return True
        except Exception as exc:
            self._failed("set", exc)
            return False

    async def ainvalidate(self, label: str) -> int:
        return await asyncio.to_thread(self.invalidate, label)

    def close(self) -> None:  # noqa: B027 - stores without connections have nothing to release
        """Release connections / file handles (the store is unusable afterwards)."""


class MemoryStore(CacheStore):
    """An in-process LRU of at most ``max_entries`` entries, thread-safe; lost when the process ends."""

    kind = "memory"

    def __init__(self, max_entries: int = 10_000) -> None:
        super().__init__()
        if not isinstance(max_entries, int) or isinstance(max_entries, bool) or max_entries < 1:
            raise ConfigError("max_entries", f"must be a positive int, got {max_entries!r}")
        self.max_entries = max_entries
        self._data: OrderedDict[str, tuple[Doc, float | None, tuple[str, ...]]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._data)

    def _get(self, key: str) -> Doc | None:
        with self._lock:
            item = self._data.get(key)
            if item is None:
                return None
            doc, expires, _labels = item
            if expires is not None and time.monotonic() >= expires:
                del self._data[key]
                return None
            self._data.move_to_end(key)
            return doc

    def _set(self, key: str, value: Mapping[str, Any], ttl_s: float | None, labels: tuple[str, ...]) -> None:
        # Kept as an independent JSON-equivalent copy: a caller mutating its dict cannot change the entry.
        doc: Doc = json.loads(json.dumps(value))
        expires = time.monotonic() + ttl_s if ttl_s is not None else None
        with self._lock:
            self._data[key] = (doc, expires, labels)
            self._data.move_to_end(key)
            while len(self._data) > self.max_entries:
                self._data.popitem(last=False)

    def _delete(self, key: str) -> None:
        with self._lock:
            self._data.pop(key, None)

    def _invalidate(self, label: str) -> int:
        with self._lock:
            doomed = [k for k, (_d, _e, labels) in self._data.items() if label in labels]
            for k in doomed:
                del self._data[k]
        return len(doomed)

    def _clear(self) -> None:
        with self._lock:
            self._data.clear()

    async def aget(self, key: str) -> Doc | None:
        return self.get(key)  # a dict lookup: cheaper than any thread hop

    async def aset(
        self, key: str, value: Mapping[str, Any], *, ttl_s: float | None = None, labels: Iterable[str] = ()
    ) -> bool:
        return self.set(key, value, ttl_s=ttl_s, labels=labels)

    async def ainvalidate(self, label: str) -> int:
        return self.invalidate(label)


def _json_only_disk() -> type:
    """A diskcache ``Disk`` that stores text and refuses to unpickle anything it reads."""
    import diskcache
    from diskcache.core import MODE_PICKLE

    class JSONOnlyDisk(diskcache.Disk):
        def put(self, key: Any) -> Any:
            if type(key) is not str:
                raise TypeError("cache keys are str")
            return super().put(key)

        def get(self, key: Any, raw: bool) -> Any:
            if not raw:
                raise ValueError("refusing a pickled key in the cache directory")
            return super().get(key, raw)

        def store(self, value: Any, read: bool, key: Any = None) -> Any:
            if type(value) is not str:
                raise TypeError("cache values are JSON text")
            return super().store(value, read, key=key)

        def fetch(self, mode: int, filename: Any, value: Any, read: bool) -> Any:
            if mode == MODE_PICKLE:
                raise ValueError("refusing a pickled value in the cache directory (never unpickle a cache)")
            return super().fetch(mode, filename, value, read)

    return JSONOnlyDisk


class DiskStore(CacheStore):
    """A diskcache (SQLite) directory shared by the processes of one machine, JSON only.

    ``directory`` defaults to the user cache dir (see :func:`default_cache_dir`); ``size_limit``
    bytes bounds it (least recently stored entries go first); ``timeout_s`` bounds how long a write
    waits on a locked database before it is dropped.
    """

    kind = "disk"

    def __init__(
        self, directory: str | os.PathLike[str] | None = None, *, size_limit: int = 2**30, timeout_s: float = 1.0
    ) -> None:
        super().__init__()
        if not isinstance(size_limit, int) or size_limit <= 0:
            raise ConfigError("size_limit", f"must be a positive int of bytes, got {size_limit!r}")
        if not isinstance(timeout_s, int | float) or timeout_s <= 0:
            raise ConfigError("timeout_s", f"must be a positive number of seconds, got {timeout_s!r}")
        self.directory = Path(directory) if directory is not None else default_cache_dir("exact")
        self.size_limit = size_limit
        self.timeout_s = float(timeout_s)
        self._cache: Any = None
        self._open_lock = threading.Lock()

    def _db(self) -> Any:
        cache = self._cache
        if cache is None:
            with self._open_lock:
                if self._cache is None:
                    import diskcache

                    # prompts and answers live here: a 0700 directory and a 0600 database (an existing
                    # directory keeps its owner's mode)
                    make_private_dirs(self.directory)
                    create_private_file(self.directory / "cache.db")
                    self._cache = diskcache.Cache(
                        str(self.directory),
                        timeout=self.timeout_s,
                        disk=_json_only_disk(),
                        size_limit=self.size_limit,
                        eviction_policy="least-recently-stored",
                    )
                cache = self._cache
        return cache

    def _get(self, key: str) -> Doc | None:
        db = self._db()
        try:
            raw = db.get(key, default=None, retry=False)
        except (ValueError, TypeError, OSError, UnicodeDecodeError):
            db.delete(key, retry=False)  # a planted or corrupt row: drop it so it is warned about once
            raise
        if raw is None:
            return None
        try:
            return decode(raw)[0]
        except ValueError:
            db.delete(key, retry=False)
            raise

    def _set(self, key: str, value: Mapping[str, Any], ttl_s: float | None, labels: tuple[str, ...]) -> None:
        self._db().set(key, encode(value, labels), expire=ttl_s, retry=False)

    def _delete(self, key: str) -> None:
        self._db().delete(key, retry=False)

    def _invalidate(self, label: str) -> int:
        # A rare, whole-cache operation: scan the rows (labels live inside each JSON entry).
        db = self._db()
        n = 0
        for key in list(db.iterkeys()):
            raw = db.get(key, default=None, retry=True)
            if raw is None:
                continue
            try:
                _doc, labels = decode(raw)
            except ValueError:
                continue
            if label in labels:
                db.delete(key, retry=True)
                n += 1
        return n

    def _clear(self) -> None:
        self._db().clear(retry=True)

    def close(self) -> None:
        if self._cache is not None:
            self._cache.close()
            self._cache = None


class _MarkedDown(ConnectionError):
    """Redis was not asked: it is being left alone after a recent failure."""


class RedisStore(CacheStore):
    """Entries in Redis, shared by every process and host that points at it.

    Keys are ``{prefix}e:{key}`` (JSON text, with ``PX`` for a TTL); each label is a set
    ``{prefix}l:{label}`` of entry keys, so :meth:`invalidate` is one SMEMBERS + DEL. Timeouts
    are short (``timeout_s``) and after a failure the store stays a miss for ``retry_after_s``
    instead of paying the timeout on every call while Redis is down.
    """

    kind = "redis"

    def __init__(
        self,
        url: str | None = None,
        *,
        client: Any = None,
        prefix: str = "costkit:cache:",
        timeout_s: float = 0.25,
        retry_after_s: float = 5.0,
    ) -> None:
        super().__init__()
        if url is None and client is None:
            raise ConfigError("url", "give a redis URL (redis://host:6379/0) or a redis client")
        if url is not None and not isinstance(url, str):
            raise ConfigError("url", f"must be a str, got {type(url).__name__}")
        if not isinstance(timeout_s, int | float) or timeout_s <= 0:
            raise ConfigError("timeout_s", f"must be a positive number of seconds, got {timeout_s!r}")
        if not isinstance(retry_after_s, int | float) or retry_after_s < 0:
            raise ConfigError("retry_after_s", f"must be >= 0 seconds, got {retry_after_s!r}")
        if not isinstance(prefix, str):
            raise ConfigError("prefix", "must be a str")
        self.url = url
        self.prefix = prefix
        self.timeout_s = float(timeout_s)
        self.retry_after_s = float(retry_after_s)
        self._client = client
        self._aclients: dict[int, Any] = {}
        self._shared_health: Any = None
        self._guard: Any = None  # built with the first get_check
        self._get_script: Any = None

    def _sync(self) -> Any:
        if self._client is None:
            from ..._redis import connect

            self._client = connect(self.url, field="url", timeout_s=self.timeout_s)
        return self._client

    def _async(self) -> Any:
        # One asyncio client per event loop: a connection belongs to the loop that opened it.
        loop_id = id(asyncio.get_running_loop())
        client = self._aclients.get(loop_id)
        if client is None:
            from ..._redis import connect_async

            if self.url is None:
                raise RuntimeError("async use of RedisStore needs url=, not only a sync client")
            client = connect_async(self.url, field="url", timeout_s=self.timeout_s)
            self._aclients[loop_id] = client
        return client

    def _ek(self, key: str) -> str:
        return f"{self.prefix}e:{key}"

    def _lk(self, label: str) -> str:
        return f"{self.prefix}l:{label}"

    def _health(self) -> Any:
        """The server's health, shared with every other policy using it (costkit._redis.health_of)."""
        if self._shared_health is None:
            from ..._redis import health_of

            self._shared_health = health_of(self._sync())
        return self._shared_health

    def _check_up(self) -> None:
        if not self._health().available():
            raise _MarkedDown("redis marked down after a recent failure")

    def _failed(self, op: str, exc: BaseException, *, warn: bool = True) -> None:
        import redis

        # only the server being unreachable or slow marks it down (a refused command is this entry's problem)
        # (a call skipped while it is down does not extend the back-off: Redis is tried again on time)
        reached = not isinstance(exc, _MarkedDown)
        if reached and isinstance(exc, redis.ConnectionError | redis.TimeoutError | OSError) and self.retry_after_s > 0:
            self._health().mark_down(self.retry_after_s)
        super()._failed(op, exc, warn=warn and reached)  # the failure that marked it down was warned about

    def _write_cmds(self, pipe: Any, key: str, value: Mapping[str, Any], ttl_s: float | None, labels: tuple[str, ...]):
        ek = self._ek(key)
        pipe.set(ek, encode(value, labels), px=int(ttl_s * 1000) if ttl_s is not None else None)
        for label in labels:
            pipe.sadd(self._lk(label), ek)

    def _decode(self, key: str, raw: Any) -> Doc | None:
        if raw is None:
            return None
        try:
            return decode(raw)[0]
        except (ValueError, UnicodeDecodeError):
            self._sync().delete(self._ek(key))
            raise

    def _get(self, key: str) -> Doc | None:
        self._check_up()
        return self._decode(key, self._sync().get(self._ek(key)))

    def get_check(self, key: str) -> Any:
        """The lookup as a check (a one-line GET script) that goes with the request's other checks."""
        from ..._redis import RedisGuard
        from ..._redis_batch import RedisCheck

        if self._guard is None:  # warns once when Redis is down; a failed lookup is a miss, counted in errors
            client, what = self._sync(), f"cache store {self.prefix!r}"
            self._guard = RedisGuard(what, client=client, retry_after_s=self.retry_after_s, when_open="missing")
            self._get_script = client.register_script("return redis.call('GET', KEYS[1])")

        def read(answer: Any) -> Doc | None:
            try:
                return self._decode(key, answer)
            except Exception as exc:  # unreadable: a miss, as get() says
                self._failed("get", exc)
                return None

        return RedisCheck(
            self._guard, self._get_script, (self._ek(key),), (), go_if="not r", read=read,
            go=lambda doc: doc is None, on_error=lambda exc: self._failed("get", _MarkedDown(str(exc))),
        )  # fmt: skip

    def _set(self, key: str, value: Mapping[str, Any], ttl_s: float | None, labels: tuple[str, ...]) -> None:
        self._check_up()
        pipe = self._sync().pipeline(transaction=True)
        self._write_cmds(pipe, key, value, ttl_s, labels)
        pipe.execute()

    def _delete(self, key: str) -> None:
        self._check_up()
        self._sync().delete(self._ek(key))

    def _invalidate(self, label: str) -> int:
        self._check_up()
        client = self._sync()
        lk = self._lk(label)
        members = client.smembers(lk)
        pipe = client.pipeline(transaction=True)
        if members:
            pipe.delete(*members)
        pipe.delete(lk)
        out = pipe.execute()
        return int(out[0]) if members else 0

    def _clear(self) -> None:
        self._check_up()
        client = self._sync()
        batch: list[Any] = []
        for k in client.scan_iter(match=f"{self.prefix}*", count=1000):
            batch.append(k)
            if len(batch) >= 1000:
                client.delete(*batch)
                batch = []
        if batch:
            client.delete(*batch)

    async def _aget(self, key: str) -> Doc | None:
        self._check_up()
        raw = await self._async().get(self._ek(key))
        if raw is None:
            return None
        try:
            return decode(raw)[0]
        except (ValueError, UnicodeDecodeError):
            await self._async().delete(self._ek(key))
            raise

    async def _aset(self, key: str, value: Mapping[str, Any], ttl_s: float | None, labels: tuple[str, ...]) -> None:
        self._check_up()
        pipe = self._async().pipeline(transaction=True)
        self._write_cmds(pipe, key, value, ttl_s, labels)
        await pipe.execute()

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def as_store(store: Any, *, default_dir: str = "exact") -> CacheStore:
    """What a cache was given as ``store=`` -> a CacheStore (None: the disk store in the user cache dir)."""
    if store is None:
        return DiskStore(default_cache_dir(default_dir))
    if isinstance(store, CacheStore):
        return store
    if isinstance(store, str):
        if store == "memory":
            return MemoryStore()
        if store.startswith(("redis://", "rediss://", "unix://")):
            return RedisStore(store)
        return DiskStore(store)
    if isinstance(store, os.PathLike):
        return DiskStore(store)
    raise ConfigError(
        "store",
        f"expected a MemoryStore/DiskStore/RedisStore, 'memory', a directory or a redis:// URL, got {store!r}",
    )


__all__ = [
    "CacheStore",
    "DiskStore",
    "MemoryStore",
    "RedisStore",
    "as_store",
    "decode",
    "default_cache_dir",
    "encode",
]
