"""The in-process fake clients through the real SDKs: their types, streams, helpers and exceptions."""

from __future__ import annotations

import os

import anthropic
import httpx
import openai
import pytest
from _sdk_errors import raises_mid_stream
from anthropic.types import Message
from openai.types import CreateEmbeddingResponse
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import Response

from costkit.testing import (
    AsyncFakeTransport,
    Failure,
    FakeAnthropic,
    FakeAsyncAnthropic,
    FakeAsyncOpenAI,
    FakeLiteLLM,
    FakeOpenAI,
    FakeProvider,
    FakeTransport,
    tool_call,
    wire,
)
from costkit.tokens import count_messages, count_request, count_text

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

MODEL = "gpt-4o-mini"
CLAUDE = "claude-haiku-4-5"
Q = [{"role": "user", "content": "What is the capital of France?"}]
ANSWER = "Fake answer to: What is the capital of France?"


# ---- OpenAI


def test_fake_openai_is_a_real_client_returning_real_types():
    client = FakeOpenAI()
    assert isinstance(client, openai.OpenAI) and client.max_retries == 0
    reply = client.chat.completions.create(model=MODEL, messages=Q)
    assert isinstance(reply, ChatCompletion)
    assert reply.choices[0].message.content == ANSWER
    assert reply.usage.prompt_tokens == count_messages(Q, MODEL)
    assert reply.usage.completion_tokens == count_text(ANSWER, MODEL)
    assert reply._request_id.startswith("req_fake")
    assert client.fake.count(model=MODEL) == 1


def test_openai_stream_with_and_without_usage_chunk():
    client = FakeOpenAI()
    chunks = list(client.chat.completions.create(model=MODEL, messages=Q, stream=True))
    assert all(isinstance(c, ChatCompletionChunk) for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == ANSWER
    assert all(c.usage is None for c in chunks)
    with_usage = list(
        client.chat.completions.create(model=MODEL, messages=Q, stream=True, stream_options={"include_usage": True})
    )
    assert with_usage[-1].choices == [] and with_usage[-1].usage.prompt_tokens == count_messages(Q, MODEL)


def test_openai_stream_helper_accumulates_tool_calls():
    client = FakeOpenAI()
    client.fake.on("weather", tool_call("get_weather", city="Paris"))
    tools = [
        {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}}}
    ]
    messages = [{"role": "user", "content": "weather?"}]
    with client.chat.completions.stream(model=MODEL, messages=messages, tools=tools) as stream:
        final = stream.get_final_completion()
    call = final.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather" and call.function.arguments == '{"city":"Paris"}'
    assert client.fake.last.usage.input_tokens == count_request(messages, MODEL, tools)


def test_openai_responses_plain_stream_and_truncated():
    client = FakeOpenAI()
    r = client.responses.create(model=MODEL, input="What is the capital of France?", instructions="Be brief.")
    assert isinstance(r, Response) and r.output_text == ANSWER
    msgs = [{"role": "system", "content": "Be brief."}, *Q]
    assert r.usage.input_tokens == count_messages(msgs, MODEL)
    with client.responses.stream(model=MODEL, input="What is the capital of France?") as stream:
        kinds = [e.type for e in stream]
        final = stream.get_final_response()
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert final.output_text == ANSWER and final.usage.output_tokens == count_text(ANSWER, MODEL)
    cut = client.responses.create(model=MODEL, input="What is the capital of France?", max_output_tokens=2)
    assert cut.status == "incomplete" and cut.usage.output_tokens == 2


def test_openai_embeddings_default_base64_and_float():
    client = FakeOpenAI()
    e = client.embeddings.create(model="text-embedding-3-small", input=["hello world", "bye"])
    assert isinstance(e, CreateEmbeddingResponse) and len(e.data) == 2 and len(e.data[0].embedding) == 1536
    assert client.fake.last.body["encoding_format"] == "base64"
    f = client.embeddings.create(
        model="text-embedding-3-small", input="hello world", encoding_format="float", dimensions=64
    )
    assert f.data[0].embedding == pytest.approx(wire.embedding_vector("hello world", 64))
    assert e.usage.prompt_tokens == count_text("hello world") + count_text("bye")


def test_openai_errors_are_the_sdks_own():
    client = FakeOpenAI()
    client.fake.fail_next(1, 429, retry_after=2)
    with pytest.raises(openai.RateLimitError) as e:
        client.chat.completions.create(model=MODEL, messages=Q)
    assert e.value.response.headers["retry-after"] == "2" and e.value.code == "rate_limit_exceeded"
    client.fake.fail_next(1, 500)
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model=MODEL, messages=Q)
    client.fake.fail_next(1, Failure.disconnect())
    with pytest.raises(openai.APIConnectionError) as dropped:
        client.chat.completions.create(model=MODEL, messages=Q)
    assert not isinstance(dropped.value, openai.APITimeoutError)
    client.fake.fail_next(1, Failure.malformed())
    with pytest.raises(ValueError):  # the SDK's JSON parse of a cut-short 200 body
        client.chat.completions.create(model=MODEL, messages=Q)
    client.fake.fail_next(1, Failure.malformed())
    stream = client.chat.completions.create(model=MODEL, messages=Q, stream=True)
    with raises_mid_stream(httpx.RemoteProtocolError):
        list(stream)


def test_openai_timeout_when_the_answer_is_slower_than_the_client():
    client = FakeOpenAI(timeout=0.05)
    client.fake.fail_next(1, Failure.timeout(5.0))
    with pytest.raises(openai.APITimeoutError):
        client.chat.completions.create(model=MODEL, messages=Q)
    patient = FakeOpenAI(client.fake, timeout=5.0)
    client.fake.fail_next(1, Failure.timeout(0.01))
    assert patient.chat.completions.create(model=MODEL, messages=Q).choices[0].message.content == ANSWER


def test_sdk_retries_work_when_asked_for():
    client = FakeOpenAI(max_retries=2)
    client.fake.fail_next(2, 429, retry_after=0)
    assert client.chat.completions.create(model=MODEL, messages=Q).choices[0].message.content == ANSWER
    assert [c.status for c in client.fake.calls] == [429, 429, 200]


def test_with_options_copies_share_the_fake():
    client = FakeOpenAI()
    copy = client.with_options(timeout=3.0)
    copy.chat.completions.create(model=MODEL, messages=Q)
    assert client.fake.count() == 1


def test_a_shared_provider_serves_several_clients():
    fake = FakeProvider()
    FakeOpenAI(fake).chat.completions.create(model=MODEL, messages=Q)
    FakeAnthropic(fake).messages.create(model=CLAUDE, max_tokens=50, messages=Q)
    assert [c.api for c in fake.calls] == ["chat", "messages"]


def test_transport_can_be_used_directly():
    fake = FakeProvider()
    http = httpx.Client(transport=FakeTransport(fake))
    r = http.post("https://example.invalid/v1/chat/completions", json={"model": MODEL, "messages": Q})
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == ANSWER


async def test_async_transport_directly():
    fake = FakeProvider()
    async with httpx.AsyncClient(transport=AsyncFakeTransport(fake)) as http:
        r = await http.post(
            "https://example.invalid/v1/messages", json={"model": CLAUDE, "max_tokens": 5, "messages": Q}
        )
    assert r.status_code == 200 and r.json()["type"] == "message"


async def test_fake_async_openai():
    client = FakeAsyncOpenAI()
    assert isinstance(client, openai.AsyncOpenAI)
    reply = await client.chat.completions.create(model=MODEL, messages=Q)
    assert reply.choices[0].message.content == ANSWER
    stream = await client.chat.completions.create(
        model=MODEL, messages=Q, stream=True, stream_options={"include_usage": True}
    )
    chunks = [c async for c in stream]
    assert chunks[-1].usage.completion_tokens == count_text(ANSWER, MODEL)
    client.fake.fail_next(1, 503)
    with pytest.raises(openai.InternalServerError):
        await client.chat.completions.create(model=MODEL, messages=Q)
    slow = FakeAsyncOpenAI(client.fake, timeout=0.05)
    client.fake.fail_next(1, Failure.timeout(5.0))
    with pytest.raises(openai.APITimeoutError):
        await slow.chat.completions.create(model=MODEL, messages=Q)


# ---- Anthropic


def test_fake_anthropic_returns_messages_with_usage():
    client = FakeAnthropic()
    assert isinstance(client, anthropic.Anthropic) and client.max_retries == 0
    m = client.messages.create(model=CLAUDE, max_tokens=100, system="Be brief.", messages=Q)
    assert isinstance(m, Message) and m.content[0].text == ANSWER and m.stop_reason == "end_turn"
    assert m.usage.input_tokens == count_messages([{"role": "system", "content": "Be brief."}, *Q], CLAUDE)
    assert m.usage.output_tokens == count_text(ANSWER, CLAUDE)


def test_anthropic_stream_helper_and_tool_use():
    client = FakeAnthropic()
    with client.messages.stream(model=CLAUDE, max_tokens=100, messages=Q) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == ANSWER and final.usage.output_tokens == count_text(ANSWER, CLAUDE)
    client.fake.on("weather", tool_call("get_weather", {"city": "Oslo"}))
    tools = [{"name": "get_weather", "description": "d", "input_schema": {"type": "object", "properties": {}}}]
    with client.messages.stream(
        model=CLAUDE, max_tokens=100, tools=tools, messages=[{"role": "user", "content": "weather?"}]
    ) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use" and final.content[0].input == {"city": "Oslo"}


def test_anthropic_raw_stream_events():
    client = FakeAnthropic()
    events = list(client.messages.create(model=CLAUDE, max_tokens=100, messages=Q, stream=True))
    kinds = [e.type for e in events]
    assert kinds[:2] == ["message_start", "content_block_start"] and kinds[-2:] == ["message_delta", "message_stop"]
    assert events[-2].usage.output_tokens == count_text(ANSWER, CLAUDE)


def test_anthropic_max_tokens_and_errors():
    client = FakeAnthropic()
    m = client.messages.create(model=CLAUDE, max_tokens=2, messages=Q)
    assert m.stop_reason == "max_tokens" and m.usage.output_tokens == 2
    client.fake.fail_next(1, 500)
    with pytest.raises(anthropic.InternalServerError):
        client.messages.create(model=CLAUDE, max_tokens=5, messages=Q)
    client.fake.fail_next(1, 529)
    with pytest.raises(anthropic.APIStatusError) as e:
        client.messages.create(model=CLAUDE, max_tokens=5, messages=Q)
    assert e.value.status_code == 529
    client.fake.fail_next(1, 429, retry_after=7)
    with pytest.raises(anthropic.RateLimitError) as rl:
        client.messages.create(model=CLAUDE, max_tokens=5, messages=Q)
    assert rl.value.response.headers["retry-after"] == "7"
    with pytest.raises(anthropic.BadRequestError):
        client.messages.create(model=CLAUDE, max_tokens=5, messages=[])


def test_anthropic_prompt_caching_end_to_end():
    client = FakeAnthropic(FakeProvider(prompt_caching=True, min_cacheable_tokens=1024))  # Haiku 4.5 caches from 4,096
    system = [{"type": "text", "text": "policy " * 1500, "cache_control": {"type": "ephemeral"}}]
    first = client.messages.create(model=CLAUDE, max_tokens=20, system=system, messages=Q)
    second = client.messages.create(model=CLAUDE, max_tokens=20, system=system, messages=Q)
    assert first.usage.cache_creation_input_tokens > 1024 and first.usage.cache_read_input_tokens == 0
    assert second.usage.cache_read_input_tokens == first.usage.cache_creation_input_tokens
    assert second.usage.input_tokens == first.usage.input_tokens


async def test_fake_async_anthropic():
    client = FakeAsyncAnthropic()
    assert isinstance(client, anthropic.AsyncAnthropic)
    m = await client.messages.create(model=CLAUDE, max_tokens=100, messages=Q)
    assert m.content[0].text == ANSWER
    async with client.messages.stream(model=CLAUDE, max_tokens=100, messages=Q) as stream:
        final = await stream.get_final_message()
    assert final.content[0].text == ANSWER
    client.fake.fail_next(1, Failure.disconnect())
    with pytest.raises(anthropic.APIConnectionError):
        await client.messages.create(model=CLAUDE, max_tokens=100, messages=Q)


# ---- litellm


@pytest.fixture(scope="module")
def litellm_module():
    import litellm

    return litellm


def test_fake_litellm_openai_path(litellm_module):
    ll = FakeLiteLLM()
    r = ll.completion(model=MODEL, messages=Q)
    assert isinstance(r, litellm_module.ModelResponse)
    assert r.choices[0].message.content == ANSWER
    assert r.usage.prompt_tokens == count_messages(Q, MODEL)
    assert ll.fake.last.path == "/v1/chat/completions"
    stream = ll.completion(model=MODEL, messages=Q, stream=True, stream_options={"include_usage": True})
    assert isinstance(stream, litellm_module.CustomStreamWrapper)
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == ANSWER
    assert chunks[-1].usage.completion_tokens == count_text(ANSWER, MODEL)


def test_fake_litellm_anthropic_path_reports_cache_tokens(litellm_module):
    ll = FakeLiteLLM(FakeProvider(prompt_caching=True, min_cacheable_tokens=1024))  # Haiku 4.5 caches from 4,096
    system = {
        "role": "system",
        "content": [{"type": "text", "text": "policy " * 1500, "cache_control": {"type": "ephemeral"}}],
    }
    ll.completion(model=CLAUDE, messages=[system, *Q], max_tokens=20)
    r = ll.completion(model=f"anthropic/{CLAUDE}", messages=[system, *Q], max_tokens=20)
    assert ll.fake.last.path == "/v1/messages" and ll.fake.last.model == CLAUDE
    assert r.usage.prompt_tokens_details.cached_tokens > 1024


def test_fake_litellm_errors_are_litellms(litellm_module):
    ll = FakeLiteLLM()
    ll.fake.fail_next(1, 429, retry_after=1)
    with pytest.raises(litellm_module.RateLimitError):
        ll.completion(model=MODEL, messages=Q)
    assert ll.fake.count() == 1  # no hidden retries
    assert ll.ModelResponse is litellm_module.ModelResponse  # the rest is the real module


async def test_fake_litellm_async(litellm_module):
    ll = FakeLiteLLM()
    r = await ll.acompletion(model=MODEL, messages=Q)
    assert r.choices[0].message.content == ANSWER
    s = await ll.acompletion(model=CLAUDE, messages=Q, max_tokens=50, stream=True)
    text = "".join([c.choices[0].delta.content or "" async for c in s if c.choices])
    assert text == ANSWER
    e = await ll.aembedding(model="text-embedding-3-small", input=["hello"])
    assert e.usage.prompt_tokens == count_text("hello")


def test_costkit_wrap_accepts_the_fakes(litellm_module):
    import costkit
    from costkit.sinks import MemorySink

    sink = MemorySink()
    wrapped = costkit.wrap(FakeOpenAI(), sink=sink)
    wrapped.chat.completions.create(model=MODEL, messages=Q)
    wrapped_ll = costkit.wrap(FakeLiteLLM(), sink=sink)
    wrapped_ll.completion(model=MODEL, messages=Q)
    assert [r.input_tokens for r in sink.records] == [count_messages(Q, MODEL)] * 2


def test_anthropic_count_tokens_endpoint():
    client = FakeAnthropic()
    counted = client.messages.count_tokens(model=CLAUDE, system="Be brief.", messages=Q)
    assert counted.input_tokens == count_messages([{"role": "system", "content": "Be brief."}, *Q], CLAUDE)
    assert client.fake.last.api == "count_tokens"


def test_a_stream_slower_than_the_read_timeout_times_out_mid_stream():
    client = FakeOpenAI(FakeProvider(chunk_delay_s=1.0), timeout=0.05)
    stream = client.chat.completions.create(model=MODEL, messages=Q, stream=True)
    with raises_mid_stream(httpx.ReadTimeout):
        list(stream)


def test_chat_n_returns_n_choices_and_counts_their_tokens():
    client = FakeOpenAI()
    reply = client.chat.completions.create(model=MODEL, messages=Q, n=3)
    assert [c.index for c in reply.choices] == [0, 1, 2]
    assert all(c.message.content == ANSWER for c in reply.choices)
    assert reply.usage.completion_tokens == 3 * count_text(ANSWER, MODEL)
    chunks = list(client.chat.completions.create(model=MODEL, messages=Q, n=2, stream=True))
    for index in (0, 1):
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices and c.choices[0].index == index)
        assert text == ANSWER


def test_azure_openai_client_over_the_fake_transport():
    fake = FakeProvider()
    client = openai.AzureOpenAI(
        api_key="k",
        api_version="2024-10-21",
        azure_endpoint="https://example.openai.azure.com",
        azure_deployment="my-gpt4o",
        http_client=httpx.Client(transport=FakeTransport(fake)),
        max_retries=0,
    )
    reply = client.chat.completions.create(model="my-gpt4o", messages=Q)
    assert reply.choices[0].message.content == ANSWER
    assert fake.last.path == "/openai/deployments/my-gpt4o/chat/completions"
    assert fake.last.model == "my-gpt4o"
