"""Quality gates: each check, the operators, and the judge that asks a model through the chain."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from costkit import Call, ConfigError, Result, Usage, gates


def make_call(text: str = "Give me JSON", model: str = "gpt-4o-mini") -> Call:
    return Call(provider="openai", api="chat", requested_model="gpt-4o", model=model,
                messages=({"role": "system", "content": "be terse"}, {"role": "user", "content": text}))


def answer(text: str | None = "ok", **kw: Any) -> Result:
    return Result(text=text, model="gpt-4o-mini", finish_reason=kw.pop("finish_reason", "stop"), **kw)


SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}


# ------------------------------------------------------------------------------------- json schema


def test_json_schema_passes_valid_json_and_fenced_json() -> None:
    gate = gates.json_schema(SCHEMA)
    assert gate(make_call(), answer('{"name": "x"}'))
    assert gate(make_call(), answer('```json\n{"name": "x"}\n```'))


def test_json_schema_fails_with_the_reason() -> None:
    gate = gates.json_schema(SCHEMA)
    v = gate(make_call(), answer('{"nom": "x"}'))
    assert not v and v.gate == "json_schema" and "'name' is a required property" in v.reason
    v = gate(make_call(), answer("not json"))
    assert not v and "not JSON" in v.reason
    v = gate(make_call(), answer('{"name": 3}'))
    assert not v and "at name" in v.reason


def test_json_schema_checks_tool_call_arguments() -> None:
    gate = gates.json_schema(SCHEMA, source="tool_arguments")
    def tool(args: str) -> Result:
        return answer(None, tool_calls=({"id": "1", "type": "function", "function": {"name": "f", "arguments": args}},))

    good, bad = tool('{"name": "a"}'), tool("{}")
    assert gate(make_call(), good)
    assert not gate(make_call(), bad)
    assert not gate(make_call(), answer("text only"))


def test_json_schema_rejects_an_invalid_schema_at_construction() -> None:
    with pytest.raises(ConfigError) as info:
        gates.json_schema({"type": "not-a-type"})
    assert info.value.field == "schema"
    with pytest.raises(ConfigError) as info:
        gates.json_schema(SCHEMA, source="body")
    assert info.value.field == "source"


# ------------------------------------------------------------------------------------- regex, predicate


def test_regex_modes() -> None:
    assert gates.regex(r"ANSWER: [ABCD]")(make_call(), answer("so... ANSWER: B"))
    assert not gates.regex(r"ANSWER: [ABCD]", mode="match")(make_call(), answer("so... ANSWER: B"))
    assert gates.regex(r"[ABCD]", mode="fullmatch")(make_call(), answer("C"))
    with pytest.raises(ConfigError) as info:
        gates.regex("(")
    assert info.value.field == "pattern"


def test_predicate_and_plain_callables() -> None:
    gate = gates.predicate(lambda call, result: len(result.text or "") > 3, name="long_enough")
    v = gate(make_call(), answer("no"))
    assert not v and v.gate == "long_enough"
    assert gate(make_call(), answer("long answer"))
    verdict = gates.Verdict(False, "custom")
    assert gates.predicate(lambda c, r: verdict)(make_call(), answer()).reason == "custom"
    combined = gates.not_truncated() & (lambda c, r: "x" in (r.text or ""))
    assert combined(make_call(), answer("x")) and not combined(make_call(), answer("y"))
    with pytest.raises(ConfigError):
        gates.predicate("nope")  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------- provider signals


def test_no_refusal_reads_finish_reason_raw_refusal_and_openings() -> None:
    gate = gates.no_refusal()
    assert gate(make_call(), answer("Sure, here it is"))
    assert not gate(make_call(), answer("", finish_reason="content_filter"))
    assert not gate(make_call(), answer("", finish_reason="refusal"))
    raw = SimpleNamespace(choices=[SimpleNamespace(message=SimpleNamespace(refusal="I can't do that"))])
    v = gate(make_call(), answer(None, raw=raw))
    assert not v and "provider refusal" in v.reason
    assert not gate(make_call(), answer("I'm sorry, but I can't help with that."))
    assert gate(make_call(), answer("The text says 'I cannot help with' in it"))  # only openings count
    assert gates.no_refusal(phrases=())(make_call(), answer("I'm sorry, but I can't"))


def test_not_truncated_and_non_empty() -> None:
    assert not gates.not_truncated()(make_call(), answer("cut", finish_reason="length"))
    assert gates.not_truncated()(make_call(), answer("done"))
    assert not gates.non_empty()(make_call(), answer("  "))
    assert gates.non_empty()(make_call(), answer(None, tool_calls=({"id": "1"},)))


# ------------------------------------------------------------------------------------- operators


class Counting(gates.Gate):
    def __init__(self, ok: bool) -> None:
        self.ok = ok
        self.calls = 0

    def check(self, call: Call, result: Result) -> bool:
        self.calls += 1
        return self.ok


def test_and_stops_at_the_first_failure_or_stops_at_the_first_success() -> None:
    a, b = Counting(False), Counting(True)
    v = (a & b)(make_call(), answer())
    assert not v and (a.calls, b.calls) == (1, 0)
    c, d = Counting(True), Counting(False)
    assert (c | d)(make_call(), answer()) and (c.calls, d.calls) == (1, 0)
    e, f = Counting(False), Counting(False)
    v = (e | f)(make_call(), answer())
    assert not v and v.gate == "any_of" and (e.calls, f.calls) == (1, 1)


def test_not_inverts() -> None:
    gate = ~gates.regex("TODO")
    assert gate(make_call(), answer("done"))
    assert not gate(make_call(), answer("TODO: later"))


def test_combinators_flatten_and_all_of_any_of_need_gates() -> None:
    g = gates.not_truncated() & gates.no_refusal() & gates.non_empty()
    assert isinstance(g, gates.AllOf) and len(g.gates) == 3
    assert gates.all_of(gates.non_empty(), gates.not_truncated())(make_call(), answer("x"))
    assert gates.any_of(gates.regex("a"), gates.regex("b"))(make_call(), answer("b"))
    with pytest.raises(ConfigError):
        gates.all_of()


# ------------------------------------------------------------------------------------- judge


def test_judge_asks_the_judge_model_through_next() -> None:
    asked: list[Call] = []

    def next_(call: Call) -> Result:
        asked.append(call)
        return Result(text="YES.", model=call.model, usage=Usage(input_tokens=50, output_tokens=1))

    call = make_call("What is 2+2?").evolve(tags=make_call().tags, attempt=1)
    v = gates.judge("gpt-4o-mini")(call, answer("4"), next=next_)
    assert v.ok
    (j,) = asked
    assert (j.model, j.kind, j.attempt, j.stream) == ("gpt-4o-mini", "judge", 2, False)
    assert j.request_id == call.request_id and j.params == {} and j.max_output_tokens == 3
    text = j.messages[0]["content"]
    assert "What is 2+2?" in text and "ANSWER:\n4" in text and "be terse" in text


def test_judge_no_and_judge_failure_fail_the_gate() -> None:
    v = gates.judge("gpt-4o-mini")(make_call(), answer("5"), next=lambda c: Result(text="NO"))
    assert not v and "said 'no'" in v.reason

    def broken(call: Call) -> Result:
        raise RuntimeError("judge down")

    v = gates.judge("gpt-4o-mini")(make_call(), answer("5"), next=broken)
    assert not v and "failed: RuntimeError" in v.reason


def test_judge_without_next_is_a_type_error_and_cheap_gates_go_first() -> None:
    with pytest.raises(TypeError, match="asks a model"):
        gates.judge("gpt-4o-mini")(make_call(), answer("x"))
    asked: list[Call] = []
    gate = gates.regex("^OK") & gates.judge("gpt-4o-mini")
    assert not gate(make_call(), answer("nope"), next=lambda c: asked.append(c) or Result(text="YES"))
    assert asked == []  # the regex failed: the judge was never asked


def test_judge_config_errors() -> None:
    for kwargs, field in (
        ({"prompt": "no placeholders"}, "prompt"),
        ({"pass_word": " "}, "pass_word"),
        ({"max_output_tokens": 0}, "max_output_tokens"),
        ({"max_chars": 0}, "max_chars"),
    ):
        with pytest.raises(ConfigError) as info:
            gates.judge("gpt-4o-mini", **kwargs)
        assert info.value.field == field
    with pytest.raises(ConfigError):
        gates.judge("")
