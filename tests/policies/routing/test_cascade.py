"""Cascade: cheapest first, gate, escalate; every attempt numbered and kinded for the records."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from costkit import Call, ConfigError, Result, Router, Usage, gates
from costkit._pipeline import Pipeline


class Scripted:
    def __init__(self, replies: dict[str, Any]) -> None:
        self.replies = replies
        self.calls: list[Call] = []

    def __call__(self, call: Call) -> Result:
        self.calls.append(call)
        r = self.replies[call.model]
        if isinstance(r, list):
            r = r.pop(0)
        if isinstance(r, BaseException):
            raise r
        return Result(text=r, model=call.model, finish_reason="stop", usage=Usage(input_tokens=20, output_tokens=4))

    async def acall(self, call: Call) -> Result:
        return self(call)


def make_call(**kw: Any) -> Call:
    return Call(provider="openai", api="chat", requested_model="gpt-4o", model="gpt-4o",
                messages=({"role": "user", "content": "Name a colour as JSON"},), **kw)


SCHEMA = {"type": "object", "required": ["colour"]}


def test_first_answer_that_passes_is_returned_without_escalating() -> None:
    t = Scripted({"gpt-4o-mini": '{"colour": "red"}', "gpt-4o": '{"colour": "blue"}'})
    result = Pipeline([Router.cascade(["gpt-4o-mini", "gpt-4o"], gate=gates.json_schema(SCHEMA))], t).run(make_call())
    assert [c.model for c in t.calls] == ["gpt-4o-mini"]
    assert (t.calls[0].kind, t.calls[0].attempt, t.calls[0].notes["routed_from"]) == ("call", 1, "gpt-4o")
    assert result.text == '{"colour": "red"}'
    assert result.notes["cascade"] == [{"model": "gpt-4o-mini", "verdict": "pass"}]


def test_a_failing_gate_escalates_with_kind_attempt_and_reason() -> None:
    t = Scripted({"gpt-4o-mini": "red", "gpt-3.5-turbo": "{}", "gpt-4o": '{"colour": "blue"}'})
    router = Router.cascade(["gpt-4o-mini", "gpt-3.5-turbo", "gpt-4o"], gate=gates.json_schema(SCHEMA))
    result = Pipeline([router], t).run(make_call())
    assert [(c.model, c.kind, c.attempt) for c in t.calls] == [
        ("gpt-4o-mini", "call", 1), ("gpt-3.5-turbo", "escalation", 2), ("gpt-4o", "escalation", 3)]
    assert t.calls[1].notes["escalated_from"] == "gpt-4o-mini"
    assert t.calls[1].notes["escalation_reason"].startswith("json_schema: answer is not JSON")
    assert t.calls[2].notes["escalated_from"] == "gpt-3.5-turbo"
    assert all(c.requested_model == "gpt-4o" for c in t.calls)
    assert result.text == '{"colour": "blue"}'
    assert [s["verdict"] for s in result.notes["cascade"]] == ["fail", "fail", "final"]


def test_the_last_model_is_returned_even_when_it_would_fail_the_gate() -> None:
    t = Scripted({"gpt-4o-mini": "nope", "gpt-4o": "still not json"})
    result = Pipeline([Router.cascade(["gpt-4o-mini", "gpt-4o"], gate=gates.json_schema(SCHEMA))], t).run(make_call())
    assert result.text == "still not json" and len(t.calls) == 2


def test_a_judge_is_asked_through_the_chain_as_a_numbered_judge_attempt() -> None:
    t = Scripted({"gpt-4o-mini": ["Paris", "NO"], "gpt-4o": "Lyon"})
    router = Router.cascade(["gpt-4o-mini", "gpt-4o"], gate=gates.non_empty() & gates.judge("gpt-4o-mini"))
    result = Pipeline([router], t).run(make_call())
    assert [(c.model, c.kind, c.attempt) for c in t.calls] == [
        ("gpt-4o-mini", "call", 1), ("gpt-4o-mini", "judge", 2), ("gpt-4o", "escalation", 3)]
    assert result.text == "Lyon"
    assert "judge gpt-4o-mini said 'no'" in t.calls[2].notes["escalation_reason"]


def test_streamed_calls_are_checked_unstreamed_and_the_last_step_streams() -> None:
    t = Scripted({"gpt-4o-mini": "bad", "gpt-4o": '{"colour": "x"}'})
    call = make_call(stream=True, params={"stream": True, "stream_options": {"include_usage": True}, "temperature": 0})
    Pipeline([Router.cascade(["gpt-4o-mini", "gpt-4o"], gate=gates.json_schema(SCHEMA))], t).run(call)
    first, last = t.calls
    assert first.stream is False and first.params == {"temperature": 0}
    assert first.notes["cascade_unstreamed"] is True
    assert last.stream is True and last.params["stream_options"] == {"include_usage": True} and last.params["stream"]
    assert "cascade_unstreamed" not in last.notes


def test_a_retryable_error_moves_to_the_next_model_as_a_retry() -> None:
    req = httpx.Request("POST", "https://api.openai.com/v1/chat/completions")
    err = openai.InternalServerError("down", response=httpx.Response(500, request=req), body=None)
    t = Scripted({"gpt-4o-mini": err, "gpt-4o": '{"colour": "x"}'})
    result = Pipeline([Router.cascade(["gpt-4o-mini", "gpt-4o"], gate=gates.json_schema(SCHEMA))], t).run(make_call())
    assert [(c.model, c.kind, c.attempt) for c in t.calls] == [("gpt-4o-mini", "call", 1), ("gpt-4o", "retry", 2)]
    assert t.calls[1].notes["fallback_reason"] == "server"
    assert result.notes["cascade"][0] == {"model": "gpt-4o-mini", "error": "server"}


def test_a_bad_request_is_raised() -> None:
    req = httpx.Request("POST", "https://api.openai.com/v1/chat/completions")
    err = openai.BadRequestError("bad", response=httpx.Response(400, request=req), body=None)
    t = Scripted({"gpt-4o-mini": err, "gpt-4o": "x"})
    with pytest.raises(openai.BadRequestError):
        Pipeline([Router.cascade(["gpt-4o-mini", "gpt-4o"], gate=gates.non_empty())], t).run(make_call())


def test_models_that_cannot_take_the_call_are_skipped() -> None:
    t = Scripted({"mistral/mistral-tiny": "x", "gpt-4o-mini": "y", "gpt-4o": "z"})
    call = make_call(params={"tools": [{"type": "function", "function": {"name": "f"}}]})
    router = Router.cascade(["mistral/mistral-tiny", "gpt-4o-mini", "gpt-4o"], gate=gates.non_empty())
    Pipeline([router], t).run(call)
    assert [c.model for c in t.calls] == ["gpt-4o-mini"]


async def test_async_cascade_escalates_the_same_way() -> None:
    t = Scripted({"gpt-4o-mini": "bad", "gpt-4o": '{"colour": "x"}'})
    pipeline = Pipeline([Router.cascade(["gpt-4o-mini", "gpt-4o"], gate=gates.json_schema(SCHEMA))], t, t.acall)
    result = await pipeline.arun(make_call())
    assert [c.kind for c in t.calls] == ["call", "escalation"] and result.model == "gpt-4o"


def test_a_plain_callable_gate_and_config_errors() -> None:
    t = Scripted({"gpt-4o-mini": "short", "gpt-4o": "long answer"})
    router = Router.cascade(["gpt-4o-mini", "gpt-4o"], gate=lambda call, result: len(result.text) > 5)
    assert Pipeline([router], t).run(make_call()).text == "long answer"
    for models in (["gpt-4o"], "gpt-4o", []):
        with pytest.raises(ConfigError) as info:
            Router.cascade(models, gate=gates.non_empty())
        assert info.value.field == "models"
    with pytest.raises(ConfigError) as info:
        Router.cascade(["gpt-4o-mini", "gpt-4o"], gate=3)  # type: ignore[arg-type]
    assert info.value.field == "gate"
    with pytest.raises(ConfigError) as info:
        Router.cascade(["gpt-4o-mini", "gpt-4o"], gate=gates.non_empty(), shadow=True)
    assert info.value.field == "shadow"


def test_a_gate_that_raises_escalates_with_one_warning() -> None:
    import warnings

    def broken(call: Call, result: Result) -> bool:
        raise KeyError("oops")

    t = Scripted({"gpt-4o-mini": ["a", "b"], "gpt-4o": ["c", "d"]})
    router = Router.cascade(["gpt-4o-mini", "gpt-4o"], gate=broken)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert Pipeline([router], t).run(make_call()).text == "c"
        assert Pipeline([router], t).run(make_call()).text == "d"
    assert len([w for w in caught if "raised KeyError" in str(w.message)]) == 1
    assert t.calls[1].notes["escalation_reason"] == "error: gate raised KeyError"


def test_an_escalation_after_a_fallback_does_not_carry_the_fallback_notes() -> None:
    req = httpx.Request("POST", "https://api.openai.com/v1/chat/completions")
    err = openai.RateLimitError("slow", response=httpx.Response(429, request=req), body=None)
    t = Scripted({"gpt-4o-mini": err, "gpt-3.5-turbo": "bad", "gpt-4o": '{"colour": "x"}'})
    router = Router.cascade(["gpt-4o-mini", "gpt-3.5-turbo", "gpt-4o"], gate=gates.json_schema(SCHEMA))
    Pipeline([router], t).run(make_call())
    assert [(c.model, c.kind, c.attempt) for c in t.calls] == [
        ("gpt-4o-mini", "call", 1), ("gpt-3.5-turbo", "retry", 2), ("gpt-4o", "escalation", 3)]
    assert t.calls[1].notes["fallback_from"] == "gpt-4o-mini"
    assert "fallback_from" not in t.calls[2].notes and t.calls[2].notes["escalated_from"] == "gpt-3.5-turbo"
