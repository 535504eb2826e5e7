"""Every body and event the fake sends validates as the SDKs' own types."""

from __future__ import annotations

import base64
import json
import struct

import pytest
from anthropic.types import Message, RawMessageStreamEvent
from openai.types import CreateEmbeddingResponse
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from costkit._call import Usage
from costkit.testing import wire
from costkit.testing.rules import ToolCall

USAGE = Usage(input_tokens=1500, output_tokens=7, cached_read_tokens=1024, cache_write_tokens=0)
TOOL = ToolCall(name="get_weather", arguments={"city": "Paris", "unit": "c"})


def outcome(**kw):
    base = dict(id="chatcmpl-fake1", model="gpt-4o-mini", text="Hello there, world.", tool_calls=(), refusal=None)
    base.update(finish="stop", usage=USAGE)
    base.update(kw)
    return wire.Outcome(**base)


def test_api_of_paths():
    assert wire.api_of("/v1/chat/completions") == "chat"
    assert wire.api_of("/openai/v1/responses/") == "responses"
    assert wire.api_of("/v1/embeddings?x=1") == "embeddings"
    assert wire.api_of("/v1/messages") == "messages"
    assert wire.api_of("/v1/models") is None


def test_pieces_join_back_to_the_text():
    for text in ["Hello there, world.", "  leading and trailing  ", "one", "", "a\n\nb"]:
        assert "".join(wire.pieces(text)) == text
    assert wire.pieces("Hello there, world.") == ["Hello", " there,", " world."]


def test_chat_body_validates_with_usage_and_cached_tokens():
    doc = wire.chat_body(outcome())
    c = ChatCompletion.model_validate(doc)
    assert c.choices[0].message.content == "Hello there, world."
    assert c.choices[0].finish_reason == "stop"
    assert (c.usage.prompt_tokens, c.usage.completion_tokens, c.usage.total_tokens) == (1500, 7, 1507)
    assert c.usage.prompt_tokens_details.cached_tokens == 1024


def test_chat_body_tool_calls_and_refusal():
    c = ChatCompletion.model_validate(wire.chat_body(outcome(text=None, tool_calls=(TOOL,), finish="tool_calls")))
    call = c.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris", "unit": "c"}
    assert c.choices[0].finish_reason == "tool_calls"
    r = ChatCompletion.model_validate(wire.chat_body(outcome(text=None, refusal="No.", finish="refusal")))
    assert r.choices[0].message.refusal == "No." and r.choices[0].message.content is None
    assert r.choices[0].finish_reason == "stop"


@pytest.mark.parametrize("include_usage", [True, False])
def test_chat_chunks_validate_and_usage_chunk_only_when_asked(include_usage):
    chunks = [ChatCompletionChunk.model_validate(c) for c in wire.chat_chunks(outcome(), include_usage=include_usage)]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello there, world."
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    if include_usage:
        assert chunks[-1].choices == [] and chunks[-1].usage.prompt_tokens == 1500
        assert all(c.usage is None for c in chunks[:-1])
    else:
        assert all(c.choices for c in chunks) and all(c.usage is None for c in chunks)


def test_chat_chunks_stream_tool_call_arguments():
    docs = wire.chat_chunks(outcome(text=None, tool_calls=(TOOL,), finish="tool_calls"), include_usage=False)
    chunks = [ChatCompletionChunk.model_validate(c) for c in docs]
    args = "".join(
        (tc.function.arguments or "") for c in chunks for tc in (c.choices[0].delta.tool_calls or []) if tc.function
    )
    assert json.loads(args) == {"city": "Paris", "unit": "c"}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_responses_body_and_incomplete():
    request = {"model": "gpt-4o-mini", "input": "hi", "instructions": "Be brief."}
    r = Response.model_validate(wire.responses_body(outcome(id="resp_1"), request))
    assert r.output_text == "Hello there, world." and r.status == "completed"
    assert r.usage.input_tokens == 1500 and r.usage.input_tokens_details.cached_tokens == 1024
    cut = Response.model_validate(wire.responses_body(outcome(id="resp_2", finish="length"), request))
    assert cut.status == "incomplete" and cut.incomplete_details.reason == "max_output_tokens"
    fc = Response.model_validate(wire.responses_body(outcome(id="resp_3", text=None, tool_calls=(TOOL,)), request))
    assert fc.output[0].type == "function_call" and fc.output[0].name == "get_weather"


def test_responses_events_validate_and_end_with_completed():
    adapter = TypeAdapter(ResponseStreamEvent)
    request = {"model": "gpt-4o-mini", "input": "hi"}
    events = [adapter.validate_python(e) for e in wire.responses_events(outcome(id="resp_1"), request)]
    assert events[0].type == "response.created" and events[-1].type == "response.completed"
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == "Hello there, world."
    assert events[-1].response.usage.output_tokens == 7
    assert [e.sequence_number for e in events] == list(range(len(events)))
    refused = [
        adapter.validate_python(e) for e in wire.responses_events(outcome(id="r", refusal="No.", text=None), request)
    ]
    assert any(e.type == "response.refusal.delta" for e in refused)
    tools = [
        adapter.validate_python(e)
        for e in wire.responses_events(outcome(id="r", text=None, tool_calls=(TOOL,)), request)
    ]
    assert any(e.type == "response.function_call_arguments.done" for e in tools)


def test_anthropic_body_counts_uncached_input_separately():
    u = Usage(input_tokens=3000, output_tokens=9, cached_read_tokens=2000, cache_write_tokens=500)
    m = Message.model_validate(wire.anthropic_body(outcome(id="msg_1", model="claude-haiku-4-5", usage=u)))
    assert m.content[0].text == "Hello there, world." and m.stop_reason == "end_turn"
    assert (m.usage.input_tokens, m.usage.cache_read_input_tokens, m.usage.cache_creation_input_tokens) == (
        500,
        2000,
        500,
    )
    t = Message.model_validate(
        wire.anthropic_body(outcome(id="msg_2", text=None, tool_calls=(TOOL,), finish="tool_calls"))
    )
    assert t.content[0].type == "tool_use" and t.content[0].input == {"city": "Paris", "unit": "c"}
    assert t.stop_reason == "tool_use"
    assert Message.model_validate(wire.anthropic_body(outcome(id="m", finish="length"))).stop_reason == "max_tokens"
    assert Message.model_validate(wire.anthropic_body(outcome(id="m", finish="refusal"))).stop_reason == "refusal"


def test_anthropic_events_validate():
    adapter = TypeAdapter(RawMessageStreamEvent)
    o = outcome(id="msg_1", tool_calls=(TOOL,), finish="tool_calls")
    events = [adapter.validate_python(e) for e in wire.anthropic_events(o)]
    kinds = [e.type for e in events]
    assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"]
    assert kinds.count("content_block_start") == 2 and kinds.count("content_block_stop") == 2
    assert events[-2].usage.output_tokens == 7 and events[-2].delta.stop_reason == "tool_use"
    partial = "".join(
        e.delta.partial_json for e in events if e.type == "content_block_delta" and e.delta.type == "input_json_delta"
    )
    assert json.loads(partial) == {"city": "Paris", "unit": "c"}


def test_embeddings_float_and_base64_agree():
    floats = CreateEmbeddingResponse.model_validate(
        wire.embeddings_body("text-embedding-3-small", ["a cat", "a dog"], {"encoding_format": "float"}, 4)
    )
    assert len(floats.data) == 2 and len(floats.data[0].embedding) == 1536 and floats.usage.prompt_tokens == 4
    b64 = wire.embeddings_body("text-embedding-3-small", ["a cat"], {"encoding_format": "base64", "dimensions": 8}, 2)
    raw = base64.b64decode(b64["data"][0]["embedding"])
    assert list(struct.unpack("<8f", raw)) == pytest.approx(wire.embedding_vector("a cat", 8), abs=1e-6)


def test_embedding_vectors_are_unit_and_word_overlap_is_similar():
    a, b, c = (wire.embedding_vector(t, 256) for t in ["refund my order", "refund my order please", "weather in Paris"])
    dot = lambda x, y: sum(p * q for p, q in zip(x, y))  # noqa: E731
    assert dot(a, a) == pytest.approx(1.0)
    assert dot(a, b) > 0.8 > dot(a, c)


def test_error_bodies_per_provider():
    assert wire.error_body("openai", 429, "slow down")["error"]["code"] == "rate_limit_exceeded"
    assert wire.error_body("anthropic", 529, "busy") == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "busy"},
    }


def test_sse_frames():
    frames = wire.sse_frames("chat", [{"a": 1}])
    assert frames == [b'data: {"a":1}\n\n', b"data: [DONE]\n\n"]
    assert wire.sse_frames("messages", [{"type": "ping"}]) == [b'event: ping\ndata: {"type":"ping"}\n\n']


def test_parse_request_normalizes_each_api():
    chat = wire.parse_request(
        "/v1/chat/completions",
        {},
        {"model": "m", "messages": [{"role": "user", "content": "q"}], "max_completion_tokens": 5},
    )
    assert chat.api == "chat" and chat.max_tokens == 5 and chat.last_user_text == "q"
    resp = wire.parse_request(
        "/v1/responses", {}, {"model": "m", "input": "q", "instructions": "sys", "max_output_tokens": 9}
    )
    assert (
        [m["role"] for m in resp.messages] == ["system", "user"] and resp.max_tokens == 9 and resp.system_text == "sys"
    )
    items = [
        {"role": "user", "content": [{"type": "input_text", "text": "weather?"}]},
        {"type": "function_call", "call_id": "c1", "name": "w", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
    ]
    resp2 = wire.parse_request("/v1/responses", {}, {"model": "m", "input": items})
    assert [m["role"] for m in resp2.messages] == ["user", "assistant", "tool"] and resp2.last_user_text == "weather?"
    anth = wire.parse_request(
        "/v1/messages",
        {},
        {
            "model": "c",
            "max_tokens": 3,
            "system": [{"type": "text", "text": "sys"}],
            "messages": [{"role": "user", "content": "q"}],
        },
    )
    assert anth.provider == "anthropic" and anth.messages[0]["role"] == "system" and anth.system_text == "sys"
    emb = wire.parse_request("/v1/embeddings", {}, {"model": "e", "input": ["x", "y"]})
    assert [m["content"] for m in emb.messages] == ["x", "y"]


def test_azure_deployment_names_the_model_when_the_body_does_not():
    r = wire.parse_request("/openai/deployments/dep-1/chat/completions?api-version=x", {}, {"messages": []})
    assert r.model == "dep-1" and r.api == "chat"
    assert wire.parse_request("/v1/chat/completions", {}, {"messages": []}).model == ""
