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

from ._call import ZERO_USAGE, Call, Result, Usage, content_text
from ._scope import RequestScope
from ._warn import warn_once
from .classify import reached_provider
from .outcomes import register_sink as register_outcome_sink
from .records import CostRecord, RecordDraft, as_record, now

Listener = Callable[[CostRecord], None]
_UNPRICED = object()  # build(): price the attempt from its usage


@attrs.frozen(slots=True)
class RecorderStats:
    """A snapshot of a recorder's counters: records emitted to the sink, and those the sink refused."""

    emitted: int = 0
    dropped: int = 0


TEXT_NOTE_SUFFIX = "_text"  # a note key with this suffix carries prompt or completion text


class Recorder:
    """Prices attempts with ``pricing`` and emits one CostRecord each to ``sink``."""

    def __init__(self, sink: Any, pricing: Any, *, record_text: bool = False) -> None:
        self.sink = sink
        register_outcome_sink(sink)  # costkit.outcome(...) goes where this client's records go
        self.pricing = pricing
        self.record_text = record_text
        self.listeners: list[Listener] = []
        self._emitted = 0
        self._dropped = 0
        self._lock = threading.Lock()

    @property
    def stats(self) -> RecorderStats:
        with self._lock:
            return RecorderStats(self._emitted, self._dropped)

    # ------------------------------------------------------------------ pricing
    def price(
        self, model: str, usage: Usage, provider: str | None = None, service_tier: str | None = None
    ) -> float | None:
        cost = self.pricing.cost(model, usage, provider=provider, service_tier=service_tier)
        if cost is None:
            self.pricing.warn_unknown(model)
        return cost

    def _input_rate(self, model: str, provider: str | None, batch_tokens: int | None = None) -> float | None:
        """A model's input rate; at batch prices for a prompt of ``batch_tokens`` when given."""
        price = self.pricing.get(model, provider=provider)
        if price is None:
            return None
        if batch_tokens is not None:
            return float(price.rates(batch_tokens, batch=True).input)
        return float(price.input_per_token)

    def _priced_compression(self, call: Call, compression: dict[str, Any]) -> dict[str, Any]:
        """The compressor's breakdown with each strategy's saving (net of its summary's cost)."""
        rate = self._input_rate(call.requested_model, call.provider)
        strategies = compression.get("strategies") or {}
        if rate is None or not isinstance(strategies, dict):
            return compression
        priced = {
            k: {**v, "saved_usd": _strategy_saving(v, rate)} for k, v in strategies.items() if isinstance(v, dict)
        }
        return {**compression, "strategies": priced}

    # ------------------------------------------------------------------ building
    def layer_savings(self, call: Call, usage: Usage, cost: float | None, *, batch: bool = False) -> dict[str, float]:
        """What the compressor and the router saved on this answer, at batch prices for a batch item."""
        savings: dict[str, float] = {}
        if cost is None or call.kind not in (*ANSWER_KINDS, "batch"):  # judges and side calls save nothing themselves
            return savings
        compression = call.notes.get("compression")
        removed = call.notes.get("tokens_removed")
        if isinstance(compression, dict) or removed:
            rate = self._input_rate(call.requested_model, call.provider, usage.input_tokens if batch else None)
            if rate is not None and isinstance(compression, dict):
                layer = str(compression.get("layer") or "compressor")
                savings[layer] = sum(_strategy_saving(s, rate) for s in (compression.get("strategies") or {}).values())
            elif rate is not None and removed:
                savings["context_budget"] = removed * rate
        if call.model != call.requested_model:
            base = self.pricing.cost(call.requested_model, usage, provider=call.provider, batch=batch)
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
        cost: float | object | None = _UNPRICED,
        savings: dict[str, float] | None = None,
        timestamp: float | None = None,
    ) -> CostRecord:
        usage = result.usage if result is not None else Usage()
        model = (result.model if result is not None and result.model else None) or call.model
        if cost is _UNPRICED:
            cost = self.attempt_cost(call, result)
        assert cost is None or isinstance(cost, float | int)
        if savings is None:
            savings = self.layer_savings(call, usage, cost)
        notes = dict(call.notes)
        if result is not None:
            notes.update(result.notes)
        if not self.record_text:  # text-bearing notes (keys ending in "_text") need the opt-in
            notes = {k: v for k, v in notes.items() if not k.endswith(TEXT_NOTE_SUFFIX)}
        if isinstance(notes.get("compression"), dict) and kind != "cache_hit":
            notes["compression"] = self._priced_compression(call, notes["compression"])
        shadow = notes.get("shadow_model")
        if isinstance(shadow, str) and kind != "cache_hit":  # what the route not taken would have cost
            notes["shadow_cost_usd"] = self.pricing.cost(shadow, usage, provider=call.provider)
        tags = call.tags.for_record()
        # an experiment arm's cache hit is recorded from the request's own call: its notes name the arm
        tags["experiment"] = tags["experiment"] or _str_note(notes, "experiment")
        tags["arm"] = tags["arm"] or _str_note(notes, "arm")
        return CostRecord(
            request_id=call.request_id,
            attempt=call.attempt,
            kind=kind or call.kind,
            timestamp=now() if timestamp is None else timestamp,
            provider=call.provider,
            client=call.client,
            requested_model=call.requested_model,
            model=model,
            **tags,
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
        """Record one provider attempt; returns the result with its cost set.

        An attempt that failed after its request was sent (cancelled, timed out, connection lost
        while waiting) is billed for its input by the provider: it is recorded and charged at the
        counted input tokens (``usage_estimated=True``), not at $0.
        """
        latency_s = time.perf_counter() - started
        billed = result
        if result is None and error is not None and reached_provider(error):
            billed = Result(usage=estimate_input_usage(call), model=call.model)
        cost = self.attempt_cost(call, billed)
        usage = billed.usage if billed is not None else ZERO_USAGE
        stamp = now()
        # priced now (budgets settle on it); the rest of the record is built where it is read
        draft = RecordDraft(
            lambda: self.build(call, billed, error=error, latency_s=latency_s, cost=cost, timestamp=stamp),
            request_id=call.request_id,
            attempt=call.attempt,
            kind=call.kind,
            cost_usd=cost,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
        )
        if call.scope is not None and not call.stream:
            call.scope.add(draft)  # type: ignore[arg-type]
        else:
            self.emit(draft)
        if result is None:
            return None
        return result.evolve(cost_usd=cost)

    def attempt_cost(self, call: Call, result: Result | None) -> float | None:
        """What the provider bills for an attempt with ``result`` (None: unpriced; no result: $0)."""
        if result is None:
            return 0.0
        return self.price(call.model, result.usage, call.provider, _service_tier(call, result))

    def cache_hit(self, call: Call, result: Result, started: float) -> None:
        """A layer answered without the provider: the original answer's cost is this layer's saving."""
        original = result.cost_usd
        if original is None:
            original = self.pricing.cost(call.requested_model, result.usage, provider=call.provider)
        layer: str = result.source  # one name per layer: the savings key is the source (exact, semantic, dedup)
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
        pending: list[Any] = call.scope.records if call.scope is not None else []
        if not pending:
            return
        if len(pending) > 1:  # savings are settled across the attempts: built here (rare: retries, cascades)
            pending = _settle_router_saving([as_record(r) for r in pending])
            # layers number their own attempts (retry, cascade, fallback); the request's are 1..n
            pending = [r if r.attempt == i else attrs.evolve(r, attempt=i) for i, r in enumerate(pending, 1)]
        for record in pending:
            self.emit(record)

    def emit(self, record: CostRecord | RecordDraft) -> None:
        """To the listeners (which may get a draft: any CostRecord attribute reads) and the sink (a
        draft only when the sink builds drafts off the caller's thread, ``accepts_drafts = True``)."""
        for listener in self.listeners:
            try:
                listener(record)  # type: ignore[arg-type]
            except Exception as exc:
                warn_once(f"listener:{type(exc).__name__}", f"costkit: a record listener failed: {exc!r}")
        sink = self.sink
        if sink is None:
            return
        with self._lock:
            self._emitted += 1
        if type(record) is RecordDraft and not getattr(sink, "accepts_drafts", False):
            record = record.build()
        try:
            sink.emit(record)
        except Exception as exc:
            with self._lock:
                self._dropped += 1
            warn_once(
                f"sink:{type(self.sink).__name__}",
                f"costkit: sink {type(self.sink).__name__} failed ({exc!r}); records are being dropped "
                "(the completion is unaffected; see the recorder's stats.dropped)",
            )


ANSWER_KINDS = ("call", "retry", "escalation")
#: a layer's own requests for a call (an embedding, a history summary): their cost is that layer's
#: spend (netted in its own saving), never the router's
SIDE_KINDS = ("embedding", "summary")


def _strategy_saving(strategy: Any, rate: float) -> float:
    """What one compression strategy saved: tokens removed at the input rate, less what its summary cost."""
    if not isinstance(strategy, dict):
        return 0.0
    removed = strategy.get("tokens_removed") or 0
    spent = strategy.get("summary_cost_usd") or 0.0
    return float(removed) * rate - float(spent)


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
    call.scope.add(
        CostRecord(
            request_id=call.request_id,
            attempt=call.attempt,
            kind=kind,
            timestamp=now(),
            provider=provider,
            client=call.client,
            requested_model=model,
            model=model,
            **call.tags.for_record(),
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
    other attempts and judges cost. Side calls (embeddings, summaries) keep their own figures.
    """
    answers = [i for i, r in enumerate(records) if r.kind in ANSWER_KINDS]
    if not answers:
        return records
    last = answers[-1]
    before = records[:last]
    spent_elsewhere = sum(r.cost_usd or 0.0 for i, r in enumerate(records) if i != last and r.kind not in SIDE_KINDS)
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


def estimate_input_usage(call: Call) -> Usage:
    """The prompt's tokens as costkit counts them (the provider did not report usage)."""
    from .tokens import count_messages, count_tools

    n = count_messages(list(call.messages), call.model)
    tools = call.params.get("tools")
    if isinstance(tools, list | tuple) and tools:
        n += count_tools(list(tools), call.model)
    return Usage(input_tokens=int(n), estimated=True)


def _service_tier(call: Call, result: Result) -> str | None:
    """The tier the provider says it served (flex, priority...), else the one asked for."""
    tier = getattr(result.raw, "service_tier", None)
    if not isinstance(tier, str):
        tier = call.params.get("service_tier")
    return tier if isinstance(tier, str) and tier not in ("default", "auto", "standard") else None


def _str_note(notes: dict[str, Any], key: str) -> str | None:
    value = notes.get(key)
    return value if isinstance(value, str) else None


def _prompt_text(call: Call) -> str:
    return "\n".join(f"{m.get('role')}: {content_text(m.get('content'))}" for m in call.messages)


__all__ = ["ANSWER_KINDS", "SIDE_KINDS", "TEXT_NOTE_SUFFIX", "Recorder", "RecorderStats", "record_side_call"]
