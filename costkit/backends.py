"""Where policies keep state: one public home for the stores and ledgers the policies take.

::

    costkit.ExactCache(store=costkit.backends.RedisStore("redis://cache:6379/0"))
    costkit.Budget(limits, backend=costkit.backends.RedisBudgetBackend("redis://state:6379/0"))

Each name is imported from the module that defines it on first use (redis, psycopg and faiss are
never imported by ``import costkit`` or by this module).

* cache entries: :class:`MemoryStore`, :class:`DiskStore` (diskcache, JSON only), :class:`RedisStore`;
  semantic-cache vectors and entries in Postgres + pgvector: :class:`PgVectorStore`;
* budget counters: :class:`InProcessBudgetBackend`, :class:`RedisBudgetBackend` (atomic Lua).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_exports

_LAZY = {
    "CacheStore": "costkit.policies.cache.stores",
    "MemoryStore": "costkit.policies.cache.stores",
    "DiskStore": "costkit.policies.cache.stores",
    "RedisStore": "costkit.policies.cache.stores",
    "PgVectorStore": "costkit.policies.cache.pgvector_store",
    "InProcessBudgetBackend": "costkit._ledger",
    "RedisBudgetBackend": "costkit.policies.budget_backends",
}

__all__ = [
    "CacheStore",
    "DiskStore",
    "InProcessBudgetBackend",
    "MemoryStore",
    "PgVectorStore",
    "RedisBudgetBackend",
    "RedisStore",
]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())


if TYPE_CHECKING:  # pragma: no cover
    from ._ledger import InProcessBudgetBackend
    from .policies.budget_backends import RedisBudgetBackend
    from .policies.cache.pgvector_store import PgVectorStore
    from .policies.cache.stores import CacheStore, DiskStore, MemoryStore, RedisStore
