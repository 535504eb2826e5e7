import pytest

import costkit
from costkit import ConfigError, PromptCache
from costkit.pricing import PriceBook
from costkit.sinks import MemorySink
from costkit.testing import FakeAnthropic, FakeOpenAI, FakeProvider

SONNET = "claude-sonnet-4-5"
SYSTEM = " ".join(f"Rule {i}: answer politely and cite section {i}." for i in range(220))  # ~2,000 tokens


def ask(client, q, **kw):
    return client.messages.create(model=kw.pop("model", SONNET), max_tokens=20, system=SYSTEM,
                                  messages=[{"role": "user", "content": q}], **kw)


def test_anthropic_system_prompt_is_marked_and_repeated_calls_read_the_cache():
    fake = FakeProvider(default="ok", prompt_caching=True)
    sink = MemorySink()
    client = costkit.wrap(FakeAnthropic(fake), policies=[PromptCache()], sink=sink)
    for i in range(5):
        ask(client, f"question {i}?")
    system = fake.last.body["system"]
    assert system[-1]["cache_control"] == {"type": "ephemeral"}
    first, *rest = sink.records
    assert first.cache_write_tokens > 1024 and first.cached_read_tokens == 0
    assert all(r.cached_read_tokens == first.cache_write_tokens and r.cache_write_tokens == 0 for r in rest)
    price = PriceBook().get(SONNET, "anthropic")
    r = rest[0]
    expected = ((r.input_tokens - r.cached_read_tokens) * price.input_per_token
                + r.cached_read_tokens * price.cache_read_per_token + r.output_tokens * price.output_per_token)
    assert r.cost_usd == pytest.approx(expected)


def test_no_mark_under_the_models_minimum_and_never_more_than_four():
    fake = FakeProvider(default="ok", prompt_caching=True)
    client = costkit.wrap(FakeAnthropic(fake), policies=[PromptCache()])
    ask(client, "q?", model="claude-haiku-4-5")  # Haiku 4.5 caches from 4,096 tokens
    assert isinstance(fake.last.body["system"], str)
    marked = [{"type": "text", "text": SYSTEM[:50], "cache_control": {"type": "ephemeral"}}] * 4
    client.messages.create(model=SONNET, max_tokens=5, system=marked, messages=[{"role": "user", "content": "q"}])
    assert fake.last.status == 200  # the user's 4 marks are left alone, none added


def test_conversation_prefix_is_marked_so_the_next_turn_reads_it():
    fake = FakeProvider(default="ok", prompt_caching=True)
    client = costkit.wrap(FakeAnthropic(fake), policies=[PromptCache()])
    history = [{"role": "user", "content": "long " * 1500}, {"role": "assistant", "content": "ok"}]
    client.messages.create(model=SONNET, max_tokens=5, messages=[*history, {"role": "user", "content": "a?"}])
    assert fake.last.body["messages"][1]["content"][-1]["cache_control"] == {"type": "ephemeral"}
    nxt = client.messages.create(model=SONNET, max_tokens=5, messages=[*history, {"role": "user", "content": "b?"}])
    assert nxt.usage.cache_read_input_tokens > 1024


def test_openai_gets_the_feature_as_prompt_cache_key():
    fake = FakeProvider(default="ok")
    client = costkit.wrap(FakeOpenAI(fake), policies=[PromptCache()])
    with costkit.tags(feature="faq"):
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert fake.last.body["prompt_cache_key"] == "faq"
    client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert "prompt_cache_key" not in fake.last.body


def test_stability_report_and_a_warning_when_dynamic_content_comes_first():
    policy = PromptCache(warn_min_tokens=100)
    client = costkit.wrap(FakeOpenAI(FakeProvider(default="ok")), policies=[policy])
    with costkit.tags(feature="bad"), pytest.warns(UserWarning, match="put the stable part"):
        for i in range(3):
            client.chat.completions.create(model="gpt-4o", messages=[
                {"role": "system", "content": f"Now is 12:0{i}."}, {"role": "user", "content": SYSTEM}])
    with costkit.tags(feature="good"):
        for i in range(3):
            client.chat.completions.create(model="gpt-4o", messages=[
                {"role": "system", "content": SYSTEM}, {"role": "user", "content": f"question {i}"}])
    report = policy.report()
    assert report["bad"].repeated_share == 0.0 and report["bad"].stable_after_dynamic_tokens > 2000
    assert report["good"].calls == 3 and report["good"].repeated_share > 0.6


@pytest.mark.parametrize(("kwargs", "field"), [({"ttl": "2h"}, "ttl"), ({"window": 0}, "window"),
                                               ({"cache_key": 3}, "cache_key"), ({"min_tokens": 0}, "min_tokens")])
def test_bad_configuration_names_the_field(kwargs, field):
    with pytest.raises(ConfigError) as err:
        PromptCache(**kwargs)
    assert err.value.field == field
