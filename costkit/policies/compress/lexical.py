"""Words for lexical relevance: lower-cased, stop words dropped, lightly stemmed; BM25 over them.

The stemmer only folds the English inflections that make a question and its answer spell a word
differently ("conquered" / "conquer", "battles" / "battle", "cities" / "city"); it never needs a
model or a download. BM25 itself is ``bm25s`` (sparse, numpy), imported on first use.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

import numpy as np

#: function words that carry no topic (a question's "what", "the", "did" match every sentence)
_STOPWORDS_TEXT = """
    a about above after again against all also am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further had
    has have having he her here hers herself him himself his how i if in into is it its itself just
    me more most my myself no nor not now of off on once only or other our ours ourselves out over
    own same she should so some such than that the their theirs them themselves then there these
    they this those through to too under until up very was we were what when where which while who
    whom why will with would you your yours yourself yourselves s t d ll m re ve y many much one
    ones whose else
"""
STOPWORDS = frozenset(_STOPWORDS_TEXT.split())

_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*", re.UNICODE)  # noqa: RUF001


@functools.lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """A light English stemmer: plural, possessive, -ing, -ed, -ly (stems of 3+ letters only)."""
    w = word
    if w.endswith(("'s", "’s")):  # noqa: RUF001
        w = w[:-2]
    if len(w) <= 3:
        return w
    if w.endswith("ies") and len(w) > 4:
        return w[:-3] + "y"
    if w.endswith("sses"):
        return w[:-2]
    if (w.endswith("es") and w[-3] in "sxz") or w.endswith(("ches", "shes")):
        return w[:-2]
    if w.endswith("s") and not w.endswith(("ss", "us", "is")):
        return w[:-1]
    for suffix in ("ingly", "edly", "ing", "ed", "ly"):
        if w.endswith(suffix) and len(w) - len(suffix) >= 3:
            w = w[: -len(suffix)]
            if len(w) > 3 and w[-1] == w[-2] and w[-1] not in "lsz":  # "stopped" -> "stop"
                w = w[:-1]
            return w
    return w


def words(text: str) -> list[str]:
    """Content words of ``text``: lower-cased, stop words dropped, stemmed."""
    out = []
    for m in _WORD.finditer(text.lower()):
        w = m.group(0)
        if w not in STOPWORDS:
            out.append(stem(w))
    return out


def bm25_scores(docs: Sequence[Sequence[str]], query: Sequence[str], *, k1: float = 1.5, b: float = 0.75) -> np.ndarray:
    """BM25 score of each of ``docs`` (word lists) for ``query`` (a word list); zeros if nothing matches."""
    n = len(docs)
    if n == 0:
        return np.zeros(0, dtype=np.float32)
    vocabulary = set(query)
    if not vocabulary or not any(vocabulary.intersection(d) for d in docs):
        return np.zeros(n, dtype=np.float32)
    import bm25s  # imported here: `import costkit` stays light

    # an empty document would make bm25s drop a row: give it a token no query can hold
    corpus = [list(d) if d else ["\x00"] for d in docs]
    retriever = bm25s.BM25(k1=k1, b=b, method="lucene")
    retriever.index(corpus, show_progress=False)
    return np.asarray(retriever.get_scores(list(query)), dtype=np.float32)


__all__ = ["STOPWORDS", "bm25_scores", "stem", "words"]
