"""Semantic-cache entries in Postgres + pgvector, shared by many processes and hosts.

One table holds every entry: the unit vector, the *partition* it may answer for (a string the
semantic cache builds from tenant, system-prompt hash, requested model, prompt_version,
corpus_version and tool-schema hash: an entry never answers outside it), the stored result as
JSON (``costkit._serialize``), and created_at / expires_at. An HNSW index (cosine) serves the
nearest-neighbour search; pgvector 0.8's iterative index scan keeps a selective partition filter
from starving the result list.

Writes are upserts on ``(namespace, partition, key)``, so several processes adding the same
entry at once leave one row. The schema is created under a transaction-scoped advisory lock, so
processes starting together do not race on ``CREATE TABLE``.

Like every cache store, this one never fails the caller's completion: a database error warns
once per cause, counts in ``errors`` (and ``dropped`` for lost writes) and answers like an empty
cache. Needs ``pip install 'costkit[postgres]'`` (psycopg 3 and pgvector).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import queue
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from ..._warn import warn_once
from ...errors import ConfigError

_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,47}$")
_SCHEMA_LOCK = 0x636F73746B6974  # "costkit": the advisory lock key taken while creating the schema

Hit = tuple[float, int, dict[str, Any]]


def _import_driver() -> tuple[Any, Any]:
    try:
        import psycopg
        from pgvector.psycopg import register_vector
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ConfigError(
            "store", f"PgVectorStore needs the 'postgres' extra: pip install 'costkit[postgres]' ({exc})"
        ) from None
    return psycopg, register_vector


class PgVectorStore:
    """Semantic entries in a Postgres table with a pgvector HNSW (cosine) index.

    ``dsn`` is a libpq connection string or URI. ``dim`` must match the embedder's. ``table`` is
    created if missing (with ``create=True``). ``namespace`` separates caches sharing a table and
    is what :meth:`clear` empties. ``ef_search`` trades recall for latency per query.
    ``synchronous_commit=False`` (the default) lets writes return before the WAL is flushed: a
    crash may lose the last moments of cache entries (future misses), never corrupt the table.
    """

    def __init__(
        self,
        dsn: str,
        dim: int,
        *,
        table: str = "costkit_semantic",
        namespace: str = "default",
        create: bool = True,
        pool_size: int = 4,
        ef_search: int = 100,
        hnsw_m: int = 16,
        ef_construction: int = 64,
        connect_timeout_s: float = 5.0,
        statement_timeout_ms: int = 2000,
        synchronous_commit: bool = False,
    ) -> None:
        if not isinstance(dsn, str) or not dsn:
            raise ConfigError("dsn", "must be a non-empty libpq connection string or URI")
        if not isinstance(dim, int) or isinstance(dim, bool) or not 1 <= dim <= 16000:
            raise ConfigError("dim", f"must be an int in 1..16000 (pgvector's limit), got {dim!r}")
        if not isinstance(table, str) or not _IDENT.match(table):
            raise ConfigError("table", f"must be a lower-case SQL identifier (a-z, 0-9, _), got {table!r}")
        if not isinstance(namespace, str) or not namespace:
            raise ConfigError("namespace", "must be a non-empty str")
        for field, value, lo in (
            ("pool_size", pool_size, 1),
            ("ef_search", ef_search, 1),
            ("hnsw_m", hnsw_m, 2),
            ("ef_construction", ef_construction, 4),
            ("statement_timeout_ms", statement_timeout_ms, 1),
        ):
            if not isinstance(value, int) or value < lo:
                raise ConfigError(field, f"must be an int >= {lo}, got {value!r}")
        if not connect_timeout_s > 0:
            raise ConfigError("connect_timeout_s", f"must be > 0, got {connect_timeout_s!r}")
        self._psycopg, self._register_vector = _import_driver()
        self.dsn = dsn
        self.dim = dim
        self.table = table
        self.namespace = namespace
        self.create = create
        self.ef_search = ef_search
        self.hnsw_m = hnsw_m
        self.ef_construction = ef_construction
        self.connect_timeout_s = connect_timeout_s
        self.statement_timeout_ms = statement_timeout_ms
        self.synchronous_commit = synchronous_commit
        self.errors = 0
        self.dropped = 0
        self._pool: queue.LifoQueue[Any] = queue.LifoQueue(maxsize=pool_size)
        self._schema_ready = False
        self._schema_lock = threading.Lock()
        self._count_lock = threading.Lock()
        # Connect now: a table of another dimension is a ConfigError here, at construction. An
        # unreachable database is not: the store degrades to misses and connects when it can.
        try:
            with self._conn():
                pass
        except ConfigError:
            raise
        except Exception as exc:
            self._failed("connect", exc)

    # ------------------------------------------------------------------ connections and schema

    def _connect(self) -> Any:
        conn = self._psycopg.connect(
            self.dsn,
            autocommit=True,
            connect_timeout=max(1, round(self.connect_timeout_s)),
            # A cache entry lost in a database crash is a future miss, not lost data: by default writes
            # do not wait for the WAL flush (synchronous_commit=off), several times faster per upsert.
            options=f"-c statement_timeout={self.statement_timeout_ms}"
            + ("" if self.synchronous_commit else " -c synchronous_commit=off"),
        )
        if self.create:
            self._ensure_schema(conn)
        self._register_vector(conn)
        return conn

    def _ensure_schema(self, conn: Any) -> None:
        if self._schema_ready:
            return
        with self._schema_lock:
            if self._schema_ready:
                return
            t = self.table
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
                conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
                conn.execute(
                    f"""CREATE TABLE IF NOT EXISTS {t} (
                        id BIGSERIAL PRIMARY KEY,
                        namespace TEXT NOT NULL,
                        partition TEXT NOT NULL,
                        key TEXT NOT NULL,
                        embedding vector({self.dim}) NOT NULL,
                        payload JSONB NOT NULL,
                        created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
                        expires_at TIMESTAMPTZ,
                        UNIQUE (namespace, partition, key)
                    )"""
                )
                conn.execute(
                    f"CREATE INDEX IF NOT EXISTS {t}_embedding_hnsw ON {t} USING hnsw (embedding vector_cosine_ops)"
                    f" WITH (m = {self.hnsw_m}, ef_construction = {self.ef_construction})"
                )
                conn.execute(f"CREATE INDEX IF NOT EXISTS {t}_expires ON {t} (expires_at) WHERE expires_at IS NOT NULL")
                row = conn.execute(
                    "SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
                    "WHERE a.attrelid = %s::regclass AND a.attname = 'embedding'",
                    (t,),
                ).fetchone()
            if row is None or row[0] != f"vector({self.dim})":
                raise ConfigError(
                    "dim", f"table {t} stores {row[0] if row else 'no embedding column'}, not vector({self.dim})"
                )
            self._schema_ready = True

    @contextmanager
    def _conn(self) -> Iterator[Any]:
        try:
            conn = self._pool.get_nowait()
        except queue.Empty:
            conn = self._connect()
        ok = False
        try:
            yield conn
            ok = True
        finally:
            if ok and not conn.closed and conn.info.transaction_status == self._psycopg.pq.TransactionStatus.IDLE:
                try:
                    self._pool.put_nowait(conn)
                except queue.Full:
                    conn.close()
            else:
                conn.close()

    def _failed(self, op: str, exc: BaseException, *, write: bool = False) -> None:
        with self._count_lock:
            self.errors += 1
            if write:
                self.dropped += 1
        warn_once(
            f"pgvector:{self.table}:{op}:{type(exc).__name__}",
            f"costkit PgVectorStore({self.table}) {op} failed, answering as a cache miss: {exc!r}",
        )

    def _vector(self, vector: Any) -> np.ndarray:
        v = np.asarray(vector, dtype=np.float32).reshape(-1)
        if v.shape != (self.dim,):
            raise ValueError(f"vector must have {self.dim} dimensions, got {v.shape}")
        if not np.isfinite(v).all():
            raise ValueError("vector contains NaN or infinity")
        return v

    # ------------------------------------------------------------------ the API

    def add(
        self,
        partition: str,
        vector: Any,
        payload: Mapping[str, Any],
        ttl_s: float | None = None,
        *,
        key: str | None = None,
    ) -> int | None:
        """Insert or replace the entry ``(partition, key)``; returns its id (None if the write was dropped).

        ``key`` identifies the entry within its partition (the semantic cache passes a hash of the
        prompt); by default it is the hash of the vector, so the same vector is never stored twice.
        """
        v = self._vector(vector)
        if ttl_s is not None and (not isinstance(ttl_s, int | float) or ttl_s <= 0):
            raise ValueError(f"ttl_s must be a positive number or None, got {ttl_s!r}")
        if key is None:
            key = hashlib.sha256(v.tobytes()).hexdigest()
        doc = json.dumps(dict(payload), separators=(",", ":"), ensure_ascii=False)
        sql = (
            f"INSERT INTO {self.table} (namespace, partition, key, embedding, payload, expires_at) "
            "VALUES (%s, %s, %s, %s, %s::jsonb, now() + make_interval(secs => %s)) "
            "ON CONFLICT (namespace, partition, key) DO UPDATE SET embedding = EXCLUDED.embedding, "
            "payload = EXCLUDED.payload, created_at = now(), expires_at = EXCLUDED.expires_at RETURNING id"
        )
        try:
            with self._conn() as conn:
                row = conn.execute(sql, (self.namespace, partition, key, v, doc, ttl_s)).fetchone()
            return int(row[0])
        except Exception as exc:
            self._failed("add", exc, write=True)
            return None

    def search(self, partition: str, vector: Any, k: int = 1) -> list[Hit]:
        """``[(cosine similarity, id, payload), ...]``, best first, live entries of ``partition`` only."""
        if not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be a positive int, got {k!r}")
        v = self._vector(vector)
        sql = (
            f"SELECT id, 1 - (embedding <=> %s) AS score, payload FROM {self.table} "
            "WHERE namespace = %s AND partition = %s AND (expires_at IS NULL OR expires_at > now()) "
            "ORDER BY embedding <=> %s LIMIT %s"
        )
        try:
            with self._conn() as conn, conn.transaction():
                conn.execute(f"SET LOCAL hnsw.ef_search = {max(self.ef_search, k)}")
                conn.execute("SET LOCAL hnsw.iterative_scan = strict_order")
                rows = conn.execute(sql, (v, self.namespace, partition, v, k)).fetchall()
        except Exception as exc:
            self._failed("search", exc)
            return []
        return [(float(score), int(id_), payload) for id_, score, payload in rows]

    def append(self, id: int, field: str, items: Sequence[Any], *, cap: int = 32) -> bool:
        """Append ``items`` to the JSON list ``field`` of entry ``id``, keeping the last ``cap``, in one
        statement (concurrent appends from other processes are not lost). False if nothing was updated."""
        sql = (
            f"UPDATE {self.table} SET payload = jsonb_set(payload, ARRAY[%(f)s], "
            "(SELECT coalesce(jsonb_agg(e ORDER BY i), '[]'::jsonb) FROM (SELECT e, i FROM jsonb_array_elements("
            "CASE WHEN jsonb_typeof(payload->%(f)s) = 'array' THEN payload->%(f)s ELSE '[]'::jsonb END "
            "|| %(new)s::jsonb) WITH ORDINALITY AS a(e, i) ORDER BY i DESC LIMIT %(cap)s) AS kept), true) "
            "WHERE namespace = %(ns)s AND id = %(id)s"
        )
        params = {"f": field, "new": json.dumps(list(items)), "cap": int(cap), "ns": self.namespace, "id": int(id)}
        try:
            with self._conn() as conn:
                return bool(conn.execute(sql, params).rowcount)
        except Exception as exc:
            self._failed("append", exc, write=True)
            return False

    def get(self, id: int) -> dict[str, Any] | None:
        """The payload of entry ``id`` if it is live, else None."""
        try:
            with self._conn() as conn:
                row = conn.execute(
                    f"SELECT payload FROM {self.table} WHERE id = %s AND namespace = %s "
                    "AND (expires_at IS NULL OR expires_at > now())",
                    (id, self.namespace),
                ).fetchone()
        except Exception as exc:
            self._failed("get", exc)
            return None
        return None if row is None else dict(row[0])

    def delete(self, ids: int | Sequence[int]) -> int:
        """Delete entries by id; returns how many were deleted (0 on failure)."""
        id_list = [int(ids)] if isinstance(ids, int | np.integer) else [int(i) for i in ids]
        return self._delete(
            f"DELETE FROM {self.table} WHERE namespace = %s AND id = ANY(%s)", (self.namespace, id_list)
        )

    def delete_partition(self, partition: str) -> int:
        """Delete every entry of one partition (a prompt_version bump, a corpus re-index)."""
        return self._delete(
            f"DELETE FROM {self.table} WHERE namespace = %s AND partition = %s", (self.namespace, partition)
        )

    def clear(self, namespace: str | None = None) -> int:
        """Delete every entry of ``namespace`` (this store's own by default)."""
        return self._delete(f"DELETE FROM {self.table} WHERE namespace = %s", (namespace or self.namespace,))

    def delete_where(self, predicate: Callable[[Mapping[str, Any]], bool], *, partition: str | None = None) -> int:
        """Delete this namespace's entries whose payload satisfies ``predicate`` (tag invalidation).

        The predicate is Python, so payloads are read in batches and matching ids deleted: a full
        scan, fine for the rare invalidation; returns how many were deleted (0 on failure).
        """
        sql = f"SELECT id, payload FROM {self.table} WHERE namespace = %s"
        params: tuple[Any, ...] = (self.namespace,)
        if partition is not None:
            sql += " AND partition = %s"
            params += (partition,)
        try:
            doomed: list[int] = []
            with self._conn() as conn, conn.transaction(), conn.cursor(name="costkit_scan") as cur:
                cur.itersize = 2000
                cur.execute(sql, params)
                doomed.extend(int(id_) for id_, payload in cur if predicate(payload))
        except Exception as exc:
            self._failed("delete", exc)
            return 0
        return sum(self.delete(doomed[i : i + 5000]) for i in range(0, len(doomed), 5000))

    def purge_expired(self) -> int:
        """Delete expired rows of every namespace (searches already ignore them)."""
        return self._delete(f"DELETE FROM {self.table} WHERE expires_at <= now()", ())

    def _delete(self, sql: str, params: tuple[Any, ...]) -> int:
        try:
            with self._conn() as conn:
                return int(conn.execute(sql, params).rowcount)
        except Exception as exc:
            self._failed("delete", exc)
            return 0

    def count(self, partition: str | None = None) -> int:
        """Live entries of this namespace (of one partition if given); 0 on failure."""
        sql = f"SELECT count(*) FROM {self.table} WHERE namespace = %s AND (expires_at IS NULL OR expires_at > now())"
        params: tuple[Any, ...] = (self.namespace,)
        if partition is not None:
            sql += " AND partition = %s"
            params += (partition,)
        try:
            with self._conn() as conn:
                return int(conn.execute(sql, params).fetchone()[0])
        except Exception as exc:
            self._failed("count", exc)
            return 0

    def close(self) -> None:
        while True:
            try:
                self._pool.get_nowait().close()
            except queue.Empty:
                return

    def __enter__(self) -> PgVectorStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"PgVectorStore(table={self.table!r}, namespace={self.namespace!r}, dim={self.dim})"

    # ------------------------------------------------------------------ async twins
    # psycopg's sync calls run in a worker thread: a slow database must not stall the event loop.

    async def aadd(
        self,
        partition: str,
        vector: Any,
        payload: Mapping[str, Any],
        ttl_s: float | None = None,
        *,
        key: str | None = None,
    ) -> int | None:
        return await asyncio.to_thread(self.add, partition, vector, payload, ttl_s, key=key)

    async def aappend(self, id: int, field: str, items: Sequence[Any], *, cap: int = 32) -> bool:
        return await asyncio.to_thread(lambda: self.append(id, field, items, cap=cap))

    async def asearch(self, partition: str, vector: Any, k: int = 1) -> list[Hit]:
        return await asyncio.to_thread(self.search, partition, vector, k)

    async def adelete(self, ids: int | Sequence[int]) -> int:
        return await asyncio.to_thread(self.delete, ids)

    async def aclear(self, namespace: str | None = None) -> int:
        return await asyncio.to_thread(self.clear, namespace)


__all__ = ["Hit", "PgVectorStore"]
