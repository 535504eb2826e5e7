"""@costkit.budgeted(..., batch=True): .map runs the function's calls as batch jobs."""

from __future__ import annotations

import pytest

import costkit
from costkit.testing import FakeOpenAI

from .conftest import FAST, MODEL


def test_map_runs_two_rounds_of_batches_and_keeps_the_scopes_budget(fake, sink, state):
    client = costkit.wrap(FakeOpenAI(fake), sink=sink)

    @costkit.budgeted(feature="nightly", max_usd_per_day=1.0, batch=True)
    def summarize(doc):
        first = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": doc}])
        second = client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "shorter: " + first.choices[0].message.content}]
        )
        return second.choices[0].message.content

    out = summarize.map(["a", "b", "c"], client=client, state=state, backoff=FAST)
    assert out == [f"Fake answer to: shorter: Fake answer to: {d}" for d in "abc"]
    assert [len(s.custom_ids) for s in fake.batch_api.submissions] == [3, 3]
    assert fake.count(api="chat") == 6  # all through the batch API, none interactive
    assert {(r.kind, r.feature) for r in sink.records} == {("batch", "nightly")}
    assert summarize.budget.spent_today() == pytest.approx(sum(r.cost_usd for r in sink.records), abs=1e-9)


def test_map_refuses_a_job_over_the_daily_limit(fake, state):
    client = costkit.wrap(FakeOpenAI(fake), sink=None)

    @costkit.budgeted(max_usd_per_day=0.00001, batch=True)
    def ask(q):
        return client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": q}], max_tokens=50)

    with pytest.raises(costkit.BudgetExceeded):
        ask.map([f"q{i}" for i in range(20)], client=client, state=state, backoff=FAST)
    assert not fake.batch_api.submissions


def test_batch_true_needs_a_sync_function():
    with pytest.raises(costkit.ConfigError, match="batch"):

        @costkit.budgeted(batch=True)
        async def f(x):
            return x
