"""Replies, failures and rules: values checked at construction, matching as documented."""

from __future__ import annotations

import re

import pytest

from costkit.errors import ConfigError
from costkit.testing import Failure, FakeRequest, Reply, ToolCall, refusal, text, tool_call
from costkit.testing.rules import as_reply, default_reply, make_rule


def request(user="hello", model="gpt-4o-mini", system=None):
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": user}]
    return FakeRequest(
        api="chat", path="/v1/chat/completions", model=model, body={}, headers={}, messages=tuple(messages)
    )


def test_helpers_build_replies():
    assert text("hi") == Reply(text="hi")
    assert tool_call("f", city="Paris") == Reply(tool_calls=(ToolCall(name="f", arguments={"city": "Paris"}),))
    assert tool_call("f", '{"a":1}').tool_calls[0].arguments_dict == {"a": 1}
    assert refusal().refusal == "I can't help with that."
    assert Reply(tool_calls=[ToolCall(name="f")]).tool_calls == (ToolCall(name="f"),)
    assert as_reply("x") == Reply(text="x") and as_reply(Failure.malformed()) == Failure.malformed()
    with pytest.raises(TypeError):
        as_reply(3)  # type: ignore[arg-type]


def test_failure_constructors_and_labels():
    assert Failure.rate_limit(2.0) == Failure(kind="status", status=429, retry_after=2.0)
    assert Failure.server_error().status == 500 and Failure.overloaded().status == 503
    assert Failure.timeout(3.0).delay_s == 3.0 and Failure.disconnect().kind == "disconnect"
    assert [f.label for f in (Failure.rate_limit(), Failure.timeout(), Failure.disconnect(), Failure.malformed())] == [
        "429",
        "timeout",
        "disconnect",
        "malformed",
    ]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"status": 200}, "status"),
        ({"status": 600}, "status"),
        ({"kind": "timeout", "delay_s": -1.0}, "delay_s"),
        ({"status": 429, "retry_after": -1.0}, "retry_after"),
    ],
)
def test_bad_failures_fail_at_construction(kwargs, field):
    with pytest.raises(ConfigError) as e:
        Failure(**kwargs)
    assert e.value.field == field


def test_unknown_failure_kind_is_rejected():
    with pytest.raises(ValueError):
        Failure(kind="explode")


def test_pattern_rules_search_the_last_user_message():
    rule = make_rule(r"refund", "Five days.")
    assert rule.answer(request("I want a refund")) == Reply(text="Five days.")
    assert rule.answer(request("hello", system="refund policy")) is None
    compiled = make_rule(re.compile("HELLO", re.IGNORECASE), Failure.rate_limit())
    assert compiled.answer(request("hello")) == Failure.rate_limit()


def test_rules_limited_to_models():
    rule = make_rule("x", "y", model=["gpt-4o", "gpt-4o-mini"])
    assert rule.answer(request("x", model="gpt-4o")) is not None
    assert rule.answer(request("x", model="o3")) is None


def test_callable_rules_and_replies():
    rule = make_rule(lambda r: "long" if len(r.last_user_text) > 5 else None)
    assert rule.answer(request("short")) is None and rule.answer(request("longer text")) == Reply(text="long")
    dynamic = make_rule("echo", lambda r: r.last_user_text[::-1])
    assert dynamic.answer(request("echo")) == Reply(text="ohce")
    with pytest.raises(ConfigError):
        make_rule(lambda r: None, "reply")
    with pytest.raises(ConfigError):
        make_rule(42)  # type: ignore[arg-type]


def test_default_reply_is_deterministic_and_bounded():
    assert default_reply(request("  spaced   out  ")) == Reply(text="Fake answer to: spaced out")
    assert default_reply(request("")) == Reply(text="Fake answer.")
    long = default_reply(request("w " * 500)).text
    assert long is not None and len(long) == len("Fake answer to: ") + 200


def test_request_views():
    r = request("q", system="s")
    assert r.provider == "openai" and r.system_text == "s" and r.last_user_text == "q"
    parts = FakeRequest(
        api="messages",
        path="/v1/messages",
        model="c",
        body={},
        headers={},
        messages=({"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},),
    )
    assert parts.provider == "anthropic" and parts.last_user_text == "a\nb"
