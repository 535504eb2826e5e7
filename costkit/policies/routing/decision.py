"""What a routing strategy decides for one call, and the protocol every strategy follows.

A strategy (tiers, heuristic, learned) only *decides*: it names the tier of models the call
should go to and the stronger tiers to fall back to, with its reason and scores. The
:class:`~costkit.policies.router.Router` does the rest once, for all of them: drops models that
cannot take the call, orders a tier by estimated cost, falls back on errors, runs shadow mode.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import attrs

from ..._call import Call
from ...errors import ConfigError


@attrs.frozen(kw_only=True, slots=True)
class Decision:
    """``tiers[0]`` is the chosen tier; the rest are fallbacks in order (each tier: interchangeable models)."""

    tiers: tuple[tuple[str, ...], ...]
    route: str | None = None
    reason: str = ""
    scores: Mapping[str, float] = attrs.field(factory=dict)
    notes: Mapping[str, Any] = attrs.field(factory=dict)  # copied into the call's notes (e.g. route_ood)


@runtime_checkable
class Strategy(Protocol):
    """Decides where a call should go; returns None to leave the call alone."""

    def decide(self, call: Call) -> Decision | None: ...


def as_tier(value: Any, field: str) -> tuple[str, ...]:
    """A model name or a non-empty sequence of them, as a tuple; a ConfigError naming ``field`` otherwise."""
    if isinstance(value, str):
        if not value:
            raise ConfigError(field, "a model name must be a non-empty str")
        return (value,)
    if isinstance(value, Sequence) and value and all(isinstance(m, str) and m for m in value):
        return tuple(dict.fromkeys(value))
    raise ConfigError(field, f"expected a model name or a non-empty list of model names, got {value!r}")


def as_ladder(models: Any, field: str = "models") -> tuple[tuple[str, ...], ...]:
    """Tiers ordered cheap -> strong: each entry a model or a list of interchangeable models."""
    if isinstance(models, str) or not isinstance(models, Sequence) or len(models) < 1:
        raise ConfigError(field, "must be a list of models (or lists of models), cheapest tier first")
    ladder = tuple(as_tier(m, f"{field}[{i}]") for i, m in enumerate(models))
    seen: dict[str, int] = {}
    for i, tier in enumerate(ladder):
        for m in tier:
            if m in seen:
                raise ConfigError(f"{field}[{i}]", f"model {m!r} is already in tier {seen[m]}")
            seen[m] = i
    return ladder


def text_of(call: Call) -> str:
    """The text a strategy judges a call by: the last user message (what the user asked now)."""
    return call.last_user_text


__all__ = ["Decision", "Strategy", "as_ladder", "as_tier", "text_of"]
