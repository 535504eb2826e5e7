import pytest

from costkit import Call, ConfigError, Result, Tags, Usage
from costkit._call import RECORD_TAGS, TAG_FIELDS, content_text
from costkit.records import FIELDS


def test_usage_uncached_remainder_and_validation():
    u = Usage(input_tokens=1000, output_tokens=5, cached_read_tokens=600, cache_write_tokens=100)
    assert u.uncached_input_tokens == 300
    assert u.total_tokens == 1005
    with pytest.raises(ValueError, match="input_tokens"):
        Usage(input_tokens=-1)


def test_tags_merge_and_unknown_key_names_the_field():
    merged = Tags(tenant="a", feature="f").merged(Tags(feature="g", user="u"))
    assert merged.as_dict() == {"tenant": "a", "user": "u", "feature": "g"}
    with pytest.raises(ConfigError) as err:
        Tags.from_mapping({"tenant": "a", "tennant": "b"}, where="costkit")
    assert err.value.field == "costkit.tennant"
    with pytest.raises(TypeError, match="tenant must be a str"):
        Tags(tenant=3)


def test_call_is_frozen_and_evolves():
    call = Call(provider="openai", api="chat.completions", requested_model="gpt-4o", model="gpt-4o",
                messages=({"role": "system", "content": "be brief"}, {"role": "user", "content": [
                    {"type": "text", "text": "hello"}, {"type": "image_url", "image_url": {"url": "x"}}]}))
    routed = call.with_model("gpt-4o-mini").with_notes(routed_from="gpt-4o")
    assert (call.model, routed.model, routed.requested_model) == ("gpt-4o", "gpt-4o-mini", "gpt-4o")
    assert routed.request_id == call.request_id
    assert call.system_text == "be brief"
    assert call.last_user_text == "hello"
    with pytest.raises(AttributeError):
        call.model = "x"


def test_content_text_handles_parts_and_tool_results():
    assert content_text(None) == ""
    assert content_text([{"type": "text", "text": "a"}, "b",
                         {"type": "tool_result", "content": [{"type": "text", "text": "c"}]}]) == "a\nb\nc"


def test_result_when_complete_runs_now_without_stream():
    seen = []
    Result(text="x").when_complete(seen.append)
    assert seen[0].text == "x"


def test_record_tags_are_the_tags_a_cost_record_has_a_field_for():
    assert RECORD_TAGS == tuple(f for f in TAG_FIELDS if f in FIELDS)
    tags = Tags(tenant="acme", task="t", arm="b", namespace="ns", idempotency_key="k")
    assert tags.for_record() == {
        "tenant": "acme",
        "user": None,
        "feature": None,
        "route": None,
        "prompt_version": None,
        "task": "t",
        "experiment": None,
        "arm": "b",
    }
