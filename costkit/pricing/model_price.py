"""ModelPrice: the price sheet of one model, and what a usage costs on it."""

from __future__ import annotations

from datetime import datetime

import attrs

from .._call import Usage
from ._common import (
    _PER_MILLION,
    SERVICE_TIER_SUFFIXES,
    _check_limit,
    _check_rate,
    _check_required_rate,
)
from .rates import OffPeak, RangeTier, Rates, ThresholdTier


@attrs.frozen(kw_only=True, slots=True)
class ModelPrice:
    """The price sheet of one model: per-token USD rates and the limits the map records.

    ``cache_read_per_token`` / ``cache_write_per_token`` of ``None`` mean the provider publishes no
    cache price: those tokens bill at the input rate. ``batch_*`` of ``None`` mean half the
    standard rate (LiteLLM's convention). ``tiers`` are the long-context thresholds, ascending;
    ``range_tiers`` a pick-one table chosen by prompt size.
    """

    model: str
    provider: str | None = None
    input_per_token: float = attrs.field(default=0.0, validator=_check_required_rate)
    output_per_token: float = attrs.field(default=0.0, validator=_check_required_rate)
    cache_read_per_token: float | None = attrs.field(default=None, validator=_check_rate)
    cache_write_per_token: float | None = attrs.field(default=None, validator=_check_rate)
    batch_input_per_token: float | None = attrs.field(default=None, validator=_check_rate)
    batch_output_per_token: float | None = attrs.field(default=None, validator=_check_rate)
    batch_cache_read_per_token: float | None = attrs.field(default=None, validator=_check_rate)
    batch_cache_write_per_token: float | None = attrs.field(default=None, validator=_check_rate)
    tiers: tuple[ThresholdTier, ...] = attrs.field(
        default=(), converter=lambda ts: tuple(sorted(ts, key=lambda t: t.above_tokens))
    )
    tiers_inclusive: bool = False
    range_tiers: tuple[RangeTier, ...] = attrs.field(
        default=(), converter=lambda ts: tuple(sorted(ts, key=lambda t: t.start))
    )
    off_peak: OffPeak | None = None
    service_tiers: tuple[tuple[str, ModelPrice], ...] = ()
    max_input_tokens: int | None = attrs.field(default=None, validator=_check_limit)
    max_output_tokens: int | None = attrs.field(default=None, validator=_check_limit)
    supports_function_calling: bool = False
    supports_vision: bool = False
    supports_response_schema: bool = False
    supports_prompt_caching: bool = False
    mode: str = "chat"
    source: str = "litellm"  # litellm | override | self_hosted
    _flat: Rates = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        flat = Rates.billed(
            self.input_per_token, self.output_per_token, self.cache_read_per_token, self.cache_write_per_token
        )
        object.__setattr__(self, "_flat", flat)

    # -- per-million views (what price pages print)
    @property
    def input_per_million(self) -> float:
        return self.input_per_token * _PER_MILLION

    @property
    def output_per_million(self) -> float:
        return self.output_per_token * _PER_MILLION

    def rates(self, input_tokens: int = 0, *, batch: bool = False, at: datetime | None = None) -> Rates:
        """The rates a request with ``input_tokens`` prompt tokens (cached included) bills at.

        ``at`` matters only for models with off-peak pricing (default: now, UTC).
        """
        if batch:
            return self._batch_rates(input_tokens)
        rates = self._standard_rates(input_tokens)
        if self.off_peak is not None and self.off_peak.is_open(at):
            read_missing, write_missing = self._cache_rates_missing(input_tokens)
            return self.off_peak.apply(rates, read_missing, write_missing)
        return rates

    def cost(
        self, usage: Usage, batch: bool = False, *, at: datetime | None = None, service_tier: str | None = None
    ) -> float:
        """USD for one attempt with this usage (see the module docstring for the billing rules).

        ``service_tier`` is the tier the provider served (``flex``, ``priority`` ...; ``auto``,
        ``default`` and unknown tiers bill at the standard rates).
        """
        if service_tier is not None and self.service_tiers:
            tiered = self.for_service_tier(service_tier)
            if tiered is not self:
                return tiered.cost(usage, batch, at=at)
        if not batch and not self.tiers and not self.range_tiers and self.off_peak is None:
            return self._flat.cost(usage)
        return self.rates(usage.input_tokens, batch=batch, at=at).cost(usage)

    def for_service_tier(self, service_tier: str | None) -> ModelPrice:
        """This model's price sheet under ``service_tier`` (itself when the map has no such tier)."""
        if not service_tier or not self.service_tiers:
            return self
        suffix = SERVICE_TIER_SUFFIXES.get(service_tier.lower())
        for name, price in self.service_tiers:
            if name == suffix:
                return price
        return self

    def _cache_rates_missing(self, input_tokens: int) -> tuple[bool, bool]:
        """Whether the cache-read / cache-write rate of this request is unpublished (then it follows input)."""
        if self.range_tiers and self._range_tier(input_tokens) is not None:
            return False, False
        read, write = self.cache_read_per_token is None, self.cache_write_per_token is None
        for step in self.tiers:
            if not self._crosses(input_tokens, step.above_tokens):
                break
            read = read and step.cache_read_per_token is None
            write = write and step.cache_write_per_token is None
        return read, write

    def _standard_rates(self, input_tokens: int) -> Rates:
        if self.range_tiers:
            tier = self._range_tier(input_tokens)
            if tier is not None:
                out = self.output_per_token if tier.output_per_token is None else tier.output_per_token
                return Rates.billed(tier.input_per_token, out, tier.cache_read_per_token, tier.cache_write_per_token)
        if not self.tiers or not self._crosses(input_tokens, self.tiers[0].above_tokens):
            return self._flat
        inp, out = self.input_per_token, self.output_per_token
        read, write = self.cache_read_per_token, self.cache_write_per_token
        for step in self.tiers:
            if not self._crosses(input_tokens, step.above_tokens):
                break
            inp = inp if step.input_per_token is None else step.input_per_token
            out = out if step.output_per_token is None else step.output_per_token
            read = read if step.cache_read_per_token is None else step.cache_read_per_token
            write = write if step.cache_write_per_token is None else step.cache_write_per_token
        return Rates.billed(inp, out, read, write)

    def worst_case_cost(
        self,
        input_tokens: int,
        max_output_tokens: int | None = None,
        *,
        batch: bool = False,
        service_tier: str | None = None,
    ) -> float:
        """The most a call can cost: every prompt token uncached, every allowed output token used."""
        output = self.max_output_tokens if max_output_tokens is None else max_output_tokens
        usage = Usage(input_tokens=input_tokens, output_tokens=output or 0)
        return self.cost(usage, batch=batch, service_tier=service_tier)

    # -- internals
    def _crosses(self, input_tokens: int, threshold: int) -> bool:
        return input_tokens > threshold or (self.tiers_inclusive and input_tokens == threshold)

    def _range_tier(self, input_tokens: int) -> RangeTier | None:
        if input_tokens <= 0:
            return None
        for tier in self.range_tiers:
            if tier.start < input_tokens <= tier.end:
                return tier
        return self.range_tiers[-1]

    def _batch_tier_rate(self, input_tokens: int, field: str, flat: float | None) -> float | None:
        for tier in reversed(self.tiers):
            value = getattr(tier, field)
            if value is not None and self._crosses(input_tokens, tier.above_tokens):
                return float(value)
        return flat

    def _batch_rates(self, input_tokens: int) -> Rates:
        b_in = self._batch_tier_rate(input_tokens, "batch_input_per_token", self.batch_input_per_token)
        b_out = self._batch_tier_rate(input_tokens, "batch_output_per_token", self.batch_output_per_token)
        out = self.output_per_token / 2 if b_out is None else b_out
        if b_in is None:
            half = self.input_per_token / 2
            read = half if self.cache_read_per_token is None else self.cache_read_per_token / 2
            write = half if self.cache_write_per_token is None else self.cache_write_per_token / 2
            return Rates(half, out, read, write)
        b_read = self._batch_tier_rate(input_tokens, "batch_cache_read_per_token", self.batch_cache_read_per_token)
        b_write = self._batch_tier_rate(input_tokens, "batch_cache_write_per_token", self.batch_cache_write_per_token)
        return Rates.billed(b_in, out, b_read, b_write)
