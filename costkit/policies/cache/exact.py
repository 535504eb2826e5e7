"""ExactCache: answer a question asked before, word for word, from the store, for free.

The key (:func:`~costkit.policies.cache.keys.exact_key`) is the requested question and its
scope; a hit returns the SDK's own object as stored, with ``source="exact"`` and the original
``cost_usd`` and usage, so the recorder books a cost of 0 and saves what the first call cost.

What is *not* stored (the same rules serve the semantic cache): sampled calls (a temperature
above 0, or none given: the providers' default is 1) unless ``cache_sampled=True``; errors;
refusals and content-filtered answers; truncated answers (finish reason ``length``); tool calls
unless ``cache_tool_calls=True``; streams that failed or were closed early; answers that did not
come from the provider (a semantic hit is not promoted into an exact entry).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Mapping
from typing import Any

from ..._call import SOURCE_EXACT_CACHE, SOURCE_PROVIDER, Call, Result
from ..._pipeline import Flow, FlowPolicy, Io
from ..._serialize import SerializationError, result_from_json, result_to_json
from ..._warn import warn_once
from ...errors import ConfigError
from .keys import exact_key
from .stores import CacheStore, as_store

NOT_CACHED_FINISH = frozenset({"length", "content_filter", "refusal"})
DETERMINISTIC_APIS = ("embeddings", "embedding")  # the same input always gives the same vectors
LABEL_TAGS = ("tenant", "user", "feature", "route", "prompt_version", "corpus_version", "namespace")


def request_skip_reason(call: Call, *, cache_sampled: bool) -> str | None:
    """Why this call must not be answered from (or stored in) a cache, or None."""
    if call.scope is not None and call.scope.raw_response:  # with_raw_response: only the provider's own will do
        return "raw_response"
    if cache_sampled or call.api in DETERMINISTIC_APIS:
        return None
    temperature = call.params.get("temperature")
    if temperature is None or not isinstance(temperature, int | float) or temperature > 0:
        return "sampled"
    n = call.params.get("n")
    if isinstance(n, int) and n > 1:
        return "sampled"
    return None


SAMPLED_WARN_AFTER = 100


def count_bypass(cache: str, stats: Counter[str], reason: str, call: Call) -> None:
    """Count a bypass; the ``SAMPLED_WARN_AFTER``-th call skipped as sampled says so once, with the fix.

    A call is sampled unless it asks for ``temperature=0`` (embeddings always repeat). Some SDKs and
    models take no temperature at all (anthropic's ``messages.create`` from 2.x, OpenAI's reasoning
    models): their calls can never ask to be repeatable, so a cache that sees only those answers
    nothing unless told that repeating a sampled answer is acceptable.
    """
    key = f"bypass:{reason}"
    stats[key] += 1
    if reason != "sampled" or stats[key] != SAMPLED_WARN_AFTER:
        return
    why = (
        "anthropic's SDK takes no temperature, so its calls always sample"
        if call.client == "anthropic" and "temperature" not in call.params
        else "they set no temperature=0 (the providers' default is 1)"
    )
    warn_once(
        f"cache-sampled:{cache}:{id(stats)}",
        f"costkit: {cache} has let its first {SAMPLED_WARN_AFTER} calls through uncached as sampled: {why}. "
        f"To cache them anyway (the same question gets the first answer again), pass {cache}(cache_sampled=True); "
        "or send temperature=0 where the SDK takes it.",
    )


def result_skip_reason(result: Result, *, cache_tool_calls: bool, api: str | None = None) -> str | None:
    """Why this finished result must not be stored, or None."""
    notes = result.notes
    if notes.get("stream_error") or notes.get("stream_incomplete"):
        return "stream_incomplete"
    if result.source != SOURCE_PROVIDER:
        return "not_from_provider"
    if result.finish_reason in NOT_CACHED_FINISH:
        return result.finish_reason or "finish"
    if result.tool_calls and not cache_tool_calls:
        return "tool_calls"
    if not result.text and not result.tool_calls and api not in DETERMINISTIC_APIS:  # vectors have no text
        return "empty"
    if result.raw is None:
        return "no_raw"
    return None


def check_ttl_map(name: str, value: Mapping[str, float] | None) -> dict[str, float]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(name, f"must be a dict of name -> seconds, got {type(value).__name__}")
    out = {}
    for k, v in value.items():
        if not isinstance(k, str):
            raise ConfigError(f"{name}[{k!r}]", "keys are feature / route names (str)")
        if isinstance(v, bool) or not isinstance(v, int | float) or v < 0:
            raise ConfigError(f"{name}[{k!r}]", f"must be seconds >= 0 (0: do not cache), got {v!r}")
        out[k] = float(v)
    return out


def check_ttl(name: str, value: float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigError(name, f"must be a positive number of seconds or None (no expiry), got {value!r}")
    return float(value)


class CacheRules:
    """Admission, TTL and labels shared by the exact and semantic caches (no I/O)."""

    def __init__(
        self,
        *,
        namespace: str,
        ttl_s: float | None,
        ttl_by_feature: Mapping[str, float] | None,
        ttl_by_route: Mapping[str, float] | None,
        cache_sampled: bool,
        cache_tool_calls: bool,
    ) -> None:
        if not isinstance(namespace, str) or not namespace:
            raise ConfigError("namespace", "must be a non-empty str")
        self.namespace = namespace
        self.ttl_s = check_ttl("ttl_s", ttl_s)
        self.ttl_by_feature = check_ttl_map("ttl_by_feature", ttl_by_feature)
        self.ttl_by_route = check_ttl_map("ttl_by_route", ttl_by_route)
        self.cache_sampled = bool(cache_sampled)
        self.cache_tool_calls = bool(cache_tool_calls)

    def ttl_for(self, call: Call) -> float | None:
        """Route beats feature beats the default; 0 means "do not cache" (returned as -1)."""
        tags = call.tags
        if tags.route is not None and tags.route in self.ttl_by_route:
            ttl = self.ttl_by_route[tags.route]
        elif tags.feature is not None and tags.feature in self.ttl_by_feature:
            ttl = self.ttl_by_feature[tags.feature]
        else:
            return self.ttl_s
        return ttl if ttl > 0 else -1.0

    def label(self, name: str, value: str) -> str:
        return f"{self.namespace}|{name}={value}"

    def labels(self, call: Call) -> list[str]:
        tags = call.tags
        out = [f"{self.namespace}|*"]
        for name in LABEL_TAGS:
            value = getattr(tags, name)
            if value is not None:
                out.append(self.label(name, value))
        return out

    def invalidation_labels(self, tags: Mapping[str, str]) -> list[str]:
        for name in tags:
            if name not in LABEL_TAGS:
                raise ConfigError(name, f"cannot invalidate by {name!r}; use one of {', '.join(LABEL_TAGS)}")
        return [self.label(n, v) for n, v in tags.items()]


class ExactCache(FlowPolicy):
    """A policy answering repeated identical questions from a store. See the module docstring.

    ``store``: a :class:`~costkit.policies.cache.stores.CacheStore`, ``"memory"``, a directory
    or a ``redis://`` URL; None is a :class:`DiskStore` under the user cache dir.
    ``ttl_s``: seconds an entry lives (None: until evicted); ``ttl_by_feature`` /
    ``ttl_by_route`` override it per ``tags.feature`` / ``tags.route`` (0: never cache those).
    ``scope_user``: entries are private to ``tags.user`` too (tenants are always separate).
    ``normalize``: fold Unicode and whitespace differences in the messages.
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
    ) -> None:
        self.store: CacheStore = as_store(store, default_dir="exact")
        self.rules = CacheRules(
            namespace=namespace,
            ttl_s=ttl_s,
            ttl_by_feature=ttl_by_feature,
            ttl_by_route=ttl_by_route,
            cache_sampled=cache_sampled,
            cache_tool_calls=cache_tool_calls,
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

    def _entry(self, result: Result, api: str | None = None) -> dict[str, Any] | None:
        reason = result_skip_reason(result, cache_tool_calls=self.rules.cache_tool_calls, api=api)
        if reason is not None:
            self.stats[f"not_stored:{reason}"] += 1
            return None
        try:
            return {"result": result_to_json(result), "at": time.time()}
        except SerializationError as exc:
            self.stats["not_stored:unserializable"] += 1
            warn_once(f"exact-cache-serialize:{type(result.raw).__name__}", f"costkit: cannot cache answer: {exc}")
            return None

    def _store_sync(self, call: Call, key: str, ttl: float | None, result: Result) -> None:
        entry = self._entry(result, call.api)
        if entry is not None and self.store.set(key, entry, ttl_s=ttl, labels=self.rules.labels(call)):
            self.stats["stored"] += 1

    async def _store_async(self, call: Call, key: str, ttl: float | None, result: Result) -> None:
        entry = self._entry(result, call.api)
        if entry is not None and await self.store.aset(key, entry, ttl_s=ttl, labels=self.rules.labels(call)):
            self.stats["stored"] += 1

    # -- the policy -----------------------------------------------------------------------
    def _store_io(self, call: Call, key: str, ttl: float | None, result: Result) -> Io:
        return Io(lambda: self._store_sync(call, key, ttl, result), lambda: self._store_async(call, key, ttl, result))

    def flow(self, call: Call) -> Flow:
        plan = self._plan(call)
        if plan is None:
            return (yield call)
        key, ttl = plan
        doc = yield Io(lambda: self.store.get(key), lambda: self.store.aget(key))
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
        hit = self._hit(call, key, self.store.get(key))
        return (hit, None) if hit is not None else (None, [key, ttl, self.rules.labels(call)])

    def batch_store(self, ticket: Any, result: Result) -> None:
        """Store a batch item's answer under the ticket :meth:`batch_lookup` gave (a ticket read
        back from a state file is checked: it only ever names a key, a TTL and labels)."""
        try:
            key, ttl, labels = ticket
        except (TypeError, ValueError):
            return
        if not (isinstance(key, str) and (ttl is None or isinstance(ttl, int | float)) and isinstance(labels, list)):
            return
        entry = self._entry(result)
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
