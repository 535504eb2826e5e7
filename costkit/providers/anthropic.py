"""Anthropic: ``messages.create``, plain and streamed.

Anthropic reports cache reads and cache writes apart from ``input_tokens``; costkit's Usage
counts all prompt tokens in ``input_tokens`` (OpenAI's convention), so the adapter adds them in.
The ``system`` keyword becomes a leading system message for the pipeline and is put back as
``system`` (untouched, cache_control blocks included) unless a layer rewrote the messages.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from .._call import Call, Result, Tags, Usage, content_text
from .base import OUTPUT_CAP_NAMES, as_message, build_call, estimate_usage, require, write_output_cap

_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "refusal",
    "pause_turn": "stop",
    "model_context_window_exceeded": "length",
}


def usage_from_anthropic(u: Any) -> Usage:
    def g(name: str) -> int:
        v = u.get(name) if isinstance(u, Mapping) else getattr(u, name, None)
        return int(v or 0)

    if u is None:
        return Usage()
    read, write = g("cache_read_input_tokens"), g("cache_creation_input_tokens")
    return Usage(
        input_tokens=g("input_tokens") + read + write,
        output_tokens=g("output_tokens"),
        cached_read_tokens=read,
        cache_write_tokens=write,
    )


class MessagesAdapter:
    client = "anthropic"
    provider = "anthropic"
    api = "messages"

    def to_call(self, kwargs: dict[str, Any], tags: Tags) -> Call:
        messages = [as_message(m) for m in require(kwargs, "messages", "create")]
        system = kwargs.get("system")
        if system:
            messages.insert(0, {"role": "system", "content": system})
        return build_call(
            self,
            kwargs,
            tags,
            messages,
            consumed=("model", "messages", *OUTPUT_CAP_NAMES),
            keep_original=True,
        )

    def to_kwargs(self, call: Call) -> dict[str, Any]:
        kw = dict(call.params)
        kw["model"] = call.model
        if call.scope is not None and call.messages is call.scope.original_messages:
            # as given: only the leading message made of ``system`` goes back (the caller's own
            # system-role messages, which the API takes inside ``messages`` too, stay where they were)
            kw["messages"] = list(call.messages[1:] if call.params.get("system") else call.messages)
        else:
            system = [m.get("content") for m in call.messages if m.get("role") == "system"]
            kw["messages"] = [dict(m) for m in call.messages if m.get("role") != "system"]
            kw.pop("system", None)
            if len(system) == 1:
                kw["system"] = system[0]
            elif system:
                kw["system"] = "\n".join(content_text(s) for s in system)
        write_output_cap(kw, call, "max_tokens")
        return kw

    def to_result(self, call: Call, raw: Any) -> Result:
        text = "".join(b.text for b in raw.content if getattr(b, "type", None) == "text")
        tool_calls = tuple(b.model_dump() for b in raw.content if getattr(b, "type", None) == "tool_use")
        return Result(
            text=text,
            tool_calls=tool_calls,
            finish_reason=_FINISH.get(raw.stop_reason or "", raw.stop_reason),
            usage=usage_from_anthropic(raw.usage),
            model=raw.model,
            raw=raw,
        )

    def accumulator(self, call: Call) -> MessagesAccumulator:
        return MessagesAccumulator(self, call)

    def replay(self, call: Call, result: Result) -> Iterable[Any]:
        from anthropic.types import (
            RawContentBlockDeltaEvent,
            RawContentBlockStartEvent,
            RawContentBlockStopEvent,
            RawMessageDeltaEvent,
            RawMessageStartEvent,
            RawMessageStopEvent,
        )

        raw = result.raw
        u = raw.usage
        start_usage = u.model_copy(update={"output_tokens": 0})
        events: list[Any] = [
            RawMessageStartEvent(
                type="message_start",
                message=raw.model_copy(
                    update={"content": [], "stop_reason": None, "stop_sequence": None, "usage": start_usage}
                ),
            )
        ]
        for i, block in enumerate(raw.content):
            if block.type == "text":
                events.append(
                    RawContentBlockStartEvent.model_validate(
                        {"type": "content_block_start", "index": i, "content_block": {"type": "text", "text": ""}}
                    )
                )
                events.append(
                    RawContentBlockDeltaEvent.model_validate(
                        {"type": "content_block_delta", "index": i, "delta": {"type": "text_delta", "text": block.text}}
                    )
                )
            elif block.type == "tool_use":
                events.append(
                    RawContentBlockStartEvent.model_validate(
                        {
                            "type": "content_block_start",
                            "index": i,
                            "content_block": {"type": "tool_use", "id": block.id, "name": block.name, "input": {}},
                        }
                    )
                )
                events.append(
                    RawContentBlockDeltaEvent.model_validate(
                        {
                            "type": "content_block_delta",
                            "index": i,
                            "delta": {"type": "input_json_delta", "partial_json": json.dumps(block.input)},
                        }
                    )
                )
            else:
                events.append(
                    RawContentBlockStartEvent.model_validate(
                        {"type": "content_block_start", "index": i, "content_block": block.model_dump()}
                    )
                )
            events.append(RawContentBlockStopEvent(type="content_block_stop", index=i))
        events.append(
            RawMessageDeltaEvent.model_validate(
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": raw.stop_reason, "stop_sequence": raw.stop_sequence},
                    "usage": {
                        "output_tokens": u.output_tokens,
                        "input_tokens": u.input_tokens,
                        "cache_read_input_tokens": u.cache_read_input_tokens,
                        "cache_creation_input_tokens": u.cache_creation_input_tokens,
                    },
                }
            )
        )
        events.append(RawMessageStopEvent(type="message_stop"))
        return events


class MessagesAccumulator:
    """Folds Anthropic stream events into a Message; usage from message_start + message_delta."""

    def __init__(self, adapter: MessagesAdapter, call: Call) -> None:
        self._adapter = adapter
        self._call = call
        self._message: dict[str, Any] | None = None
        self._message_type: Any = None  # Message, or BetaMessage for beta.messages (its own content blocks)
        self._blocks: dict[int, dict[str, Any]] = {}
        self._json: dict[int, list[str]] = {}
        self._usage: dict[str, Any] = {}
        self._stop: dict[str, Any] = {}

    def add(self, event: Any) -> bool:
        kind = getattr(event, "type", None)
        if kind == "message_start":
            self._message_type = type(event.message)
            self._message = event.message.model_dump()
            self._usage.update({k: v for k, v in (self._message.get("usage") or {}).items() if v is not None})
        elif kind == "content_block_start":
            self._blocks[event.index] = event.content_block.model_dump()
        elif kind == "content_block_delta":
            block = self._blocks.setdefault(event.index, {"type": "text", "text": ""})
            d = event.delta
            if d.type == "text_delta":
                block["text"] = block.get("text", "") + d.text
            elif d.type == "input_json_delta":
                self._json.setdefault(event.index, []).append(d.partial_json)
            elif d.type == "thinking_delta":
                block["thinking"] = block.get("thinking", "") + d.thinking
            elif d.type == "signature_delta":
                block["signature"] = d.signature
        elif kind == "message_delta":
            self._stop = {"stop_reason": event.delta.stop_reason, "stop_sequence": event.delta.stop_sequence}
            if event.usage is not None:
                self._usage.update(
                    {
                        k: v
                        for k, v in event.usage.model_dump().items()
                        if v is not None
                        and k
                        in ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")
                    }
                )
        return True

    def result(self) -> Result:
        from anthropic.types import Message

        for i, parts in self._json.items():
            try:
                self._blocks[i]["input"] = json.loads("".join(parts)) if parts else {}
            except (json.JSONDecodeError, KeyError):
                self._blocks.setdefault(i, {})["input"] = {}
        if self._message is None:
            text = "".join(b.get("text", "") for b in self._blocks.values())
            return Result(text=text, usage=estimate_usage(self._call, text), model=self._call.model)
        msg = {
            **self._message,
            "content": [self._blocks[i] for i in sorted(self._blocks)],
            **self._stop,
            "usage": {**(self._message.get("usage") or {}), **self._usage},
        }
        raw = (self._message_type or Message).model_validate(msg)
        res = self._adapter.to_result(self._call, raw)
        if not self._stop:  # never saw message_delta: output tokens unknown, count them
            return res.evolve(usage=estimate_usage(self._call, res.text or ""), finish_reason=None)
        return res


__all__ = ["MessagesAdapter", "usage_from_anthropic"]
