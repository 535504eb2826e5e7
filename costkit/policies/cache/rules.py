"""The rules both caches share, as one value: what may be cached, for how long, under which labels,
and when an entry may answer other users (:class:`CacheRules`; no I/O).

What is *not* stored: sampled calls (a temperature above 0, or none given: the providers' default
is 1) unless ``cache_sampled=True``; errors; refusals and content-filtered answers; truncated
answers (finish reason ``length``); tool calls unless ``cache_tool_calls=True``; streams that
failed or were closed early; answers that did not come from the provider (a semantic hit is not
promoted into an exact entry). ``min_distinct_users`` is the poisoning defence of
:mod:`.sharing`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from ..._call import SOURCE_PROVIDER, Call, Result
from ..._warn import warn_once
from ...errors import ConfigError
from .sharing import Sharing

NOT_CACHED_FINISH = frozenset({"length", "content_filter", "refusal"})
LABEL_TAGS = ("tenant", "user", "feature", "route", "prompt_version", "corpus_version", "namespace")


DETERMINISTIC_APIS = ("embeddings", "embedding")  # the same input always gives the same vectors
SAMPLED_WARN_AFTER = 100


def request_skip_reason(call: Call, *, cache_sampled: bool) -> str | None:
    """Why this call must not be answered from (or stored in) a cache, or None."""
    if call.scope is not None and call.scope.raw_response:  # with_raw_response: only the provider's own will do
        return "raw_response"
    if call.scope is not None and call.scope.beta and call.stream:  # replayed, it would be the plain API's events
        return "beta_stream"
    if cache_sampled or call.api in DETERMINISTIC_APIS:
        return None
    temperature = call.params.get("temperature")
    if temperature is None or not isinstance(temperature, int | float) or temperature > 0:
        return "sampled"
    n = call.params.get("n")
    if isinstance(n, int) and n > 1:
        return "sampled"
    return None


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
        min_distinct_users: int = 1,
    ) -> None:
        if not isinstance(namespace, str) or not namespace:
            raise ConfigError("namespace", "must be a non-empty str")
        self.namespace = namespace
        self.ttl_s = check_ttl("ttl_s", ttl_s)
        self.ttl_by_feature = check_ttl_map("ttl_by_feature", ttl_by_feature)
        self.ttl_by_route = check_ttl_map("ttl_by_route", ttl_by_route)
        self.cache_sampled = bool(cache_sampled)
        self.cache_tool_calls = bool(cache_tool_calls)
        self.sharing = Sharing.checked(min_distinct_users)

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


__all__ = [
    "DETERMINISTIC_APIS",
    "LABEL_TAGS",
    "NOT_CACHED_FINISH",
    "SAMPLED_WARN_AFTER",
    "CacheRules",
    "check_ttl",
    "check_ttl_map",
    "count_bypass",
    "request_skip_reason",
    "result_skip_reason",
]
