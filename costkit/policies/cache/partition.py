"""Which entries a semantic lookup may see: the partition, and the text matched by meaning.

An entry can only match a call with the same tenant (and user if ``scope_user``), system prompt,
requested model, prompt_version, corpus_version, tool schema and every other output-changing
parameter, and by default the same earlier turns: the partition is the exact-cache key of the call
with its last user turn blanked, so it is exact, not approximate. Only the last user turn is
matched semantically (``history="ignore"`` matches it alone, earlier turns dropped).
"""

from __future__ import annotations

from collections.abc import Mapping

from ..._call import Call, content_text
from .keys import exact_key

_BLANK = "\x00costkit:semantic-turn\x00"


def last_user_index(call: Call) -> int | None:
    for i in range(len(call.messages) - 1, -1, -1):
        if call.messages[i].get("role") == "user":
            return i
    return None


def semantic_query(call: Call) -> str | None:
    """The text matched semantically: the last user turn, if it is plain text (images etc. are not matched)."""
    i = last_user_index(call)
    if i is None:
        return None
    content = call.messages[i].get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list | tuple) and all(
        isinstance(p, str) or (isinstance(p, Mapping) and p.get("type") in ("text", "input_text")) for p in content
    ):
        return content_text(content)
    return None


def partition_key(call: Call, *, scope_user: bool = False, namespace: str = "semantic", history: str = "exact") -> str:
    """Everything but the last user turn, hashed exactly: only entries with the same key can match."""
    i = last_user_index(call)
    messages = list(call.messages)
    if i is not None:
        messages[i] = {**messages[i], "content": _BLANK}
        if history == "ignore":
            messages = [m for j, m in enumerate(messages) if j >= i or m.get("role") in ("system", "developer")]
    return exact_key(call.evolve(messages=tuple(messages)), scope_user=scope_user, namespace=namespace)


__all__ = ["last_user_index", "partition_key", "semantic_query"]
