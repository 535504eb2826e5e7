"""The semantic cache's I/O as effects: embedding, store operations and verification.

Each method returns an :class:`~costkit._pipeline.Io` the cache's flow yields: run inline for the
in-process store and a local embedder (microseconds of numpy and faiss: no thread hop), awaited
through the async twin of a provider embedder, a pgvector store or an async verifier, or run in a
worker thread from async code otherwise. Failures become counted misses with one warning, never a
failed call.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Generator
from typing import TYPE_CHECKING, Any

import numpy as np

from ..._call import Call
from ..._pipeline import Io, Step
from ..._warn import warn_once
from .semantic_store import Candidate, LocalSemanticStore

if TYPE_CHECKING:
    from .semantic import SemanticCache

FAILED: Any = object()  # what a guarded store operation returns when the store failed


class CacheIo:
    """The effects of one :class:`~.semantic.SemanticCache` (reads its store, embedder and verifier live)."""

    def __init__(self, cache: SemanticCache) -> None:
        self.cache = cache

    def guard(self, op: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            self.cache.stats[f"store_error:{op}"] += 1
            warn_once(
                f"semantic-store:{op}:{type(exc).__name__}",
                f"costkit: semantic cache store failed on {op} ({exc!r}); treating it as a miss",
            )
            return FAILED

    def store(self, op: str, *args: Any, **kwargs: Any) -> Io:
        """A store operation as an effect: the store's async twin when it has one, inline for the
        in-process store, a worker thread otherwise; failures are counted misses either way."""
        fn = getattr(self.cache.store, op)
        afn = getattr(self.cache.store, f"a{op}", None)

        def run() -> Any:
            return self.guard(op, fn, *args, **kwargs)

        if afn is not None and not isinstance(self.cache.store, LocalSemanticStore):

            async def arun() -> Any:
                try:
                    return await afn(*args, **kwargs)
                except Exception as exc:
                    return self.guard(op, _raise, exc)

            return Io(run, arun)
        inline = self.cache.store_inline or (op == "search" and isinstance(self.cache.store, LocalSemanticStore))
        return Io(run, _inline(run) if inline else None)

    def embed(self, text: str, call: Call | None) -> Io:
        aembed = getattr(self.cache.embedder, "aembed", None)

        def run() -> np.ndarray | None:
            return self._embedding(lambda: self.cache.embedder([text]), call)

        if aembed is None:  # a local model: microseconds of numpy, called inline
            return Io(run, _inline(run))

        async def arun() -> np.ndarray | None:
            try:
                with self.costs_of(call):
                    return np.asarray(await aembed([text]), dtype=np.float32)[0]
            except Exception as exc:
                return self._embed_failed(exc)

        return Io(run, arun)

    def _embedding(self, compute: Callable[[], Any], call: Call | None) -> np.ndarray | None:
        try:
            with self.costs_of(call):
                return np.asarray(compute(), dtype=np.float32)[0]
        except Exception as exc:
            return self._embed_failed(exc)

    def _embed_failed(self, exc: BaseException) -> np.ndarray | None:
        self.cache.stats["embed_error"] += 1
        warn_once(f"semantic-embed:{type(exc).__name__}", f"costkit: embedding failed ({exc!r}); cache bypassed")
        return None

    def verify(self, query: str, cand: Candidate) -> Io:
        v = self.cache.verifier
        assert v is not None
        args = (query, cand.question, cand.answer_text)

        def run() -> bool:
            return bool(self._judged(lambda: _resolve_sync(v.check(*args))))

        if v.is_async:

            async def arun() -> bool:
                try:
                    return bool(await v.check(*args))
                except Exception as exc:
                    return self._verifier_failed(exc)

            return Io(run, arun)
        return Io(run)

    def _judged(self, ask: Callable[[], Any]) -> bool:
        try:
            return bool(ask())
        except Exception as exc:
            return self._verifier_failed(exc)

    def _verifier_failed(self, exc: BaseException) -> bool:
        self.cache.stats["verifier_error"] += 1
        warn_once(f"semantic-verifier:{type(exc).__name__}", f"costkit: the cache's verifier failed ({exc!r}); a miss")
        return False

    @staticmethod
    def costs_of(call: Call | None) -> contextlib.AbstractContextManager[None]:
        """Embeddings bought from a provider for ``call`` become "embedding" records of its request."""
        if call is None:
            return contextlib.nullcontext()
        from ..._recorder import record_side_call
        from ...embedders import reporting_costs_to

        def report(cost: Any) -> None:
            record_side_call(
                call,
                kind="embedding",
                model=cost.model,
                provider=cost.provider,
                input_tokens=cost.input_tokens,
                cost_usd=cost.cost_usd,
                latency_ms=cost.latency_ms,
            )

        return reporting_costs_to(report)


def one_effect(effect: Io) -> Generator[Step, Any, Any]:
    """A flow of one effect (direct use runs the same effects through the sync driver)."""
    return (yield effect)


def _inline(fn: Callable[[], Any]) -> Callable[[], Awaitable[Any]]:
    """The async half of an effect that does no I/O: call it on the loop (no thread hop)."""

    async def run() -> Any:
        return fn()

    return run


def _resolve_sync(value: Any) -> Any:
    """A verifier's answer in sync code: an awaitable (an async check) is run to completion."""
    if asyncio.iscoroutine(value) or isinstance(value, Awaitable):
        return asyncio.run(_await(value))
    return value


async def _await(value: Awaitable[Any]) -> Any:
    return await value


def _raise(exc: BaseException) -> None:
    raise exc


__all__ = ["FAILED", "CacheIo", "one_effect"]
