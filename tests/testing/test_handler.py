"""FakeProvider.handle: scripts, failures, usage from the real tokenizer, prompt caching, call log."""

from __future__ import annotations

import json
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from costkit.errors import ConfigError
from costkit.testing import Failure, FakeProvider, Reply, ToolCall, refusal, tool_call
from costkit.testing.handler import truncate_to_tokens
from costkit.tokens import count_messages, count_request, count_text

CHAT = "/v1/chat/completions"
MESSAGES = "/v1/messages"
MODEL = "gpt-4o-mini"
CLAUDE = "claude-haiku-4-5"


def chat(fake, text="hello", model=MODEL, **extra):
    body = {"model": model, "messages": [{"role": "user", "content": text}], **extra}
    return fake.handle("POST", CHAT, {"content-type": "application/json"}, json.dumps(body).encode())


def body_of(response):
    return json.loads(response.body)


def reply_text(response):
    return body_of(response)["choices"][0]["message"]["content"]


# ---- scripting


def test_default_reply_is_deterministic_and_names_the_question():
    fake = FakeProvider()
    assert reply_text(chat(fake, "What is 2+2?")) == "Fake answer to: What is 2+2?"
    assert reply_text(chat(fake, "What is 2+2?")) == "Fake answer to: What is 2+2?"
    assert reply_text(chat(fake, "Other")) == "Fake answer to: Other"


def test_rules_are_tried_in_order_and_filtered_by_model_and_times():
    fake = FakeProvider()
    fake.on(r"refund", "Refunds take 5 days.", model="gpt-4o")
    fake.on(r"refund", "Ask support.", times=1)
    fake.on(r"(?i)hello", Reply(text="Hi!"))
    assert reply_text(chat(fake, "refund please", model="gpt-4o")) == "Refunds take 5 days."
    assert reply_text(chat(fake, "refund please")) == "Ask support."
    assert reply_text(chat(fake, "refund please")) == "Fake answer to: refund please"  # times=1 used up
    assert reply_text(chat(fake, "HELLO")) == "Hi!"


def test_callable_rules_and_callable_replies_see_the_request():
    fake = FakeProvider()
    fake.on(lambda r: f"system was {r.system_text!r}" if r.system_text else None)
    fake.on(r"echo (\w+)", lambda r: r.last_user_text.upper())
    body = {"model": MODEL, "messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "x"}]}
    assert reply_text(fake.handle("POST", CHAT, {}, body)) == "system was 'S'"
    assert reply_text(chat(fake, "echo me")) == "ECHO ME"


def test_set_default_with_text_or_callable():
    fake = FakeProvider(default="fixed")
    assert reply_text(chat(fake)) == "fixed"
    fake.set_default(lambda r: f"len={len(r.last_user_text)}")
    assert reply_text(chat(fake, "abcd")) == "len=4"


def test_tool_call_and_refusal_replies():
    fake = FakeProvider()
    fake.on("weather", tool_call("get_weather", city="Paris"))
    fake.on("bomb", refusal("I can't help with that."))
    doc = body_of(chat(fake, "weather?"))
    call = doc["choices"][0]["message"]["tool_calls"][0]
    assert call["function"] == {"name": "get_weather", "arguments": '{"city":"Paris"}'}
    assert doc["choices"][0]["finish_reason"] == "tool_calls"
    assert doc["usage"]["completion_tokens"] == count_text("get_weather", MODEL) + count_text('{"city":"Paris"}', MODEL)
    doc = body_of(chat(fake, "bomb"))
    assert doc["choices"][0]["message"]["refusal"] == "I can't help with that."
    assert doc["choices"][0]["message"]["content"] is None


def test_rule_construction_errors_name_the_field():
    fake = FakeProvider()
    with pytest.raises(ConfigError) as e:
        fake.on("(unclosed", "x")
    assert e.value.field == "match"
    with pytest.raises(ConfigError) as e:
        fake.on("x")
    assert e.value.field == "reply"
    with pytest.raises(ConfigError) as e:
        fake.on("x", "y", times=0)
    assert e.value.field == "times"
    with pytest.raises(ConfigError) as e:
        Reply(text="a", refusal="b")
    assert e.value.field == "refusal"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"failure_rate": 1.5}, "failure_rate"),
        ({"latency_s": -1.0}, "latency_s"),
        ({"latency_s": (2.0, 1.0)}, "latency_s"),
        ({"chunk_delay_s": -0.1}, "chunk_delay_s"),
        ({"failure_rate": 0.5, "failure_kinds": []}, "failure_kinds"),
        ({"failure_kinds": ["429"]}, "failure_kinds"),
        ({"min_cacheable_tokens": 0}, "min_cacheable_tokens"),
        ({"default": 42}, "default"),
    ],
)
def test_misconfigured_provider_fails_at_construction(kwargs, field):
    with pytest.raises(ConfigError) as e:
        FakeProvider(**kwargs)
    assert e.value.field == field


# ---- usage


def test_chat_usage_is_the_tokenizer_count():
    fake = FakeProvider()
    messages = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Name three colours."}]
    tools = [
        {
            "type": "function",
            "function": {
                "name": "f",
                "description": "d",
                "parameters": {"type": "object", "properties": {"a": {"type": "string"}}},
            },
        }
    ]
    doc = body_of(fake.handle("POST", CHAT, {}, {"model": MODEL, "messages": messages, "tools": tools}))
    assert doc["usage"]["prompt_tokens"] == count_request(messages, MODEL, tools)
    assert doc["usage"]["completion_tokens"] == count_text("Fake answer to: Name three colours.", MODEL)
    assert fake.last.usage.input_tokens == doc["usage"]["prompt_tokens"]


def test_anthropic_usage_counts_system_first():
    fake = FakeProvider()
    msgs = [{"role": "user", "content": [{"type": "text", "text": "Hi there"}]}]
    doc = body_of(
        fake.handle("POST", MESSAGES, {}, {"model": CLAUDE, "max_tokens": 50, "system": "Be kind.", "messages": msgs})
    )
    assert doc["usage"]["input_tokens"] == count_messages([{"role": "system", "content": "Be kind."}, *msgs], CLAUDE)
    assert doc["usage"]["output_tokens"] == count_text("Fake answer to: Hi there", CLAUDE)


def test_max_tokens_truncates_and_sets_the_finish_reason():
    fake = FakeProvider(default="one two three four five six seven eight nine ten eleven twelve")
    doc = body_of(chat(fake, max_tokens=4))
    assert doc["choices"][0]["finish_reason"] == "length"
    assert doc["usage"]["completion_tokens"] == 4
    assert doc["choices"][0]["message"]["content"] == "one two three four"
    anth = body_of(
        fake.handle(
            "POST", MESSAGES, {}, {"model": CLAUDE, "max_tokens": 3, "messages": [{"role": "user", "content": "q"}]}
        )
    )
    assert anth["stop_reason"] == "max_tokens" and anth["usage"]["output_tokens"] == 3
    enough = body_of(chat(fake, max_tokens=1000))
    assert enough["choices"][0]["finish_reason"] == "stop"


def test_truncate_to_tokens():
    assert truncate_to_tokens("alpha beta gamma", 0, MODEL) == ""
    assert truncate_to_tokens("alpha beta", 100, MODEL) == "alpha beta"
    cut = truncate_to_tokens("The quick brown fox jumps over the lazy dog", 5, MODEL)
    assert count_text(cut, MODEL) == 5 and "The quick brown fox jumps over the lazy dog".startswith(cut)


def test_embeddings_usage_and_log():
    fake = FakeProvider()
    doc = body_of(
        fake.handle(
            "POST",
            "/v1/embeddings",
            {},
            {"model": "text-embedding-3-small", "input": ["a b c", "d"], "encoding_format": "float"},
        )
    )
    assert doc["usage"]["prompt_tokens"] == count_text("a b c") + count_text("d")
    assert len(doc["data"]) == 2 and fake.count(api="embeddings") == 1


# ---- prompt caching

LONG = " ".join(f"rule{i} says be precise." for i in range(400))  # ~2,400 tokens


def test_openai_prompt_caching_reports_a_repeated_prefix_in_128_token_steps():
    fake = FakeProvider(prompt_caching=True)
    system = {"role": "system", "content": LONG}
    first = body_of(
        fake.handle("POST", CHAT, {}, {"model": MODEL, "messages": [system, {"role": "user", "content": "q1"}]})
    )
    assert first["usage"]["prompt_tokens_details"]["cached_tokens"] == 0
    second = body_of(
        fake.handle("POST", CHAT, {}, {"model": MODEL, "messages": [system, {"role": "user", "content": "q2"}]})
    )
    prefix = count_messages([system], MODEL)
    assert prefix > 1024
    assert second["usage"]["prompt_tokens_details"]["cached_tokens"] == 1024 + (prefix - 1024) // 128 * 128
    other_model = body_of(chat(fake, LONG, model="gpt-4o"))
    assert other_model["usage"]["prompt_tokens_details"]["cached_tokens"] == 0


def test_openai_prompt_caching_is_off_by_default_and_short_prefixes_never_cache():
    fake = FakeProvider()
    for _ in range(2):
        doc = body_of(chat(fake, LONG))
    assert doc["usage"]["prompt_tokens_details"]["cached_tokens"] == 0
    cached = FakeProvider(prompt_caching=True)
    for _ in range(2):
        doc = body_of(chat(cached, "short"))
    assert doc["usage"]["prompt_tokens_details"]["cached_tokens"] == 0


def test_anthropic_cache_control_writes_then_reads_the_prefix():
    fake = FakeProvider(prompt_caching=True, min_cacheable_tokens=1024)  # Haiku 4.5 caches from 4,096
    system = [{"type": "text", "text": LONG, "cache_control": {"type": "ephemeral"}}]

    def ask(q):
        body = {"model": CLAUDE, "max_tokens": 20, "system": system, "messages": [{"role": "user", "content": q}]}
        return body_of(fake.handle("POST", MESSAGES, {}, body))["usage"]

    prefix = count_messages([{"role": "system", "content": system}], CLAUDE)
    total = count_messages([{"role": "system", "content": system}, {"role": "user", "content": "first?"}], CLAUDE)
    u1 = ask("first?")
    assert (u1["cache_creation_input_tokens"], u1["cache_read_input_tokens"]) == (prefix, 0)
    assert u1["input_tokens"] == total - prefix
    u2 = ask("first?")
    assert (u2["cache_creation_input_tokens"], u2["cache_read_input_tokens"]) == (0, prefix)
    assert u2["input_tokens"] == total - prefix
    no_marks = body_of(
        fake.handle(
            "POST",
            MESSAGES,
            {},
            {"model": CLAUDE, "max_tokens": 5, "system": LONG, "messages": [{"role": "user", "content": "x"}]},
        )
    )["usage"]
    assert no_marks["cache_read_input_tokens"] == 0 and no_marks["cache_creation_input_tokens"] == 0


def test_anthropic_breakpoint_in_messages_reads_the_longest_seen_prefix():
    fake = FakeProvider(prompt_caching=True, min_cacheable_tokens=1024)
    doc = [
        {"type": "text", "text": LONG, "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": "Question A"},
    ]

    def ask(content):
        body = {"model": CLAUDE, "max_tokens": 5, "messages": [{"role": "user", "content": content}]}
        return body_of(fake.handle("POST", MESSAGES, {}, body))["usage"]

    prefix = count_messages([{"role": "user", "content": doc[:1]}], CLAUDE)
    assert ask(doc)["cache_creation_input_tokens"] == prefix
    again = ask([doc[0], {"type": "text", "text": "Question B"}])
    assert again["cache_read_input_tokens"] == prefix and again["cache_creation_input_tokens"] == 0


# ---- failures


def test_fail_next_queues_status_failures_with_retry_after():
    fake = FakeProvider()
    fake.fail_next(2, 429, retry_after=1.5)
    first = chat(fake)
    assert first.status == 429 and first.headers["retry-after"] == "1.5"
    assert body_of(first)["error"]["type"] == "rate_limit_exceeded"
    assert chat(fake).status == 429
    assert chat(fake).status == 200
    assert [c.failure for c in fake.calls] == ["429", "429", None]
    assert fake.count(failed=True) == 2 and fake.count(status=200) == 1


def test_fail_next_for_one_model_only():
    fake = FakeProvider()
    fake.fail_next(1, 500, model="gpt-4o")
    assert chat(fake, model=MODEL).status == 200
    assert chat(fake, model="gpt-4o").status == 500
    assert chat(fake, model="gpt-4o").status == 200


def test_fail_next_validates():
    fake = FakeProvider()
    with pytest.raises(ConfigError):
        fake.fail_next(0)
    with pytest.raises(ConfigError):
        fake.fail_next(1, 200)
    with pytest.raises(ConfigError):
        fake.fail_next(1, Failure.rate_limit(), retry_after=2)


def test_failure_kinds_produce_their_plans():
    fake = FakeProvider()
    fake.fail_next(1, Failure.timeout(2.0))
    slow = chat(fake)
    assert slow.status == 200 and slow.delay_s == 2.0 and reply_text(slow) == "Fake answer to: hello"
    fake.fail_next(1, Failure.disconnect(0.5))
    dropped = chat(fake)
    assert dropped.drop and dropped.frames is None and dropped.delay_s == 0.5
    fake.fail_next(1, Failure.malformed())
    with pytest.raises(ValueError):
        body_of(chat(fake))
    fake.fail_next(1, Failure.malformed())
    torn = chat(fake, stream=True)
    assert torn.drop and torn.frames is not None and not torn.frames[-1].endswith(b"\n\n")
    assert [c.failure for c in fake.calls] == ["timeout", "disconnect", "malformed", "malformed"]
    assert fake.calls[1].status is None


def test_anthropic_error_bodies_and_overloaded():
    fake = FakeProvider()
    fake.fail_next(1, Failure.overloaded(529))
    r = fake.handle(
        "POST", MESSAGES, {}, {"model": CLAUDE, "max_tokens": 5, "messages": [{"role": "user", "content": "q"}]}
    )
    assert r.status == 529 and body_of(r)["error"]["type"] == "overloaded_error"
    assert r.headers["request-id"].startswith("req_fake")


def test_random_failures_are_seeded_and_reproducible():
    def run(seed):
        fake = FakeProvider(failure_rate=0.3, seed=seed)
        for _ in range(200):
            chat(fake)
        return [c.failure for c in fake.calls]

    a, b = run(7), run(7)
    assert a == b
    failed = sum(f is not None for f in a)
    assert 30 <= failed <= 90
    assert {"429", "500", "503", "disconnect"} <= set(a)
    assert run(8) != a


def test_random_failure_kinds_can_be_chosen_and_reset_reseeds():
    fake = FakeProvider(failure_rate=1.0, failure_kinds=[Failure.server_error(502)])
    assert chat(fake).status == 502
    fake = FakeProvider(failure_rate=0.5, seed=3)
    first = [chat(fake).status for _ in range(20)]
    fake.reset()
    assert [chat(fake).status for _ in range(20)] == first


def test_latency_fixed_and_seeded_range():
    assert chat(FakeProvider(latency_s=0.25)).delay_s == 0.25
    a = [chat(FakeProvider(latency_s=(0.1, 0.2), seed=1)).delay_s for _ in range(3)]
    assert all(0.1 <= d <= 0.2 for d in a) and len(set(a)) == 1
    assert chat(FakeProvider(chunk_delay_s=0.01), stream=True).chunk_delay_s == 0.01


# ---- bad requests and the log


def test_bad_requests_get_provider_error_bodies_and_are_logged():
    fake = FakeProvider()
    assert fake.handle("POST", "/v1/models", {}, b"{}").status == 404
    assert fake.handle("GET", CHAT, {}, b"").status == 404
    bad = fake.handle("POST", CHAT, {}, b"{not json")
    assert bad.status == 400 and "invalid JSON" in body_of(bad)["error"]["message"]
    assert fake.handle("POST", CHAT, {}, {"messages": [{"role": "user", "content": "x"}]}).status == 400
    missing = fake.handle("POST", MESSAGES, {}, {"model": CLAUDE, "messages": [{"role": "user", "content": "x"}]})
    assert missing.status == 400 and body_of(missing)["error"]["type"] == "invalid_request_error"
    assert [c.status for c in fake.calls] == [404, 404, 400, 400, 400]


def test_call_log_records_what_was_received():
    fake = FakeProvider()
    chat(fake, "first", model="gpt-4o")
    chat(fake, "second", stream=True)
    first, second = fake.calls
    assert (first.api, first.path, first.model, first.status, first.stream) == ("chat", CHAT, "gpt-4o", 200, False)
    assert first.last_user_text == "first" and first.reply == Reply(text="Fake answer to: first")
    assert first.headers == {"content-type": "application/json"}
    assert second.stream and second.body["messages"][0]["content"] == "second"
    assert fake.count(model="gpt-4o") == 1 and fake.count(api="chat") == 2 and fake.last is second
    assert first.index < second.index
    fake.reset()
    assert fake.calls == [] and fake.count() == 0
    with pytest.raises(LookupError):
        _ = fake.last


def test_reset_keeps_rules_clear_rules_drops_them():
    fake = FakeProvider()
    fake.on("x", "scripted")
    fake.fail_next(3)
    fake.reset()
    assert reply_text(chat(fake, "x")) == "scripted"
    fake.clear_rules()
    assert reply_text(chat(fake, "x")) == "Fake answer to: x"


def test_thread_safe_under_concurrent_requests():
    fake = FakeProvider()
    fake.fail_next(100, 503)
    fake.on("x", "y", times=50)
    statuses: list[int] = []
    lock = threading.Lock()

    def worker():
        for _ in range(50):
            s = chat(fake, "x").status
            with lock:
                statuses.append(s)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses.count(503) == 100 and statuses.count(200) == 300
    calls = fake.calls
    assert len(calls) == 400 and len({c.index for c in calls}) == 400
    assert sum(1 for c in calls if c.reply == Reply(text="y")) == 50


def test_tool_call_value_helpers():
    assert ToolCall(name="f", arguments='{"a": 1}').arguments_dict == {"a": 1}
    assert ToolCall(name="f", arguments="not json").arguments_dict == {}
    assert ToolCall(name="f", arguments={"b": 2, "a": 1}).arguments_json == '{"a":1,"b":2}'


def test_the_log_can_be_bounded():
    fake = FakeProvider(max_logged_calls=3)
    for i in range(5):
        chat(fake, f"q{i}")
    assert [c.last_user_text for c in fake.calls] == ["q2", "q3", "q4"] and fake.count() == 3
    with pytest.raises(ConfigError) as e:
        FakeProvider(max_logged_calls=0)
    assert e.value.field == "max_logged_calls"


def test_a_rule_that_raises_answers_500_naming_the_error():
    fake = FakeProvider()
    fake.on(lambda r: 1 / 0)
    response = chat(fake)
    assert response.status == 500 and "ZeroDivisionError" in body_of(response)["error"]["message"]
    assert fake.last.failure == "500"


def test_responses_api_prompt_caching():
    fake = FakeProvider(prompt_caching=True)
    for q in ("a?", "b?"):
        body = {"model": MODEL, "instructions": LONG, "input": q}
        doc = body_of(fake.handle("POST", "/v1/responses", {}, body))
    prefix = count_messages([{"role": "system", "content": LONG}], MODEL)
    assert doc["usage"]["input_tokens_details"]["cached_tokens"] == 1024 + (prefix - 1024) // 128 * 128


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=300), limit=st.integers(min_value=0, max_value=80))
def test_truncation_is_a_prefix_within_the_limit(text, limit):
    cut = truncate_to_tokens(text, limit, MODEL)
    assert text.startswith(cut)
    assert count_text(cut, MODEL) <= limit
    if count_text(text, MODEL) <= limit:
        assert cut == text
