from costkit.testing import FakeProvider
from costkit.testing.prefix_cache import PrefixCache, anthropic_blocks
from costkit.tokens import count_messages

CLAUDE = "claude-sonnet-4-5"
LONG = " ".join(f"rule{i} says be precise." for i in range(400))  # ~2,400 tokens
MARK = {"type": "ephemeral"}


def anthropic(fake, system, q="q?", model=CLAUDE):
    body = {"model": model, "max_tokens": 5, "system": system, "messages": [{"role": "user", "content": q}]}
    return fake.handle("POST", "/v1/messages", {}, body)


def usage(resp):
    import json

    return json.loads(resp.body)["usage"]


def test_model_minimums_decide_what_is_cached():
    fake = FakeProvider(prompt_caching=True)
    system = [{"type": "text", "text": LONG, "cache_control": MARK}]
    assert usage(anthropic(fake, system, model="claude-haiku-4-5"))["cache_creation_input_tokens"] == 0  # 4,096
    assert usage(anthropic(fake, system))["cache_creation_input_tokens"] > 2000  # Sonnet 4.5: 1,024


def test_entries_expire_five_minutes_after_their_last_use():
    fake = FakeProvider(prompt_caching=True)
    now = [0.0]
    fake.prefix_cache.clock = lambda: now[0]
    system = [{"type": "text", "text": LONG, "cache_control": MARK}]
    written = usage(anthropic(fake, system))["cache_creation_input_tokens"]
    now[0] = 299.0
    assert usage(anthropic(fake, system))["cache_read_input_tokens"] == written  # a read refreshes it
    now[0] = 598.0
    assert usage(anthropic(fake, system))["cache_read_input_tokens"] == written
    now[0] = 1000.0
    assert usage(anthropic(fake, system))["cache_creation_input_tokens"] == written


def test_a_fifth_breakpoint_is_refused_like_the_provider_does():
    fake = FakeProvider(prompt_caching=True)
    system = [{"type": "text", "text": f"part {i}", "cache_control": MARK} for i in range(5)]
    resp = anthropic(fake, system)
    assert resp.status == 400 and b"A maximum of 4 blocks" in resp.body


def test_lookback_reads_an_earlier_breakpoint_within_20_blocks():
    fake = FakeProvider(prompt_caching=True)
    first = [{"type": "text", "text": LONG, "cache_control": MARK}]
    anthropic(fake, first)
    later = [{"type": "text", "text": LONG}, *({"type": "text", "text": f"extra {i}"} for i in range(3)),
             {"type": "text", "text": "end", "cache_control": MARK}]
    u = usage(anthropic(fake, later))
    prefix = count_messages([{"role": "system", "content": first}], CLAUDE) - 3
    assert u["cache_read_input_tokens"] >= prefix - 5 and u["cache_creation_input_tokens"] > 0
    assert len(anthropic_blocks({"system": later, "messages": []})) == 5


def test_openai_cache_is_partitioned_by_prompt_cache_key():
    cache = PrefixCache()

    def count(msgs, tools):
        return count_messages(list(msgs), "gpt-4o")

    system = {"role": "system", "content": LONG}
    msgs = [system, {"role": "user", "content": "a"}]
    total = count(msgs, [])
    assert cache.openai("gpt-4o", {"prompt_cache_key": "x"}, msgs, [], total, count) == 0
    other = [system, {"role": "user", "content": "b"}]
    hit = cache.openai("gpt-4o", {"prompt_cache_key": "x"}, other, [], total, count)
    assert hit >= 1024 and (hit - 1024) % 128 == 0
    assert cache.openai("gpt-4o", {"prompt_cache_key": "y"}, msgs, [], total, count) == 0
