"""LiteLLM: ``litellm.completion`` / ``litellm.acompletion``, plain and streamed.

LiteLLM answers in OpenAI's shape (``ModelResponse``, ``ModelResponseStream``), so this adapter
is the chat adapter with LiteLLM's own types and its usage fields (Anthropic cache writes are
reported as ``cache_creation_input_tokens``). The provider of a call is the model's prefix
(``anthropic/claude-...``) or ``litellm`` when there is none.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._call import Call, Result, Tags, Usage
from .openai import ChatAdapter, _get, usage_from_openai


def usage_from_litellm(u: Any) -> Usage:
    base = usage_from_openai(u)
    if u is None:
        return base
    read = _get(u, "cache_read_input_tokens", None)
    write = _get(u, "cache_creation_input_tokens", None)
    cached = base.cached_read_tokens or int(read or 0)
    written = base.cache_write_tokens or int(write or 0)
    return Usage(
        input_tokens=base.input_tokens,
        output_tokens=base.output_tokens,
        cached_read_tokens=cached,
        cache_write_tokens=written,
    )


class CompletionAdapter(ChatAdapter):
    provider = "litellm"
    api = "completion"

    def to_call(self, kwargs: dict[str, Any], tags: Tags) -> Call:
        call = super().to_call(kwargs, tags)
        model = call.requested_model
        provider = model.split("/", 1)[0] if "/" in model else (kwargs.get("custom_llm_provider") or "litellm")
        return call.evolve(provider=provider, api=self.api)

    def to_result(self, call: Call, raw: Any) -> Result:
        res = super().to_result(call, raw)
        return res.evolve(usage=usage_from_litellm(getattr(raw, "usage", None)))

    def caller_wants_usage_chunk(self, call: Call) -> bool:
        opts = call.params.get("stream_options")
        return bool(isinstance(opts, Mapping) and opts.get("include_usage"))

    def build_response(self, doc: dict[str, Any]) -> Any:
        from litellm import ModelResponse

        return ModelResponse(**doc)

    def build_chunk(self, doc: dict[str, Any]) -> Any:
        from litellm.types.utils import ModelResponseStream

        doc = dict(doc)
        usage = doc.pop("usage", None)
        chunk = ModelResponseStream(**doc)
        if usage is not None:
            chunk.usage = usage
        return chunk


__all__ = ["CompletionAdapter", "usage_from_litellm"]
