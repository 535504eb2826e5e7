"""Shared helpers for the cache tests: real openai ChatCompletion objects and a counting terminal."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from costkit import Call, Result, Tags
from costkit._pipeline import Pipeline
from costkit._stream import ResultStream
from costkit.providers.openai import ChatAdapter

ADAPTER = ChatAdapter()


def chat_call(text: str = "What is the capital of France?", *, tags: Tags | None = None, **params: Any) -> Call:
    params.setdefault("temperature", 0)
    kwargs = {"model": params.pop("model", "gpt-4o-mini"), "messages": [{"role": "user", "content": text}], **params}
    return ADAPTER.to_call(kwargs, tags or Tags())


def completion(
    content: str | None = "Paris.",
    *,
    finish: str = "stop",
    tool_calls: list | None = None,
    refusal: str | None = None,
    model: str = "gpt-4o-mini-2024-07-18",
) -> Any:
    from openai.types.chat import ChatCompletion

    msg: dict[str, Any] = {"role": "assistant", "content": content, "refusal": refusal}
    if tool_calls:
        msg["tool_calls"] = tool_calls
    return ChatCompletion.model_validate(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1700000000,
            "model": model,
            "choices": [{"index": 0, "message": msg, "finish_reason": finish}],
            "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15},
        }
    )


class Provider:
    """A terminal that answers with ``make(call)`` and counts its calls; prices at a fixed cost."""

    def __init__(self, make: Callable[[Call], Any] | None = None, cost: float = 0.001) -> None:
        self.make = make or (lambda call: completion())
        self.cost = cost
        self.calls: list[Call] = []

    def __call__(self, call: Call) -> Result:
        self.calls.append(call)
        raw = self.make(call)
        if isinstance(raw, Exception):
            raise raw
        if call.stream:
            chunks = list(ADAPTER.replay(with_usage_chunk(call), ADAPTER.to_result(call, raw)))
            return Result(stream=ResultStream(chunks, ADAPTER.accumulator(call), finalize=self._price))
        return self._price(ADAPTER.to_result(call, raw))

    async def acall(self, call: Call) -> Result:
        return self(call)

    def _price(self, result: Result) -> Result:
        return result.evolve(cost_usd=self.cost)


def with_usage_chunk(call: Call) -> Call:
    """The call as the terminal sends it: streams ask for the final usage chunk."""
    return call.evolve(params={**call.params, "stream_options": {"include_usage": True}})


def pipeline(policy: Any, provider: Provider) -> Pipeline:
    return Pipeline([policy], provider, provider.acall)
