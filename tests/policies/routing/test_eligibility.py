"""Eligibility: what a call needs, what a model offers, and the cost order within a tier."""

from __future__ import annotations

from typing import Any

from costkit import Call
from costkit.policies.routing.eligibility import CallSize, Catalog, Needs, needs_of
from costkit.pricing import ModelPrice, PriceBook


def make_call(content: Any = "hi", **kw: Any) -> Call:
    return Call(provider="openai", api="chat", requested_model="big", model="big",
                messages=({"role": "user", "content": content},), **kw)


def test_needs_of_reads_tools_images_and_structured_output() -> None:
    assert needs_of(make_call()) == Needs()
    assert needs_of(make_call(params={"tools": [{"type": "function"}]})).tools
    assert needs_of(make_call(params={"functions": [{"name": "f"}]})).tools
    img = [{"type": "image_url", "image_url": {"url": "u"}}, {"type": "input_image", "image_url": "u"}]
    assert needs_of(make_call(img)) == Needs(vision=True, images=2)
    assert needs_of(make_call(params={"response_format": {"type": "json_object"}})).json_schema
    assert needs_of(make_call(params={"text": {"format": {"type": "json_schema"}}})).json_schema
    assert needs_of(make_call(params={"output_format": {"type": "json_schema"}})).json_schema
    assert not needs_of(make_call(params={"response_format": {"type": "text"}})).json_schema


def book() -> PriceBook:
    return PriceBook(base=None, cost_map=None, overrides=[
        ModelPrice(model="small", input_per_token=1e-7, output_per_token=4e-7, max_input_tokens=100,
                   max_output_tokens=50),
        ModelPrice(model="mid", input_per_token=5e-7, output_per_token=1e-6, supports_function_calling=True,
                   supports_vision=True, supports_response_schema=True),
        ModelPrice(model="big", input_per_token=5e-6, output_per_token=2e-5),
    ])


def test_catalog_uses_the_given_price_book() -> None:
    cat = Catalog(book())
    call = make_call()
    size = CallSize(call)
    assert cat.ineligible("small", call, needs_of(call), size) is None
    tools = make_call(params={"tools": [{"type": "function"}]})
    assert cat.ineligible("small", tools, needs_of(tools), CallSize(tools)) == "no tool calling"
    assert cat.ineligible("mid", tools, needs_of(tools), CallSize(tools)) is None
    assert cat.ineligible("big", tools, needs_of(tools), CallSize(tools)) is None  # the requested model
    long = make_call("lorem ipsum dolor " * 100)
    assert "context window" in (cat.ineligible("small", long, needs_of(long), CallSize(long)) or "")
    wants = make_call(max_output_tokens=60)
    assert cat.ineligible("small", wants, needs_of(wants), CallSize(wants)) == "max output 50 < requested 60"
    assert cat.cheapest_first(["big", "unknown", "mid", "small"], call, size) == ["small", "mid", "big", "unknown"]


def test_call_size_bounds_then_counts() -> None:
    size = CallSize(make_call("hello world"))
    assert size.upper_bound >= size.tokens("gpt-4o") > 0
    assert size.estimate("gpt-4o") == size.tokens("gpt-4o")  # once counted, the count is the estimate
