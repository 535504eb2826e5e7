"""Stored answers: JSON only, and rebuilt only as the one SDK class the call being answered returns."""

import json

import pytest

from costkit import Result, Usage
from costkit._call import Tags
from costkit._serialize import (
    RESPONSE_CLASSES,
    SerializationError,
    raw_from_json,
    raw_to_json,
    result_from_json,
    result_to_json,
)
from costkit.providers.anthropic import MessagesAdapter
from costkit.providers.litellm import CompletionAdapter
from costkit.providers.openai import ChatAdapter, ResponsesAdapter

CHAT = ChatAdapter().to_call({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}, Tags())
MESSAGES = MessagesAdapter().to_call(
    {"model": "claude-3-5-haiku-latest", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}, Tags()
)
RESPONSES = ResponsesAdapter().to_call({"model": "gpt-4o", "input": "hi"}, Tags())
LITELLM = CompletionAdapter().to_call({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}, Tags())


def chat_completion():
    from openai.types.chat import ChatCompletion

    return ChatCompletion.model_validate({
        "id": "c", "object": "chat.completion", "created": 1, "model": "gpt-4o",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "hi"}}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}})


def stored(raw_doc):
    return {"v": 1, "text": "hi", "tool_calls": [], "finish_reason": "stop", "usage": [3, 1, 0, 0, False],
            "model": "gpt-4o", "cost_usd": 1e-5, "raw": raw_doc}


def test_round_trip_through_plain_json_rebuilds_the_sdk_object():
    r = Result(text="hi", finish_reason="stop", raw=chat_completion(),
               usage=Usage(input_tokens=3, output_tokens=1, cached_read_tokens=1), cost_usd=1.25e-5)
    doc = json.loads(json.dumps(result_to_json(r)))
    back = result_from_json(doc, source="exact", call=CHAT)
    assert back.raw == r.raw and type(back.raw) is type(r.raw)
    assert (back.text, back.usage, back.cost_usd, back.source) == ("hi", r.usage, 1.25e-5, "exact")


def test_anthropic_message_round_trip():
    from anthropic.types import Message

    m = Message.model_validate({"id": "m", "type": "message", "role": "assistant", "model": "claude-3-5-haiku-latest",
                                "content": [{"type": "text", "text": "yo"}], "stop_reason": "end_turn",
                                "stop_sequence": None, "usage": {"input_tokens": 5, "output_tokens": 2}})
    back = result_from_json(json.loads(json.dumps(result_to_json(Result(text="yo", raw=m)))), source="semantic",
                            call=MESSAGES)
    assert back.raw == m


def test_foreign_types_are_refused_never_imported():
    with pytest.raises(SerializationError, match="refusing"):
        raw_from_json({"type": "os.system", "data": "rm -rf /"}, client="openai", api="chat.completions")
    with pytest.raises(SerializationError, match="corrupt"):
        result_from_json({"v": 1, "text": "x"}, source="exact", call=CHAT)
    with pytest.raises(SerializationError, match="format"):
        result_from_json({"v": 99}, source="exact", call=CHAT)


def test_a_planted_litellm_function_path_is_never_called(monkeypatch):
    """The reported attack: an entry naming ``litellm.completion`` with an attacker's api_base."""
    import litellm

    called = []
    monkeypatch.setattr(litellm, "completion", lambda **kw: called.append(kw))
    planted = stored({"type": "litellm.completion",
                      "data": {"model": "gpt-4o", "messages": [], "api_base": "http://attacker.invalid"}})
    for call in (CHAT, LITELLM, MESSAGES, RESPONSES):
        with pytest.raises(SerializationError, match="refusing"):
            result_from_json(planted, source="exact", call=call)
    assert called == []


def test_a_planted_class_of_another_api_is_refused():
    """A litellm ModelResponse (or any other SDK class) never answers an openai chat call."""
    doc = raw_to_json(chat_completion())
    as_litellm = {**doc, "type": "litellm.types.utils.ModelResponse"}
    with pytest.raises(SerializationError, match="refusing"):
        result_from_json(stored(as_litellm), source="exact", call=CHAT)
    with pytest.raises(SerializationError, match="refusing"):  # the right class for another call's API
        result_from_json(stored(doc), source="exact", call=MESSAGES)
    with pytest.raises(SerializationError, match="refusing"):
        result_from_json(stored({**doc, "type": "importlib.import_module"}), source="exact", call=CHAT)


def test_any_failure_while_rebuilding_is_a_serialization_error():
    doc = raw_to_json(chat_completion())
    bad = [
        stored({**doc, "data": {"choices": "not a list"}}),
        stored({**doc, "data": "a string"}),
        stored(None),  # no response object: the wrapper would hand the caller None
        {**stored(doc), "usage": [1, 2]},
        {**stored(doc), "usage": ["x", 1, 0, 0, False]},
        {**stored(doc), "cost_usd": "free"},
        {**stored(doc), "text": {"a": 1}},
        {**stored(doc), "tool_calls": ["x"]},
        ["not", "a", "dict"],
    ]
    for entry in bad:
        with pytest.raises(SerializationError):
            result_from_json(entry, source="exact", call=CHAT)


def test_every_allowed_class_is_a_response_type_of_its_sdk():
    for (client, api), factory in RESPONSE_CLASSES.items():
        cls = factory()
        assert cls.__module__.split(".")[0] == client, (client, api, cls)
        assert callable(getattr(cls, "model_validate", None))
