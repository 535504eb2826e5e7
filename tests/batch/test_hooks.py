"""Policies in the batch lane: the exact cache, guardrails, budgets and a compressor, per item."""

from __future__ import annotations

import attrs
import pytest
from openai.types.chat import ChatCompletion

import costkit
from costkit import Budget, BudgetLimit, ExactCache, Guardrails
from costkit.batch import BatchPrepare, ItemError, run, submit
from costkit.batch.hooks import find_policy, policy_tag
from costkit.testing import FakeOpenAI
from costkit.tokens import count_messages

from .conftest import FAST, MODEL, chat, map_batch_cost


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


def test_tickets_name_their_policy_by_place_and_class():
    policies = (Guardrails(), ExactCache(store="memory"))
    assert find_policy(policies, policy_tag(1, policies[1])) is policies[1]
    assert find_policy(policies, "1:Budget") is None and find_policy(policies, "7:ExactCache") is None
