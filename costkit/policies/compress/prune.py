"""Token-level compression (Selective-Context style): drop the words that carry least information.

A word's information is its self-information in English, ``-log2 p(word)``, with ``p`` from the
word frequencies ``wordfreq`` ships in its wheel (no model, no download): "the", "of", "was" carry
a few bits, "Hastings" or "1066" twenty or more. Words are dropped from the least informative up
until the text is at ``ratio`` of its tokens. Never dropped: words of the query, numbers, words
that start with a capital letter inside a sentence (names), and punctuation. The result is terse,
not grammatical: use it where tokens matter more than prose (background documents), not for text
the model must quote.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable

from .lexical import stem, words

_TOKEN = re.compile(r"\s*\S+")
_WORDLIKE = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")  # noqa: RUF001


@functools.lru_cache(maxsize=65536)
def information_bits(word: str) -> float:
    """Self-information of a word in English, in bits (rare and unknown words: 30)."""
    from wordfreq import word_frequency  # imported here: it loads its tables on first use

    p = word_frequency(word.lower(), "en")
    return -math.log2(p) if p > 0 else 30.0


def _protected(piece: str, query_stems: set[str], first: bool) -> bool:
    m = _WORDLIKE.search(piece)
    if m is None:
        return True  # punctuation or symbols: structure, keep
    w = m.group(0)
    if any(ch.isdigit() for ch in w):
        return True
    if w[0].isupper() and not first:
        return True
    return stem(w.lower()) in query_stems


def prune_tokens(text: str, ratio: float, count: Callable[[str], int], query: str = "") -> str:
    """``text`` with its least informative words dropped until it is at most ``ratio`` of its tokens
    (or every droppable word is gone)."""
    if ratio >= 1.0 or not text.strip():
        return text
    pieces = _TOKEN.findall(text)
    target = math.floor(count(text) * ratio)
    query_stems = set(words(query))
    candidates = []
    sentence_start = True
    for i, piece in enumerate(pieces):
        if not _protected(piece, query_stems, sentence_start):
            m = _WORDLIKE.search(piece)
            assert m is not None
            candidates.append((information_bits(m.group(0)), i))
        sentence_start = piece.rstrip().endswith((".", "!", "?", ":"))
    candidates.sort()
    dropped: set[int] = set()
    # drop in batches (counting is the slow part), then check the real token count
    step = max(1, len(candidates) // 20)
    out = text
    for k in range(0, len(candidates), step):
        dropped.update(i for _, i in candidates[k : k + step])
        out = "".join(p for i, p in enumerate(pieces) if i not in dropped).strip()
        if count(out) <= target:
            break
    return out


__all__ = ["information_bits", "prune_tokens"]
