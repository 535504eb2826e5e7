"""Provider prompt caching as each provider bills it, for the fake provider.

**Anthropic** (explicit): a ``cache_control`` mark on a block (a tool, a system block, a message
content block) is a breakpoint; at most 4 per request (a 5th is a 400 error). For each breakpoint
the prefix up to it is looked up, and so are the prefixes ending at each of the 20 blocks before
it; the longest one cached is read (``cache_read_input_tokens``). The prefix up to the last
breakpoint is then written, the tokens past what was read (``cache_creation_input_tokens``), and
everything after the last breakpoint is plain input. A prefix shorter than the model's minimum
is never cached (no error). An entry lives 5 minutes from its last use (``"ttl": "1h"``: an hour).
The minimums per model and the other rules are in :mod:`costkit._provider_caching`.

**OpenAI** (automatic): any prompt of 1,024 tokens or more caches its prefixes; a later request
with the same model, the same ``prompt_cache_key`` (requests are routed to a cache by it) and the
same prefix reads the longest one seen, counted as 1,024 tokens plus whole 128-token steps
(``prompt_tokens_details.cached_tokens``). Prefixes are compared at message boundaries (tools
first), so a match that ends inside a message is not counted: the fake under-reports such hits,
never over-reports. Entries live 5 minutes from their last use (``prompt_cache_retention: "24h"``:
a day).

The clock is :func:`time.monotonic` unless one is given (tests move it to expire entries).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .._provider_caching import (
    ANTHROPIC_LOOKBACK_BLOCKS as LOOKBACK_BLOCKS,
)
from .._provider_caching import (
    ANTHROPIC_MAX_BREAKPOINTS as MAX_BREAKPOINTS,
)
from .._provider_caching import (
    ANTHROPIC_TTLS_S,
    OPENAI_MIN_TOKENS,
    OPENAI_RETENTION_S,
    OPENAI_STEP_TOKENS,
    anthropic_min_tokens,
)

DEFAULT_TTL_S = ANTHROPIC_TTLS_S["5m"]
Count = Callable[[Sequence[Mapping[str, Any]], Sequence[Mapping[str, Any]]], int]


def canonical(value: Any) -> str:
    """A stable text of a prefix with the cache marks left out (a mark does not change the content)."""
    return json.dumps(_without_marks(value), sort_keys=True, separators=(",", ":"), default=str)


def _without_marks(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _without_marks(v) for k, v in value.items() if k != "cache_control"}
    if isinstance(value, list | tuple):
        return [_without_marks(v) for v in value]
    return value


def _ttl(mark: Any) -> float:
    ttl = mark.get("ttl") if isinstance(mark, Mapping) else None
    return ANTHROPIC_TTLS_S.get(str(ttl), DEFAULT_TTL_S) if ttl is not None else DEFAULT_TTL_S


def anthropic_blocks(body: Mapping[str, Any]) -> list[tuple[list[Any], list[dict[str, Any]], Any]]:
    """Every block boundary of an Anthropic request in prompt order (tools, system, messages): the
    tools and system-first messages up to and including that block, and the block's cache mark."""
    out: list[tuple[list[Any], list[dict[str, Any]], Any]] = []
    tools = [t for t in body.get("tools") or () if isinstance(t, Mapping)]
    for i, t in enumerate(tools):
        out.append((tools[: i + 1], [], t.get("cache_control")))
    system = body.get("system")
    if isinstance(system, list):
        for i, b in enumerate(system):
            mark = b.get("cache_control") if isinstance(b, Mapping) else None
            out.append((tools, [{"role": "system", "content": system[: i + 1]}], mark))
    elif system:
        out.append((tools, [{"role": "system", "content": system}], None))
    head = [{"role": "system", "content": system}] if system else []
    messages = [dict(m) for m in body.get("messages") or () if isinstance(m, Mapping)]
    for mi, m in enumerate(messages):
        content = m.get("content")
        if isinstance(content, list):
            for bi, b in enumerate(content):
                mark = b.get("cache_control") if isinstance(b, Mapping) else None
                out.append((tools, [*head, *messages[:mi], {**m, "content": content[: bi + 1]}], mark))
        else:
            out.append((tools, [*head, *messages[: mi + 1]], None))
    return out


def count_breakpoints(body: Mapping[str, Any]) -> int:
    return sum(1 for _, _, mark in anthropic_blocks(body) if mark is not None)


class PrefixCache:
    """The fake provider's prompt cache: which prefixes are cached, until when (see the module docstring)."""

    def __init__(self, *, min_tokens: int | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.min_tokens = min_tokens  # None: each provider's own minimum
        self.clock = clock
        self._expires: dict[tuple[str, ...], float] = {}
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self._expires.clear()

    def _live(self, key: tuple[str, ...], now: float) -> bool:
        expiry = self._expires.get(key)
        return expiry is not None and expiry > now

    # ---- Anthropic
    def check_anthropic(self, body: Mapping[str, Any]) -> str | None:
        """The provider's 400 message for a request it refuses (too many breakpoints), or None."""
        n = count_breakpoints(body)
        if n > MAX_BREAKPOINTS:
            return f"A maximum of {MAX_BREAKPOINTS} blocks with cache_control may be provided. Found {n}."
        return None

    def anthropic(self, model: str, body: Mapping[str, Any], prompt_tokens: int, count: Count) -> tuple[int, int]:
        """(cache-read, cache-write) tokens of one request; caches what it writes."""
        blocks = anthropic_blocks(body)
        marks = [i for i, (_, _, mark) in enumerate(blocks) if mark is not None]
        if not marks:
            return 0, 0
        least = self.min_tokens or anthropic_min_tokens(model)
        sizes: dict[int, int] = {}

        def size(i: int) -> int:
            if i not in sizes:
                tools, msgs, _ = blocks[i]
                sizes[i] = min(count(msgs, tools), prompt_tokens)
            return sizes[i]

        def key(i: int) -> tuple[str, ...]:
            tools, msgs, _ = blocks[i]
            return ("anthropic", model, canonical([tools, msgs]))

        now = self.clock()
        with self._lock:
            read_at = -1
            for b in marks:
                for i in range(b, max(-1, b - LOOKBACK_BLOCKS - 1), -1):
                    if i > read_at and self._live(key(i), now):
                        read_at = i
                        break
            read = size(read_at) if read_at >= 0 else 0
            if read_at >= 0:  # a read refreshes the entry's lifetime
                self._expires[key(read_at)] = max(self._expires[key(read_at)], now + DEFAULT_TTL_S)
            last = marks[-1]
            write = 0
            for b in marks:
                if size(b) >= least and b > read_at:
                    self._expires[key(b)] = now + _ttl(blocks[b][2])
            if size(last) >= least and last > read_at:
                write = size(last) - read
        return read, write

    # ---- OpenAI
    def openai(
        self,
        model: str,
        body: Mapping[str, Any],
        messages: Sequence[Mapping[str, Any]],
        tools: Sequence[Mapping[str, Any]],
        prompt_tokens: int,
        count: Count,
    ) -> int:
        """Cached tokens of one request; caches its prefixes."""
        least = self.min_tokens or OPENAI_MIN_TOKENS
        if prompt_tokens < least:
            return 0
        partition = str(body.get("prompt_cache_key") or "")
        ttl = OPENAI_RETENTION_S.get(str(body.get("prompt_cache_retention")), DEFAULT_TTL_S)
        now = self.clock()
        best = 0
        with self._lock:
            for i in range(1, len(messages) + 1):
                k = ("openai", model, partition, canonical([list(tools), list(messages[:i])]))
                tokens = min(count(messages[:i], tools), prompt_tokens)
                if self._live(k, now):
                    best = max(best, tokens)
                if tokens >= least:
                    self._expires[k] = now + ttl
        if best < least:
            return 0
        return least + (best - least) // OPENAI_STEP_TOKENS * OPENAI_STEP_TOKENS


__all__ = [
    "PrefixCache",
    "anthropic_blocks",
    "canonical",
]
