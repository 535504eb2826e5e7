"""The default :class:`~.protocol.TextCompressor`: query-aware sentence selection, then (if asked)
token-level pruning of what was kept."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ...errors import ConfigError
from ._embedder import resolve_embedder
from .prune import prune_tokens
from .ranking import Ranker, RankWeights
from .select import select_sentences


class SentenceSelector:
    """Keeps the most relevant whole sentences (:func:`~.select.select_sentences`); with
    ``token_ratio`` set, selects for ``budget / token_ratio`` tokens and prunes the least
    informative words of what was kept down to the budget (:func:`~.prune.prune_tokens`).
    ``embedder``: None for the bundled one, False for words alone, or any embedder."""

    name = "sentences"

    def __init__(
        self,
        *,
        embedder: Any = None,
        weights: RankWeights | None = None,
        min_relevance: float = 0.15,
        gap: str = " … ",
        phrases: bool = False,
        token_ratio: float | None = None,
    ) -> None:
        if not isinstance(min_relevance, int | float) or not 0.0 <= min_relevance <= 1.0:
            raise ConfigError("min_relevance", f"must be within [0, 1], got {min_relevance!r}")
        if token_ratio is not None and (not isinstance(token_ratio, int | float) or not 0.0 < token_ratio <= 1.0):
            raise ConfigError("token_ratio", f"must be within (0, 1] or None, got {token_ratio!r}")
        if not isinstance(gap, str):
            raise ConfigError("gap", "must be a str")
        self.ranker = Ranker(embedder=resolve_embedder(embedder), weights=weights)
        self.min_relevance = float(min_relevance)
        self.gap = gap
        self.phrases = bool(phrases)
        self.token_ratio = token_ratio

    def compress(
        self,
        texts: Sequence[str],
        *,
        query: str,
        budget_tokens: int,
        count: Callable[[str], int],
        overhead: Sequence[int],
    ) -> list[str | None]:
        ratio = self.token_ratio
        if ratio is not None:
            chosen = self._select(texts, query, int(budget_tokens / ratio), count, overhead)
            pruned = _prune_to(chosen, budget_tokens, count, overhead, query)
            used = sum(count(t) + o for t, o in zip(pruned, overhead, strict=True) if t is not None)
            if used <= budget_tokens:
                return pruned
        return self._select(texts, query, budget_tokens, count, overhead)

    def _select(
        self, texts: Sequence[str], query: str, budget: int, count: Callable[[str], int], overhead: Sequence[int]
    ) -> list[str | None]:
        chosen = select_sentences(
            texts,
            query,
            budget,
            ranker=self.ranker,
            count=count,
            overhead=overhead,
            min_relevance=self.min_relevance,
            gap=self.gap,
            phrases=self.phrases,
        ).texts
        return list(chosen)


def _prune_to(
    chosen: list[str | None], budget_tokens: int, count: Callable[[str], int], overhead: Sequence[int], query: str
) -> list[str | None]:
    """Prune the least informative words of the kept texts by one factor, so they and their overhead fit the budget."""
    kept_tokens = sum(count(t) for t in chosen if t is not None)
    room = budget_tokens - sum(o for t, o in zip(chosen, overhead, strict=True) if t is not None)
    if kept_tokens <= room or kept_tokens == 0:
        return chosen
    factor = max(0.0, room / kept_tokens)
    return [None if t is None else prune_tokens(t, factor, count, query) for t in chosen]


__all__ = ["SentenceSelector"]
