"""PostgresSink: one ledger for a fleet. Records, outcomes and hourly rollups in Postgres.

SQLite serves one host; many hosts need one ledger. ``PostgresSink(url)`` writes the same record
schema as :class:`~costkit.sinks.SQLiteSink` (one column per CostRecord field, ``savings`` and
``notes`` as JSONB), the same outcomes table and the same hourly rollups, so ``costkit report
postgresql://...`` and ``costkit dashboard postgresql://...`` answer from a few thousand rollup
rows whatever the number of records.

* Off the caller's path: it is a :class:`~costkit.sinks.BackgroundSink`; ``emit`` enqueues, one
  thread writes each batch with ``COPY`` in one transaction that also adds the batch into the
  rollups (computed in Python, upserted in key order, so writers on many hosts never deadlock).
* A database that is down never fails a completion: the batch is retried once on a fresh
  connection, then dropped and counted (``dropped``, ``errors``) with one warning.
* Postgres text cannot hold NUL characters: a NUL in a tag, a note or a text field is stored as
  U+FFFD (nothing else is changed).

Needs ``pip install 'costkit[postgres]'`` (psycopg 3). The schema is created under an advisory
lock, so processes starting together do not race on ``CREATE TABLE``.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterator, Sequence
from typing import Any

from .._warn import warn_once
from ..errors import ConfigError
from ..outcomes import Outcome
from ..records import FIELDS, CostRecord
from ._codec import dumps, record_from_mapping
from ._rollup import RequestMemory, rollup_ddl, rollup_rows, rollup_upsert_sql, savings_rows, savings_upsert_sql
from ._sql import BOOL_FIELDS, INDEXES, INTEGER_FIELDS, JSON_FIELDS, NOT_NULL_FIELDS, REAL_FIELDS, where_clause
from ._sql import quote as _q
from .background import BackgroundSink

DEFAULT_TABLE = "cost_records"
OUTCOMES_SUFFIX = "_outcomes"
URL_SCHEMES = ("postgresql://", "postgres://")
_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,40}$")  # leaves room for the "_rollup_savings" suffixes
_SCHEMA_LOCK = 0x636F73746B6C67  # "costkl" + "g": the advisory lock held while creating the schema


def is_postgres_url(source: object) -> bool:
    return isinstance(source, str) and source.startswith(URL_SCHEMES)


def _driver() -> Any:
    try:
        import psycopg
    except ImportError:
        raise ConfigError("url", "PostgresSink needs psycopg 3: pip install 'costkit[postgres]'") from None
    return psycopg


def _column_type(name: str) -> str:
    if name in INTEGER_FIELDS:
        kind = "BIGINT"
    elif name in REAL_FIELDS:
        kind = "DOUBLE PRECISION"
    elif name in BOOL_FIELDS:
        kind = "BOOLEAN"
    elif name in JSON_FIELDS:
        kind = "JSONB"
    else:
        kind = "TEXT"
    return f"{kind} NOT NULL" if name in NOT_NULL_FIELDS else kind


def check_table(table: str) -> str:
    if not isinstance(table, str) or not _IDENT.match(table):
        raise ConfigError("table", f"expected a lower-case SQL identifier of at most 41 characters, got {table!r}")
    return table


def ensure_schema(conn: Any, table: str = DEFAULT_TABLE) -> None:
    """Create the records, outcomes, rollup and meta tables and their indexes (idempotent)."""
    t = _q(table)
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
        cols = ", ".join(f"{_q(f)} {_column_type(f)}" for f in FIELDS)
        conn.execute(f"CREATE TABLE IF NOT EXISTS {t} (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, {cols})")
        present = {
            row[0]
            for row in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = %s", (table,)
            )
        }
        for f in FIELDS:
            if f not in present:
                conn.execute(f"ALTER TABLE {t} ADD COLUMN {_q(f)} {_column_type(f).replace(' NOT NULL', '')}")
        if "firsts" not in present:
            conn.execute(f"ALTER TABLE {t} ADD COLUMN firsts BIGINT")
        for suffix, columns in INDEXES.items():
            conn.execute(f"CREATE INDEX IF NOT EXISTS {_q(f'{table}_{suffix}')} ON {t} ({', '.join(map(_q, columns))})")
        for ddl in rollup_ddl(table, real="DOUBLE PRECISION", integer="BIGINT"):
            conn.execute(ddl)
        conn.execute(f"CREATE TABLE IF NOT EXISTS {_q(table + '_meta')} (key TEXT PRIMARY KEY, value BIGINT)")
        conn.execute(
            f"INSERT INTO {_q(table + '_meta')} VALUES ('rollup_from_id', (SELECT COALESCE(MAX(id), 0) + 1 FROM {t})) "
            "ON CONFLICT (key) DO NOTHING"
        )
        outcomes = _q(table + OUTCOMES_SUFFIX)
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {outcomes} (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
            "task TEXT NOT NULL, success BOOLEAN NOT NULL, value DOUBLE PRECISION, labels JSONB, "
            "timestamp DOUBLE PRECISION NOT NULL)"
        )
        conn.execute(f"CREATE INDEX IF NOT EXISTS {_q(table + OUTCOMES_SUFFIX + '_task')} ON {outcomes} (task)")


_NUL = "\x00"


def _text(value: str) -> str:
    return value.replace(_NUL, "\ufffd") if _NUL in value else value


def _no_nul(value: Any) -> Any:
    """``value`` with NUL characters replaced in every string, key and nested container."""
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, dict):
        return {_no_nul(k): _no_nul(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_no_nul(v) for v in value]
    return value


def _json(value: Any) -> str:
    text = dumps(dict(value))
    # JSONB refuses \\u0000; a record's notes carry one only if a tag or note did
    return dumps(_no_nul(dict(value))) if "\\u0000" in text else text


def _clean(row: Sequence[Any]) -> tuple[Any, ...]:
    return tuple(_text(v) if isinstance(v, str) else v for v in row)


def _row(record: CostRecord, firsts: int) -> tuple[Any, ...]:
    out: list[Any] = []
    for f in FIELDS:
        v = getattr(record, f)
        if f in JSON_FIELDS:
            v = _json(v)
        elif isinstance(v, str):
            v = _text(v)
        out.append(v)
    out.append(firsts)
    return tuple(out)


def redact(url: str) -> str:
    """The URL without its password (for names, messages and ledger keys)."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


class _PostgresWriter:
    """COPYs each batch and upserts its rollups in one transaction; the connection lives in the writer thread."""

    def __init__(self, url: str, table: str, connect_timeout_s: float) -> None:
        self.url = url
        self.table = table
        self.connect_timeout_s = connect_timeout_s
        self._conn: Any = None
        self._memory = RequestMemory()
        cols = ", ".join(map(_q, FIELDS))
        self._copy = f"COPY {_q(table)} ({cols}, firsts) FROM STDIN"
        self._rollup = rollup_upsert_sql(table, "%s")
        self._savings = savings_upsert_sql(table, "%s")

    def _connection(self) -> Any:
        if self._conn is None or self._conn.closed:
            self._conn = connect(self.url, self.connect_timeout_s)
            ensure_schema(self._conn, self.table)
        return self._conn

    def _retrying(self, work: Any) -> None:
        """Run ``work(conn)`` in a transaction; on a lost connection, once more on a fresh one."""
        psycopg = _driver()
        for attempt in (1, 2):
            conn = self._connection()
            try:
                with conn.transaction():
                    work(conn)
                return
            except psycopg.OperationalError:
                self.close()
                if attempt == 2:
                    raise

    def write_batch(self, records: Sequence[CostRecord]) -> None:
        firsts = [(r, self._memory.firsts(r)) for r in records]
        rows = [_row(r, bits) for r, bits in firsts]
        rollups = rollup_rows(firsts)
        savings = sorted((*k, v) for k, v in savings_rows(firsts).items())

        def work(conn: Any) -> None:
            with conn.cursor() as cur:
                with cur.copy(self._copy) as copy:
                    for row in rows:
                        copy.write_row(row)
                cur.executemany(self._rollup, [_clean(r) for r in rollups])
                if savings:
                    cur.executemany(self._savings, [_clean(r) for r in savings])

        self._retrying(work)

    def write_outcomes(self, outcomes: Sequence[Outcome]) -> None:
        rows = [(_text(o.task), o.success, o.value, _json(o.labels), o.timestamp) for o in outcomes]

        def work(conn: Any) -> None:
            with conn.cursor() as cur:
                cur.executemany(
                    f"INSERT INTO {_q(self.table + OUTCOMES_SUFFIX)} (task, success, value, labels, timestamp) "
                    "VALUES (%s, %s, %s, %s, %s)",
                    rows,
                )

        self._retrying(work)

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None


def connect(url: str, connect_timeout_s: float = 5.0) -> Any:
    """A psycopg connection in autocommit mode: each batch opens its own transaction block."""
    psycopg = _driver()
    return psycopg.connect(url, connect_timeout=max(1, int(connect_timeout_s)), autocommit=True)


class PostgresSink(BackgroundSink):
    """Write records, outcomes and rollups to Postgres at ``url``; ``emit`` only enqueues.

    ``url`` is a libpq URI (``postgresql://user:pw@host/db``). The schema is created at
    construction when the database answers; a database that does not answer yet is warned about
    once and tried again with the first batch (construction does not fail for it). A malformed
    URL or table name is a ``ConfigError``. Queue options are those of :class:`BackgroundSink`.
    """

    def __init__(
        self,
        url: str,
        *,
        table: str = DEFAULT_TABLE,
        max_queue: int = 10_000,
        batch_size: int = 1000,
        flush_interval_s: float = 0.5,
        close_timeout_s: float = 5.0,
        block_when_full: bool = False,
        connect_timeout_s: float = 5.0,
    ) -> None:
        if not is_postgres_url(url):
            raise ConfigError("url", f"expected a postgresql:// URL, got {redact(str(url))!r}")
        psycopg = _driver()
        self.url = url
        self.table = check_table(table)
        try:
            psycopg.conninfo.conninfo_to_dict(url)
        except psycopg.ProgrammingError as exc:
            raise ConfigError("url", f"not a valid libpq URL: {exc}") from None
        try:
            with connect(url, connect_timeout_s) as conn:
                ensure_schema(conn, table)
        except psycopg.OperationalError as exc:
            warn_once(
                f"postgres-sink-down:{redact(url)}",
                f"costkit PostgresSink: {redact(url)} does not answer yet ({exc}); retrying with the first batch",
            )
        super().__init__(
            _PostgresWriter(url, table, connect_timeout_s),
            max_queue=max_queue,
            batch_size=batch_size,
            flush_interval_s=flush_interval_s,
            close_timeout_s=close_timeout_s,
            name=f"PostgresSink({self.table})",
            block_when_full=block_when_full,
        )

    @property
    def ledger_key(self) -> tuple[str, str, str]:
        """Sinks on one database and table are one ledger (an outcome is written to it once)."""
        return ("postgres", redact(self.url), self.table)

    def records(self, *, since: float | None = None, until: float | None = None, **equals: Any) -> list[CostRecord]:
        """Flush, then read back records (oldest first), filtered like :func:`iter_postgres`."""
        self.flush()
        return list(iter_postgres(self.url, table=self.table, since=since, until=until, **equals))

    def outcomes(self) -> list[Outcome]:
        self.flush()
        return list(iter_postgres_outcomes(self.url, table=self.table))

    def __repr__(self) -> str:
        return f"PostgresSink({redact(self.url)!r}, written={self.written}, dropped={self.dropped})"


def iter_postgres(
    url: str,
    *,
    table: str = DEFAULT_TABLE,
    since: float | None = None,
    until: float | None = None,
    limit: int | None = None,
    chunk: int = 5000,
    **equals: Any,
) -> Iterator[CostRecord]:
    """Stream records from a costkit Postgres ledger, oldest first (a server-side cursor, ``chunk`` rows a fetch).

    ``since`` / ``until`` bound ``timestamp`` (``since <= t < until``); keyword filters match
    fields exactly (``None`` matches NULL).
    """
    check_table(table)
    unknown = sorted(set(equals) - set(FIELDS))
    if unknown:
        raise ConfigError(unknown[0], f"not a CostRecord field; fields are {', '.join(FIELDS)}")
    where, args = where_clause(since, until, equals, placeholder="%s")
    sql = f"SELECT {', '.join(map(_q, FIELDS))} FROM {_q(table)}{where} ORDER BY id"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    with connect(url) as conn, conn.transaction(), conn.cursor(name="costkit_records") as cur:
        cur.itersize = chunk
        cur.execute(sql, args)
        for values in cur:
            yield _record(dict(zip(FIELDS, values, strict=True)))


def iter_postgres_outcomes(url: str, *, table: str = DEFAULT_TABLE) -> Iterator[Outcome]:
    """Every outcome of a costkit Postgres ledger, oldest first."""
    check_table(table)
    with connect(url) as conn:
        rows = conn.execute(
            f"SELECT task, success, value, labels, timestamp FROM {_q(table + OUTCOMES_SUFFIX)} ORDER BY id"
        ).fetchall()
    for task, success, value, labels, ts in rows:
        yield Outcome.from_dict({"task": task, "success": success, "value": value, "labels": labels, "timestamp": ts})


def _record(row: dict[str, Any]) -> CostRecord:
    for f in JSON_FIELDS:  # JSONB comes back decoded; anything but an object is not trusted
        if not isinstance(row.get(f), dict):
            row[f] = {}
    return record_from_mapping(row)


__all__ = [
    "DEFAULT_TABLE",
    "PostgresSink",
    "connect",
    "ensure_schema",
    "is_postgres_url",
    "iter_postgres",
    "iter_postgres_outcomes",
    "redact",
]
