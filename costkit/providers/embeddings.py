"""Embeddings: OpenAI's ``embeddings.create`` and litellm's ``embedding`` / ``aembedding``.

An embeddings request spends input tokens only. Its Call carries the inputs as user messages (what
a guardrail or a budget counts) and ``input`` itself stays in ``params``, sent back untouched; its
Result has no text, the SDK's response object in ``raw`` and the provider's usage. The answer is
deterministic, so the exact cache may keep it (a vector cache), and nothing streams.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .._call import Call, Result, Tags, Usage
from .base import build_call, require

EMBEDDING_APIS = ("embeddings", "embedding")  # openai's and litellm's names


class EmbeddingsAdapter:
    client = "openai"
    provider = "openai"
    api = "embeddings"

    def to_call(self, kwargs: dict[str, Any], tags: Tags) -> Call:
        given = require(kwargs, "input", "create")
        inputs = [given] if isinstance(given, str) else list(given)
        messages = [{"role": "user", "content": x if isinstance(x, str) else str(x)} for x in inputs]
        call = build_call(self, kwargs, tags, messages, consumed=("model",), keep_original=True)
        return call

    def to_kwargs(self, call: Call) -> dict[str, Any]:
        return {**call.params, "model": call.model}

    def to_result(self, call: Call, raw: Any) -> Result:
        usage = getattr(raw, "usage", None)
        tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
        return Result(
            usage=Usage(input_tokens=tokens), finish_reason="stop", model=getattr(raw, "model", None), raw=raw
        )

    def accumulator(self, call: Call) -> Any:
        raise TypeError("embeddings do not stream")

    def replay(self, call: Call, result: Result) -> Iterable[Any]:
        raise TypeError("embeddings do not stream")


class LiteLLMEmbeddingAdapter(EmbeddingsAdapter):
    """``litellm.embedding``: the provider is the one serving the model, the client is litellm."""

    client = "litellm"
    api = "embedding"

    def __init__(self) -> None:
        from .litellm import CompletionAdapter

        self._providers = CompletionAdapter()

    def to_call(self, kwargs: dict[str, Any], tags: Tags) -> Call:
        call = super().to_call(kwargs, tags)
        custom = kwargs.get("custom_llm_provider")
        provider = self._providers.provider_of(call.requested_model, custom if isinstance(custom, str) else None)
        return call.evolve(provider=provider)


__all__ = ["EMBEDDING_APIS", "EmbeddingsAdapter", "LiteLLMEmbeddingAdapter"]
