"""What every provider adapter does, without I/O: SDK kwargs <-> Call, SDK objects <-> Result.

The wrapper (``costkit/_wrap.py``) does the I/O; an adapter only translates, so the sync and
async paths share all of it. An adapter is stateless and built once per wrapped method.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from .._call import Call, Result, Tags, Usage
from .._scope import RequestScope
from .._stream import Accumulator
from ..errors import ConfigError

COSTKIT_KWARG = "costkit"


class Adapter(Protocol):
    client: str  # the SDK: openai, anthropic, litellm
    provider: str  # who serves the model (litellm: decided per call from the model)
    api: str

    def to_call(self, kwargs: dict[str, Any], tags: Tags) -> Call:
        """SDK keyword arguments (costkit's own already removed) -> Call."""
        ...

    def to_kwargs(self, call: Call) -> dict[str, Any]:
        """Call -> SDK keyword arguments for the real method."""
        ...

    def to_result(self, call: Call, raw: Any) -> Result:
        """A non-stream SDK response -> Result (raw kept)."""
        ...

    def accumulator(self, call: Call) -> Accumulator:
        """Folds this API's stream chunks into a Result, hiding chunks costkit asked for itself."""
        ...

    def replay(self, call: Call, result: Result) -> Iterable[Any]:
        """The SDK chunks that stream a finished result (a cache hit replayed as a stream)."""
        ...


def pop_costkit_tags(kwargs: dict[str, Any]) -> Tags | None:
    """Strip the per-call ``costkit={...}`` keyword so the SDK never sees it."""
    given = kwargs.pop(COSTKIT_KWARG, None)
    if given is None:
        return None
    if isinstance(given, Tags):
        return given
    if not isinstance(given, Mapping):
        raise ConfigError(COSTKIT_KWARG, f"must be a dict of tags, got {type(given).__name__}")
    return Tags.from_mapping(given, where=COSTKIT_KWARG)


class NotACall(Exception):
    """The arguments are not a call costkit can read (missing model, positional arguments...):
    the wrapper hands them to the SDK untouched, so the caller gets the SDK's own error."""


def require(kwargs: Mapping[str, Any], name: str, api: str) -> Any:
    if name not in kwargs:
        raise NotACall(f"{api}() missing required keyword argument: {name!r}")
    return kwargs[name]


def as_message(m: Any) -> Mapping[str, Any]:
    """Messages may be dicts or SDK objects; the pipeline sees mappings."""
    if isinstance(m, Mapping):
        return m
    dump = getattr(m, "model_dump", None)
    if dump is not None:
        return dump(exclude_none=True)
    raise TypeError(f"a message must be a dict, got {type(m).__name__}")


def max_tokens_of(kwargs: Mapping[str, Any], names: tuple[str, ...]) -> tuple[str | None, int | None]:
    """Which max-tokens keyword the caller used, and its value (validated)."""
    for name in names:
        value = kwargs.get(name)
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an int, got {type(value).__name__}")
            return name, value
    return None, None


def build_call(
    adapter: Adapter,
    kwargs: Mapping[str, Any],
    tags: Tags,
    messages: Iterable[Mapping[str, Any]],
    *,
    max_names: tuple[str, ...],
    consumed: tuple[str, ...],
    keep_original: bool,
) -> Call:
    """The Call every adapter builds: ``consumed`` keywords are not kept in ``params``;
    ``keep_original`` remembers the messages so an unchanged call is sent back exactly as given."""
    model = require(kwargs, "model", "create")
    msgs = tuple(messages)
    name, max_out = max_tokens_of(kwargs, max_names)
    scope = RequestScope(original_messages=msgs if keep_original else None, output_cap_name=name)
    return Call(
        client=adapter.client,
        provider=adapter.provider,
        api=adapter.api,
        requested_model=model,
        model=model,
        messages=msgs,
        params={k: v for k, v in kwargs.items() if k not in consumed},
        max_output_tokens=max_out,
        stream=bool(kwargs.get("stream")),
        tags=tags,
        scope=scope,
    )


class PassThrough:
    """Accumulator for replayed chunks: the result is already known."""

    def __init__(self, result: Result) -> None:
        self._result = result

    def add(self, chunk: Any) -> bool:
        return True

    def result(self) -> Result:
        return self._result


def estimate_usage(call: Call, output_text: str) -> Usage:
    """Usage counted by costkit when the provider did not report it (a stream cut short)."""
    from ..tokens import count_messages, count_text

    return Usage(
        input_tokens=count_messages(list(call.messages), call.model),
        output_tokens=count_text(output_text, call.model) if output_text else 0,
        estimated=True,
    )


__all__ = [
    "COSTKIT_KWARG",
    "Adapter",
    "NotACall",
    "PassThrough",
    "as_message",
    "build_call",
    "estimate_usage",
    "max_tokens_of",
    "pop_costkit_tags",
    "require",
]
