"""OpenAI: ``chat.completions.create`` and ``responses.create``, plain and streamed.

For a stream the cost record needs the provider's exact usage; when the caller did not ask for
it (``stream_options.include_usage``) the adapter asks, and its accumulator hides the usage report
that asking adds (a chunk with nothing else in it), so the caller sees the stream it asked for.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from .._call import Call, Result, Tags, Usage, content_text
from .base import as_message, build_call, estimate_usage, require, write_output_cap

_CHAT_FINISH = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
}


def _get(obj: Any, name: str, default: Any = None) -> Any:
    if obj is None:
        return default
    if isinstance(obj, dict):  # a dict (not the Mapping ABC: its isinstance check is slow on the hot path)
        return obj.get(name, default)
    return getattr(obj, name, default)


def usage_from_openai(u: Any) -> Usage:
    """CompletionUsage / ResponseUsage (or their dicts) -> Usage."""
    if u is None:
        return Usage()
    inp = _get(u, "prompt_tokens")
    if inp is not None:  # chat completions (ask only for the names this shape has: a miss is slow in pydantic)
        out = _get(u, "completion_tokens", 0)
        details = _get(u, "prompt_tokens_details")
    else:  # responses
        inp = _get(u, "input_tokens", 0)
        out = _get(u, "output_tokens", 0)
        details = _get(u, "input_tokens_details")
    cached = _get(details, "cached_tokens", 0) or 0
    written = _get(details, "cache_write_tokens", 0) or 0
    return Usage(
        input_tokens=int(inp or 0),
        output_tokens=int(out or 0),
        cached_read_tokens=int(cached),
        cache_write_tokens=int(written),
    )


# --------------------------------------------------------------------------- chat completions


class ChatAdapter:
    client = "openai"
    provider = "openai"
    api = "chat.completions"
    _max_names = ("max_completion_tokens", "max_tokens")

    def to_call(self, kwargs: dict[str, Any], tags: Tags) -> Call:
        messages = (as_message(m) for m in require(kwargs, "messages", "create"))
        return build_call(self, kwargs, tags, messages, consumed=("model", "messages"), keep_original=False)

    def to_kwargs(self, call: Call) -> dict[str, Any]:
        kw = dict(call.params)
        kw["model"] = call.model
        kw["messages"] = list(call.messages)
        write_output_cap(kw, call, self._max_names[0])
        if call.stream:
            opts = dict(kw.get("stream_options") or {})
            if not opts.get("include_usage"):
                opts["include_usage"] = True
                kw["stream_options"] = opts
        return kw

    def caller_wants_usage_chunk(self, call: Call) -> bool:
        return bool((call.params.get("stream_options") or {}).get("include_usage"))

    def to_result(self, call: Call, raw: Any) -> Result:
        choice = raw.choices[0] if raw.choices else None
        message = choice.message if choice is not None else None
        tool_calls = tuple(tc.model_dump() for tc in (message.tool_calls or ())) if message is not None else ()
        finish = _CHAT_FINISH.get(choice.finish_reason or "", choice.finish_reason) if choice is not None else None
        if message is not None and getattr(message, "refusal", None):
            finish = "refusal"
        return Result(
            text=message.content if message is not None else None,
            tool_calls=tool_calls,
            finish_reason=finish,
            usage=usage_from_openai(raw.usage),
            model=raw.model,
            raw=raw,
        )

    def accumulator(self, call: Call) -> ChatAccumulator:
        return ChatAccumulator(self, call, hide_usage_chunk=not self.caller_wants_usage_chunk(call))

    def build_response(self, doc: dict[str, Any]) -> Any:
        """The SDK's completion object from its JSON form (what a folded stream becomes)."""
        from openai.types.chat import ChatCompletion

        return ChatCompletion.model_validate(doc)

    def build_chunk(self, doc: dict[str, Any]) -> Any:
        from openai.types.chat import ChatCompletionChunk

        return ChatCompletionChunk.model_validate(doc)

    def replay(self, call: Call, result: Result) -> Iterable[Any]:
        raw = result.raw
        base = {
            "id": raw.id,
            "created": raw.created,
            "model": raw.model,
            "object": "chat.completion.chunk",
            "system_fingerprint": raw.system_fingerprint,
        }
        chunks = []
        for choice in raw.choices:
            msg = choice.message
            delta: dict[str, Any] = {"role": "assistant", "content": msg.content or ""}
            if msg.refusal:
                delta["refusal"] = msg.refusal
            if msg.tool_calls:
                delta["tool_calls"] = [{"index": i, **tc.model_dump()} for i, tc in enumerate(msg.tool_calls)]
            chunks.append({**base, "choices": [{"index": choice.index, "delta": delta}]})
            chunks.append(
                {**base, "choices": [{"index": choice.index, "delta": {}, "finish_reason": choice.finish_reason}]}
            )
        if self.caller_wants_usage_chunk(call) and raw.usage is not None:
            chunks.append({**base, "choices": [], "usage": raw.usage.model_dump()})
        return [self.build_chunk(c) for c in chunks]


class ChatAccumulator:
    """Folds ChatCompletionChunks into a ChatCompletion (choice 0 drives the Result)."""

    def __init__(self, adapter: ChatAdapter, call: Call, *, hide_usage_chunk: bool) -> None:
        self._adapter = adapter
        self._call = call
        self._hide = hide_usage_chunk
        self._meta: dict[str, Any] = {}
        self._text: dict[int, list[str]] = {}
        self._refusal: dict[int, list[str]] = {}
        self._tools: dict[int, dict[int, dict[str, Any]]] = {}
        self._finish: dict[int, str | None] = {}
        self._usage: Any = None

    def add(self, chunk: Any) -> bool:
        if not self._meta:
            self._meta = {
                "id": chunk.id,
                "created": chunk.created,
                "model": chunk.model,
                "system_fingerprint": getattr(chunk, "system_fingerprint", None),
            }
        usage = getattr(chunk, "usage", None)
        if usage is not None:
            self._usage = usage
        for choice in chunk.choices:
            i = choice.index
            d = choice.delta
            if d is not None:
                if d.content:
                    self._text.setdefault(i, []).append(d.content)
                if getattr(d, "refusal", None):
                    self._refusal.setdefault(i, []).append(d.refusal)
                for tc in d.tool_calls or ():
                    slot = self._tools.setdefault(i, {}).setdefault(
                        tc.index, {"id": None, "type": "function", "function": {"name": "", "arguments": ""}}
                    )
                    if tc.id:
                        slot["id"] = tc.id
                    if tc.function is not None:
                        if tc.function.name:
                            slot["function"]["name"] += tc.function.name
                        if tc.function.arguments:
                            slot["function"]["arguments"] += tc.function.arguments
            if choice.finish_reason is not None:
                self._finish[i] = choice.finish_reason
            else:
                self._finish.setdefault(i, None)
        return not (self._hide and usage is not None and _is_usage_report(chunk))

    def result(self) -> Result:
        indexes = sorted(set(self._finish) | set(self._text) | set(self._tools)) or [0]
        choices = []
        for i in indexes:
            tools = [self._tools[i][k] for k in sorted(self._tools.get(i, {}))]
            message: dict[str, Any] = {"role": "assistant", "content": "".join(self._text.get(i, [])) or None}
            if self._refusal.get(i):
                message["refusal"] = "".join(self._refusal[i])
            if tools:
                message["tool_calls"] = tools
            choices.append(
                {"index": i, "finish_reason": self._finish.get(i) or "stop", "message": message, "logprobs": None}
            )
        text = "".join(self._text.get(indexes[0], []))
        usage = usage_from_openai(self._usage) if self._usage is not None else estimate_usage(self._call, text)
        raw = self._adapter.build_response(
            {
                "id": self._meta.get("id") or "chatcmpl-costkit",
                "created": self._meta.get("created") or int(time.time()),
                "model": self._meta.get("model") or self._call.model,
                "object": "chat.completion",
                "system_fingerprint": self._meta.get("system_fingerprint"),
                "choices": choices,
                "usage": self._usage.model_dump() if self._usage is not None else None,
            }
        )
        res = self._adapter.to_result(self._call, raw)
        finish = self._finish.get(indexes[0])
        return res.evolve(usage=usage, finish_reason=res.finish_reason if finish else None)


# What the usage report OpenAI streams when asked (``stream_options.include_usage``) carries: the
# chunk's identity, the usage, and choices without content (``[]``).
_USAGE_REPORT_FIELDS = frozenset(
    {"id", "object", "created", "model", "system_fingerprint", "service_tier", "obfuscation", "choices", "usage"}
)


def _is_usage_report(chunk: Any) -> bool:
    """Whether ``chunk`` is only the usage report costkit asked for, which it hides. A chunk that says
    anything else (a moderation report, even an empty one, or a field costkit does not know) is one the
    server sends for its own reasons: the caller sees it."""
    if any(_has_delta(c) for c in chunk.choices):
        return False
    present = getattr(chunk, "model_fields_set", None)
    if present is not None and not present <= _USAGE_REPORT_FIELDS:
        return False
    return not getattr(chunk, "model_extra", None)


def _has_delta(choice: Any) -> bool:
    d = choice.delta
    return bool(choice.finish_reason or (d is not None and (d.content or d.tool_calls or getattr(d, "refusal", None))))


# --------------------------------------------------------------------------- responses


class ResponsesAdapter:
    client = "openai"
    provider = "openai"
    api = "responses"

    def to_call(self, kwargs: dict[str, Any], tags: Tags) -> Call:
        messages: list[Mapping[str, Any]] = []
        instructions = kwargs.get("instructions")
        if instructions:
            messages.append({"role": "system", "content": instructions})
        given = kwargs.get("input")
        if isinstance(given, str):
            messages.append({"role": "user", "content": given})
        elif given is not None:
            messages.extend(as_message(m) for m in given)
        return build_call(self, kwargs, tags, messages, consumed=("model",), keep_original=True)

    def to_kwargs(self, call: Call) -> dict[str, Any]:
        kw = dict(call.params)
        kw["model"] = call.model
        if call.scope is None or call.messages is not call.scope.original_messages:
            # A layer rewrote the conversation: system messages become instructions again.
            system = [content_text(m.get("content")) for m in call.messages if m.get("role") == "system"]
            rest = [dict(m) for m in call.messages if m.get("role") != "system"]
            kw.pop("instructions", None)
            if system:
                kw["instructions"] = "\n".join(system)
            kw["input"] = rest
        write_output_cap(kw, call, "max_output_tokens")
        return kw

    def to_result(self, call: Call, raw: Any) -> Result:
        tool_calls = tuple(
            item.model_dump() for item in (raw.output or ()) if getattr(item, "type", None) == "function_call"
        )
        refusal = any(
            getattr(part, "type", None) == "refusal"
            for item in (raw.output or ())
            for part in (getattr(item, "content", None) or ())
        )
        status = getattr(raw, "status", None)
        reason = getattr(getattr(raw, "incomplete_details", None), "reason", None)
        if refusal:
            finish = "refusal"
        elif status == "incomplete" and reason == "max_output_tokens":
            finish = "length"
        elif status == "incomplete" and reason == "content_filter":
            finish = "content_filter"
        elif tool_calls:
            finish = "tool_calls"
        elif status in ("completed", None):
            finish = "stop"
        else:
            finish = str(status)
        return Result(
            text=raw.output_text,
            tool_calls=tool_calls,
            finish_reason=finish,
            usage=usage_from_openai(raw.usage),
            model=raw.model,
            raw=raw,
        )

    def accumulator(self, call: Call) -> ResponsesAccumulator:
        return ResponsesAccumulator(self, call)

    def replay(self, call: Call, result: Result) -> Iterable[Any]:
        from openai.types.responses import (
            ResponseCompletedEvent,
            ResponseCreatedEvent,
            ResponseTextDeltaEvent,
            ResponseTextDoneEvent,
        )

        raw = result.raw
        seq = 0
        events: list[Any] = []
        pending = raw.model_copy(update={"status": "in_progress", "output": [], "usage": None})
        events.append(ResponseCreatedEvent(type="response.created", sequence_number=seq, response=pending))
        for oi, item in enumerate(raw.output or ()):
            if getattr(item, "type", None) != "message":
                continue
            for ci, part in enumerate(item.content or ()):
                text = getattr(part, "text", None)
                if text is None:
                    continue
                seq += 1
                events.append(
                    ResponseTextDeltaEvent(
                        type="response.output_text.delta",
                        sequence_number=seq,
                        item_id=item.id,
                        output_index=oi,
                        content_index=ci,
                        delta=text,
                        logprobs=[],
                    )
                )
                seq += 1
                events.append(
                    ResponseTextDoneEvent(
                        type="response.output_text.done",
                        sequence_number=seq,
                        item_id=item.id,
                        output_index=oi,
                        content_index=ci,
                        text=text,
                        logprobs=[],
                    )
                )
        seq += 1
        events.append(ResponseCompletedEvent(type="response.completed", sequence_number=seq, response=raw))
        return events


class ResponsesAccumulator:
    """The final ``response.completed`` (or ``incomplete``/``failed``) event carries the whole Response."""

    _FINAL = ("response.completed", "response.incomplete", "response.failed")

    def __init__(self, adapter: ResponsesAdapter, call: Call) -> None:
        self._adapter = adapter
        self._call = call
        self._final: Any = None
        self._text: list[str] = []
        self._model: str | None = None

    def add(self, event: Any) -> bool:
        kind = getattr(event, "type", None)
        if kind == "response.output_text.delta":
            self._text.append(event.delta)
        elif kind in self._FINAL:
            self._final = event.response
        elif kind == "response.created":
            self._model = getattr(event.response, "model", None)
        return True

    def result(self) -> Result:
        if self._final is not None:
            return self._adapter.to_result(self._call, self._final)
        text = "".join(self._text)
        return Result(text=text, usage=estimate_usage(self._call, text), model=self._model or self._call.model)


__all__ = ["ChatAdapter", "ResponsesAdapter", "usage_from_openai"]
