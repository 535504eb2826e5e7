"""Warn once per cause: a failing sink, cache or Redis degrades quietly after the first warning."""

from __future__ import annotations

import threading
import warnings

_seen: set[str] = set()
_lock = threading.Lock()


class CostkitWarning(UserWarning):
    """A layer degraded (sink dropped records, cache store unreachable, unknown price ...)."""


def warn_once(key: str, message: str, category: type[Warning] = CostkitWarning) -> bool:
    """Emit ``message`` the first time ``key`` is seen in this process; return whether it was emitted."""
    with _lock:
        if key in _seen:
            return False
        _seen.add(key)
    warnings.warn(message, category, stacklevel=3)
    return True


def reset_warnings() -> None:
    """Forget which warnings were emitted (for tests)."""
    with _lock:
        _seen.clear()


__all__ = ["CostkitWarning", "reset_warnings", "warn_once"]
