"""The worst case of a call: what Guardrails, Budget and @budgeted reserve on, from the request as sent."""

from __future__ import annotations

import pytest

import costkit
from costkit._call import Call
from costkit._estimate import WorstCase, WorstCaseEstimator
from costkit.errors import BudgetExceeded
from costkit.pricing import PriceBook
from costkit.sinks import MemorySink
from costkit.testing import FakeOpenAI

LONG = "word " * 5000


def book() -> PriceBook:
    b = PriceBook(base=None, cost_map={})
    b.register("m", input_per_million=10, output_per_million=30, max_output_tokens=1000)
    return b


def call(**params: object) -> Call:
    return Call(
        provider="openai",
        api="chat.completions",
        requested_model="m",
        model="m",
        messages=({"role": "user", "content": "hi"},),
        params=params,
        max_output_tokens=50,
    )


def test_n_answers_each_spend_the_output_cap() -> None:
    est = WorstCaseEstimator(book())
    one, eight = est.estimate(call(), 100), est.estimate(call(n=8), 100)
    assert one.usd == pytest.approx(100 * 10e-6 + 50 * 30e-6)
    assert eight.usd == pytest.approx(100 * 10e-6 + 8 * 50 * 30e-6)
    assert (eight.choices, eight.tokens) == (8, 100 + 400)
    assert est.estimate(call(n=True), 100).choices == 1  # a bool is not a count


def test_a_budget_refuses_n_8_that_only_fits_as_n_1() -> None:
    """The reported bypass: $0.002 budget, gpt-4o, n=8, max_tokens=50 spent $0.004."""
    sink = MemorySink()
    raw = FakeOpenAI()
    raw.fake.set_default(LONG)
    client = costkit.wrap(raw, [costkit.Budget([costkit.BudgetLimit(usd=0.002)])], sink=sink)
    q = [{"role": "user", "content": "Say a lot."}]
    with pytest.raises(BudgetExceeded):
        client.chat.completions.create(model="gpt-4o", messages=q, n=8, max_tokens=50)
    assert raw.fake.calls == []
    reply = client.chat.completions.create(model="gpt-4o", messages=q, n=1, max_tokens=50)
    assert reply.usage.completion_tokens == 50
    assert sum(r.cost_usd or 0 for r in sink.records) <= 0.002


@pytest.mark.parametrize(
    "extra_body",
    [{"max_tokens": 4000}, {"max_completion_tokens": 4000}, {"max_tokens": 4000, "max_completion_tokens": 4000}],
)
def test_output_caps_in_extra_body_are_clamped_and_reserved_for(extra_body: dict) -> None:
    """The reported bypass: extra_body's cap overrode the clamp and one call spent 15x the limit."""
    sink = MemorySink()
    raw = FakeOpenAI()
    raw.fake.set_default(LONG)
    limit = 0.002
    client = costkit.wrap(
        raw,
        [costkit.Guardrails(max_output_tokens=100), costkit.Budget([costkit.BudgetLimit(usd=limit)])],
        sink=sink,
    )
    q = [{"role": "user", "content": "Say a lot."}]
    reply = client.chat.completions.create(model="gpt-4o", messages=q, max_tokens=50, extra_body=dict(extra_body))
    (sent,) = raw.fake.calls
    for name in extra_body:
        assert sent.body[name] == 100  # the clamp reached the body, under every name the caller used
    assert reply.usage.completion_tokens == 100
    assert sink.records[0].notes["clamped"]["max_output_tokens"] == {
        "from": 4000,
        "to": 100,
        "by": ["max_output_tokens"],
    }
    spent = 0.0
    for _ in range(20):  # spend up to the limit: never past it
        try:
            client.chat.completions.create(model="gpt-4o", messages=q, extra_body=dict(extra_body))
        except BudgetExceeded:
            break
    spent = sum(r.cost_usd or 0 for r in sink.records)
    assert spent <= limit


def test_a_model_in_extra_body_is_the_model_the_layers_see() -> None:
    """The SDK sends extra_body's model: pricing, routing and budgets must see that one."""
    sink = MemorySink()
    raw = FakeOpenAI()
    client = costkit.wrap(raw, sink=sink)
    client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], extra_body={"model": "gpt-4o"}
    )
    assert raw.fake.calls[0].body["model"] == "gpt-4o"
    assert sink.records[0].requested_model == "gpt-4o" and sink.records[0].model == "gpt-4o"


def test_not_given_sentinels_are_accepted_as_not_passed() -> None:
    import openai

    raw = FakeOpenAI()
    client = costkit.wrap(raw, [costkit.Guardrails(max_output_tokens=20)], sink=None)
    q = [{"role": "user", "content": "hi"}]
    client.chat.completions.create(model="gpt-4o", messages=q, max_tokens=openai.NOT_GIVEN)
    client.chat.completions.create(model="gpt-4o", messages=q, max_tokens=openai.omit, temperature=openai.omit)
    client.responses.create(model="gpt-4o", input="hi", max_output_tokens=openai.omit)
    assert [c.body.get("max_completion_tokens", c.body.get("max_output_tokens")) for c in raw.fake.calls] == [
        20,
        20,
        20,
    ]


# ------------------------------------------------------------------ every field of the estimate, exactly
# A long-context model in LiteLLM's format: $1/$2 per million, $2/$4 above 200k prompt tokens;
# batch $0.5/$1, and $1/$2 above 200k. Its output ceiling is 1,000 tokens.
TIERED = {
    "tiered": {
        "input_cost_per_token": 1e-6,
        "output_cost_per_token": 2e-6,
        "input_cost_per_token_above_200k_tokens": 2e-6,
        "output_cost_per_token_above_200k_tokens": 4e-6,
        "input_cost_per_token_batches": 0.5e-6,
        "output_cost_per_token_batches": 1e-6,
        "input_cost_per_token_above_200k_tokens_batches": 1e-6,
        "output_cost_per_token_above_200k_tokens_batches": 2e-6,
        "max_output_tokens": 1000,
        "litellm_provider": "openai",
        "mode": "chat",
    },
    "no-ceiling": {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6, "mode": "chat"},
}


def tiered_call(model: str = "tiered", cap: int | None = 100, kind: str = "call", **params: object) -> Call:
    return Call(
        provider="openai",
        api="chat.completions",
        requested_model=model,
        model=model,
        messages=({"role": "user", "content": "hi"},),
        params=params,
        max_output_tokens=cap,
        kind=kind,  # type: ignore[arg-type]
    )


def test_the_estimate_of_a_call_with_its_own_cap() -> None:
    est = WorstCaseEstimator(PriceBook(base=None, cost_map=TIERED))
    worst = est.estimate(tiered_call(n=2), 1_000)
    assert worst == WorstCase(
        model="tiered",
        input_tokens=1_000,
        max_output_tokens=100,
        output_cap_from="call",
        usd=pytest.approx(1_000 * 1e-6 + 2 * 100 * 2e-6, abs=1e-15),
        input_usd=pytest.approx(1_000 * 1e-6, abs=1e-15),
        output_per_token=2e-6,
        choices=2,
    )
    # another cap (what Guardrails tries while fitting a limit) wins over the call's
    other = est.estimate(tiered_call(), 1_000, max_output_tokens=10)
    assert (other.max_output_tokens, other.output_cap_from) == (10, "call")
    assert other.usd == pytest.approx(1_000 * 1e-6 + 10 * 2e-6, abs=1e-15)


def test_without_a_cap_the_estimate_uses_the_models_ceiling() -> None:
    est = WorstCaseEstimator(PriceBook(base=None, cost_map=TIERED))
    worst = est.estimate(tiered_call(cap=None), 1_000)
    assert (worst.max_output_tokens, worst.output_cap_from) == (1_000, "model")
    assert worst.usd == pytest.approx(1_000 * 1e-6 + 1_000 * 2e-6, abs=1e-15)
    assert worst.tokens == 2_000


def test_without_a_cap_or_a_ceiling_the_worst_case_is_unknown() -> None:
    est = WorstCaseEstimator(PriceBook(base=None, cost_map=TIERED))
    worst = est.estimate(tiered_call(model="no-ceiling", cap=None, n=3), 500)
    assert worst == WorstCase(
        model="no-ceiling", input_tokens=500, max_output_tokens=None, output_cap_from=None, usd=None, choices=3
    )
    assert worst.tokens == 500


def test_an_unpriced_model_has_no_worst_case_in_dollars() -> None:
    est = WorstCaseEstimator(PriceBook(base=None, cost_map=TIERED))
    worst = est.estimate(tiered_call(model="mystery", n=2), 700)
    assert worst == WorstCase(
        model="mystery", input_tokens=700, max_output_tokens=100, output_cap_from="call", usd=None, choices=2
    )
    assert worst.tokens == 700 + 2 * 100


def test_a_long_prompt_is_estimated_at_its_tier() -> None:
    est = WorstCaseEstimator(PriceBook(base=None, cost_map=TIERED))
    worst = est.estimate(tiered_call(), 250_000)
    assert worst.usd == pytest.approx(250_000 * 2e-6 + 100 * 4e-6, abs=1e-12)


@pytest.mark.parametrize(
    ("input_tokens", "input_rate", "output_rate"),
    [(1_000, 0.5e-6, 1e-6), (250_000, 1e-6, 2e-6)],  # the batch rates, and the batch rates of the long-context tier
)
def test_a_batch_item_is_estimated_at_batch_rates(input_tokens: int, input_rate: float, output_rate: float) -> None:
    est = WorstCaseEstimator(PriceBook(base=None, cost_map=TIERED))
    worst = est.estimate(tiered_call(kind="batch", n=3), input_tokens)
    assert worst.usd == pytest.approx(input_tokens * input_rate + 3 * 100 * output_rate, abs=1e-12)
    assert worst.input_usd == pytest.approx(input_tokens * input_rate, abs=1e-12)
    assert worst.output_per_token == output_rate
    assert (worst.model, worst.max_output_tokens, worst.output_cap_from, worst.choices) == ("tiered", 100, "call", 3)
