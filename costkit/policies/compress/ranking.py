"""Relevance of text units (sentences, phrases) to the query, lexical and semantic combined.

Three signals, each scaled to [0, 1] within the call so no one's units dominate:

* **lexical**: BM25 of the unit against the query's content words (:mod:`.lexical`);
* **chunk**: BM25 of the unit's whole chunk (its document): a sentence in the document that is
  about the question counts more than the same words in a passing mention ("rank chunks, then
  sentences");
* **semantic**: cosine similarity of the unit and the query with the bundled static embedder,
  min-max scaled (catches paraphrase that shares no word with the question).

The score is their weighted mean, in [0, 1]. The default weights (1, 0.5, 0.5) put the exact
words first and let the other two break ties; docs/compression.md has the measurements and the
data split they were chosen on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
import numpy as np

from ...errors import ConfigError
from .lexical import bm25_scores, words


def _weight(_inst: Any, attr: attrs.Attribute[Any], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(f"weights.{attr.name}", f"must be a number >= 0, got {value!r}")


@attrs.frozen(kw_only=True, slots=True)
class RankWeights:
    """How much each relevance signal counts (see the module docstring)."""

    lexical: float = attrs.field(default=1.0, validator=_weight)
    chunk: float = attrs.field(default=0.5, validator=_weight)
    semantic: float = attrs.field(default=0.5, validator=_weight)

    @property
    def total(self) -> float:
        return self.lexical + self.chunk + self.semantic


def _scaled_max(x: np.ndarray) -> np.ndarray:
    top = float(x.max()) if x.size else 0.0
    return x / top if top > 0 else np.zeros_like(x)


def _scaled_range(x: np.ndarray) -> np.ndarray:
    if not x.size:
        return x
    lo, hi = float(x.min()), float(x.max())
    return (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)


class Ranker:
    """Scores units for a query; ``embedder=None`` ranks on words alone."""

    def __init__(self, *, embedder: Any = None, weights: RankWeights | None = None) -> None:
        self.embedder = embedder
        self.weights = weights or RankWeights()
        if self.weights.total <= 0:
            raise ConfigError("weights", "at least one weight must be > 0")

    def score(self, query: str, units: Sequence[str], chunk_of: Sequence[int], chunks: Sequence[str]) -> np.ndarray:
        """Relevance in [0, 1] of each unit; ``chunk_of[i]`` is the index in ``chunks`` of unit i's chunk."""
        n = len(units)
        if n == 0:
            return np.zeros(0, dtype=np.float32)
        w = self.weights
        q = words(query)
        total = np.zeros(n, dtype=np.float32)
        if w.lexical:
            total += w.lexical * _scaled_max(bm25_scores([words(u) for u in units], q))
        if w.chunk and len(chunks) > 1:
            per_chunk = _scaled_max(bm25_scores([words(c) for c in chunks], q))
            total += w.chunk * per_chunk[np.asarray(chunk_of, dtype=np.int64)]
        weight = w.lexical + (w.chunk if len(chunks) > 1 else 0.0)
        if w.semantic and self.embedder is not None and query.strip():
            vectors = self.embedder([*units, query])
            total += w.semantic * _scaled_range(vectors[:-1] @ vectors[-1])
            weight += w.semantic
        return total / weight if weight > 0 else total


__all__ = ["RankWeights", "Ranker"]
