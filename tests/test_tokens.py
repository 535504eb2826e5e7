"""costkit.tokens: exact counts offline, OpenAI's published chat and tool numbers, the len/4 fallback."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import warnings

import pytest

from costkit import tokens
from costkit._warn import CostkitWarning

# OpenAI cookbook, "How to count tokens with tiktoken", section 6: verified against the API as
# 129 prompt tokens for gpt-3.5-turbo / gpt-4 (cl100k_base) and 124 for gpt-4o / gpt-4o-mini (o200k_base).
COOKBOOK_MESSAGES = [
    {
        "role": "system",
        "content": "You are a helpful, pattern-following assistant that translates corporate jargon "
        "into plain English.",
    },
    {"role": "system", "name": "example_user", "content": "New synergies will help drive top-line growth."},
    {"role": "system", "name": "example_assistant", "content": "Things working well together will increase revenue."},
    {
        "role": "system",
        "name": "example_user",
        "content": "Let's circle back when we have more bandwidth to touch base on opportunities "
        "for increased leverage.",
    },
    {
        "role": "system",
        "name": "example_assistant",
        "content": "Let's talk later when we're less busy about how to do better.",
    },
    {
        "role": "user",
        "content": "This late pivot means we don't have time to boil the ocean for the client deliverable.",
    },
]

# Same cookbook, section 7: with this tool, 105 prompt tokens (gpt-3.5-turbo, gpt-4) and 101 (gpt-4o, gpt-4o-mini).
COOKBOOK_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_current_weather",
            "description": "Get the current weather in a given location",
            "parameters": {
                "type": "object",
                "properties": {
                    "location": {"type": "string", "description": "The city and state, e.g. San Francisco, CA"},
                    "unit": {
                        "type": "string",
                        "description": "The unit of temperature to return",
                        "enum": ["celsius", "fahrenheit"],
                    },
                },
                "required": ["location"],
            },
        },
    }
]
COOKBOOK_TOOL_MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant that can answer to questions about the weather."},
    {"role": "user", "content": "What's the weather like in San Francisco?"},
]


@pytest.mark.parametrize(
    ("model", "expected"),
    [("gpt-3.5-turbo", 129), ("gpt-4", 129), ("gpt-4-0613", 129), ("gpt-4o", 124), ("gpt-4o-mini", 124)],
)
def test_count_messages_matches_openais_published_numbers(model, expected):
    assert tokens.count_messages(COOKBOOK_MESSAGES, model) == expected


@pytest.mark.parametrize(
    ("model", "expected"), [("gpt-3.5-turbo", 105), ("gpt-4", 105), ("gpt-4o", 101), ("gpt-4o-mini", 101)]
)
def test_count_request_with_tools_matches_openais_published_numbers(model, expected):
    assert tokens.count_messages(COOKBOOK_TOOL_MESSAGES, model) + tokens.count_tools(COOKBOOK_TOOLS, model) == expected
    assert tokens.count_request(COOKBOOK_TOOL_MESSAGES, model, COOKBOOK_TOOLS) == expected


def test_count_text_known_values():
    # tiktoken's README / cookbook examples
    assert tokens.count_text("hello world", "gpt-4") == 2
    assert tokens.count_text("tiktoken is great!", "gpt-3.5-turbo") == 6
    assert tokens.encoding_for_model("gpt-4").encode("tiktoken is great!") == [83, 1609, 5963, 374, 2294, 0]
    assert tokens.get_encoding("p50k_base").encode("hello world") == [31373, 995]
    assert tokens.count_text("", "gpt-4o") == 0
    assert tokens.count_text(None) == 0
    # special-token text is ordinary text, never an error
    assert tokens.count_text("<|endoftext|>", "gpt-4") > 1


def test_encodings_match_tiktokens_reference_construction():
    """Same vocabularies, pattern and special tokens as tiktoken's own definitions."""
    o200k = tokens.get_encoding("o200k_base")
    cl100k = tokens.get_encoding("cl100k_base")
    p50k = tokens.get_encoding("p50k_base")
    assert (o200k.n_vocab, cl100k.n_vocab, p50k.n_vocab) == (200_019, 100_277, 50_281)
    assert o200k.encode("<|endoftext|>", allowed_special="all") == [199_999]
    assert cl100k.encode("<|endofprompt|>", allowed_special="all") == [100_276]
    text = "Ünïcödé, numbers 1234567 and code: def f(x):\n    return x**2  # 😀"
    assert cl100k.decode(cl100k.encode(text)) == text
    assert o200k.decode(o200k.encode(text)) == text
    assert tokens.get_encoding("o200k_base") is o200k  # built once


@pytest.mark.parametrize(
    ("model", "encoding"),
    [
        ("gpt-4o", "o200k_base"),
        ("openai/gpt-4o-2024-08-06", "o200k_base"),
        ("gpt-4o-mini", "o200k_base"),
        ("gpt-4.1-nano", "o200k_base"),
        ("gpt-5", "o200k_base"),
        ("o1", "o200k_base"),
        ("o3-mini", "o200k_base"),
        ("o4-mini", "o200k_base"),
        ("azure/gpt-4.1", "o200k_base"),
        ("ft:gpt-4o-mini:acme::abc", "o200k_base"),
        ("gpt-4", "cl100k_base"),
        ("gpt-4-turbo", "cl100k_base"),
        ("gpt-3.5-turbo", "cl100k_base"),
        ("text-embedding-3-small", "cl100k_base"),
        ("text-davinci-003", "p50k_base"),
        ("claude-sonnet-4-5", "cl100k_base"),
        ("gemini/gemini-2.5-pro", "cl100k_base"),
        (None, "cl100k_base"),
    ],
)
def test_encoding_for_model(model, encoding):
    assert tokens.encoding_name_for_model(model) == encoding
    assert tokens.encoding_for_model(model).name == encoding


def test_count_messages_list_content_images_names_and_tool_calls():
    model = "gpt-4o"
    text = tokens.count_text
    parts = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in this image?"},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "low"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/dog.png"}},
            ],
        }
    ]
    assert (
        tokens.count_messages(parts, model)
        == 3
        + text("user", model)
        + text("What is in this image?", model)
        + tokens.IMAGE_TOKENS_LOW
        + tokens.IMAGE_TOKENS_DEFAULT
        + 3
    )

    call = [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "18C and sunny"},
    ]
    expected = (
        3
        + text("assistant", model)
        + tokens.TOKENS_PER_TOOL_CALL
        + text("get_weather", model)
        + text('{"city": "Paris"}', model)
        + 3
        + text("tool", model)
        + text("call_1", model)
        + text("18C and sunny", model)
        + 3
    )
    assert tokens.count_messages(call, model) == expected

    named = [{"role": "user", "name": "alice", "content": "hi"}]
    assert (
        tokens.count_messages(named, model)
        == 3 + text("user", model) + text("alice", model) + 1 + text("hi", model) + 3
    )


def test_count_messages_accepts_anthropic_content_blocks():
    model = "claude-sonnet-4-5"
    messages = [
        {"role": "assistant", "content": [{"type": "tool_use", "id": "tu_1", "name": "lookup", "input": {"q": "x"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "tu_1", "content": "the answer"}]},
    ]
    text = tokens.count_text
    expected = (
        3
        + text("assistant", model)
        + tokens.TOKENS_PER_TOOL_CALL
        + text("lookup", model)
        + text('{"q":"x"}', model)
        + 3
        + text("user", model)
        + text("the answer", model)
        + 3
    )
    assert tokens.count_messages(messages, model) == expected


def test_count_tools_formats():
    model = "gpt-4o"
    anthropic_tool = [
        {
            "name": "get_current_weather",
            "description": "Get the current weather in a given location",
            "input_schema": COOKBOOK_TOOLS[0]["function"]["parameters"],
        }
    ]
    assert tokens.count_tools(anthropic_tool, model) == tokens.count_tools(COOKBOOK_TOOLS, model)
    assert tokens.count_tools([], model) == 0
    assert tokens.count_tools(None, model) == 0
    no_params = [{"type": "function", "function": {"name": "ping", "description": "Ping."}}]
    assert tokens.count_tools(no_params, model) == 7 + tokens.count_text("ping:Ping", model) + 12
    nested = [
        {
            "type": "function",
            "function": {
                "name": "f",
                "parameters": {
                    "type": "object",
                    "properties": {
                        "items": {
                            "type": "array",
                            "description": "rows",
                            "items": {"type": "object", "properties": {"a": {"type": "string"}}},
                        },
                    },
                },
            },
        }
    ]
    flat = [
        {
            "type": "function",
            "function": {
                "name": "f",
                "parameters": {"type": "object", "properties": {"items": {"type": "array", "description": "rows"}}},
            },
        }
    ]
    assert tokens.count_tools(nested, model) > tokens.count_tools(flat, model)


def test_counting_does_not_touch_tiktokens_cache_or_environment(tmp_path):
    cache = tmp_path / "tiktoken-cache"
    code = (
        "import os, costkit.tokens as t\n"
        "assert t.count_text('hello world', 'gpt-4o') == 2\n"
        "assert t.count_text('hello world', 'gpt-4') == 2\n"
        f"assert 'TIKTOKEN_CACHE_DIR' not in os.environ or os.environ['TIKTOKEN_CACHE_DIR'] == {str(cache)!r}\n"
    )
    env = {**os.environ, "TIKTOKEN_CACHE_DIR": str(cache)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
    assert not cache.exists()  # nothing was downloaded or copied into tiktoken's cache


def test_missing_bundled_files_fall_back_to_len_over_four_with_one_warning(monkeypatch):
    monkeypatch.setattr(tokens, "_encodings", {})
    monkeypatch.setattr(tokens, "tokenizer_dir", lambda: None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert tokens.count_text("a" * 10, "gpt-4") == math.ceil(10 / 4)
        assert tokens.count_text("abcdefgh", "gpt-4") == 2
        assert tokens.count_messages([{"role": "user", "content": "abcd"}], "gpt-4") == 3 + 1 + 1 + 3
    assert len(caught) == 1
    assert issubclass(caught[0].category, CostkitWarning)
    assert "ceil(characters / 4)" in str(caught[0].message)
    with pytest.raises(tokens.EncodingUnavailable):
        tokens.encoding_for_model("gpt-4")


def test_a_damaged_bundled_file_is_rejected(monkeypatch, tmp_path):
    folder = tmp_path / "tokenizers"
    folder.mkdir()
    real = tokens.bundled_bpe_path("cl100k_base")
    (folder / os.path.basename(real)).write_bytes(b"aGVsbG8= 0\n")  # wrong SHA-256
    monkeypatch.setattr(tokens, "_encodings", {})
    monkeypatch.setattr(tokens, "tokenizer_dir", lambda: str(folder))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert tokens.count_text("abcdefgh", "gpt-4") == 2  # the estimate
    assert any("SHA-256" in str(w.message) for w in caught)


def test_unknown_encoding_name():
    with pytest.raises(tokens.EncodingUnavailable):
        tokens.get_encoding("r99k_base")
