import pytest

import costkit
from costkit import Call, ConfigError, Result
from costkit._pipeline import Pipeline
from costkit.policies.context_budget import ContextBudget
from costkit.tokens import count_messages, count_text


def make_call(messages, **kw):
    return Call(provider="openai", api="chat.completions", requested_model="gpt-4o", model="gpt-4o",
                messages=tuple(messages), **kw)


def run(policy, call):
    seen = []

    def terminal(c):
        seen.append(c)
        return Result(text="ok")

    Pipeline([policy], terminal).run(call)
    return seen[0]


LONG = " ".join(f"word{i}" for i in range(400))


def conversation():
    msgs = [{"role": "system", "content": "You are a support agent."}]
    for i in range(10):
        msgs.append({"role": "user", "content": f"turn {i}: {LONG}"})
        msgs.append({"role": "assistant", "content": f"answer {i}: {LONG}"})
    msgs.append({"role": "user", "content": "And the refund policy?"})
    return msgs


def test_truncate_drops_oldest_turns_and_keeps_system_and_question():
    call = make_call(conversation())
    sent = run(ContextBudget(history=2000, on_over="truncate"), call)
    assert sent.messages[0]["content"] == "You are a support agent."
    assert sent.messages[-1]["content"] == "And the refund policy?"
    history = sent.messages[1:-1]
    assert sum(count_text(m["content"], "gpt-4o") + 4 for m in history) <= 2000
    assert history[-1]["content"].startswith("answer 9")  # the newest turns survive
    removed = count_messages(list(call.messages), "gpt-4o") - count_messages(list(sent.messages), "gpt-4o")
    assert sent.notes["tokens_removed"] == removed > 0


def test_truncate_cuts_retrieved_documents_to_their_share():
    docs = [{"role": "user", "name": "context", "content": f"{i} {LONG}"} for i in range(3)]
    call = make_call([*docs, {"role": "user", "content": "Summarize."}])
    sent = run(ContextBudget(retrieved=300, on_over="truncate"), call)
    assert len(sent.messages) == 4
    for m in sent.messages[:3]:
        assert m["content"].endswith(" [...]")
        assert count_text(m["content"], "gpt-4o") <= 100
    assert sent.messages[3]["content"] == "Summarize."


def test_tool_result_never_outlives_its_call():
    msgs = [
        {"role": "user", "content": f"old question {LONG}"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "t1", "type": "function",
                                                               "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "t1", "content": "result"},
        {"role": "assistant", "content": "done"},
        {"role": "user", "content": "next?"},
    ]
    sent = run(ContextBudget(history=50, on_over="truncate"), make_call(msgs))
    roles = [m["role"] for m in sent.messages]
    assert "tool" not in roles or roles[roles.index("tool") - 1] == "assistant"


def test_under_budget_is_untouched_and_output_is_capped():
    call = make_call([{"role": "user", "content": "hi"}], max_output_tokens=2000)
    sent = run(ContextBudget(history=1000, output=300), call)
    assert sent.messages is call.messages
    assert sent.max_output_tokens == 300
    assert "tokens_removed" not in sent.notes


@pytest.mark.parametrize(("kwargs", "field"), [({"history": -1}, "history"), ({"output": 1.5}, "output"),
                                               ({"classify": 3}, "classify"), ({"on_over": "cut"}, "on_over"),
                                               ({"retrieved": 0.5}, "retrieved"), ({"compressor": 1}, "compressor")])
def test_bad_budgets_name_the_field(kwargs, field):
    with pytest.raises(ConfigError) as err:
        ContextBudget(**kwargs)
    assert err.value.field == field


def test_truncate_saving_is_priced_by_the_recorder():
    from costkit.sinks import MemorySink
    from costkit.testing import FakeOpenAI, FakeProvider

    sink = MemorySink()
    policy = ContextBudget(history=500, on_over="truncate")
    client = costkit.wrap(FakeOpenAI(FakeProvider(default="ok")), policies=[policy], sink=sink)
    client.chat.completions.create(model="gpt-4o", messages=conversation())
    [rec] = sink.records
    assert rec.notes["tokens_removed"] > 0
    assert rec.savings["context_budget"] == pytest.approx(rec.notes["tokens_removed"] * 2.5e-6)


def test_compress_is_the_default_and_keeps_the_relevant_sentence():
    filler = " ".join(f"The archive lists item {i} as stored in hall {i % 7}." for i in range(40))
    docs = [
        {"role": "user", "name": "context", "content": filler},
        {"role": "user", "name": "context", "content": f"{filler} The refund window is 30 days from delivery."},
    ]
    call = make_call([*docs, {"role": "user", "content": "How long is the refund window?"}])
    sent = run(ContextBudget(retrieved=60), call)
    text = " ".join(m["content"] for m in sent.messages[:-1])
    assert "The refund window is 30 days from delivery." in text
    assert count_messages(list(sent.messages[:-1]), "gpt-4o") - 3 <= 60
    assert sent.notes["compression"]["layer"] == "context_budget"
    assert sent.notes["compression"]["strategies"]["retrieved"]["tokens_removed"] > 1000


def test_reject_names_the_section_over_budget():
    call = make_call(conversation())
    with pytest.raises(costkit.GuardrailViolation) as err:
        run(ContextBudget(history=100, on_over="reject"), call)
    assert err.value.rule == "context_budget.history" and err.value.limit == 100
    assert run(ContextBudget(history=100_000, on_over="reject"), call) is not None


def test_compress_summarizes_history_and_nets_the_summary_cost():
    from costkit.sinks import MemorySink
    from costkit.testing import FakeOpenAI, FakeProvider

    fake = FakeProvider(default="ok")
    fake.on(r"compress conversations|^user: turn", "Summary: ten turns of words.")
    sink = MemorySink()
    client = costkit.wrap(FakeOpenAI(fake), policies=[ContextBudget(history=2000)], sink=sink)
    client.chat.completions.create(model="gpt-4o", messages=conversation())
    summary, answer = sink.records
    assert (summary.kind, summary.model, answer.kind) == ("summary", "gpt-4o-mini", "call")
    history = answer.notes["compression"]["strategies"]["history"]
    assert history["summary_cost_usd"] == pytest.approx(summary.cost_usd)
    assert answer.savings["context_budget"] == pytest.approx(history["tokens_removed"] * 2.5e-6 - summary.cost_usd)
    assert answer.saved_usd == pytest.approx(sum(answer.savings.values()))
    assert "Summary of the earlier conversation:" in fake.last.messages[1]["content"]
    # the same conversation again: the summary comes from the store, nothing is paid for it
    client.chat.completions.create(model="gpt-4o", messages=conversation())
    assert [r.kind for r in sink.records[2:]] == ["call"]
    assert sink.records[2].notes["compression"]["strategies"]["history"]["summary_cached"] is True
