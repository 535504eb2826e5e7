"""What the job asks of a provider's batch API, and the values it gets back.

A lane (:mod:`costkit.batch.openai_lane`, :mod:`costkit.batch.anthropic_lane`) submits one chunk
as one provider batch, reads a batch's status and its per-request results, and answers the
question a restarted process must ask before submitting a chunk again: *does this chunk's batch
already exist?* (:class:`Found`). Lanes use the SDK client the application wrapped (unwrapped:
the lane records the items itself) and create batches with the SDK's retries off, since a
retried create whose first answer was lost would submit every item twice.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal, Protocol

import attrs

from .methods import BatchMethod
from .split import Limits

ItemStatus = Literal["succeeded", "failed", "expired", "cancelled"]


@attrs.frozen(kw_only=True)
class ProviderBatch:
    """A provider batch as last seen: its id, the provider's status word, and whether it ended."""

    id: str
    status: str
    ended: bool
    input_file: str | None = None
    errors: tuple[str, ...] = ()  # why a batch failed as a whole (OpenAI's validation errors)


@attrs.frozen(kw_only=True)
class ItemResult:
    """One request's line in a batch's results: the answer's JSON, or the error."""

    custom_id: str
    status: ItemStatus
    body: Mapping[str, Any] | None = None
    error: Mapping[str, Any] | None = None  # status_code, type, code, message, body


@attrs.frozen
class Found:
    """Whether a chunk's batch exists: ``"yes"`` (with its id), ``"no"``, or ``"unknown"`` (ask later)."""

    answer: Literal["yes", "no", "unknown"]
    batch_id: str | None = None


#: a chunk's requests as submitted: (custom id, request body) each
Requests = Sequence[tuple[str, Mapping[str, Any]]]


@attrs.frozen
class ChunkRef:
    """Which chunk of which job a provider batch is for (OpenAI's batch metadata and file name carry it)."""

    job_id: str
    seq: int


@attrs.frozen(kw_only=True)
class Lookup:
    """What a restarted process knows of a chunk whose create may have gone unanswered: enough for
    :meth:`Lane.find` to recognise the batch it made."""

    chunk: ChunkRef
    custom_ids: frozenset[str]
    since: float  # epoch seconds: a batch created before this is not the chunk's
    claimed: frozenset[str]  # provider batch ids other chunks of the state file own


class Lane(Protocol):
    provider: str
    limits: Limits

    def size(self, custom_id: str, method: BatchMethod, body: Mapping[str, Any]) -> int:
        """Bytes this request adds to a batch (what the provider's size limit counts)."""
        ...

    def submit(self, client: Any, method: BatchMethod, requests: Requests, chunk: ChunkRef) -> ProviderBatch: ...

    def retrieve(self, client: Any, batch_id: str) -> ProviderBatch: ...

    def results(self, client: Any, batch: ProviderBatch) -> Iterator[ItemResult]: ...

    def find(self, client: Any, lookup: Lookup) -> Found: ...

    def cancel(self, client: Any, batch_id: str) -> None: ...


def lane_for(provider: str) -> Lane:
    if provider == "anthropic":
        from .anthropic_lane import AnthropicLane

        return AnthropicLane()
    from .openai_lane import OpenAILane

    return OpenAILane()


#: seconds before a chunk's intent that a batch created for it may carry (clock skew)
CLOCK_SKEW_S = 600.0

__all__ = [
    "CLOCK_SKEW_S",
    "ChunkRef",
    "Found",
    "ItemResult",
    "ItemStatus",
    "Lane",
    "Lookup",
    "ProviderBatch",
    "Requests",
    "lane_for",
]
