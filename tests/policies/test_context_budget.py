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


def test_history_drops_oldest_turns_and_keeps_system_and_question():
    call = make_call(conversation())
    sent = run(ContextBudget(history=2000), call)
    assert sent.messages[0]["content"] == "You are a support agent."
    assert sent.messages[-1]["content"] == "And the refund policy?"
    history = sent.messages[1:-1]
    assert sum(count_text(m["content"], "gpt-4o") + 4 for m in history) <= 2000
    assert history[-1]["content"].startswith("answer 9")  # the newest turns survive
    removed = count_messages(list(call.messages), "gpt-4o") - count_messages(list(sent.messages), "gpt-4o")
    assert sent.notes["tokens_removed"] == removed > 0


def test_retrieved_documents_are_cut_to_their_share():
    docs = [{"role": "user", "name": "context", "content": LONG} for _ in range(3)]
    call = make_call([*docs, {"role": "user", "content": "Summarize."}])
    sent = run(ContextBudget(retrieved=300), call)
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
    sent = run(ContextBudget(history=50), make_call(msgs))
    roles = [m["role"] for m in sent.messages]
    assert "tool" not in roles or roles[roles.index("tool") - 1] == "assistant"


def test_under_budget_is_untouched_and_output_is_capped():
    call = make_call([{"role": "user", "content": "hi"}], max_output_tokens=2000)
    sent = run(ContextBudget(history=1000, output=300), call)
    assert sent.messages is call.messages
    assert sent.max_output_tokens == 300
    assert "tokens_removed" not in sent.notes


@pytest.mark.parametrize(("kwargs", "field"), [({"history": -1}, "history"), ({"output": 1.5}, "output"),
                                               ({"classify": 3}, "classify")])
def test_bad_budgets_name_the_field(kwargs, field):
    with pytest.raises(ConfigError) as err:
        ContextBudget(**kwargs)
    assert err.value.field == field


def test_saving_is_priced_by_the_recorder():
    from costkit.sinks import MemorySink
    from costkit.testing import FakeOpenAI, FakeProvider

    sink = MemorySink()
    client = costkit.wrap(FakeOpenAI(FakeProvider(default="ok")), policies=[ContextBudget(history=500)], sink=sink)
    client.chat.completions.create(model="gpt-4o", messages=conversation())
    [rec] = sink.records
    assert rec.notes["tokens_removed"] > 0
    assert rec.savings["context_budget"] == pytest.approx(rec.notes["tokens_removed"] * 2.5e-6)
