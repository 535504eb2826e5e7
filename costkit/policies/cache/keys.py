"""Cache keys: a stable hex digest of canonical JSON of everything that changes the answer.

The key is built from what the application *asked* (``call.requested_model``, the uncompressed
``call.messages``, ``call.params``, ``call.max_output_tokens``), never from what a later layer
decided (the routed model, compressed context), so a hit does not depend on the router.

What is in it: provider and API (they decide the SDK type of the answer), requested model,
messages, every output-changing parameter, the output-token limit, the tenant, the user (when
``scope_user``), ``prompt_version``, ``corpus_version`` and the namespace. What is left out on
purpose: transport-only parameters (``stream``, ``timeout``, ``extra_headers`` ...), the
``feature``/``route`` tags (they choose a TTL, not the answer) and the idempotency key.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Mapping
from typing import Any

from ..._call import Call
from ..._serialize import answered_api

KEY_VERSION = 1

# Parameters that change how the answer is delivered or billed, never what it says.
TRANSPORT_PARAMS: frozenset[str] = frozenset(
    {
        "stream",
        "stream_options",
        "timeout",
        "extra_headers",
        "extra_query",
        "request_timeout",
        "max_retries",
        "api_key",
        "api_base",
        "base_url",
        "api_version",
        "organization",
        "user",  # OpenAI's end-user id for abuse monitoring (costkit scopes users with tags.user)
        "metadata",
        "store",
        "service_tier",
        "idempotency_key",
        "prompt_cache_key",
        "safety_identifier",
        "background",
    }
)

_SPACE = re.compile(r"\s+")


def normalize_text(text: str) -> str:
    """Unicode NFC and collapsed whitespace: differences a model reads identically."""
    return _SPACE.sub(" ", unicodedata.normalize("NFC", text)).strip()


def _is_sentinel(value: Any) -> bool:
    # openai.NOT_GIVEN / anthropic.NOT_GIVEN / omit: "not passed", so not part of the question.
    return type(value).__name__ in ("NotGiven", "Omit", "_NotGiven", "_Omit")


def _canonical(value: Any, normalize: bool) -> Any:
    """A JSON-able, order-stable form of ``value``; unknown objects become their type and repr."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return normalize_text(value) if normalize else value
    if isinstance(value, Mapping):
        return {str(k): _canonical(v, normalize) for k, v in value.items() if not _is_sentinel(v)}
    if isinstance(value, list | tuple):
        return [_canonical(v, normalize) for v in value]
    if isinstance(value, set | frozenset):
        items = [_canonical(v, normalize) for v in value]
        return sorted(items, key=lambda x: json.dumps(x, sort_keys=True, default=str))
    if isinstance(value, bytes | bytearray):
        return {"$bytes": hashlib.sha256(bytes(value)).hexdigest()}
    if isinstance(value, type):
        # response_format=SomePydanticModel (client.beta...parse): the schema is the question.
        schema = getattr(value, "model_json_schema", None)
        if callable(schema):
            return {"$schema": _canonical(schema(), normalize)}
        return {"$type": f"{value.__module__}.{value.__qualname__}"}
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return _canonical(dump(mode="json"), normalize)
    # An unknown object: its repr may hold an address, which only costs misses, never a wrong hit.
    return {"$repr": f"{type(value).__module__}.{type(value).__qualname__}:{value!r}"}


def _messages(call: Call, normalize: bool) -> list[Any]:
    return [_canonical(dict(m), normalize) for m in call.messages]


def output_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters that change the answer (``params`` minus transport-only ones and sentinels)."""
    return {k: v for k, v in params.items() if k not in TRANSPORT_PARAMS and not _is_sentinel(v)}


def key_document(
    call: Call, *, scope_user: bool = False, normalize: bool = False, namespace: str | None = None
) -> dict[str, Any]:
    """The canonical document hashed by :func:`exact_key` (exposed so tests and users can see it)."""
    tags = call.tags
    beta = {"betas": call.scope.betas} if call.scope is not None and call.scope.beta else {}
    return {
        **beta,
        "v": KEY_VERSION,
        "provider": call.provider,
        "api": answered_api(call),
        "model": call.requested_model,
        "messages": _messages(call, normalize),
        "params": _canonical(output_params(call.params), False),
        "max_output_tokens": call.max_output_tokens,
        "tenant": tags.tenant,
        "user": tags.user if scope_user else None,
        "prompt_version": tags.prompt_version,
        "corpus_version": tags.corpus_version,
        "namespace": namespace,
        "tag_namespace": tags.namespace,
        "normalized": normalize,
    }


def canonical_json(doc: Any) -> str:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=True)


def exact_key(call: Call, *, scope_user: bool = False, normalize: bool = False, namespace: str | None = None) -> str:
    """A stable SHA-256 hex digest of the call's canonical JSON.

    Equal for two calls exactly when they ask the same question of the same model with the same
    output-changing parameters in the same scope (tenant, user if ``scope_user``, prompt and corpus
    versions, namespace). ``normalize`` folds Unicode (NFC) and whitespace runs in message text.
    """
    doc = key_document(call, scope_user=scope_user, normalize=normalize, namespace=namespace)
    return hashlib.sha256(canonical_json(doc).encode("utf-8")).hexdigest()


__all__ = [
    "KEY_VERSION",
    "TRANSPORT_PARAMS",
    "canonical_json",
    "exact_key",
    "key_document",
    "normalize_text",
    "output_params",
]
