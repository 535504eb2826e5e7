"""Streams handed back to the caller: the SDK's own chunks, with costkit listening in.

A :class:`ResultStream` (or its async twin) iterates the provider's stream, gives every chunk to
a provider-specific :class:`Accumulator` (which decides whether the caller sees it: costkit's
own usage chunk is hidden), and once the stream ends, fails or is closed, runs the completion
callbacks exactly once with the final :class:`~costkit._call.Result` (after ``finalize``, which
the terminal uses to price it, so every listener sees ``cost_usd``). Every other attribute
(``response``, ``close``...) is the SDK stream's own.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import Any, Protocol

from ._call import Result
from ._warn import warn_once


class Accumulator(Protocol):
    """Provider-specific and I/O-free: folds chunks into a Result."""

    def add(self, chunk: Any) -> bool:
        """Take one chunk; return whether the caller should see it."""
        ...

    def result(self) -> Result:
        """The result so far (complete once the stream is exhausted)."""
        ...


Callback = Callable[[Result], None]


class _StreamCore:
    """What both twins share: callbacks, the once-only finish, attribute passthrough."""

    def __init__(
        self, source: Any, accumulator: Accumulator, finalize: Callable[[Result], Result] | None = None
    ) -> None:
        self._source = source
        self._acc = accumulator
        self._finalize = finalize
        self._callbacks: list[Callback] = []
        self._final: Result | None = None
        self._lock = threading.Lock()

    def on_complete(self, callback: Callback) -> None:
        with self._lock:
            final = self._final
            if final is None:
                self._callbacks.append(callback)
                return
        _safe(callback, final)

    @property
    def completed(self) -> bool:
        return self._final is not None

    def _finish(self, *, error: BaseException | None = None, complete: bool = True) -> None:
        with self._lock:
            if self._final is not None:
                return
            result = self._acc.result().evolve(stream=None)
            if error is not None:
                result = result.with_notes(stream_error=type(error).__name__).evolve(error=error)
            elif not complete:
                result = result.with_notes(stream_incomplete=True)
            if self._finalize is not None:
                result = self._finalize(result)
            self._final = result
            callbacks, self._callbacks = self._callbacks, []
        for cb in callbacks:
            _safe(cb, result)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._source, name)


def _safe(cb: Callback, result: Result) -> None:
    try:
        cb(result)
    except Exception as exc:  # a listener never breaks the caller's stream
        warn_once(f"stream-callback:{type(exc).__name__}", f"costkit: a stream completion hook failed: {exc!r}")


class ResultStream(_StreamCore):
    """The sync stream the caller iterates (the SDK's chunk types, unchanged)."""

    def __init__(
        self,
        source: Iterable[Any],
        accumulator: Accumulator,
        finalize: Callable[[Result], Result] | None = None,
    ) -> None:
        super().__init__(source, accumulator, finalize)
        self._it: Iterator[Any] = iter(source)

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        while True:
            try:
                chunk = next(self._it)
            except StopIteration:
                self._finish()
                raise
            except Exception as exc:
                self._finish(error=exc)
                raise
            if self._acc.add(chunk):
                return chunk

    def close(self) -> None:
        if not self.completed:
            self._finish(complete=False)
        close = getattr(self._source, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> ResultStream:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        # An abandoned stream still produces its cost record.
        if getattr(self, "_final", True) is None:
            self._finish(complete=False)


class AsyncResultStream(_StreamCore):
    """The async twin of :class:`ResultStream`."""

    def __init__(
        self, source: Any, accumulator: Accumulator, finalize: Callable[[Result], Result] | None = None
    ) -> None:
        super().__init__(source, accumulator, finalize)
        self._ait: AsyncIterator[Any] | None = None

    def __aiter__(self) -> AsyncIterator[Any]:
        return self

    async def __anext__(self) -> Any:
        if self._ait is None:
            self._ait = self._source.__aiter__()
        while True:
            try:
                chunk = await self._ait.__anext__()
            except StopAsyncIteration:
                self._finish()
                raise
            except Exception as exc:
                self._finish(error=exc)
                raise
            if self._acc.add(chunk):
                return chunk

    async def close(self) -> None:
        if not self.completed:
            self._finish(complete=False)
        close = getattr(self._source, "close", None)
        if close is not None:
            res = close()
            if hasattr(res, "__await__"):
                await res

    async def __aenter__(self) -> AsyncResultStream:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    def __del__(self) -> None:
        if getattr(self, "_final", True) is None:
            self._finish(complete=False)


class ReplaySource:
    """A finished list of chunks played back as a sync or async stream (cache hits), with the
    ``response`` attribute the SDKs' stream helpers read."""

    def __init__(self, chunks: Iterable[Any]) -> None:
        self._chunks = list(chunks)
        self._response: Any = None

    @property
    def response(self) -> Any:
        if self._response is None:
            import httpx

            request = httpx.Request("POST", "http://costkit.cache")
            self._response = httpx.Response(200, headers={"x-costkit-cache": "hit"}, request=request)
        return self._response

    def __iter__(self) -> Iterator[Any]:
        return iter(self._chunks)

    async def _agen(self) -> AsyncIterator[Any]:
        for c in self._chunks:
            yield c

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._agen()

    def close(self) -> None:
        return None


ResultStreamLike = ResultStream | AsyncResultStream

__all__ = ["Accumulator", "AsyncResultStream", "ReplaySource", "ResultStream", "ResultStreamLike"]
