import json

import pytest

from costkit import Result, Usage
from costkit._serialize import SerializationError, raw_from_json, result_from_json, result_to_json


def chat_completion():
    from openai.types.chat import ChatCompletion

    return ChatCompletion.model_validate({
        "id": "c", "object": "chat.completion", "created": 1, "model": "gpt-4o",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "hi"}}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}})


def test_round_trip_through_plain_json_rebuilds_the_sdk_object():
    r = Result(text="hi", finish_reason="stop", raw=chat_completion(),
               usage=Usage(input_tokens=3, output_tokens=1, cached_read_tokens=1), cost_usd=1.25e-5)
    doc = json.loads(json.dumps(result_to_json(r)))
    back = result_from_json(doc, source="exact")
    assert back.raw == r.raw and type(back.raw) is type(r.raw)
    assert (back.text, back.usage, back.cost_usd, back.source) == ("hi", r.usage, 1.25e-5, "exact")


def test_anthropic_message_round_trip():
    from anthropic.types import Message

    m = Message.model_validate({"id": "m", "type": "message", "role": "assistant", "model": "claude-3-5-haiku-latest",
                                "content": [{"type": "text", "text": "yo"}], "stop_reason": "end_turn",
                                "stop_sequence": None, "usage": {"input_tokens": 5, "output_tokens": 2}})
    back = result_from_json(json.loads(json.dumps(result_to_json(Result(text="yo", raw=m)))), source="semantic")
    assert back.raw == m


def test_foreign_types_are_refused_never_imported():
    with pytest.raises(SerializationError, match="refusing"):
        raw_from_json({"type": "os.system", "data": "rm -rf /"})
    with pytest.raises(SerializationError, match="corrupt"):
        result_from_json({"v": 1, "text": "x"}, source="exact")
    with pytest.raises(SerializationError, match="format"):
        result_from_json({"v": 99}, source="exact")
