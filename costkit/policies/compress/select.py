"""Query-aware selection: keep the most relevant whole sentences of a set of documents that fit a
token budget, in document order.

Sentences are ranked (:class:`~.ranking.Ranker`), then taken greedily from the most relevant
down: one that does not fit is skipped and smaller ones below it may still fit. A sentence under
``min_relevance`` is never kept, even with budget left. A document none of whose sentences is kept
is dropped whole (its message framing costs tokens too). Within a document the kept sentences
keep their order; a gap between two of them is marked with ``gap`` so the reader knows text was
cut there. A sentence longer than the whole budget could never be kept whole, so it alone is
split into clauses (and a clause still too long into word windows). With ``phrases=True``,
budget left over after whole sentences is filled with the most relevant clauses of the sentences
not kept (this cuts sentences, so it is off by default).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import attrs
import numpy as np

from .ranking import Ranker
from .sentences import Span, phrase_spans, sentence_spans

Counter = Callable[[str], int]


@attrs.frozen(slots=True)
class _Unit:
    doc: int
    span: Span
    score: float
    cost: int


@attrs.frozen(kw_only=True, slots=True)
class Selection:
    """What survived: each document's new text (None: dropped) and how many units were kept."""

    texts: tuple[str | None, ...]
    kept_units: int
    total_units: int


def _windows(text: str, base: int, limit: int, count: Counter) -> list[Span]:
    """Word windows of at most ``limit`` tokens covering ``text`` (offsets shifted by ``base``)."""
    out: list[Span] = []
    start = 0
    for m in re.finditer(r"\S+\s*", text):
        if m.end() > start and count(text[start : m.end()]) > limit and m.start() > start:
            out.append(Span(base + start, base + m.start()))
            start = m.start()
    if start < len(text):
        out.append(Span(base + start, base + len(text)))
    return out


def _fitting_spans(doc: str, budget: int, count: Counter) -> list[Span]:
    """The document's sentences; one longer than ``budget`` split into clauses, then word windows."""
    out: list[Span] = []
    for s in sentence_spans(doc):
        if count(s.of(doc)) <= budget:
            out.append(s)
            continue
        for p in phrase_spans(s.of(doc)):
            part = Span(s.start + p.start, s.start + p.end)
            if count(part.of(doc)) <= budget:
                out.append(part)
            else:
                out.extend(_windows(part.of(doc), part.start, max(1, budget // 2), count))
    return out


def _render(doc: str, spans: list[Span], gap: str) -> str:
    spans = sorted(spans, key=lambda s: s.start)
    out: list[str] = []
    for i, s in enumerate(spans):
        if i and s.start != spans[i - 1].end:
            out.append(gap)
        out.append(doc[s.start : s.end] if i == 0 or s.start == spans[i - 1].end else doc[s.start : s.end].lstrip())
    return "".join(out).strip()


def _total(docs: Sequence[str], kept: dict[int, list[Span]], count: Counter, overhead: Sequence[int], gap: str) -> int:
    return sum(count(_render(docs[d], spans, gap)) + overhead[d] for d, spans in kept.items() if spans)


def select_sentences(
    docs: Sequence[str],
    query: str,
    budget_tokens: int,
    *,
    ranker: Ranker,
    count: Counter,
    overhead: Sequence[int] | None = None,
    min_relevance: float = 0.0,
    gap: str = " … ",
    phrases: bool = False,
) -> Selection:
    """Each document reduced to its most relevant sentences so that the documents' tokens
    (``count(text) + overhead[i]`` for each one kept) stay within ``budget_tokens``."""
    overhead = list(overhead) if overhead is not None else [0] * len(docs)
    spans = [_fitting_spans(d, budget_tokens, count) for d in docs]
    flat = [(d, s) for d, ss in enumerate(spans) for s in ss]
    if not flat:
        return Selection(texts=tuple(None for _ in docs), kept_units=0, total_units=0)
    texts = [s.of(docs[d]).strip() for d, s in flat]
    scores = ranker.score(query, texts, [d for d, _ in flat], docs)
    units = [_Unit(d, s, float(sc), count(t)) for (d, s), t, sc in zip(flat, texts, scores, strict=True)]
    gap_cost = count(gap.strip()) if gap.strip() else 0
    kept: dict[int, list[Span]] = {}
    kept_scores: list[tuple[float, int, Span]] = []
    used = 0

    def take(candidates: list[_Unit]) -> None:
        nonlocal used
        for u in sorted(candidates, key=lambda u: -u.score):  # stable: ties keep document order
            if u.score < min_relevance:
                break
            extra = u.cost + (gap_cost if u.doc in kept else overhead[u.doc])
            if used + extra <= budget_tokens:
                kept.setdefault(u.doc, []).append(u.span)
                kept_scores.append((u.score, u.doc, u.span))
                used += extra

    take(units)
    if phrases and used < budget_tokens:
        chosen = {(d, s) for d, ss in kept.items() for s in ss}
        rest = [u for u in units if (u.doc, u.span) not in chosen and u.score >= min_relevance]
        parts = [
            (u.doc, Span(u.span.start + p.start, u.span.start + p.end))
            for u in rest
            for p in phrase_spans(u.span.of(docs[u.doc]))
        ]
        if parts:
            ptexts = [s.of(docs[d]).strip() for d, s in parts]
            pscores = ranker.score(query, ptexts, [d for d, _ in parts], docs)
            take([_Unit(d, s, float(sc), count(t)) for (d, s), t, sc in zip(parts, ptexts, pscores, strict=True)])
    # token counts of joined text can differ from the sum of the parts: drop the weakest until it fits
    kept_scores.sort(key=lambda x: x[0])
    while kept and _total(docs, kept, count, overhead, gap) > budget_tokens:
        _, d, s = kept_scores.pop(0)
        kept[d].remove(s)
        if not kept[d]:
            del kept[d]
    out = tuple(_render(docs[d], kept[d], gap) if d in kept else None for d in range(len(docs)))
    return Selection(texts=out, kept_units=sum(len(v) for v in kept.values()), total_units=len(units))


def relevance_order(scores: np.ndarray) -> list[int]:
    """Indices from most to least relevant (ties in document order)."""
    return [int(i) for i in np.argsort(-scores, kind="stable")]


__all__ = ["Selection", "relevance_order", "select_sentences"]
