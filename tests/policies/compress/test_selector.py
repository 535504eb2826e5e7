from costkit.policies.compress.ranking import Ranker
from costkit.policies.compress.select import select_sentences
from costkit.policies.compress.selector import SentenceSelector
from costkit.tokens import count_text

DOCS = [
    "Rollo was the first duke of Normandy and ruled from 911. The weather was mild that year. "
    "Markets opened on Mondays. The duke granted land to his followers in the Seine valley.",
    "Sky is a broadcaster. Its studios are in London. It was founded in 1989.",
]


def count(text):
    return count_text(text, "gpt-4o")


def test_token_ratio_fits_more_sentences_in_the_same_budget():
    query = "What did the first duke Rollo grant?"
    plain = SentenceSelector(embedder=False).compress(DOCS, query=query, budget_tokens=30, count=count, overhead=[0, 0])
    pruned = SentenceSelector(embedder=False, token_ratio=0.6).compress(
        DOCS, query=query, budget_tokens=30, count=count, overhead=[0, 0]
    )
    assert sum(count(t) for t in pruned if t) <= 30
    assert "Seine" in (pruned[0] or "") and "Rollo" in (pruned[0] or "")
    assert plain == list(select_sentences(DOCS, query, 30, ranker=Ranker(embedder=None), count=count,
                                          min_relevance=0.15).texts)
