"""A small, fully known workload: every aggregated number in the report tests is computed by hand.

Costs are binary fractions so sums are exact.

    request  attempt kind       feature  tenant  model         day         cost    saved          notes
    r1       1       call       faq      acme    gpt-4o-mini   2026-11-01  0.25    0.5 (router)
    r2       1       call       faq      globex  gpt-4o-mini   2026-11-01  0.0     -              RateLimitError
    r2       2       retry      faq      globex  gpt-4o-mini   2026-11-01  0.125   -
    r3       1       call       summary  acme    gpt-4o        2026-11-01  1.0     -
    r4       -       cache_hit  faq      acme    gpt-4o-mini   2026-11-01  0.0     0.25 (exact)
    r5       1       call       summary  globex  mystery-1     2026-11-02  None    -              unpriced
    r6       1       call       None     acme    gpt-4o-mini   2026-11-02  0.0625  -
    r6       2       escalation None     acme    gpt-4o        2026-11-02  0.5     -
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from costkit.records import CostRecord

NOV1 = dt.datetime(2026, 11, 1, 10, tzinfo=dt.timezone.utc).timestamp()
NOV2 = dt.datetime(2026, 11, 2, 9, tzinfo=dt.timezone.utc).timestamp()


def _r(request_id: str, **kw: Any) -> CostRecord:
    base: dict[str, Any] = {
        "request_id": request_id,
        "attempt": 1,
        "kind": "call",
        "timestamp": NOV1,
        "provider": "openai",
        "requested_model": "gpt-4o",
        "model": "gpt-4o-mini",
        "tenant": "acme",
        "feature": "faq",
        "input_tokens": 100,
        "output_tokens": 20,
    }
    base.update(kw)
    return CostRecord(**base)


def workload() -> list[CostRecord]:
    return [
        _r("r1", cost_usd=0.25, saved_usd=0.5, savings={"router": 0.5}, route="/ask", cached_read_tokens=50),
        _r(
            "r2",
            tenant="globex",
            cost_usd=0.0,
            success=False,
            error_type="RateLimitError",
            output_tokens=0,
            input_tokens=0,
        ),
        _r("r2", tenant="globex", attempt=2, kind="retry", cost_usd=0.125, timestamp=NOV1 + 1),
        _r("r3", feature="summary", model="gpt-4o", cost_usd=1.0, input_tokens=1000, output_tokens=200),
        _r(
            "r4",
            kind="cache_hit",
            cache="exact",
            attempt=0,
            cost_usd=0.0,
            saved_usd=0.25,
            savings={"exact": 0.25},
            input_tokens=0,
            output_tokens=0,
        ),
        _r(
            "r5",
            feature="summary",
            tenant="globex",
            model="mystery-1",
            requested_model="mystery-1",
            cost_usd=None,
            priced=False,
            timestamp=NOV2,
            provider="litellm",
        ),
        _r("r6", feature=None, cost_usd=0.0625, timestamp=NOV2),
        _r("r6", feature=None, attempt=2, kind="escalation", model="gpt-4o", cost_usd=0.5, timestamp=NOV2 + 2),
    ]


@pytest.fixture
def records() -> list[CostRecord]:
    return workload()


@pytest.fixture
def make_record() -> Callable[..., CostRecord]:
    """One record of the workload's shape; keyword arguments override its fields."""
    return _r
