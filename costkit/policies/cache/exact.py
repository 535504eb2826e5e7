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
from ..._pipeline import Ahead, Flow, FlowPolicy, Io
from ..._serialize import SerializationError, result_from_json, result_to_json
from ..._warn import warn_once
from .keys import exact_key
from .rules import CacheRules, count_bypass, request_skip_reason, result_skip_reason
from .sharing import USERS
from .stores import CacheStore, as_store


class ExactCache(FlowPolicy):
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
        # a lookup in Redis joins the checks of the layers above (nothing is kept before it)
        self.joins_checks = type(self.store).get_check is not CacheStore.get_check
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
        count_bypass("ExactCache", self.stats, reason, call)
        return None

    def _hit(self, call: Call, key: str, doc: Mapping[str, Any] | None) -> Result | None:
        if doc is None:
            self.stats["misses"] += 1
            return None
        try:
            if not isinstance(doc, Mapping):
                raise SerializationError("entry is not an object")
            result = result_from_json(doc["result"], source=SOURCE_EXACT_CACHE, call=call)
        except Exception as exc:  # stored data is untrusted: anything unreadable is a miss, dropped
            self.stats["corrupt"] += 1
            self.stats["misses"] += 1
            warn_once(f"exact-cache-corrupt:{type(exc).__name__}", f"costkit: unreadable exact-cache entry ({exc})")
            self.store.delete(key)
            return None
        self.stats["hits"] += 1
        return result.with_notes(cache_key=key, cached_at=doc.get("at"))

    def _entry(self, call: Call, result: Result, stamp: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
        reason = result_skip_reason(result, cache_tool_calls=self.rules.cache_tool_calls, api=call.api)
        if reason is not None:
            self.stats[f"not_stored:{reason}"] += 1
            return None
        try:
            stamped = self.rules.sharing.stamp(call) if stamp is None else stamp
            return {"result": result_to_json(result), "at": time.time(), **stamped}
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
    def _set_io(self, key: str, entry: Mapping[str, Any], ttl: float | None, call: Call) -> Io:
        labels = self.rules.labels(call)
        return Io(
            lambda: self.store.set(key, entry, ttl_s=ttl, labels=labels),
            lambda: self.store.aset(key, entry, ttl_s=ttl, labels=labels),
        )

    def _store_io(self, call: Call, key: str, ttl: float | None, result: Result) -> Io:
        return Io(lambda: self._store_sync(call, key, ttl, result), lambda: self._store_async(call, key, ttl, result))

    def flow(self, call: Call) -> Flow:
        plan = self._plan(call)
        if plan is None:
            return (yield call)
        key, ttl = plan
        check = self.store.get_check(key)  # in Redis: with the request's other checks, in one round trip
        doc = (
            yield Ahead(check, call)
            if check is not None
            else Io(lambda: self.store.get(key), lambda: self.store.aget(key))
        )
        admission = self.rules.sharing.admit(doc, call) if isinstance(doc, Mapping) else None
        if admission is not None and not admission.serve:  # an entry not shared with this user yet
            if admission.users is not None:  # this user counts toward sharing it
                yield self._set_io(key, {**doc, USERS: list(admission.users)}, ttl, call)
            self.stats["not_shared"] += 1
            return (yield call)
        hit = self._hit(call, key, doc)
        if hit is not None:
            return hit
        result: Result = yield call
        if result.stream is None:
            yield self._store_io(call, key, ttl, result)
        else:  # stored once the caller has read the stream to its end
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

    # -- the batch lane (costkit.batch.BatchCache) ------------------------------------------
    def batch_lookup(self, call: Call) -> tuple[Result | None, Any]:
        """Answer a batch item from the store, or return the ticket ``[key, ttl, labels]`` its
        answer will be stored under (None: the item is not cacheable)."""
        plan = self._plan(call)
        if plan is None:
            return None, None
        key, ttl = plan
        doc = self.store.get(key)
        admission = self.rules.sharing.admit(doc, call) if isinstance(doc, Mapping) else None
        hit = self._hit(call, key, doc) if admission is None or admission.serve else None
        ticket = [key, ttl, self.rules.labels(call), call.api, self.rules.sharing.stamp(call)]
        return (hit, None) if hit is not None else (None, ticket)

    def batch_store(self, ticket: Any, result: Result) -> None:
        """Store a batch item's answer under the ticket :meth:`batch_lookup` gave (a ticket read
        back from a state file is checked: it only ever names a key, a TTL and labels)."""
        try:
            key, ttl, labels, api, stamp = ticket
        except (TypeError, ValueError):
            return
        if not (isinstance(key, str) and (ttl is None or isinstance(ttl, int | float)) and isinstance(labels, list)):
            return
        if not isinstance(stamp, Mapping) or not all(isinstance(v, list) for v in stamp.values()):
            stamp = {}
        reason = result_skip_reason(result, cache_tool_calls=self.rules.cache_tool_calls, api=str(api))
        if reason is not None:
            self.stats[f"not_stored:{reason}"] += 1
            return
        try:
            entry: dict[str, Any] | None = {"result": result_to_json(result), "at": time.time(), **stamp}
        except SerializationError:
            self.stats["not_stored:unserializable"] += 1
            entry = None
        if entry is not None and self.store.set(key, entry, ttl_s=ttl, labels=[str(x) for x in labels]):
            self.stats["stored"] += 1

    # -- invalidation ---------------------------------------------------------------------
    def invalidate(self, **tags: str) -> int:
        """Drop every entry of this cache with any of the given tags, e.g. ``invalidate(corpus_version="v3")``."""
        return sum(self.store.invalidate(label) for label in self.rules.invalidation_labels(tags))

    def clear(self) -> int:
        """Drop every entry of this cache's namespace (other namespaces sharing the store stay)."""
        return self.store.invalidate(f"{self.namespace}|*")


__all__ = ["CacheRules", "ExactCache", "request_skip_reason", "result_skip_reason"]
