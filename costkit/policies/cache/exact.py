"""ExactCache: answer a question asked before, word for word, from the store, for free.

The key (:func:`~costkit.policies.cache.keys.exact_key`) is the requested question and its
scope; a hit returns the SDK's own object as stored, with ``source="exact"`` and the original
``cost_usd`` and usage, so the recorder books a cost of 0 and saves what the first call cost.

What is *not* stored, TTLs and labels are the rules both caches share (:mod:`.rules`); when an
entry may answer other users is :mod:`.sharing`.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Mapping
from typing import Any

from ..._call import SOURCE_EXACT_CACHE, Call, Result
from ..._pipeline import ANext, Next
from ..._serialize import SerializationError, result_from_json, result_to_json
from ..._warn import warn_once
from .keys import exact_key
from .rules import CacheRules, request_skip_reason, result_skip_reason
from .sharing import USERS
from .stores import CacheStore, as_store


class ExactCache:
    """A policy answering repeated identical questions from a store. See the module docstring.

    ``store``: a :class:`~costkit.policies.cache.stores.CacheStore`, ``"memory"``, a directory
    or a ``redis://`` URL; None is a :class:`DiskStore` under the user cache dir.
    ``ttl_s``: seconds an entry lives (None: until evicted); ``ttl_by_feature`` /
    ``ttl_by_route`` override it per ``tags.feature`` / ``tags.route`` (0: never cache those).
    ``scope_user``: entries are private to ``tags.user`` too (tenants are always separate).
    ``normalize``: fold Unicode and whitespace differences in the messages.
    ``min_distinct_users``: an entry answers other users only once that many distinct
    ``tags.user`` asked it (the poisoning defence of :mod:`.sharing`; 1, the default, shares at once).
    """

    def __init__(
        self,
        store: Any = None,
        ttl_s: float | None = None,
        *,
        ttl_by_feature: Mapping[str, float] | None = None,
        ttl_by_route: Mapping[str, float] | None = None,
        namespace: str = "exact",
        scope_user: bool = False,
        normalize: bool = False,
        cache_sampled: bool = False,
        cache_tool_calls: bool = False,
        min_distinct_users: int = 1,
    ) -> None:
        self.store: CacheStore = as_store(store, default_dir="exact")
        self.rules = CacheRules(
            namespace=namespace,
            ttl_s=ttl_s,
            ttl_by_feature=ttl_by_feature,
            ttl_by_route=ttl_by_route,
            cache_sampled=cache_sampled,
            cache_tool_calls=cache_tool_calls,
            min_distinct_users=min_distinct_users,
        )
        self.scope_user = bool(scope_user)
        self.normalize = bool(normalize)
        self.stats: Counter[str] = Counter()
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def namespace(self) -> str:
        return self.rules.namespace

    def key(self, call: Call) -> str:
        return exact_key(call, scope_user=self.scope_user, normalize=self.normalize, namespace=self.namespace)

    # -- shared, I/O-free steps -----------------------------------------------------------
    def _plan(self, call: Call) -> tuple[str, float | None] | None:
        """(key, ttl) if the call may use the cache, else None (counted)."""
        reason = request_skip_reason(call, cache_sampled=self.rules.cache_sampled)
        if reason is None:
            ttl = self.rules.ttl_for(call)
            if ttl is None or ttl > 0:
                return self.key(call), ttl
            reason = "ttl_zero"
        self.stats[f"bypass:{reason}"] += 1
        return None

    def _hit(self, key: str, doc: Mapping[str, Any] | None) -> Result | None:
        if doc is None:
            self.stats["misses"] += 1
            return None
        try:
            result = result_from_json(doc["result"], source=SOURCE_EXACT_CACHE)
        except (SerializationError, KeyError, TypeError) as exc:
            self.stats["corrupt"] += 1
            self.stats["misses"] += 1
            warn_once(f"exact-cache-corrupt:{type(exc).__name__}", f"costkit: unreadable exact-cache entry ({exc})")
            self.store.delete(key)
            return None
        self.stats["hits"] += 1
        return result.with_notes(cache_key=key, cached_at=doc.get("at"))

    def _entry(self, call: Call, result: Result) -> dict[str, Any] | None:
        reason = result_skip_reason(result, cache_tool_calls=self.rules.cache_tool_calls)
        if reason is not None:
            self.stats[f"not_stored:{reason}"] += 1
            return None
        try:
            return {"result": result_to_json(result), "at": time.time(), **self.rules.sharing.stamp(call)}
        except SerializationError as exc:
            self.stats["not_stored:unserializable"] += 1
            warn_once(f"exact-cache-serialize:{type(result.raw).__name__}", f"costkit: cannot cache answer: {exc}")
            return None

    def _store_sync(self, call: Call, key: str, ttl: float | None, result: Result) -> None:
        entry = self._entry(call, result)
        if entry is not None and self.store.set(key, entry, ttl_s=ttl, labels=self.rules.labels(call)):
            self.stats["stored"] += 1

    async def _store_async(self, call: Call, key: str, ttl: float | None, result: Result) -> None:
        entry = self._entry(call, result)
        if entry is not None and await self.store.aset(key, entry, ttl_s=ttl, labels=self.rules.labels(call)):
            self.stats["stored"] += 1

    # -- the policy -----------------------------------------------------------------------
    def handle(self, call: Call, next: Next) -> Result:
        plan = self._plan(call)
        if plan is None:
            return next(call)
        key, ttl = plan
        doc = self.store.get(key)
        admission = self.rules.sharing.admit(doc, call) if doc is not None else None
        if doc is not None and admission is not None and not admission.serve:  # not shared yet
            if admission.users is not None:
                self.store.set(key, {**doc, USERS: list(admission.users)}, ttl_s=ttl, labels=self.rules.labels(call))
            self.stats["not_shared"] += 1
            return next(call)
        hit = self._hit(key, doc)
        if hit is not None:
            return hit
        result = next(call)
        result.when_complete(lambda final: self._store_sync(call, key, ttl, final))
        return result

    async def ahandle(self, call: Call, anext: ANext) -> Result:
        plan = self._plan(call)
        if plan is None:
            return await anext(call)
        key, ttl = plan
        doc = await self.store.aget(key)
        admission = self.rules.sharing.admit(doc, call) if doc is not None else None
        if doc is not None and admission is not None and not admission.serve:  # not shared yet
            if admission.users is not None:
                entry = {**doc, USERS: list(admission.users)}
                await self.store.aset(key, entry, ttl_s=ttl, labels=self.rules.labels(call))
            self.stats["not_shared"] += 1
            return await anext(call)
        hit = self._hit(key, doc)
        if hit is not None:
            return hit
        result = await anext(call)
        if result.stream is None:
            await self._store_async(call, key, ttl, result)
        else:
            result.when_complete(lambda final: self._schedule_store(call, key, ttl, final))
        return result

    def _schedule_store(self, call: Call, key: str, ttl: float | None, result: Result) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # the stream finished outside a loop (e.g. collected): store synchronously
            self._store_sync(call, key, ttl, result)
            return
        task = loop.create_task(self._store_async(call, key, ttl, result))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- invalidation ---------------------------------------------------------------------
    def invalidate(self, **tags: str) -> int:
        """Drop every entry of this cache with any of the given tags, e.g. ``invalidate(corpus_version="v3")``."""
        return sum(self.store.invalidate(label) for label in self.rules.invalidation_labels(tags))

    def clear(self) -> int:
        """Drop every entry of this cache's namespace (other namespaces sharing the store stay)."""
        return self.store.invalidate(f"{self.namespace}|*")


__all__ = ["CacheRules", "ExactCache", "request_skip_reason", "result_skip_reason"]
