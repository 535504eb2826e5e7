"""What a call costs: per-token prices from LiteLLM's bundled model cost map, plus user overrides.

The map (``litellm/model_prices_and_context_window_backup.json`` in LiteLLM's wheel) is read
*without importing litellm* (which takes seconds and may fetch the map from the network): the
package directory is located with ``importlib.util.find_spec`` and the JSON is parsed once, on
first use. Each entry becomes a frozen :class:`ModelPrice` only when it is first looked up, and
lookups are memoized, so pricing a call is a dict hit plus a few multiplications.

Billing follows LiteLLM's own rules so the numbers agree with ``litellm.completion_cost``:

* ``Usage.input_tokens`` includes cached tokens: the uncached remainder bills at the input rate,
  cache reads at the cache-read rate, cache writes at the cache-write rate (a missing cache rate
  means the provider bills those tokens as ordinary input);
* long-context tiers (``*_above_200k_tokens`` ...): once the prompt exceeds a threshold, every
  token of the request bills at that tier's rates (xAI bills from the threshold itself);
* range tables (``tiered_pricing``, e.g. Alibaba's Qwen): one tier is chosen by the prompt size
  and bills the whole request;
* off-peak (``off_peak_pricing``, e.g. DeepSeek V4): time-of-day rates replace the standard ones;
* service tiers (``flex``, ``priority`` ...): the map's ``*_flex`` / ``*_priority`` keys, each
  falling back to the standard key;
* batch: ``*_batches`` rates when the map has them, half the standard rates otherwise.

docs/pricing.md lists where costkit knowingly differs from litellm, and why.
"""

from __future__ import annotations

import functools
import importlib.util
import inspect
import json
import math
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timezone, tzinfo
from typing import Any, Concatenate, Final, ParamSpec, TypeVar

import attrs

from ._call import Usage
from ._warn import warn_once
from .errors import ConfigError

_PER_MILLION: Final = 1_000_000.0
# Providers whose long-context threshold is inclusive (the tier applies from exactly N tokens).
_INCLUSIVE_THRESHOLD_PROVIDERS: Final = frozenset({"xai"})
# Call.provider values that say which SDK was wrapped, not who serves the model.
_NEUTRAL_PROVIDERS: Final = frozenset({"", "litellm", "custom", "fake"})
_RATE_PREFIXES: Final = (
    "input_cost_per_token",
    "output_cost_per_token",
    "cache_read_input_token_cost",
    "cache_creation_input_token_cost",
)
_THRESHOLD_KEY: Final = re.compile(
    r"^(input_cost_per_token|output_cost_per_token|cache_read_input_token_cost|cache_creation_input_token_cost)"
    r"_above_(\d+(?:\.\d+)?)(k?)_tokens(_batches)?$"
)
_DATE_SUFFIX: Final = re.compile(r"^(.*?)(?:-|@)(\d{4}-\d{2}-\d{2}|\d{8})(?:-v\d+(?::\d+)?)?$")
_LATEST_SUFFIX: Final = "-latest"
_UNSEEN: Final = object()
_FIREWORKS_CACHE_READ_RATIO: Final = 0.5
# service_tier (request or response) -> the cost-map key suffix LiteLLM reads ("fast" bills as priority)
SERVICE_TIER_SUFFIXES: Final = {
    "flex": "flex",
    "balanced": "balanced",
    "priority": "priority",
    "fast": "priority",
    "ultrafast": "ultrafast",
}


# ----------------------------------------------------------------------------------------- validation


def _rate(field: str, value: Any, *, optional: bool = False) -> float | None:
    """A per-token (or per-million) price: a finite, non-negative real number."""
    if value is None:
        if optional:
            return None
        raise ConfigError(field, "a price is required")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(field, f"must be a number, got {type(value).__name__}")
    number = float(value)
    if math.isnan(number) or math.isinf(number):
        raise ConfigError(field, f"must be finite, got {value!r}")
    if number < 0:
        raise ConfigError(field, f"must be >= 0, got {value!r}")
    return number


def _positive(field: str, value: Any) -> float:
    number = _rate(field, value)
    assert number is not None
    if number <= 0:
        raise ConfigError(field, f"must be > 0, got {value!r}")
    return number


def _token_limit(field: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise ConfigError(field, f"must be a positive integer or None, got {value!r}")
    return int(value)


def _check_rate(_inst: Any, attr: attrs.Attribute[Any], value: Any) -> None:
    _rate(attr.name, value, optional=True)


def _check_required_rate(_inst: Any, attr: attrs.Attribute[Any], value: Any) -> None:
    _rate(attr.name, value)


def _check_limit(_inst: Any, attr: attrs.Attribute[Any], value: Any) -> None:
    _token_limit(attr.name, value)


# ----------------------------------------------------------------------------------------- values


@attrs.frozen(slots=True)
class Rates:
    """The four per-token rates one request bills at (tier, batch and cache fallbacks resolved)."""

    input: float
    output: float
    cache_read: float
    cache_write: float

    def cost(self, usage: Usage) -> float:
        return (
            usage.uncached_input_tokens * self.input
            + usage.cached_read_tokens * self.cache_read
            + usage.cache_write_tokens * self.cache_write
            + usage.output_tokens * self.output
        )


@attrs.frozen(kw_only=True, slots=True)
class ThresholdTier:
    """Long-context rates that replace the base rates once the prompt exceeds ``above_tokens``.

    ``None`` means "keep the rate of the tier below". The ``batch_*`` rates are the map's
    ``*_above_N_tokens_batches`` keys.
    """

    above_tokens: int
    input_per_token: float | None = attrs.field(default=None, validator=_check_rate)
    output_per_token: float | None = attrs.field(default=None, validator=_check_rate)
    cache_read_per_token: float | None = attrs.field(default=None, validator=_check_rate)
    cache_write_per_token: float | None = attrs.field(default=None, validator=_check_rate)
    batch_input_per_token: float | None = attrs.field(default=None, validator=_check_rate)
    batch_output_per_token: float | None = attrs.field(default=None, validator=_check_rate)
    batch_cache_read_per_token: float | None = attrs.field(default=None, validator=_check_rate)
    batch_cache_write_per_token: float | None = attrs.field(default=None, validator=_check_rate)


@attrs.frozen(kw_only=True, slots=True)
class RangeTier:
    """One row of a ``tiered_pricing`` table: it bills a whole request whose prompt is in (start, end]."""

    start: float
    end: float
    input_per_token: float = attrs.field(validator=_check_required_rate)
    output_per_token: float | None = attrs.field(default=None, validator=_check_rate)
    cache_read_per_token: float | None = attrs.field(default=None, validator=_check_rate)
    cache_write_per_token: float | None = attrs.field(default=None, validator=_check_rate)


_WEEKDAYS: Final = {
    "mon": 1, "monday": 1, "tue": 2, "tues": 2, "tuesday": 2, "wed": 3, "wednesday": 3,
    "thu": 4, "thur": 4, "thurs": 4, "thursday": 4, "fri": 5, "friday": 5,
    "sat": 6, "saturday": 6, "sun": 7, "sunday": 7,
}  # fmt: skip


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.strip().split(":")
    h, m = int(hours), int(minutes)
    if not (0 <= h < 24 and 0 <= m < 60):
        raise ValueError(hhmm)
    return h * 60 + m


def _parse_windows(value: Any) -> tuple[tuple[int, int], ...]:
    """``"HH:MM-HH:MM"`` (UTC) strings -> (start, end) minutes; malformed windows are skipped."""
    items = (value,) if isinstance(value, str) else value if isinstance(value, Sequence) else ()
    windows = []
    for item in items:
        if not isinstance(item, str) or item.count("-") != 1:
            continue
        start, end = item.split("-")
        try:
            windows.append((_minutes(start), _minutes(end)))
        except ValueError:
            continue
    return tuple(windows)


def _in_windows(windows: tuple[tuple[int, int], ...], minute: int) -> bool:
    # start inclusive, end exclusive; a window may wrap past midnight; start == end is the whole day
    return any((start <= minute < end) if start < end else (minute >= start or minute < end) for start, end in windows)


@functools.lru_cache(maxsize=32)
def _calendar(name: str | None) -> tzinfo:
    """The calendar weekdays are read in (an IANA zone name; UTC when absent or unknown)."""
    if name:
        try:
            from zoneinfo import ZoneInfo

            return ZoneInfo(name)
        except (ValueError, KeyError, OSError):
            return timezone.utc
    return timezone.utc


@attrs.frozen(kw_only=True, slots=True)
class OffPeak:
    """Time-of-day rates (``off_peak_pricing``, e.g. DeepSeek's discount hours) that replace the
    standard ones while a window is open. ``rules`` pair ISO weekdays (1 = Monday, read in
    ``weekday_timezone``; None = every day) with UTC windows in minutes.
    """

    input_per_token: float | None = attrs.field(default=None, validator=_check_rate)
    output_per_token: float | None = attrs.field(default=None, validator=_check_rate)
    cache_read_per_token: float | None = attrs.field(default=None, validator=_check_rate)
    cache_write_per_token: float | None = attrs.field(default=None, validator=_check_rate)
    rules: tuple[tuple[frozenset[int] | None, tuple[tuple[int, int], ...]], ...] = ()
    weekday_timezone: str | None = None

    def is_open(self, at: datetime | None = None) -> bool:
        """Whether the off-peak rates apply at ``at`` (default: now). A naive ``at`` is taken as UTC."""
        if at is None:
            now = time.time()  # cheaper than datetime.now() on the per-call path
            minute = int(now // 60) % 1440
            utc: datetime | None = None
        else:
            utc = at.astimezone(timezone.utc) if at.tzinfo is not None else at.replace(tzinfo=timezone.utc)
            minute = utc.hour * 60 + utc.minute
        weekday: int | None = None
        for days, windows in self.rules:
            if days is not None:
                if weekday is None:
                    if utc is None and self.weekday_timezone is None:
                        weekday = (int(now // 86400) + 3) % 7 + 1  # 1970-01-01 was a Thursday (ISO 4)
                    else:
                        if utc is None:
                            utc = datetime.fromtimestamp(now, timezone.utc)
                        weekday = utc.astimezone(_calendar(self.weekday_timezone)).isoweekday()
                if weekday not in days:
                    continue
            if _in_windows(windows, minute):
                return True
        return False

    def apply(self, rates: Rates, read_missing: bool, write_missing: bool) -> Rates:
        """Swap in the off-peak rates; cache rates the model lacks follow the off-peak input rate."""
        inp = rates.input if self.input_per_token is None else self.input_per_token
        read = rates.cache_read if not read_missing else inp
        write = rates.cache_write if not write_missing else inp
        return Rates(
            inp,
            rates.output if self.output_per_token is None else self.output_per_token,
            read if self.cache_read_per_token is None else self.cache_read_per_token,
            write if self.cache_write_per_token is None else self.cache_write_per_token,
        )


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
        inp = self.input_per_token
        flat = Rates(
            inp,
            self.output_per_token,
            inp if self.cache_read_per_token is None else self.cache_read_per_token,
            inp if self.cache_write_per_token is None else self.cache_write_per_token,
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
                t_in = tier.input_per_token
                return Rates(
                    t_in,
                    self.output_per_token if tier.output_per_token is None else tier.output_per_token,
                    t_in if tier.cache_read_per_token is None else tier.cache_read_per_token,
                    t_in if tier.cache_write_per_token is None else tier.cache_write_per_token,
                )
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
        return Rates(inp, out, inp if read is None else read, inp if write is None else write)

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
        return Rates(b_in, out, b_in if b_read is None else b_read, b_in if b_write is None else b_write)


# ----------------------------------------------------------------------------------------- the cost map


def _map_float(entry: Mapping[str, Any], key: str) -> float | None:
    value = entry.get(key)
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) and value >= 0 else None
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
        return number if math.isfinite(number) and number >= 0 else None
    return None


def _map_int(entry: Mapping[str, Any], key: str) -> int | None:
    value = entry.get(key)
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value > 0:
        return int(value)
    return None


def _threshold_tiers(entry: Mapping[str, Any]) -> tuple[ThresholdTier, ...]:
    found: dict[int, dict[str, float]] = {}
    names = {
        ("input_cost_per_token", False): "input_per_token",
        ("output_cost_per_token", False): "output_per_token",
        ("cache_read_input_token_cost", False): "cache_read_per_token",
        ("cache_creation_input_token_cost", False): "cache_write_per_token",
        ("input_cost_per_token", True): "batch_input_per_token",
        ("output_cost_per_token", True): "batch_output_per_token",
        ("cache_read_input_token_cost", True): "batch_cache_read_per_token",
        ("cache_creation_input_token_cost", True): "batch_cache_write_per_token",
    }
    for key in entry:
        if "_above_" not in key:
            continue
        match = _THRESHOLD_KEY.match(key)
        if match is None:
            continue
        value = _map_float(entry, key)
        if value is None:
            continue
        prefix, number, kilo, batches = match.groups()
        threshold = int(float(number) * (1000 if kilo else 1))
        found.setdefault(threshold, {})[names[(prefix, batches is not None)]] = value
    return tuple(ThresholdTier(above_tokens=t, **rates) for t, rates in sorted(found.items()))


def _range_tiers(entry: Mapping[str, Any]) -> tuple[RangeTier, ...]:
    table = entry.get("tiered_pricing")
    if not isinstance(table, list):
        return ()
    tiers = []
    for row in table:
        if not isinstance(row, Mapping):
            continue
        bounds = row.get("range")
        rate_in = _map_float(row, "input_cost_per_token")
        if not isinstance(bounds, list | tuple) or len(bounds) != 2 or rate_in is None:
            continue
        tiers.append(
            RangeTier(
                start=float(bounds[0]),
                end=float(bounds[1]),
                input_per_token=rate_in,
                output_per_token=_map_float(row, "output_cost_per_token"),
                cache_read_per_token=_map_float(row, "cache_read_input_token_cost"),
                cache_write_per_token=_map_float(row, "cache_creation_input_token_cost"),
            )
        )
    return tuple(tiers)


def _off_peak(entry: Mapping[str, Any]) -> OffPeak | None:
    block = entry.get("off_peak_pricing")
    if not isinstance(block, Mapping):
        return None
    rules: list[tuple[frozenset[int] | None, tuple[tuple[int, int], ...]]] = []
    flat = _parse_windows(block.get("hours_utc"))
    if flat:
        rules.append((None, flat))
    windows = block.get("windows")
    if isinstance(windows, Sequence) and not isinstance(windows, str):
        for rule in windows:
            if not isinstance(rule, Mapping):
                continue
            hours = _parse_windows(rule.get("hours_utc"))
            if not hours:
                continue
            days: frozenset[int] | None = None
            raw_days = rule.get("weekdays")
            if raw_days is not None:
                if isinstance(raw_days, str) or not isinstance(raw_days, Sequence):
                    continue
                days = frozenset(
                    d
                    for d in (
                        _WEEKDAYS.get(x.strip().lower())
                        if isinstance(x, str)
                        else x
                        if isinstance(x, int) and not isinstance(x, bool) and 1 <= x <= 7
                        else None
                        for x in raw_days
                    )
                    if d is not None
                )
            rules.append((days, hours))
    tz = block.get("weekday_timezone")
    return OffPeak(
        input_per_token=_map_float(block, "input_cost_per_token"),
        output_per_token=_map_float(block, "output_cost_per_token"),
        cache_read_per_token=_map_float(block, "cache_read_input_token_cost"),
        cache_write_per_token=_map_float(block, "cache_creation_input_token_cost"),
        rules=tuple(rules),
        weekday_timezone=tz.strip() if isinstance(tz, str) and tz.strip() else None,
    )


def _service_tier_entries(entry: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """For each service tier the entry prices, the entry as that tier sees it.

    LiteLLM reads ``<key>_<tier>`` and falls back to ``<key>`` (thresholds included:
    ``input_cost_per_token_above_200k_tokens_priority``), so a tier's view is the entry with its
    suffixed keys written over the plain ones.
    """
    views = []
    for suffix in sorted(set(SERVICE_TIER_SUFFIXES.values())):
        ending = f"_{suffix}"
        own = {
            key[: -len(ending)]: value
            for key, value in entry.items()
            if key.endswith(ending) and key.startswith(_RATE_PREFIXES) and value is not None
        }
        if own:
            views.append((suffix, {**entry, **own}))
    return views


def _with_fireworks_cache_default(entry: Mapping[str, Any]) -> Mapping[str, Any]:
    """LiteLLM's default for Fireworks: cached prompt tokens bill at half the input rate (off-peak too)."""
    base_in = _map_float(entry, "input_cost_per_token")
    if entry.get("cache_read_input_token_cost") is not None or base_in is None:
        return entry
    read = base_in * _FIREWORKS_CACHE_READ_RATIO
    patched: dict[str, Any] = {**entry, "cache_read_input_token_cost": read}
    off_peak = entry.get("off_peak_pricing")
    if isinstance(off_peak, Mapping) and "cache_read_input_token_cost" not in off_peak:
        off_in = _map_float(off_peak, "input_cost_per_token")
        patched["off_peak_pricing"] = {
            **off_peak,
            "cache_read_input_token_cost": read if off_in is None else off_in * _FIREWORKS_CACHE_READ_RATIO,
        }
    return patched


def price_from_map_entry(model: str, entry: Mapping[str, Any], *, _with_tiers: bool = True) -> ModelPrice:
    """Turn one entry of LiteLLM's cost map into a :class:`ModelPrice` (unknown keys are ignored)."""
    provider = entry.get("litellm_provider")
    if provider == "fireworks_ai" and _with_tiers:
        entry = _with_fireworks_cache_default(entry)
    views = _service_tier_entries(entry) if _with_tiers else []
    service_tiers = tuple((name, price_from_map_entry(model, view, _with_tiers=False)) for name, view in views)
    cache_read = _map_float(entry, "cache_read_input_token_cost")
    max_input = _map_int(entry, "max_input_tokens")
    max_output = _map_int(entry, "max_output_tokens")
    return ModelPrice(
        model=model,
        provider=provider if isinstance(provider, str) else None,
        input_per_token=_map_float(entry, "input_cost_per_token") or 0.0,
        output_per_token=_map_float(entry, "output_cost_per_token") or 0.0,
        cache_read_per_token=cache_read,
        cache_write_per_token=_map_float(entry, "cache_creation_input_token_cost"),
        batch_input_per_token=_map_float(entry, "input_cost_per_token_batches"),
        batch_output_per_token=_map_float(entry, "output_cost_per_token_batches"),
        batch_cache_read_per_token=_map_float(entry, "cache_read_input_token_cost_batches"),
        batch_cache_write_per_token=_map_float(entry, "cache_creation_input_token_cost_batches"),
        tiers=_threshold_tiers(entry),
        tiers_inclusive=provider in _INCLUSIVE_THRESHOLD_PROVIDERS,
        range_tiers=_range_tiers(entry),
        off_peak=_off_peak(entry),
        service_tiers=service_tiers,
        max_input_tokens=max_input,
        max_output_tokens=max_output if max_output is not None else _map_int(entry, "max_tokens"),
        supports_function_calling=bool(entry.get("supports_function_calling", False)),
        supports_vision=bool(entry.get("supports_vision", False)),
        supports_response_schema=bool(entry.get("supports_response_schema", False)),
        supports_prompt_caching=bool(entry.get("supports_prompt_caching", False)),
        mode=str(entry.get("mode") or "chat"),
        source="litellm",
    )


def litellm_cost_map_path() -> str | None:
    """Where LiteLLM's bundled cost map is, found without importing (executing) litellm."""
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = os.path.join(folder, "model_prices_and_context_window_backup.json")
        if os.path.exists(path):
            return path
    return None


class CostMap:
    """A LiteLLM-format cost map (model key -> entry), loaded on first use, once, thread-safely."""

    def __init__(self, source: str | Mapping[str, Any] | None = None) -> None:
        self._source = source
        self._entries: dict[str, Mapping[str, Any]] | None = None
        self._lock = threading.Lock()
        self.load_seconds: float | None = None
        self.path: str | None = source if isinstance(source, str) else None

    @property
    def entries(self) -> Mapping[str, Mapping[str, Any]]:
        entries = self._entries
        if entries is None:
            entries = self._load()
        return entries

    def _load(self) -> dict[str, Mapping[str, Any]]:
        with self._lock:
            if self._entries is not None:
                return self._entries
            started = time.perf_counter()
            raw: Any
            if isinstance(self._source, Mapping):
                raw = self._source
            else:
                path = self._source if isinstance(self._source, str) else litellm_cost_map_path()
                self.path = path
                raw = {}
                if path is None:
                    warn_once(
                        "pricing:no-cost-map",
                        "costkit.pricing: LiteLLM's bundled cost map was not found (is litellm installed?); "
                        "no model is priced until you register prices with costkit.pricing.register(...)",
                    )
                else:
                    try:
                        with open(path, encoding="utf-8") as fh:
                            raw = json.load(fh)
                    except (OSError, ValueError) as exc:
                        warn_once(
                            f"pricing:bad-cost-map:{path}",
                            f"costkit.pricing: could not read the cost map {path} ({exc}); models are unpriced",
                        )
                        raw = {}
            entries = (
                {k: v for k, v in raw.items() if isinstance(v, Mapping) and k != "sample_spec"}
                if isinstance(raw, Mapping)
                else {}
            )
            self.load_seconds = time.perf_counter() - started
            self._entries = entries
            self._providers = frozenset(p for v in entries.values() if isinstance(p := v.get("litellm_provider"), str))
            return entries

    @property
    def providers(self) -> frozenset[str]:
        """Every ``litellm_provider`` named in the map (the prefixes a model name may carry)."""
        self.entries  # noqa: B018 - loads the map
        return self._providers


# ----------------------------------------------------------------------------------------- the book


class _DefaultBase:
    def __repr__(self) -> str:
        return "<default pricebook>"


_DEFAULT_BASE: Final = _DefaultBase()


class PriceBook:
    """Looks prices up by the model names users pass, with overrides that win over the map.

    ``PriceBook()`` layers nothing over the process-wide default book (LiteLLM's map);
    ``PriceBook(overrides={...})`` adds your prices on top of it; ``PriceBook(base=None,
    cost_map=...)`` prices only from the given map. Construction is cheap: the map is parsed
    once per process, on first lookup, and shared.
    """

    def __init__(
        self,
        overrides: Mapping[str, ModelPrice | Mapping[str, Any]] | Iterable[ModelPrice] | None = None,
        base: PriceBook | _DefaultBase | None = _DEFAULT_BASE,
        *,
        cost_map: CostMap | str | Mapping[str, Any] | None = None,
    ) -> None:
        if base is _DEFAULT_BASE:
            base = None if cost_map is not None else default_pricebook()
        if base is not None and not isinstance(base, PriceBook):
            raise ConfigError("base", f"must be a PriceBook or None, got {type(base).__name__}")
        self._base: PriceBook | None = base
        self._map: CostMap | None = cost_map if isinstance(cost_map, CostMap) or cost_map is None else CostMap(cost_map)
        self._overrides: dict[tuple[str | None, str], ModelPrice] = {}
        self._memo: dict[tuple[str, str | None], object] = {}  # own answer (ModelPrice | None) per lookup
        self._lock = threading.Lock()
        if overrides is not None:
            self._add_overrides(overrides)

    def _add_overrides(self, overrides: Mapping[str, ModelPrice | Mapping[str, Any]] | Iterable[ModelPrice]) -> None:
        if isinstance(overrides, Mapping):
            for name, value in overrides.items():
                if not isinstance(name, str) or not name:
                    raise ConfigError("overrides", f"keys must be model names, got {name!r}")
                if isinstance(value, ModelPrice):
                    self._put(attrs.evolve(value, model=name))
                elif isinstance(value, Mapping):
                    self.register(name, **value)
                else:
                    raise ConfigError(f"overrides.{name}", "must be a ModelPrice or a dict of register() keywords")
        else:
            for value in overrides:
                if not isinstance(value, ModelPrice):
                    raise ConfigError("overrides", f"items must be ModelPrice, got {type(value).__name__}")
                self._put(value)

    # -- lookup
    def get(self, model: str, provider: str | None = None) -> ModelPrice | None:
        """The price of ``model`` (``gpt-4o``, ``openai/gpt-4o``, ``bedrock/anthropic.claude-...``), or None."""
        key = (model, provider)
        found = self._memo.get(key, _UNSEEN)
        if found is _UNSEEN:
            found = self._resolve_own(model, provider)
            self._memo[key] = found
        if found is not None:
            return found  # type: ignore[return-value]
        # the base keeps its own memo, so its later register() calls are seen here too
        return None if self._base is None else self._base.get(model, provider)

    def cost(
        self,
        model: str,
        usage: Usage,
        *,
        provider: str | None = None,
        batch: bool = False,
        at: datetime | None = None,
        service_tier: str | None = None,
    ) -> float | None:
        """USD for ``usage`` on ``model``; None when the model has no known price.

        ``at`` matters for off-peak pricing (default now); ``service_tier`` is the tier served.
        """
        price = self.get(model, provider)
        return None if price is None else price.cost(usage, batch, at=at, service_tier=service_tier)

    def worst_case_cost(
        self,
        model: str,
        input_tokens: int,
        max_output_tokens: int | None = None,
        provider: str | None = None,
        *,
        service_tier: str | None = None,
        batch: bool = False,
    ) -> float | None:
        """Upper bound before the call: all input uncached, all ``max_output_tokens`` (or the model's max) used
        (at batch rates with ``batch=True``)."""
        price = self.get(model, provider)
        if price is None:
            return None
        return price.worst_case_cost(input_tokens, max_output_tokens, batch=batch, service_tier=service_tier)

    def warn_unknown(self, model: str) -> bool:
        """Warn once per model that it has no price (its cost records will say ``priced=False``)."""
        return warn_once(
            f"pricing:unknown:{model}",
            f"costkit: no price known for model {model!r}; its calls are recorded unpriced. Register one with "
            f'costkit.pricing.register("{model}", input_per_million=..., output_per_million=...)',
        )

    # -- overrides
    def register(
        self,
        model: str,
        *,
        input_per_million: float,
        output_per_million: float,
        cached_read_per_million: float | None = None,
        cache_write_per_million: float | None = None,
        batch_input_per_million: float | None = None,
        batch_output_per_million: float | None = None,
        provider: str | None = None,
        max_input_tokens: int | None = None,
        max_output_tokens: int | None = None,
        supports_function_calling: bool = True,
        supports_vision: bool = False,
        supports_response_schema: bool = True,
        supports_prompt_caching: bool | None = None,
        mode: str = "chat",
    ) -> ModelPrice:
        """Set ``model``'s price in USD per million tokens; it wins over the map from now on."""
        if not isinstance(model, str) or not model:
            raise ConfigError("model", f"must be a non-empty str, got {model!r}")
        if provider is not None and (not isinstance(provider, str) or not provider):
            raise ConfigError("provider", f"must be a non-empty str or None, got {provider!r}")

        def per_token(field: str, value: Any, optional: bool = False) -> float | None:
            number = _rate(field, value, optional=optional)
            return None if number is None else number / _PER_MILLION

        cached_read = per_token("cached_read_per_million", cached_read_per_million, True)
        price = ModelPrice(
            model=model,
            provider=provider,
            input_per_token=per_token("input_per_million", input_per_million) or 0.0,
            output_per_token=per_token("output_per_million", output_per_million) or 0.0,
            cache_read_per_token=cached_read,
            cache_write_per_token=per_token("cache_write_per_million", cache_write_per_million, True),
            batch_input_per_token=per_token("batch_input_per_million", batch_input_per_million, True),
            batch_output_per_token=per_token("batch_output_per_million", batch_output_per_million, True),
            max_input_tokens=_token_limit("max_input_tokens", max_input_tokens),
            max_output_tokens=_token_limit("max_output_tokens", max_output_tokens),
            supports_function_calling=bool(supports_function_calling),
            supports_vision=bool(supports_vision),
            supports_response_schema=bool(supports_response_schema),
            supports_prompt_caching=(
                cached_read is not None if supports_prompt_caching is None else bool(supports_prompt_caching)
            ),
            mode=mode,
            source="override",
        )
        self._put(price)
        return price

    def register_self_hosted(
        self,
        model: str,
        *,
        usd_per_gpu_hour: float,
        tokens_per_second: float,
        gpus: int = 1,
        prefill_tokens_per_second: float | None = None,
        utilization: float = 1.0,
        provider: str | None = None,
        max_input_tokens: int | None = None,
        max_output_tokens: int | None = None,
        supports_function_calling: bool = True,
        supports_vision: bool = False,
        supports_response_schema: bool = True,
    ) -> ModelPrice:
        """Price a model you serve yourself from what its GPUs cost.

        ``tokens_per_second`` is the deployment's aggregate decode throughput (all concurrent
        requests, all ``gpus``); ``prefill_tokens_per_second`` its prompt-processing throughput
        (default: 10x decode, since prefill is compute-bound and batched). ``utilization`` is the
        share of paid GPU time spent serving (idle time is paid too)::

            usd_per_second  = usd_per_gpu_hour * gpus / 3600
            output_per_token = usd_per_second / (tokens_per_second * utilization)
            input_per_token  = usd_per_second / (prefill_tokens_per_second * utilization)
        """
        hourly = _rate("usd_per_gpu_hour", usd_per_gpu_hour)
        decode = _positive("tokens_per_second", tokens_per_second)
        if isinstance(gpus, bool) or not isinstance(gpus, int) or gpus < 1:
            raise ConfigError("gpus", f"must be an integer >= 1, got {gpus!r}")
        prefill = (
            decode * 10
            if prefill_tokens_per_second is None
            else _positive("prefill_tokens_per_second", prefill_tokens_per_second)
        )
        share = _positive("utilization", utilization)
        if share > 1:
            raise ConfigError("utilization", f"must be in (0, 1], got {utilization!r}")
        assert hourly is not None
        usd_per_second = hourly * gpus / 3600.0
        per_million_out = usd_per_second / (decode * share) * _PER_MILLION
        per_million_in = usd_per_second / (prefill * share) * _PER_MILLION
        price = self.register(
            model,
            input_per_million=per_million_in,
            output_per_million=per_million_out,
            provider=provider,
            max_input_tokens=max_input_tokens,
            max_output_tokens=max_output_tokens,
            supports_function_calling=supports_function_calling,
            supports_vision=supports_vision,
            supports_response_schema=supports_response_schema,
            supports_prompt_caching=False,
        )
        price = attrs.evolve(price, source="self_hosted")
        self._put(price)
        return price

    def overrides(self) -> tuple[ModelPrice, ...]:
        """The prices registered on this book (not its base's)."""
        return tuple(self._overrides.values())

    @property
    def base(self) -> PriceBook | None:
        return self._base

    @property
    def cost_map(self) -> CostMap | None:
        return self._map

    # -- internals
    def _put(self, price: ModelPrice) -> None:
        with self._lock:
            self._overrides[(price.provider, price.model)] = price
            self._memo.clear()

    def _resolve_own(self, model: str, provider: str | None) -> ModelPrice | None:
        if not isinstance(model, str) or not model:
            return None
        hint = None if provider is None or provider.lower() in _NEUTRAL_PROVIDERS else provider.lower()
        found = self._from_overrides(model, hint)
        if found is not None:
            return found
        if self._map is not None:
            return self._from_map(model, hint)
        return None

    def _from_overrides(self, model: str, hint: str | None) -> ModelPrice | None:
        if not self._overrides:
            return None
        if hint is None and "/" in model:
            hint = model.split("/", 1)[0].lower()  # "groq/llama-3-8b" asks for groq's price first
        for name in _spellings(model, hint, None):
            if hint is not None and (hit := self._overrides.get((hint, name))) is not None:
                return hit
            if (hit := self._overrides.get((None, name))) is not None:
                return hit
            for (prov, key), value in self._overrides.items():
                if key == name and (hint is None or prov is None):
                    return value
        return None

    def _from_map(self, model: str, hint: str | None) -> ModelPrice | None:
        assert self._map is not None
        entries = self._map.entries
        providers = self._map.providers
        for name in _spellings(model, hint, providers):
            entry = entries.get(name)
            if entry is not None:
                return price_from_map_entry(name, entry)
        alias = _newest_dated(model, hint, entries, providers)
        if alias is not None:
            return price_from_map_entry(alias, entries[alias])
        return None


def _spellings(model: str, hint: str | None, providers: frozenset[str] | None) -> list[str]:
    """The keys a user's model name may be stored under, most specific first."""
    names: list[str] = []

    def add(name: str) -> None:
        if name and name not in names:
            names.append(name)

    bare = model
    prefix, sep, rest = model.partition("/")
    if sep and (providers is None or prefix.lower() in providers or prefix.lower() == hint):
        bare = rest
    if hint is not None:
        add(f"{hint}/{bare}")
    add(model)
    if bare != model:
        add(f"{prefix.lower()}/{bare}")
        add(bare)
    lowered = [n.lower() for n in names]
    for name in lowered:
        add(name)
    # a dated snapshot the map does not list yet: price it as its undated alias
    for name in list(names):
        match = _DATE_SUFFIX.match(name)
        if match:
            add(match.group(1))
    return names


def _newest_dated(model: str, hint: str | None, entries: Mapping[str, Any], providers: frozenset[str]) -> str | None:
    """An undated or ``-latest`` name the map lacks -> the newest dated snapshot of it the map has.

    ``claude-sonnet-4-5-latest`` -> ``claude-sonnet-4-5-20250929``. Claude models Anthropic no
    longer lists fall back to Bedrock's ``anthropic.claude-...`` snapshot, which AWS bills at
    Anthropic's list price.
    """
    stem_model = model[: -len(_LATEST_SUFFIX)] if model.endswith(_LATEST_SUFFIX) else model
    if _DATE_SUFFIX.match(stem_model):
        return None
    stems = _spellings(stem_model, hint, providers)
    bare = stems[-1].rsplit("/", 1)[-1]
    if bare.startswith("claude") and hint in (None, "anthropic", "bedrock"):
        stems.append(f"anthropic.{bare}")
    for stem in stems:
        best: tuple[str, str] | None = None
        prefix = stem + "-"
        for key in entries:
            if key.startswith(prefix) and (match := _DATE_SUFFIX.match(key)) and match.group(1) == stem:
                date = match.group(2).replace("-", "")
                if best is None or date > best[0]:
                    best = (date, key)
        if best is not None:
            return best[1]
    return None


# ----------------------------------------------------------------------------------------- process-wide default

P = ParamSpec("P")
R = TypeVar("R")
_default_lock = threading.Lock()
_default_book: PriceBook | None = None


def default_pricebook() -> PriceBook:
    """The process-wide book: LiteLLM's bundled map (parsed on first lookup) plus ``register``-ed prices."""
    global _default_book
    book = _default_book
    if book is None:
        with _default_lock:
            if _default_book is None:
                _default_book = PriceBook(base=None, cost_map=CostMap())
            book = _default_book
    return book


def _on_default_book(method: Callable[Concatenate[PriceBook, P], R]) -> Callable[P, R]:
    """``method`` of :func:`default_pricebook` as a module function (same signature and docstring)."""

    @functools.wraps(method)
    def on_default(*args: P.args, **kwargs: P.kwargs) -> R:
        return method(default_pricebook(), *args, **kwargs)

    signature = inspect.signature(method)  # without ``self``, for help() and IDEs
    on_default.__signature__ = signature.replace(parameters=list(signature.parameters.values())[1:])  # type: ignore[attr-defined]
    return on_default


get = _on_default_book(PriceBook.get)
cost = _on_default_book(PriceBook.cost)
worst_case_cost = _on_default_book(PriceBook.worst_case_cost)
register = _on_default_book(PriceBook.register)
register_self_hosted = _on_default_book(PriceBook.register_self_hosted)
warn_unknown = _on_default_book(PriceBook.warn_unknown)


__all__ = [
    "CostMap",
    "ModelPrice",
    "OffPeak",
    "PriceBook",
    "RangeTier",
    "Rates",
    "ThresholdTier",
    "cost",
    "default_pricebook",
    "get",
    "litellm_cost_map_path",
    "price_from_map_entry",
    "register",
    "register_self_hosted",
    "warn_unknown",
    "worst_case_cost",
]
