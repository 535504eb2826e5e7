"""Results to JSON and back, for caches and cross-process dedup: never pickle.

A cache directory or a Redis key is not a trusted code path, so stored answers are plain JSON.
The SDK object is stored as ``model_dump(mode="json")`` with its class path; only classes from
the SDK packages costkit wraps are ever re-created from it.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from ._call import Result, Usage

_ALLOWED_PREFIXES = ("openai.types.", "anthropic.types.", "litellm.types.", "litellm.")
FORMAT_VERSION = 1


class SerializationError(ValueError):
    """A stored answer could not be read back (corrupt, foreign or from another version)."""


def raw_to_json(raw: Any) -> dict[str, Any] | None:
    if raw is None:
        return None
    dump = getattr(raw, "model_dump", None)
    if dump is None:
        raise SerializationError(f"cannot serialize {type(raw).__name__}: not a pydantic SDK object")
    cls = type(raw)
    return {"type": f"{cls.__module__}.{cls.__qualname__}", "data": dump(mode="json")}


def raw_from_json(doc: Mapping[str, Any] | None) -> Any:
    if doc is None:
        return None
    path = doc.get("type")
    if not isinstance(path, str) or not path.startswith(_ALLOWED_PREFIXES):
        raise SerializationError(f"refusing to build stored object of type {path!r}")
    module_name, _, name = path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as exc:
        raise SerializationError(f"unknown stored type {path!r}: {exc}") from None
    data = doc.get("data")
    validate = getattr(cls, "model_validate", None)
    if validate is not None and module_name.startswith(("openai.", "anthropic.")):
        return validate(data)
    if not isinstance(data, Mapping):
        raise SerializationError(f"stored data of {path!r} is not an object")
    return cls(**data)  # litellm's ModelResponse takes keyword arguments


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


def result_from_json(doc: Mapping[str, Any], *, source: str) -> Result:
    try:
        if doc.get("v") != FORMAT_VERSION:
            raise SerializationError(f"stored format {doc.get('v')!r} is not {FORMAT_VERSION}")
        inp, out, cr, cw, est = doc["usage"]
        return Result(
            text=doc["text"],
            tool_calls=tuple(doc.get("tool_calls") or ()),
            finish_reason=doc.get("finish_reason"),
            usage=Usage(
                input_tokens=int(inp),
                output_tokens=int(out),
                cached_read_tokens=int(cr),
                cache_write_tokens=int(cw),
                estimated=bool(est),
            ),
            model=doc.get("model"),
            raw=raw_from_json(doc.get("raw")),
            source=source,
            cost_usd=doc.get("cost_usd"),
        )
    except SerializationError:
        raise
    except Exception as exc:
        raise SerializationError(f"corrupt stored result: {exc!r}") from None


__all__ = ["SerializationError", "raw_from_json", "raw_to_json", "result_from_json", "result_to_json"]
