"""Drop-in: the same application code against the raw and the wrapped client gives the same answers
and the same exceptions (the real SDKs over HTTP against costkit.testing.serve())."""

from __future__ import annotations

import asyncio

import pytest

import costkit
from costkit.sinks import MemorySink
from costkit.testing import Failure, FakeProvider, serve, tool_call

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]
WEATHER_TOOL = [{"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]


@pytest.fixture(scope="module")
def server():
    fake = FakeProvider()
    with serve(fake) as srv:
        yield srv


@pytest.fixture(autouse=True)
def script(server):
    fake = server.fake
    fake.reset()
    fake.clear_rules()
    fake.on("capital of France", "Paris.")
    fake.on("weather", tool_call("get_weather", {"city": "Paris"}))
    fake.on("essay", "word " * 200)
    return fake


def stable(obj):
    """An SDK object without the fields that differ between any two responses (ids, timestamps)."""
    drop = {"id", "created", "created_at", "item_id", "completed_at"}

    def clean(x):
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items() if k not in drop}
        if isinstance(x, list):
            return [clean(v) for v in x]
        return x

    return type(obj).__name__, clean(obj.model_dump())


def openai_app(client):
    """Application code written against the openai SDK, unaware of costkit."""
    import openai

    out = []
    out.append(stable(client.chat.completions.create(model="gpt-4o", messages=QUESTION)))
    out.append(stable(client.chat.completions.create(model="gpt-4o-mini", messages=QUESTION, max_tokens=3,
                                                     temperature=0)))
    out.append(stable(client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "weather in Paris?"}], tools=WEATHER_TOOL)))
    out.append(stable(client.chat.completions.create(model="gpt-4o", messages=QUESTION, n=1, seed=7,
                                                     response_format={"type": "text"})))
    out.append([stable(c) for c in client.chat.completions.create(model="gpt-4o", messages=QUESTION, stream=True)])
    out.append([stable(c) for c in client.chat.completions.create(
        model="gpt-4o", messages=QUESTION, stream=True, stream_options={"include_usage": True})])
    out.append(stable(client.responses.create(model="gpt-4o", input="What is the capital of France?")))
    out.append([stable(e) for e in client.responses.create(model="gpt-4o", input="Write an essay", stream=True)])
    errors = []
    for failure in (Failure.rate_limit(retry_after=1), Failure.server_error(500), Failure.server_error(503)):
        client.fake_script.fail_next(1, failure)
        try:
            client.chat.completions.create(model="gpt-4o", messages=QUESTION)
        except openai.APIStatusError as exc:
            errors.append((type(exc).__name__, exc.status_code, exc.response.headers.get("retry-after")))
    try:
        client.chat.completions.create(model="gpt-4o")  # the SDK's own argument check
    except TypeError as exc:
        errors.append(("TypeError", str(exc)))
    out.append(errors)
    return out


def anthropic_app(client):
    import anthropic

    out = []
    out.append(stable(client.messages.create(model="claude-haiku-4-5", max_tokens=200, messages=QUESTION)))
    out.append(stable(client.messages.create(model="claude-haiku-4-5", max_tokens=200, system="Be brief.",
                                             messages=QUESTION, stop_sequences=["\n\n"])))
    out.append(stable(client.messages.create(model="claude-haiku-4-5", max_tokens=5,
                                             messages=[{"role": "user", "content": "an essay please"}])))
    with client.messages.create(model="claude-haiku-4-5", max_tokens=200, messages=QUESTION, stream=True) as s:
        out.append([stable(e) for e in s])
    errors = []
    for failure in (Failure.rate_limit(retry_after=3), Failure.overloaded(529)):
        client.fake_script.fail_next(1, failure)
        try:
            client.messages.create(model="claude-haiku-4-5", max_tokens=10, messages=QUESTION)
        except anthropic.APIStatusError as exc:
            errors.append((type(exc).__name__, exc.status_code))
    out.append(errors)
    return out


class Attach:
    """Gives application code access to the fake's script through either client."""

    def __init__(self, client, fake):
        self._client, self.fake_script = client, fake

    def __getattr__(self, name):
        return getattr(self._client, name)


def test_openai_raw_and_wrapped_agree(server, script):
    sink = MemorySink()
    raw = server.openai_client()
    wrapped = costkit.wrap(server.openai_client(), sink=sink)
    assert openai_app(Attach(raw, script)) == openai_app(Attach(wrapped, script))
    # and costkit saw every provider attempt, failures included
    assert len(sink.records) == 11
    assert [r.error_type for r in sink.records if not r.success] == [
        "RateLimitError", "InternalServerError", "InternalServerError"]


def test_anthropic_raw_and_wrapped_agree(server, script):
    sink = MemorySink()
    raw = server.anthropic_client()
    wrapped = costkit.wrap(server.anthropic_client(), sink=sink)
    assert anthropic_app(Attach(raw, script)) == anthropic_app(Attach(wrapped, script))
    assert len(sink.records) == 6
    truncated = sink.records[2]
    assert truncated.output_tokens == 5


def test_async_openai_raw_and_wrapped_agree(server, script):
    import openai

    async def app(client):
        r = await client.chat.completions.create(model="gpt-4o", messages=QUESTION)
        chunks = [stable(c) async for c in await client.chat.completions.create(
            model="gpt-4o", messages=QUESTION, stream=True)]
        script.fail_next(1, 429, retry_after=1)
        try:
            await client.chat.completions.create(model="gpt-4o", messages=QUESTION)
        except openai.RateLimitError as exc:
            err = (type(exc).__name__, exc.status_code)
        return stable(r), chunks, err

    raw = asyncio.run(app(server.async_openai_client()))
    wrapped = asyncio.run(app(costkit.wrap(server.async_openai_client(), sink=None)))
    assert raw == wrapped


def test_litellm_raw_and_wrapped_agree(server, script):
    import os

    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    def app(llm):
        r = llm.completion(model="openai/gpt-4o", messages=QUESTION, api_base=server.base_url, api_key="sk-x")
        chunks = list(llm.completion(model="openai/gpt-4o", messages=QUESTION, api_base=server.base_url,
                                     api_key="sk-x", stream=True))
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        return r.choices[0].message.content, r.usage.prompt_tokens, r.usage.completion_tokens, text

    sink = MemorySink()
    assert app(litellm) == app(costkit.wrap(litellm, sink=sink))
    assert [r.output_tokens > 0 for r in sink.records] == [True, True]
