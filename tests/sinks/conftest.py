"""A factory of realistic CostRecords for the sink tests."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest

from costkit.records import CostRecord

_ids = itertools.count(1)


def _make(**overrides: Any) -> CostRecord:
    n = next(_ids)
    fields: dict[str, Any] = {
        "request_id": f"req-{n}",
        "attempt": 1,
        "kind": "call",
        "timestamp": 1_795_000_000.0 + n,
        "provider": "openai",
        "requested_model": "gpt-4o",
        "model": "gpt-4o-mini",
        "tenant": "acme",
        "user": "u1",
        "feature": "faq",
        "route": "/ask",
        "prompt_version": "v3",
        "input_tokens": 120,
        "output_tokens": 30,
        "cached_read_tokens": 64,
        "cache_write_tokens": 0,
        "cost_usd": 0.000123,
        "priced": True,
        "saved_usd": 0.0015,
        "savings": {"router": 0.0015},
        "cache": "none",
        "success": True,
        "error_type": None,
        "latency_ms": 412.5,
        "usage_estimated": False,
        "notes": {"routed_from": "gpt-4o"},
    }
    fields.update(overrides)
    return CostRecord(**fields)


@pytest.fixture
def make_record() -> Callable[..., CostRecord]:
    return _make


@pytest.fixture
def edge_records() -> list[CostRecord]:
    """Records that exercise what a format must keep exactly: None, float sums, unicode, newlines, tiny floats."""
    return [
        _make(),
        _make(cost_usd=None, priced=False, success=False, error_type="RateLimitError", kind="retry", attempt=2),
        _make(kind="cache_hit", cache="exact", cost_usd=0.0, saved_usd=0.1 + 0.2, savings={"exact": 0.1 + 0.2}),
        _make(kind="cache_hit", cache="semantic", cost_usd=0.0, saved_usd=0.1 + 0.2, savings={"semantic": 0.1 + 0.2}),
        _make(
            tenant=None,
            feature=None,
            user=None,
            notes={"clamped": {"max_tokens": [4096, 800]}, "u": "é✓"},
            prompt_text="hi\nthere",
            completion_text="ok",
            usage_estimated=True,
            latency_ms=1e-9,
        ),
    ]
