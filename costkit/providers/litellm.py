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
    client = "litellm"
    provider = "litellm"
    api = "completion"

    def __init__(self) -> None:
        self._providers: dict[tuple[str, str | None], str] = {}

    def to_call(self, kwargs: dict[str, Any], tags: Tags) -> Call:
        call = super().to_call(kwargs, tags)
        custom = kwargs.get("custom_llm_provider")
        return call.evolve(provider=self.provider_of(call.requested_model, custom if isinstance(custom, str) else None))

    def provider_of(self, model: str, custom: str | None = None) -> str:
        """Who serves ``model``: litellm's ``custom_llm_provider``, the model's ``provider/`` prefix, or
        the provider the cost map lists for it; ``litellm`` when none says (memoized per model)."""
        key = (model, custom)
        found = self._providers.get(key)
        if found is None:
            found = _provider_of(model, custom)
            if len(self._providers) > 4096:
                self._providers.clear()
            self._providers[key] = found
        return found

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


def _provider_of(model: str, custom: str | None) -> str:
    if custom:
        return custom
    if "/" in model:
        return model.split("/", 1)[0]
    from ..pricing import default_pricebook

    price = default_pricebook().get(model)
    provider = price.provider if price is not None else None
    return provider or "litellm"


__all__ = ["CompletionAdapter", "usage_from_litellm"]
