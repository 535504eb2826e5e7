"""SQLiteSink: the embedded default. One indexed table, WAL mode, one transaction per batch.

Every CostRecord field is a column of its own (``savings`` and ``notes`` as JSON text), so the
file answers ad-hoc SQL as well as ``costkit report``. WAL lets readers (the report, a dashboard)
read while the application writes, and several processes may write to the same file: SQLite
serializes writers and ``busy_timeout`` waits for the lock instead of failing.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..outcomes import Outcome
from ..records import FIELDS, CostRecord
from ._codec import dumps, loads_mapping, record_from_mapping
from ._rollup import RequestMemory, rollup_ddl, rollup_update_sql, savings_rows, savings_upsert_sql
from ._sql import BOOL_FIELDS, INDEXES, INTEGER_FIELDS, JSON_FIELDS, NOT_NULL_FIELDS, REAL_FIELDS, where_clause
from ._sql import quote as _q
from .background import BackgroundSink, usable_path

SCHEMA_VERSION = 2  # 2: task, experiment, arm columns and the outcomes table
DEFAULT_TABLE = "cost_records"
OUTCOMES_SUFFIX = "_outcomes"  # outcomes live in "<table>_outcomes" (cost_records_outcomes)


HOUR_SQL = "CAST(timestamp / 3600 AS INTEGER)"


def _column_type(name: str) -> str:
    kind = "INTEGER" if name in INTEGER_FIELDS | BOOL_FIELDS else "REAL" if name in REAL_FIELDS else "TEXT"
    return f"{kind} NOT NULL" if name in NOT_NULL_FIELDS else kind


def _connect(path: Path, *, timeout_s: float = 30.0) -> sqlite3.Connection:
    # isolation_level=None: we open the one transaction per batch ourselves.
    conn = sqlite3.connect(path, timeout=timeout_s, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {int(timeout_s * 1000)}")
    return conn


def ensure_schema(conn: sqlite3.Connection, table: str = DEFAULT_TABLE) -> None:
    """Create the table and its indexes; add columns for record fields a newer costkit introduced."""
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise sqlite3.OperationalError(f"could not switch to WAL (journal_mode is {mode})")
    conn.execute("PRAGMA synchronous = NORMAL")
    cols = ", ".join(f"{_q(f)} {_column_type(f)}" for f in FIELDS)
    conn.execute(f"CREATE TABLE IF NOT EXISTS {_q(table)} (id INTEGER PRIMARY KEY, {cols})")
    present = {row[1] for row in conn.execute(f"PRAGMA table_info({_q(table)})")}
    for f in FIELDS:
        if f not in present:
            kind = _column_type(f).replace(" NOT NULL", "")
            conn.execute(f"ALTER TABLE {_q(table)} ADD COLUMN {_q(f)} {kind}")
    for suffix, columns in INDEXES.items():
        conn.execute(
            f"CREATE INDEX IF NOT EXISTS {_q(f'{table}_{suffix}')} ON {_q(table)} ({', '.join(map(_q, columns))})"
        )
    if "firsts" not in present:  # which of its request's firsts a record is (see _rollup)
        conn.execute(f"ALTER TABLE {_q(table)} ADD COLUMN firsts INTEGER")
    for ddl in rollup_ddl(table):
        conn.execute(ddl)
    conn.execute(f"CREATE TABLE IF NOT EXISTS {_q(table + '_meta')} (key TEXT PRIMARY KEY, value)")
    # the rollups cover the records written from here on; older ones need rebuild_rollups()
    conn.execute(
        f"INSERT OR IGNORE INTO {_q(table + '_meta')} VALUES "
        f"('rollup_from_id', (SELECT COALESCE(MAX(id), 0) + 1 FROM {_q(table)}))"
    )
    outcomes = table + OUTCOMES_SUFFIX
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS {_q(outcomes)} (id INTEGER PRIMARY KEY, task TEXT NOT NULL, "
        "success INTEGER NOT NULL, value REAL, labels TEXT, timestamp REAL NOT NULL)"
    )
    conn.execute(f"CREATE INDEX IF NOT EXISTS {_q(outcomes + '_task')} ON {_q(outcomes)} (task)")
    if conn.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def _row(record: CostRecord) -> tuple[Any, ...]:
    out: list[Any] = []
    for f in FIELDS:
        v = getattr(record, f)
        if f in JSON_FIELDS:
            v = dumps(dict(v))
        elif f in BOOL_FIELDS:
            v = int(bool(v))
        out.append(v)
    return tuple(out)


class _SQLiteWriter:
    """Inserts batches in one transaction; its connection lives in the writer thread."""

    def __init__(self, path: Path, table: str) -> None:
        self.path = path
        self.table = table
        self._conn: sqlite3.Connection | None = None
        cols = ", ".join(map(_q, FIELDS))
        marks = ", ".join("?" * (len(FIELDS) + 1))
        self._insert = f"INSERT INTO {_q(table)} ({cols}, firsts) VALUES ({marks})"
        self._memory = RequestMemory()
        self._rollup = rollup_update_sql(table, _q(table), "id > ?", hour_expr=HOUR_SQL)
        self._savings = savings_upsert_sql(table, "?")

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = _connect(self.path)
            ensure_schema(self._conn, self.table)
        return self._conn

    def write_batch(self, records: Sequence[CostRecord]) -> None:
        conn = self._connection()
        firsts = [(r, self._memory.firsts(r)) for r in records]
        rows = [(*_row(r), bits) for r, bits in firsts]
        savings = savings_rows(firsts)
        conn.execute("BEGIN IMMEDIATE")
        try:
            # the write lock is ours from BEGIN IMMEDIATE: the ids after this mark are this batch's
            mark = conn.execute(f"SELECT COALESCE(MAX(id), 0) FROM {_q(self.table)}").fetchone()[0]
            conn.executemany(self._insert, rows)
            for sql in self._rollup:
                conn.execute(sql, (mark,))
            if savings:
                conn.executemany(self._savings, [(*k, v) for k, v in savings.items()])
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def write_outcomes(self, outcomes: Sequence[Outcome]) -> None:
        conn = self._connection()
        rows = [(o.task, int(o.success), o.value, dumps(dict(o.labels)), o.timestamp) for o in outcomes]
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(
                f"INSERT INTO {_q(self.table + OUTCOMES_SUFFIX)} (task, success, value, labels, timestamp) "
                "VALUES (?, ?, ?, ?, ?)",
                rows,
            )
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _with_schema(path: Path, table: str) -> None:
    conn = _connect(path)
    try:
        ensure_schema(conn, table)
    finally:
        conn.close()


class SQLiteSink(BackgroundSink):
    """Write records to a SQLite file (WAL, indexed); ``emit`` only enqueues.

    The file and schema are created at construction, so a path that cannot be written fails
    there with ``ConfigError("path", ...)`` rather than silently later. Queue options are those
    of :class:`BackgroundSink`.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        table: str = DEFAULT_TABLE,
        max_queue: int = 10_000,
        batch_size: int = 500,
        flush_interval_s: float = 0.5,
        close_timeout_s: float = 5.0,
        block_when_full: bool = False,
    ) -> None:
        if str(path) == ":memory:" or str(path).startswith("file::memory:"):
            raise ConfigError("path", "an in-memory database is private to one connection; use MemorySink instead")
        if not table or not isinstance(table, str):
            raise ConfigError("table", f"expected a table name, got {table!r}")
        self.table = table
        self.path = usable_path(
            path,
            lambda p: _with_schema(p, table),
            f"cannot use {str(path)!r} as a SQLite database",
            (OSError, sqlite3.Error),
        )
        super().__init__(
            _SQLiteWriter(self.path, table),
            max_queue=max_queue,
            batch_size=batch_size,
            flush_interval_s=flush_interval_s,
            close_timeout_s=close_timeout_s,
            name=f"SQLiteSink({self.path.name})",
            block_when_full=block_when_full,
        )

    @property
    def ledger_key(self) -> tuple[str, str, str]:
        """Two sinks on the same file and table are one ledger (an outcome is written to it once)."""
        return ("sqlite", str(self.path.resolve()), self.table)

    def outcomes(self, **filters: Any) -> list[Outcome]:
        """Flush, then read back the outcomes (see :func:`iter_sqlite_outcomes`)."""
        self.flush()
        return list(iter_sqlite_outcomes(self.path, table=self.table, **filters))

    def records(
        self,
        *,
        since: float | None = None,
        until: float | None = None,
        limit: int | None = None,
        **equals: str | None,
    ) -> list[CostRecord]:
        """Flush, then read back records (oldest first), filtered like :func:`iter_sqlite`."""
        self.flush()
        return list(iter_sqlite(self.path, table=self.table, since=since, until=until, limit=limit, **equals))

    @staticmethod
    def read(path: str | os.PathLike[str], *, table: str = DEFAULT_TABLE, **filters: Any) -> list[CostRecord]:
        """Every record in a costkit SQLite file (see :func:`iter_sqlite` for filters)."""
        return list(iter_sqlite(path, table=table, **filters))

    def __repr__(self) -> str:
        return f"SQLiteSink({str(self.path)!r}, written={self.written}, dropped={self.dropped})"


# what rebuilding the rollups reads of each record
_FIRSTS_COLUMNS: tuple[str, ...] = ("id", "request_id", "timestamp", "model", "requested_model", "provider", "kind")
_FIRSTS_COLUMNS += ("cache", "success", "error_type", "savings", "feature", "tenant", "route", "prompt_version")
_FIRSTS_COLUMNS += ("experiment", "arm")


def rebuild_rollups(path: str | os.PathLike[str], *, table: str = DEFAULT_TABLE, chunk: int = 50_000) -> int:
    """Recompute the rollups of a SQLite file from all its records; returns how many records they cover.

    For files written before the rollups existed (or rows inserted by something other than the
    sink): afterwards ``costkit report`` answers from the rollups again. One transaction: a reader
    sees the old rollups or the new ones, and writers wait for it (``busy_timeout``).
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    conn = _connect(p)
    try:
        ensure_schema(conn, table)
        memory = RequestMemory()  # a request's records are written together: recent requests suffice
        t = _q(table)
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(f"DELETE FROM {_q(table + '_rollup')}")
            conn.execute(f"DELETE FROM {_q(table + '_rollup_savings')}")
            cursor = conn.execute(f"SELECT {', '.join(map(_q, _FIRSTS_COLUMNS))} FROM {t} ORDER BY id")
            savings: dict[tuple[Any, ...], float] = {}
            n = 0
            while rows := cursor.fetchmany(chunk):
                updates = []
                batch = []
                for row in rows:
                    d = dict(zip(_FIRSTS_COLUMNS, row, strict=True))
                    d["savings"] = loads_mapping(d["savings"]) if d["savings"] else {}
                    d["success"] = bool(d["success"]) if d["success"] is not None else True
                    rid = d.pop("id")
                    r = CostRecord(attempt=0, **d)
                    bits = memory.firsts(r)
                    updates.append((bits, rid))
                    if r.savings:
                        batch.append((r, bits))
                for k, v in savings_rows(batch).items():
                    savings[k] = savings.get(k, 0.0) + v
                conn.executemany(f"UPDATE {t} SET firsts = ? WHERE id = ?", updates)
                n += len(rows)
            for sql in rollup_update_sql(table, t, "id > ?", hour_expr=HOUR_SQL):
                conn.execute(sql, (0,))
            if savings:
                conn.executemany(savings_upsert_sql(table, "?"), [(*k, v) for k, v in savings.items()])
            conn.execute(f"UPDATE {_q(table + '_meta')} SET value = 1 WHERE key = 'rollup_from_id'")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return n
    finally:
        conn.close()


def iter_sqlite(
    path: str | os.PathLike[str],
    *,
    table: str = DEFAULT_TABLE,
    since: float | None = None,
    until: float | None = None,
    limit: int | None = None,
    **equals: str | None,
) -> Iterator[CostRecord]:
    """Stream records from a costkit SQLite file, oldest first.

    ``since`` / ``until`` bound ``timestamp`` (epoch seconds, ``since <= t < until``); keyword
    filters match fields exactly (``tenant="acme"``, ``feature="faq"``; ``None`` matches NULL).
    """
    unknown = sorted(set(equals) - set(FIELDS))
    if unknown:
        raise ConfigError(unknown[0], f"not a CostRecord field; fields are {', '.join(FIELDS)}")
    if not Path(path).exists():
        raise FileNotFoundError(f"no such file: {path}")
    where, args = where_clause(since, until, equals, placeholder="?")
    conn = _connect(Path(path))
    try:
        present = [row[1] for row in conn.execute(f"PRAGMA table_info({_q(table)})")]
        if not present:
            raise ConfigError("table", f"{path} has no table {table!r}; is it a costkit SQLite file?")
        cols = [c for c in present if c not in ("id", "firsts")]
        sql = f"SELECT {', '.join(map(_q, cols))} FROM {_q(table)}"
        sql += where + " ORDER BY id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        for values in conn.execute(sql, args):
            yield _record(dict(zip(cols, values, strict=True)))
    finally:
        conn.close()


def iter_sqlite_outcomes(
    path: str | os.PathLike[str],
    *,
    table: str = DEFAULT_TABLE,
    since: float | None = None,
    until: float | None = None,
) -> Iterator[Outcome]:
    """Stream the outcomes of a costkit SQLite file, oldest first (none in a file older than schema 2)."""
    if not Path(path).exists():
        raise FileNotFoundError(f"no such file: {path}")
    outcomes = table + OUTCOMES_SUFFIX
    conn = _connect(Path(path))
    try:
        if not conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (outcomes,)).fetchone():
            return
        sql = f"SELECT task, success, value, labels, timestamp FROM {_q(outcomes)}"
        where, args = where_clause(since, until, {}, placeholder="?")
        for task, success, value, labels, ts in conn.execute(sql + where + " ORDER BY id", args):
            yield Outcome.from_dict(
                {"task": task, "success": success, "value": value, "labels": loads_mapping(labels), "timestamp": ts}
            )
    finally:
        conn.close()


def _record(row: dict[str, Any]) -> CostRecord:
    for f in BOOL_FIELDS:
        if row.get(f) is not None:
            row[f] = bool(row[f])
    for f in JSON_FIELDS:
        if f in row:
            row[f] = loads_mapping(row[f])
    return record_from_mapping(row)


__all__ = [
    "DEFAULT_TABLE",
    "SCHEMA_VERSION",
    "SQLiteSink",
    "ensure_schema",
    "iter_sqlite",
    "iter_sqlite_outcomes",
    "rebuild_rollups",
]
