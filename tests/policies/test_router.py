"""Router: what every strategy shares -- eligibility, cost order, fallbacks, shadow mode, notes."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import httpx
import openai
import pytest

from costkit import Call, ConfigError, Result, Router, Tags, Usage
from costkit._pipeline import Pipeline
from costkit.errors import CircuitOpen, RetryBudgetExhausted
from costkit.policies.routing.decision import Decision


class Scripted:
    """A terminal that records every call and answers per model (an exception instance is raised)."""

    def __init__(self, replies: dict[str, Any] | None = None) -> None:
        self.replies = replies or {}
        self.calls: list[Call] = []

    def reply(self, call: Call) -> Result:
        self.calls.append(call)
        r = self.replies.get(call.model, "ok")
        if callable(r) and not isinstance(r, BaseException):
            r = r(call)
        if isinstance(r, BaseException):
            raise r
        if isinstance(r, Result):
            return r
        usage = Usage(input_tokens=10, output_tokens=5)
        return Result(text=str(r), model=call.model, finish_reason="stop", usage=usage)

    def __call__(self, call: Call) -> Result:
        return self.reply(call)

    async def acall(self, call: Call) -> Result:
        return self.reply(call)

    @property
    def models(self) -> list[str]:
        return [c.model for c in self.calls]


def make_call(text: str = "hi", model: str = "gpt-4o", **kw: Any) -> Call:
    return Call(provider="openai", api="chat", requested_model=model, model=model,
                messages=({"role": "user", "content": text},), **kw)


def run(router: Any, call: Call, terminal: Scripted) -> Result:
    return Pipeline([router], terminal).run(call)


def rate_limited() -> openai.RateLimitError:
    req = httpx.Request("POST", "https://api.openai.com/v1/chat/completions")
    return openai.RateLimitError("slow down", response=httpx.Response(429, request=req), body=None)


def bad_request() -> openai.BadRequestError:
    req = httpx.Request("POST", "https://api.openai.com/v1/chat/completions")
    return openai.BadRequestError("bad", response=httpx.Response(400, request=req), body=None)


def context_overflow() -> openai.BadRequestError:
    req = httpx.Request("POST", "https://api.openai.com/v1/chat/completions")
    body = {"error": {"code": "context_length_exceeded", "message": "maximum context length is 16385 tokens"}}
    return openai.BadRequestError("too long", response=httpx.Response(400, request=req), body=body)


class Fixed:
    """A strategy that always decides the same thing."""

    def __init__(self, *tiers: tuple[str, ...], route: str | None = None) -> None:
        self.tiers = tiers
        self.route = route

    def decide(self, call: Call) -> Decision:
        return Decision(tiers=self.tiers, route=self.route, reason="fixed", scores={"s": 1.0})


# ------------------------------------------------------------------------------------- routing + notes


def test_routes_to_the_decided_model_keeping_the_requested_one() -> None:
    t = Scripted()
    result = run(Router(Fixed(("gpt-4o-mini",), ("gpt-4o",))), make_call(), t)
    assert t.models == ["gpt-4o-mini"]
    sent = t.calls[0]
    assert sent.requested_model == "gpt-4o"
    assert sent.kind == "call" and sent.attempt == 1
    assert sent.notes["routed_from"] == "gpt-4o"
    assert sent.notes["route_reason"] == "fixed"
    assert sent.notes["route_scores"] == {"s": 1.0}
    assert result.text == "ok"


def test_route_name_becomes_the_route_tag_unless_the_app_set_one() -> None:
    t = Scripted()
    run(Router(Fixed(("gpt-4o-mini",), route="cheap")), make_call(), t)
    assert t.calls[0].tags.route == "cheap"
    run(Router(Fixed(("gpt-4o-mini",), route="cheap")), make_call(tags=Tags(route="mine", tenant="a")), t)
    assert t.calls[1].tags.route == "mine" and t.calls[1].tags.tenant == "a"


def test_no_routed_from_when_the_decision_keeps_the_model() -> None:
    t = Scripted()
    run(Router(Fixed(("gpt-4o",))), make_call(), t)
    assert t.models == ["gpt-4o"] and "routed_from" not in t.calls[0].notes


def test_cheapest_model_of_a_tier_by_estimated_cost() -> None:
    t = Scripted()
    run(Router(Fixed(("gpt-4o", "gpt-3.5-turbo", "gpt-4o-mini"))), make_call(), t)
    assert t.models == ["gpt-4o-mini"]  # 0.15/0.6 per M beats 0.5/1.5 and 2.5/10


def test_pinned_calls_pass_through_untouched() -> None:
    """A gate's judge pins its model (Call.pinned): no router re-routes it."""
    t = Scripted()
    run(Router(Fixed(("gpt-4o-mini",))), make_call(model="gpt-4o").evolve(kind="judge", pinned=True), t)
    assert t.models == ["gpt-4o"]


def test_a_failing_strategy_degrades_to_the_requested_model_with_one_warning() -> None:
    class Broken:
        def decide(self, call: Call) -> Decision:
            raise RuntimeError("boom")

    t = Scripted()
    router = Router(Broken())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run(router, make_call(), t)
        run(router, make_call(), t)
    assert t.models == ["gpt-4o", "gpt-4o"]
    assert len([w for w in caught if "router strategy Broken failed" in str(w.message)]) == 1


# ------------------------------------------------------------------------------------- capabilities


def test_never_routes_tools_to_a_model_without_tool_calling() -> None:
    t = Scripted()
    call = make_call(params={"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]})
    run(Router(Fixed(("mistral/mistral-tiny",), ("gpt-4o-mini",))), call, t)
    assert t.models == ["gpt-4o-mini"]
    assert t.calls[0].notes["route_skipped"] == {"mistral/mistral-tiny": "no tool calling"}


def test_never_routes_images_to_a_model_without_vision() -> None:
    t = Scripted()
    content = [{"type": "text", "text": "what is this"}, {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]
    call = Call(provider="openai", api="chat", requested_model="gpt-4o", model="gpt-4o",
                messages=({"role": "user", "content": content},))
    run(Router(Fixed(("gpt-3.5-turbo", "deepseek-chat"), ("gpt-4o-mini",))), call, t)
    assert t.models == ["gpt-4o-mini"]
    assert set(t.calls[0].notes["route_skipped"]) == {"gpt-3.5-turbo", "deepseek-chat"}


def test_never_routes_a_json_schema_call_to_a_model_without_schema_output() -> None:
    t = Scripted()
    call = make_call(params={"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}})
    run(Router(Fixed(("gpt-3.5-turbo",), ("gpt-4o-mini",))), call, t)
    assert t.models == ["gpt-4o-mini"]


def test_a_prompt_over_the_context_window_skips_the_model() -> None:
    t = Scripted()
    long_text = "word " * 20000  # ~20k tokens: over gpt-3.5-turbo's 16,385
    run(Router(Fixed(("gpt-3.5-turbo",), ("gpt-4o-mini",))), make_call(long_text), t)
    assert t.models == ["gpt-4o-mini"]
    assert "context window" in t.calls[0].notes["route_skipped"]["gpt-3.5-turbo"]


def test_a_requested_output_over_the_model_limit_skips_it() -> None:
    t = Scripted()
    run(Router(Fixed(("gpt-3.5-turbo",), ("gpt-4o-mini",))), make_call(max_output_tokens=8000), t)
    assert t.models == ["gpt-4o-mini"]


def test_unknown_models_are_not_trusted_with_capabilities_but_take_plain_calls() -> None:
    t = Scripted()
    run(Router(Fixed(("my-local-model",), ("gpt-4o-mini",))), make_call(), t)
    assert t.models == ["my-local-model"]
    call = make_call(params={"tools": [{"type": "function", "function": {"name": "f"}}]})
    run(Router(Fixed(("my-local-model",), ("gpt-4o-mini",))), call, t)
    assert t.models[-1] == "gpt-4o-mini"


def test_when_nothing_is_eligible_the_requested_model_is_used() -> None:
    t = Scripted()
    call = make_call(params={"tools": [{"type": "function", "function": {"name": "f"}}]})
    run(Router(Fixed(("mistral/mistral-tiny",))), call, t)
    assert t.models == ["gpt-4o"]


# ------------------------------------------------------------------------------------- fallbacks


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (rate_limited, "rate_limit"),
        (lambda: CircuitOpen("openai", "gpt-4o-mini", 3.0), "circuit_open"),
        (context_overflow, "context_overflow"),
        (lambda: RetryBudgetExhausted("no more", last_error=rate_limited()), "rate_limit"),
    ],
)
def test_fallback_to_the_next_eligible_model(error: Callable[[], Exception], kind: str) -> None:
    t = Scripted({"gpt-4o-mini": error()})
    result = run(Router(Fixed(("gpt-4o-mini",), ("gpt-4o",))), make_call(), t)
    assert t.models == ["gpt-4o-mini", "gpt-4o"]
    second = t.calls[1]
    assert (second.kind, second.attempt) == ("retry", 2)
    assert second.notes["fallback_from"] == "gpt-4o-mini" and second.notes["fallback_reason"] == kind
    assert second.requested_model == "gpt-4o"
    assert result.model == "gpt-4o"


def test_fallback_order_stronger_tiers_then_fallbacks_then_the_requested_model() -> None:
    t = Scripted({"gpt-4o-mini": rate_limited(), "gpt-3.5-turbo": rate_limited(), "deepseek-chat": rate_limited()})
    router = Router(Fixed(("gpt-4o-mini",), ("gpt-3.5-turbo",)), fallbacks=["deepseek-chat"])
    run(router, make_call(model="gpt-4-0613"), t)
    assert t.models == ["gpt-4o-mini", "gpt-3.5-turbo", "deepseek-chat", "gpt-4-0613"]
    assert [c.attempt for c in t.calls] == [1, 2, 3, 4]


def test_a_bad_request_is_not_retried_on_another_model() -> None:
    t = Scripted({"gpt-4o-mini": bad_request()})
    with pytest.raises(openai.BadRequestError):
        run(Router(Fixed(("gpt-4o-mini",), ("gpt-4o",))), make_call(), t)
    assert t.models == ["gpt-4o-mini"]


def test_when_every_model_fails_the_last_provider_error_is_raised_unchanged() -> None:
    last = rate_limited()
    t = Scripted({"gpt-4o-mini": rate_limited(), "gpt-4o": last})
    with pytest.raises(openai.RateLimitError) as info:
        run(Router(Fixed(("gpt-4o-mini",), ("gpt-4o",))), make_call(), t)
    assert info.value is last


def test_fallback_false_raises_the_first_error() -> None:
    t = Scripted({"gpt-4o-mini": rate_limited()})
    with pytest.raises(openai.RateLimitError):
        run(Router(Fixed(("gpt-4o-mini",), ("gpt-4o",)), fallback=False), make_call(), t)
    assert t.models == ["gpt-4o-mini"]


# ------------------------------------------------------------------------------------- shadow mode


def test_shadow_mode_notes_the_decision_without_changing_the_model() -> None:
    t = Scripted()
    run(Router(Fixed(("gpt-4o-mini",), ("gpt-4o",)), shadow=True), make_call(), t)
    assert t.models == ["gpt-4o"]
    notes = t.calls[0].notes
    assert notes["shadow_model"] == "gpt-4o-mini" and notes["shadow_route"] == "gpt-4o-mini"
    assert notes["route_reason"] == "fixed" and "routed_from" not in notes


def test_shadow_mode_does_not_fall_back() -> None:
    t = Scripted({"gpt-4o": rate_limited()})
    with pytest.raises(openai.RateLimitError):
        run(Router(Fixed(("gpt-4o-mini",)), shadow=True), make_call(), t)
    assert t.models == ["gpt-4o"]


# ------------------------------------------------------------------------------------- async twin


async def test_async_pipeline_routes_and_falls_back_the_same_way() -> None:
    t = Scripted({"gpt-4o-mini": rate_limited()})
    pipeline = Pipeline([Router(Fixed(("gpt-4o-mini",), ("gpt-4o",)))], t, t.acall)
    result = await pipeline.arun(make_call())
    assert t.models == ["gpt-4o-mini", "gpt-4o"] and result.model == "gpt-4o"


# ------------------------------------------------------------------------------------- configuration


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"fallbacks": [""]}, "fallbacks"),
        ({"fallbacks": [3]}, "fallbacks"),
        ({"shadow": "yes"}, "shadow"),
        ({"fallback": 1}, "fallback"),
        ({"default_output_tokens": -1}, "default_output_tokens"),
    ],
)
def test_misconfiguration_fails_at_construction(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as info:
        Router(Fixed(("gpt-4o-mini",)), **kwargs)
    assert info.value.field == field


def test_a_strategy_without_decide_is_rejected() -> None:
    with pytest.raises(ConfigError) as info:
        Router(object())  # type: ignore[arg-type]
    assert info.value.field == "strategy"


def test_save_is_only_for_learned_routers(tmp_path: Any) -> None:
    with pytest.raises(TypeError):
        Router.heuristic(["gpt-4o-mini", "gpt-4o"]).save(tmp_path / "r.npz")


# ------------------------------------------------------------------------------------- end to end


def test_records_carry_requested_model_model_route_and_the_exact_saving() -> None:
    import costkit
    from costkit import pricing
    from costkit.sinks import MemorySink
    from costkit.testing import FakeOpenAI, FakeProvider

    sink = MemorySink()
    client = costkit.wrap(FakeOpenAI(FakeProvider(default="Paris")), sink=sink,
                          policies=[Router.tiers({"faq": "gpt-4o-mini"}, by="feature")])
    reply = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Capital of France?"}],
                                           costkit={"feature": "faq"})
    assert reply.choices[0].message.content == "Paris"
    assert client.fake.last.model == "gpt-4o-mini"
    (record,) = sink.records
    assert (record.requested_model, record.model, record.route, record.kind) == ("gpt-4o", "gpt-4o-mini", "faq", "call")
    usage = Usage(input_tokens=record.input_tokens, output_tokens=record.output_tokens)
    expected = pricing.cost("gpt-4o", usage) - pricing.cost("gpt-4o-mini", usage)
    assert record.savings["router"] == pytest.approx(expected)
    assert record.notes["route_reason"] == "feature=faq" and record.notes["routed_from"] == "gpt-4o"


def test_a_cascade_records_every_attempt_and_charges_the_rejected_one_to_the_router() -> None:
    import costkit
    from costkit import gates
    from costkit.sinks import MemorySink
    from costkit.testing import FakeOpenAI, FakeProvider

    fake = FakeProvider(default="not json")
    fake.on(".", '{"colour": "red"}', model="gpt-4o")
    sink = MemorySink()
    cascade = Router.cascade(["gpt-4o-mini", "gpt-4o"], gate=gates.json_schema({"type": "object"}))
    client = costkit.wrap(FakeOpenAI(fake), sink=sink, policies=[cascade])
    reply = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "A colour as JSON"}])
    assert reply.choices[0].message.content == '{"colour": "red"}'
    assert [c.model for c in fake.calls] == ["gpt-4o-mini", "gpt-4o"]
    first, second = sink.records
    assert (first.kind, first.attempt, first.model) == ("call", 1, "gpt-4o-mini")
    assert (second.kind, second.attempt, second.model) == ("escalation", 2, "gpt-4o")
    assert first.request_id == second.request_id
    assert second.savings["router"] == pytest.approx(-(first.cost_usd or 0.0))  # routing cost the cheap attempt


def test_a_streamed_call_that_passes_the_gate_is_replayed_as_a_stream() -> None:
    import costkit
    from costkit import gates
    from costkit.sinks import MemorySink
    from costkit.testing import FakeOpenAI, FakeProvider

    fake = FakeProvider(default='{"ok": true}')
    cascade = Router.cascade(["gpt-4o-mini", "gpt-4o"], gate=gates.json_schema({"type": "object"}))
    client = costkit.wrap(FakeOpenAI(fake), sink=MemorySink(), policies=[cascade])
    stream = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "JSON please"}],
                                            stream=True)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == '{"ok": true}'
    assert [c.model for c in fake.calls] == ["gpt-4o-mini"]


def test_a_judge_is_recorded_as_a_judge_attempt_of_the_same_request() -> None:
    import costkit
    from costkit import gates
    from costkit.sinks import MemorySink
    from costkit.testing import FakeOpenAI, FakeProvider

    fake = FakeProvider(default="Lyon")
    fake.on("Verdict", "NO", model="gpt-4o-mini")
    sink = MemorySink()
    cascade = Router.cascade(["gpt-4o-mini", "gpt-4o"], gate=gates.judge("gpt-4o-mini"))
    client = costkit.wrap(FakeOpenAI(fake), sink=sink, policies=[cascade])
    client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Capital of France?"}])
    assert [(r.kind, r.attempt, r.model) for r in sink.records] == [
        ("call", 1, "gpt-4o-mini"), ("judge", 2, "gpt-4o-mini"), ("escalation", 3, "gpt-4o")]
    assert len({r.request_id for r in sink.records}) == 1
    assert sink.records[1].notes["judge_of"] == "gpt-4o-mini"


def test_learned_offers_every_training_keyword_of_train_with_the_same_default():
    """Router.learned restates train()'s keyword list (it is the public signature); this keeps the two from drifting."""
    import inspect

    from costkit.policies.routing.learned import train

    ours = inspect.signature(Router.learned).parameters
    theirs = inspect.signature(train).parameters
    forwarded = set(theirs) - {"embeddings"}  # precomputed vectors: a benchmark's shortcut, not a router option
    assert forwarded <= set(ours)
    for name in forwarded - {"l2_grid", "linear_weights"}:  # None there means train's default grid
        assert ours[name].default == theirs[name].default, name
        assert ours[name].kind == theirs[name].kind, name
