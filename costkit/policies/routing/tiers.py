"""Explicit routes: the application says which route a call is on; a table says which model serves it.

The route is read from a tag (``route`` by default, or ``feature``, or any tag) or computed by a
rule ``fn(call) -> route | None``. A route maps to one model or to a list of interchangeable models
(the router picks the cheapest that can take the call).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..._call import TAG_FIELDS, Call
from ...errors import ConfigError
from .decision import Decision, as_tier


class Tiers:
    """``decide`` looks the call's route up in ``mapping``; unknown routes use ``default`` (or pass through)."""

    def __init__(
        self,
        mapping: Mapping[str, Any],
        *,
        by: str | Callable[[Call], str | None] = "route",
        default: str | None = None,
    ) -> None:
        if not isinstance(mapping, Mapping) or not mapping:
            raise ConfigError("mapping", "must be a non-empty mapping of route -> model (or list of models)")
        self.mapping = {}
        for key, value in mapping.items():
            if not isinstance(key, str) or not key:
                raise ConfigError("mapping", f"route names must be non-empty str, got {key!r}")
            self.mapping[key] = as_tier(value, f"mapping[{key!r}]")
        if isinstance(by, str):
            if by not in TAG_FIELDS:
                raise ConfigError("by", f"must be a tag name ({', '.join(TAG_FIELDS)}) or a callable, got {by!r}")
            self.by_name = by
        elif callable(by):
            self.by_name = getattr(by, "__name__", "rule")
        else:
            raise ConfigError("by", f"must be a tag name or a callable(call) -> route, got {type(by).__name__}")
        self.by = by
        if default is not None and default not in self.mapping:
            raise ConfigError("default", f"{default!r} is not a route in mapping ({', '.join(self.mapping)})")
        self.default = default

    def model_fields(self) -> dict[str, tuple[str, ...]]:
        """The models it may send to, by the constructor field that named them."""
        return {f"mapping[{key!r}]": tier for key, tier in self.mapping.items()}

    def route_of(self, call: Call) -> str | None:
        value = getattr(call.tags, self.by) if isinstance(self.by, str) else self.by(call)
        return value if isinstance(value, str) else None

    def decide(self, call: Call) -> Decision | None:
        route = self.route_of(call)
        if route in self.mapping:
            return Decision(tiers=(self.mapping[route],), route=route, reason=f"{self.by_name}={route}")
        if self.default is None:
            return None
        why = f"{self.by_name}={route} has no tier" if route is not None else f"no {self.by_name}"
        return Decision(tiers=(self.mapping[self.default],), route=self.default, reason=f"{why}: default")

    def __repr__(self) -> str:
        return f"Tiers({self.mapping!r}, by={self.by_name!r}, default={self.default!r})"


__all__ = ["Tiers"]
