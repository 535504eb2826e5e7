"""PrometheusSink: cost, savings, tokens, calls and latency as Prometheus metrics.

Metrics (``costkit`` is the default namespace; ``L`` is the configured labels)::

    costkit_cost_usd_total{L}                       what calls cost (priced records)
    costkit_saved_usd_total{L, layer}               what each layer saved
    costkit_tokens_total{L, type}                   type: input | output | cached_read | cache_write
    costkit_calls_total{L, kind, cache, success}    provider attempts and cache hits
    costkit_unpriced_calls_total{L}                 records whose model had no known price
    costkit_latency_seconds{L}                      histogram of provider attempts' latency
    costkit_task_outcomes_total{feature, experiment, arm, success}   task outcomes
    costkit_task_value_total{feature, experiment, arm}               the outcomes' values, summed

``experiment`` and ``arm`` may also be among ``L``: they are bounded label sets. A task id never
is a label (one time series per task would grow without bound): outcomes are labelled with the
feature, experiment and arm of their task's records, remembered for the most recent tasks.

Every label multiplies the number of time series: tenants x features x models x providers x
routes, times the extra labels above (and the buckets of the histogram). The default labels
suit tens of tenants and features; for thousands of tenants drop ``tenant`` from ``labels``.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable
from typing import Any

from ..errors import ConfigError
from ..outcomes import Outcome
from ..records import CostRecord
from ._tasks import TaskMemory
from .background import DeferredSink

LABEL_FIELDS = (
    *("tenant", "user", "feature", "route", "prompt_version", "model", "requested_model", "provider"),
    *("experiment", "arm"),
)
OUTCOME_LABELS = ("feature", "experiment", "arm")
DEFAULT_LABELS = ("tenant", "feature", "model", "provider", "route")
DEFAULT_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
_TOKEN_TYPES = (
    ("input", "input_tokens"),
    ("output", "output_tokens"),
    ("cached_read", "cached_read_tokens"),
    ("cache_write", "cache_write_tokens"),
)

# registry -> (namespace, labels) -> metrics: a second sink on the same registry reuses them
# instead of failing with "Duplicated timeseries".
_shared: weakref.WeakKeyDictionary[Any, dict[tuple[str, tuple[str, ...]], dict[str, Any]]] = weakref.WeakKeyDictionary()
_shared_lock = threading.Lock()


def _require_prometheus() -> Any:
    try:
        import prometheus_client
    except ImportError:
        raise ConfigError(
            "prometheus_client", "PrometheusSink needs prometheus-client: pip install 'costkit[prometheus]'"
        ) from None
    return prometheus_client


class PrometheusSink(DeferredSink):
    """Count what records report into Prometheus metrics on ``registry`` (default: the global one).

    With ``background=True`` (default) ``emit`` only enqueues (bounded by ``max_queue``) and a
    costkit thread updates the metrics, so a scrape sees a record at most ~0.2 s after it.
    """

    def __init__(
        self,
        *,
        registry: Any = None,
        namespace: str = "costkit",
        labels: Iterable[str] = DEFAULT_LABELS,
        latency_buckets: Iterable[float] = DEFAULT_LATENCY_BUCKETS,
        background: bool = True,
        max_queue: int = 10_000,
    ) -> None:
        prom = _require_prometheus()
        label_names = tuple(labels)
        for name in label_names:
            if name not in LABEL_FIELDS:
                raise ConfigError("labels", f"{name!r} is not one of {', '.join(LABEL_FIELDS)}")
        if len(set(label_names)) != len(label_names):
            raise ConfigError("labels", f"duplicate label in {label_names}")
        if not namespace or not namespace.replace("_", "a").isalnum() or namespace[0].isdigit():
            raise ConfigError("namespace", f"{namespace!r} is not a valid Prometheus metric prefix")
        buckets = tuple(float(b) for b in latency_buckets)
        if not buckets or list(buckets) != sorted(set(buckets)):
            raise ConfigError("latency_buckets", "expected increasing bucket bounds")
        self._init_deferred(background=background, max_queue=max_queue, name="PrometheusSink")
        self.registry = registry if registry is not None else prom.REGISTRY
        self.namespace = namespace
        self.labels = label_names
        key = (namespace, label_names)
        with _shared_lock:
            per_registry = _shared.setdefault(self.registry, {})
            metrics = per_registry.get(key)
            if metrics is None:
                try:
                    metrics = self._create(prom, buckets)
                except ValueError as exc:  # same names already registered with other labels
                    raise ConfigError("registry", f"{exc}; use another namespace or registry") from None
                per_registry[key] = metrics
        self._m = metrics
        self._tasks = TaskMemory()

    def _create(self, prom: Any, buckets: tuple[float, ...]) -> dict[str, Any]:
        common = {"namespace": self.namespace, "registry": self.registry}
        L = list(self.labels)
        return {
            "cost": prom.Counter("cost_usd", "What LLM calls cost, in USD.", L, **common),
            "saved": prom.Counter("saved_usd", "What costkit's layers saved, in USD.", [*L, "layer"], **common),
            "tokens": prom.Counter("tokens", "Tokens by type.", [*L, "type"], **common),
            "calls": prom.Counter(
                "calls", "Provider attempts and cache hits.", [*L, "kind", "cache", "success"], **common
            ),
            "unpriced": prom.Counter("unpriced_calls", "Records whose model had no known price.", L, **common),
            "latency": prom.Histogram("latency_seconds", "Latency of provider attempts.", L, buckets=buckets, **common),
            "outcomes": prom.Counter(
                "task_outcomes", "Task outcomes, by success and experiment arm.", [*OUTCOME_LABELS, "success"], **common
            ),
            "value": prom.Counter("task_value", "The task outcomes' values, summed.", list(OUTCOME_LABELS), **common),
        }

    def _handle(self, record: CostRecord, _extra: Any) -> None:
        self._tasks.note(record)
        self._observe(record)

    def _handle_outcome(self, outcome: Outcome) -> None:
        values = [v or "" for v in self._tasks.labels(outcome.task)]
        self._m["outcomes"].labels(*values, "true" if outcome.success else "false").inc()
        if outcome.value is not None:
            self._m["value"].labels(*values).inc(outcome.value)

    def _observe(self, record: CostRecord) -> None:
        values = [getattr(record, name) or "" for name in self.labels]
        m = self._m
        if record.cost_usd:
            m["cost"].labels(*values).inc(record.cost_usd)
        if not record.priced or record.cost_usd is None:
            m["unpriced"].labels(*values).inc()
        for layer, usd in record.savings.items():
            if usd > 0:
                m["saved"].labels(*values, layer).inc(usd)
        for type_, field in _TOKEN_TYPES:
            n = getattr(record, field)
            if n:
                m["tokens"].labels(*values, type_).inc(n)
        m["calls"].labels(*values, record.kind, record.cache, "true" if record.success else "false").inc()
        if record.cache == "none" and record.kind != "cache_hit":
            m["latency"].labels(*values).observe(record.latency_ms / 1000.0)

    def __repr__(self) -> str:
        return f"PrometheusSink(namespace={self.namespace!r}, labels={self.labels})"


__all__ = ["DEFAULT_LABELS", "DEFAULT_LATENCY_BUCKETS", "LABEL_FIELDS", "OUTCOME_LABELS", "PrometheusSink"]
