"""The protocol another compressor implements to replace the default one for retrieved documents
(and a system prompt with a budget): LLMLingua-2, a reranker, an API.

A compressor gets the section's texts (one per message, in order), the query (the last user
turn), the token budget and how tokens are counted, and returns one text per input: the reduced
text, or None to drop that message. ``overhead[i]`` is what message ``i`` costs besides its text
(its framing): a dropped message saves it too. The returned texts, with the overhead of the
ones kept, must fit ``budget_tokens``; the policy checks, and falls back to the default
compressor if they do not (a plug-in never makes a call exceed its budget).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable


@runtime_checkable
class TextCompressor(Protocol):
    """Reduces texts to a token budget (see the module docstring)."""

    name: str

    def compress(
        self,
        texts: Sequence[str],
        *,
        query: str,
        budget_tokens: int,
        count: Callable[[str], int],
        overhead: Sequence[int],
    ) -> Sequence[str | None]: ...


__all__ = ["TextCompressor"]
