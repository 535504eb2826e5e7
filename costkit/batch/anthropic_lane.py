"""Anthropic's Message Batches: ``messages.batches.create(requests=[{"custom_id", "params"}])``.

A batch is ``in_progress``, then ``canceling`` if cancelled, then ``ended``; its results (a JSONL
stream, in no particular order) say per request ``succeeded`` (a Message), ``errored`` (an error
response), ``canceled`` or ``expired``.

Message batches carry no metadata, so a restarted process recognises a batch it created but
never heard back about by its shape and its custom ids: a batch created since the chunk's intent,
with as many requests, not owned by another chunk of this state file, whose results (once it has
ended) carry this chunk's custom ids. While such a candidate is still running the answer is
"unknown" and the chunk waits: submitting again could run every item twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from .lane import ChunkRef, Found, ItemResult, Lookup, ProviderBatch, Requests
from .methods import BatchMethod
from .split import ANTHROPIC_LIMITS

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
#: Anthropic's error types -> the HTTP status the same error has on the interactive API
ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


class AnthropicLane:
    provider = "anthropic"
    limits = ANTHROPIC_LIMITS

    def size(self, custom_id: str, method: BatchMethod, body: Mapping[str, Any]) -> int:
        return len(_dumps({"custom_id": custom_id, "params": body}).encode()) + 1

    def submit(self, client: Any, method: BatchMethod, requests: Requests, chunk: ChunkRef) -> ProviderBatch:
        batch = client.with_options(max_retries=0).messages.batches.create(
            requests=[{"custom_id": cid, "params": dict(body)} for cid, body in requests]
        )
        return _seen(batch)

    def retrieve(self, client: Any, batch_id: str) -> ProviderBatch:
        return _seen(client.messages.batches.retrieve(batch_id))

    def results(self, client: Any, batch: ProviderBatch) -> Iterator[ItemResult]:
        for line in client.messages.batches.results(batch.id):
            yield parse_result(line)

    def find(self, client: Any, lookup: Lookup) -> Found:
        running = False
        for batch in client.messages.batches.list(limit=100):  # newest first, the SDK pages on
            if _timestamp(batch.created_at) < lookup.since:
                break
            counts = batch.request_counts
            total = counts.processing + counts.succeeded + counts.errored + counts.canceled + counts.expired
            if batch.id in lookup.claimed or total != len(lookup.custom_ids):
                continue
            if batch.processing_status != "ended":
                running = True
                continue
            first = next(iter(client.messages.batches.results(batch.id)), None)
            if first is not None and first.custom_id in lookup.custom_ids:
                return Found("yes", batch.id)
        return Found("unknown") if running else Found("no")

    def cancel(self, client: Any, batch_id: str) -> None:
        client.messages.batches.cancel(batch_id)


def _timestamp(value: Any) -> float:
    return value.timestamp() if isinstance(value, datetime) else float(value)


def _seen(batch: Any) -> ProviderBatch:
    status = str(batch.processing_status)
    return ProviderBatch(id=batch.id, status=status, ended=status == "ended")


def parse_result(line: Any) -> ItemResult:
    """One line of the results stream (the SDK's ``MessageBatchIndividualResponse``)."""
    result = line.result
    kind = result.type
    if kind == "succeeded":
        return ItemResult(custom_id=line.custom_id, status="succeeded", body=result.message.model_dump(mode="json"))
    if kind == "errored":
        response = result.error
        detail = getattr(response, "error", None)
        error_type = getattr(detail, "type", None)
        return ItemResult(
            custom_id=line.custom_id,
            status="failed",
            error={
                "status_code": ERROR_STATUS.get(str(error_type), 500),
                "type": error_type,
                "code": None,
                "message": getattr(detail, "message", None) or str(error_type),
                "body": response.model_dump(mode="json", exclude={"request_id"}),
                "request_id": getattr(response, "request_id", None),
            },
        )
    status = "cancelled" if kind == "canceled" else "expired"
    return ItemResult(
        custom_id=line.custom_id,
        status=status,  # type: ignore[arg-type]
        error={"status_code": None, "type": kind, "code": kind, "message": f"the request was {kind}"},
    )


__all__ = ["ERROR_STATUS", "AnthropicLane", "parse_result"]
