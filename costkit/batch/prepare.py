"""From the application's keyword arguments to items ready to submit, through the policies.

Each request is read by the wrapped method's own adapter (so a batch item is the same
:class:`~costkit.Call` the interactive call would be, with ``kind="batch"``), then walks the
wrapped client's chain in order (:mod:`costkit.batch.hooks`): prepared (clamped, compressed),
answered by a cache, or refused. What is left is turned back into the request body the provider
receives, exactly as the SDK would send it. Budgets then hold the whole job's worst case
(:func:`reserve_all`): all items or none.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from .._call import Call, Result, Tags
from .._warn import warn_once
from ..errors import BudgetExceeded, CostkitError
from ..providers.base import pop_costkit_tags
from .hooks import BatchBudget, BatchCache, BatchPrepare, policy_tag
from .methods import BatchMethod
from .state import CACHED, PENDING, REFUSED

#: SDK keywords that shape the HTTP request, not the body: a batch line has no headers or timeout
TRANSPORT_KWARGS = ("extra_headers", "extra_query", "timeout")


@attrs.frozen(kw_only=True)
class Prepared:
    """One item after the policies: what to send (``body``), or the cache's answer, or why not."""

    idx: int
    status: str  # pending | cached | refused
    call: Call
    body: Mapping[str, Any]
    tickets: Mapping[str, Any]
    hit: Result | None = None
    error: Mapping[str, Any] | None = None


def _is_sentinel(value: Any) -> bool:
    return type(value).__name__ in ("NotGiven", "Omit", "_NotGiven", "_Omit")


def jsonable(value: Any) -> Any:
    """An SDK argument as the JSON the SDK would send (pydantic models dumped, sentinels dropped)."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items() if not _is_sentinel(v)}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json", exclude_none=True, by_alias=True)
    raise TypeError(f"a batch request must be JSON; cannot send {type(value).__name__}")


def request_body(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The body of one request: the SDK kwargs minus transport options, ``extra_body`` merged in."""
    body: dict[str, Any] = {}
    for key, value in kwargs.items():
        if _is_sentinel(value) or key == "extra_body":
            continue
        if key in TRANSPORT_KWARGS:
            if value is not None:
                warn_once(f"batch-transport:{key}", f"costkit.batch: {key}= is ignored (a batch line has no {key})")
            continue
        body[key] = jsonable(value)
    extra = kwargs.get("extra_body")
    if isinstance(extra, Mapping):
        body.update(jsonable(extra))
    return body


def job_id_for(method: BatchMethod, requests: Sequence[Mapping[str, Any]], tags: Tags) -> str:
    """A job's id derived from what it asks: running the same job again resumes it."""
    digest = hashlib.blake2b(digest_size=12)
    digest.update(f"{method.provider}|{method.name}|{json.dumps(tags.as_dict(), sort_keys=True)}".encode())
    for kwargs in requests:
        digest.update(json.dumps(kwargs, sort_keys=True, default=repr, separators=(",", ":")).encode())
        digest.update(b"\n")
    return f"bj_{digest.hexdigest()}"


def to_calls(method: BatchMethod, requests: Sequence[Mapping[str, Any]], tags: Tags) -> list[Call]:
    """Each request as the Call its interactive twin would be (per-item ``costkit={...}`` tags too)."""
    adapter = method.adapter
    calls = []
    for kwargs in requests:
        kw = dict(kwargs)
        own = pop_costkit_tags(kw)
        calls.append(adapter.to_call(kw, tags.merged(own) if own is not None else tags).evolve(kind="batch"))
    return calls


def prepare(idx: int, call: Call, method: BatchMethod, policies: Sequence[Any]) -> Prepared:
    """Walk the chain for one item (see the module docstring)."""
    caches: list[list[Any]] = []
    try:
        for position, policy in enumerate(policies):
            if isinstance(policy, BatchPrepare):
                call = policy.batch_prepare(call)
            if isinstance(policy, BatchCache):
                hit, ticket = policy.batch_lookup(call)
                if hit is not None:
                    body = request_body(method.adapter.to_kwargs(call))
                    return Prepared(idx=idx, status=CACHED, call=call, body=body, tickets={}, hit=hit)
                if ticket is not None:
                    caches.append([policy_tag(position, policy), ticket])
        if call.stream:
            raise CostkitError("a batch item cannot stream (drop stream=True: the batch returns the whole answer)")
        body = request_body(method.adapter.to_kwargs(call))
    except (CostkitError, TypeError) as exc:
        error = {"type": type(exc).__name__, "code": getattr(exc, "rule", None), "message": str(exc)}
        return Prepared(idx=idx, status=REFUSED, call=call, body={}, tickets={}, error=error)
    return Prepared(idx=idx, status=PENDING, call=call, body=body, tickets={"cache": caches, "budget": []})


def reserve_all(items: Sequence[Prepared], policies: Sequence[Any], ttl_s: float) -> list[Prepared]:
    """Hold every pending item's worst case in every batch-aware budget, or none (the refusal is
    raised after every hold already taken is released)."""
    budgets = [(i, p) for i, p in enumerate(policies) if isinstance(p, BatchBudget)]
    if not budgets:
        return list(items)
    held: list[tuple[BatchBudget, Any]] = []
    out = []
    try:
        for item in items:
            if item.status != PENDING:
                out.append(item)
                continue
            tickets = []
            for position, budget in budgets:
                ticket = budget.batch_reserve(item.call, ttl_s)
                if ticket is not None:
                    held.append((budget, ticket))
                    tickets.append([policy_tag(position, budget), ticket])
            out.append(attrs.evolve(item, tickets={**item.tickets, "budget": tickets}))
    except BudgetExceeded:
        for budget, ticket in held:
            budget.batch_release(ticket)
        raise
    return out


def call_doc(call: Call, *, cached_cost_usd: float | None = None) -> dict[str, Any]:
    """What a cost record needs of the call, beyond the body (kept in the state file)."""
    doc: dict[str, Any] = {
        "requested_model": call.requested_model,
        "model": call.model,
        "tags": call.tags.as_dict(),
        "notes": dict(call.notes),
        "max_output_tokens": call.max_output_tokens,
        "prepared_at": time.time(),
    }
    if cached_cost_usd is not None:
        doc["cached_cost_usd"] = cached_cost_usd
    return doc


def call_of(method: BatchMethod, body: Mapping[str, Any], doc: Mapping[str, Any], *, request_id: str) -> Call:
    """The item's Call again, from the state file (stored data is read, never executed)."""
    tags = Tags.from_mapping({k: v for k, v in (doc.get("tags") or {}).items() if isinstance(v, str)})
    call = method.adapter.to_call(dict(body), tags)
    notes = doc.get("notes")
    return call.evolve(
        requested_model=str(doc.get("requested_model") or call.requested_model),
        kind="batch",
        notes=dict(notes) if isinstance(notes, Mapping) else {},
        request_id=request_id,
    )


__all__ = [
    "Prepared",
    "call_doc",
    "call_of",
    "job_id_for",
    "jsonable",
    "prepare",
    "request_body",
    "reserve_all",
    "to_calls",
]
