"""OpenAI's Batch API: a JSONL file upload, ``/v1/batches``, and the output and error files.

Each chunk is one input file of ``{"custom_id", "method": "POST", "url": endpoint, "body"}``
lines (one model per file, as OpenAI requires), uploaded with ``purpose="batch"``, and one batch
created with ``completion_window="24h"`` and ``metadata={"costkit_job": ..., "costkit_chunk": ...}``:
the metadata is how a restarted process recognises a batch it created but never heard back about.

A batch ends ``completed``, ``failed`` (the file was invalid: nothing ran), ``expired`` (some
requests did not run within 24 hours) or ``cancelled``. Successful requests are in the output
file; requests that failed, expired (``batch_expired``) or were cancelled are in the error file.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from .lane import ChunkRef, Found, ItemResult, Lookup, ProviderBatch, Requests
from .methods import BatchMethod
from .split import OPENAI_LIMITS

ENDED = ("completed", "failed", "expired", "cancelled")
_ERROR_CODES = {"batch_expired": "expired", "batch_cancelled": "cancelled"}
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def line(custom_id: str, method: BatchMethod, body: Mapping[str, Any]) -> bytes:
    """One request of the input file, newline included."""
    return (_dumps({"custom_id": custom_id, "method": "POST", "url": method.endpoint, "body": body}) + "\n").encode()


class OpenAILane:
    provider = "openai"
    limits = OPENAI_LIMITS

    def size(self, custom_id: str, method: BatchMethod, body: Mapping[str, Any]) -> int:
        return len(line(custom_id, method, body))

    def submit(self, client: Any, method: BatchMethod, requests: Requests, chunk: ChunkRef) -> ProviderBatch:
        data = b"".join(line(cid, method, body) for cid, body in requests)
        name = f"costkit-{chunk.job_id}-{chunk.seq}.jsonl"
        upload = client.files.create(file=(name, data, "application/jsonl"), purpose="batch")
        batch = client.with_options(max_retries=0).batches.create(
            input_file_id=upload.id,
            endpoint=method.endpoint,
            completion_window="24h",
            metadata={"costkit_job": chunk.job_id, "costkit_chunk": str(chunk.seq)},
        )
        return _seen(batch, upload.id)

    def retrieve(self, client: Any, batch_id: str) -> ProviderBatch:
        return _seen(client.batches.retrieve(batch_id))

    def results(self, client: Any, batch: ProviderBatch) -> Iterator[ItemResult]:
        found = client.batches.retrieve(batch.id)
        for file_id in (found.output_file_id, found.error_file_id):
            if not file_id:
                continue
            data = client.files.content(file_id).read()
            for raw in data.splitlines():
                if raw.strip():
                    yield parse_line(json.loads(raw))

    def find(self, client: Any, lookup: Lookup) -> Found:
        chunk = lookup.chunk
        for batch in client.batches.list(limit=100):  # newest first, the SDK pages on
            if batch.created_at < lookup.since:
                break
            meta = batch.metadata or {}
            if meta.get("costkit_job") == chunk.job_id and meta.get("costkit_chunk") == str(chunk.seq):
                return Found("yes", batch.id)
        return Found("no")

    def cancel(self, client: Any, batch_id: str) -> None:
        client.batches.cancel(batch_id)


def _seen(batch: Any, input_file: str | None = None) -> ProviderBatch:
    errors = tuple(
        f"{e.code}: {e.message}" + (f" (line {e.line})" if e.line else "")
        for e in ((batch.errors.data or []) if batch.errors is not None else [])
    )
    return ProviderBatch(
        id=batch.id,
        status=batch.status,
        ended=batch.status in ENDED,
        input_file=input_file or batch.input_file_id,
        errors=errors,
    )


def parse_line(doc: Mapping[str, Any]) -> ItemResult:
    """One line of an output or error file."""
    custom_id = str(doc.get("custom_id"))
    response = doc.get("response")
    error = doc.get("error")
    if isinstance(response, Mapping):
        status = int(response.get("status_code") or 0)
        body = response.get("body")
        if status == 200 and isinstance(body, Mapping):
            return ItemResult(custom_id=custom_id, status="succeeded", body=body)
        detail = body.get("error") if isinstance(body, Mapping) else None
        detail = detail if isinstance(detail, Mapping) else {}
        return ItemResult(
            custom_id=custom_id,
            status="failed",
            error={
                "status_code": status,
                "type": detail.get("type"),
                "code": detail.get("code"),
                "message": detail.get("message") or f"status {status}",
                "body": body,
                "request_id": response.get("request_id"),
            },
        )
    detail = error if isinstance(error, Mapping) else {}
    code = str(detail.get("code") or "")
    return ItemResult(
        custom_id=custom_id,
        status=_ERROR_CODES.get(code, "failed"),  # type: ignore[arg-type]
        error={"status_code": None, "type": None, "code": code or None, "message": detail.get("message") or code},
    )


__all__ = ["ENDED", "OpenAILane", "line", "parse_line"]
