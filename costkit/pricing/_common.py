"""Constants and option checks shared by the pricing modules."""

from __future__ import annotations

import math
import re
from typing import Any, Final

import attrs

from ..errors import ConfigError

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
