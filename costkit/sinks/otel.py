"""OTelSink: cost records as OpenTelemetry spans and metrics (GenAI semantic conventions).

Each provider attempt becomes one CLIENT span named ``"{operation} {model}"`` carrying the GenAI
attributes (``gen_ai.provider.name``, ``gen_ai.request.model``, ``gen_ai.usage.input_tokens`` ...)
plus costkit's own (``costkit.cost_usd``, ``costkit.tenant``, ``costkit.feature``,
``costkit.task``, ``costkit.experiment``, ``costkit.arm`` ...), timed from the record's timestamp
(end of the attempt) and latency. A cache hit sent nothing to a provider: it is an INTERNAL span
``"cache_hit {model}"`` with costkit attributes only (no ``gen_ai.*``, so no token usage is
reported for tokens never sent). Spans are emitted in the caller's context, so they nest under the
application's current span. Metrics follow the same conventions: ``gen_ai.client.token.usage``
and ``gen_ai.client.operation.duration`` histograms with the bucket boundaries the conventions
advise (as the instruments' advisory boundaries; :func:`genai_views` gives the same as SDK Views
for SDKs that ignore advice), ``costkit.cost`` / ``costkit.saved`` counters in USD, and
``costkit.task.outcomes`` counting outcomes by success, feature, experiment and arm (never by
task id).

The OpenTelemetry SDK's own processors (BatchSpanProcessor, PeriodicExportingMetricReader) do
the exporting off the hot path; ``emit`` only records in memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..errors import ConfigError
from ..outcomes import Outcome
from ..records import CostRecord
from ._tasks import TaskMemory
from .background import DeferredSink

# record fields that may become metric attributes (spans always carry all of them); never task ids
METRIC_ATTRIBUTE_FIELDS = ("tenant", "user", "feature", "route", "prompt_version", "cache", "kind", "experiment", "arm")
DEFAULT_METRIC_ATTRIBUTES = ("tenant", "feature", "route", "cache", "experiment", "arm")
# the GenAI semantic conventions' advised histogram buckets
DURATION_BUCKETS_S = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)

_OPERATIONS = {"embedding": "embeddings"}


def _operation(record: CostRecord) -> str:
    return _OPERATIONS.get(record.kind, "chat")


def is_cache_hit(record: CostRecord) -> bool:
    return record.kind == "cache_hit" or record.cache != "none"


def _costkit_attributes(record: CostRecord) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        "costkit.request_id": record.request_id,
        "costkit.attempt": record.attempt,
        "costkit.kind": record.kind,
        "costkit.requested_model": record.requested_model,
        "costkit.model": record.model,
        "costkit.provider": record.provider,
        "costkit.priced": record.priced,
        "costkit.saved_usd": record.saved_usd,
        "costkit.cache": record.cache,
        "costkit.success": record.success,
        "costkit.latency_ms": record.latency_ms,
        "costkit.usage_estimated": record.usage_estimated,
    }
    if record.cost_usd is not None:
        attrs["costkit.cost_usd"] = record.cost_usd
    for tag in ("tenant", "user", "feature", "route", "prompt_version", "task", "experiment", "arm"):
        value = getattr(record, tag)
        if value is not None:
            attrs[f"costkit.{tag}"] = value
    for layer, usd in record.savings.items():
        attrs[f"costkit.savings.{layer}"] = usd
    return attrs


def span_attributes(record: CostRecord) -> dict[str, Any]:
    """The attributes of a record's span: GenAI semantic conventions, then ``costkit.*``
    (a cache hit: ``costkit.*`` only, it made no GenAI request)."""
    if is_cache_hit(record):
        return _costkit_attributes(record)
    attrs: dict[str, Any] = {
        "gen_ai.operation.name": _operation(record),
        "gen_ai.provider.name": record.provider,
        "gen_ai.system": record.provider,  # the pre-1.37 name, still read by many backends
        "gen_ai.request.model": record.model,
        "gen_ai.response.model": record.model,
        "gen_ai.usage.input_tokens": record.input_tokens,
        "gen_ai.usage.output_tokens": record.output_tokens,
        "gen_ai.usage.cache_read.input_tokens": record.cached_read_tokens,
        "gen_ai.usage.cache_creation.input_tokens": record.cache_write_tokens,
        **_costkit_attributes(record),
    }
    if not record.success:
        attrs["error.type"] = record.error_type or "_OTHER"
    return attrs


def _metric_attributes(record: CostRecord, fields: tuple[str, ...]) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        "gen_ai.operation.name": _operation(record),
        "gen_ai.provider.name": record.provider,
        "gen_ai.request.model": record.model,
        "gen_ai.response.model": record.model,
    }
    for f in fields:
        value = getattr(record, f)
        if value is not None:
            attrs[f"costkit.{f}"] = value
    if not record.success:
        attrs["error.type"] = record.error_type or "_OTHER"
    return attrs


def genai_views() -> list[Any]:
    """SDK Views giving the two GenAI histograms their advised bucket boundaries, for an SDK that
    ignores instruments' advisory boundaries: ``MeterProvider(views=OTelSink.views())``."""
    from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View

    return [
        View(
            instrument_name="gen_ai.client.operation.duration",
            aggregation=ExplicitBucketHistogramAggregation(list(DURATION_BUCKETS_S)),
        ),
        View(
            instrument_name="gen_ai.client.token.usage",
            aggregation=ExplicitBucketHistogramAggregation([float(b) for b in TOKEN_BUCKETS]),
        ),
    ]


def _require_otel() -> tuple[Any, Any]:
    try:
        from opentelemetry import metrics, trace
    except ImportError:
        raise ConfigError(
            "opentelemetry", "OTelSink needs the OpenTelemetry API and SDK: pip install 'costkit[otel]'"
        ) from None
    return trace, metrics


class OTelSink(DeferredSink):
    """Emit each record as a span and/or as GenAI metrics.

    ``tracer_provider`` / ``meter_provider`` default to the global ones the application set up.
    ``metric_attributes`` picks which record fields label the metrics (from
    :data:`METRIC_ATTRIBUTE_FIELDS`); every extra one multiplies the number of time series.
    With ``background=True`` (default) ``emit`` only captures the caller's trace context and
    enqueues (bounded by ``max_queue``); the SDK work runs on a costkit thread, and the span still
    nests under the span that was current at ``emit``.
    """

    def __init__(
        self,
        *,
        tracer_provider: Any = None,
        meter_provider: Any = None,
        spans: bool = True,
        metrics: bool = True,
        metric_attributes: Iterable[str] = DEFAULT_METRIC_ATTRIBUTES,
        background: bool = True,
        max_queue: int = 10_000,
    ) -> None:
        trace, metrics_api = _require_otel()
        fields = tuple(metric_attributes)
        unknown = [f for f in fields if f not in METRIC_ATTRIBUTE_FIELDS]
        if unknown:
            raise ConfigError("metric_attributes", f"{unknown[0]!r} is not one of {', '.join(METRIC_ATTRIBUTE_FIELDS)}")
        if not spans and not metrics:
            raise ConfigError("spans", "spans and metrics are both off: this sink would record nothing")
        self._init_deferred(background=background, max_queue=max_queue, name="OTelSink")
        self.metric_attributes = fields
        self._trace = trace
        from opentelemetry import context

        self._context = context
        self._providers = (
            tracer_provider or trace.get_tracer_provider(),
            meter_provider or metrics_api.get_meter_provider(),
        )
        self._tracer = trace.get_tracer("costkit", tracer_provider=tracer_provider) if spans else None
        self._instruments: Mapping[str, Any] = {}
        if metrics:
            meter = metrics_api.get_meter("costkit", meter_provider=meter_provider)
            self._instruments = {
                "tokens": meter.create_histogram(
                    "gen_ai.client.token.usage",
                    unit="{token}",
                    description="Number of input and output tokens used.",
                    explicit_bucket_boundaries_advisory=[float(b) for b in TOKEN_BUCKETS],
                ),
                "duration": meter.create_histogram(
                    "gen_ai.client.operation.duration",
                    unit="s",
                    description="GenAI operation duration.",
                    explicit_bucket_boundaries_advisory=list(DURATION_BUCKETS_S),
                ),
                "cost": meter.create_counter("costkit.cost", unit="USD", description="What LLM calls cost."),
                "saved": meter.create_counter(
                    "costkit.saved", unit="USD", description="What costkit's layers saved, by layer."
                ),
                "calls": meter.create_counter(
                    "costkit.calls", unit="{call}", description="Provider attempts and cache hits."
                ),
                "outcomes": meter.create_counter(
                    "costkit.task.outcomes", unit="{task}", description="Task outcomes, by success and arm."
                ),
            }
        self._tasks = TaskMemory()

    views = staticmethod(genai_views)

    def _capture(self) -> Any:
        return self._context.get_current()

    def _handle(self, record: CostRecord, ctx: Any) -> None:
        self._tasks.note(record)
        if self._tracer is not None:
            self._span(record, ctx)
        if self._instruments:
            self._metrics(record)

    def _span(self, record: CostRecord, ctx: Any) -> None:
        end_ns = int(record.timestamp * 1e9)
        start_ns = end_ns - int(record.latency_ms * 1e6)
        hit = is_cache_hit(record)
        span = self._tracer.start_span(  # type: ignore[union-attr]
            f"cache_hit {record.model}" if hit else f"{_operation(record)} {record.model}",
            kind=self._trace.SpanKind.INTERNAL if hit else self._trace.SpanKind.CLIENT,
            attributes=span_attributes(record),
            start_time=start_ns,
            context=ctx,
        )
        if not record.success:
            span.set_status(self._trace.Status(self._trace.StatusCode.ERROR, record.error_type or None))
        span.end(end_time=end_ns)

    def _metrics(self, record: CostRecord) -> None:
        attrs = _metric_attributes(record, self.metric_attributes)
        inst = self._instruments
        if record.cache == "none" and record.kind != "cache_hit":
            inst["tokens"].record(record.input_tokens, {**attrs, "gen_ai.token.type": "input"})
            inst["tokens"].record(record.output_tokens, {**attrs, "gen_ai.token.type": "output"})
            inst["duration"].record(record.latency_ms / 1000.0, attrs)
        if record.cost_usd:
            inst["cost"].add(record.cost_usd, attrs)
        for layer, usd in record.savings.items():
            if usd > 0:
                inst["saved"].add(usd, {**attrs, "costkit.layer": layer})
        inst["calls"].add(1, {**attrs, "costkit.success": record.success})

    def _handle_outcome(self, outcome: Outcome) -> None:
        inst = self._instruments.get("outcomes")
        if inst is None:
            return
        feature, experiment, arm = self._tasks.labels(outcome.task)
        attrs: dict[str, Any] = {"costkit.success": outcome.success}
        for name, value in (("feature", feature), ("experiment", experiment), ("arm", arm)):
            if value is not None:
                attrs[f"costkit.{name}"] = value
        inst.add(1, attrs)

    def flush(self, timeout: float | None = None) -> bool:
        """Handle what is queued, then ask the providers to export what they hold."""
        done = super().flush(timeout)
        for provider in self._providers:
            fn = getattr(provider, "force_flush", None)
            if callable(fn):
                fn()
        return done

    def __repr__(self) -> str:
        return f"OTelSink(spans={self._tracer is not None}, metrics={bool(self._instruments)})"


__all__ = [
    "DEFAULT_METRIC_ATTRIBUTES",
    "DURATION_BUCKETS_S",
    "METRIC_ATTRIBUTE_FIELDS",
    "TOKEN_BUCKETS",
    "OTelSink",
    "genai_views",
    "span_attributes",
]
