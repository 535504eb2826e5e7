"""The drop-in wrapper with the in-process fake provider: records, tags, streams, replay, passthrough."""

from __future__ import annotations

import asyncio
import functools
import importlib
import json
import os

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import costkit
from costkit import FlowPolicy
from costkit._recorder import RecorderStats
from costkit.sinks import MemorySink
from costkit.testing import FakeAnthropic, FakeAsyncAnthropic, FakeAsyncOpenAI, FakeOpenAI, FakeProvider

# gpt-4o and claude-3-5-haiku rates from LiteLLM's bundled cost map (USD per token)
GPT4O_IN, GPT4O_OUT, GPT4O_CACHED = 2.5e-6, 1e-5, 1.25e-6
MSG = [{"role": "user", "content": "What is the capital of France?"}]


def expected_gpt4o(rec):
    return (rec.input_tokens - rec.cached_read_tokens) * GPT4O_IN + rec.cached_read_tokens * GPT4O_CACHED + (
        rec.output_tokens * GPT4O_OUT
    )


@pytest.fixture
def fake():
    return FakeProvider().on("capital of France", "Paris.")


@pytest.fixture
def sink():
    return MemorySink()


def test_returns_the_sdk_object_and_records_exact_cost_with_tags(fake, sink):
    from openai.types.chat import ChatCompletion

    client = costkit.wrap(FakeOpenAI(fake), sink=sink)
    with costkit.tags(tenant="acme", feature="faq"):
        reply = client.chat.completions.create(model="gpt-4o", messages=MSG, costkit={"prompt_version": "v14"})
    assert type(reply) is ChatCompletion
    assert reply.choices[0].message.content == "Paris."
    assert "costkit" not in fake.last.body  # the per-call keyword never reaches the SDK
    [rec] = sink.records
    assert (rec.kind, rec.attempt, rec.provider, rec.requested_model, rec.model) == (
        "call", 1, "openai", "gpt-4o", "gpt-4o")
    assert (rec.tenant, rec.feature, rec.prompt_version) == ("acme", "faq", "v14")
    assert rec.input_tokens == reply.usage.prompt_tokens and rec.output_tokens == reply.usage.completion_tokens
    assert rec.cost_usd == pytest.approx(expected_gpt4o(rec), abs=1e-12)
    assert rec.success and rec.cache == "none" and rec.prompt_text is None


def test_stream_hides_the_usage_chunk_costkit_asked_for(fake, sink):
    client = costkit.wrap(FakeOpenAI(fake), sink=sink)
    chunks = list(client.chat.completions.create(model="gpt-4o", messages=MSG, stream=True))
    assert fake.last.body["stream_options"] == {"include_usage": True}
    assert all(c.choices for c in chunks)  # the caller never sees the usage-only chunk
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Paris."
    [rec] = sink.records
    assert rec.output_tokens > 0 and not rec.usage_estimated
    assert rec.cost_usd == pytest.approx(expected_gpt4o(rec), abs=1e-12)


def test_stream_keeps_the_usage_chunk_when_the_caller_asked(fake, sink):
    client = costkit.wrap(FakeOpenAI(fake), sink=sink)
    chunks = list(client.chat.completions.create(model="gpt-4o", messages=MSG, stream=True,
                                                 stream_options={"include_usage": True}))
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == sink.records[0].output_tokens


def test_provider_exceptions_pass_through_and_are_recorded(fake, sink):
    import openai

    client = costkit.wrap(FakeOpenAI(fake), sink=sink)
    fake.fail_next(1, status=429, retry_after=2)
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="gpt-4o", messages=MSG)
    [rec] = sink.records
    assert (rec.success, rec.error_type, rec.cost_usd, rec.input_tokens) == (False, "RateLimitError", 0.0, 0)


def test_the_wrapped_client_is_the_sdks_own_type_and_everything_else_passes_through(fake, sink):
    import openai

    raw = FakeOpenAI(fake)
    client = costkit.wrap(raw, sink=sink)
    assert isinstance(client, openai.OpenAI) and type(client) is type(raw) and client is not raw
    assert client.api_key == raw.api_key and client.base_url == raw.base_url
    assert client.unwrapped is raw
    clone = client.with_options(timeout=5)
    assert isinstance(clone, openai.OpenAI) and clone.timeout == 5
    clone.chat.completions.create(model="gpt-4o", messages=MSG)
    assert len(sink.records) == 1  # with_options stays wrapped and shares the sink
    client.some_attribute = 1
    del client.some_attribute  # monkeypatch / mock.patch.object undo works
    assert not hasattr(client, "some_attribute")
    with client as same:  # special methods are the SDK's own (leaving closes the shared connection pool)
        assert same is client


def sdk_http(sdk):
    """The HTTP module the installed SDK builds its clients on: httpx2 from openai 3.0 and anthropic 1.0."""
    base = importlib.import_module(f"{sdk}._base_client")
    return getattr(base, "httpx2", None) or base.httpx


def test_the_wrapped_client_validates_responses_as_strictly_as_the_users(sink):
    import openai

    http = sdk_http("openai")
    transport = http.MockTransport(lambda request: http.Response(200, json={"foo": {"invalid": True}}))

    class Model(openai.BaseModel):
        foo: str

    def client(strict: bool) -> openai.OpenAI:
        http_client = http.Client(transport=transport)
        return openai.OpenAI(api_key="k", http_client=http_client, _strict_response_validation=strict)

    raw = client(strict=True)
    assert raw.copy()._strict_response_validation is False  # the SDK's copy() does not carry it over
    with pytest.raises(openai.APIResponseValidationError):
        raw.get("/foo", cast_to=Model)
    wrapped = costkit.wrap(raw, sink=sink)
    with pytest.raises(openai.APIResponseValidationError):  # as strict as the user's client
        wrapped.get("/foo", cast_to=Model)
    assert costkit.wrap(client(strict=False), sink=sink).get("/foo", cast_to=Model).foo == {"invalid": True}


@pytest.mark.parametrize("deployment", ["deployment-client", None])
def test_a_wrapped_azure_client_keeps_its_deployment_routing(sink, deployment):
    import openai

    http = sdk_http("openai")
    urls = []

    def answer(request):
        urls.append(str(request.url))
        return http.Response(200, json={"object": "list", "data": []})

    def client():
        return openai.AzureOpenAI(
            api_version="2024-02-01", api_key="k", azure_endpoint="https://example-resource.azure.openai.com",
            azure_deployment=deployment, http_client=http.Client(transport=http.MockTransport(answer)),
        )  # fmt: skip

    # a POST to an endpoint that is not per deployment: the SDK takes the deployment out of the URL
    client().post("/models", body={}, cast_to=object)
    costkit.wrap(client(), sink=sink).post("/models", body={}, cast_to=object)
    assert urls[0] == urls[1] == "https://example-resource.azure.openai.com/openai/models?api-version=2024-02-01"


@pytest.mark.parametrize("sdk", ["openai", "anthropic"])
def test_a_body_that_is_not_the_apis_object_reaches_the_caller_and_is_recorded_estimated(sink, sdk):
    import anthropic
    import openai

    http = sdk_http(sdk)
    transport = http.MockTransport(lambda request: http.Response(200))  # an empty 200: a proxy's, a mock's
    if sdk == "openai":
        client = openai.OpenAI(api_key="k", http_client=http.Client(transport=transport))
        create = functools.partial(client.chat.completions.with_raw_response.create, model="gpt-4o", messages=MSG)
        wrapped = costkit.wrap(client, sink=sink).chat.completions.with_raw_response.create
    else:
        client = anthropic.Anthropic(api_key="k", http_client=http.Client(transport=transport))
        create = functools.partial(client.messages.with_raw_response.create, model="claude-haiku-4-5",
                                   max_tokens=20, messages=MSG)
        wrapped = costkit.wrap(client, sink=sink).messages.with_raw_response.create
    raw = create()
    with pytest.warns(costkit.CostkitWarning, match="was not the API's own object"):
        got = wrapped(**create.keywords)
    assert type(got) is type(raw) and got.status_code == raw.status_code == 200
    assert got.parse() == raw.parse() and got.retries_taken == raw.retries_taken == 0
    [rec] = sink.records
    assert rec.success and rec.usage_estimated and rec.output_tokens == 0 and rec.input_tokens > 0
    assert rec.notes["response_unreadable"]


def test_a_stream_chunk_costkit_cannot_read_reaches_the_caller(sink):
    import openai

    http = sdk_http("openai")
    chunk = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "gpt-4o"}
    events = [
        {**chunk, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Paris."}}]},
        {**chunk},  # no choices at all: the SDK hands it on unvalidated
    ]
    body = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
    transport = http.MockTransport(
        lambda request: http.Response(200, headers={"content-type": "text/event-stream"}, content=body)
    )

    def client():
        return openai.OpenAI(api_key="k", http_client=http.Client(transport=transport))

    raw = [c.model_dump() for c in client().chat.completions.create(model="gpt-4o", messages=MSG, stream=True)]
    with pytest.warns(costkit.CostkitWarning, match="stream chunk could not be read"):
        stream = costkit.wrap(client(), sink=sink).chat.completions.create(model="gpt-4o", messages=MSG, stream=True)
        assert [c.model_dump() for c in stream] == raw
    [rec] = sink.records
    assert rec.success and rec.usage_estimated and rec.output_tokens == 2  # "Paris." counted from the text


class AnswerFromMemory(FlowPolicy):
    """A minimal cache used to check how the wrapper treats answers that skip the provider."""

    def __init__(self):
        self.stored = None

    def flow(self, call):
        if self.stored is not None:
            return self.stored.evolve(source="exact")
        result = yield call
        result.when_complete(lambda final: setattr(self, "stored", final))
        return result


def test_answer_from_a_layer_is_replayed_as_a_stream_and_recorded_as_a_hit(fake, sink):
    client = costkit.wrap(FakeOpenAI(fake), policies=[AnswerFromMemory()], sink=sink)
    first = client.chat.completions.create(model="gpt-4o", messages=MSG)
    again = client.chat.completions.create(model="gpt-4o", messages=MSG)
    streamed = list(client.chat.completions.create(model="gpt-4o", messages=MSG, stream=True))
    assert fake.count() == 1
    assert again == first
    assert "".join(c.choices[0].delta.content or "" for c in streamed) == "Paris."
    assert type(streamed[0]).__name__ == "ChatCompletionChunk"
    call, *hits = sink.records
    assert len(hits) == 2  # the plain repeat and the streamed one
    for hit in hits:
        assert (hit.kind, hit.cache, hit.cost_usd, hit.attempt) == ("cache_hit", "exact", 0.0, 0)
        assert hit.saved_usd == pytest.approx(call.cost_usd) and hit.savings == {"exact": call.cost_usd}


def test_responses_api_plain_and_streamed(fake, sink):
    from openai.types.responses import Response

    client = costkit.wrap(FakeOpenAI(fake), sink=sink)
    r = client.responses.create(model="gpt-4o", input="What is the capital of France?", instructions="Be brief.")
    assert type(r) is Response and r.output_text == "Paris."
    events = list(client.responses.create(model="gpt-4o", input="What is the capital of France?", stream=True))
    assert events[-1].type == "response.completed"
    plain, streamed = sink.records
    assert plain.input_tokens == r.usage.input_tokens and streamed.output_tokens == r.usage.output_tokens
    assert plain.cost_usd == pytest.approx(expected_gpt4o(plain), abs=1e-12)


def test_anthropic_messages_with_system_and_stream(sink):
    from anthropic.types import Message

    fake = FakeProvider().on("capital", "Paris.")
    client = costkit.wrap(FakeAnthropic(fake), sink=sink)
    m = client.messages.create(model="claude-haiku-4-5", max_tokens=100, system="Be brief.", messages=MSG)
    assert type(m) is Message and m.content[0].text == "Paris."
    assert fake.last.body["system"] == "Be brief." and fake.last.body["max_tokens"] == 100
    with client.messages.create(model="claude-haiku-4-5", max_tokens=100, messages=MSG, stream=True) as s:
        kinds = [e.type for e in s]
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    plain, streamed = sink.records
    assert (plain.input_tokens, plain.output_tokens) == (m.usage.input_tokens, m.usage.output_tokens)
    assert streamed.output_tokens == m.usage.output_tokens
    price = costkit.pricing.get("claude-haiku-4-5")
    assert plain.cost_usd == pytest.approx(
        plain.input_tokens * price.input_per_token + plain.output_tokens * price.output_per_token, abs=1e-12)


def test_async_clients(fake, sink):
    async def main():
        oa = costkit.wrap(FakeAsyncOpenAI(fake), sink=sink)
        an = costkit.wrap(FakeAsyncAnthropic(fake), sink=sink)
        r = await oa.chat.completions.create(model="gpt-4o", messages=MSG)
        chunks = [c async for c in await oa.chat.completions.create(model="gpt-4o", messages=MSG, stream=True)]
        m = await an.messages.create(model="claude-haiku-4-5", max_tokens=50, messages=MSG)
        return r, chunks, m

    r, chunks, m = asyncio.run(main())
    assert r.choices[0].message.content == "Paris." and m.content[0].text == "Paris."
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Paris."
    assert [rec.provider for rec in sink.records] == ["openai", "openai", "anthropic"]
    assert all(rec.output_tokens > 0 for rec in sink.records)


def test_unknown_model_gives_unpriced_record_and_one_warning(fake, sink):
    client = costkit.wrap(FakeOpenAI(fake), sink=sink)
    with pytest.warns(UserWarning, match=r"costkit\.pricing\.register") as warned:
        client.chat.completions.create(model="my-finetune-xyz", messages=MSG)
        client.chat.completions.create(model="my-finetune-xyz", messages=MSG)
    assert len([w for w in warned if "my-finetune-xyz" in str(w.message)]) == 1
    assert [(r.cost_usd, r.priced) for r in sink.records] == [(None, False), (None, False)]


def test_a_failing_sink_never_fails_the_call(fake):
    def broken(record):
        raise OSError("disk full")

    client = costkit.wrap(FakeOpenAI(fake), sink=broken)
    sink = client.costkit_recorder.sink  # the user's function, delivered off the caller's thread
    with pytest.warns(UserWarning, match="disk full"):
        reply = client.chat.completions.create(model="gpt-4o", messages=MSG)
        client.chat.completions.create(model="gpt-4o", messages=MSG)
        assert sink.flush(5)
    assert reply.choices[0].message.content == "Paris."
    assert (sink.emitted, sink.written, sink.dropped, sink.errors) == (2, 0, 2, 2)
    assert client.costkit_recorder.stats == RecorderStats(emitted=2, dropped=0)  # the recorder handed both over


def test_record_text_is_opt_in(fake, sink):
    client = costkit.wrap(FakeOpenAI(fake), sink=sink, record_text=True)
    client.chat.completions.create(model="gpt-4o", messages=MSG)
    assert sink.records[0].prompt_text == "user: What is the capital of France?"
    assert sink.records[0].completion_text == "Paris."


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"policies": "ExactCache"}, "policies"),
        ({"policies": [object()]}, "policies[0]"),
        ({"pricing": 3}, "pricing"),
        ({"record_text": "yes"}, "record_text"),
    ],
)
def test_bad_configuration_names_the_field(fake, kwargs, field):
    with pytest.raises(costkit.ConfigError) as err:
        costkit.wrap(FakeOpenAI(fake), sink=None, **kwargs)
    assert err.value.field == field


def test_bad_call_arguments(fake, sink):
    client = costkit.wrap(FakeOpenAI(fake), sink=sink)
    with pytest.raises(costkit.ConfigError) as err:
        client.chat.completions.create(model="gpt-4o", messages=MSG, costkit={"tenat": "x"})
    assert err.value.field == "costkit.tenat"
    with pytest.raises(TypeError, match="max_tokens must be an int"):
        client.chat.completions.create(model="gpt-4o", messages=MSG, max_tokens="10")
    with pytest.raises(TypeError, match="argument"):  # the SDK's own error, not costkit's
        client.chat.completions.create("gpt-4o")
    with pytest.raises(costkit.ConfigError) as err:
        costkit.wrap(object())
    assert err.value.field == "client"


def test_wrapping_litellm_module(sink):
    from costkit.testing import FakeLiteLLM

    fake = FakeProvider().on("capital", "Paris.")
    llm = costkit.wrap(FakeLiteLLM(fake), sink=sink)
    r = llm.completion(model="gpt-4o", messages=MSG)
    assert type(r).__name__ == "ModelResponse" and r.choices[0].message.content == "Paris."
    chunks = list(llm.completion(model="gpt-4o", messages=MSG, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Paris."
    plain, streamed = sink.records
    assert plain.output_tokens == r.usage.completion_tokens == streamed.output_tokens
    assert plain.cost_usd == pytest.approx(expected_gpt4o(plain), abs=1e-12)
    assert (plain.client, plain.provider) == ("litellm", "openai")


def test_litellm_records_the_provider_that_served_the_model(sink):
    """The reported gap: every litellm record said provider 'litellm', even for a Claude model."""
    from costkit.testing import FakeLiteLLM

    llm = costkit.wrap(FakeLiteLLM(FakeProvider()), sink=sink)
    for model in ("claude-haiku-4-5", "anthropic/claude-haiku-4-5", "gpt-4o-mini", "gemini/gemini-2.5-flash"):
        llm.completion(model=model, messages=MSG, max_tokens=5)
    assert [(r.client, r.provider) for r in sink.records] == [
        ("litellm", "anthropic"), ("litellm", "anthropic"), ("litellm", "openai"), ("litellm", "gemini")]
    assert all(r.priced and r.cost_usd > 0 for r in sink.records)


def test_budgeted_scopes_are_enforced_by_every_wrapped_client(fake, sink):
    client = costkit.wrap(FakeOpenAI(fake), sink=sink)
    assert type(client.costkit_policies[0]).__name__ == "ScopeCheck"

    @costkit.budgeted(feature="nightly_summary", max_usd_per_call=0.0005)
    def summarize():
        for _ in range(50):  # each call costs ~$0.00009: the scope refuses the one that would pass $0.0005
            client.chat.completions.create(model="gpt-4o", messages=MSG, max_tokens=5)

    with pytest.raises(costkit.BudgetExceeded) as err:
        summarize()
    assert err.value.limit_usd == 0.0005
    spent = sum(r.cost_usd for r in sink.records)
    assert spent <= 0.0005 and err.value.spent_usd == pytest.approx(spent)
    assert {r.feature for r in sink.records} == {"nightly_summary"}
    assert 1 < fake.count() < 50



def test_wrap_pricing_reaches_the_router_and_the_records(fake, sink):
    from costkit.pricing import PriceBook

    book = PriceBook()
    book.register("house-small", input_per_million=0.01, output_per_million=0.02)
    book.register("house-large", input_per_million=1.0, output_per_million=2.0)
    router = costkit.Router.tiers({"faq": ["house-large", "house-small"]})
    client = costkit.wrap(FakeOpenAI(fake), policies=[router], sink=sink, pricing=book)
    client.chat.completions.create(model="house-large", messages=MSG, costkit={"route": "faq"})
    assert fake.last.model == "house-small"  # the cheaper of the tier, by the book given to wrap()
    [rec] = sink.records
    assert rec.cost_usd == pytest.approx(rec.input_tokens * 1e-8 + rec.output_tokens * 2e-8, abs=1e-15)
    assert rec.savings["router"] == pytest.approx(
        rec.input_tokens * 1e-6 + rec.output_tokens * 2e-6 - rec.cost_usd, abs=1e-15)


# ------------------------------------------------------------------ a sink never slows or stalls the call


def test_a_slow_sink_is_off_the_callers_path():
    """The reported stall: a sink that sleeps 10 s made the call take 10 s."""
    import threading

    release = threading.Event()
    got: list = []

    def slow(record):
        release.wait(30)  # blocks until the test lets it go: the call must not wait for it
        got.append(record)

    client = costkit.wrap(FakeOpenAI(), sink=slow)
    client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert got == []  # the call returned while the sink was still blocked
    release.set()
    client.costkit_recorder.sink.flush(5)
    assert len(got) == 1


def test_a_full_bounded_queue_never_blocks_the_caller():
    """The docs' own sink=my_queue.put with a full bounded queue blocked the caller forever."""
    import queue

    q: queue.Queue = queue.Queue(maxsize=1)
    q.put("already full")
    client = costkit.wrap(FakeOpenAI(), sink=q.put)
    for _ in range(3):
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert q.qsize() == 1  # the calls returned; the records wait behind the stuck put (or are dropped and counted)
    sink = client.costkit_recorder.sink
    assert sink.emitted == 3
    for _ in range(4):  # let the writer finish, so nothing waits at exit
        q.get(timeout=5)
    assert sink.flush(5)


def test_inline_delivery_is_an_explicit_opt_in():
    from costkit.sinks import Inline

    got: list = []
    client = costkit.wrap(FakeOpenAI(), sink=Inline(got.append))
    client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert len(got) == 1  # delivered before the call returned
    memory = MemorySink()
    assert costkit.wrap(FakeOpenAI(), sink=memory).costkit_recorder.sink is memory  # never blocks: inline


# ------------------------------------------------------------------ misconfiguration fails at construction


def test_a_policy_class_instead_of_an_instance_is_refused_naming_it():
    with pytest.raises(costkit.ConfigError) as e:
        costkit.wrap(FakeOpenAI(), policies=[costkit.ExactCache], sink=None)
    assert e.value.field == "policies[0]" and "ExactCache()" in str(e.value)


def test_the_sdk_module_instead_of_a_client_is_refused():
    import anthropic
    import openai

    for module, fix in ((openai, "openai.OpenAI()"), (anthropic, "anthropic.Anthropic()")):
        with pytest.raises(costkit.ConfigError) as e:
            costkit.wrap(module)
        assert e.value.field == "client" and fix in str(e.value)


def test_a_misspelt_model_is_refused_at_construction_with_the_nearest_names():
    with pytest.raises(costkit.ConfigError) as e:
        costkit.Router.tiers({"cheap": "gpt-4o-mni", "strong": "gpt-4o"})
    assert e.value.field == "mapping['cheap']" and "'gpt-4o-mini'" in str(e.value)
    with pytest.raises(costkit.ConfigError) as e:
        costkit.Router.cascade(["gpt-4o-mini", "gtp-4o"], gate=lambda c, r: True)
    assert e.value.field == "models[1]" and "'gpt-4o'" in str(e.value)
    router = costkit.Router.tiers({"own": "house-model"})  # no near name: may be priced in wrap()'s book
    with pytest.raises(costkit.ConfigError) as e:
        costkit.wrap(FakeOpenAI(), policies=[router], sink=None)
    assert e.value.field == "mapping['own']" and "costkit.pricing.register('house-model'" in str(e.value)


def test_a_tier_on_another_providers_model_is_refused_at_wrap():
    """The reported misroute: a Claude tier behind an openai client was posted to OpenAI's endpoint."""
    router = costkit.Router.tiers({"cheap": "claude-haiku-4-5", "strong": "gpt-4o"})
    with pytest.raises(costkit.ConfigError) as e:
        costkit.wrap(FakeOpenAI(), policies=[router], sink=None)
    assert e.value.field == "mapping['cheap']" and "litellm" in str(e.value)
    from costkit.testing import FakeLiteLLM

    costkit.wrap(FakeLiteLLM(), policies=[router], sink=None)  # litellm sends each model to its provider
