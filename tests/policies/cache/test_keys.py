"""exact_key: same question -> same key; anything that changes the answer or the scope -> another key."""

from __future__ import annotations

import json

import pydantic
import pytest
from hypothesis import given
from hypothesis import strategies as st

from costkit import Call, Tags
from costkit.policies.cache.keys import canonical_json, exact_key, key_document, normalize_text


def make(**kw: object) -> Call:
    base: dict[str, object] = {
        "provider": "openai",
        "api": "chat",
        "requested_model": "gpt-4o-mini",
        "model": "gpt-4o-mini",
        "messages": ({"role": "user", "content": "What is the capital of France?"},),
        "params": {"temperature": 0},
    }
    base.update(kw)
    return Call(**base)  # type: ignore[arg-type]


def test_key_is_sha256_hex_and_stable_across_instances() -> None:
    k = exact_key(make())
    assert len(k) == 64 and int(k, 16) >= 0
    assert k == exact_key(make())  # new request id, same key


def test_key_is_the_sha256_of_the_documented_canonical_json() -> None:
    import hashlib

    call = make()
    doc = key_document(call)
    assert exact_key(call) == hashlib.sha256(canonical_json(doc).encode()).hexdigest()
    assert doc["model"] == "gpt-4o-mini" and doc["params"] == {"temperature": 0}
    assert json.loads(canonical_json(doc)) == doc


def test_param_order_does_not_matter() -> None:
    a = make(params={"temperature": 0, "top_p": 1, "seed": 7})
    b = make(params={"seed": 7, "top_p": 1, "temperature": 0})
    assert exact_key(a) == exact_key(b)


def test_routed_model_does_not_change_key_but_requested_model_does() -> None:
    assert exact_key(make()) == exact_key(make().with_model("gpt-4o"))
    assert exact_key(make()) != exact_key(make(requested_model="gpt-4o", model="gpt-4o"))


@pytest.mark.parametrize(
    "params",
    [
        {"temperature": 0.5},
        {"temperature": 0, "top_p": 0.5},
        {"temperature": 0, "seed": 1},
        {"temperature": 0, "stop": ["\n"]},
        {"temperature": 0, "tools": [{"type": "function", "function": {"name": "f"}}]},
        {"temperature": 0, "tool_choice": "required"},
        {"temperature": 0, "response_format": {"type": "json_object"}},
        {"temperature": 0, "n": 2},
    ],
)
def test_every_output_changing_param_changes_key(params: dict[str, object]) -> None:
    assert exact_key(make(params=params)) != exact_key(make())


@pytest.mark.parametrize(
    "params",
    [
        {"temperature": 0, "stream": True},
        {"temperature": 0, "stream_options": {"include_usage": True}},
        {"temperature": 0, "timeout": 30},
        {"temperature": 0, "extra_headers": {"x": "y"}},
        {"temperature": 0, "user": "abuse-id-1"},
    ],
)
def test_transport_params_do_not_change_key(params: dict[str, object]) -> None:
    assert exact_key(make(params=params)) == exact_key(make())


def test_not_given_sentinel_is_like_absent() -> None:
    import openai

    assert exact_key(make(params={"temperature": 0, "seed": openai.NOT_GIVEN})) == exact_key(make())


def test_max_output_tokens_and_messages_change_key() -> None:
    assert exact_key(make(max_output_tokens=10)) != exact_key(make())
    other = make(messages=({"role": "user", "content": "What is the capital of Spain?"},))
    assert exact_key(other) != exact_key(make())
    with_system = make(messages=({"role": "system", "content": "be brief"}, *make().messages))
    assert exact_key(with_system) != exact_key(make())


def test_provider_and_api_change_key() -> None:
    assert exact_key(make(provider="litellm")) != exact_key(make())
    assert exact_key(make(api="responses")) != exact_key(make())


def test_scope_tags() -> None:
    base = exact_key(make())
    for field in ("tenant", "prompt_version", "corpus_version", "namespace"):
        assert exact_key(make(tags=Tags(**{field: "x"}))) != base, field
    # feature / route choose a TTL, not the answer
    assert exact_key(make(tags=Tags(feature="faq", route="r"))) == base
    assert exact_key(make(tags=Tags(idempotency_key="k"))) == base
    # user only when asked
    assert exact_key(make(tags=Tags(user="u1"))) == base
    assert exact_key(make(tags=Tags(user="u1")), scope_user=True) != exact_key(
        make(tags=Tags(user="u2")), scope_user=True
    )
    assert exact_key(make(), namespace="a") != exact_key(make(), namespace="b")


def test_normalization_is_opt_in_and_folds_whitespace_and_unicode() -> None:
    spaced = make(messages=({"role": "user", "content": "  What is the   capital\nof France? "},))
    assert exact_key(spaced) != exact_key(make())
    assert exact_key(spaced, normalize=True) == exact_key(make(), normalize=True)
    composed = make(messages=({"role": "user", "content": "caf\u00e9"},))
    decomposed = make(messages=({"role": "user", "content": "cafe\u0301"},))
    assert exact_key(composed) != exact_key(decomposed)
    assert exact_key(composed, normalize=True) == exact_key(decomposed, normalize=True)
    # case is not folded: it can change the answer
    upper = make(messages=({"role": "user", "content": "WHAT IS THE CAPITAL OF FRANCE?"},))
    assert exact_key(upper, normalize=True) != exact_key(make(), normalize=True)
    assert normalize_text(" a \t b\n") == "a b"


def test_content_parts_and_pydantic_response_format() -> None:
    parts = make(messages=({"role": "user", "content": [{"type": "text", "text": "hi"}]},))
    assert exact_key(parts) != exact_key(make())

    class Answer(pydantic.BaseModel):
        city: str

    class Other(pydantic.BaseModel):
        country: str

    a = exact_key(make(params={"response_format": Answer}))
    assert a == exact_key(make(params={"response_format": Answer}))
    assert a != exact_key(make(params={"response_format": Other}))


@given(st.dictionaries(st.sampled_from(["temperature", "top_p", "seed", "stop", "n"]), st.integers(0, 5)))
def test_dict_insertion_order_never_matters(params: dict[str, int]) -> None:
    reversed_params = dict(reversed(list(params.items())))
    assert exact_key(make(params=params)) == exact_key(make(params=reversed_params))
