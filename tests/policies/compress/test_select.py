from costkit.policies.compress.ranking import Ranker
from costkit.policies.compress.select import select_sentences
from costkit.tokens import count_text

DOCS = [
    "The Normans came from Normandy. They spoke French. Rollo was their first duke.",
    "Sky is a broadcaster. It is owned by Comcast.",
    "Paris is in France. The duke Rollo signed a treaty in 911 with the king.",
]


def count(text):
    return count_text(text, "gpt-4o")


def test_keeps_whole_relevant_sentences_in_document_order_within_the_budget():
    sel = select_sentences(DOCS, "Who was the first duke of Normandy?", 30, ranker=Ranker(), count=count,
                           overhead=[5, 5, 5])
    kept = [t for t in sel.texts if t is not None]
    assert sum(count(t) + 5 for t in kept) <= 30
    assert "Rollo was their first duke." in sel.texts[0]
    assert sel.texts[1] is None  # nothing relevant: the whole document goes
    assert sel.total_units == 7


def test_gap_marks_cut_text_and_min_relevance_drops_weak_sentences():
    sel = select_sentences(DOCS, "first duke Rollo", 1000, ranker=Ranker(embedder=None), count=count,
                           min_relevance=0.5)
    assert sel.texts[1] is None
    assert sel.texts[0] == "Rollo was their first duke."
    loose = select_sentences(DOCS, "first duke Rollo", 1000, ranker=Ranker(embedder=None), count=count,
                             min_relevance=0.0)
    assert loose.texts[0] == DOCS[0]  # everything fits: the document comes back whole


def test_a_sentence_longer_than_the_budget_is_split_rather_than_lost():
    long = " ".join(f"word{i}" for i in range(300)) + " refund policy applies."
    sel = select_sentences([long], "refund policy", 40, ranker=Ranker(embedder=None), count=count)
    assert sel.texts[0] is not None and "refund policy" in sel.texts[0]
    assert count(sel.texts[0]) <= 40


def test_phrases_fill_leftover_budget_only_when_asked():
    docs = ["Rollo signed the treaty in 911 with the king at Saint-Clair on the Epte.",
            "The treaty of 911, as chroniclers tell, gave Rollo the land; the king kept his crown and court."]
    query = "When did Rollo sign the treaty?"
    first = count(docs[0])
    whole = select_sentences(docs, query, first + 12, ranker=Ranker(embedder=None), count=count)
    parts = select_sentences(docs, query, first + 12, ranker=Ranker(embedder=None), count=count, phrases=True)
    assert whole.texts == (docs[0], None)
    assert parts.texts[0] == docs[0] and parts.texts[1] is not None and parts.texts[1] not in docs
    assert count(parts.texts[0]) + count(parts.texts[1]) <= first + 12
