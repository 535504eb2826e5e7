"""Results to JSON and back, for caches and cross-process dedup: never pickle, never a class path.

A cache directory, a Redis key or a Postgres row is not a trusted code path: anyone who can write
to it may plant an entry. So a stored answer is plain JSON, and reading one back can only ever
build the one SDK response class that the *call being answered* returns: the class is chosen
from an allow-list keyed by the call's client and API (``("openai", "chat.completions")`` ->
``ChatCompletion`` ...), never from the entry. The type name the entry carries must match it,
and the data goes through the class's own validation. Anything else, and any exception raised
while rebuilding, is a :class:`SerializationError`: the caches count it, drop the entry and
treat the lookup as a miss.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ._call import Call, Result, Usage

FORMAT_VERSION = 1


class SerializationError(ValueError):
    """A stored answer could not be read back (corrupt, foreign, planted, or from another version)."""


def _openai_chat() -> type[Any]:
    from openai.types.chat import ChatCompletion

    return ChatCompletion


def _openai_responses() -> type[Any]:
    from openai.types.responses import Response

    return Response


def _openai_embeddings() -> type[Any]:
    from openai.types import CreateEmbeddingResponse

    return CreateEmbeddingResponse


def _anthropic_messages() -> type[Any]:
    from anthropic.types import Message

    return Message


def _anthropic_beta_messages() -> type[Any]:
    from anthropic.types.beta import BetaMessage

    return BetaMessage


def _litellm_completion() -> type[Any]:
    from litellm.types.utils import ModelResponse

    return ModelResponse


def _litellm_embedding() -> type[Any]:
    from litellm.types.utils import EmbeddingResponse

    return EmbeddingResponse


#: (client, api) -> the one response class a stored answer for such a call may become
RESPONSE_CLASSES: Mapping[tuple[str, str], Callable[[], type[Any]]] = {
    ("openai", "chat.completions"): _openai_chat,
    ("openai", "chat.completions.parse"): _openai_chat,
    ("openai", "responses"): _openai_responses,
    ("openai", "responses.parse"): _openai_responses,
    ("openai", "embeddings"): _openai_embeddings,
    ("anthropic", "messages"): _anthropic_messages,
    ("anthropic", "beta.messages"): _anthropic_beta_messages,
    ("litellm", "completion"): _litellm_completion,
    ("litellm", "embedding"): _litellm_embedding,
}
_PYDANTIC_CLIENTS = ("openai", "anthropic")


def answered_api(call: Call) -> str:
    """The API whose answer type ``call`` returns: ``beta.messages`` for anthropic's beta endpoint,
    which shares the plain API's path and body but answers with its own classes."""
    return f"beta.{call.api}" if call.scope is not None and call.scope.beta else call.api


def type_name(cls: type[Any]) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def response_class(client: str, api: str) -> type[Any]:
    """The response class a stored answer of a ``client``/``api`` call may be rebuilt as."""
    factory = RESPONSE_CLASSES.get((client, api))
    if factory is None:
        raise SerializationError(f"no stored answers for {client} {api}")
    return factory()


def _stored_type(cls: type[Any]) -> str:
    """The allow-listed class ``cls`` is (or derives from): a ``ParsedChatCompletion`` is stored as the
    ``ChatCompletion`` it is, and a hit is parsed again by the SDK's own parser."""
    package = cls.__module__.split(".")[0]
    allowed = {type_name(factory()) for (client, _), factory in RESPONSE_CLASSES.items() if client == package}
    for base in cls.__mro__:
        if type_name(base) in allowed:
            return type_name(base)
    raise SerializationError(f"cannot store {type_name(cls)}: not a response class costkit reads back")


def raw_to_json(raw: Any) -> dict[str, Any] | None:
    if raw is None:
        return None
    dump = getattr(raw, "model_dump", None)
    if dump is None:
        raise SerializationError(f"cannot serialize {type(raw).__name__}: not a pydantic SDK object")
    return {"type": _stored_type(type(raw)), "data": dump(mode="json")}


def raw_from_json(doc: Mapping[str, Any] | None, *, client: str, api: str) -> Any:
    """Rebuild the SDK object of a ``client``/``api`` call from its stored JSON, or refuse."""
    if doc is None:
        return None
    if not isinstance(doc, Mapping):
        raise SerializationError("stored answer is not an object")
    cls = response_class(client, api)
    stored = doc.get("type")
    if stored != type_name(cls):
        raise SerializationError(
            f"refusing stored object of type {stored!r}: a {client} {api} call is answered by {type_name(cls)}"
        )
    data = doc.get("data")
    if not isinstance(data, Mapping):
        raise SerializationError(f"stored data of {stored!r} is not an object")
    try:
        if client in _PYDANTIC_CLIENTS:
            return cls.model_validate(data)
        return cls(**data)  # litellm's response classes take keyword arguments
    except Exception as exc:
        raise SerializationError(f"stored {stored!r} does not validate: {type(exc).__name__}") from None


def result_to_json(result: Result) -> dict[str, Any]:
    """A finished (non-stream) result as JSON; raises SerializationError if it cannot be stored."""
    if result.stream is not None:
        raise SerializationError("a live stream cannot be stored; store its final result")
    u = result.usage
    return {
        "v": FORMAT_VERSION,
        "text": result.text,
        "tool_calls": [dict(t) for t in result.tool_calls],
        "finish_reason": result.finish_reason,
        "usage": [u.input_tokens, u.output_tokens, u.cached_read_tokens, u.cache_write_tokens, u.estimated],
        "model": result.model,
        "cost_usd": result.cost_usd,
        "raw": raw_to_json(result.raw),
    }


def _opt_str(value: Any, what: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise SerializationError(f"stored {what} is not a string")
    return value


def _required_raw(doc: Any, call: Call) -> Any:
    raw = raw_from_json(doc, client=call.client, api=answered_api(call))
    if raw is None:  # the wrapper hands ``raw`` to the caller: an entry without one answers nothing
        raise SerializationError("stored answer has no response object")
    return raw


def result_from_json(doc: Mapping[str, Any], *, source: Any, call: Call) -> Result:
    """The stored answer for ``call``; any problem at all is a :class:`SerializationError`."""
    try:
        if not isinstance(doc, Mapping):
            raise SerializationError("stored answer is not an object")
        if doc.get("v") != FORMAT_VERSION:
            raise SerializationError(f"stored format {doc.get('v')!r} is not {FORMAT_VERSION}")
        inp, out, cr, cw, est = doc["usage"]
        cost = doc.get("cost_usd")
        if cost is not None and (isinstance(cost, bool) or not isinstance(cost, int | float)):
            raise SerializationError("stored cost is not a number")
        tool_calls = doc.get("tool_calls") or ()
        if not isinstance(tool_calls, list | tuple) or not all(isinstance(t, Mapping) for t in tool_calls):
            raise SerializationError("stored tool calls are not objects")
        return Result(
            text=_opt_str(doc["text"], "text"),
            tool_calls=tuple(tool_calls),
            finish_reason=_opt_str(doc.get("finish_reason"), "finish reason"),
            usage=Usage(
                input_tokens=int(inp),
                output_tokens=int(out),
                cached_read_tokens=int(cr),
                cache_write_tokens=int(cw),
                estimated=bool(est),
            ),
            model=_opt_str(doc.get("model"), "model"),
            raw=_required_raw(doc.get("raw"), call),
            source=source,
            cost_usd=None if cost is None else float(cost),
        )
    except SerializationError:
        raise
    except Exception as exc:  # whatever a planted or damaged entry makes us trip on is a miss, not a crash
        raise SerializationError(f"corrupt stored result: {type(exc).__name__}: {exc}") from None


__all__ = [
    "RESPONSE_CLASSES",
    "SerializationError",
    "answered_api",
    "raw_from_json",
    "raw_to_json",
    "response_class",
    "result_from_json",
    "result_to_json",
]
