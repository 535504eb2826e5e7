"""``costkit.wrap(client)``: the drop-in wrapper.

The wrapped client is a thin proxy: the completion methods (``chat.completions.create``,
``responses.create``, ``messages.create``, ``litellm.completion``/``acompletion``) run through the
policy chain; every other attribute is the client's own. Results are the SDK's own objects and
provider exceptions pass through unchanged.
"""

from __future__ import annotations

import functools
import inspect
import os
import time
import types
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from ._call import SOURCE_PROVIDER, Call, Result
from ._context import current_tags
from ._env import Env, bind_all
from ._intercept import (
    TAGS_HEADER,
    AsyncInterceptor,
    Interceptor,
    ProviderStream,
    Route,
    asend_writes,
    caller_stream,
    encode_tags,
    send_writes,
)
from ._pipeline import Pipeline, PreCall, check_policies
from ._read import GuardedAccumulator, open_body, parse_failed, read_whole, reopen
from ._recorder import Recorder
from ._stream import AsyncResultStream, ReplaySource, ResultStream
from ._warn import warn_once
from .errors import ConfigError
from .providers.base import (
    Adapter,
    NotACall,
    PassThrough,
    as_sent,
    pop_costkit_tags,
    restore_sent,
)

_DEFAULT = object()


def default_db_path() -> Path:
    """Where the default SQLite sink writes: ``$COSTKIT_DB``, else the user's data directory."""
    env = os.environ.get("COSTKIT_DB")
    if env:
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "costkit" / "costs.db"


def _resolve_sink(sink: Any) -> Any:
    if sink is None or sink is False:
        return None
    from .sinks import as_sink

    if sink is _DEFAULT:
        from .sinks import SQLiteSink

        path = default_db_path()
        try:
            return SQLiteSink(str(path))  # creates its directory 0700 and the file 0600
        except Exception as exc:  # never fail wrap() over the default sink
            warn_once("default-sink", f"costkit: default SQLite sink at {path} unavailable ({exc!r}); no records kept")
            return None
    from .sinks.background import off_the_caller

    return off_the_caller(as_sink(sink))


def _resolve_pricing(pricing: Any) -> Any:
    from . import pricing as pricing_module

    if pricing is None:
        return pricing_module.default_pricebook()
    if not (callable(getattr(pricing, "cost", None)) and callable(getattr(pricing, "get", None))):
        raise ConfigError("pricing", f"expected a costkit.pricing.PriceBook, got {type(pricing).__name__}")
    return pricing


def _module_of(obj: Any) -> str:
    """The top-level package that defines a client (its class, or a module)."""
    if isinstance(obj, types.ModuleType):
        return obj.__name__.split(".")[0]
    for cls in type(obj).__mro__:
        top = cls.__module__.split(".")[0]
        if top in ("openai", "anthropic", "litellm"):
            return top
    return type(obj).__module__.split(".")[0]


def _is_async_client(obj: Any) -> bool:
    return any(cls.__name__.startswith("Async") for cls in type(obj).__mro__)


class _Engine:
    """What one wrapped client shares between its methods: chain, recorder.

    The chain always enforces ``@costkit.budgeted`` scopes: a :class:`ScopeCheck` goes first (after
    the chain's leading policies that only cap a call, ``narrows_calls = True`` such as
    ``Guardrails``, so it reserves for the capped call) unless the user placed
    one (last in the chain, it holds each attempt's worst case). Its
    terminal sends each call the way the request's scope says (``scope.send``: the SDK's own
    ``request`` with this body, or the litellm function with these keywords).
    """

    def __init__(self, policies: Sequence[Any], recorder: Recorder, client: str) -> None:
        from ._budgeted import ScopeCheck, charge

        chain = list(check_policies(policies))
        if not any(isinstance(p, ScopeCheck) for p in chain):
            leading = 0  # policies that only cap a call (narrows_calls = True: Guardrails) go before it
            while leading < len(chain) and getattr(chain[leading], "narrows_calls", False) is True:
                leading += 1
            chain.insert(leading, ScopeCheck())  # budgets reserve for the call as the guardrails cap it
        env = Env(recorder.pricing, recorder, client=client)
        bind_all(chain, env)  # prices from the wrapper's book; a retrying policy turns the SDK's retries off
        self.policies = tuple(chain)
        self.recorder = recorder
        recorder.listeners.append(charge)
        self.owns_retries = env.sdk_retries_off

    def runners(
        self, adapter: Adapter, source: Callable[[Any], Any] = lambda raw: raw
    ) -> tuple[Callable[[Call], Result], Callable[[Call], Any]]:
        """The chain for ``adapter``'s calls, sync and async (built once per adapter and client);
        ``source`` is what costkit's stream reads a provider stream through."""
        recorder = self.recorder

        def terminal(call: Call) -> Result:
            scope = call.scope
            assert scope is not None and scope.send is not None
            if scope.checks is not None and scope.checks.pending:  # the layers' checks decide first
                scope.checks.flush()
            started = time.perf_counter()
            try:
                raw = scope.send(call)
            except BaseException as exc:  # KeyboardInterrupt mid-request: the prompt was sent
                recorder.attempt(call, None, exc, started)
                raise
            if scope.raw_response:  # with_raw_response: the caller gets the SDK's wrapper, we read inside it
                scope.response = raw
                unread = open_body(raw) and not call.stream
                try:
                    raw = raw.parse()
                except BaseException as exc:
                    return parse_failed(adapter, recorder, call, exc, started)
                if unread:
                    reopen(scope.response)
            if call.stream:
                stream = ResultStream(
                    source(raw), GuardedAccumulator(adapter, call), _finalizer(recorder, call, started)
                )
                _hand_over(scope.response, raw, stream)
                return Result(stream=stream, model=call.model)
            return recorder.attempt(call, read_whole(adapter, call, raw), None, started)  # type: ignore[return-value]

        async def aterminal(call: Call) -> Result:
            scope = call.scope
            assert scope is not None and scope.send is not None
            if scope.checks is not None and scope.checks.pending:
                await scope.checks.aflush()
            started = time.perf_counter()
            try:
                raw = await scope.send(call)
            except BaseException as exc:  # a cancelled task too: the prompt was sent
                recorder.attempt(call, None, exc, started)
                raise
            if scope.raw_response:
                scope.response = raw
                unread = open_body(raw) and not call.stream
                try:
                    raw = raw.parse()
                    if inspect.isawaitable(raw):  # with_streaming_response on an async client
                        raw = await raw
                except BaseException as exc:
                    return parse_failed(adapter, recorder, call, exc, started)
                if unread:
                    reopen(scope.response)
            if call.stream:
                stream = AsyncResultStream(
                    source(raw), GuardedAccumulator(adapter, call), _finalizer(recorder, call, started)
                )
                _hand_over(scope.response, raw, stream)
                return Result(stream=stream, model=call.model)
            return recorder.attempt(call, read_whole(adapter, call, raw), None, started)  # type: ignore[return-value]

        pipeline = Pipeline(self.policies, terminal, aterminal)
        return pipeline.run, pipeline.arun

    def function(self, adapter: Adapter, fn: Callable[..., Any], *, is_async: bool) -> Callable[..., Any]:
        """A keyword-call function (litellm's) that runs through the chain; the result is the SDK's own."""
        recorder = self.recorder
        run, arun = self.runners(adapter)

        def send(call: Call) -> Any:
            return fn(**_sent_kwargs(adapter, call))

        if is_async:

            @functools.wraps(fn)
            async def acall(*args: Any, **kwargs: Any) -> Any:
                try:
                    call, started = _start(adapter, recorder, args, kwargs, send)
                except NotACall:
                    return await fn(*args, **kwargs)  # the library raises its own error
                try:
                    result = await arun(call)
                except BaseException:
                    recorder.end(call, None)
                    raise
                finally:
                    await asend_writes(call)
                return _finish(adapter, recorder, call, result, started, AsyncResultStream)

            return acall

        @functools.wraps(fn)
        def call_(*args: Any, **kwargs: Any) -> Any:
            try:
                call, started = _start(adapter, recorder, args, kwargs, send)
            except NotACall:
                return fn(*args, **kwargs)
            try:
                result = run(call)
            except BaseException:
                recorder.end(call, None)
                raise
            finally:
                send_writes(call)
            return _finish(adapter, recorder, call, result, started, ResultStream)

        return call_


def _hand_over(response: Any, parsed: Any, stream: Any) -> None:
    """A raw response's streamed body is ours to listen in on: the SDK wrapper's ``parse()`` (which
    caches what it parsed) must hand the caller our stream (as the SDK's stream type), not the one we
    read from."""
    if response is None:
        return
    stream = caller_stream(stream, type(parsed))
    cache = getattr(response, "_parsed_by_type", None)
    replaced = False
    if isinstance(cache, dict):
        for key, value in list(cache.items()):
            if value is parsed:
                cache[key] = stream
                replaced = True
    if not replaced:
        warn_once(
            "raw-response-stream",
            "costkit: a streamed with_raw_response call is recorded from what the stream would say; "
            "this SDK version keeps its parsed stream elsewhere, so the record's usage is estimated",
        )


def _finalizer(recorder: Recorder, call: Call, started: float) -> Callable[[Result], Result]:
    def finalize(result: Result) -> Result:
        out = recorder.attempt(call, result, result.error, started)
        return out if out is not None else result

    return finalize


def _start(
    adapter: Adapter, recorder: Recorder, args: tuple[Any, ...], kwargs: dict[str, Any], send: Callable[[Call], Any]
) -> tuple[Call, float]:
    if args:
        raise NotACall("positional arguments")
    tags = current_tags()
    per_call = pop_costkit_tags(kwargs)
    if per_call is not None:
        tags = tags.merged(per_call)
    sent, lifted = as_sent(kwargs)
    call = recorder.begin(adapter.to_call(sent, tags))
    assert call.scope is not None
    call.scope.lifted = lifted
    call.scope.send = send
    call.scope.writes = []  # the layers' Redis writes, sent in one round trip when the request ends
    call.scope.checks = PreCall()  # and their checks before the provider call, in one round trip too
    return call, time.perf_counter()


def _sent_kwargs(adapter: Adapter, call: Call) -> dict[str, Any]:
    """The SDK keywords for ``call``, with what the caller put in ``extra_body`` back there."""
    kwargs = adapter.to_kwargs(call)
    return restore_sent(kwargs, call.scope.lifted) if call.scope is not None else kwargs


def _finish(
    adapter: Adapter, recorder: Recorder, call: Call, result: Result, started: float, stream_cls: type[Any]
) -> Any:
    recorder.end(call, result)
    if result.source != SOURCE_PROVIDER:
        recorder.cache_hit(call, result, started)
    if not call.stream:
        return result.raw
    if result.stream is not None:
        return result.stream
    return stream_cls(ReplaySource(adapter.replay(call, result)), PassThrough(result))


# --------------------------------------------------------------------------------------- clients

# The SDK methods that take costkit's per-call ``costkit={...}`` keyword (they all end in ``request``).
TAGGED_METHODS = {
    "openai": (
        "chat.completions.create",
        "chat.completions.parse",
        "chat.completions.stream",
        "beta.chat.completions.parse",
        "beta.chat.completions.stream",
        "responses.create",
        "responses.parse",
        "responses.stream",
        "embeddings.create",
    ),
    "anthropic": (
        "messages.create",
        "messages.stream",
        "messages.count_tokens",
        "beta.messages.create",
        "beta.messages.stream",
    ),
}


def _routes(kind: str, engine: _Engine) -> list[Route]:
    """The APIs the wrapped client's requests are routed through the chain for, by path."""
    routes: list[Route] = []
    if kind == "openai":
        from .providers.embeddings import EmbeddingsAdapter
        from .providers.openai import ChatAdapter, ResponsesAdapter

        routes += [
            Route("chat.completions", ChatAdapter(), lambda p: p.endswith("/chat/completions")),
            Route("responses", ResponsesAdapter(), lambda p: p.endswith("/responses")),
            Route("embeddings", EmbeddingsAdapter(), lambda p: p.endswith("/embeddings")),
        ]
    else:
        from .providers.anthropic import MessagesAdapter

        routes.append(Route("messages", MessagesAdapter(), lambda p: p.endswith("/v1/messages")))
    for route in routes:
        route.run, route.arun = engine.runners(route.adapter, ProviderStream)
    return routes


def _resolve(obj: Any, dotted: str) -> tuple[Any, str] | None:
    """The object holding the last name of ``dotted`` (None when this SDK version has no such path)."""
    *parents, name = dotted.split(".")
    for part in parents:
        try:
            obj = getattr(obj, part)
        except Exception:  # an SDK version without it (old ones have no responses, no beta.chat)
            return None
    return (obj, name) if hasattr(obj, name) else None


def _tagging(method: Callable[..., Any]) -> Callable[..., Any]:
    """``method`` that also takes ``costkit={...}`` (per-call tags), with the SDK's own signature."""

    def headers_with_tags(kwargs: dict[str, Any], costkit: Any) -> None:
        headers = dict(kwargs.get("extra_headers") or {})
        headers[TAGS_HEADER] = encode_tags(costkit)
        kwargs["extra_headers"] = headers

    if inspect.iscoroutinefunction(method):

        @functools.wraps(method)
        async def atagged(*args: Any, costkit: Any = None, **kwargs: Any) -> Any:
            if costkit is not None:
                headers_with_tags(kwargs, costkit)
            return await method(*args, **kwargs)

        return atagged

    @functools.wraps(method)
    def tagged(*args: Any, costkit: Any = None, **kwargs: Any) -> Any:
        if costkit is not None:
            headers_with_tags(kwargs, costkit)
        return method(*args, **kwargs)

    return tagged


def _install(client: Any, original: Any, kind: str, engine: _Engine) -> Any:
    """Make ``client`` (a fresh copy of the user's) a wrapped one; returns it."""
    intercept = AsyncInterceptor if _is_async_client(client) else Interceptor
    client.request = intercept(client.request, _routes(kind, engine), engine.recorder, kind)
    for dotted in TAGGED_METHODS[kind]:
        found = _resolve(client, dotted)
        if found is not None:
            holder, name = found
            setattr(holder, name, _tagging(getattr(holder, name)))
    from .batch.direct import overrides as batch_overrides

    for dotted, fn in batch_overrides(client, kind, engine.recorder).items():  # direct batch use: warned, recorded
        found = _resolve(client, dotted)
        if found is not None:
            setattr(found[0], found[1], fn)
    copy = client.copy

    @functools.wraps(copy)
    def rewrapped(*args: Any, **kwargs: Any) -> Any:  # client.with_options(...) / copy(...) stay wrapped
        return _install(copy(*args, **kwargs), original, kind, engine)

    client.copy = client.with_options = rewrapped
    client.costkit_policies = engine.policies
    client.costkit_recorder = engine.recorder
    client.unwrapped = original
    return client


class _Proxy:
    """Forwards everything to ``target`` except the names in ``overrides`` (the litellm module)."""

    __slots__ = ("_overrides", "_target")

    def __init__(self, target: Any, overrides: Mapping[str, Any]) -> None:
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_overrides", overrides)

    def __getattr__(self, name: str) -> Any:
        if name in self._overrides:
            return self._overrides[name]
        if name in LITELLM_UNRECORDED:
            warn_once(
                f"unrecorded:litellm.{name}",
                f"costkit: litellm.{name}(...) spends money that costkit does not record yet; "
                "its calls go to the provider unchanged, with no policy and no cost record",
            )
        return getattr(self._target, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._target, name, value)

    def __delattr__(self, name: str) -> None:
        delattr(self._target, name)

    def __dir__(self) -> list[str]:
        return sorted(set(dir(self._target)) | set(self._overrides))

    def __repr__(self) -> str:
        return f"<costkit wrapped {self._target!r}>"


# litellm functions that spend money and have no adapter yet: said once, when first used.
LITELLM_UNRECORDED = frozenset(
    {
        "text_completion",
        "atext_completion",
        "responses",
        "aresponses",
        "image_generation",
        "aimage_generation",
        "image_edit",
        "aimage_edit",
        "transcription",
        "atranscription",
        "speech",
        "aspeech",
        "rerank",
        "arerank",
        "batch_completion",
    }
)


class WrappedLiteLLM(_Proxy):
    """The litellm module with ``completion`` / ``acompletion`` / ``embedding`` / ``aembedding`` through costkit."""

    __slots__ = ()

    @property
    def costkit_policies(self) -> tuple[Any, ...]:
        """The chain as it runs, outermost first (the ScopeCheck for ``@budgeted`` included)."""
        return self._overrides["__engine__"].policies

    @property
    def costkit_recorder(self) -> Recorder:
        return self._overrides["__engine__"].recorder

    @property
    def unwrapped(self) -> Any:
        return self._target


def _wrap_litellm(module: Any, engine: _Engine) -> WrappedLiteLLM:
    from .providers.embeddings import LiteLLMEmbeddingAdapter
    from .providers.litellm import CompletionAdapter

    overrides: dict[str, Any] = {"__engine__": engine}
    for adapter, name, aname in (
        (CompletionAdapter(), "completion", "acompletion"),
        (LiteLLMEmbeddingAdapter(), "embedding", "aembedding"),
    ):
        sync_fn, async_fn = getattr(module, name), getattr(module, aname)
        if engine.owns_retries:  # costkit's RetryBudget owns retries: litellm's own are turned off
            sync_fn, async_fn = _without_retries(sync_fn), _without_retries(async_fn)
        overrides[name] = engine.function(adapter, sync_fn, is_async=False)
        overrides[aname] = engine.function(adapter, async_fn, is_async=True)
    return WrappedLiteLLM(module, overrides)


def _without_retries(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def call(**kwargs: Any) -> Any:
        kwargs.setdefault("max_retries", 0)
        kwargs.setdefault("num_retries", 0)
        return fn(**kwargs)

    return call


def is_wrapped(obj: Any) -> bool:
    """Whether ``obj`` came out of :func:`wrap`."""
    return isinstance(obj, WrappedLiteLLM) or isinstance(getattr(obj, "request", None), Interceptor)


T = TypeVar("T")


def wrap(
    client: T,
    policies: Sequence[Any] = (),
    sink: Any = _DEFAULT,
    pricing: Any = None,
    *,
    record_text: bool = False,
) -> T:
    """Wrap an ``openai``/``anthropic`` client (sync or async) or the ``litellm`` module.

    Returns an object of the client's own type (a copy of it: ``isinstance`` checks, ``with``
    blocks, ``copy()`` and every method work as before) whose requests run through ``policies``,
    the chain, outermost first. ``sink`` receives one CostRecord per provider attempt and cache
    hit: default a SQLite file (``$COSTKIT_DB`` or the user data directory), ``None`` to keep none,
    any object with ``emit`` or any callable. ``pricing`` overrides the price book.
    ``record_text=True`` keeps prompt and completion text in records (off by default).
    """
    if isinstance(policies, (str, bytes)) or not isinstance(policies, Sequence):
        raise ConfigError("policies", f"must be a list of policies, got {type(policies).__name__}")
    if not isinstance(record_text, bool):
        raise ConfigError("record_text", "must be a bool")
    kind = _module_of(client)
    if kind not in ("openai", "anthropic", "litellm"):
        raise ConfigError(
            "client", f"costkit.wrap supports openai and anthropic clients and the litellm module, got {client!r}"
        )
    if isinstance(client, types.ModuleType) and kind != "litellm":
        example = "openai.OpenAI()" if kind == "openai" else "anthropic.Anthropic()"
        raise ConfigError("client", f"pass a client, e.g. costkit.wrap({example}), not the {kind} module")
    recorder = Recorder(_resolve_sink(sink), _resolve_pricing(pricing), record_text=record_text)
    engine = _Engine(policies, recorder, kind)
    if kind == "litellm":
        return _wrap_litellm(client, engine)  # type: ignore[return-value]
    copy = client.copy(max_retries=0) if engine.owns_retries else client.copy()  # type: ignore[attr-defined]
    _keep_what_copy_drops(client, copy)
    return _install(copy, client, kind, engine)


# Client settings the SDKs' copy() does not carry over, which the wrapped client must keep to behave as
# the user's: response validation (a constructor argument copy() never passes) and, in openai 2.x,
# an Azure client's deployment and endpoint (without them, a request to an endpoint that is not per
# deployment, such as /models, keeps the deployment in its URL).
_NOT_COPIED = ("_strict_response_validation", "_azure_deployment", "_azure_endpoint")


def _keep_what_copy_drops(client: Any, copy: Any) -> None:
    for name in _NOT_COPIED:
        if name in vars(client):
            setattr(copy, name, getattr(client, name))


__all__ = ["WrappedLiteLLM", "default_db_path", "is_wrapped", "wrap"]
