"""``costkit.wrap(client)``: the drop-in wrapper.

The wrapped client is a thin proxy: the completion methods (``chat.completions.create``,
``responses.create``, ``messages.create``, ``litellm.completion``/``acompletion``) run through the
policy chain; every other attribute is the client's own. Results are the SDK's own objects and
provider exceptions pass through unchanged.
"""

from __future__ import annotations

import os
import time
import types
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ._call import SOURCE_PROVIDER, Call, Result
from ._context import current_tags
from ._env import Env, bind_all
from ._pipeline import Pipeline, check_policies
from ._recorder import Recorder
from ._stream import AsyncResultStream, ResultStream
from ._warn import warn_once
from .errors import ConfigError
from .providers.base import Adapter, NotACall, PassThrough, as_sent, pop_costkit_tags, restore_sent

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

    The chain always enforces ``@costkit.budgeted`` scopes: a :class:`ScopeCheck` goes outermost
    unless the user placed one (last in the chain, it holds each attempt's worst case).
    """

    def __init__(self, policies: Sequence[Any], recorder: Recorder) -> None:
        from ._budgeted import ScopeCheck, charge

        chain = list(check_policies(policies))
        if not any(isinstance(p, ScopeCheck) for p in chain):
            chain.insert(0, ScopeCheck())
        env = Env(recorder.pricing, recorder)
        bind_all(chain, env)  # prices from the wrapper's book; a retrying policy turns the SDK's retries off
        self.policies = tuple(chain)
        self.recorder = recorder
        recorder.listeners.append(charge)
        self.owns_retries = env.sdk_retries_off

    def sync_method(self, adapter: Adapter, fn: Callable[..., Any]) -> Callable[..., Any]:
        recorder = self.recorder

        def terminal(call: Call) -> Result:
            kwargs = _sent_kwargs(adapter, call)
            started = time.perf_counter()
            try:
                raw = fn(**kwargs)
            except BaseException as exc:  # KeyboardInterrupt mid-request: the prompt was sent
                recorder.attempt(call, None, exc, started)
                raise
            if call.stream:
                return Result(
                    stream=ResultStream(raw, adapter.accumulator(call), _finalizer(recorder, call, started)),
                    model=call.model,
                )
            return recorder.attempt(call, adapter.to_result(call, raw), None, started)  # type: ignore[return-value]

        run = Pipeline(self.policies, terminal).run

        def create(*args: Any, **kwargs: Any) -> Any:
            try:
                call, started = _start(adapter, recorder, args, kwargs)
            except NotACall:
                return fn(*args, **kwargs)  # the SDK raises its own error
            try:
                result = run(call)
            except BaseException:
                recorder.end(call, None)
                raise
            return _finish(adapter, recorder, call, result, started, ResultStream)

        return create

    def async_method(self, adapter: Adapter, fn: Callable[..., Any]) -> Callable[..., Any]:
        recorder = self.recorder

        async def aterminal(call: Call) -> Result:
            kwargs = _sent_kwargs(adapter, call)
            started = time.perf_counter()
            try:
                raw = await fn(**kwargs)
            except BaseException as exc:  # a cancelled task too: the prompt was sent
                recorder.attempt(call, None, exc, started)
                raise
            if call.stream:
                stream = AsyncResultStream(raw, adapter.accumulator(call), _finalizer(recorder, call, started))
                return Result(stream=stream, model=call.model)
            return recorder.attempt(call, adapter.to_result(call, raw), None, started)  # type: ignore[return-value]

        def no_sync(call: Call) -> Result:  # pragma: no cover - the async chain never calls it
            raise RuntimeError("sync terminal used from an async client")

        arun = Pipeline(self.policies, no_sync, aterminal).arun

        async def acreate(*args: Any, **kwargs: Any) -> Any:
            try:
                call, started = _start(adapter, recorder, args, kwargs)
            except NotACall:
                return await fn(*args, **kwargs)  # the SDK raises its own error
            try:
                result = await arun(call)
            except BaseException:
                recorder.end(call, None)
                raise
            return _finish(adapter, recorder, call, result, started, AsyncResultStream)

        return acreate


def _finalizer(recorder: Recorder, call: Call, started: float) -> Callable[[Result], Result]:
    def finalize(result: Result) -> Result:
        out = recorder.attempt(call, result, result.error, started)
        return out if out is not None else result

    return finalize


def _start(adapter: Adapter, recorder: Recorder, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Call, float]:
    if args:
        raise NotACall("positional arguments")
    tags = current_tags()
    per_call = pop_costkit_tags(kwargs)
    if per_call is not None:
        tags = tags.merged(per_call)
    sent, lifted = as_sent(kwargs)
    call = recorder.begin(adapter.to_call(sent, tags))
    if lifted and call.scope is not None:
        call.scope.lifted = lifted
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
    return stream_cls(adapter.replay(call, result), PassThrough(result))


class _Proxy:
    """Forwards everything to ``target`` except the dotted paths in ``overrides``."""

    __slots__ = ("_children", "_overrides", "_prefix", "_target")

    def __init__(self, target: Any, overrides: Mapping[str, Any], prefix: str = "") -> None:
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_overrides", overrides)
        object.__setattr__(self, "_prefix", prefix)
        object.__setattr__(self, "_children", {})

    def __getattr__(self, name: str) -> Any:
        path = self._prefix + name
        if path in self._overrides:
            return self._overrides[path]
        child = self._children.get(name)
        if child is not None:
            return child
        value = getattr(self._target, name)
        if any(key.startswith(path + ".") for key in self._overrides):
            child = _Proxy(value, self._overrides, path + ".")
            self._children[name] = child
            return child
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._target, name, value)

    def __dir__(self) -> list[str]:
        return sorted(set(dir(self._target)))

    def __repr__(self) -> str:
        return f"<costkit wrapped {self._target!r}>"


class WrappedClient(_Proxy):
    """A client whose completion methods go through costkit (see :func:`wrap`)."""

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


def wrap(
    client: Any,
    policies: Sequence[Any] = (),
    sink: Any = _DEFAULT,
    pricing: Any = None,
    *,
    record_text: bool = False,
) -> Any:
    """Wrap an ``openai``/``anthropic`` client (sync or async) or the ``litellm`` module.

    ``policies`` is the chain, outermost first. ``sink`` receives one CostRecord per provider
    attempt and cache hit: default a SQLite file (``$COSTKIT_DB`` or the user data directory),
    ``None`` to keep none, any object with ``emit`` or any callable. ``pricing`` overrides the
    price book. ``record_text=True`` keeps prompt and completion text in records (off by default).
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
    recorder = Recorder(_resolve_sink(sink), _resolve_pricing(pricing), record_text=record_text)
    return _wrap_with(client, kind, _Engine(policies, recorder))


def _wrap_with(client: Any, kind: str, engine: _Engine) -> WrappedClient:
    target = client
    if engine.owns_retries and kind in ("openai", "anthropic"):
        target = client.with_options(max_retries=0)  # costkit's RetryBudget owns retries

    overrides: dict[str, Any] = {"__engine__": engine}
    if kind == "openai":
        from .providers.openai import ChatAdapter, ResponsesAdapter

        make = engine.async_method if _is_async_client(client) else engine.sync_method
        overrides["chat.completions.create"] = make(ChatAdapter(), target.chat.completions.create)
        overrides["responses.create"] = make(ResponsesAdapter(), target.responses.create)
    elif kind == "anthropic":
        from .providers.anthropic import MessagesAdapter

        make = engine.async_method if _is_async_client(client) else engine.sync_method
        overrides["messages.create"] = make(MessagesAdapter(), target.messages.create)
    else:
        from .providers.litellm import CompletionAdapter

        adapter = CompletionAdapter()
        completion, acompletion = client.completion, client.acompletion
        if engine.owns_retries:  # costkit's RetryBudget owns retries: litellm's own are turned off
            completion, acompletion = _without_retries(completion), _without_retries(acompletion)
        overrides["completion"] = engine.sync_method(adapter, completion)
        overrides["acompletion"] = engine.async_method(adapter, acompletion)
    if kind in ("openai", "anthropic"):
        from .batch.direct import overrides as batch_overrides

        overrides.update(batch_overrides(client, kind, engine.recorder))  # direct batch use: warned and recorded
        # client.with_options(...) / copy(...) stay wrapped, sharing the chain, sink and prices.
        for name in ("with_options", "copy"):
            overrides[name] = _rewrapping(getattr(client, name), kind, engine)
    return WrappedClient(client, overrides)


def _without_retries(fn: Callable[..., Any]) -> Callable[..., Any]:
    def call(**kwargs: Any) -> Any:
        kwargs.setdefault("max_retries", 0)
        kwargs.setdefault("num_retries", 0)
        return fn(**kwargs)

    return call


def _rewrapping(method: Callable[..., Any], kind: str, engine: _Engine) -> Callable[..., Any]:
    def rewrapped(*args: Any, **kwargs: Any) -> WrappedClient:
        return _wrap_with(method(*args, **kwargs), kind, engine)

    return rewrapped


__all__ = ["WrappedClient", "default_db_path", "wrap"]
