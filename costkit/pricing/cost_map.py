"""LiteLLM's bundled cost map, read without importing litellm, and its entries as ModelPrices."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from .._warn import warn_once
from ._common import (
    _FIREWORKS_CACHE_READ_RATIO,
    _INCLUSIVE_THRESHOLD_PROVIDERS,
    _RATE_PREFIXES,
    _THRESHOLD_KEY,
    SERVICE_TIER_SUFFIXES,
)
from .model_price import ModelPrice
from .rates import _WEEKDAYS, OffPeak, RangeTier, ThresholdTier, _parse_windows


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
