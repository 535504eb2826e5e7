import json

import pytest

import costkit
from costkit import ConfigError, PromptCompressor
from costkit.sinks import MemorySink
from costkit.testing import FakeAsyncOpenAI, FakeOpenAI, FakeProvider
from costkit.tokens import count_messages

MODEL = "gpt-4o"
RATE = 2.5e-6  # gpt-4o input per token
FILLER = " ".join(f"The archive lists item {i} in hall {i % 7}." for i in range(60))
DOCS = [
    {"role": "user", "name": "context", "content": FILLER},
    {"role": "user", "name": "context", "content": FILLER + " The refund window is 30 days from delivery."},
    {"role": "user", "name": "context", "content": FILLER},  # an exact duplicate document
]
QUESTION = {"role": "user", "content": "How long is the refund window?"}


def wrapped(policy, fake=None):
    sink = MemorySink()
    fake = fake or FakeProvider(default="ok")
    return costkit.wrap(FakeOpenAI(fake), policies=[policy], sink=sink), fake, sink


def test_retrieved_context_keeps_the_answer_sentence_and_every_strategy_is_in_the_record():
    client, fake, sink = wrapped(PromptCompressor(retrieved=0.05))
    msgs = [{"role": "system", "content": "Answer  from   the context."}, *DOCS, QUESTION]
    client.chat.completions.create(model=MODEL, messages=msgs)
    sent = fake.last.messages
    assert sent[0]["content"] == "Answer from the context."  # white space normalized
    assert sent[-1] == QUESTION
    assert "The refund window is 30 days from delivery." in " ".join(m["content"] for m in sent[1:-1])
    [rec] = sink.records
    strategies = rec.notes["compression"]["strategies"]
    assert set(strategies) == {"normalize", "retrieved"}
    assert strategies["normalize"]["tokens_removed"] > 600  # the duplicate document went
    removed = count_messages(msgs, MODEL) - count_messages(list(sent), MODEL)
    assert rec.notes["tokens_removed"] == removed == sum(s["tokens_removed"] for s in strategies.values())
    assert rec.savings == {"compressor": pytest.approx(removed * RATE)}
    assert strategies["retrieved"]["saved_usd"] == pytest.approx(strategies["retrieved"]["tokens_removed"] * RATE)


def test_a_call_within_its_budgets_is_sent_unchanged():
    client, fake, sink = wrapped(PromptCompressor(retrieved=5000))
    msgs = [DOCS[1], QUESTION]
    client.chat.completions.create(model=MODEL, messages=msgs)
    assert list(fake.last.messages) == msgs
    assert "compression" not in sink.records[0].notes and not sink.records[0].savings


def test_tool_results_are_trimmed_as_json():
    rows = json.dumps({"rows": [{"id": i, "text": "x " * 200} for i in range(40)], "page": 1})
    msgs = [
        {"role": "user", "content": "find rows"},
        {"role": "assistant", "content": None,
         "tool_calls": [{"id": "t1", "type": "function", "function": {"name": "q", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "t1", "content": rows},
        {"role": "user", "content": "Which page?"},
    ]
    client, fake, sink = wrapped(PromptCompressor(tools=300))
    client.chat.completions.create(model=MODEL, messages=msgs)
    trimmed = json.loads(fake.last.messages[2]["content"])
    assert trimmed["page"] == 1 and trimmed["rows"][-1].endswith("more items")
    assert sink.records[0].notes["compression"]["strategies"]["tools"]["tokens_removed"] > 1000


def test_history_summary_is_paid_once_and_netted_from_the_saving():
    turns = []
    for i in range(12):
        turns += [{"role": "user", "content": f"question {i}: " + "details " * 150},
                  {"role": "assistant", "content": f"answer {i}: " + "reasons " * 150}]
    msgs = [{"role": "system", "content": "You help."}, *turns, {"role": "user", "content": "And now?"}]
    fake = FakeProvider(default="ok")
    fake.on(r"^user: question|compress conversations", "Summary: twelve questions and answers.")
    client, fake, sink = wrapped(PromptCompressor(history=1500), fake)
    client.chat.completions.create(model=MODEL, messages=msgs)
    summary, answer = sink.records
    assert summary.kind == "summary" and summary.cost_usd > 0
    history = answer.notes["compression"]["strategies"]["history"]
    assert history["summary_cost_usd"] == pytest.approx(summary.cost_usd)
    assert history["saved_usd"] == pytest.approx(history["tokens_removed"] * RATE - summary.cost_usd)
    strategies = answer.notes["compression"]["strategies"].values()
    assert answer.savings["compressor"] == pytest.approx(sum(s["saved_usd"] for s in strategies))
    assert count_messages(list(fake.last.messages[1:-1]), MODEL) - 3 <= 1500
    assert fake.count(model="gpt-4o-mini") == 1
    client.chat.completions.create(model=MODEL, messages=msgs)
    assert fake.count(model="gpt-4o-mini") == 1  # the stored summary is reused
    # the conversation goes on: the next summary extends the stored one
    longer = [*msgs[:-1], {"role": "assistant", "content": "fine"}, *turns[:4], {"role": "user", "content": "Next?"}]
    client.chat.completions.create(model=MODEL, messages=longer)
    assert "Summary of the earlier conversation" in fake.calls[-2].messages[-1]["content"]


def test_a_failed_summary_falls_back_to_dropping_old_turns():
    turns = [{"role": "user" if i % 2 == 0 else "assistant", "content": "words " * 300} for i in range(10)]
    fake = FakeProvider(default="ok")
    fake.fail_next(1, 400, model="gpt-4o-mini")
    client, fake, sink = wrapped(PromptCompressor(history=800), fake)
    with pytest.warns(UserWarning, match="summary request failed"):
        client.chat.completions.create(model=MODEL, messages=[*turns, {"role": "user", "content": "q?"}])
    answer = sink.records[-1]
    assert answer.notes["compression"]["strategies"]["history"]["dropped_messages"] > 0
    assert fake.last.model == MODEL


def test_a_batch_item_is_compressed_but_its_history_is_not_summarized():
    turns = [{"role": "user" if i % 2 == 0 else "assistant", "content": " ".join(["words"] * 300)} for i in range(10)]
    item = costkit.Call(provider="openai", client="openai", api="chat.completions", model=MODEL,
                        requested_model=MODEL, messages=(*turns, *DOCS, QUESTION), kind="batch")  # fmt: skip
    prepared = PromptCompressor(history=800, retrieved=0.2).batch_prepare(item)  # no chain: no summary call to make
    strategies = prepared.notes["compression"]["strategies"]
    assert "history" not in strategies and strategies["retrieved"]["tokens_removed"] > 0
    assert list(prepared.messages[:10]) == turns and prepared.messages[-1] == QUESTION
    dropping = PromptCompressor(history=800, summarize=False).batch_prepare(item)  # dropping old turns needs no call
    assert dropping.notes["compression"]["strategies"]["history"]["dropped_messages"] > 0


class FirstSentence:
    name = "first-sentence"

    def compress(self, texts, *, query, budget_tokens, count, overhead):
        return [t.split(". ")[0] + "." for t in texts[:1]] + [None] * (len(texts) - 1)


def test_a_plugged_compressor_is_used_and_one_over_budget_falls_back():
    client, fake, _ = wrapped(PromptCompressor(retrieved=100, compressor=FirstSentence(), normalize=False))
    client.chat.completions.create(model=MODEL, messages=[*DOCS, QUESTION])
    assert [m["content"] for m in fake.last.messages[:-1]] == ["The archive lists item 0 in hall 0."]

    class Greedy(FirstSentence):
        name = "greedy"

        def compress(self, texts, **kw):
            return list(texts)

    client, fake, _ = wrapped(PromptCompressor(retrieved=100, compressor=Greedy()))
    with pytest.warns(UserWarning, match="over the budget"):
        client.chat.completions.create(model=MODEL, messages=[*DOCS, QUESTION])
    assert count_messages(list(fake.last.messages[:-1]), MODEL) - 3 <= 100


async def test_async_client_compresses_the_same_way():
    fake = FakeProvider(default="ok")
    client = costkit.wrap(FakeAsyncOpenAI(fake), policies=[PromptCompressor(retrieved=0.05)])
    await client.chat.completions.create(model=MODEL, messages=[*DOCS, QUESTION])
    assert "refund window" in " ".join(m["content"] for m in fake.last.messages[:-1])


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"retrieved": 1.5}, "retrieved"), ({"history": -1}, "history"), ({"token_ratio": 0}, "token_ratio"),
    ({"min_relevance": 2}, "min_relevance"), ({"compressor": object()}, "compressor"),
    ({"summary_tokens": 3}, "summary_tokens"), ({"summary_store": {}}, "summary_store"),
])
def test_bad_configuration_names_the_field(kwargs, field):
    with pytest.raises(ConfigError) as err:
        PromptCompressor(**kwargs)
    assert err.value.field == field
