"""Policies in the batch lane: the exact cache, guardrails, budgets, a compressor and the router, per item."""

from __future__ import annotations

import attrs
import pytest
from openai.types.chat import ChatCompletion

import costkit
from costkit import Budget, BudgetLimit, ExactCache, Guardrails, PromptCompressor, Router
from costkit.batch import BatchPrepare, ItemError, run, submit
from costkit.batch.hooks import find_policy, policy_tag
from costkit.testing import FakeOpenAI
from costkit.tokens import count_messages

from .conftest import FAST, MODEL, chat, map_batch_cost, map_interactive_cost


def test_the_exact_cache_answers_before_submission_and_stores_what_comes_back(fake, sink, state):
    cache = ExactCache(store="memory")
    client = costkit.wrap(FakeOpenAI(fake), policies=[cache], sink=sink)
    client.chat.completions.create(**chat(0, temperature=0))
    answers = run(client, "chat.completions.create", [chat(i, temperature=0) for i in range(3)] + [chat(9)],
                  state=state, progress=False, backoff=FAST)  # fmt: skip
    assert all(isinstance(a, ChatCompletion) for a in answers)
    (submission,) = fake.batch_api.submissions
    assert [b["messages"][0]["content"] for b in submission.bodies] == [
        "question number 1", "question number 2", "question number 9",
    ]  # fmt: skip
    kinds = [r.kind for r in sink.records]
    assert kinds.count("cache_hit") == 1 and kinds.count("batch") == 3
    hit = next(r for r in sink.records if r.kind == "cache_hit")
    assert hit.savings["exact"] == pytest.approx(sink.records[0].cost_usd)  # the original call's cost
    calls_before = fake.count(api="chat")
    again = client.chat.completions.create(**chat(2, temperature=0))  # stored from the batch
    assert fake.count(api="chat") == calls_before and again.choices[0].message.content.endswith("number 2")
    assert cache.stats["stored"] == 3  # the call's answer and two batch answers (item 9 is sampled)
    batch_cost = next(r.cost_usd for r in sink.records if r.kind == "batch" and r.notes["batch_item"] == 2)
    assert sink.records[-1].savings == {"exact": pytest.approx(batch_cost)}


def test_guardrails_clamp_each_item_at_batch_prices(fake, sink, state):
    guard = Guardrails(max_cost_usd=0.0001)
    client = costkit.wrap(FakeOpenAI(fake), policies=[guard], sink=sink)
    run(client, "chat.completions.create", [chat(i, max_tokens=10_000) for i in range(2)], state=state,
        progress=False, backoff=FAST)  # fmt: skip
    body = fake.batch_api.submissions[0].bodies[0]
    interactive_cap = (0.0001 - 11 * 1.5e-07) // 6e-07
    assert body["max_tokens"] > interactive_cap  # what fits at batch rates is about twice as much
    assert body["max_tokens"] == int((0.0001 - 11 * 7.5e-08) / 3e-07 + 1e-9)
    assert sink.records[0].notes["clamped"]["max_output_tokens"]["by"] == ["max_cost_usd"]


def test_a_guardrail_refusal_refuses_that_item_only(fake, state, sink):
    client = costkit.wrap(FakeOpenAI(fake), policies=[Guardrails(max_input_tokens=12)], sink=sink)
    requests = [chat(0), {"model": MODEL, "messages": [{"role": "user", "content": "word " * 50}]}]
    first, second = run(client, "chat.completions.create", requests, state=state, progress=False, backoff=FAST)
    assert isinstance(first, ChatCompletion)
    assert isinstance(second, ItemError) and second.kind == "refused"
    assert isinstance(second.exception, costkit.GuardrailViolation) and second.exception.rule == "max_input_tokens"
    assert len(fake.batch_api.submissions[0].custom_ids) == 1


def test_a_budget_holds_the_whole_jobs_worst_case_at_batch_prices_and_settles_per_item(fake, sink, state):
    budget = Budget([BudgetLimit(usd=0.01)])
    client = costkit.wrap(FakeOpenAI(fake), policies=[budget], sink=sink)
    limits = costkit.batch.Limits(max_requests=5, max_bytes=10_000, one_model=True)
    requests = [chat(i, max_tokens=100) for i in range(10)]
    job = submit(client, "chat.completions.create", requests, state=state, backoff=FAST, limits=limits)
    usage = budget.backend.usage(budget.key_for(budget.limits[0]))
    prompt = count_messages(chat(0)["messages"], MODEL)
    per_item = prompt * 7.5e-08 + 100 * 3e-07  # every prompt token and 100 output tokens, at batch rates
    assert usage.reserved == pytest.approx(10 * per_item * 1e9, abs=20)
    job.wait()
    usage = budget.backend.usage(budget.key_for(budget.limits[0]))
    assert usage.reserved == 0
    assert budget.spent(budget.limits[0]) == pytest.approx(sum(r.cost_usd for r in sink.records), abs=1e-9)


def test_a_job_that_does_not_fit_the_budget_is_refused_whole(fake, state):
    budget = Budget([BudgetLimit(usd=0.0002)])
    client = costkit.wrap(FakeOpenAI(fake), policies=[budget], sink=None)
    with pytest.raises(costkit.BudgetExceeded):
        submit(client, "chat.completions.create", [chat(i, max_tokens=100) for i in range(10)], state=state)
    assert not fake.batch_api.submissions
    assert budget.backend.usage(budget.key_for(budget.limits[0])).reserved == 0


@attrs.frozen
class Shorten:
    """A stand-in prompt compressor: drops the words 'number' from user messages."""

    def handle(self, call, next):
        return next(self.batch_prepare(call))

    async def ahandle(self, call, anext):
        return await anext(self.batch_prepare(call))

    def batch_prepare(self, call):
        messages = tuple({**m, "content": m["content"].replace(" number", "")} for m in call.messages)
        return call.evolve(messages=messages, notes={**call.notes, "tokens_removed": 1})


def test_a_compressor_runs_per_item_and_its_saving_is_priced_at_batch_rates(fake, sink, state):
    assert isinstance(Shorten(), BatchPrepare)
    client = costkit.wrap(FakeOpenAI(fake), policies=[Shorten()], sink=sink)
    (answer,) = run(client, "chat.completions.create", [chat(3)], state=state, progress=False, backoff=FAST)
    assert answer.choices[0].message.content == "Fake answer to: question 3"
    assert fake.batch_api.submissions[0].bodies[0]["messages"] == [{"role": "user", "content": "question 3"}]
    (record,) = sink.records
    assert record.savings["context_budget"] == pytest.approx(7.5e-08)
    assert record.cost_usd == pytest.approx(map_batch_cost(MODEL, record.input_tokens, record.output_tokens))


def test_the_router_sends_each_item_to_the_model_it_chooses_one_file_per_model(fake, sink, state):
    router = Router.tiers({"faq": "gpt-4o-mini"}, by="feature")
    client = costkit.wrap(FakeOpenAI(fake), policies=[router], sink=sink)
    asks = [{**chat(i), "model": "gpt-4o", "costkit": {"feature": "faq" if i % 2 else "legal"}} for i in range(4)]
    answers = run(client, "chat.completions.create", asks, state=state, progress=False, backoff=FAST)
    assert [a.model for a in answers] == ["gpt-4o", "gpt-4o-mini", "gpt-4o", "gpt-4o-mini"]
    files = sorted(([b["model"] for b in s.bodies], len(s.bodies)) for s in fake.batch_api.submissions)
    assert files == [(["gpt-4o"] * 2, 2), (["gpt-4o-mini"] * 2, 2)]  # OpenAI takes one model per input file
    for r in sorted(sink.records, key=lambda r: r.notes["batch_item"]):
        if r.notes["batch_item"] % 2 == 0:
            assert (r.model, r.route, "router" in r.savings) == ("gpt-4o", None, False)
            continue
        assert (r.model, r.route, r.notes["routed_from"]) == ("gpt-4o-mini", "faq", "gpt-4o")
        tokens = (r.input_tokens, r.output_tokens)
        batch_mini = map_batch_cost(MODEL, *tokens)
        assert r.cost_usd == pytest.approx(batch_mini, abs=1e-12)
        assert r.savings["router"] == pytest.approx(map_batch_cost("gpt-4o", *tokens) - batch_mini)
        assert r.savings["batch"] == pytest.approx(map_interactive_cost(MODEL, *tokens) - batch_mini)


@pytest.mark.parametrize("router", [
    Router.tiers({"faq": MODEL}, by="feature", shadow=True),
    Router.cascade([MODEL, "gpt-4o"], gate=lambda call, result: True),  # the gate needs an answer first
], ids=["shadow", "cascade"])  # fmt: skip
def test_a_shadow_router_or_a_cascade_leaves_items_as_asked(fake, sink, state, router):
    client = costkit.wrap(FakeOpenAI(fake), policies=[router], sink=sink)
    run(client, "chat.completions.create", [{**chat(0), "model": "gpt-4o", "costkit": {"feature": "faq"}}],
        state=state, progress=False, backoff=FAST)  # fmt: skip
    assert [b["model"] for b in fake.batch_api.submissions[0].bodies] == ["gpt-4o"]


def test_the_prompt_compressor_shortens_retrieved_context_per_item_at_batch_rates(fake, sink, state):
    paragraphs = [f"Paragraph {i} is about the harbour of town {i} and its old fishing boats." for i in range(12)]
    context = "\n\n".join([*paragraphs, "The lighthouse of Brest was built in 1834 by the navy."])
    ask = {"model": MODEL, "messages": [
        {"role": "system", "content": "Answer from the context."},
        {"role": "user", "name": "context", "content": context},  # a retrieved section, by name
        {"role": "user", "content": "When was the lighthouse of Brest built?"},
    ]}  # fmt: skip
    plain = costkit.wrap(FakeOpenAI(fake), sink=None)
    run(plain, "chat.completions.create", [ask], state=state + ".plain", progress=False, backoff=FAST)
    client = costkit.wrap(FakeOpenAI(fake), policies=[PromptCompressor(retrieved=0.2)], sink=sink)
    run(client, "chat.completions.create", [ask], state=state, progress=False, backoff=FAST)
    whole, short = (s.bodies[0]["messages"][1]["content"] for s in fake.batch_api.submissions)
    assert "built in 1834" in short and len(short) < len(whole) / 2  # the answer's sentence is kept
    (record,) = sink.records
    removed = record.notes["compression"]["strategies"]["retrieved"]["tokens_removed"]
    assert removed > 0 and record.savings["compressor"] == pytest.approx(removed * 0.075e-6)  # batch input rate


def test_tickets_name_their_policy_by_place_and_class():
    policies = (Guardrails(), ExactCache(store="memory"))
    assert find_policy(policies, policy_tag(1, policies[1])) is policies[1]
    assert find_policy(policies, "1:Budget") is None and find_policy(policies, "7:ExactCache") is None
