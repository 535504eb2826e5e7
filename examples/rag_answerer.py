"""A retrieval-augmented answerer: the context budget trims what is retrieved, the semantic cache
answers questions already asked in other words, and each record says what each layer saved.

    python examples/rag_answerer.py

Questions about the SQuAD 2.0 article "Normans" (benchmarks/data/squad_context_dev.json,
CC BY-SA 4.0). A toy retriever sends the 8 paragraphs sharing the most words with the question
(1,300-1,500 tokens); ``costkit.ContextBudget(retrieved=250)`` keeps the sentences that matter for
the question. The fake provider answers only from what it is sent: the gold answer if it is still
in the context, else "The documents do not say." So a compression that cut the answer shows up as
a wrong answer. ``costkit.SemanticCache`` answers paraphrases of earlier questions; a near miss
that changes the meaning ("Latin" for "French") is vetoed and goes to the provider.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import costkit
from costkit.sinks import MemorySink
from costkit.testing import FakeOpenAI, FakeProvider, FakeRequest

DATA = Path(__file__).resolve().parents[1] / "benchmarks" / "data" / "squad_context_dev.json"
ARTICLE = next(a for a in json.loads(DATA.read_text())["data"] if a["title"] == "Normans")
PARAGRAPHS = [p["context"] for p in ARTICLE["paragraphs"]]
GOLD = {q["question"]: [a["text"] for a in q["answers"]] for p in ARTICLE["paragraphs"] for q in p["qas"]}
PARAPHRASES = {  # a user's wording -> the SQuAD question it means (for the fake's answer key only)
    "Which country is Normandy located in?": "In what country is Normandy located?",
    "Who was the leader of the Norse?": "Who was the Norse leader?",
    "When was the Duchy of Normandy established?": "When was the Duchy of Normandy founded?",
}


def words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z]+", text.lower()) if len(w) > 3}


def retrieve(question: str, k: int = 8) -> list[str]:
    return sorted(PARAGRAPHS, key=lambda p: -len(words(p) & words(question)))[:k]


def reader(req: FakeRequest) -> str:
    """The fake model: the gold answer when it is in the context it was sent."""
    context = " ".join(str(m["content"]) for m in req.messages if m.get("name") == "context")
    answers = GOLD.get(PARAPHRASES.get(req.last_user_text, req.last_user_text), [])
    return next((a for a in answers if a in context), "The documents do not say.")


fake = FakeProvider()
fake.on(reader)
records = MemorySink()
client = costkit.wrap(
    FakeOpenAI(fake),
    policies=[
        costkit.ExactCache(store="memory"),
        costkit.SemanticCache(max_false_hit_rate=0.02, history="ignore"),  # match the question alone
        costkit.ContextBudget(retrieved=250),
    ],
    sink=records,
)


def answer(question: str) -> str:
    messages = [
        {"role": "system", "content": "Answer in a few words from the documents."},
        *({"role": "user", "name": "context", "content": doc} for doc in retrieve(question)),
        {"role": "user", "content": question},
    ]
    # corpus_version is part of every cache key: re-indexing the documents makes old answers unreachable
    with costkit.tags(feature="docs_qa", corpus_version="normans-v1"):
        reply = client.chat.completions.create(model="gpt-4o", messages=messages, temperature=0)
    return reply.choices[0].message.content or ""


def main() -> None:
    traffic = [
        "In what country is Normandy located?",
        "Who was the Norse leader?",
        "When was the Duchy of Normandy founded?",
        "Who was the duke in the battle of Hastings?",
        "When was the Latin version of the word Norman first recorded?",
        "Who was the duke in the battle of Hastings?",  # word for word: the exact cache
        *PARAPHRASES,  # in other words: the semantic cache
        "When was the French version of the word Norman first recorded?",  # a near miss: vetoed
    ]
    saved: Counter[str] = Counter()
    wrong = 0
    for question in traffic:
        reply, record = answer(question), records.records[-1]  # one record per question here
        gold = GOLD[PARAPHRASES.get(question, question)] or ["The documents do not say."]
        wrong += reply not in gold
        saved.update(record.savings)
        how = record.cache if record.cache != "none" else f"{record.input_tokens} tokens sent"
        if record.cache == "semantic":
            how += f" (score {record.notes['score']:.2f} >= {record.notes['threshold']:.2f})"
        print(f"{question:<64} -> {reply:<26} {how:<34} cost ${record.cost_usd:.6f}  saved "
              + ", ".join(f"{layer} ${usd:.6f}" for layer, usd in record.savings.items()))

    print(f"\nprovider calls: {fake.count()}   cost records: {len(records.records)}   wrong answers: {wrong}")
    spent = sum(r.cost_usd or 0 for r in records.records)
    print(f"\nspent ${spent:.6f}; saved " + ", ".join(f"{k} ${v:.6f}" for k, v in saved.most_common())
          + f" (${sum(saved.values()):.6f}, {sum(saved.values()) / (spent + sum(saved.values())):.0%} of the bill)")


if __name__ == "__main__":
    main()
