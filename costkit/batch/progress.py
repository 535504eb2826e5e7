"""A progress bar for a running job (tqdm, on standard error), or nothing.

Counts items with an outcome (answered, failed, expired, refused or served from the cache) out
of the job's items; the postfix shows what the answered ones cost at batch prices so far.
"""

from __future__ import annotations

from typing import Any


class Progress:
    """``update(done, cost_usd)`` moves the bar to ``done`` items; ``close()`` ends it."""

    def __init__(self, total: int, *, enabled: bool, description: str) -> None:
        self._bar: Any = None
        self._done = 0
        if enabled:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=description, unit="item", dynamic_ncols=True, leave=True)

    def update(self, done: int, cost_usd: float) -> None:
        if self._bar is None:
            return
        if done > self._done:
            self._bar.update(done - self._done)
            self._done = done
        self._bar.set_postfix_str(f"${cost_usd:.4f}", refresh=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


__all__ = ["Progress"]
