"""How often to ask a provider about a running batch: back off while nothing changes.

Batches take minutes to hours; asking every few seconds wastes requests (and rate limit), asking
every hour wastes the user's time. :class:`Backoff` starts at ``initial_s``, grows by ``factor``
per quiet round up to ``max_s``, and starts over when something ended.
"""

from __future__ import annotations

import random

import attrs

from ..errors import ConfigError


@attrs.frozen(kw_only=True)
class Backoff:
    """Waits between polls: ``initial_s`` * ``factor`` ** n, capped at ``max_s``, +/- ``jitter``."""

    initial_s: float = 5.0
    max_s: float = 300.0
    factor: float = 1.5
    jitter: float = 0.1

    def __attrs_post_init__(self) -> None:
        if not (isinstance(self.initial_s, int | float) and self.initial_s >= 0):
            raise ConfigError("initial_s", f"must be seconds >= 0, got {self.initial_s!r}")
        if not (isinstance(self.max_s, int | float) and self.max_s >= self.initial_s):
            raise ConfigError("max_s", f"must be >= initial_s, got {self.max_s!r}")
        if not (isinstance(self.factor, int | float) and self.factor >= 1):
            raise ConfigError("factor", f"must be >= 1, got {self.factor!r}")
        if not (isinstance(self.jitter, int | float) and 0 <= self.jitter < 1):
            raise ConfigError("jitter", f"must be within [0, 1), got {self.jitter!r}")

    def delay(self, quiet_rounds: int) -> float:
        """Seconds to wait after ``quiet_rounds`` polls in a row that saw nothing end."""
        base = min(self.max_s, self.initial_s * self.factor ** max(0, quiet_rounds))
        if not self.jitter or not base:
            return base
        return base * (1 + random.uniform(-self.jitter, self.jitter))


__all__ = ["Backoff"]
