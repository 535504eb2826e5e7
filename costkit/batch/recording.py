"""One cost record per batch item, priced at the cost map's batch rates.

A record has ``kind="batch"``, the item's usage, ``cost_usd`` at batch rates
(:meth:`costkit.pricing.PriceBook.cost` with ``batch=True``: the map's ``*_batches`` keys, half
the standard rates where it has none) and the saving against interactive prices as the layer
``"batch"`` (what the same tokens cost interactively minus what they cost). ``notes`` name the
job (``batch_job``), the provider batch (``provider_batch``), the item's index (``batch_item``)
and the interactive cost (``interactive_cost_usd``). An item that failed, expired or was
cancelled is recorded with ``success=False`` and a cost of 0 (providers bill only what ran).

The request id of an item is derived from the job and the item, and ``attempt`` counts its
submissions, so a record written twice (a crash between emitting and noting it) is recognisable.
"""

from __future__ import annotations

import hashlib
from typing import Any

import attrs

from .._call import Call, Result
from .._recorder import Recorder
from ..records import CostRecord


def item_request_id(job_id: str, idx: int) -> str:
    return hashlib.blake2b(f"{job_id}:{idx}".encode(), digest_size=16).hexdigest()


@attrs.frozen
class Priced:
    """What an item's usage costs at batch and at interactive rates (None: the model has no price)."""

    batch_usd: float | None
    interactive_usd: float | None

    @property
    def saved_usd(self) -> float | None:
        if self.batch_usd is None or self.interactive_usd is None:
            return None
        return self.interactive_usd - self.batch_usd


def price(pricing: Any, call: Call, result: Result) -> Priced:
    usage = result.usage
    batch = pricing.cost(call.model, usage, provider=call.provider, batch=True)
    if batch is None:
        pricing.warn_unknown(call.model)
        return Priced(None, None)
    return Priced(float(batch), pricing.cost(call.model, usage, provider=call.provider))


def _savings(recorder: Recorder, call: Call, result: Result, priced: Priced) -> dict[str, float]:
    """The batch discount, and what the compressor and the router saved, at batch prices."""
    savings = recorder.layer_savings(call, result.usage, priced.batch_usd, batch=True)
    if priced.saved_usd is not None:
        savings["batch"] = priced.saved_usd
    return savings


def _with_job(record: CostRecord, job_id: str, batch_id: str | None, idx: int, extra: dict[str, Any]) -> CostRecord:
    notes = {**record.notes, "batch_job": job_id, "provider_batch": batch_id, "batch_item": idx, **extra}
    return attrs.evolve(record, notes=notes)


def answered(
    recorder: Recorder,
    call: Call,
    result: Result,
    priced: Priced,
    *,
    job_id: str,
    batch_id: str | None,
    idx: int,
    latency_s: float,
) -> CostRecord:
    """The record of an item the provider answered."""
    record = recorder.build(
        call,
        result,
        error=None,
        latency_s=latency_s,
        kind="batch",
        cost=priced.batch_usd if priced.batch_usd is not None else 0.0,
        savings=_savings(recorder, call, result, priced),
    )
    if priced.batch_usd is None:
        record = attrs.evolve(record, cost_usd=None, priced=False)
    return _with_job(record, job_id, batch_id, idx, {"interactive_cost_usd": priced.interactive_usd})


def unanswered(
    recorder: Recorder,
    call: Call,
    error: BaseException,
    *,
    job_id: str,
    batch_id: str | None,
    idx: int,
    latency_s: float,
) -> CostRecord:
    """The record of an item that failed, expired or was cancelled: nothing billed."""
    record = recorder.build(call, None, error=error, latency_s=latency_s, kind="batch", cost=0.0, savings={})
    return _with_job(record, job_id, batch_id, idx, {})


__all__ = ["Priced", "answered", "item_request_id", "price", "unanswered"]
