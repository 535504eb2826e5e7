from __future__ import annotations

import sys

import pytest
from prometheus_client import CollectorRegistry, Counter, generate_latest

from costkit.errors import ConfigError
from costkit.sinks import PrometheusSink

L = {"tenant": "acme", "feature": "faq", "model": "gpt-4o-mini", "provider": "openai", "route": "/ask"}


def test_costs_tokens_calls_latency_by_label(make_record) -> None:
    reg = CollectorRegistry()
    sink = PrometheusSink(registry=reg, background=False)
    sink.emit(make_record(cost_usd=0.25, latency_ms=300.0, savings={"router": 0.5}, saved_usd=0.5))
    sink.emit(
        make_record(
            cost_usd=0.125,
            latency_ms=2000.0,
            savings={},
            saved_usd=0.0,
            success=False,
            error_type="APITimeoutError",
            kind="retry",
            attempt=2,
        )
    )
    sink.emit(
        make_record(
            kind="cache_hit",
            cache="exact",
            cost_usd=0.0,
            savings={"exact": 1.0},
            saved_usd=1.0,
            input_tokens=0,
            output_tokens=0,
            cached_read_tokens=0,
        )
    )
    sink.emit(make_record(tenant="globex", cost_usd=None, priced=False, savings={}, saved_usd=0.0))
    get = reg.get_sample_value
    assert get("costkit_cost_usd_total", L) == 0.375
    assert get("costkit_saved_usd_total", {**L, "layer": "router"}) == 0.5
    assert get("costkit_saved_usd_total", {**L, "layer": "exact"}) == 1.0
    assert get("costkit_tokens_total", {**L, "type": "input"}) == 240
    assert get("costkit_tokens_total", {**L, "type": "output"}) == 60
    assert get("costkit_tokens_total", {**L, "type": "cached_read"}) == 128
    assert get("costkit_tokens_total", {**L, "type": "cache_write"}) is None
    assert get("costkit_calls_total", {**L, "kind": "call", "cache": "none", "success": "true"}) == 1
    assert get("costkit_calls_total", {**L, "kind": "retry", "cache": "none", "success": "false"}) == 1
    assert get("costkit_calls_total", {**L, "kind": "cache_hit", "cache": "exact", "success": "true"}) == 1
    assert get("costkit_latency_seconds_count", L) == 2
    assert get("costkit_latency_seconds_sum", L) == 2.3
    assert get("costkit_latency_seconds_bucket", {**L, "le": "0.5"}) == 1
    globex = {**L, "tenant": "globex"}
    assert get("costkit_unpriced_calls_total", globex) == 1
    assert get("costkit_cost_usd_total", globex) is None
    assert (sink.emitted, sink.written, sink.errors) == (4, 4, 0)


def test_custom_labels_and_missing_values(make_record) -> None:
    reg = CollectorRegistry()
    sink = PrometheusSink(registry=reg, namespace="llm", labels=["feature", "prompt_version"], background=False)
    sink.emit(make_record(feature=None, cost_usd=0.5))
    assert reg.get_sample_value("llm_cost_usd_total", {"feature": "", "prompt_version": "v3"}) == 0.5
    assert b"llm_calls_total" in generate_latest(reg)


def test_two_sinks_on_one_registry_share_the_metrics(make_record) -> None:
    reg = CollectorRegistry()
    a, b = PrometheusSink(registry=reg, background=False), PrometheusSink(registry=reg, background=False)
    a.emit(make_record(cost_usd=0.25))
    b.emit(make_record(cost_usd=0.25))
    assert reg.get_sample_value("costkit_cost_usd_total", L) == 0.5


def test_clash_with_existing_metric_is_a_config_error() -> None:
    reg = CollectorRegistry()
    Counter("costkit_cost_usd", "someone else's", registry=reg)
    with pytest.raises(ConfigError) as err:
        PrometheusSink(registry=reg, background=False)
    assert err.value.field == "registry"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"labels": ["request_id"]}, "labels"),
        ({"labels": ["tenant", "tenant"]}, "labels"),
        ({"namespace": "9bad"}, "namespace"),
        ({"namespace": "bad-name"}, "namespace"),
        ({"latency_buckets": [1.0, 0.5]}, "latency_buckets"),
    ],
)
def test_bad_config(kwargs: dict, field: str) -> None:
    with pytest.raises(ConfigError) as err:
        PrometheusSink(registry=CollectorRegistry(), **kwargs)
    assert err.value.field == field


def test_missing_library_names_the_extra(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    with pytest.raises(ConfigError, match=r"costkit\[prometheus\]"):
        PrometheusSink()


def test_background_mode_updates_after_flush(make_record) -> None:
    reg = CollectorRegistry()
    sink = PrometheusSink(registry=reg)
    for _ in range(4):
        sink.emit(make_record(cost_usd=0.125))
    assert sink.flush(30)
    assert reg.get_sample_value("costkit_cost_usd_total", L) == 0.5
    assert (sink.emitted, sink.written, sink.dropped, sink.errors) == (4, 4, 0, 0)
    sink.close()


def test_outcomes_by_feature_experiment_and_arm_never_by_task(make_record) -> None:
    from costkit.outcomes import make_outcome

    reg = CollectorRegistry()
    sink = PrometheusSink(registry=reg, labels=("feature", "experiment", "arm"), background=False)
    sink.emit(make_record(task="t-1", experiment="prompt", arm="v2", cost_usd=0.5))
    sink.emit(make_record(task="t-2", experiment="prompt", arm="control", cost_usd=0.25))
    for task, ok, value in (("t-1", True, 3.0), ("t-2", False, None), ("t-9", True, None)):
        sink.emit_outcome(make_outcome(task, success=ok, value=value))
    get = reg.get_sample_value
    v2, control = ({"feature": "faq", "experiment": "prompt", "arm": a} for a in ("v2", "control"))
    assert get("costkit_cost_usd_total", v2) == 0.5 and get("costkit_cost_usd_total", control) == 0.25
    assert get("costkit_task_outcomes_total", {**v2, "success": "true"}) == 1
    assert get("costkit_task_outcomes_total", {**control, "success": "false"}) == 1
    unknown = {"feature": "", "experiment": "", "arm": "", "success": "true"}
    assert get("costkit_task_outcomes_total", unknown) == 1  # a task whose records this process never saw
    assert get("costkit_task_value_total", v2) == 3.0
    assert "t-1" not in generate_latest(reg).decode()
