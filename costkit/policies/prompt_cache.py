"""PromptCache: let the provider's prompt cache work, and say when the prompt's order defeats it.

Providers bill a prompt prefix they have seen recently at a fraction of the input rate (Anthropic
reads at 0.1x after a 1.25x write; OpenAI at its cached rate, automatically). Two things decide
whether an application gets that discount: whether the cache is asked for, and whether the
stable part of the prompt comes first.

* **Anthropic**: ``cache_control`` breakpoints are added at the end of the tools, of the system
  prompt, of a document prefix this feature has sent before, and (in a conversation) at the last
  turn before the question, so the next turn reads the whole conversation. A breakpoint is added
  only where the prefix up to it reaches the model's minimum cacheable length, and never past 4
  in all (the user's own marks count).
* **OpenAI**: caching is automatic; ``prompt_cache_key`` is set to the call's feature (or what
  ``cache_key(call)`` returns) so requests of one feature reach the same cache.
* **Every provider**: per feature, the share of input tokens in a prefix that repeats an earlier
  call's (:meth:`report`), and a warning, once per feature, when content that repeats across
  calls comes after content that changes (a timestamp or the retrieved documents first): the
  provider can only cache a prefix.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from .._call import Call
from .._pipeline import Flow, FlowPolicy
from .._provider_caching import ANTHROPIC_MAX_BREAKPOINTS, anthropic_min_tokens
from .._warn import warn_once
from ..errors import ConfigError
from .compress.sections import RETRIEVED_NAMES, last_user_index

TTLS = ("5m", "1h")


@attrs.frozen(kw_only=True, slots=True)
class PrefixStability:
    """How cacheable one feature's prompts are.

    ``repeated_prefix_tokens``: input tokens in a prefix (whole messages, tools first) that an
    earlier call of the feature also sent; ``stable_after_dynamic_tokens``: tokens of messages
    that repeat across calls but come after one that changed (lost to the prefix cache).
    """

    feature: str
    calls: int
    input_tokens: int
    repeated_prefix_tokens: int
    stable_after_dynamic_tokens: int

    @property
    def repeated_share(self) -> float:
        return self.repeated_prefix_tokens / self.input_tokens if self.input_tokens else 0.0


def _digest(value: Any) -> str:
    doc = json.dumps(_unmarked(value), sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)
    return hashlib.blake2b(doc.encode(), digest_size=12).hexdigest()


def _unmarked(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _unmarked(v) for k, v in value.items() if k != "cache_control"}
    if isinstance(value, list | tuple):
        return [_unmarked(v) for v in value]
    return value


def _marked(content: Any, mark: Mapping[str, Any]) -> Any:
    """``content`` (a str or a list of blocks) with ``mark`` on its last block."""
    if isinstance(content, str):
        return [{"type": "text", "text": content, "cache_control": dict(mark)}]
    if isinstance(content, list) and content and isinstance(content[-1], Mapping):
        return [*content[:-1], {**content[-1], "cache_control": dict(mark)}]
    return None


def _has_mark(value: Any) -> int:
    if isinstance(value, Mapping):
        return int("cache_control" in value) + sum(_has_mark(v) for v in value.values())
    if isinstance(value, list | tuple):
        return sum(_has_mark(v) for v in value)
    return 0


class _Feature:
    def __init__(self, window: int) -> None:
        self.recent: deque[tuple[str, ...]] = deque(maxlen=window)
        self.seen: set[str] = set()
        self.calls = 0
        self.input_tokens = 0
        self.repeated = 0
        self.stable_after_dynamic = 0


class PromptCache(FlowPolicy):
    """Provider prompt caching (see the module docstring)."""

    def __init__(
        self,
        *,
        anthropic: bool = True,
        openai: bool = True,
        cache_key: Callable[[Call], str | None] | None = None,
        ttl: str = "5m",
        min_tokens: int | None = None,
        warn: bool = True,
        warn_min_tokens: int = 256,
        window: int = 32,
        max_features: int = 1000,
    ) -> None:
        if ttl not in TTLS:
            raise ConfigError("ttl", f"must be one of {', '.join(TTLS)}, got {ttl!r}")
        if cache_key is not None and not callable(cache_key):
            raise ConfigError("cache_key", "must be a callable(call) -> str or None")
        for field, value in (("window", window), ("max_features", max_features), ("warn_min_tokens", warn_min_tokens)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(field, f"must be an int >= 1, got {value!r}")
        if min_tokens is not None and (
            isinstance(min_tokens, bool) or not isinstance(min_tokens, int) or min_tokens < 1
        ):
            raise ConfigError("min_tokens", f"must be an int >= 1 or None, got {min_tokens!r}")
        self.anthropic = anthropic
        self.openai = openai
        self.cache_key = cache_key or (lambda call: call.tags.feature)
        self.mark = {"type": "ephemeral"} if ttl == "5m" else {"type": "ephemeral", "ttl": ttl}
        self.min_tokens = min_tokens
        self.warn = warn
        self.warn_min_tokens = warn_min_tokens
        self.window = window
        self.max_features = max_features
        self._features: OrderedDict[str, _Feature] = OrderedDict()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"PromptCache(anthropic={self.anthropic}, openai={self.openai})"

    def flow(self, call: Call) -> Flow:
        from ..tokens import count_messages, count_tools

        model = call.model
        tools = [t for t in call.params.get("tools") or () if isinstance(t, Mapping)]
        sizes = [count_tools([t], model) for t in tools] + [count_messages([m], model) - 3 for m in call.messages]
        blocks = [_digest(t) for t in tools] + [_digest(m) for m in call.messages]
        documents_seen = self._observe(call, blocks, sizes)
        if self.anthropic and self._is_anthropic(call):
            call = self.add_breakpoints(call, documents_seen)
        elif self.openai and call.provider == "openai" and "prompt_cache_key" not in call.params:
            key = self.cache_key(call)
            if key:
                call = call.evolve(params={**call.params, "prompt_cache_key": key})
        return (yield call)

    @staticmethod
    def _is_anthropic(call: Call) -> bool:
        if call.provider == "anthropic":
            return True
        return call.provider == "litellm" and "claude" in call.model.lower()

    # ------------------------------------------------------------------ Anthropic breakpoints
    def add_breakpoints(self, call: Call, documents_seen: bool = False) -> Call:
        """``call`` with ``cache_control`` marks at the ends of its stable prefixes (see the module docstring)."""
        from ..tokens import count_messages, count_tools

        model = call.model
        least = self.min_tokens or anthropic_min_tokens(model)
        messages = list(call.messages)
        tools = [dict(t) for t in call.params.get("tools") or () if isinstance(t, Mapping)]
        room = ANTHROPIC_MAX_BREAKPOINTS - _has_mark(messages) - _has_mark(tools)
        if room <= 0 or not messages:
            return call
        question = last_user_index(messages)
        tools_tokens = count_tools(tools, model)

        def prefix_tokens(end: int) -> int:  # tools + messages[:end]
            return tools_tokens + (count_messages(messages[:end], model) - 3 if end else 0)

        candidates: list[tuple[int, str, int]] = []  # (priority, where, message index or -1 for tools)
        roles = [m.get("role") for m in messages[:question]]
        system_end = max((i + 1 for i, r in enumerate(roles) if r in ("system", "developer")), default=0)
        if system_end and prefix_tokens(system_end) >= least:
            candidates.append((0, "system", system_end - 1))
        conversation = question > system_end and "assistant" in roles
        if conversation and prefix_tokens(question) >= least:
            candidates.append((1, "history", question - 1))
        if tools and tools_tokens >= least:
            candidates.append((2, "tools", -1))
        if documents_seen:
            docs = [i for i in range(question) if messages[i].get("name") in RETRIEVED_NAMES]
            if docs and prefix_tokens(docs[-1] + 1) >= least:
                candidates.append((3, "documents", docs[-1]))
        chosen = sorted(candidates)[:room]
        if not chosen:
            return call
        params = dict(call.params)
        for _, where, index in chosen:
            if where == "tools":
                tools[-1] = {**tools[-1], "cache_control": dict(self.mark)}
                params["tools"] = tools
                continue
            content = _marked(messages[index].get("content"), self.mark)
            if content is not None:
                messages[index] = {**messages[index], "content": content}
        return call.evolve(messages=tuple(messages), params=params)

    # ------------------------------------------------------------------ stability
    def _observe(self, call: Call, blocks: Sequence[str], sizes: Sequence[int]) -> bool:
        """Update the feature's figures; True if this call's documents were sent before."""
        name = call.tags.feature or "(no feature)"
        with self._lock:
            feature = self._features.get(name)
            if feature is None:
                feature = self._features[name] = _Feature(self.window)
                while len(self._features) > self.max_features:
                    self._features.popitem(last=False)
            self._features.move_to_end(name)
            longest = 0
            for earlier in feature.recent:
                n = 0
                while n < min(len(earlier), len(blocks)) and earlier[n] == blocks[n]:
                    n += 1
                longest = max(longest, n)
            after = sum(s for b, s in zip(blocks[longest:], sizes[longest:], strict=True) if b in feature.seen)
            first_call = feature.calls == 0
            documents_seen = bool(feature.recent) and longest > 0
            feature.calls += 1
            feature.input_tokens += sum(sizes)
            feature.repeated += sum(sizes[:longest])
            feature.stable_after_dynamic += after
            feature.recent.append(tuple(blocks))
            feature.seen.update(blocks)
        if self.warn and not first_call and after >= self.warn_min_tokens:
            warn_once(
                f"prompt_cache:order:{name}",
                f"costkit: feature {name!r} sends {after} tokens that repeat across calls after content that "
                "changes; providers cache only a prompt's prefix: put the stable part (instructions, tools, "
                "fixed documents) first and the per-call content last",
            )
        return documents_seen

    def report(self) -> dict[str, PrefixStability]:
        """Per feature: how much of its input repeats as a prefix (see :class:`PrefixStability`)."""
        with self._lock:
            return {
                name: PrefixStability(
                    feature=name,
                    calls=f.calls,
                    input_tokens=f.input_tokens,
                    repeated_prefix_tokens=f.repeated,
                    stable_after_dynamic_tokens=f.stable_after_dynamic,
                )
                for name, f in self._features.items()
            }


__all__ = ["PrefixStability", "PromptCache"]
