from __future__ import annotations

import costkit

Q = [{"role": "user", "content": "What is the refund window?"}]


def test_a_shadowed_cache_measures_hits_but_never_answers(fake_openai, cost_records) -> None:
    client = costkit.wrap(fake_openai, policies=[costkit.Shadow(costkit.ExactCache(store="memory"))], sink=cost_records)
    for _ in range(3):
        client.chat.completions.create(model="gpt-4o-mini", messages=Q, temperature=0)
    assert fake_openai.fake.count() == 3  # every call still reached the provider
    notes = [r.notes["shadow"] for r in cost_records.records]
    assert [n["would"] for n in notes] == ["pass", "answer", "answer"]
    assert notes[1] == {"policy": "ExactCache", "would": "answer", "source": "exact"}
    assert all(r.kind == "call" and r.saved_usd == 0 for r in cost_records.records)


def test_a_shadowed_compressor_sends_the_call_unchanged(fake_openai, cost_records) -> None:
    history = [
        {"role": "user" if i % 2 == 0 else "assistant", "content": f"turn {i} " + "words " * 200} for i in range(8)
    ]
    messages = [*history, {"role": "user", "content": "and now?"}]
    client = costkit.wrap(fake_openai, policies=[costkit.Shadow(costkit.ContextBudget(history=300))], sink=cost_records)
    client.chat.completions.create(model="gpt-4o", messages=messages)
    assert len(fake_openai.fake.last.messages) == len(messages)  # nothing was cut
    (record,) = [r for r in cost_records.records if r.kind == "call"]
    summaries = [r for r in cost_records.records if r.kind == "summary"]
    assert len(summaries) == 1  # the compressor's own request is made for real: the measure is net of it
    note = record.notes["shadow"]
    assert note["would"] == "change" and note["tokens_removed"] > 1000
    rate = costkit.pricing.default_pricebook().get("gpt-4o").input_per_token
    assert note["saved_usd"] == note["tokens_removed"] * float(rate)
    assert record.saved_usd == 0 and "tokens_removed" not in record.notes


async def test_async_shadow(fake_async_openai, cost_records) -> None:
    client = costkit.wrap(
        fake_async_openai, policies=[costkit.Shadow(costkit.ExactCache(store="memory"))], sink=cost_records
    )
    for _ in range(2):
        await client.chat.completions.create(model="gpt-4o-mini", messages=Q, temperature=0)
    assert fake_async_openai.fake.count() == 2
    assert [r.notes["shadow"]["would"] for r in cost_records.records] == ["pass", "answer"]
