"""The providers' wire formats: request bodies in, response bodies and SSE events out.

Pure functions, no I/O: what OpenAI's ``/v1/chat/completions``, ``/v1/responses``,
``/v1/embeddings`` and Anthropic's ``/v1/messages`` send, in the exact shapes the real SDKs parse
into their own types (checked in tests by parsing every body with the SDKs' strict validators).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import struct
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from .._call import Usage
from .rules import FakeRequest, ToolCall

API_BY_SUFFIX = (
    ("/messages/count_tokens", "count_tokens"),
    ("/chat/completions", "chat"),
    ("/responses", "responses"),
    ("/embeddings", "embeddings"),
    ("/messages", "messages"),
)


def api_of(path: str) -> str | None:
    path = path.split("?", 1)[0].rstrip("/")
    for suffix, api in API_BY_SUFFIX:
        if path.endswith(suffix):
            return api
    return None


# --------------------------------------------------------------------------------------------
# requests -> FakeRequest


def _responses_messages(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Responses API input as chat messages: instructions first, tool calls and outputs as the
    chat API writes them, so one tokenizer counts both APIs the same way."""
    msgs: list[dict[str, Any]] = []
    if isinstance(body.get("instructions"), str) and body["instructions"]:
        msgs.append({"role": "system", "content": body["instructions"]})
    items = body.get("input")
    if isinstance(items, str):
        msgs.append({"role": "user", "content": items})
        return msgs
    for item in items or ():
        if not isinstance(item, Mapping):
            continue
        kind = item.get("type", "message")
        if kind == "message" or "role" in item:
            msgs.append({"role": str(item.get("role", "user")), "content": item.get("content")})
        elif kind == "function_call":
            call = {
                "id": item.get("call_id"),
                "function": {"name": item.get("name"), "arguments": item.get("arguments")},
            }
            msgs.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            msgs.append({"role": "tool", "content": item.get("output"), "tool_call_id": item.get("call_id")})
    return msgs


def _anthropic_messages(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Anthropic's ``system`` as a leading system message, then the messages as sent."""
    msgs: list[dict[str, Any]] = []
    system = body.get("system")
    if system:
        msgs.append({"role": "system", "content": system})
    msgs.extend(dict(m) for m in body.get("messages") or () if isinstance(m, Mapping))
    return msgs


def _azure_deployment(path: str) -> str:
    """Azure OpenAI names the model in the path: ``/openai/deployments/<name>/chat/completions``."""
    parts = path.split("?", 1)[0].split("/")
    return parts[parts.index("deployments") + 1] if "deployments" in parts[:-1] else ""


def parse_request(path: str, headers: Mapping[str, str], body: Mapping[str, Any]) -> FakeRequest:
    """Normalize a request body of any of the four APIs (``ValueError`` for an unknown path)."""
    api = api_of(path)
    if api is None:
        raise ValueError(f"unknown endpoint {path!r}")
    model = str(body.get("model") or _azure_deployment(path))
    stream = bool(body.get("stream", False))
    tools = tuple(t for t in body.get("tools") or () if isinstance(t, Mapping))
    if api == "chat":
        messages = [dict(m) for m in body.get("messages") or () if isinstance(m, Mapping)]
        max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    elif api == "responses":
        messages = _responses_messages(body)
        max_tokens = body.get("max_output_tokens")
    elif api in ("messages", "count_tokens"):
        messages = _anthropic_messages(body)
        max_tokens = body.get("max_tokens")
    else:
        raw = body.get("input")
        inputs = [raw] if isinstance(raw, str) else list(raw or ())
        messages = [{"role": "user", "content": x if isinstance(x, str) else json.dumps(x)} for x in inputs]
        max_tokens = None
    return FakeRequest(
        api=api,
        path=path,
        model=model,
        body=body,
        headers=headers,
        messages=tuple(messages),
        stream=stream,
        max_tokens=int(max_tokens) if isinstance(max_tokens, int | float) else None,
        tools=tools,
    )


# --------------------------------------------------------------------------------------------
# the answer, decided once, rendered per API


@attrs.frozen(kw_only=True)
class Outcome:
    """A reply after max_tokens and usage were applied: what every renderer below draws."""

    id: str
    model: str
    text: str | None
    tool_calls: tuple[ToolCall, ...]
    refusal: str | None
    finish: str  # "stop", "length", "tool_calls" or "refusal"
    usage: Usage
    choices: int = 1  # chat's ``n``: identical choices, usage already counts all of them
    created: int = attrs.field(factory=lambda: int(time.time()))


def pieces(text: str) -> list[str]:
    """How a text streams: one piece per word (leading whitespace kept), so pieces join to it."""
    found = re.findall(r"\s*\S+\s*$|\s*\S+", text)
    return found if "".join(found) == text else [text]


def _tool_id(call: ToolCall, prefix: str, oid: str, i: int) -> str:
    return call.id or f"{prefix}{oid[-12:]}{i}"


# ---- OpenAI chat completions


def _openai_usage(usage: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_read_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _chat_finish(o: Outcome) -> str:
    return {"refusal": "stop"}.get(o.finish, o.finish)


def chat_body(o: Outcome) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": o.text, "refusal": o.refusal, "annotations": []}
    if o.tool_calls:
        message["tool_calls"] = [
            {
                "id": _tool_id(c, "call_", o.id, i),
                "type": "function",
                "function": {"name": c.name, "arguments": c.arguments_json},
            }
            for i, c in enumerate(o.tool_calls)
        ]
    return {
        "id": o.id,
        "object": "chat.completion",
        "created": o.created,
        "model": o.model,
        "choices": [
            {"index": n, "message": message, "finish_reason": _chat_finish(o), "logprobs": None}
            for n in range(o.choices)
        ],
        "usage": _openai_usage(o.usage),
        "service_tier": "default",
        "system_fingerprint": "fp_costkit_fake",
    }


def chat_chunks(o: Outcome, *, include_usage: bool) -> list[dict[str, Any]]:
    """The chunks of a streamed chat completion; a final ``choices: []`` usage chunk if asked."""

    def chunk(delta: dict[str, Any], finish: str | None = None, choice: int = 0) -> dict[str, Any]:
        c: dict[str, Any] = {
            "id": o.id,
            "object": "chat.completion.chunk",
            "created": o.created,
            "model": o.model,
            "system_fingerprint": "fp_costkit_fake",
            "choices": [{"index": choice, "delta": delta, "finish_reason": finish, "logprobs": None}],
        }
        if include_usage:
            c["usage"] = None
        return c

    out: list[dict[str, Any]] = []
    for n in range(o.choices):
        first: dict[str, Any] = {"role": "assistant", "content": "" if o.refusal is None else None, "refusal": None}
        out.append(chunk(first, choice=n))
        if o.refusal is not None:
            out.extend(chunk({"refusal": p}, choice=n) for p in pieces(o.refusal))
        elif o.text:
            out.extend(chunk({"content": p}, choice=n) for p in pieces(o.text))
        for i, c in enumerate(o.tool_calls):
            head = {"index": i, "id": _tool_id(c, "call_", o.id, i), "type": "function"}
            out.append(chunk({"tool_calls": [{**head, "function": {"name": c.name, "arguments": ""}}]}, choice=n))
            out.extend(
                chunk({"tool_calls": [{"index": i, "function": {"arguments": p}}]}, choice=n)
                for p in _split_json(c.arguments_json)
            )
        out.append(chunk({}, _chat_finish(o), choice=n))
    if include_usage:
        out.append(
            {
                "id": o.id,
                "object": "chat.completion.chunk",
                "created": o.created,
                "model": o.model,
                "system_fingerprint": "fp_costkit_fake",
                "choices": [],
                "usage": _openai_usage(o.usage),
            }
        )
    return out


def _split_json(s: str, size: int = 8) -> list[str]:
    return [s[i : i + size] for i in range(0, len(s), size)] or [""]


# ---- OpenAI Responses API


def _responses_usage(usage: Usage) -> dict[str, Any]:
    return {
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {"cached_tokens": usage.cached_read_tokens, "cache_write_tokens": 0},
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": usage.input_tokens + usage.output_tokens,
    }


def _responses_items(o: Outcome) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    if o.text is not None or o.refusal is not None:
        part: dict[str, Any] = (
            {"type": "refusal", "refusal": o.refusal}
            if o.refusal is not None
            else {"type": "output_text", "text": o.text, "annotations": [], "logprobs": []}
        )
        items.append(
            {
                "type": "message",
                "id": f"msg_{o.id[-20:]}",
                "status": "incomplete" if o.finish == "length" else "completed",
                "role": "assistant",
                "content": [part],
            }
        )
    for i, c in enumerate(o.tool_calls):
        items.append(
            {
                "type": "function_call",
                "id": f"fc_{o.id[-18:]}{i}",
                "call_id": _tool_id(c, "call_", o.id, i),
                "name": c.name,
                "arguments": c.arguments_json,
                "status": "completed",
            }
        )
    return items


def responses_body(o: Outcome, request: Mapping[str, Any], *, status: str | None = None) -> dict[str, Any]:
    incomplete = o.finish == "length"
    final = status or ("incomplete" if incomplete else "completed")
    done = final in ("completed", "incomplete")
    return {
        "id": o.id,
        "object": "response",
        "created_at": float(o.created),
        "status": final,
        "model": o.model,
        "output": _responses_items(o) if done else [],
        "parallel_tool_calls": bool(request.get("parallel_tool_calls", True)),
        "tool_choice": request.get("tool_choice", "auto"),
        "tools": list(request.get("tools") or []),
        "instructions": request.get("instructions"),
        "max_output_tokens": request.get("max_output_tokens"),
        "metadata": dict(request.get("metadata") or {}),
        "temperature": request.get("temperature", 1.0),
        "top_p": request.get("top_p", 1.0),
        "previous_response_id": request.get("previous_response_id"),
        "text": {"format": {"type": "text"}},
        "truncation": "disabled",
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if incomplete and done else None,
        "usage": _responses_usage(o.usage) if done else None,
    }


def responses_events(o: Outcome, request: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``response.created`` ... ``response.completed`` (``response.incomplete`` when truncated)."""
    events: list[dict[str, Any]] = []

    def add(kind: str, **fields: Any) -> None:
        events.append({"type": kind, "sequence_number": len(events), **fields})

    add("response.created", response=responses_body(o, request, status="in_progress"))
    add("response.in_progress", response=responses_body(o, request, status="in_progress"))
    for index, item in enumerate(_responses_items(o)):
        if item["type"] == "message":
            part = item["content"][0]
            add("response.output_item.added", output_index=index, item={**item, "status": "in_progress", "content": []})
            empty = {"type": "refusal", "refusal": ""} if part["type"] == "refusal" else {**part, "text": ""}
            common = {"item_id": item["id"], "output_index": index, "content_index": 0}
            add("response.content_part.added", **common, part=empty)
            if part["type"] == "refusal":
                for p in pieces(part["refusal"]):
                    add("response.refusal.delta", **common, delta=p)
                add("response.refusal.done", **common, refusal=part["refusal"])
            else:
                for p in pieces(part["text"]):
                    add("response.output_text.delta", **common, delta=p, logprobs=[])
                add("response.output_text.done", **common, text=part["text"], logprobs=[])
            add("response.content_part.done", **common, part=part)
        else:
            add(
                "response.output_item.added",
                output_index=index,
                item={**item, "arguments": "", "status": "in_progress"},
            )
            for p in _split_json(item["arguments"]):
                add("response.function_call_arguments.delta", item_id=item["id"], output_index=index, delta=p)
            add(
                "response.function_call_arguments.done",
                item_id=item["id"],
                output_index=index,
                name=item["name"],
                arguments=item["arguments"],
            )
        add("response.output_item.done", output_index=index, item=item)
    final = responses_body(o, request)
    add("response.incomplete" if final["status"] == "incomplete" else "response.completed", response=final)
    return events


# ---- OpenAI embeddings


def embedding_vector(text: str, dimensions: int) -> list[float]:
    """A deterministic unit vector: hashed words, so texts sharing words have a high cosine."""
    vec = [0.0] * dimensions
    words = re.findall(r"\w+", text.lower()) or [text]
    for w in words:
        h = hashlib.blake2b(w.encode(), digest_size=8).digest()
        slot = int.from_bytes(h[:4], "little") % dimensions
        vec[slot] += 1.0 if h[4] & 1 else -1.0
    norm = sum(v * v for v in vec) ** 0.5 or 1.0
    return [v / norm for v in vec]


DEFAULT_EMBEDDING_DIMENSIONS = {"text-embedding-3-large": 3072}


def embeddings_body(model: str, inputs: Sequence[str], body: Mapping[str, Any], tokens: int) -> dict[str, Any]:
    dims = body.get("dimensions")
    n = int(dims) if isinstance(dims, int) and dims > 0 else DEFAULT_EMBEDDING_DIMENSIONS.get(model, 1536)
    as_base64 = body.get("encoding_format") == "base64"
    data: list[dict[str, Any]] = []
    for i, x in enumerate(inputs):
        vec = embedding_vector(x, n)
        value: Any = base64.b64encode(struct.pack(f"<{n}f", *vec)).decode() if as_base64 else vec
        data.append({"object": "embedding", "index": i, "embedding": value})
    return {"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


# ---- Anthropic messages


def _anthropic_stop(o: Outcome) -> str:
    return {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "refusal": "refusal"}[o.finish]


def _anthropic_usage(usage: Usage) -> dict[str, Any]:
    return {
        "input_tokens": usage.uncached_input_tokens,
        "output_tokens": usage.output_tokens,
        "cache_creation_input_tokens": usage.cache_write_tokens,
        "cache_read_input_tokens": usage.cached_read_tokens,
        "service_tier": "standard",
    }


def _anthropic_blocks(o: Outcome) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    shown = o.refusal if o.refusal is not None else o.text
    if shown:
        blocks.append({"type": "text", "text": shown, "citations": None})
    for i, c in enumerate(o.tool_calls):
        blocks.append(
            {"type": "tool_use", "id": _tool_id(c, "toolu_", o.id, i), "name": c.name, "input": c.arguments_dict}
        )
    return blocks


def anthropic_body(o: Outcome) -> dict[str, Any]:
    return {
        "id": o.id,
        "type": "message",
        "role": "assistant",
        "model": o.model,
        "content": _anthropic_blocks(o),
        "stop_reason": _anthropic_stop(o),
        "stop_sequence": None,
        "usage": _anthropic_usage(o.usage),
    }


def anthropic_events(o: Outcome) -> list[dict[str, Any]]:
    start_usage = {**_anthropic_usage(o.usage), "output_tokens": min(1, o.usage.output_tokens)}
    message = {**anthropic_body(o), "content": [], "stop_reason": None, "usage": start_usage}
    events: list[dict[str, Any]] = [{"type": "message_start", "message": message}]
    for index, block in enumerate(_anthropic_blocks(o)):
        if block["type"] == "text":
            events.append({"type": "content_block_start", "index": index, "content_block": {**block, "text": ""}})
            events.extend(
                {"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": p}}
                for p in pieces(block["text"])
            )
        else:
            events.append({"type": "content_block_start", "index": index, "content_block": {**block, "input": {}}})
            events.extend(
                {
                    "type": "content_block_delta",
                    "index": index,
                    "delta": {"type": "input_json_delta", "partial_json": p},
                }
                for p in _split_json(json.dumps(block["input"], separators=(",", ":"), sort_keys=True))
            )
        events.append({"type": "content_block_stop", "index": index})
    u = o.usage
    events.append(
        {
            "type": "message_delta",
            "delta": {"stop_reason": _anthropic_stop(o), "stop_sequence": None},
            "usage": {
                "input_tokens": u.uncached_input_tokens,
                "output_tokens": u.output_tokens,
                "cache_creation_input_tokens": u.cache_write_tokens,
                "cache_read_input_tokens": u.cached_read_tokens,
            },
        }
    )
    events.append({"type": "message_stop"})
    return events


# ---- errors

_OPENAI_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "invalid_request_error",
    404: "invalid_request_error",
    429: "rate_limit_exceeded",
}
_ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


def error_body(provider: str, status: int, message: str) -> dict[str, Any]:
    if provider == "anthropic":
        kind = _ANTHROPIC_ERROR_TYPES.get(status, "api_error")
        return {"type": "error", "error": {"type": kind, "message": message}}
    kind = _OPENAI_ERROR_TYPES.get(status, "server_error")
    code = "rate_limit_exceeded" if status == 429 else None
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


# ---- SSE framing


def sse_frames(api: str, events: Iterable[Mapping[str, Any]]) -> list[bytes]:
    """Encode events as SSE frames the way each API does (chat ends with ``data: [DONE]``)."""
    dumps = json.JSONEncoder(separators=(",", ":")).encode
    if api == "chat":
        frames = [b"data: " + dumps(e).encode() + b"\n\n" for e in events]
        frames.append(b"data: [DONE]\n\n")
        return frames
    return [b"event: " + str(e["type"]).encode() + b"\ndata: " + dumps(e).encode() + b"\n\n" for e in events]


__all__ = [
    "Outcome",
    "anthropic_body",
    "anthropic_events",
    "api_of",
    "chat_body",
    "chat_chunks",
    "embedding_vector",
    "embeddings_body",
    "error_body",
    "parse_request",
    "pieces",
    "responses_body",
    "responses_events",
    "sse_frames",
]
