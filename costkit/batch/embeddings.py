"""OpenAI ``embeddings.create`` as a batch item: kwargs <-> Call, the SDK's response -> Result.

The wrapper does not route embeddings through the policy chain, so only the batch lane needs
this adapter. The inputs become user messages (what a guardrail counts); ``input`` itself stays
in ``params`` and is sent back untouched.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .._call import Call, Result, Tags, Usage
from ..providers.base import build_call, require


class EmbeddingsAdapter:
    client = "openai"
    provider = "openai"
    api = "embeddings"

    def to_call(self, kwargs: dict[str, Any], tags: Tags) -> Call:
        given = require(kwargs, "input", "create")
        inputs = [given] if isinstance(given, str) else list(given)
        messages = [{"role": "user", "content": x if isinstance(x, str) else str(x)} for x in inputs]
        return build_call(self, kwargs, tags, messages, consumed=("model",), keep_original=True)

    def to_kwargs(self, call: Call) -> dict[str, Any]:
        return {**call.params, "model": call.model}

    def to_result(self, call: Call, raw: Any) -> Result:
        usage = getattr(raw, "usage", None)
        tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
        return Result(usage=Usage(input_tokens=tokens), finish_reason="stop", model=raw.model, raw=raw)

    def accumulator(self, call: Call) -> Any:
        raise TypeError("embeddings do not stream")

    def replay(self, call: Call, result: Result) -> Iterable[Any]:
        raise TypeError("embeddings do not stream")


__all__ = ["EmbeddingsAdapter"]
