"""Where a wrapped openai / anthropic client's requests pass: the SDK's own ``request`` method.

Every method of these SDKs that talks to the API (``create``, ``parse``, the ``stream`` helpers,
``with_raw_response`` and ``with_streaming_response``, ``embeddings.create``, batches and files)
ends in ``client.request(cast_to, options, stream=..., stream_cls=...)``, with the JSON body the
SDK is about to send. A wrapped client is a copy of the user's client whose ``request`` is an
:class:`Interceptor`: a request to an API costkit understands becomes a Call (read from the body as
it will be sent, ``extra_body`` included) and runs through the policy chain; the chain's terminal
sends the (possibly changed) body through the SDK's original ``request``, so what comes back, and
what is raised, is the SDK's own. Every other request passes through untouched; a request that
spends money on an API costkit cannot record yet is said once, naming it.

Per-call tags (``create(..., costkit={"tenant": ...})``) travel from the method to here in a
request header costkit adds and removes (so they survive the stream helpers, which send later).
"""

from __future__ import annotations

import json
import time
import typing
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ._call import SOURCE_PROVIDER, Call, Tags
from ._context import current_tags
from ._pipeline import PreCall
from ._stream import AsyncResultStream, ReplaySource, ResultStream
from ._warn import warn_once
from .errors import ConfigError
from .providers.base import NotACall, PassThrough

if TYPE_CHECKING:
    from ._recorder import Recorder
    from .providers.base import Adapter

TAGS_HEADER = "X-Costkit-Tags"
RAW_RESPONSE_HEADER = "X-Stainless-Raw-Response"  # the SDKs' with_raw_response / with_streaming_response


class Route:
    """One API costkit understands: which requests (by path), which adapter, and the chain's runners."""

    def __init__(self, name: str, adapter: Adapter, matches: Callable[[str], bool]) -> None:
        self.name = name
        self.adapter = adapter
        self.matches = matches
        self.run: Callable[[Call], Any] | None = None  # set by the engine
        self.arun: Callable[[Call], Any] | None = None


def _suffix(*suffixes: str) -> Callable[[str], bool]:
    return lambda path: path.endswith(suffixes)


# POST paths that spend money but have no adapter yet: said once, by the method users know them as.
_UNRECORDED = {
    "openai": {
        "/completions": "completions.create (legacy completions)",
        "/images/generations": "images.generate",
        "/images/edits": "images.edit",
        "/images/variations": "images.create_variation",
        "/audio/speech": "audio.speech.create",
        "/audio/transcriptions": "audio.transcriptions.create",
        "/audio/translations": "audio.translations.create",
        "/videos": "videos.create",
    },
    "anthropic": {"/v1/complete": "completions.create (legacy completions)"},
}


def _path(options: Any) -> str:
    url = str(getattr(options, "url", "") or "")
    return url.split("?", 1)[0].rstrip("/")


def encode_tags(tags: Mapping[str, Any] | Tags) -> str:
    """Per-call tags as the header value (validated here, so a bad tag fails at the call site)."""
    if not isinstance(tags, Tags):
        if not isinstance(tags, Mapping):
            raise ConfigError("costkit", f"must be a dict of tags, got {type(tags).__name__}")
        tags = Tags.from_mapping(tags, where="costkit")
    return json.dumps(tags.as_dict(), separators=(",", ":"))


def send_writes(call: Call) -> None:
    """The request has ended: its layers' Redis writes go out, one pipeline per server."""
    writes = call.scope.writes if call.scope is not None else None
    if writes:
        from ._redis_batch import flush_writes

        call.scope.writes = None  # type: ignore[union-attr]  # anything later is sent at once
        flush_writes(writes)


async def asend_writes(call: Call) -> None:
    """:func:`send_writes` from async code (redis-py's client blocks: a worker thread)."""
    writes = call.scope.writes if call.scope is not None else None
    if writes:
        import asyncio

        from ._redis_batch import flush_writes

        call.scope.writes = None  # type: ignore[union-attr]
        await asyncio.to_thread(flush_writes, writes)


# ----------------------------------------------------------------------------- streams of the SDK's type


class ProviderStream:
    """What costkit's stream reads a provider stream through: the SDK stream's own chunk generator
    (``_iterator``, without the per-chunk hooks its ``__next__`` adds: those run once, on the
    caller's object) and the SDK's own ``close``. ``sdk_stream`` is the SDK object itself."""

    def __init__(self, sdk_stream: Any) -> None:
        self.sdk_stream = sdk_stream
        self._chunks = sdk_stream._iterator

    def __iter__(self) -> Any:
        return self._chunks

    def __aiter__(self) -> Any:
        return self._chunks

    def close(self) -> Any:
        return type(self.sdk_stream).close(self.sdk_stream)  # a coroutine for an async stream

    def __getattr__(self, name: str) -> Any:
        if name == "sdk_stream":  # not set yet (a copy being built)
            raise AttributeError(name)
        return getattr(self.sdk_stream, name)  # response, ...: the SDK stream's own


def caller_stream(stream: Any, stream_cls: Any) -> Any:
    """costkit's ``stream`` as an object of exactly the SDK's stream class (``openai.Stream``,
    ``anthropic.AsyncStream``...: ``stream_cls`` as the SDK passed it to ``request``, generic or not),
    so ``isinstance`` holds, even where the SDK's metaclass refuses subclasses (anthropic < 1.0).

    The SDK classes iterate ``self._iterator`` and close through ``self.close()``: the object carries
    the provider stream's attributes, with costkit's stream as its ``_iterator`` and costkit's
    ``close`` (which records, then closes the SDK's). Without a class, ``stream`` itself."""
    cls = typing.get_origin(stream_cls) or stream_cls
    if not isinstance(cls, type):
        return stream
    sdk = getattr(stream, "sdk_stream", None)  # the ProviderStream's, through costkit's stream
    out: Any = object.__new__(cls)
    if isinstance(sdk, cls):
        out.__dict__.update(vars(sdk))
    else:  # replayed from a cache: the stand-in response the SDK's stream helpers read
        out.response = getattr(stream, "response", None)
    out._iterator = stream
    out.close = stream.close
    return out


class Interceptor:
    """The wrapped client's ``request``: routes spending requests through the chain (see the module docstring).

    ``sent`` is the SDK's original bound ``request``. Sync and async clients share everything but
    :meth:`__call__` (the async client's interceptor is :class:`AsyncInterceptor`).
    """

    def __init__(self, sent: Callable[..., Any], routes: list[Route], recorder: Recorder, kind: str) -> None:
        self.sent = sent
        self.routes = routes
        self.recorder = recorder
        self.unrecorded = _UNRECORDED.get(kind, {})
        self.__wrapped__ = sent  # inspect.signature and IDEs see the SDK's own

    # -- what every request goes through, without I/O
    def route(self, options: Any) -> Route | None:
        if str(getattr(options, "method", "")).lower() != "post":
            return None
        path = _path(options)
        for route in self.routes:
            if route.matches(path):
                body = getattr(options, "json_data", None)
                return route if isinstance(body, Mapping) else None
        for suffix, method in self.unrecorded.items():
            if path.endswith(suffix):
                warn_once(
                    f"unrecorded:{method}",
                    f"costkit: client.{method}(...) spends money that costkit does not record yet; "
                    "its calls go to the provider unchanged, with no policy and no cost record",
                )
        return None

    def start(self, route: Route, options: Any, cast_to: Any = None) -> tuple[Call | None, Any]:
        """The Call of this request (None when costkit cannot read it) and the options to send it
        with (costkit's header removed)."""
        headers = getattr(options, "headers", None)
        tags = current_tags()
        raw_response = False
        if isinstance(headers, Mapping):
            raw_response = isinstance(headers.get(RAW_RESPONSE_HEADER), str)  # "true", "raw", "stream"
            if TAGS_HEADER in headers:
                options = options.model_copy()
                clean = dict(headers)
                tags = tags.merged(Tags.from_mapping(json.loads(clean.pop(TAGS_HEADER)), where="costkit"))
                options.headers = clean
        body = dict(options.json_data)
        extra = getattr(options, "extra_json", None)
        if isinstance(extra, Mapping) and extra:  # the SDK merges it over the body: so do we
            body.update(extra)
        try:
            call = route.adapter.to_call(body, tags)
        except NotACall as exc:
            # e.g. responses.create without model= (it continues previous_response_id, or a stored prompt
            # names the model): the SDK accepts it, so it goes out as the caller sent it
            warn_once(
                f"unread:{route.name}:{exc}",
                f"costkit: a {route.name} request that costkit cannot read ({exc}) went to the provider "
                "unchanged, with no policy and no cost record",
            )
            return None, options
        call = self.recorder.begin(call)
        assert call.scope is not None
        call.scope.raw_response = raw_response
        call.scope.beta = getattr(cast_to, "__module__", "").startswith("anthropic.types.beta")
        if call.scope.beta and isinstance(headers, Mapping):
            call.scope.betas = str(headers.get("anthropic-beta") or "")
        call.scope.writes = []  # the layers' Redis writes, sent in one round trip when the request ends
        call.scope.checks = PreCall()  # and their checks before the provider call, in one round trip too
        return call, options

    def sender(self, route: Route, cast_to: Any, options: Any, stream_cls: Any) -> Callable[[Call], Any]:
        """How the chain's terminal sends a call: its body in a copy of the options, through the SDK."""
        adapter = route.adapter

        def send(call: Call) -> Any:
            opts = options.model_copy()
            opts.json_data = adapter.to_kwargs(call)
            if getattr(opts, "extra_json", None):
                opts.extra_json = None  # merged into the body already
            if call.stream:
                return self.sent(cast_to, opts, stream=True, stream_cls=stream_cls)
            return self.sent(cast_to, opts, stream=False)

        return send

    def finish(
        self, route: Route, call: Call, result: Any, started: float, options: Any, stream_type: type, stream_cls: Any
    ) -> Any:
        """What the caller gets: the SDK's own object (a raw response, a stream, a parsed completion)."""
        recorder = self.recorder
        recorder.end(call, result)
        scope = call.scope
        assert scope is not None
        from_provider = result.source == SOURCE_PROVIDER
        if not from_provider:
            recorder.cache_hit(call, result, started)
        elif scope.response is not None:  # with_raw_response / with_streaming_response: the SDK's wrapper
            return scope.response
        if call.stream:
            if result.stream is not None:
                return caller_stream(result.stream, stream_cls)
            # answered whole (a cache hit, a cascade step that had to be checked first): replayed as chunks
            replay = stream_type(ReplaySource(route.adapter.replay(call, result)), PassThrough(result))
            return caller_stream(replay, stream_cls)
        parser = getattr(options, "post_parser", None)
        if not from_provider and callable(parser):  # parse(): the SDK's own parser over the stored answer
            return parser(result.raw)
        return result.raw

    def __call__(self, cast_to: Any, options: Any, *args: Any, stream: bool = False, **kwargs: Any) -> Any:
        route = self.route(options) if not args else None
        if route is None or route.run is None:
            return self.sent(cast_to, options, *args, stream=stream, **kwargs)
        call, options = self.start(route, options, cast_to)
        if call is None:
            return self.sent(cast_to, options, stream=stream, **kwargs)
        started = time.perf_counter()
        assert call.scope is not None
        stream_cls = kwargs.get("stream_cls")
        call.scope.send = self.sender(route, cast_to, options, stream_cls)
        try:
            result = route.run(call)
        except BaseException:
            self.recorder.end(call, None)
            raise
        finally:
            send_writes(call)
        return self.finish(route, call, result, started, options, ResultStream, stream_cls)


class AsyncInterceptor(Interceptor):
    """:class:`Interceptor` for an async client: the same routing, the chain run with ``await``."""

    async def __call__(self, cast_to: Any, options: Any, *args: Any, stream: bool = False, **kwargs: Any) -> Any:
        route = self.route(options) if not args else None
        if route is None or route.arun is None:
            return await self.sent(cast_to, options, *args, stream=stream, **kwargs)
        call, options = self.start(route, options, cast_to)
        if call is None:
            return await self.sent(cast_to, options, stream=stream, **kwargs)
        started = time.perf_counter()
        assert call.scope is not None
        stream_cls = kwargs.get("stream_cls")
        call.scope.send = self.sender(route, cast_to, options, stream_cls)
        try:
            result = await route.arun(call)
        except BaseException:
            self.recorder.end(call, None)
            raise
        finally:
            await asend_writes(call)
        return self.finish(route, call, result, started, options, AsyncResultStream, stream_cls)


__all__ = [
    "TAGS_HEADER",
    "AsyncInterceptor",
    "Interceptor",
    "ProviderStream",
    "Route",
    "asend_writes",
    "caller_stream",
    "encode_tags",
    "send_writes",
]
