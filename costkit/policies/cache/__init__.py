"""The cache layers: :class:`ExactCache` (same question) and :class:`SemanticCache` (same question in other words).

Names resolve lazily, so importing the exact cache never pays for numpy, faiss or an embedder.

* keys: :func:`exact_key` (also the idempotency key of ``costkit.Dedup``)
* stores: :class:`MemoryStore`, :class:`DiskStore`, :class:`RedisStore`
* rules: :class:`CacheRules` (what both caches may store, TTLs, labels, ``min_distinct_users``)
* semantic: :class:`SemanticCache`, :class:`LocalSemanticStore`, :class:`Verifier`, :class:`LLMJudge`
* calibration: :func:`calibrate`, :class:`Calibration`, :func:`default_calibration`
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..._lazy import lazy_exports

_LAZY = {
    "exact_key": "keys",
    "CacheStore": "stores",
    "MemoryStore": "stores",
    "DiskStore": "stores",
    "RedisStore": "stores",
    "ExactCache": "exact",
    "SemanticCache": "semantic",
    "LocalSemanticStore": "semantic_store",
    "LLMJudge": "verifier",
    "Verifier": "verifier",
    "Match": "semantic",
    "CacheRules": "rules",
    "Calibration": "calibration",
    "calibrate": "calibration",
    "default_calibration": "calibration",
}

__all__ = [
    "CacheRules",
    "CacheStore",
    "Calibration",
    "DiskStore",
    "ExactCache",
    "LLMJudge",
    "LocalSemanticStore",
    "Match",
    "MemoryStore",
    "RedisStore",
    "SemanticCache",
    "Verifier",
    "calibrate",
    "default_calibration",
    "exact_key",
]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())


if TYPE_CHECKING:  # pragma: no cover
    from .calibration import Calibration, calibrate, default_calibration
    from .exact import ExactCache
    from .keys import exact_key
    from .rules import CacheRules
    from .semantic import Match, SemanticCache
    from .semantic_store import LocalSemanticStore
    from .stores import CacheStore, DiskStore, MemoryStore, RedisStore
    from .verifier import LLMJudge, Verifier
