"""Embeddings bought from a provider (openai-shaped ``client.embeddings.create``), with their cost.

Each request's usage and price go to ``on_cost`` and to the listener a policy installs with
:func:`reporting_costs_to`, so the embeddings a cache asks for become cost records of the request
they served: a cache that hid what it spends would overstate its savings.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import importlib
import inspect
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import attrs
import numpy as np

from ..errors import ConfigError
from .base import VectorLRU, Vectors, check_texts, normalize_rows


@attrs.frozen(kw_only=True)
class EmbeddingCost:
    """What one embeddings request used and cost: enough for a CostRecord of kind ``"embedding"``."""

    model: str
    input_tokens: int
    cost_usd: float | None  # None when costkit has no price for the model
    texts: int
    latency_ms: float
    provider: str = "openai"


CostListener = Callable[[EmbeddingCost], Any]
_COST_LISTENER: contextvars.ContextVar[CostListener | None] = contextvars.ContextVar(
    "costkit_embedding_cost", default=None
)


@contextlib.contextmanager
def reporting_costs_to(listener: CostListener) -> Iterator[None]:
    """Inside the block, every ProviderEmbedder request also reports its cost to ``listener``
    (how a policy turns the embeddings it asks for into cost records of the request it serves)."""
    token = _COST_LISTENER.set(listener)
    try:
        yield
    finally:
        _COST_LISTENER.reset(token)


_KNOWN_DIMS = {"text-embedding-3-small": 1536, "text-embedding-3-large": 3072, "text-embedding-ada-002": 1536}


def _price(model: str, tokens: int) -> float | None:
    try:
        from .._call import Usage

        pricing: Any = importlib.import_module("costkit.pricing")
        value = pricing.cost(model, Usage(input_tokens=tokens))
    except Exception:  # pricing unknown or unavailable: report tokens, cost None
        return None
    return None if value is None else float(value)


class ProviderEmbedder:
    """Embeds through a provider's embeddings endpoint (openai-shaped ``client.embeddings.create``).

    Each request's usage and price go to ``on_cost(EmbeddingCost)``: embeddings are cheap but not
    free, and a cache that hides what it spends would lie about its savings. Works with a sync
    client through ``embedder(texts)`` and with an async one through ``await embedder.aembed(texts)``.
    """

    def __init__(
        self,
        client: Any,
        model: str = "text-embedding-3-small",
        on_cost: Callable[[EmbeddingCost], Any] | None = None,
        *,
        dimensions: int | None = None,
        dim: int | None = None,
        batch_size: int = 1024,
        cache_size: int = 8192,
    ) -> None:
        if client is None or not hasattr(getattr(client, "embeddings", None), "create"):
            raise ConfigError("client", "needs an openai-shaped client with client.embeddings.create")
        if not isinstance(model, str) or not model:
            raise ConfigError("model", "must be a non-empty model name")
        if on_cost is not None and not callable(on_cost):
            raise ConfigError("on_cost", "must be callable or None")
        if dimensions is not None and (not isinstance(dimensions, int) or dimensions < 1):
            raise ConfigError("dimensions", f"must be a positive int, got {dimensions!r}")
        if not isinstance(batch_size, int) or not 1 <= batch_size <= 2048:
            raise ConfigError("batch_size", f"must be an int in 1..2048, got {batch_size!r}")
        if not isinstance(cache_size, int) or cache_size < 0:
            raise ConfigError("cache_size", f"must be an int >= 0, got {cache_size!r}")
        resolved = dimensions or dim or _KNOWN_DIMS.get(model)
        if resolved is None:
            raise ConfigError("dim", f"unknown output size for model {model!r}: pass dim= (or dimensions=)")
        if dim is not None and dimensions is not None and dim != dimensions:
            raise ConfigError("dim", f"dim={dim} disagrees with dimensions={dimensions}")
        self.client = client
        self.model = model
        self.on_cost = on_cost
        self.dimensions = dimensions
        self.dim = int(resolved)
        self.name = f"provider-{model}-{self.dim}"
        self.batch_size = batch_size
        self.cache = VectorLRU(cache_size)
        self.is_async = inspect.iscoroutinefunction(client.embeddings.create)

    def _request(self, texts: list[str]) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"model": self.model, "input": texts}
        if self.dimensions is not None:
            kwargs["dimensions"] = self.dimensions
        return kwargs

    def _parse(self, response: Any, n: int, started: float) -> Vectors:
        data = sorted(response.data, key=lambda d: getattr(d, "index", 0))
        if len(data) != n:
            raise ValueError(f"embeddings endpoint returned {len(data)} vectors for {n} texts")
        vecs = normalize_rows([d.embedding for d in data])
        if vecs.shape[1] != self.dim:
            raise ValueError(f"{self.model} returned {vecs.shape[1]}-d vectors, expected {self.dim}")
        usage = getattr(response, "usage", None)
        tokens = int(getattr(usage, "prompt_tokens", None) or getattr(usage, "total_tokens", None) or 0)
        listener = _COST_LISTENER.get()
        if self.on_cost is not None or listener is not None:
            cost = EmbeddingCost(
                model=self.model,
                input_tokens=tokens,
                cost_usd=_price(self.model, tokens),
                texts=n,
                latency_ms=(time.perf_counter() - started) * 1000.0,
            )
            for report in (self.on_cost, listener):
                if report is not None:
                    report(cost)
        return vecs

    def _compute(self, texts: list[str]) -> Vectors:
        parts = []
        for i in range(0, len(texts), self.batch_size):
            chunk = texts[i : i + self.batch_size]
            started = time.perf_counter()
            parts.append(self._parse(self.client.embeddings.create(**self._request(chunk)), len(chunk), started))
        return np.concatenate(parts) if parts else np.empty((0, self.dim), dtype=np.float32)

    def __call__(self, texts: Sequence[str]) -> Vectors:
        if self.is_async:
            raise TypeError("this ProviderEmbedder wraps an async client: use `await embedder.aembed(texts)`")
        return self.cache.embed(check_texts(texts), self._compute, self.dim)

    async def aembed(self, texts: Sequence[str]) -> Vectors:
        batch = check_texts(texts)
        if not self.is_async:
            return await asyncio.to_thread(self.__call__, batch)
        out, missing = self.cache.lookup(batch, self.dim)
        if missing:
            todo = list(missing)
            parts = []
            for j in range(0, len(todo), self.batch_size):
                chunk = todo[j : j + self.batch_size]
                started = time.perf_counter()
                response = await self.client.embeddings.create(**self._request(chunk))
                parts.append(self._parse(response, len(chunk), started))
            self.cache.fill(out, missing, np.concatenate(parts))
        return out

    def __repr__(self) -> str:
        return f"ProviderEmbedder(model={self.model!r}, dim={self.dim})"


__all__ = ["EmbeddingCost", "ProviderEmbedder", "reporting_costs_to"]
