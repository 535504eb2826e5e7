"""Turns provider attempts and cache hits into CostRecords, prices them, and hands them to the sink.

Records of one logical request are held until the chain returns, then emitted together, so the
router's saving can be settled against every attempt the request made (a cascade's rejected
cheap answer is a cost of routing, not a saving). Streamed attempts are recorded when their
stream ends. A sink that fails never fails the call: it warns once and counts the drop.

Text stays out of records unless ``record_text=True``: besides ``prompt_text`` and
``completion_text``, a layer may put text in a note whose key ends in ``_text`` (the semantic
cache's ``cached_question_text``, another request's prompt); such notes are dropped otherwise.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import attrs

from ._call import Call, Result, Usage, content_text
from ._scope import RequestScope
from ._warn import warn_once
from .records import CostRecord

Listener = Callable[[CostRecord], None]
TEXT_NOTE_SUFFIX = "_text"  # a note key with this suffix carries prompt or completion text


class Recorder:
    """Prices attempts with ``pricing`` and emits one CostRecord each to ``sink``."""

    def __init__(self, sink: Any, pricing: Any, *, record_text: bool = False) -> None:
        self.sink = sink
        self.pricing = pricing
        self.record_text = record_text
        self.listeners: list[Listener] = []
        self.dropped = 0
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ pricing
    def price(
        self, model: str, usage: Usage, provider: str | None = None, service_tier: str | None = None
    ) -> float | None:
        cost = self.pricing.cost(model, usage, provider=provider, service_tier=service_tier)
        if cost is None:
            self.pricing.warn_unknown(model)
        return cost

    def _input_rate(self, model: str, provider: str | None) -> float | None:
        price = self.pricing.get(model, provider=provider)
        return None if price is None else float(price.input_per_token)

    # ------------------------------------------------------------------ building
    def _savings(self, call: Call, usage: Usage, cost: float | None) -> dict[str, float]:
        savings: dict[str, float] = {}
        if cost is None or call.kind not in ANSWER_KINDS:  # judges and side calls save nothing themselves
            return savings
        removed = call.notes.get("tokens_removed")
        if removed:
            rate = self._input_rate(call.requested_model, call.provider)
            if rate is not None:
                savings["context_budget"] = removed * rate
        if call.model != call.requested_model:
            base = self.pricing.cost(call.requested_model, usage, provider=call.provider)
            if base is not None:
                savings["router"] = base - cost
        return savings

    def build(
        self,
        call: Call,
        result: Result | None,
        *,
        error: BaseException | None,
        latency_s: float,
        kind: str | None = None,
        cache: str = "none",
        cost: float | None = None,
        savings: dict[str, float] | None = None,
    ) -> CostRecord:
        usage = result.usage if result is not None else Usage()
        model = (result.model if result is not None and result.model else None) or call.model
        if cost is None and kind != "cache_hit":
            cost = self.price(call.model, usage, call.provider, _service_tier(call, result)) if result else 0.0
        if savings is None:
            savings = self._savings(call, usage, cost)
        notes = dict(call.notes)
        if result is not None:
            notes.update(result.notes)
        if not self.record_text:  # text-bearing notes (keys ending in "_text") need the opt-in
            notes = {k: v for k, v in notes.items() if not k.endswith(TEXT_NOTE_SUFFIX)}
        shadow = notes.get("shadow_model")
        if isinstance(shadow, str) and kind != "cache_hit":  # what the route not taken would have cost
            notes["shadow_cost_usd"] = self.pricing.cost(shadow, usage, provider=call.provider)
        tags = call.tags
        return CostRecord(
            request_id=call.request_id,
            attempt=call.attempt,
            kind=kind or call.kind,
            timestamp=time.time(),
            provider=call.provider,
            requested_model=call.requested_model,
            model=model,
            tenant=tags.tenant,
            user=tags.user,
            feature=tags.feature,
            route=tags.route,
            prompt_version=tags.prompt_version,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cached_read_tokens=usage.cached_read_tokens,
            cache_write_tokens=usage.cache_write_tokens,
            cost_usd=cost,
            priced=cost is not None,
            saved_usd=sum(savings.values()),
            savings=savings,
            cache=cache,
            success=error is None and (result is None or "stream_error" not in result.notes),
            error_type=type(error).__name__
            if error is not None
            else (result.notes.get("stream_error") if result is not None else None),
            latency_ms=latency_s * 1000.0,
            usage_estimated=usage.estimated,
            notes=notes,
            prompt_text=_prompt_text(call) if self.record_text else None,
            completion_text=(result.text if result is not None else None) if self.record_text else None,
        )

    # ------------------------------------------------------------------ attempts
    def attempt(self, call: Call, result: Result | None, error: BaseException | None, started: float) -> Result | None:
        """Record one provider attempt; returns the result with its cost set."""
        record = self.build(call, result, error=error, latency_s=time.perf_counter() - started)
        if call.scope is not None and not call.stream:
            call.scope.add(record)
        else:
            self.emit(record)
        if result is None:
            return None
        return result.evolve(cost_usd=record.cost_usd)

    def cache_hit(self, call: Call, result: Result, started: float) -> None:
        """A layer answered without the provider: the original answer's cost is this layer's saving."""
        original = result.cost_usd
        if original is None:
            original = self.pricing.cost(call.requested_model, result.usage, provider=call.provider)
        layer = {"exact": "exact_cache", "semantic": "semantic_cache", "dedup": "dedup"}.get(
            result.source, result.source
        )
        savings = {layer: float(original)} if original is not None else {}
        record = self.build(
            call.evolve(model=call.requested_model, attempt=0),
            result.evolve(model=result.model or call.requested_model),
            error=None,
            latency_s=time.perf_counter() - started,
            kind="cache_hit",
            cache=result.source,
            cost=0.0,
            savings=savings,
        )
        self.emit(record)

    # ------------------------------------------------------------------ requests
    def begin(self, call: Call) -> Call:
        """Hold the request's records until :meth:`end`, to settle savings across its attempts
        (adapters' calls come with a scope already; a call built elsewhere gets one here)."""
        return call if call.scope is not None else call.evolve(scope=RequestScope())

    def end(self, call: Call, result: Result | None) -> None:
        pending = call.scope.records if call.scope is not None else []
        if not pending:
            return
        if len(pending) > 1:
            pending = _settle_router_saving(pending)
            # layers number their own attempts (retry, cascade, fallback); the request's are 1..n
            pending = [r if r.attempt == i else attrs.evolve(r, attempt=i) for i, r in enumerate(pending, 1)]
        for record in pending:
            self.emit(record)

    def emit(self, record: CostRecord) -> None:
        for listener in self.listeners:
            try:
                listener(record)
            except Exception as exc:
                warn_once(f"listener:{type(exc).__name__}", f"costkit: a record listener failed: {exc!r}")
        if self.sink is None:
            return
        try:
            self.sink.emit(record)
        except Exception as exc:
            with self._lock:
                self.dropped += 1
            warn_once(
                f"sink:{type(self.sink).__name__}",
                f"costkit: sink {type(self.sink).__name__} failed ({exc!r}); records are being dropped "
                "(the completion is unaffected; see Recorder.dropped)",
            )


ANSWER_KINDS = ("call", "retry", "escalation")


def record_side_call(
    call: Call,
    *,
    kind: str,
    model: str,
    provider: str,
    input_tokens: int,
    cost_usd: float | None,
    latency_ms: float,
) -> bool:
    """A layer's own provider request made for ``call`` (an embedding), held with the request's
    records and emitted with them; False when the call is not a wrapped request (nothing to hold it)."""
    if call.scope is None:
        return False
    tags = call.tags
    call.scope.add(
        CostRecord(
            request_id=call.request_id,
            attempt=call.attempt,
            kind=kind,
            timestamp=time.time(),
            provider=provider,
            requested_model=model,
            model=model,
            tenant=tags.tenant,
            user=tags.user,
            feature=tags.feature,
            route=tags.route,
            prompt_version=tags.prompt_version,
            input_tokens=input_tokens,
            cost_usd=cost_usd,
            priced=cost_usd is not None,
            latency_ms=latency_ms,
        )
    )
    return True


def _settle_router_saving(records: list[CostRecord]) -> list[CostRecord]:
    """Settle savings across one request's records.

    The last call/retry/escalation is the answer. Attempts before it are what routing (or
    retrying) spent: they save nothing. If routing was involved (a model other than the one
    asked for, an escalation, a judge), the router's saving on the answer is reduced by what the
    other attempts and judges cost. Side calls (embeddings) keep their own figures.
    """
    answers = [i for i, r in enumerate(records) if r.kind in ANSWER_KINDS]
    if not answers:
        return records
    last = answers[-1]
    before = records[:last]
    spent_elsewhere = sum(r.cost_usd or 0.0 for i, r in enumerate(records) if i != last and r.kind != "embedding")
    out = []
    for i, r in enumerate(records):
        if i == last:
            savings = dict(r.savings)
            routed = "router" in savings or any(
                p.kind in ("judge", "escalation") or p.model != p.requested_model for p in before
            )
            if routed and spent_elsewhere:
                savings["router"] = savings.get("router", 0.0) - spent_elsewhere
            r = attrs.evolve(r, savings=savings, saved_usd=sum(savings.values()))
        elif r.kind in ANSWER_KINDS and (r.savings or r.saved_usd):
            r = attrs.evolve(r, savings={}, saved_usd=0.0)
        out.append(r)
    return out


def _service_tier(call: Call, result: Result) -> str | None:
    """The tier the provider says it served (flex, priority...), else the one asked for."""
    tier = getattr(result.raw, "service_tier", None)
    if not isinstance(tier, str):
        tier = call.params.get("service_tier")
    return tier if isinstance(tier, str) and tier not in ("default", "auto", "standard") else None


def _prompt_text(call: Call) -> str:
    return "\n".join(f"{m.get('role')}: {content_text(m.get('content'))}" for m in call.messages)


__all__ = ["ANSWER_KINDS", "TEXT_NOTE_SUFFIX", "Recorder", "record_side_call"]
