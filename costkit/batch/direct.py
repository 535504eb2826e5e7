"""The providers' batch endpoints used directly through a wrapped client: recorded, not hidden.

``client.batches.create`` / ``client.files.create(purpose="batch")`` (OpenAI) and
``client.messages.batches.create`` (Anthropic) send work that bypasses costkit's policies and
whose answers costkit never sees. They still work unchanged; each use warns once, naming the
method and pointing at :func:`costkit.batch.run`, and a batch submission leaves one record
(``kind="batch"``, unpriced: ``cost_usd=None``, ``priced=False``) whose notes say what was
submitted: the method, the provider's batch id, how many requests and, when known, for which
models.
"""

from __future__ import annotations

import inspect
import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from .._call import new_request_id
from .._context import current_tags
from .._warn import warn_once
from ..records import CostRecord

_ADVICE = "costkit.batch.run(client, ...) prices, records and resumes batch work"


def overrides(target: Any, kind: str, recorder: Any) -> dict[str, Callable[..., Any]]:
    """The wrapped client's replacements for the provider's batch-submitting methods."""
    out: dict[str, Callable[..., Any]] = {}
    if kind == "openai":
        uploads: dict[str, tuple[int, tuple[str, ...]]] = {}  # file id -> (requests, models), this client's uploads
        out["files.create"] = _watch(target.files.create, "files.create", recorder, uploads, _file_upload)
        out["batches.create"] = _watch(target.batches.create, "batches.create", recorder, uploads, _openai_batch)
    elif kind == "anthropic":
        out["messages.batches.create"] = _watch(
            target.messages.batches.create, "messages.batches.create", recorder, {}, _anthropic_batch
        )
    return out


def _watch(
    method: Callable[..., Any], name: str, recorder: Any, uploads: dict[str, tuple[int, tuple[str, ...]]], describe: Any
) -> Callable[..., Any]:
    """``method`` unchanged, plus the warning and the record (sync and async alike)."""

    def after(kwargs: Mapping[str, Any], answer: Any) -> Any:
        note = describe(kwargs, answer, uploads)
        if note is not None:
            warn_once(
                f"batch-direct:{name}",
                f"costkit: client.{name}(...) goes straight to the provider: its requests bypass costkit's "
                f"policies and are recorded unpriced; {_ADVICE}",
            )
            if note.get("record"):
                _record(recorder, name, note)
        return answer

    if inspect.iscoroutinefunction(method):

        async def acall(*args: Any, **kwargs: Any) -> Any:
            return after(kwargs, await method(*args, **kwargs))

        return acall

    def call(*args: Any, **kwargs: Any) -> Any:
        return after(kwargs, method(*args, **kwargs))

    return call


def _lines(data: Any) -> list[Mapping[str, Any]] | None:
    """The requests of an upload, when its bytes are at hand (bytes, or a (name, bytes, ...) tuple)."""
    if isinstance(data, tuple) and len(data) >= 2:
        data = data[1]
    if not isinstance(data, bytes | bytearray):
        return None
    out = []
    for raw in bytes(data).splitlines():
        try:
            doc = json.loads(raw)
        except ValueError:
            continue
        if isinstance(doc, Mapping):
            out.append(doc)
    return out


def _models(bodies: Any) -> tuple[str, ...]:
    return tuple(sorted({str(b.get("model")) for b in bodies if isinstance(b, Mapping) and b.get("model")}))


def _file_upload(kwargs: Mapping[str, Any], answer: Any, uploads: dict[str, Any]) -> dict[str, Any] | None:
    if kwargs.get("purpose") != "batch":
        return None
    lines = _lines(kwargs.get("file"))
    if lines is not None and getattr(answer, "id", None):
        uploads[str(answer.id)] = (len(lines), _models(d.get("body") for d in lines))
    return {"record": False}


def _openai_batch(kwargs: Mapping[str, Any], answer: Any, uploads: dict[str, Any]) -> dict[str, Any]:
    known = uploads.get(str(kwargs.get("input_file_id")))
    return {
        "record": True,
        "provider": "openai",
        "provider_batch": getattr(answer, "id", None),
        "endpoint": kwargs.get("endpoint"),
        "input_file_id": kwargs.get("input_file_id"),
        "requests": known[0] if known else None,
        "models": list(known[1]) if known else [],
    }


def _anthropic_batch(kwargs: Mapping[str, Any], answer: Any, uploads: dict[str, Any]) -> dict[str, Any]:
    requests = list(kwargs.get("requests") or ())
    return {
        "record": True,
        "provider": "anthropic",
        "provider_batch": getattr(answer, "id", None),
        "requests": len(requests),
        "models": list(_models(r.get("params") for r in requests if isinstance(r, Mapping))),
    }


def _record(recorder: Any, name: str, note: Mapping[str, Any]) -> None:
    models = note.get("models") or []
    model = models[0] if len(models) == 1 else "unknown"
    notes = {"direct_batch": name, **{k: v for k, v in note.items() if k not in ("record", "provider")}}
    recorder.emit(
        CostRecord(
            request_id=new_request_id(),
            attempt=1,
            kind="batch",
            timestamp=time.time(),
            provider=str(note.get("provider")),
            requested_model=model,
            model=model,
            **current_tags().for_record(),
            cost_usd=None,
            priced=False,
            notes=notes,
        )
    )


__all__ = ["overrides"]
