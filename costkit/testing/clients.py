"""Real SDK clients wired to the fake provider, in process: no socket, no network.

``FakeOpenAI()`` is a real ``openai.OpenAI`` whose httpx client uses :class:`FakeTransport`, so
it has exactly the SDK's surface, returns the SDK's own types and raises the SDK's own errors;
``client.fake`` is the :class:`~costkit.testing.FakeProvider` to script and to assert on.
The transports only perform what the handler decided (waits, bytes, a dropped connection);
the sync and async twins differ in nothing else. ``FakeLiteLLM`` drives the real
``litellm.completion`` with such clients.

The SDKs are imported when a client is built, not when this module is.
"""

from __future__ import annotations

import asyncio
import functools
import os
import time
from collections.abc import AsyncIterator, Iterator
from types import ModuleType
from typing import TYPE_CHECKING, Any

import httpx

from .handler import FakeProvider, FakeResponse

if TYPE_CHECKING:
    import anthropic
    import openai

    # What a type checker sees: the SDK's own client plus ``.fake``. At run time the factories
    # return the SDK class itself (no subclass), with ``fake`` set on the instance.
    class FakeOpenAIClient(openai.OpenAI):
        fake: FakeProvider

    class FakeAsyncOpenAIClient(openai.AsyncOpenAI):
        fake: FakeProvider

    class FakeAnthropicClient(anthropic.Anthropic):
        fake: FakeProvider

    class FakeAsyncAnthropicClient(anthropic.AsyncAnthropic):
        fake: FakeProvider


OPENAI_BASE_URL = "https://api.openai.com/v1"
ANTHROPIC_BASE_URL = "https://api.anthropic.com"


def _read_timeout(request: Any) -> float | None:
    timeout = request.extensions.get("timeout") or {}
    value = timeout.get("read")
    return float(value) if isinstance(value, int | float) else None


def _wait_plan(plan: FakeResponse, request: Any) -> float:
    """Seconds to wait before answering; negative: wait that long, then time out as the client would."""
    timeout = _read_timeout(request)
    if timeout is not None and plan.delay_s > timeout:
        return -timeout
    return plan.delay_s


def _gap(plan: FakeResponse, request: Any) -> float:
    """Seconds between SSE frames; negative when a frame comes later than the read timeout."""
    timeout = _read_timeout(request)
    if timeout is not None and plan.chunk_delay_s > timeout:
        return -timeout
    return plan.chunk_delay_s


def _target(request: Any) -> str:
    """The request's path with its query (the batch APIs' list pages read it)."""
    return str(request.url.raw_path.decode("ascii"))


TIMED_OUT = "costkit fake provider: no response within the read timeout"
DISCONNECTED = "Server disconnected without sending a response."
CUT_SHORT = "peer closed connection without sending complete message body (incomplete chunked read)"


@functools.cache
def transport_classes(http: ModuleType) -> tuple[type[Any], type[Any]]:
    """The (sync, async) fake transports for an httpx-compatible module.

    openai uses ``httpx``; anthropic 2.x uses its fork ``httpx2``, whose clients accept only
    ``httpx2`` objects. The classes are the same logic, built once per module.
    """

    class _SyncFrames(http.SyncByteStream):  # type: ignore[name-defined]
        def __init__(self, plan: FakeResponse, request: Any) -> None:
            self._plan = plan
            self._request = request

        def __iter__(self) -> Iterator[bytes]:
            gap = _gap(self._plan, self._request)
            for i, frame in enumerate(self._plan.frames or ()):
                if i and gap:
                    time.sleep(abs(gap))
                    if gap < 0:
                        raise http.ReadTimeout(TIMED_OUT, request=self._request)
                yield frame
            if self._plan.drop:
                raise http.RemoteProtocolError(CUT_SHORT, request=self._request)

    class _AsyncFrames(http.AsyncByteStream):  # type: ignore[name-defined]
        def __init__(self, plan: FakeResponse, request: Any) -> None:
            self._plan = plan
            self._request = request

        async def __aiter__(self) -> AsyncIterator[bytes]:
            gap = _gap(self._plan, self._request)
            for i, frame in enumerate(self._plan.frames or ()):
                if i and gap:
                    await asyncio.sleep(abs(gap))
                    if gap < 0:
                        raise http.ReadTimeout(TIMED_OUT, request=self._request)
                yield frame
            if self._plan.drop:
                raise http.RemoteProtocolError(CUT_SHORT, request=self._request)

    def respond(plan: FakeResponse, request: Any, stream: Any) -> Any:
        if plan.frames is not None:
            return http.Response(plan.status, headers=dict(plan.headers), stream=stream, request=request)
        return http.Response(plan.status, headers=dict(plan.headers), content=plan.body, request=request)

    class FakeTransport(http.BaseTransport):  # type: ignore[name-defined]
        """An httpx transport that answers from a FakeProvider in the calling thread."""

        def __init__(self, fake: FakeProvider) -> None:
            self.fake = fake

        def handle_request(self, request: Any) -> Any:
            plan = self.fake.handle(request.method, _target(request), request.headers, request.read())
            wait = _wait_plan(plan, request)
            if wait:
                time.sleep(abs(wait))
                if wait < 0:
                    raise http.ReadTimeout(TIMED_OUT, request=request)
            if plan.drop and plan.frames is None:
                raise http.RemoteProtocolError(DISCONNECTED, request=request)
            return respond(plan, request, _SyncFrames(plan, request))

    class AsyncFakeTransport(http.AsyncBaseTransport):  # type: ignore[name-defined]
        """The async twin of FakeTransport (waits with asyncio.sleep)."""

        def __init__(self, fake: FakeProvider) -> None:
            self.fake = fake

        async def handle_async_request(self, request: Any) -> Any:
            plan = self.fake.handle(request.method, _target(request), request.headers, await request.aread())
            wait = _wait_plan(plan, request)
            if wait:
                await asyncio.sleep(abs(wait))
                if wait < 0:
                    raise http.ReadTimeout(TIMED_OUT, request=request)
            if plan.drop and plan.frames is None:
                raise http.RemoteProtocolError(DISCONNECTED, request=request)
            return respond(plan, request, _AsyncFrames(plan, request))

    return FakeTransport, AsyncFakeTransport


def FakeTransport(fake: FakeProvider) -> httpx.BaseTransport:
    """An ``httpx`` transport answered by ``fake``: ``httpx.Client(transport=FakeTransport(fake))``."""
    return transport_classes(httpx)[0](fake)


def AsyncFakeTransport(fake: FakeProvider) -> httpx.AsyncBaseTransport:
    """The async twin of :func:`FakeTransport`."""
    return transport_classes(httpx)[1](fake)


def _anthropic_http() -> ModuleType:
    """The httpx-compatible module the installed anthropic SDK builds its clients on."""
    import anthropic._base_client as base

    return getattr(base, "httpx2", None) or getattr(base, "httpx")  # noqa: B009


def _sdk_client(
    cls: Any, http: ModuleType, *, is_async: bool, fake: FakeProvider | None, client_kwargs: dict[str, Any]
) -> Any:
    """``cls(**client_kwargs)`` on an httpx client whose transport is the fake; ``.fake`` set."""
    fake = fake if fake is not None else FakeProvider()
    sync_transport, async_transport = transport_classes(http)
    if is_async:
        http_client = http.AsyncClient(transport=async_transport(fake))
    else:
        http_client = http.Client(transport=sync_transport(fake))
    return _with_fake(cls)(http_client=http_client, **client_kwargs)


_FAKE_CLASSES: dict[type, type] = {}


def _with_fake(cls: type) -> type:
    """``cls`` with a ``fake`` attribute read from its HTTP transport, so every copy of a fake client
    (``with_options``, ``copy``, ``costkit.wrap``: they share the connection pool) has it too."""
    found = _FAKE_CLASSES.get(cls)
    if found is None:

        def fake(self: Any) -> FakeProvider:
            return self._client._transport.fake

        found = _FAKE_CLASSES[cls] = type(cls.__name__, (cls,), {"fake": property(fake), "__module__": cls.__module__})
    return found


def FakeOpenAI(
    fake: FakeProvider | None = None,
    *,
    api_key: str = "sk-costkit-fake",
    base_url: str = OPENAI_BASE_URL,
    max_retries: int = 0,
    **client_kwargs: Any,
) -> FakeOpenAIClient:
    """A real ``openai.OpenAI`` answered in process by ``fake`` (a new provider if None)."""
    import openai

    kwargs = {"api_key": api_key, "base_url": base_url, "max_retries": max_retries, **client_kwargs}
    return _sdk_client(openai.OpenAI, httpx, is_async=False, fake=fake, client_kwargs=kwargs)


def FakeAsyncOpenAI(
    fake: FakeProvider | None = None,
    *,
    api_key: str = "sk-costkit-fake",
    base_url: str = OPENAI_BASE_URL,
    max_retries: int = 0,
    **client_kwargs: Any,
) -> FakeAsyncOpenAIClient:
    """A real ``openai.AsyncOpenAI`` answered in process by ``fake``."""
    import openai

    kwargs = {"api_key": api_key, "base_url": base_url, "max_retries": max_retries, **client_kwargs}
    return _sdk_client(openai.AsyncOpenAI, httpx, is_async=True, fake=fake, client_kwargs=kwargs)


def FakeAnthropic(
    fake: FakeProvider | None = None,
    *,
    api_key: str = "sk-ant-costkit-fake",
    base_url: str = ANTHROPIC_BASE_URL,
    max_retries: int = 0,
    **client_kwargs: Any,
) -> FakeAnthropicClient:
    """A real ``anthropic.Anthropic`` answered in process by ``fake``."""
    import anthropic

    kwargs = {"api_key": api_key, "base_url": base_url, "max_retries": max_retries, **client_kwargs}
    return _sdk_client(anthropic.Anthropic, _anthropic_http(), is_async=False, fake=fake, client_kwargs=kwargs)


def FakeAsyncAnthropic(
    fake: FakeProvider | None = None,
    *,
    api_key: str = "sk-ant-costkit-fake",
    base_url: str = ANTHROPIC_BASE_URL,
    max_retries: int = 0,
    **client_kwargs: Any,
) -> FakeAsyncAnthropicClient:
    """A real ``anthropic.AsyncAnthropic`` answered in process by ``fake``."""
    import anthropic

    kwargs = {"api_key": api_key, "base_url": base_url, "max_retries": max_retries, **client_kwargs}
    return _sdk_client(anthropic.AsyncAnthropic, _anthropic_http(), is_async=True, fake=fake, client_kwargs=kwargs)


def _import_litellm() -> Any:
    # litellm fetches its price list from the network at import unless told not to.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    return litellm


def _routes_to_anthropic(litellm: Any, model: str, custom_llm_provider: str | None) -> bool:
    """Whether litellm would send ``model`` to Anthropic (decided from its bundled model list)."""
    if custom_llm_provider:
        return custom_llm_provider == "anthropic"
    if "/" in model:
        return model.startswith("anthropic/")
    info = litellm.model_cost.get(model) or {}
    return info.get("litellm_provider") == "anthropic" or model in getattr(litellm, "anthropic_models", ())


class FakeLiteLLM(ModuleType):
    """Called like the ``litellm`` module; runs the real ``litellm.completion`` offline.

    It is a module object named ``litellm.costkit_fake`` so that code which accepts "the litellm
    module" (``costkit.wrap(litellm)``) accepts it too.

    Models litellm routes to Anthropic go through litellm's own Anthropic path (its HTTP handler
    on a :class:`FakeTransport`, so the fake answers ``/v1/messages``); every other model goes
    through litellm's OpenAI path with a :func:`FakeOpenAI` client. Callers get a real
    ``litellm.ModelResponse`` (or litellm's ``CustomStreamWrapper``) whose usage comes from the
    fake. Any other attribute is the real litellm module's.
    """

    def __init__(self, fake: FakeProvider | None = None) -> None:
        super().__init__("litellm.costkit_fake", "A fake litellm module answered by costkit's fake provider.")
        self.fake = fake if fake is not None else FakeProvider()
        self._clients: dict[str, Any] = {}

    def _client(self, kind: str) -> Any:
        client = self._clients.get(kind)
        if client is None:
            from litellm.llms.custom_httpx.http_handler import AsyncHTTPHandler, HTTPHandler

            if kind == "openai":
                client = FakeOpenAI(self.fake)
            elif kind == "async_openai":
                client = FakeAsyncOpenAI(self.fake)
            elif kind == "anthropic":
                client = HTTPHandler(client=httpx.Client(transport=FakeTransport(self.fake)))
            else:
                client = AsyncHTTPHandler(transport=AsyncFakeTransport(self.fake))
            self._clients[kind] = client
        return client

    def _route(self, litellm: Any, model: str, kwargs: dict[str, Any], *, is_async: bool) -> dict[str, Any]:
        kwargs.setdefault("max_retries", 0)
        if _routes_to_anthropic(litellm, model, kwargs.get("custom_llm_provider")):
            kwargs.setdefault("api_key", "sk-ant-costkit-fake")
            kwargs["client"] = self._client("async_anthropic" if is_async else "anthropic")
        else:
            kwargs.setdefault("api_key", "sk-costkit-fake")
            kwargs["custom_llm_provider"] = "openai"
            kwargs["client"] = self._client("async_openai" if is_async else "openai")
        kwargs["model"] = model
        return kwargs

    def completion(self, model: str, messages: list[dict[str, Any]], **kwargs: Any) -> Any:
        litellm = _import_litellm()
        return litellm.completion(messages=messages, **self._route(litellm, model, kwargs, is_async=False))

    async def acompletion(self, model: str, messages: list[dict[str, Any]], **kwargs: Any) -> Any:
        litellm = _import_litellm()
        return await litellm.acompletion(messages=messages, **self._route(litellm, model, kwargs, is_async=True))

    def embedding(self, model: str, input: Any, **kwargs: Any) -> Any:
        """OpenAI-style embeddings through litellm (the fake's deterministic hashed vectors)."""
        litellm = _import_litellm()
        kwargs.update(custom_llm_provider="openai", client=self._client("openai"))
        kwargs.setdefault("api_key", "sk-costkit-fake")
        return litellm.embedding(model=model, input=input, **kwargs)

    async def aembedding(self, model: str, input: Any, **kwargs: Any) -> Any:
        litellm = _import_litellm()
        kwargs.update(custom_llm_provider="openai", client=self._client("async_openai"))
        kwargs.setdefault("api_key", "sk-costkit-fake")
        return await litellm.aembedding(model=model, input=input, **kwargs)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(_import_litellm(), name)


__all__ = [
    "AsyncFakeTransport",
    "FakeAnthropic",
    "FakeAsyncAnthropic",
    "FakeAsyncOpenAI",
    "FakeLiteLLM",
    "FakeOpenAI",
    "FakeTransport",
]
