"""What the fake provider answers: replies, failures, and the ordered rules that pick them.

A test scripts the fake the way it would describe a provider in words: "when the user asks
about refunds, answer X", "for gpt-4o call the tool lookup", "the next two calls get a 429".
Rules are tried in order; the first that matches answers; otherwise the default reply does.
Everything here is a frozen value, so a script can be shared between threads.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeAlias

import attrs

from .._call import content_text
from ..errors import ConfigError


@attrs.frozen(kw_only=True)
class ToolCall:
    """A tool call the fake model makes; ``arguments`` is a dict (sent as JSON) or a JSON string."""

    name: str
    arguments: Mapping[str, Any] | str = attrs.field(factory=dict)
    id: str | None = None

    @property
    def arguments_json(self) -> str:
        if isinstance(self.arguments, str):
            return self.arguments
        return json.dumps(dict(self.arguments), separators=(",", ":"), sort_keys=True)

    @property
    def arguments_dict(self) -> dict[str, Any]:
        if isinstance(self.arguments, str):
            try:
                value = json.loads(self.arguments)
            except ValueError:
                return {}
            return value if isinstance(value, dict) else {}
        return dict(self.arguments)


FAILURE_KINDS = ("status", "timeout", "disconnect", "malformed")


@attrs.frozen(kw_only=True)
class Failure:
    """A way the provider fails.

    * ``status``: an HTTP error (429 with ``retry_after`` seconds, 500, 503, Anthropic's 529 ...),
      with the provider's own error body, so the SDK raises its own exception class.
    * ``timeout``: the server waits ``delay_s`` before answering normally; a client whose read
      timeout is shorter gives up first (``openai.APITimeoutError``).
    * ``disconnect``: the server waits ``delay_s`` and drops the connection without a response.
    * ``malformed``: a 200 whose JSON body is cut short, or for a stream, SSE that stops half way
      (the connection drops mid-body).
    """

    kind: str = attrs.field(default="status", validator=attrs.validators.in_(FAILURE_KINDS))
    status: int = 500
    retry_after: float | None = None
    delay_s: float = 0.0
    message: str | None = None

    def __attrs_post_init__(self) -> None:
        if self.kind == "status" and not 400 <= self.status <= 599:
            raise ConfigError("status", f"an error status is 400..599, got {self.status}")
        if self.delay_s < 0:
            raise ConfigError("delay_s", f"must be >= 0, got {self.delay_s}")
        if self.retry_after is not None and self.retry_after < 0:
            raise ConfigError("retry_after", f"must be >= 0, got {self.retry_after}")

    @classmethod
    def rate_limit(cls, retry_after: float | None = 1.0, message: str | None = None) -> Failure:
        return cls(kind="status", status=429, retry_after=retry_after, message=message)

    @classmethod
    def server_error(cls, status: int = 500, message: str | None = None) -> Failure:
        return cls(kind="status", status=status, message=message)

    @classmethod
    def overloaded(cls, status: int = 503, retry_after: float | None = None) -> Failure:
        return cls(kind="status", status=status, retry_after=retry_after)

    @classmethod
    def timeout(cls, delay_s: float = 30.0) -> Failure:
        return cls(kind="timeout", delay_s=delay_s)

    @classmethod
    def disconnect(cls, delay_s: float = 0.0) -> Failure:
        return cls(kind="disconnect", delay_s=delay_s)

    @classmethod
    def malformed(cls) -> Failure:
        return cls(kind="malformed")

    @property
    def label(self) -> str:
        """A short name for the call log: ``429``, ``timeout``, ``disconnect``, ``malformed``."""
        return str(self.status) if self.kind == "status" else self.kind


def _tool_calls(value: Any) -> tuple[ToolCall, ...]:
    return tuple(value)


@attrs.frozen(kw_only=True)
class Reply:
    """One scripted answer: text, tool calls, or a refusal (a failure is a :class:`Failure`)."""

    text: str | None = None
    tool_calls: tuple[ToolCall, ...] = attrs.field(default=(), converter=_tool_calls)
    refusal: str | None = None

    def __attrs_post_init__(self) -> None:
        if self.refusal is not None and (self.text is not None or self.tool_calls):
            raise ConfigError("refusal", "a refusal carries no text or tool calls")


def text(value: str) -> Reply:
    return Reply(text=value)


def tool_call(name: str, arguments: Mapping[str, Any] | str | None = None, /, **kwargs: Any) -> Reply:
    """A reply that calls one tool: ``tool_call("lookup", city="Paris")``."""
    args: Mapping[str, Any] | str = arguments if arguments is not None else kwargs
    return Reply(tool_calls=(ToolCall(name=name, arguments=args),))


def refusal(value: str = "I can't help with that.") -> Reply:
    return Reply(refusal=value)


@attrs.frozen(kw_only=True)
class FakeRequest:
    """A request as every rule sees it, whatever the API: normalized OpenAI-style messages.

    ``messages`` is a list of ``{"role", "content"}`` dicts with plain-text content (Anthropic's
    ``system`` and the Responses API's ``instructions`` become a leading system message).
    ``body`` is the JSON the SDK sent, untouched.
    """

    api: str  # "chat", "responses", "embeddings"; Anthropic's "messages" and "count_tokens"
    path: str
    model: str
    body: Mapping[str, Any]
    headers: Mapping[str, str]
    messages: tuple[Mapping[str, Any], ...] = ()
    stream: bool = False
    max_tokens: int | None = None
    tools: tuple[Mapping[str, Any], ...] = ()

    @property
    def provider(self) -> str:
        return "anthropic" if self.api in ("messages", "count_tokens") else "openai"

    @property
    def last_user_text(self) -> str:
        for m in reversed(self.messages):
            if m.get("role") == "user":
                return content_text(m.get("content"))
        return ""

    @property
    def system_text(self) -> str:
        return "\n".join(
            content_text(m.get("content")) for m in self.messages if m.get("role") in ("system", "developer")
        )


ReplyLike: TypeAlias = "Reply | Failure | str"
Responder: TypeAlias = Callable[[FakeRequest], "Reply | Failure | str | None"]


def as_reply(value: Reply | Failure | str) -> Reply | Failure:
    if isinstance(value, Reply | Failure):
        return value
    if isinstance(value, str):
        return Reply(text=value)
    raise TypeError(f"a reply is a str, Reply or Failure, got {type(value).__name__}")


@attrs.frozen(kw_only=True)
class Rule:
    """``match`` is a compiled regex searched in the last user message, or a callable responder.

    ``model`` limits the rule to one model (or several); ``times`` to its first N uses.
    """

    match: re.Pattern[str] | Responder
    reply: Reply | Failure | Callable[[FakeRequest], Reply | Failure | str] | None = None
    models: frozenset[str] | None = None
    times: int | None = None

    def answer(self, request: FakeRequest) -> Reply | Failure | None:
        if self.models is not None and request.model not in self.models:
            return None
        if isinstance(self.match, re.Pattern):
            if self.match.search(request.last_user_text) is None:
                return None
            reply = self.reply(request) if callable(self.reply) else self.reply
            return as_reply(reply) if reply is not None else None
        value = self.match(request)
        return None if value is None else as_reply(value)


def make_rule(
    match: str | re.Pattern[str] | Responder,
    reply: Reply | Failure | str | Callable[[FakeRequest], Reply | Failure | str] | None = None,
    *,
    model: str | Sequence[str] | None = None,
    times: int | None = None,
) -> Rule:
    """Check and build a rule (see :meth:`FakeProvider.on`)."""
    if times is not None and times < 1:
        raise ConfigError("times", f"must be >= 1, got {times}")
    models = None if model is None else frozenset([model] if isinstance(model, str) else model)
    if isinstance(match, str | re.Pattern):
        if reply is None:
            raise ConfigError("reply", "a pattern rule needs a reply")
        try:
            pattern = re.compile(match) if isinstance(match, str) else match
        except re.error as exc:
            raise ConfigError("match", f"invalid regex: {exc}") from None
        stored = reply if callable(reply) else as_reply(reply)
        return Rule(match=pattern, reply=stored, models=models, times=times)
    if not callable(match):
        raise ConfigError("match", f"a rule matches with a regex or a callable, got {type(match).__name__}")
    if reply is not None:
        raise ConfigError("reply", "a callable rule returns its own reply")
    return Rule(match=match, models=models, times=times)


def default_reply(request: FakeRequest) -> Reply:
    """Deterministic and distinct per question, so a wrong cache hit is visible in a test."""
    question = " ".join(request.last_user_text.split())
    if len(question) > 200:
        question = question[:200]
    return Reply(text=f"Fake answer to: {question}" if question else "Fake answer.")


__all__ = [
    "FAILURE_KINDS",
    "Failure",
    "FakeRequest",
    "Reply",
    "Responder",
    "Rule",
    "ToolCall",
    "as_reply",
    "default_reply",
    "make_rule",
    "refusal",
    "text",
    "tool_call",
]
