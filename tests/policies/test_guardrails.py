"""Guardrails: token and cost limits checked before the call; clamps are recorded, rejections raise."""

from __future__ import annotations

from typing import Any

import pytest

from costkit import tokens
from costkit._call import Call, Result, Usage
from costkit._pipeline import Pipeline
from costkit._warn import CostkitWarning
from costkit.errors import ConfigError, GuardrailViolation
from costkit.policies.guardrails import Guardrails, WorstCaseEstimator, count_tool_steps, record_clamp
from costkit.pricing import PriceBook

MESSAGES = ({"role": "system", "content": "You answer briefly."}, {"role": "user", "content": "What is 2 + 2?"})


def book() -> PriceBook:
    b = PriceBook(base=None, cost_map={})
    b.register("strong", input_per_million=10, output_per_million=30, max_output_tokens=1000)
    return b


def make_call(max_tokens: int | None = 1000, messages: tuple[Any, ...] = MESSAGES, model: str = "strong") -> Call:
    return Call(
        provider="openai",
        api="chat",
        requested_model=model,
        model=model,
        messages=messages,
        max_output_tokens=max_tokens,
    )


class Provider:
    def __init__(self) -> None:
        self.calls: list[Call] = []

    def __call__(self, call: Call) -> Result:
        self.calls.append(call)
        return Result(text="4", usage=Usage(input_tokens=10, output_tokens=1))

    async def acall(self, call: Call) -> Result:
        return self(call)


def run(g: Guardrails, call: Call) -> tuple[Provider, Call]:
    provider = Provider()
    Pipeline([g], provider).run(call)
    return provider, provider.calls[0]


N_IN = tokens.count_messages(list(MESSAGES), "strong")  # the prompt, as the guardrail counts it
INPUT_USD = N_IN * 10e-6


def test_prompt_token_count_is_the_tokenizers() -> None:
    assert WorstCaseEstimator(book()).input_tokens(make_call()) == N_IN


def test_output_cap_is_clamped_and_recorded() -> None:
    _, sent = run(Guardrails(max_output_tokens=200), make_call(1000))
    assert sent.max_output_tokens == 200
    assert sent.notes["clamped"] == {"max_output_tokens": {"from": 1000, "to": 200, "by": ["max_output_tokens"]}}


def test_a_call_without_a_cap_gets_the_limit_as_its_cap() -> None:
    for mode in ("clamp", "reject"):
        _, sent = run(Guardrails(max_output_tokens=200, on_over=mode), make_call(None))
        assert sent.max_output_tokens == 200
        assert sent.notes["clamped"]["max_output_tokens"]["from"] is None


def test_a_call_within_the_limits_is_untouched() -> None:
    call = make_call(100)
    _, sent = run(Guardrails(max_output_tokens=200, max_cost_usd=1.0, pricing=book()), call)
    assert sent is call


def test_reject_mode_refuses_an_over_cap_call() -> None:
    provider = Provider()
    with pytest.raises(GuardrailViolation) as e:
        Pipeline([Guardrails(max_output_tokens=200, on_over="reject")], provider).run(make_call(1000))
    assert e.value.rule == "max_output_tokens" and (e.value.limit, e.value.actual) == (200, 1000)
    assert provider.calls == []


def test_too_long_a_prompt_is_rejected_in_both_modes() -> None:
    for mode in ("clamp", "reject"):
        with pytest.raises(GuardrailViolation) as e:
            run(Guardrails(max_input_tokens=N_IN - 1, on_over=mode), make_call())
        assert e.value.rule == "max_input_tokens" and e.value.actual == N_IN
    _, sent = run(Guardrails(max_input_tokens=N_IN), make_call())
    assert "clamped" not in sent.notes


def test_tools_count_toward_the_prompt() -> None:
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}}]
    call = make_call().evolve(params={"tools": tools})
    assert WorstCaseEstimator(book()).input_tokens(call) == N_IN + tokens.count_tools(tools, "strong")


def test_cost_limit_clamps_max_tokens_to_what_fits() -> None:
    limit = INPUT_USD + 300 * 30e-6  # room for exactly 300 output tokens
    g = Guardrails(max_cost_usd=limit, pricing=book())
    _, sent = run(g, make_call(1000))
    assert sent.max_output_tokens == 300
    assert sent.notes["clamped"] == {"max_output_tokens": {"from": 1000, "to": 300, "by": ["max_cost_usd"]}}
    fits, over = book().worst_case_cost("strong", N_IN, 300), book().worst_case_cost("strong", N_IN, 301)
    assert fits is not None and over is not None and fits <= limit < over


def test_cost_limit_uses_the_models_ceiling_when_the_call_sets_no_cap() -> None:
    limit = INPUT_USD + 400 * 30e-6
    _, sent = run(Guardrails(max_cost_usd=limit, pricing=book()), make_call(None))  # worst: 1000 from the map
    assert sent.max_output_tokens == 400
    assert sent.notes["clamped"]["max_output_tokens"] == {"from": None, "to": 400, "by": ["max_cost_usd"]}
    # within the ceiling: nothing to clamp, no cap added
    _, sent = run(Guardrails(max_cost_usd=1.0, pricing=book()), make_call(None))
    assert sent.max_output_tokens is None


def test_cost_limit_reject_mode() -> None:
    limit = INPUT_USD + 300 * 30e-6
    with pytest.raises(GuardrailViolation) as e:
        run(Guardrails(max_cost_usd=limit, on_over="reject", pricing=book()), make_call(1000))
    assert e.value.rule == "max_cost_usd"
    assert e.value.actual == pytest.approx(INPUT_USD + 1000 * 30e-6, abs=1e-12)


def test_when_not_even_min_output_tokens_fit_the_call_is_refused() -> None:
    with pytest.raises(GuardrailViolation, match="even 1 output tokens"):
        run(Guardrails(max_cost_usd=INPUT_USD, pricing=book()), make_call(1000))
    with pytest.raises(GuardrailViolation, match="even 50 output tokens"):
        run(Guardrails(max_cost_usd=INPUT_USD + 49 * 30e-6, min_output_tokens=50, pricing=book()), make_call(1000))


def test_both_rules_clamp_into_one_note() -> None:
    limit = INPUT_USD + 300 * 30e-6
    _, sent = run(Guardrails(max_output_tokens=500, max_cost_usd=limit, pricing=book()), make_call(1000))
    assert sent.notes["clamped"] == {
        "max_output_tokens": {"from": 1000, "to": 300, "by": ["max_output_tokens", "max_cost_usd"]}
    }


def test_an_earlier_clamp_keeps_its_origin() -> None:
    call = record_clamp(make_call(1000), 1000, 500, ["max_output_tokens"])
    call = record_clamp(call, 500, 300, ["max_cost_usd"])
    assert call.notes["clamped"]["max_output_tokens"] == {
        "from": 1000,
        "to": 300,
        "by": ["max_output_tokens", "max_cost_usd"],
    }


def test_unpriced_model_is_allowed_with_one_warning_or_rejected() -> None:
    with pytest.warns(CostkitWarning, match="costkit.pricing.register"):
        _, sent = run(Guardrails(max_cost_usd=0.01, pricing=book()), make_call(1000, model="mystery"))
    assert sent.max_output_tokens == 1000
    with pytest.raises(GuardrailViolation, match="no price"):
        run(Guardrails(max_cost_usd=0.01, on_unpriced="reject", pricing=book()), make_call(model="mystery"))


OPENAI_LOOP = (
    {"role": "user", "content": "weather?"},
    {"role": "assistant", "content": None, "tool_calls": [{"id": "1", "type": "function"}]},
    {"role": "tool", "tool_call_id": "1", "content": "sunny"},
    {"role": "assistant", "content": None, "tool_calls": [{"id": "2", "type": "function"}]},
    {"role": "tool", "tool_call_id": "2", "content": "warm"},
)
ANTHROPIC_LOOP = (
    {"role": "user", "content": "weather?"},
    {"role": "assistant", "content": [{"type": "text", "text": "let me look"}, {"type": "tool_use", "id": "t1"}]},
    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "sunny"}]},
)


def test_tool_steps_are_counted_in_both_shapes() -> None:
    assert count_tool_steps(OPENAI_LOOP) == 2
    assert count_tool_steps(ANTHROPIC_LOOP) == 1
    assert count_tool_steps(MESSAGES) == 0


def test_max_tool_steps() -> None:
    run(Guardrails(max_tool_steps=2), make_call(messages=OPENAI_LOOP))
    with pytest.raises(GuardrailViolation) as e:
        run(Guardrails(max_tool_steps=1), make_call(messages=OPENAI_LOOP))
    assert e.value.rule == "max_tool_steps" and e.value.actual == 2


async def test_async_path_is_the_same_logic() -> None:
    provider = Provider()
    await Pipeline([Guardrails(max_output_tokens=200)], provider, provider.acall).arun(make_call(1000))
    assert provider.calls[0].max_output_tokens == 200
    with pytest.raises(GuardrailViolation):
        await Pipeline([Guardrails(max_output_tokens=200, on_over="reject")], provider, provider.acall).arun(
            make_call(1000)
        )


def test_a_clamp_reaches_the_cost_record() -> None:
    import costkit
    from costkit.sinks.memory import MemorySink
    from costkit.testing import FakeOpenAI, FakeProvider

    sink = MemorySink()
    fake = FakeProvider(default="four")
    client = costkit.wrap(FakeOpenAI(fake), policies=[Guardrails(max_output_tokens=64)], sink=sink)
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], max_tokens=999)
    (record,) = sink.records
    assert record.notes["clamped"] == {"max_output_tokens": {"from": 999, "to": 64, "by": ["max_output_tokens"]}}
    request = fake.calls[0].request
    assert request is not None and request.max_tokens == 64  # what the provider received


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"max_input_tokens": 0}, "max_input_tokens"),
        ({"max_output_tokens": 1.5}, "max_output_tokens"),
        ({"max_output_tokens": True}, "max_output_tokens"),
        ({"max_cost_usd": -0.01}, "max_cost_usd"),
        ({"max_cost_usd": float("nan")}, "max_cost_usd"),
        ({"max_tool_steps": 0}, "max_tool_steps"),
        ({"on_over": "obey"}, "on_over"),
        ({"on_unpriced": "maybe"}, "on_unpriced"),
        ({"max_output_tokens": 10, "min_output_tokens": 20}, "min_output_tokens"),
        ({"pricing": object(), "estimator": WorstCaseEstimator()}, "estimator"),
    ],
)
def test_config_errors_name_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as e:
        Guardrails(**kwargs)
    assert e.value.field == field


def test_the_wrappers_price_book_is_adopted_unless_one_was_given() -> None:
    g = Guardrails(max_cost_usd=0.01)
    g.estimator.adopt_pricing(book())
    assert g.estimator.pricing.get("strong") is not None
    own = book()
    g2 = Guardrails(max_cost_usd=0.01, pricing=own)
    g2.estimator.adopt_pricing(PriceBook(base=None, cost_map={}))
    assert g2.estimator.pricing is own
