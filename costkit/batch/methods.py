"""Which wrapped methods the batch lane runs, and what one answer of each looks like.

A method is named as the application calls it on the wrapped client: ``chat.completions.create``,
``responses.create``, ``embeddings.create`` (OpenAI) or ``messages.create`` (Anthropic). Each
answer comes back as the SDK's own type, parsed from the provider's JSON as the SDK parses it.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

import attrs

from ..errors import ConfigError


@attrs.frozen(kw_only=True)
class BatchMethod:
    """One batchable method: its provider, the batch endpoint, its adapter and its answer type."""

    name: str
    provider: str
    endpoint: str
    response_type: str  # module:Class of one answer

    @property
    def adapter(self) -> Any:
        return _adapter(self.name)

    def parse(self, body: Mapping[str, Any]) -> Any:
        """The SDK object of one answer (``ChatCompletion``, ``Response``, ``CreateEmbeddingResponse``, ``Message``)."""
        module, _, name = self.response_type.partition(":")
        return getattr(importlib.import_module(module), name).model_validate(body)


METHODS: dict[str, BatchMethod] = {
    m.name: m
    for m in (
        BatchMethod(
            name="chat.completions.create",
            provider="openai",
            endpoint="/v1/chat/completions",
            response_type="openai.types.chat:ChatCompletion",
        ),
        BatchMethod(
            name="responses.create",
            provider="openai",
            endpoint="/v1/responses",
            response_type="openai.types.responses:Response",
        ),
        BatchMethod(
            name="embeddings.create",
            provider="openai",
            endpoint="/v1/embeddings",
            response_type="openai.types:CreateEmbeddingResponse",
        ),
        BatchMethod(
            name="messages.create",
            provider="anthropic",
            endpoint="/v1/messages",
            response_type="anthropic.types:Message",
        ),
    )
}


def _adapter(name: str) -> Any:
    if name == "chat.completions.create":
        from ..providers.openai import ChatAdapter

        return ChatAdapter()
    if name == "responses.create":
        from ..providers.openai import ResponsesAdapter

        return ResponsesAdapter()
    if name == "embeddings.create":
        from ..providers.embeddings import EmbeddingsAdapter

        return EmbeddingsAdapter()
    from ..providers.anthropic import MessagesAdapter

    return MessagesAdapter()


def resolve(provider: str, name: str) -> BatchMethod:
    """The method ``name`` of a ``provider`` client, or ``ConfigError`` naming the ones there are."""
    method = METHODS.get(name)
    if method is None or method.provider != provider:
        known = ", ".join(m.name for m in METHODS.values() if m.provider == provider)
        raise ConfigError("method", f"{name!r} has no batch API on a {provider} client; batchable: {known}")
    return method


__all__ = ["METHODS", "BatchMethod", "resolve"]
