"""The fake provider: one transport-agnostic handler behind every fake client and the HTTP server.

``FakeProvider.handle(method, path, headers, body)`` turns a request into a :class:`FakeResponse`
(status, headers, a JSON body or SSE frames, and how long to wait): the logic lives here once,
and each transport (in-process httpx sync/async, the local HTTP server) only performs the waits
and the bytes, the way httpx keeps I/O out of its auth flows.
"""

from __future__ import annotations

import collections
import functools
import itertools
import json
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import attrs

from .._call import Usage
from ..errors import ConfigError
from . import wire
from .batch_api import BATCH_PATHS, BatchAPI
from .prefix_cache import PrefixCache
from .rules import (
    Failure,
    FakeRequest,
    Reply,
    Responder,
    Rule,
    as_reply,
    default_reply,
    make_rule,
)

DEFAULT_RANDOM_FAILURES: tuple[Failure, ...] = (
    Failure.rate_limit(retry_after=0.0),
    Failure.server_error(500),
    Failure.overloaded(503),
    Failure.disconnect(),
)


@attrs.frozen(kw_only=True)
class FakeResponse:
    """What a transport must do: wait ``delay_s``, then send a body or SSE frames, or drop.

    ``drop`` without ``frames`` closes the connection before any response; with ``frames`` it
    closes after them, mid-body (a truncated stream).
    """

    status: int
    headers: Mapping[str, str]
    body: bytes = b""
    frames: tuple[bytes, ...] | None = None
    delay_s: float = 0.0
    chunk_delay_s: float = 0.0
    drop: bool = False


@attrs.frozen(kw_only=True)
class FakeCall:
    """One request the fake received, for assertions: ``fake.calls[0].model == "gpt-4o-mini"``.

    ``status`` is the HTTP status sent (None when the connection was dropped); ``failure`` names
    an injected failure (``"429"``, ``"timeout"``, ``"disconnect"``, ``"malformed"``) or is None.
    """

    index: int
    api: str
    path: str
    model: str
    body: Mapping[str, Any]
    headers: Mapping[str, str]
    stream: bool
    status: int | None
    failure: str | None
    reply: Reply | None
    usage: Usage | None
    request: FakeRequest | None
    timestamp: float

    @property
    def messages(self) -> tuple[Mapping[str, Any], ...]:
        return self.request.messages if self.request is not None else ()

    @property
    def last_user_text(self) -> str:
        return self.request.last_user_text if self.request is not None else ""


def _count_text(text: str, model: str | None) -> int:
    from ..tokens import count_text

    return int(count_text(text, model=model))


def _count_prompt(messages: Sequence[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]], model: str | None) -> int:
    """``count_messages`` + ``count_tools``: what costkit's own pre-call estimate would say."""
    from ..tokens import count_messages, count_tools

    return int(count_messages(list(messages), model=model)) + int(count_tools(list(tools), model=model))


def truncate_to_tokens(text: str, max_tokens: int, model: str | None) -> str:
    """The first ``max_tokens`` tokens of ``text`` (a partial character at the cut is dropped)."""
    from ..tokens import EncodingUnavailable, encoding_for_model

    if max_tokens <= 0:
        return ""
    try:
        enc = encoding_for_model(model)
    except EncodingUnavailable:
        # no tokenizer: the longest word-boundary prefix the estimate allows
        parts, lo, hi = wire.pieces(text), 0, len(wire.pieces(text))
        while lo < hi:
            mid = (lo + hi + 1) // 2
            lo, hi = (mid, hi) if _count_text("".join(parts[:mid]), model) <= max_tokens else (lo, mid - 1)
        return "".join(parts[:lo])
    tokens = enc.encode_ordinary(text)
    if len(tokens) <= max_tokens:
        return text
    return enc.decode_bytes(tokens[:max_tokens]).decode("utf-8", errors="ignore")


def _duration(value: float | tuple[float, float], name: str) -> float | tuple[float, float]:
    if isinstance(value, tuple):
        if len(value) != 2 or not 0 <= value[0] <= value[1]:
            raise ConfigError(name, f"a range is (low, high) with 0 <= low <= high, got {value!r}")
        return (float(value[0]), float(value[1]))
    if value < 0:
        raise ConfigError(name, f"must be >= 0, got {value}")
    return float(value)


class FakeProvider:
    """A scripted, deterministic OpenAI + Anthropic provider with a call log.

    Script it with :meth:`on` (rules tried in order), :meth:`fail_next` (the next N requests
    fail) and ``failure_rate`` (seeded random failures); read what it received in :attr:`calls`.
    Usage is counted with costkit's tokenizer (:mod:`costkit.tokens`): prompt tokens are
    ``count_messages`` of the normalized messages plus ``count_tools``, completion tokens
    ``count_text`` of the reply. Thread-safe.

    ``prompt_caching=True`` simulates provider prompt caching as each provider bills it
    (:mod:`costkit.testing.prefix_cache`: OpenAI's automatic prefix cache, Anthropic's
    ``cache_control`` breakpoints, per-model minimums, lifetimes); ``min_cacheable_tokens``
    overrides the providers' minimums.
    ``max_logged_calls`` keeps only the latest N calls in the log (long benchmarks); ``count``
    and ``calls`` then see those only.
    """

    def __init__(
        self,
        *,
        default: Reply | str | Responder | None = None,
        latency_s: float | tuple[float, float] = 0.0,
        chunk_delay_s: float = 0.0,
        failure_rate: float = 0.0,
        failure_kinds: Iterable[Failure] | None = None,
        seed: int = 0,
        prompt_caching: bool = False,
        min_cacheable_tokens: int | None = None,
        max_logged_calls: int | None = None,
    ) -> None:
        if not 0.0 <= failure_rate <= 1.0:
            raise ConfigError("failure_rate", f"must be within [0, 1], got {failure_rate}")
        kinds = tuple(failure_kinds) if failure_kinds is not None else DEFAULT_RANDOM_FAILURES
        if failure_rate > 0 and not kinds:
            raise ConfigError("failure_kinds", "random failures need at least one Failure")
        if not all(isinstance(k, Failure) for k in kinds):
            raise ConfigError("failure_kinds", "every entry must be a costkit.testing.Failure")
        if max_logged_calls is not None and max_logged_calls < 1:
            raise ConfigError("max_logged_calls", f"must be >= 1 or None, got {max_logged_calls}")
        if min_cacheable_tokens is not None and min_cacheable_tokens < 1:
            raise ConfigError("min_cacheable_tokens", f"must be >= 1, got {min_cacheable_tokens}")
        if default is not None and not (isinstance(default, Reply | str) or callable(default)):
            raise ConfigError("default", "a default reply is a str, a Reply or a callable(request)")
        self.latency_s = _duration(latency_s, "latency_s")
        self.chunk_delay_s = float(_duration(chunk_delay_s, "chunk_delay_s"))  # type: ignore[arg-type]
        self.failure_rate = failure_rate
        self.failure_kinds = kinds
        self.prompt_caching = prompt_caching
        self.min_cacheable_tokens = min_cacheable_tokens
        self._default = default
        self._seed = seed
        self._rng = random.Random(seed)
        self._lock = threading.RLock()
        self._rules: list[Rule] = []
        self._uses: dict[int, int] = {}
        self._queued: list[tuple[Failure, frozenset[str] | None]] = []
        self._calls: collections.deque[FakeCall] = collections.deque(maxlen=max_logged_calls)
        #: the provider-side prompt cache (``prompt_caching=True``); its ``clock`` can be moved in tests
        self.prefix_cache = PrefixCache(min_tokens=min_cacheable_tokens)
        self._ids = itertools.count(1)

    # ---- scripting

    def on(
        self,
        match: str | Any | Responder,
        reply: Reply | Failure | str | Callable[[FakeRequest], Reply | Failure | str] | None = None,
        *,
        model: str | Sequence[str] | None = None,
        times: int | None = None,
    ) -> FakeProvider:
        """Add a rule: a regex searched in the last user message -> ``reply``, or a callable
        ``request -> reply | None``. ``model`` limits it to those models, ``times`` to N uses.
        Returns the provider, so rules chain."""
        rule = make_rule(match, reply, model=model, times=times)
        with self._lock:
            self._rules.append(rule)
        return self

    def set_default(self, reply: Reply | str | Responder) -> None:
        """What to answer when no rule matches (by default: ``"Fake answer to: <question>"``)."""
        with self._lock:
            self._default = reply

    def fail_next(
        self,
        n: int = 1,
        status: int | Failure = 429,
        retry_after: float | None = None,
        *,
        model: str | Sequence[str] | None = None,
    ) -> None:
        """The next ``n`` requests (to ``model`` if given) fail with ``status`` or a :class:`Failure`."""
        if n < 1:
            raise ConfigError("n", f"must be >= 1, got {n}")
        if isinstance(status, Failure):
            if retry_after is not None:
                raise ConfigError("retry_after", "give retry_after inside the Failure")
            failure = status
        else:
            failure = Failure(kind="status", status=status, retry_after=retry_after)
        models = None if model is None else frozenset([model] if isinstance(model, str) else model)
        with self._lock:
            self._queued.extend([(failure, models)] * n)

    def clear_rules(self) -> None:
        with self._lock:
            self._rules.clear()
            self._uses.clear()

    def reset(self) -> None:
        """Forget the call log, queued failures and the prompt cache; re-seed; keep the rules."""
        with self._lock:
            self._calls.clear()
            self._queued.clear()
            self.prefix_cache.clear()
            self._uses.clear()
            self._rng = random.Random(self._seed)

    # ---- the call log

    @property
    def calls(self) -> list[FakeCall]:
        with self._lock:
            return list(self._calls)

    @property
    def last(self) -> FakeCall:
        with self._lock:
            if not self._calls:
                raise LookupError("the fake provider has received no request")
            return self._calls[-1]

    def count(
        self,
        *,
        model: str | None = None,
        api: str | None = None,
        status: int | None = None,
        failed: bool | None = None,
    ) -> int:
        """How many requests matched every given filter (``failed``: an injected failure or not)."""
        return sum(
            1
            for c in self.calls
            if (model is None or c.model == model)
            and (api is None or c.api == api)
            and (status is None or c.status == status)
            and (failed is None or (c.failure is not None) == failed)
        )

    @functools.cached_property
    def batch_api(self) -> BatchAPI:
        """The batch endpoints (files, OpenAI batches, Anthropic message batches): script and inspect here."""
        return BatchAPI(self)

    # ---- the handler

    def handle(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes | Mapping[str, Any]
    ) -> FakeResponse:
        """Answer one request (see the module docstring). Never raises for a bad request: the
        response is the provider's own 4xx error body."""
        path, _, query = path.partition("?")
        hdrs = {k.lower(): v for k, v in headers.items()}
        if path.startswith(BATCH_PATHS):  # files and batch jobs: costkit/testing/batch_api.py
            return self.batch_api.handle(method, path, query, hdrs, body)
        api = wire.api_of(path)
        if method.upper() != "POST" or api is None:
            return self._reject(path, hdrs, {}, 404, f"no such endpoint: {method} {path}")
        try:
            doc = json.loads(body) if isinstance(body, bytes | bytearray | str) else dict(body)
            if not isinstance(doc, dict):
                raise ValueError("the body is not a JSON object")
        except ValueError as exc:
            return self._reject(path, hdrs, {}, 400, f"invalid JSON body: {exc}")
        request = wire.parse_request(path, hdrs, doc)
        problem = self._validate(request)
        if problem is not None:
            return self._reject(path, hdrs, doc, 400, problem)

        with self._lock:
            index = next(self._ids)
            failure = self._take_failure(request)
            reply: Reply | Failure | None = None
            if failure is None or failure.kind in ("timeout", "malformed"):  # slow or garbled, still scripted
                try:
                    reply = self._pick_reply(request)
                except Exception as exc:  # a bug in a test's rule: a 500 that names it, not a silent pass
                    reply = Failure.server_error(500, f"costkit fake provider: a rule raised {exc!r}")
            delay = self._latency()
        if isinstance(reply, Failure):
            failure, reply = reply, None
        if failure is not None:
            return self._fail(index, request, failure, reply or default_reply(request), delay)
        assert reply is not None
        return self._answer(index, request, reply, delay)

    # ---- internals

    def _validate(self, r: FakeRequest) -> str | None:
        if not r.model:
            return "model is required"
        if r.api == "chat" and not r.body.get("messages"):
            return "messages is required and must not be empty"
        if r.api in ("messages", "count_tokens") and not r.body.get("messages"):
            return "messages: at least one message is required"
        if r.api == "messages" and r.max_tokens is None:
            return "max_tokens: Field required"
        if r.api == "messages" and self.prompt_caching:
            return self.prefix_cache.check_anthropic(r.body)
        if r.api == "responses" and r.body.get("input") in (None, "", []):
            return "input is required"
        if r.api == "embeddings" and r.body.get("input") in (None, "", []):
            return "input is required"
        return None

    def _take_failure(self, request: FakeRequest) -> Failure | None:
        for i, (failure, models) in enumerate(self._queued):
            if models is None or request.model in models:
                del self._queued[i]
                return failure
        if self.failure_rate > 0 and self._rng.random() < self.failure_rate:
            return self._rng.choice(self.failure_kinds)
        return None

    def _pick_reply(self, request: FakeRequest) -> Reply | Failure:
        if request.api in ("embeddings", "count_tokens"):
            return Reply()
        for rule in self._rules:
            key = id(rule)
            if rule.times is not None and self._uses.get(key, 0) >= rule.times:
                continue
            answer = rule.answer(request)
            if answer is not None:
                self._uses[key] = self._uses.get(key, 0) + 1
                return answer
        default = self._default
        if default is None:
            return default_reply(request)
        if isinstance(default, Reply | str):
            return as_reply(default)
        value = default(request)
        return default_reply(request) if value is None else as_reply(value)

    def _latency(self) -> float:
        if isinstance(self.latency_s, tuple):
            return self._rng.uniform(*self.latency_s)
        return self.latency_s

    def _log(
        self,
        index: int,
        request: FakeRequest,
        status: int | None,
        *,
        failure: Failure | None = None,
        reply: Reply | None = None,
        usage: Usage | None = None,
    ) -> None:
        call = FakeCall(
            index=index,
            api=request.api,
            path=request.path,
            model=request.model,
            body=request.body,
            headers=request.headers,
            stream=request.stream,
            status=status,
            failure=None if failure is None else failure.label,
            reply=reply,
            usage=usage,
            request=request,
            timestamp=time.time(),
        )
        with self._lock:
            self._calls.append(call)

    def _reject(
        self, path: str, headers: Mapping[str, str], body: Mapping[str, Any], status: int, message: str
    ) -> FakeResponse:
        """A request the provider itself would refuse: logged, answered with its 4xx error body."""
        api = wire.api_of(path) or "unknown"
        request = FakeRequest(
            api=api,
            path=path,
            model=str(body.get("model", "")),
            body=body,
            headers=headers,
            stream=bool(body.get("stream")),
        )
        with self._lock:
            index = next(self._ids)
        self._log(index, request, status)
        return self._json(status, wire.error_body(request.provider, status, message), request.provider, index)

    def _json(
        self, status: int, doc: Mapping[str, Any], provider: str, index: int, delay: float = 0.0, **extra: str
    ) -> FakeResponse:
        return FakeResponse(
            status=status,
            headers={"content-type": "application/json", **_request_id(provider, index), **extra},
            body=_encode(doc).encode(),
            delay_s=delay,
        )

    def _fail(self, index: int, request: FakeRequest, failure: Failure, reply: Reply, delay: float) -> FakeResponse:
        if failure.kind == "status":
            message = failure.message or f"costkit fake provider: injected {failure.status}"
            extra = {} if failure.retry_after is None else {"retry-after": _seconds(failure.retry_after)}
            doc = wire.error_body(request.provider, failure.status, message)
            self._log(index, request, failure.status, failure=failure)
            return self._json(failure.status, doc, request.provider, index, delay, **extra)
        if failure.kind == "disconnect":
            self._log(index, request, None, failure=failure)
            return FakeResponse(status=0, headers={}, delay_s=delay + failure.delay_s, drop=True)
        good = self._answer(index, request, reply, 0.0, log=False)
        self._log(index, request, 200, failure=failure, reply=reply)
        if failure.kind == "timeout":  # a slow answer: a client with a shorter read timeout gives up first
            return attrs.evolve(good, delay_s=delay + failure.delay_s)
        if good.frames is not None:  # malformed stream: half the events, half a frame, then the line drops
            keep = max(1, len(good.frames) // 2)
            torn = good.frames[keep][: len(good.frames[keep]) // 2] if keep < len(good.frames) else b"data: {"
            return attrs.evolve(good, frames=(*good.frames[:keep], torn), drop=True, delay_s=delay)
        return attrs.evolve(good, body=good.body[: len(good.body) // 2], delay_s=delay)

    def _answer(
        self, index: int, request: FakeRequest, reply: Reply, delay: float, *, log: bool = True
    ) -> FakeResponse:
        if request.api == "embeddings":
            return self._embeddings(index, request, delay, log=log)
        if request.api == "count_tokens":
            usage = Usage(input_tokens=_count_prompt(request.messages, request.tools, request.model))
            if log:
                self._log(index, request, 200, usage=usage)
            doc = {"input_tokens": usage.input_tokens}
            return self._json(200, doc, "anthropic", index, delay)
        model = request.model
        text_value, finish = reply.text, "stop"
        if reply.tool_calls:
            finish = "tool_calls"
        if reply.refusal is not None:
            finish = "refusal"
        if text_value is not None and request.max_tokens is not None:
            cut = truncate_to_tokens(text_value, request.max_tokens, model)
            if cut != text_value:
                text_value, finish = cut, "length"
        choices = _choices(request)
        usage = self._usage(request, text_value, reply, choices)
        prefix = {"chat": "chatcmpl-", "responses": "resp_", "messages": "msg_"}[request.api]
        outcome = wire.Outcome(
            id=f"{prefix}fake{index:012d}",
            model=model,
            text=text_value,
            tool_calls=reply.tool_calls,
            refusal=reply.refusal,
            finish=finish,
            usage=usage,
            choices=choices,
        )
        if log:
            self._log(index, request, 200, reply=reply, usage=usage)
        if request.stream:
            if request.api == "chat":
                options = request.body.get("stream_options") or {}
                events = wire.chat_chunks(outcome, include_usage=bool(options.get("include_usage")))
            elif request.api == "responses":
                events = wire.responses_events(outcome, request.body)
            else:
                events = wire.anthropic_events(outcome)
            return FakeResponse(
                status=200,
                headers={
                    "content-type": "text/event-stream; charset=utf-8",
                    "cache-control": "no-cache",
                    **_request_id(request.provider, index),
                },
                frames=tuple(wire.sse_frames(request.api, events)),
                delay_s=delay,
                chunk_delay_s=self.chunk_delay_s,
            )
        if request.api == "chat":
            doc = wire.chat_body(outcome)
        elif request.api == "responses":
            doc = wire.responses_body(outcome, request.body)
        else:
            doc = wire.anthropic_body(outcome)
        return self._json(200, doc, request.provider, index, delay)

    def _embeddings(self, index: int, request: FakeRequest, delay: float, *, log: bool) -> FakeResponse:
        inputs = [str(m["content"]) for m in request.messages]
        tokens = sum(_count_text(x, request.model) for x in inputs)
        usage = Usage(input_tokens=tokens)
        if log:
            self._log(index, request, 200, usage=usage)
        doc = wire.embeddings_body(request.model, inputs, request.body, tokens)
        return self._json(200, doc, "openai", index, delay)

    def _usage(self, request: FakeRequest, text_value: str | None, reply: Reply, choices: int = 1) -> Usage:
        model = request.model
        prompt = _count_prompt(request.messages, request.tools, model)
        output = _count_text(text_value, model) if text_value else 0
        if reply.refusal:
            output += _count_text(reply.refusal, model)
        for call in reply.tool_calls:
            output += _count_text(call.name, model) + _count_text(call.arguments_json, model)
        output *= choices
        read = write = 0
        if self.prompt_caching:

            def count(msgs: Sequence[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]]) -> int:
                return _count_prompt(msgs, tools, model)

            if request.api == "messages":
                read, write = self.prefix_cache.anthropic(model, request.body, prompt, count)
            else:
                read = self.prefix_cache.openai(model, request.body, request.messages, request.tools, prompt, count)
        return Usage(input_tokens=prompt, output_tokens=output, cached_read_tokens=read, cache_write_tokens=write)


_encode = json.JSONEncoder(separators=(",", ":")).encode


def _choices(request: FakeRequest) -> int:
    """Chat's ``n``: how many (identical) choices to return."""
    n = request.body.get("n") if request.api == "chat" else None
    return n if isinstance(n, int) and n > 1 else 1


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _request_id(provider: str, index: int) -> dict[str, str]:
    rid = f"req_fake{index:012d}"
    return {"request-id": rid} if provider == "anthropic" else {"x-request-id": rid}


__all__ = ["DEFAULT_RANDOM_FAILURES", "FakeCall", "FakeProvider", "FakeResponse", "truncate_to_tokens"]
