"""The provider-neutral values that flow through the pipeline: Tags, Usage, Call, Result.

They are frozen: a policy changes a call with ``attrs.evolve`` (or the helpers here), never in
place, so every layer sees exactly what the layer before it decided.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, TypedDict, cast

import attrs

if TYPE_CHECKING:
    from ._scope import RequestScope
    from ._stream import ResultStreamLike

#: why a provider request is made: the request itself, a retry or fallback, a cascade's escalation,
#: a gate's judge, a layer's own side request (an embedding, a history summary), a batch item
CallKind: TypeAlias = Literal["call", "retry", "escalation", "judge", "embedding", "summary", "batch"]
CALL_KINDS: tuple[CallKind, ...] = ("call", "retry", "escalation", "judge", "embedding", "summary", "batch")
#: who answered: the provider, the exact or semantic cache, or another in-flight identical request
Source: TypeAlias = Literal["provider", "exact", "semantic", "dedup"]

_EMPTY: Mapping[str, Any] = {}


def _opt_str(name: str) -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    def check(_inst: Any, _attr: attrs.Attribute[Any], value: Any) -> None:
        if value is not None and not isinstance(value, str):
            raise TypeError(f"{name} must be a str or None, got {type(value).__name__}")

    return check


TAG_FIELDS = (
    "tenant",
    "user",
    "feature",
    "route",
    "prompt_version",
    "corpus_version",
    "idempotency_key",
    "namespace",
    "task",
    "experiment",
    "arm",
)


class RecordTags(TypedDict):
    """The tags a cost record carries, as :class:`~costkit.records.CostRecord` keyword arguments (the
    other tags steer layers: cache namespaces, idempotency, corpus versions)."""

    tenant: str | None
    user: str | None
    feature: str | None
    route: str | None
    prompt_version: str | None
    task: str | None
    experiment: str | None
    arm: str | None


RECORD_TAGS: tuple[str, ...] = tuple(RecordTags.__annotations__)


@attrs.frozen(kw_only=True, slots=True)
class Tags:
    """Who and what a call is for: the attribution carried into every cost record."""

    tenant: str | None = attrs.field(default=None, validator=_opt_str("tenant"))
    user: str | None = attrs.field(default=None, validator=_opt_str("user"))
    feature: str | None = attrs.field(default=None, validator=_opt_str("feature"))
    route: str | None = attrs.field(default=None, validator=_opt_str("route"))
    prompt_version: str | None = attrs.field(default=None, validator=_opt_str("prompt_version"))
    corpus_version: str | None = attrs.field(default=None, validator=_opt_str("corpus_version"))
    idempotency_key: str | None = attrs.field(default=None, validator=_opt_str("idempotency_key"))
    namespace: str | None = attrs.field(default=None, validator=_opt_str("namespace"))
    #: one user-visible unit of work spanning many calls; ``costkit.outcome(task, ...)`` says how it ended
    task: str | None = attrs.field(default=None, validator=_opt_str("task"))
    #: set by :class:`costkit.Experiment` (the experiment's name and the arm this call was assigned)
    experiment: str | None = attrs.field(default=None, validator=_opt_str("experiment"))
    arm: str | None = attrs.field(default=None, validator=_opt_str("arm"))

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], *, where: str = "tags") -> Tags:
        """Build from a user's dict; an unknown key is a ``ConfigError`` naming it."""
        from .errors import ConfigError

        unknown = sorted(set(values) - set(TAG_FIELDS))
        if unknown:
            raise ConfigError(f"{where}.{unknown[0]}", f"unknown tag; known tags are {', '.join(TAG_FIELDS)}")
        try:
            return cls(**values)
        except TypeError as exc:
            raise ConfigError(where, str(exc)) from None

    def merged(self, other: Tags) -> Tags:
        """``other``'s set fields win over ours."""
        changes = {f: v for f in TAG_FIELDS if (v := getattr(other, f)) is not None}
        return attrs.evolve(self, **changes) if changes else self

    def as_dict(self) -> dict[str, str]:
        return {f: v for f in TAG_FIELDS if (v := getattr(self, f)) is not None}

    def for_record(self) -> RecordTags:
        """The attribution a cost record made for these tags carries (``CostRecord(**tags.for_record())``)."""
        return cast(RecordTags, {f: getattr(self, f) for f in RECORD_TAGS})


NO_TAGS = Tags()


@attrs.frozen(kw_only=True, slots=True)
class Usage:
    """Token counts of one provider attempt, normalized across providers.

    ``input_tokens`` is *all* prompt tokens, including the cached-read and cache-write ones
    (OpenAI's convention); Anthropic's separate counts are added in by its adapter. The
    uncached remainder is :attr:`uncached_input_tokens`.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cached_read_tokens: int = 0
    cache_write_tokens: int = 0
    estimated: bool = False  # True when counted by costkit, not reported by the provider

    def __attrs_post_init__(self) -> None:  # one check for the four counts (built once per attempt)
        if min(self.input_tokens, self.output_tokens, self.cached_read_tokens, self.cache_write_tokens) < 0:
            name = next(n for n in _COUNTS if getattr(self, n) < 0)
            raise ValueError(f"Usage.{name} must be >= 0, got {getattr(self, name)}")

    @property
    def uncached_input_tokens(self) -> int:
        return max(0, self.input_tokens - self.cached_read_tokens - self.cache_write_tokens)

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


_COUNTS = ("input_tokens", "output_tokens", "cached_read_tokens", "cache_write_tokens")
ZERO_USAGE = Usage()


def new_request_id() -> str:
    """128 random bits as hex (what uuid4().hex carries, without building a UUID object)."""
    return os.urandom(16).hex()


@attrs.frozen(kw_only=True, slots=True)
class Call:
    """One logical completion request, provider-neutral.

    ``params`` holds every SDK keyword except the model, the messages and costkit's own, passed
    through untouched. ``max_output_tokens`` is read from whichever name the API uses
    (max_tokens, max_completion_tokens, max_output_tokens) and written back under that name.
    ``notes`` carries what layers did, for the user to read in the record (``routed_from``,
    ``tokens_removed``, ``clamped`` ...); the recorder turns some into per-layer savings.
    ``provider`` is who serves the model (``anthropic`` for a Claude model called through
    litellm); ``client`` is the SDK that made the call (``openai``, ``anthropic``, ``litellm``).
    ``scope`` is the request's shared plumbing (:class:`~costkit._scope.RequestScope`: its records
    so far, the original messages); it is not part of the call's value. ``pinned`` says a layer
    chose the model itself (a gate's judge): the router leaves it alone.
    """

    provider: str
    api: str
    requested_model: str
    model: str
    messages: tuple[Mapping[str, Any], ...]
    params: Mapping[str, Any] = _EMPTY
    max_output_tokens: int | None = None
    stream: bool = False
    tags: Tags = NO_TAGS
    request_id: str = attrs.field(factory=new_request_id)
    attempt: int = 1
    kind: CallKind = "call"
    notes: Mapping[str, Any] = _EMPTY
    pinned: bool = False
    scope: RequestScope | None = attrs.field(default=None, eq=False, repr=False)
    client: str = attrs.field()

    @client.default
    def _client_default(self) -> str:
        return self.provider

    def with_model(self, model: str) -> Call:
        return attrs.evolve(self, model=model)

    def with_notes(self, **notes: Any) -> Call:
        return attrs.evolve(self, notes={**self.notes, **notes})

    def evolve(self, **changes: Any) -> Call:
        return attrs.evolve(self, **changes)

    @property
    def choices(self) -> int:
        """How many answers the request asks for (``n``): each is billed its own output tokens."""
        n = self.params.get("n")
        return n if isinstance(n, int) and not isinstance(n, bool) and n > 1 else 1

    @property
    def system_text(self) -> str:
        """The system prompt(s) as plain text (used for cache partitions and token estimates)."""
        return "\n".join(
            content_text(m.get("content")) for m in self.messages if m.get("role") in ("system", "developer")
        )

    @property
    def last_user_text(self) -> str:
        for m in reversed(self.messages):
            if m.get("role") == "user":
                return content_text(m.get("content"))
        return ""


def content_text(content: Any) -> str:
    """Plain text of a message's content: a str, or a list of parts (text parts joined)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list | tuple):
        out = []
        for part in content:
            if isinstance(part, str):
                out.append(part)
            elif isinstance(part, Mapping):
                text = part.get("text")
                if isinstance(text, str):
                    out.append(text)
                elif part.get("type") in ("tool_result",):
                    out.append(content_text(part.get("content")))
        return "\n".join(out)
    return str(content)


SOURCE_PROVIDER: Source = "provider"
SOURCE_EXACT_CACHE: Source = "exact"
SOURCE_SEMANTIC_CACHE: Source = "semantic"
SOURCE_DEDUP: Source = "dedup"


@attrs.frozen(kw_only=True, slots=True)
class Result:
    """What came back, provider-neutral, with the SDK's own object in ``raw``.

    For a streamed call ``stream`` is the live :class:`~costkit._stream.ResultStream`; text,
    usage and finish reason are known once it is exhausted (use :meth:`when_complete`).
    ``source`` says who answered: the provider, a cache (``exact``/``semantic``) or ``dedup``.
    ``cost_usd`` is what this answer cost when it was generated (a cache replays it as saving).
    ``error`` is the exception that ended a stream early (the caller saw it raised).
    """

    text: str | None = None
    tool_calls: tuple[Mapping[str, Any], ...] = ()
    finish_reason: str | None = None
    usage: Usage = ZERO_USAGE
    model: str | None = None
    raw: Any = None
    stream: ResultStreamLike | None = None
    source: Source = SOURCE_PROVIDER
    cost_usd: float | None = None
    notes: Mapping[str, Any] = _EMPTY
    error: BaseException | None = attrs.field(default=None, eq=False)

    def when_complete(self, callback: Callable[[Result], None]) -> None:
        """Run ``callback`` with the final result: now, or when the stream has been consumed."""
        if self.stream is None:
            callback(self)
        else:
            self.stream.on_complete(callback)

    def with_notes(self, **notes: Any) -> Result:
        return attrs.evolve(self, notes={**self.notes, **notes})

    def evolve(self, **changes: Any) -> Result:
        return attrs.evolve(self, **changes)


__all__ = [
    "CALL_KINDS",
    "NO_TAGS",
    "RECORD_TAGS",
    "TAG_FIELDS",
    "ZERO_USAGE",
    "Call",
    "CallKind",
    "RecordTags",
    "Result",
    "Source",
    "Tags",
    "Usage",
    "content_text",
    "new_request_id",
]
