"""Reading a provider's response without ever failing the caller's call.

A body that is not the API's object (a proxy's page, a test double's empty 200, a body cut short)
is the SDK's to return or raise as it does; costkit only loses its exact usage, and counts the
tokens it can estimate instead of recording $0.
"""

from __future__ import annotations

from typing import Any

from ._call import Call, Result
from ._recorder import Recorder
from ._warn import warn_once
from .providers.base import Adapter, estimate_usage

_MISSING = object()


def unreadable(adapter: Adapter, call: Call, exc: Exception | None, text: str = "") -> Result:
    """What a response costkit cannot read (``exc``), or one without usage (``exc`` None), counts:
    the prompt's tokens and ``text``'s, estimated."""
    why = "it reports no usage" if exc is None else f"{type(exc).__name__}: {exc}"
    warn_once(
        f"unreadable:{adapter.api}",
        f"costkit: a {adapter.api} response was not the API's own object ({why}); "
        "the caller gets it unchanged, its record counts estimated tokens",
    )
    usage = estimate_usage(call, text)
    note = "no usage" if exc is None else type(exc).__name__
    return Result(usage=usage, model=call.model, notes={"response_unreadable": note})


PENDING = frozenset({"queued", "in_progress"})  # a background Responses call, answered before the model ran


def pending(adapter: Adapter, call: Call, status: str) -> Result:
    """A background call (``background=True``) returns before the model runs: no usage exists yet.
    Its record counts the prompt's estimated tokens, the part known to be billed."""
    warn_once(
        f"pending:{adapter.api}",
        f"costkit: a background {adapter.api} call came back {status!r}, before the model ran, so it has no "
        "usage yet; its record counts the prompt's estimated tokens and no output (the finished response, "
        "fetched with retrieve(), is not recorded)",
    )
    return Result(usage=estimate_usage(call, ""), model=call.model, notes={"usage_pending": status})


def parse_failed(adapter: Adapter, recorder: Recorder, call: Call, exc: BaseException, started: float) -> Result:
    """A raw response wrapper whose body does not parse as the API's object (cut short, a proxy's
    page) is the caller's to ``parse()``, raising as the SDK's does: the call itself succeeded. A
    transport failure while reading the body (or an interrupt) fails the attempt."""
    from .classify import CONNECTION, TIMEOUT, classify

    if not isinstance(exc, Exception) or classify(exc) in (CONNECTION, TIMEOUT):
        recorder.attempt(call, None, exc, started)
        raise exc
    return recorder.attempt(call, unreadable(adapter, call, exc), None, started)  # type: ignore[return-value]


def read_whole(adapter: Adapter, call: Call, raw: Any) -> Result:
    """The Result of a whole response. A body that is not the API's object (a proxy's, a test
    double's empty 200) is the SDK's to return as it does; costkit only loses its exact usage. A body
    without usage was billed all the same: its tokens are counted, never recorded as $0."""
    try:
        result = adapter.to_result(call, raw)
    except Exception as exc:
        return unreadable(adapter, call, exc).evolve(raw=raw)
    if getattr(raw, "usage", _MISSING) is not None:
        return result
    status = getattr(raw, "status", None)
    if status in PENDING:
        counted = pending(adapter, call, status)
    else:
        counted = unreadable(adapter, call, None, result.text or "")
    return result.evolve(usage=counted.usage, model=result.model or call.model, notes={**result.notes, **counted.notes})


class GuardedAccumulator:
    """An adapter's stream accumulator that never breaks the caller's stream: a chunk it cannot
    read reaches the caller and is left out of the count; a final result it cannot build is
    estimated from the text seen (each said once)."""

    def __init__(self, adapter: Adapter, call: Call) -> None:
        self._adapter = adapter
        self._call = call
        self._inner = adapter.accumulator(call)

    def add(self, chunk: Any) -> bool:
        try:
            return self._inner.add(chunk)
        except Exception as exc:
            warn_once(
                f"unreadable:{self._adapter.api}:chunk",
                f"costkit: a {self._adapter.api} stream chunk could not be read ({type(exc).__name__}: {exc}); "
                "it reaches the caller unchanged",
            )
            return True

    def result(self) -> Result:
        try:
            return self._inner.result()
        except Exception as exc:
            return unreadable(self._adapter, self._call, exc)


def open_body(response: Any) -> bool:
    """Whether a raw response's body is still unread (``with_streaming_response``)."""
    http = getattr(response, "http_response", None)
    return http is not None and getattr(http, "is_closed", True) is False


def reopen(response: Any) -> None:
    """Give a ``with_streaming_response`` wrapper whose body costkit read (to record the call) an
    open HTTP response with the same bytes: the caller sees it open until its ``with`` block ends,
    and can read or iterate the body, as with the raw SDK. Best effort: a version whose response
    cannot be rebuilt keeps the read one."""
    import sys

    http = response.http_response
    try:
        byte_stream = sys.modules[type(http).__module__.partition(".")[0]].ByteStream  # httpx's, or its fork's
        fresh = type(http)(
            http.status_code,
            headers=http.headers,
            stream=byte_stream(http.content),  # unread until the caller reads or closes it
            request=http.request,
            extensions=http.extensions,
        )
        fresh._elapsed = http.elapsed
        response.http_response = fresh
    except Exception:
        return


__all__ = ["GuardedAccumulator", "open_body", "parse_failed", "read_whole", "reopen", "unreadable"]
