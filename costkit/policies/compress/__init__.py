"""The prompt compressor: query-aware selection of retrieved context, token-level pruning, history
compaction with cached summaries, JSON-aware trimming of tool results and lossless normalization.

:class:`PromptCompressor` is the policy (``costkit.PromptCompressor``); ContextBudget uses it
when a section is over its budget. Another compressor plugs in through :class:`TextCompressor`.
"""

from __future__ import annotations

from .history import HistoryCompactor
from .policy import PromptCompressor
from .protocol import TextCompressor
from .ranking import Ranker, RankWeights
from .selector import SentenceSelector

__all__ = ["HistoryCompactor", "PromptCompressor", "RankWeights", "Ranker", "SentenceSelector", "TextCompressor"]
