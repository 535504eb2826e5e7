"""A records store queried in SQL: a costkit SQLite file, a Postgres ledger, or records imported into one.

The report, the dashboard, the stored-records alerts and the forecast all read a ledger through
this one class, so each number has one SQL definition for both engines (the differences are in
:class:`~costkit.report.rollups.Dialect`). Most queries read the hourly rollups the sinks keep;
the few that need per-record detail (a request's total, a task's cost, notes written by the
caches) read the records table within a time range, on its timestamp index.

A JSONL file (or any iterable of records) is imported into a private temporary SQLite file with
the same schema and rollups (:meth:`Store.from_records`), so it is queried the same way; that
costs one write of every record, fine for the sizes JSONL is meant for.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ..outcomes import Outcome
from ..records import FIELDS, CostRecord
from ..sinks._rollup import CELL_DIMS, q
from . import rollups
from .aggregate import Report, aggregate_many
from .rollups import POSTGRES, SQLITE, Dialect

DEFAULT_TABLE = "cost_records"
IMPORT_BATCH = 5000


class Store:
    """SQL access to one ledger (see the module docstring). Use :func:`open_store` to get one."""

    def __init__(
        self,
        conn: Any,
        dialect: Dialect,
        *,
        source: str,
        table: str = DEFAULT_TABLE,
        location: str | None = None,
        cleanup: str | None = None,
    ) -> None:
        self._conn = conn
        self.dialect = dialect
        self.source = source  # for people: a path, or a URL without its password
        self.location = location or source  # what the record readers open (a path or the URL)
        self.table = table
        self._cleanup = cleanup

    # -- opening --------------------------------------------------------------------------------

    @classmethod
    def from_records(
        cls, records: Iterable[CostRecord], outcomes: Iterable[Outcome] = (), *, source: str = "records"
    ) -> Store:
        """Import ``records`` (and ``outcomes``) into a private temporary SQLite ledger, deleted at :meth:`close`."""
        from ..sinks.sqlite import _connect, _SQLiteWriter, ensure_schema

        directory = tempfile.mkdtemp(prefix="costkit-store-")  # mode 0700
        path = Path(directory) / "records.db"
        writer = _SQLiteWriter(path, DEFAULT_TABLE)
        batch: list[CostRecord] = []
        for r in records:
            batch.append(r)
            if len(batch) >= IMPORT_BATCH:
                writer.write_batch(batch)
                batch = []
        if batch:
            writer.write_batch(batch)
        outs = list(outcomes)
        if outs:
            writer.write_outcomes(outs)
        writer.close()
        conn = _connect(path)
        ensure_schema(conn, DEFAULT_TABLE)
        return cls(conn, SQLITE, source=source, location=str(path), cleanup=directory)

    # -- plumbing -------------------------------------------------------------------------------

    @property
    def mark(self) -> str:
        return self.dialect.mark

    def rows(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return list(self._conn.execute(sql, tuple(args)).fetchall())

    def t(self, suffix: str = "") -> str:
        """The quoted name of the records table (``suffix``: ``_rollup``, ``_outcomes`` ...)."""
        return q(self.table + suffix)

    def close(self) -> None:
        try:
            self._conn.close()
        finally:
            if self._cleanup:
                shutil.rmtree(self._cleanup, ignore_errors=True)
                self._cleanup = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- what is in it --------------------------------------------------------------------------

    def rollups_cover(self) -> bool:
        """True when the rollups hold every record (none predates them)."""
        try:
            meta = f"SELECT value FROM {self.t('_meta')} WHERE key = 'rollup_from_id'"
            row = self.rows(f"SELECT ({meta}), (SELECT MIN(id) FROM {self.t()})")[0]
        except Exception:  # no meta table: written before the rollups
            self._reset()
            return False
        start, first = row
        return start is not None and (first is None or int(start) <= int(first))

    def _reset(self) -> None:
        rollback = getattr(self._conn, "rollback", None)
        if self.dialect is POSTGRES and callable(rollback):
            rollback()

    def time_range(self) -> tuple[float, float] | None:
        """(first, last) record timestamp, or None when the ledger is empty."""
        # two statements: each is one step down the timestamp index (one with both scans the table in SQLite)
        first = self.rows(f"SELECT MIN(timestamp) FROM {self.t()}")[0][0]
        last = self.rows(f"SELECT MAX(timestamp) FROM {self.t()}")[0][0]
        return None if first is None else (float(first), float(last))

    def records(self, *, since: float | None = None, until: float | None = None, **equals: Any) -> Iterator[CostRecord]:
        """The records, oldest first, filtered like ``iter_sqlite`` / ``iter_postgres``."""
        if self.dialect is POSTGRES:
            from ..sinks.postgres import iter_postgres

            return iter_postgres(self.location, table=self.table, since=since, until=until, **equals)
        from ..sinks.sqlite import iter_sqlite

        return iter_sqlite(self.location, table=self.table, since=since, until=until, **equals)

    def outcomes(self) -> list[Outcome]:
        """Every outcome, oldest first (read on this store's connection: inside a :meth:`snapshot`)."""
        from ..sinks._codec import loads_mapping

        try:
            rows = self.rows(f"SELECT task, success, value, labels, timestamp FROM {self.t('_outcomes')} ORDER BY id")
        except Exception:  # a file from before outcomes existed
            self._reset()
            return []
        out = []
        for task, success, value, labels, ts in rows:
            mapping = labels if isinstance(labels, dict) else loads_mapping(labels)
            out.append(
                Outcome.from_dict(
                    {"task": task, "success": success, "value": value, "labels": mapping, "timestamp": ts}
                )
            )
        return out

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[Store]:
        """Read everything inside from one consistent state of the ledger (one read transaction), so
        a writer committing meanwhile cannot make the totals and the series disagree."""
        self._conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY" if self.dialect is POSTGRES else "BEGIN")
        try:
            yield self
        finally:
            self._conn.execute("COMMIT")

    def reports(
        self,
        groupings: Iterable[Iterable[str]],
        *,
        since: float | None = None,
        until: float | None = None,
        equals: dict[str, Any] | None = None,
    ) -> list[Report]:
        """Reports from the rollups when they can answer, else from the records (one pass)."""
        groupings = [tuple(g) for g in groupings]
        equals = dict(equals or {})
        if self.rollups_cover():
            reports = rollups.rollup_reports(
                self.rows, self.table, groupings, since=since, until=until, equals=equals, dialect=self.dialect
            )
            if reports is not None:
                return reports
        from .aggregate import filter_records

        column = {k: v for k, v in equals.items() if k in FIELDS}
        other = {k: v for k, v in equals.items() if k not in FIELDS}
        records: Iterable[CostRecord] = self.records(since=since, until=until, **column)
        return aggregate_many(filter_records(records, **other) if other else records, groupings)

    # -- series the dashboard, the alerts and the forecast read ---------------------------------

    def hourly(
        self,
        dims: Sequence[str],
        measures: Sequence[str],
        *,
        since_hour: int | None = None,
        until_hour: int | None = None,
    ) -> list[tuple[Any, ...]]:
        """Rollup sums by hour and ``dims``: rows ``(hour, *dims, *measures)``; ``''`` dims come back as None."""
        for d in dims:
            if d not in CELL_DIMS:
                raise ValueError(f"not a rollup dimension: {d!r}")
        where, args = self._hour_range(since_hour, until_hour)
        head = ", ".join(["hour", *map(q, dims)])
        sums = ", ".join(f"SUM({q(m)})" for m in measures)
        sql = f"SELECT {head}, {sums} FROM {self.t('_rollup')}{where} GROUP BY {head} ORDER BY {head}"
        return [_nulls(row, len(dims)) for row in self.rows(sql, args)]

    def hourly_savings(
        self, *, since_hour: int | None = None, until_hour: int | None = None
    ) -> list[tuple[int, str, float]]:
        """(hour, layer, USD saved)."""
        where, args = self._hour_range(since_hour, until_hour)
        table = self.t("_rollup_savings")
        sql = f"SELECT hour, layer, SUM(usd) FROM {table}{where} GROUP BY hour, layer ORDER BY hour, layer"
        return [(int(h), str(layer), float(usd)) for h, layer, usd in self.rows(sql, args)]

    def _hour_range(self, since_hour: int | None, until_hour: int | None) -> tuple[str, list[Any]]:
        return self._range(
            "hour", None if since_hour is None else int(since_hour), None if until_hour is None else int(until_hour)
        )

    def _time_range(self, since: float | None, until: float | None, *extra: str) -> tuple[str, list[Any]]:
        return self._range(
            "timestamp", None if since is None else float(since), None if until is None else float(until), *extra
        )

    def _range(self, column: str, since: float | None, until: float | None, *extra: str) -> tuple[str, list[Any]]:
        """`` WHERE since <= column < until`` and the ``extra`` conditions (or ``""``), and its arguments."""
        clauses, args = list(extra), []
        if since is not None:
            clauses.append(f"{column} >= {self.mark}")
            args.append(since)
        if until is not None:
            clauses.append(f"{column} < {self.mark}")
            args.append(until)
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), args

    def bucketed(
        self, dim: str, seconds: int, *, since: float | None = None, until: float | None = None
    ) -> list[tuple[int, str | None, float, int]]:
        """(bucket, dim value, USD, records) per ``seconds``-long bucket of the records' timestamps."""
        if dim not in FIELDS:
            raise ValueError(f"not a record field: {dim!r}")
        where, args = self._time_range(since, until)
        b = self.dialect.bucket(seconds)
        sql = (
            f"SELECT {b}, {q(dim)}, SUM(COALESCE(cost_usd, 0)), COUNT(*) FROM {self.t()}{where} "
            f"GROUP BY {b}, {q(dim)} ORDER BY 1"
        )
        return [(int(b_), v, float(usd), int(n)) for b_, v, usd, n in self.rows(sql, args)]

    def first_seen(self, dim: str) -> dict[str | None, float]:
        """Each value of ``dim`` -> the timestamp of its first record (on the index where there is one)."""
        if dim not in FIELDS:
            raise ValueError(f"not a record field: {dim!r}")
        sql = f"SELECT {q(dim)}, MIN(timestamp) FROM {self.t()} GROUP BY {q(dim)}"
        return {v: float(ts) for v, ts in self.rows(sql)}

    def verified(
        self, dim: str | None, *, since: float | None = None, until: float | None = None
    ) -> list[tuple[int, str | None, int, int]]:
        """(hour, dim value, sampled hits verified right, wrong) from ``notes["cache_verified"]``."""
        note = self.dialect.note_bool("cache_verified")
        where, args = self._time_range(since, until, self.dialect.has_note("cache_verified"))
        col = q(dim) if dim else "NULL"
        sql = (
            f"SELECT hour, dim, SUM(CASE WHEN v = 1 THEN 1 ELSE 0 END), SUM(CASE WHEN v = 0 THEN 1 ELSE 0 END) "
            f"FROM (SELECT {self.dialect.bucket(3600)} AS hour, {col} AS dim, {note} AS v FROM {self.t()}{where}) s "
            "WHERE v IS NOT NULL GROUP BY hour, dim ORDER BY hour"
        )
        return [(int(h), d, int(ok), int(bad)) for h, d, ok, bad in self.rows(sql, args)]

    def noted_flags(
        self, dim: str | None, keys: Sequence[str], *, since: float | None = None, until: float | None = None
    ) -> dict[str | None, dict[str, tuple[int, int]]]:
        """Per value of ``dim``: each boolean note of ``keys`` -> (records where it is true, records that
        carry it). A note that is not a JSON boolean counts as absent (stored notes are not trusted)."""
        if dim is not None and dim not in FIELDS:
            raise ValueError(f"not a record field: {dim!r}")
        notes = [self.dialect.note_bool(k) for k in keys]  # raises on a key that is not a plain name
        where, args = self._time_range(since, until, "(" + " OR ".join(self.dialect.has_note(k) for k in keys) + ")")
        col = q(dim) if dim else "NULL"
        inner = ", ".join(f"{n} AS v{i}" for i, n in enumerate(notes))
        sums = ", ".join(
            f"SUM(CASE WHEN v{i} = 1 THEN 1 ELSE 0 END), SUM(CASE WHEN v{i} IS NULL THEN 0 ELSE 1 END)"
            for i in range(len(keys))
        )
        sql = f"SELECT dim, {sums} FROM (SELECT {col} AS dim, {inner} FROM {self.t()}{where}) s GROUP BY dim"
        out: dict[str | None, dict[str, tuple[int, int]]] = {}
        for row in self.rows(sql, args):
            counts = [int(c or 0) for c in row[1:]]
            out[row[0]] = {k: (counts[2 * i], counts[2 * i + 1]) for i, k in enumerate(keys)}
        return out

    def noted_delta(
        self, dim: str | None, *, since: float | None = None, until: float | None = None
    ) -> list[tuple[int, str | None, float]]:
        """(hour, dim value, the smallest ``max_false_hit_rate`` noted on semantic hits)."""
        note = self.dialect.note_number("max_false_hit_rate")
        where, args = self._time_range(since, until, "cache = 'semantic'", self.dialect.has_note("max_false_hit_rate"))
        col = q(dim) if dim else "NULL"
        sql = (
            f"SELECT hour, dim, MIN(v) FROM (SELECT {self.dialect.bucket(3600)} AS hour, {col} AS dim, {note} AS v "
            f"FROM {self.t()}{where}) s WHERE v IS NOT NULL GROUP BY hour, dim ORDER BY hour"
        )
        return [(int(h), d, float(v)) for h, d, v in self.rows(sql, args)]

    def aged_hits(
        self, dim: str | None, *, since: float | None = None, until: float | None = None
    ) -> list[tuple[float, str | None, str | None, float, float | None]]:
        """(timestamp, dim value, feature, cached_at, ttl_s note) of the cache hits that say when their
        entry was stored, oldest first."""
        cached_at = self.dialect.note_number("cached_at")
        ttl = self.dialect.note_number("ttl_s")
        where, args = self._time_range(since, until, "kind = 'cache_hit'", self.dialect.has_note("cached_at"))
        col = q(dim) if dim else "NULL"
        sql = (
            f"SELECT timestamp, dim, feature, ca, ttl FROM (SELECT timestamp, {col} AS dim, feature, "
            f"{cached_at} AS ca, {ttl} AS ttl FROM {self.t()}{where}) s WHERE ca IS NOT NULL ORDER BY timestamp"
        )
        rows = self.rows(sql, args)
        return [(float(ts), d, f, float(ca), None if tt is None else float(tt)) for ts, d, f, ca, tt in rows]

    def top_requests(
        self, n: int = 20, *, since: float | None = None, until: float | None = None
    ) -> list[dict[str, Any]]:
        """The ``n`` costliest requests (every attempt summed), costliest first."""
        where, args = self._time_range(since, until)
        sql = (
            f"SELECT request_id, SUM(COALESCE(cost_usd, 0)) AS usd, COUNT(*), MIN(timestamp), MAX(feature), "
            f"MAX(tenant), MAX(model), SUM(input_tokens), SUM(output_tokens) FROM {self.t()}{where} "
            f"GROUP BY {self.dialect.unindexed('request_id')} ORDER BY usd DESC, request_id LIMIT {int(n)}"
        )
        keys = (
            "request_id",
            "cost_usd",
            "records",
            "timestamp",
            "feature",
            "tenant",
            "model",
            "input_tokens",
            "output_tokens",
        )
        return [dict(zip(keys, row, strict=True)) for row in self.rows(sql, args)]

    def task_costs(
        self, by: Sequence[str], *, since: float | None = None, until: float | None = None
    ) -> dict[tuple[tuple[Any, ...], str], float]:
        """(group key, task) -> cost of the task's records in that group, in SQL (see ``tasks.task_costs``)."""
        for d in by:
            if d not in FIELDS:
                raise ValueError(f"not a record field: {d!r}")
        where, args = self._time_range(since, until, "task IS NOT NULL")
        cols = ", ".join([*map(q, by), "task"])
        sql = f"SELECT {cols}, SUM(COALESCE(cost_usd, 0)) FROM {self.t()}{where} GROUP BY {cols}"
        return {(tuple(row[: len(by)]), str(row[len(by)])): float(row[-1]) for row in self.rows(sql, args)}


def _nulls(row: tuple[Any, ...], n_dims: int) -> tuple[Any, ...]:
    return (int(row[0]), *(None if v == "" else v for v in row[1 : 1 + n_dims]), *row[1 + n_dims :])


def open_sql_store(source: str | os.PathLike[str], *, table: str = DEFAULT_TABLE) -> Store:
    """A :class:`Store` over a SQLite file or Postgres URL in place (no import, rollups or not)."""
    from ..sinks.postgres import is_postgres_url

    if is_postgres_url(source):
        from ..sinks.postgres import check_table, connect, redact

        url = str(source)
        return Store(connect(url), POSTGRES, source=redact(url), location=url, table=check_table(table))
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {source}")
    from ..sinks.sqlite import _connect

    return Store(_connect(path), SQLITE, source=str(path), table=table)


def open_store(source: str | os.PathLike[str] | Store, *, table: str = DEFAULT_TABLE) -> Store:
    """A :class:`Store` over a costkit SQLite file, a ``postgresql://`` URL, or a JSONL file (imported).

    ``FileNotFoundError`` for a missing file. A SQLite file written before the rollups is imported
    too (run ``costkit report --rebuild-rollups FILE`` once to query it in place).
    """
    if isinstance(source, Store):
        return source
    from ..sinks.postgres import is_postgres_url
    from .source import file_format

    if is_postgres_url(source):
        return open_sql_store(source, table=table)
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {source}")
    if file_format(path) == "sqlite":
        store = open_sql_store(path, table=table)
        if store.rollups_cover():
            return store
        store.close()
        from ..sinks.sqlite import iter_sqlite, iter_sqlite_outcomes

        return Store.from_records(
            iter_sqlite(path, table=table), iter_sqlite_outcomes(path, table=table), source=str(path)
        )
    from ..sinks.jsonl import iter_jsonl, iter_jsonl_outcomes

    return Store.from_records(iter_jsonl(path), iter_jsonl_outcomes(path), source=str(path))


__all__ = ["DEFAULT_TABLE", "Store", "open_sql_store", "open_store"]
