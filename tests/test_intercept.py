"""Every SDK method that spends money goes through the chain and leaves one record per attempt
(the real SDKs over HTTP against costkit.testing.serve())."""

from __future__ import annotations

import asyncio
import inspect
import json
import warnings

import attrs
import pydantic
import pytest

import costkit
from costkit.sinks import MemorySink
from costkit.testing import Failure, FakeProvider, serve

Q = [{"role": "user", "content": "Where is Paris?"}]
PLACE = '{"city": "Paris", "country": "France"}'


class Place(pydantic.BaseModel):
    city: str
    country: str


@pytest.fixture(scope="module")
def server():
    with serve(FakeProvider()) as srv:
        yield srv


@pytest.fixture
def fake(server):
    server.fake.reset()
    server.fake.clear_rules()
    server.fake.on("Paris", PLACE)
    return server.fake


@pytest.fixture
def sink():
    return MemorySink()


def wrapped_openai(server, sink, policies=()):
    return costkit.wrap(server.openai_client(), list(policies), sink=sink)


def wrapped_anthropic(server, sink, policies=()):
    return costkit.wrap(server.anthropic_client(), list(policies), sink=sink)


def price(model, usage):
    return costkit.pricing.cost(model, usage)


# ------------------------------------------------------------------ openai


def test_chat_parse_runs_through_the_chain_and_a_hit_is_parsed_again(server, fake, sink):
    client = wrapped_openai(server, sink, [costkit.ExactCache(store="memory")])
    first = client.chat.completions.parse(model="gpt-4o-mini", messages=Q, response_format=Place, temperature=0)
    second = client.chat.completions.parse(model="gpt-4o-mini", messages=Q, response_format=Place, temperature=0)
    assert type(first).__name__.startswith("ParsedChatCompletion") and type(second) is type(first)
    assert first.choices[0].message.parsed == second.choices[0].message.parsed == Place(city="Paris", country="France")
    assert len(fake.calls) == 1  # the second came from the cache, parsed by the SDK's own parser
    call, hit = sink.records
    assert (call.kind, call.success, hit.kind, hit.cache) == ("call", True, "cache_hit", "exact")
    assert call.cost_usd == pytest.approx(
        price(
            "gpt-4o-mini",
            first.usage
            and costkit.Usage(input_tokens=first.usage.prompt_tokens, output_tokens=first.usage.completion_tokens),
        )
    )
    assert fake.calls[0].body["response_format"]["type"] == "json_schema"  # what the SDK sent, schema and all


def test_chat_stream_helper_is_recorded_with_exact_usage_and_per_call_tags(server, fake, sink):
    client = wrapped_openai(server, sink)
    with client.chat.completions.stream(model="gpt-4o", messages=Q, costkit={"feature": "helper"}) as stream:
        for _ in stream:
            pass
        final = stream.get_final_completion()
    assert final.choices[0].message.content == PLACE
    (record,) = sink.records
    assert final.usage is None  # the helper did not ask for usage: costkit's own usage chunk stayed hidden
    assert (record.feature, record.usage_estimated) == ("helper", False) and record.output_tokens > 0
    assert "X-Costkit-Tags" not in fake.calls[0].headers and "x-costkit-tags" not in fake.calls[0].headers


def test_responses_parse_and_stream_helpers_are_recorded(server, fake, sink):
    client = wrapped_openai(server, sink)
    parsed = client.responses.parse(model="gpt-4o", input="Where is Paris?", text_format=Place)
    assert parsed.output_parsed == Place(city="Paris", country="France")
    with client.responses.stream(model="gpt-4o", input="Where is Paris?") as stream:
        for _ in stream:
            pass
        final = stream.get_final_response()
    assert final.output_text == PLACE
    assert [r.kind for r in sink.records] == ["call", "call"] and all(r.cost_usd > 0 for r in sink.records)
    assert sink.records[1].output_tokens == final.usage.output_tokens


def test_with_raw_response_and_with_streaming_response_are_recorded(server, fake, sink):
    client = wrapped_openai(server, sink, [costkit.ExactCache(store="memory")])
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=Q, temperature=0)
    assert raw.http_request is not None and raw.parse().choices[0].message.content == PLACE
    with client.chat.completions.with_streaming_response.create(model="gpt-4o", messages=Q, temperature=0) as resp:
        assert resp.parse().choices[0].message.content == PLACE
    streamed = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=Q, stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in streamed.parse() if c.choices)
    assert text == PLACE
    assert len(fake.calls) == 3  # a raw response is never answered from the cache
    assert [r.kind for r in sink.records] == ["call", "call", "call"]
    assert sink.records[2].usage_estimated is False and sink.records[2].output_tokens > 0


def test_streams_are_the_sdks_own_stream_class(server, fake, sink):
    import openai

    client = wrapped_openai(server, sink, [costkit.ExactCache(store="memory")])
    ask = {"model": "gpt-4o", "messages": Q, "stream": True, "temperature": 0}
    made = client.chat.completions.create(**ask)
    assert isinstance(made, openai.Stream) and made.response.status_code == 200
    assert "".join(c.choices[0].delta.content or "" for c in made) == PLACE
    hit = client.chat.completions.create(**ask)  # replayed from the cache
    assert isinstance(hit, openai.Stream) and "".join(c.choices[0].delta.content or "" for c in hit) == PLACE
    with client.chat.completions.with_streaming_response.create(**ask) as response:
        parsed = response.parse()
        assert isinstance(parsed, openai.Stream) and not response.is_closed
        parsed.close()  # the SDK's close: the response, and costkit's record of a stream cut short
    raw = client.chat.completions.with_raw_response.create(**ask).parse()
    with raw:
        assert isinstance(raw, openai.Stream) and next(raw).choices[0].delta.role == "assistant"
    assert len(fake.calls) == 3 and [r.kind for r in sink.records] == ["call", "cache_hit", "call", "call"]
    assert [r.notes.get("stream_incomplete") for r in sink.records] == [None, None, True, True]


async def test_async_streams_are_the_sdks_own_stream_class(server, fake, sink):
    import anthropic
    import openai

    oa = costkit.wrap(server.async_openai_client(), sink=sink)
    made = await oa.chat.completions.create(model="gpt-4o", messages=Q, stream=True)
    assert isinstance(made, openai.AsyncStream)
    assert "".join([c.choices[0].delta.content or "" async for c in made]) == PLACE
    an = costkit.wrap(server.async_anthropic_client(), sink=sink)
    async with await an.messages.create(model="claude-haiku-4-5", max_tokens=50, messages=Q, stream=True) as events:
        assert isinstance(events, anthropic.AsyncStream)
        assert (await events.__anext__()).type == "message_start"
    got = [(r.client, r.notes.get("stream_incomplete")) for r in sink.records]
    assert got == [("openai", None), ("anthropic", True)]


def test_embeddings_are_recorded_budgeted_and_cached(server, fake, sink):
    limit = costkit.BudgetLimit(usd=1.0)
    budget = costkit.Budget([limit])
    client = wrapped_openai(server, sink, [costkit.ExactCache(store="memory"), budget])
    first = client.embeddings.create(model="text-embedding-3-small", input=["cheap", "vectors"])
    second = client.embeddings.create(model="text-embedding-3-small", input=["cheap", "vectors"])
    assert first.data[0].embedding == second.data[0].embedding and len(fake.calls) == 1
    call, hit = sink.records
    assert (call.kind, call.input_tokens, call.output_tokens) == ("call", first.usage.prompt_tokens, 0)
    assert call.cost_usd == pytest.approx(
        price("text-embedding-3-small", costkit.Usage(input_tokens=first.usage.prompt_tokens))
    )
    assert (hit.cache, hit.savings) == ("exact", {"exact": pytest.approx(call.cost_usd)})
    assert budget.spent(limit) == pytest.approx(call.cost_usd)


def test_a_spending_path_costkit_cannot_record_says_so_once(server, fake, sink):
    client = wrapped_openai(server, sink)

    def generate():
        try:
            client.images.generate(prompt="a cat", model="gpt-image-1")
        except Exception:  # the fake answers no images: the SDK's own error; the warning came first
            pass

    with pytest.warns(costkit.CostkitWarning, match=r"client\.images\.generate"):
        generate()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        generate()  # said once
    assert sink.records == []


def costkit_warnings(seen):
    return [str(w.message) for w in seen if issubclass(w.category, costkit.CostkitWarning)]


def test_a_request_costkit_cannot_read_goes_out_as_sent_and_says_so_once(server, fake, sink):
    import openai

    client = wrapped_openai(server, sink)
    # the Responses API takes a request without model= (it continues previous_response_id); the fake
    # refuses it, so the caller must get the SDK's own error, not costkit's
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        for previous in ("resp_1", "resp_2"):
            with pytest.raises(openai.BadRequestError):
                client.responses.create(previous_response_id=previous, input="and then?", costkit={"feature": "f"})
    [said] = costkit_warnings(seen)
    assert "a responses request that costkit cannot read" in said and "no cost record" in said
    assert [c.body for c in fake.calls] == [
        {"previous_response_id": "resp_1", "input": "and then?"},
        {"previous_response_id": "resp_2", "input": "and then?"},
    ]
    assert "x-costkit-tags" not in fake.last.headers and sink.records == []


class NotTheAPIsObject(FakeProvider):
    """Answers 200 with JSON that is not the API's object, as a proxy's status page or a mock's stub does."""

    def handle(self, method, path, headers, body):
        answer = super().handle(method, path, headers, body)
        return attrs.evolve(answer, body=b'{"detail": "accepted by the gateway"}') if answer.status == 200 else answer


def unreadable_sdk_call(server, sdk, sink):
    """The raw and the wrapped ``create`` of ``sdk`` on ``server``, with the same arguments."""
    if sdk == "openai":
        ask = {"model": "gpt-4o", "messages": Q}
        raw, wrapped = server.openai_client(), wrapped_openai(server, sink)
        return raw.chat.completions, wrapped.chat.completions, ask
    ask = {"model": "claude-haiku-4-5", "max_tokens": 50, "messages": Q}
    raw, wrapped = server.anthropic_client(), wrapped_anthropic(server, sink)
    return raw.messages, wrapped.messages, ask


def check_recorded_unreadable(sink, seen, error):
    [rec] = sink.records  # the prompt was sent and billed: recorded, tokens estimated, no output known
    assert (rec.success, rec.usage_estimated, rec.output_tokens) == (True, True, 0) and rec.input_tokens > 0
    assert rec.notes == {"response_unreadable": error}
    [said] = costkit_warnings(seen)
    assert "response was not the API's own object" in said and "estimated tokens" in said


# what costkit's record says: chat completions builds an object without usage (counted, never $0),
# messages one costkit cannot read (no content list)
@pytest.mark.parametrize(("sdk", "note"), [("openai", "no usage"), ("anthropic", "TypeError")])
def test_a_response_body_that_is_not_the_apis_object_reaches_the_caller(sdk, note, sink):
    with serve(NotTheAPIsObject()) as srv:
        raw, wrapped, ask = unreadable_sdk_call(srv, sdk, sink)
        expected = raw.create(**ask)  # the SDK builds what it can, unvalidated
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            got = wrapped.create(**ask)
        assert got == expected and type(got) is type(expected) and len(srv.fake.calls) == 2
    check_recorded_unreadable(sink, seen, note)


@pytest.mark.parametrize("sdk", ["openai", "anthropic"])
def test_a_raw_response_whose_body_is_cut_short_reaches_the_caller(server, fake, sink, sdk):
    raw, wrapped, ask = unreadable_sdk_call(server, sdk, sink)
    fake.fail_next(2, Failure.malformed())  # a 200 whose JSON stops half way
    expected = raw.with_raw_response.create(**ask)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        got = wrapped.with_raw_response.create(**ask)  # no exception: parse() is the caller's to call
    assert type(got) is type(expected) and got.status_code == expected.status_code == 200
    assert len(got.http_response.content) == len(expected.http_response.content)  # the same answer, cut alike
    for response in (expected, got):
        with pytest.raises(json.JSONDecodeError):  # as the SDK's own does, when the caller parses it
            response.parse()
    check_recorded_unreadable(sink, seen, "JSONDecodeError")


class AnswersInTheBackground(FakeProvider):
    """Answers a ``background=True`` Responses call as the API does: at once, queued, with no usage."""

    def handle(self, method, path, headers, body):
        answer = super().handle(method, path, headers, body)
        if answer.status != 200 or not json.loads(body or b"{}").get("background"):
            return answer
        queued = {**json.loads(answer.body), "status": "queued", "output": [], "usage": None}
        return attrs.evolve(answer, body=json.dumps(queued).encode())


def test_a_background_responses_call_is_recorded_at_its_estimated_prompt_and_says_why(sink):
    with serve(AnswersInTheBackground()) as srv:
        client = wrapped_openai(srv, sink)
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            got = client.responses.create(model="gpt-4o", input="Summarize the French revolution.", background=True)
            client.responses.create(model="gpt-4o", input="And the Russian one.", background=True)
    assert (got.status, got.usage) == ("queued", None)
    first, second = sink.records  # both billed for their prompt: counted, never $0; no output known yet
    for rec in (first, second):
        assert (rec.success, rec.usage_estimated, rec.output_tokens) == (True, True, 0)
        assert rec.input_tokens > 0 and rec.cost_usd > 0 and rec.notes == {"usage_pending": "queued"}
    [said] = costkit_warnings(seen)  # once, and about this case: not "not the API's own object"
    assert "background responses call came back 'queued'" in said and "retrieve()" in said
    assert "not the API's own object" not in said


class DropsMidBody(FakeProvider):
    """Sends half of each whole answer, then drops the connection: a transport failure, not a body to read."""

    def handle(self, method, path, headers, body):
        answer = super().handle(method, path, headers, body)
        if answer.status != 200 or answer.frames is not None:
            return answer
        return attrs.evolve(answer, frames=(answer.body[: len(answer.body) // 2],), drop=True)


def test_a_connection_lost_while_reading_a_streamed_body_fails_the_attempt(sink):
    with serve(DropsMidBody()) as srv:
        raw, wrapped = srv.openai_client(), wrapped_openai(srv, sink)
        ask = {"model": "gpt-4o", "messages": Q}
        with pytest.raises(Exception) as expected:
            with raw.chat.completions.with_streaming_response.create(**ask) as response:
                response.parse()
        with pytest.raises(type(expected.value)):  # what the raw client raises, from the same block
            with wrapped.chat.completions.with_streaming_response.create(**ask) as response:
                response.parse()
    [rec] = sink.records  # the prompt was sent: billed at its counted input, as a failed attempt
    assert (rec.success, rec.error_type, rec.usage_estimated) == (False, type(expected.value).__name__, True)
    assert rec.input_tokens > 0 and "response_unreadable" not in rec.notes


async def test_an_async_raw_response_whose_body_is_cut_short_reaches_the_caller(server, fake, sink):
    client = costkit.wrap(server.async_openai_client(), sink=sink)
    fake.fail_next(1, Failure.malformed())
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        got = await client.chat.completions.with_raw_response.create(model="gpt-4o", messages=Q)
        with pytest.raises(json.JSONDecodeError):
            got.parse()
    check_recorded_unreadable(sink, seen, "JSONDecodeError")


def test_the_sdks_own_signatures_are_kept():
    import openai

    raw = openai.OpenAI(api_key="k")
    client = costkit.wrap(raw, sink=None)
    for path in (
        "chat.completions.create",
        "chat.completions.parse",
        "chat.completions.stream",
        "responses.create",
        "embeddings.create",
        "copy",
        "with_options",
    ):
        a, b = raw, client
        for part in path.split("."):
            a, b = getattr(a, part), getattr(b, part)
        assert inspect.signature(a) == inspect.signature(b), path


def test_not_given_values_are_the_sdks_not_given(server, fake, sink):
    import openai

    client = wrapped_openai(server, sink, [costkit.Guardrails(max_output_tokens=7)])
    client.chat.completions.create(model="gpt-4o", messages=Q, max_tokens=openai.NOT_GIVEN, temperature=openai.omit)
    assert fake.calls[0].body["max_completion_tokens"] == 7 and "temperature" not in fake.calls[0].body


def test_extra_body_is_read_as_the_body_the_sdk_sends(server, fake, sink):
    client = wrapped_openai(server, sink, [costkit.Guardrails(max_output_tokens=5)])
    client.chat.completions.create(model="gpt-4o", messages=Q, extra_body={"max_tokens": 4000, "n": 2})
    body = fake.calls[0].body
    assert (body["max_tokens"], body["n"]) == (5, 2)
    assert sink.records[0].output_tokens <= 10


async def test_async_parse_stream_and_embeddings(server, fake, sink):
    client = costkit.wrap(server.async_openai_client(), sink=sink)
    parsed = await client.chat.completions.parse(model="gpt-4o-mini", messages=Q, response_format=Place)
    assert parsed.choices[0].message.parsed.city == "Paris"
    async with client.chat.completions.stream(model="gpt-4o-mini", messages=Q) as stream:
        async for _ in stream:
            pass
    await client.embeddings.create(model="text-embedding-3-small", input="x")
    assert [r.kind for r in sink.records] == ["call", "call", "call"] and all(r.priced for r in sink.records)


# ------------------------------------------------------------------ anthropic


def test_anthropic_stream_helper_count_tokens_and_raw_response(server, fake, sink):
    client = wrapped_anthropic(server, sink)
    with client.messages.stream(model="claude-haiku-4-5", max_tokens=50, messages=Q) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == PLACE and final.usage.output_tokens > 0
    counted = client.messages.count_tokens(model="claude-haiku-4-5", messages=Q)
    assert counted.input_tokens > 0  # free: passes through, no record
    raw = client.messages.with_raw_response.create(model="claude-haiku-4-5", max_tokens=50, messages=Q)
    assert raw.parse().content[0].text == PLACE
    assert [r.kind for r in sink.records] == ["call", "call"]
    assert sink.records[0].output_tokens == final.usage.output_tokens
    assert len(fake.calls) == 3


async def test_async_anthropic_stream_helper(server, fake, sink):
    client = costkit.wrap(server.async_anthropic_client(), sink=sink)
    async with client.messages.stream(model="claude-haiku-4-5", max_tokens=50, messages=Q) as stream:
        final = await stream.get_final_message()
    assert final.content[0].text == PLACE and sink.records[0].output_tokens == final.usage.output_tokens


# ------------------------------------------------------------------ litellm


def test_litellm_embedding_and_aembedding(sink):
    from costkit.testing import FakeLiteLLM

    llm = costkit.wrap(FakeLiteLLM(FakeProvider()), sink=sink)
    out = llm.embedding(model="text-embedding-3-small", input=["a", "b"])
    assert len(out.data) == 2
    asyncio.run(llm.aembedding(model="text-embedding-3-small", input=["c"]))
    assert [(r.client, r.provider, r.kind) for r in sink.records] == [("litellm", "openai", "call")] * 2
    assert all(r.cost_usd > 0 and r.output_tokens == 0 for r in sink.records)


def test_litellm_functions_costkit_cannot_record_say_so_once(sink):
    from costkit.testing import FakeLiteLLM

    llm = costkit.wrap(FakeLiteLLM(FakeProvider()), sink=sink)
    with pytest.warns(costkit.CostkitWarning, match=r"litellm\.image_generation"):
        llm.image_generation
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        llm.image_generation  # said once
        llm.completion  # recorded: no warning


def test_anthropic_beta_messages_go_through_the_chain(server, fake, sink):
    client = wrapped_anthropic(server, sink)
    reply = client.beta.messages.create(model="claude-haiku-4-5", max_tokens=50, messages=Q)
    assert reply.content[0].text == PLACE
    (record,) = sink.records
    assert (record.client, record.provider) == ("anthropic", "anthropic")
    assert record.output_tokens == reply.usage.output_tokens


def test_beta_answers_are_cached_apart_from_the_plain_apis_and_by_their_beta_features(server, fake, sink):
    """The plain and the beta messages API share a path and a body, but a beta caller is typed to
    get a BetaMessage: the two are keyed apart (``beta.messages``), and so are different betas."""
    from anthropic.types import Message
    from anthropic.types.beta import BetaMessage

    cache = costkit.ExactCache(store="memory", cache_sampled=True)  # anthropic 2.x takes no temperature
    client = wrapped_anthropic(server, sink, [cache])
    ask = {"model": "claude-haiku-4-5", "max_tokens": 50, "messages": Q}
    plain, again = client.messages.create(**ask), client.messages.create(**ask)
    beta, beta_again = client.beta.messages.create(**ask), client.beta.messages.create(**ask)
    other = client.beta.messages.create(**ask, betas=["context-1m-2025-08-07"])  # another feature: another key
    assert [type(m) for m in (plain, again, beta, beta_again, other)] == [Message] * 2 + [BetaMessage] * 3
    assert beta_again == beta and len(fake.calls) == 3
    assert fake.calls[-1].headers["anthropic-beta"] == "context-1m-2025-08-07"
    assert [r.kind for r in sink.records] == ["call", "cache_hit", "call", "cache_hit", "call"]
    assert cache.stats["stored"] == 3 and cache.stats["hits"] == 2
    with client.beta.messages.stream(**ask) as stream:  # a stream of the beta's own events is not replayed
        assert isinstance(stream.get_final_message(), BetaMessage)
    assert len(fake.calls) == 4 and cache.stats["bypass:beta_stream"] == 1


BETA_CALL = costkit.Call(provider="anthropic", client="anthropic", api="messages", model="claude-haiku-4-5",
                         requested_model="claude-haiku-4-5", messages=tuple(Q))  # fmt: skip


def test_a_stored_plain_message_never_answers_a_beta_call():
    """Even under the same key (a store written by someone else), the beta call's answer must be a
    BetaMessage: a stored plain ``Message`` is refused, not handed over."""
    from anthropic.types import Message

    from costkit._scope import RequestScope
    from costkit._serialize import SerializationError, raw_to_json, result_from_json

    plain = Message.model_validate({
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-haiku-4-5", "stop_reason": "end_turn",
        "content": [{"type": "text", "text": "x"}], "usage": {"input_tokens": 1, "output_tokens": 1},
    })  # fmt: skip
    stored = {"v": 1, "text": "x", "tool_calls": [], "finish_reason": "end_turn", "usage": [1, 1, 0, 0, False],
              "model": "claude-haiku-4-5", "cost_usd": 0.0, "raw": raw_to_json(plain)}  # fmt: skip
    assert result_from_json(stored, source="exact_cache", call=attrs.evolve(BETA_CALL, scope=None)).raw == plain
    with pytest.raises(SerializationError, match="BetaMessage"):
        result_from_json(stored, source="exact_cache", call=attrs.evolve(BETA_CALL, scope=RequestScope(beta=True)))


@pytest.mark.parametrize("system", [None, "Be brief."])
def test_an_anthropic_request_goes_out_with_the_callers_own_system_messages_where_they_were(server, fake, sink, system):
    """Newer Messages APIs take system-role messages inside ``messages``; an unchanged request is
    sent as given (only the leading message costkit made of ``system=`` goes back to ``system``)."""
    messages = [
        {"role": "user", "content": "Where is Paris?"},
        {"role": "assistant", "content": "In France."},
        {"role": "system", "content": "Answer in one word from now on."},
        {"role": "user", "content": "And Rome?"},
    ]
    ask = {"model": "claude-haiku-4-5", "max_tokens": 50, "messages": messages}
    if system is not None:
        ask["system"] = system
    server.anthropic_client().messages.create(**ask)
    wrapped_anthropic(server, sink).messages.create(**ask)
    raw_body, wrapped_body = (c.body for c in fake.calls)
    assert wrapped_body["messages"] == raw_body["messages"] == messages
    assert wrapped_body.get("system") == raw_body.get("system") == system


@pytest.mark.parametrize("sdk", ["openai", "anthropic"])
def test_a_with_streaming_response_body_stays_open_until_the_callers_block_ends(server, fake, sink, sdk):
    """costkit reads the body to record the call; the caller still sees it open, as with the raw SDK."""
    if sdk == "openai":
        wrapped = wrapped_openai(server, sink).chat.completions
        ask = {"model": "gpt-4o", "messages": Q}
    else:
        wrapped = wrapped_anthropic(server, sink).messages
        ask = {"model": "claude-haiku-4-5", "max_tokens": 50, "messages": Q}
    with wrapped.with_streaming_response.create(**ask) as response:
        assert not response.is_closed
        assert json.loads(response.read())["usage"]  # the bytes are there to read
        parsed = response.parse()
    assert response.is_closed
    assert PLACE in str(parsed)
    (record,) = sink.records
    assert record.success and record.output_tokens > 0 and not record.usage_estimated


async def test_an_async_with_streaming_response_body_stays_open_until_the_callers_block_ends(server, fake, sink):
    client = costkit.wrap(server.async_openai_client(), sink=sink)
    async with client.chat.completions.with_streaming_response.create(model="gpt-4o", messages=Q) as response:
        assert not response.is_closed
        parsed = await response.parse()
    assert response.is_closed and parsed.choices[0].message.content == PLACE
    assert [r.success for r in sink.records] == [True]
