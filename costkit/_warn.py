"""Say once per cause that a layer degraded: a failing sink, cache or Redis goes quiet after that.

Each cause is said twice over, once: as a :class:`~costkit.errors.CostkitWarning` (``warnings``,
which tests and notebooks see) and as a WARNING on a ``logging`` logger under ``costkit``, named
after the part that degraded (``costkit.redis``, ``costkit.sink``, ``costkit.cache-store`` ...),
so operations teams can route and level costkit's messages like any library's. Repeats of a
cause already said go to the same logger at DEBUG.
"""

from __future__ import annotations

import logging
import re
import threading
import warnings

from .errors import CostkitWarning

_seen: set[str] = set()
_lock = threading.Lock()
_AREA = re.compile(r"[^:]+")

logger = logging.getLogger("costkit")
logger.addHandler(logging.NullHandler())  # a library: the application decides where its logs go


def logger_for(key: str) -> logging.Logger:
    """``costkit.<area>``, the area being the part of ``key`` before its first ``:``."""
    area = _AREA.match(key)
    return logger.getChild(area.group(0)) if area else logger


def warn_once(key: str, message: str, category: type[Warning] = CostkitWarning) -> bool:
    """Emit ``message`` the first time ``key`` is seen in this process; return whether it was emitted."""
    with _lock:
        first = key not in _seen
        _seen.add(key)
    log = logger_for(key)
    if not first:
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s (repeat)", message)
        return False
    log.warning(message)
    warnings.warn(message, category, stacklevel=3)
    return True


def reset_warnings() -> None:
    """Forget which warnings were emitted (for tests)."""
    with _lock:
        _seen.clear()


__all__ = ["CostkitWarning", "logger", "logger_for", "reset_warnings", "warn_once"]
