"""What a shadow-mode route would have cost, read back from the cost records.

In shadow mode the router only notes the model it would have chosen (``shadow_model``); the call
goes to the requested model and its record has that attempt's exact token counts. The same
tokens at the shadow model's prices are what the route would have cost -- the saving to expect
from turning routing on (the answers, and so the output tokens, of another model would differ:
this is the estimate at equal usage, the same convention as the router's own ``savings``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs

from ..._call import Usage
from ...records import CostRecord


def _book(pricing: Any) -> Any:
    if pricing is not None:
        return pricing
    from ... import pricing as default

    return default.default_pricebook()


def shadow_cost(record: CostRecord, pricing: Any = None) -> float | None:
    """The record's usage priced at its ``shadow_model`` (None without one, or when unpriced)."""
    model = record.notes.get("shadow_model")
    if not isinstance(model, str):
        return None
    usage = Usage(
        input_tokens=record.input_tokens,
        output_tokens=record.output_tokens,
        cached_read_tokens=record.cached_read_tokens,
        cache_write_tokens=record.cache_write_tokens,
    )
    try:
        cost = _book(pricing).cost(model, usage, provider=record.provider)
    except Exception:  # an unknown or malformed price: no estimate
        return None
    return None if cost is None else float(cost)


@attrs.frozen(kw_only=True)
class ShadowSummary:
    """Over a set of records: what was spent, what the routes would have cost, and the difference."""

    records: int  # records with a shadow decision and both prices
    actual_usd: float
    shadow_usd: float
    rerouted: int  # of those, how many the router would have sent elsewhere

    @property
    def saving_usd(self) -> float:
        return self.actual_usd - self.shadow_usd

    @property
    def saving_ratio(self) -> float:
        return self.saving_usd / self.actual_usd if self.actual_usd > 0 else 0.0


def shadow_summary(records: Iterable[CostRecord], pricing: Any = None) -> ShadowSummary:
    """Add up :func:`shadow_cost` against what the records actually cost."""
    n = rerouted = 0
    actual = shadow = 0.0
    for r in records:
        would = shadow_cost(r, pricing)
        if would is None or r.cost_usd is None:
            continue
        n += 1
        actual += r.cost_usd
        shadow += would
        rerouted += r.notes.get("shadow_model") != r.model
    return ShadowSummary(records=n, actual_usd=actual, shadow_usd=shadow, rerouted=rerouted)


__all__ = ["ShadowSummary", "shadow_cost", "shadow_summary"]
