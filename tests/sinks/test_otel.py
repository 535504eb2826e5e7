from __future__ import annotations

import sys

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from costkit.errors import ConfigError
from costkit.sinks import OTelSink


@pytest.fixture
def tracing():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


@pytest.fixture
def metering():
    reader = InMemoryMetricReader()
    return MeterProvider(metric_readers=[reader]), reader


def _points(reader: InMemoryMetricReader) -> dict[str, list]:
    out: dict[str, list] = {}
    data = reader.get_metrics_data()
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                out[m.name] = list(m.data.data_points)
    return out


def test_one_span_per_record_with_genai_attributes(tracing, make_record) -> None:
    provider, exporter = tracing
    sink = OTelSink(tracer_provider=provider, metrics=False, background=False)
    rec = make_record(timestamp=1_800_000_000.5, latency_ms=250.0)
    sink.emit(rec)
    (span,) = exporter.get_finished_spans()
    assert span.name == "chat gpt-4o-mini"
    assert span.kind is SpanKind.CLIENT
    assert span.end_time == 1_800_000_000_500_000_000
    assert span.end_time - span.start_time == 250_000_000
    a = dict(span.attributes)
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.provider.name"] == "openai"
    assert a["gen_ai.system"] == "openai"
    assert a["gen_ai.request.model"] == "gpt-4o-mini"
    assert a["gen_ai.response.model"] == "gpt-4o-mini"
    assert a["gen_ai.usage.input_tokens"] == 120
    assert a["gen_ai.usage.output_tokens"] == 30
    assert a["gen_ai.usage.cache_read.input_tokens"] == 64
    assert a["costkit.cost_usd"] == 0.000123
    assert a["costkit.saved_usd"] == 0.0015
    assert a["costkit.savings.router"] == 0.0015
    assert a["costkit.tenant"] == "acme"
    assert a["costkit.feature"] == "faq"
    assert a["costkit.requested_model"] == "gpt-4o"
    assert "error.type" not in a
    assert span.status.status_code is StatusCode.UNSET
    assert (sink.emitted, sink.written, sink.errors) == (1, 1, 0)


def test_failed_attempt_span_has_error_status(tracing, make_record) -> None:
    provider, exporter = tracing
    sink = OTelSink(tracer_provider=provider, metrics=False, background=False)
    sink.emit(make_record(success=False, error_type="RateLimitError", cost_usd=None, priced=False, tenant=None))
    (span,) = exporter.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "RateLimitError"
    assert "costkit.cost_usd" not in span.attributes
    assert "costkit.tenant" not in span.attributes


def test_span_nests_under_the_applications_current_span(tracing, make_record) -> None:
    provider, exporter = tracing
    sink = OTelSink(tracer_provider=provider, metrics=False, background=False)
    with provider.get_tracer("app").start_as_current_span("handle_request") as parent:
        sink.emit(make_record())
    child = next(s for s in exporter.get_finished_spans() if s.name != "handle_request")
    assert child.parent is not None
    assert child.parent.span_id == parent.get_span_context().span_id


def test_metrics_follow_genai_conventions(metering, make_record) -> None:
    provider, reader = metering
    sink = OTelSink(meter_provider=provider, spans=False, background=False)
    sink.emit(make_record(cost_usd=0.25, latency_ms=500.0, savings={"router": 0.5}, saved_usd=0.5))
    sink.emit(make_record(cost_usd=0.125, latency_ms=1500.0, savings={}, saved_usd=0.0))
    sink.emit(make_record(kind="cache_hit", cache="exact", cost_usd=0.0, savings={"exact": 1.0}, saved_usd=1.0))
    pts = _points(reader)
    tokens = {p.attributes["gen_ai.token.type"]: p for p in pts["gen_ai.client.token.usage"]}
    assert tokens["input"].sum == 240 and tokens["input"].count == 2
    assert tokens["output"].sum == 60
    assert tokens["input"].attributes["gen_ai.request.model"] == "gpt-4o-mini"
    assert tokens["input"].attributes["costkit.tenant"] == "acme"
    (duration,) = pts["gen_ai.client.operation.duration"]
    assert duration.sum == 2.0 and duration.count == 2
    (cost,) = pts["costkit.cost"]
    assert cost.value == 0.375
    saved = {p.attributes["costkit.layer"]: p.value for p in pts["costkit.saved"]}
    assert saved == {"router": 0.5, "exact": 1.0}
    calls = {p.attributes["costkit.cache"]: p.value for p in pts["costkit.calls"]}
    assert calls == {"none": 2, "exact": 1}


def test_bad_metric_attribute_and_nothing_enabled(metering) -> None:
    with pytest.raises(ConfigError) as err:
        OTelSink(metric_attributes=["request_id"])
    assert err.value.field == "metric_attributes"
    with pytest.raises(ConfigError) as err:
        OTelSink(spans=False, metrics=False)
    assert err.value.field == "spans"


def test_missing_library_names_the_extra(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    with pytest.raises(ConfigError, match=r"costkit\[otel\]"):
        OTelSink()


def test_a_failing_provider_never_raises_into_emit(make_record) -> None:
    class BrokenTracer:
        def start_span(self, *a, **k):
            raise RuntimeError("exporter exploded")

    class BrokenProvider:
        def get_tracer(self, *a, **k):
            return BrokenTracer()

    sink = OTelSink(tracer_provider=BrokenProvider(), metrics=False, background=False)
    with pytest.warns(UserWarning, match="exporter exploded"):
        sink.emit(make_record())
    assert (sink.emitted, sink.dropped, sink.errors) == (1, 1, 1)


def test_background_mode_keeps_the_callers_parent_span(tracing, metering, make_record) -> None:
    tp, exporter = tracing
    mp, reader = metering
    sink = OTelSink(tracer_provider=tp, meter_provider=mp)
    with tp.get_tracer("app").start_as_current_span("handle_request") as parent:
        sink.emit(make_record(cost_usd=0.5))
    assert sink.flush(30)
    child = next(s for s in exporter.get_finished_spans() if s.name != "handle_request")
    assert child.parent is not None and child.parent.span_id == parent.get_span_context().span_id
    assert child.context.trace_id == parent.get_span_context().trace_id
    (cost,) = _points(reader)["costkit.cost"]
    assert cost.value == 0.5
    assert (sink.emitted, sink.written, sink.dropped, sink.errors) == (1, 1, 0, 0)
    sink.close()


def test_background_mode_never_blocks_on_a_stuck_exporter(make_record) -> None:
    import threading

    release = threading.Event()

    class StuckTracer:
        def start_span(self, *a, **k):
            release.wait(30)
            raise RuntimeError("gave up")

    class StuckProvider:
        def get_tracer(self, *a, **k):
            return StuckTracer()

    sink = OTelSink(tracer_provider=StuckProvider(), metrics=False, max_queue=10)
    with pytest.warns(UserWarning):
        for _ in range(1000):  # would hang if emit waited on the tracer
            sink.emit(make_record())
        assert sink.emitted == 1000
        assert sink.dropped >= 1000 - 10 - 256  # at most the queue plus one batch in flight
        release.set()
        assert sink.flush(30)
    assert sink.written == 0
    sink.close()


def test_a_cache_hit_is_an_internal_span_without_genai_usage(tracing, make_record) -> None:
    provider, exporter = tracing
    sink = OTelSink(tracer_provider=provider, metrics=False, background=False)
    sink.emit(make_record(kind="cache_hit", cache="semantic", attempt=0, cost_usd=0.0, savings={"semantic": 0.01}))
    (span,) = exporter.get_finished_spans()
    assert span.name == "cache_hit gpt-4o-mini" and span.kind is SpanKind.INTERNAL
    a = dict(span.attributes)
    assert not [k for k in a if k.startswith("gen_ai.")]  # no tokens reported that were never sent
    assert (a["costkit.cache"], a["costkit.model"], a["costkit.savings.semantic"]) == ("semantic", "gpt-4o-mini", 0.01)


def test_task_experiment_and_arm_on_spans_and_outcomes_by_arm(tracing, metering, make_record) -> None:
    from costkit.outcomes import make_outcome

    (tp, exporter), (mp, reader) = tracing, metering
    sink = OTelSink(tracer_provider=tp, meter_provider=mp, background=False)
    sink.emit(make_record(task="t-1", experiment="prompt", arm="v2"))
    sink.emit_outcome(make_outcome("t-1", success=True))
    sink.emit_outcome(make_outcome("t-unknown", success=False))
    (span,) = exporter.get_finished_spans()
    assert (span.attributes["costkit.task"], span.attributes["costkit.arm"]) == ("t-1", "v2")
    pts = _points(reader)
    (cost,) = pts["costkit.cost"]
    assert cost.attributes["costkit.experiment"] == "prompt" and cost.attributes["costkit.arm"] == "v2"
    assert not [p for m in pts.values() for p in m if "costkit.task" in p.attributes]  # never a task id
    outcomes = {tuple(sorted(p.attributes.items())): p.value for p in pts["costkit.task.outcomes"]}
    assert outcomes == {
        (
            ("costkit.arm", "v2"),
            ("costkit.experiment", "prompt"),
            ("costkit.feature", "faq"),
            ("costkit.success", True),
        ): 1,
        (("costkit.success", False),): 1,
    }


def test_histograms_use_the_genai_bucket_boundaries(make_record) -> None:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    from costkit.sinks.otel import DURATION_BUCKETS_S, TOKEN_BUCKETS

    assert DURATION_BUCKETS_S == (
        0.01,
        0.02,
        0.04,
        0.08,
        0.16,
        0.32,
        0.64,
        1.28,
        2.56,
        5.12,
        10.24,
        20.48,
        40.96,
        81.92,
    )
    assert TOKEN_BUCKETS[0] == 1 and TOKEN_BUCKETS[-1] == 67108864 and len(TOKEN_BUCKETS) == 14
    for views in ((), OTelSink.views()):  # the instruments' advice, and the same as SDK Views
        reader = InMemoryMetricReader()
        sink = OTelSink(
            meter_provider=MeterProvider(metric_readers=[reader], views=list(views)), spans=False, background=False
        )
        sink.emit(make_record(latency_ms=300.0))
        pts = _points(reader)
        (duration,) = pts["gen_ai.client.operation.duration"]
        assert tuple(duration.explicit_bounds) == DURATION_BUCKETS_S
        assert duration.bucket_counts[DURATION_BUCKETS_S.index(0.32)] == 1  # 0.3 s is in (0.16, 0.32]
        tokens = pts["gen_ai.client.token.usage"]
        assert {tuple(p.explicit_bounds) for p in tokens} == {tuple(float(b) for b in TOKEN_BUCKETS)}
