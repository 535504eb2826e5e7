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


EXTRA_BODY = "extra_body"
#: every keyword that caps a request's output, whichever API it belongs to (all are read and clamped:
#: a cap the API ignores costs nothing to clamp, a cap it honours must never be missed)
OUTPUT_CAP_NAMES = ("max_tokens", "max_completion_tokens", "max_output_tokens")


def is_not_given(value: Any) -> bool:
    """openai / anthropic ``NOT_GIVEN`` and ``omit``: the SDKs' "this keyword was not passed"."""
    return type(value).__name__ in ("NotGiven", "Omit", "_NotGiven", "_Omit")


def as_sent(kwargs: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, bool]]:
    """The request as the SDK will send it, and which keywords came from ``extra_body``.

    The SDKs drop "not given" values and merge ``extra_body`` into the JSON body over the keywords
    (shallowly), so ``extra_body={"max_tokens": 4000}`` is the cap the provider sees. Every layer must
    read (and clamp, and reserve for) that request, so ``extra_body``'s keys are lifted into the
    keywords here; :func:`restore_sent` puts them back where they came from. The flag says whether
    the keyword was also given directly (then it stays a keyword too).
    """
    out = {k: v for k, v in kwargs.items() if not is_not_given(v)}
    extra = out.get(EXTRA_BODY)
    if not isinstance(extra, Mapping) or not extra:
        return out, {}
    del out[EXTRA_BODY]
    lifted: dict[str, bool] = {}
    for key, value in extra.items():
        if is_not_given(value):
            continue
        lifted[key] = key in out
        out[key] = value
    return out, lifted


def restore_sent(kwargs: dict[str, Any], lifted: Mapping[str, bool]) -> dict[str, Any]:
    """Put lifted keywords back into ``extra_body`` with the values the layers decided (an SDK
    version may not know a keyword the caller could only pass through ``extra_body``)."""
    if not lifted:
        return kwargs
    extra: dict[str, Any] = {}
    for key, also_keyword in lifted.items():
        if key in kwargs:
            extra[key] = kwargs[key] if also_keyword else kwargs.pop(key)
    kwargs[EXTRA_BODY] = extra
    return kwargs


def output_caps(kwargs: Mapping[str, Any]) -> tuple[tuple[str, ...], int | None]:
    """The output-cap keywords the request carries, and the largest cap (the worst case)."""
    names = []
    largest: int | None = None
    for name in OUTPUT_CAP_NAMES:
        value = kwargs.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an int, got {type(value).__name__}")
        names.append(name)
        largest = value if largest is None else max(largest, value)
    return tuple(names), largest


def write_output_cap(kwargs: dict[str, Any], call: Call, default_name: str) -> None:
    """Send ``call.max_output_tokens`` under every cap keyword the request carried (or ``default_name``)."""
    if call.max_output_tokens is None:
        return
    names = call.scope.output_cap_names if call.scope is not None else ()
    for name in names or (default_name,):
        kwargs[name] = call.max_output_tokens


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


def build_call(
    adapter: Adapter,
    kwargs: Mapping[str, Any],
    tags: Tags,
    messages: Iterable[Mapping[str, Any]],
    *,
    consumed: tuple[str, ...],
    keep_original: bool,
) -> Call:
    """The Call every adapter builds (from :func:`as_sent`'s keywords): ``consumed`` keywords are not
    kept in ``params``; ``max_output_tokens`` is the largest output cap the request carries (under any
    name; :func:`write_output_cap` sends the decided cap under each); ``keep_original`` remembers the
    messages so an unchanged call is sent back exactly as given."""
    model = require(kwargs, "model", "create")
    msgs = tuple(messages)
    names, max_out = output_caps(kwargs)
    scope = RequestScope(original_messages=msgs if keep_original else None, output_cap_names=names)
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
    "OUTPUT_CAP_NAMES",
    "Adapter",
    "NotACall",
    "PassThrough",
    "as_message",
    "as_sent",
    "build_call",
    "estimate_usage",
    "is_not_given",
    "output_caps",
    "pop_costkit_tags",
    "require",
    "restore_sent",
    "write_output_cap",
]
