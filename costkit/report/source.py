"""Read cost records from where the sinks wrote them: a SQLite or JSONL file (chosen by extension or
content), or a Postgres ledger (a ``postgresql://`` URL)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..outcomes import Outcome
from ..records import FIELDS, CostRecord
from .aggregate import Report, aggregate_many, filter_records

SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")
JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json", ".log")
_SQLITE_MAGIC = b"SQLite format 3\x00"


def file_format(path: str | os.PathLike[str]) -> str:
    """``"sqlite"`` or ``"jsonl"``: by extension, else by the file's first bytes."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix in SQLITE_SUFFIXES:
        return "sqlite"
    if suffix in JSONL_SUFFIXES:
        return "jsonl"
    with open(p, "rb") as f:
        return "sqlite" if f.read(16) == _SQLITE_MAGIC else "jsonl"


def load_records(
    path: str | os.PathLike[str],
    *,
    since: float | None = None,
    until: float | None = None,
    **equals: Any,
) -> Iterable[CostRecord]:
    """Stream the records of a costkit SQLite or JSONL file, filtered (``since <= t < until``, fields equal).

    Raises ``FileNotFoundError`` for a missing file. SQLite and Postgres filters run in SQL on the
    indexed columns; JSONL is filtered while it is read.
    """
    from ..sinks.postgres import is_postgres_url

    if is_postgres_url(path):
        from ..sinks.postgres import iter_postgres

        column_filters = {k: v for k, v in equals.items() if k in FIELDS}
        other = {k: v for k, v in equals.items() if k not in FIELDS}
        rows: Iterable[CostRecord] = iter_postgres(str(path), since=since, until=until, **column_filters)
        return filter_records(rows, **other) if other else rows
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    if file_format(p) == "sqlite":
        from ..sinks.sqlite import iter_sqlite

        column_filters = {k: v for k, v in equals.items() if k in FIELDS}
        other = {k: v for k, v in equals.items() if k not in FIELDS}
        records: Iterable[CostRecord] = iter_sqlite(p, since=since, until=until, **column_filters)
        return filter_records(records, **other) if other else records
    from ..sinks.jsonl import iter_jsonl

    return filter_records(iter_jsonl(p), since=since, until=until, **equals)


def load_outcomes(path: str | os.PathLike[str]) -> list[Outcome]:
    """Every outcome in a costkit SQLite or JSONL file or Postgres ledger."""
    from ..sinks.postgres import is_postgres_url

    if is_postgres_url(path):
        from ..sinks.postgres import iter_postgres_outcomes

        return list(iter_postgres_outcomes(str(path)))
    if file_format(path) == "sqlite":
        from ..sinks.sqlite import iter_sqlite_outcomes

        return list(iter_sqlite_outcomes(path))
    from ..sinks.jsonl import iter_jsonl_outcomes

    return list(iter_jsonl_outcomes(path))


def load_reports(
    path: str | os.PathLike[str],
    groupings: Iterable[Iterable[str]],
    *,
    since: float | None = None,
    until: float | None = None,
    **equals: Any,
) -> list[Report]:
    """The reports of ``groupings``: from a SQLite file's or Postgres ledger's rollups when they can
    answer (milliseconds, whatever the size), else by reading the records (one pass)."""
    from ..sinks.postgres import is_postgres_url

    groupings = [tuple(g) for g in groupings]
    if is_postgres_url(path) or (Path(path).is_file() and file_format(path) == "sqlite"):
        from .store import Store, open_sql_store

        store: Store = open_sql_store(path)
        with store:
            return store.reports(groupings, since=since, until=until, equals=equals)
    return aggregate_many(load_records(path, since=since, until=until, **equals), groupings)


__all__ = [
    "JSONL_SUFFIXES",
    "SQLITE_SUFFIXES",
    "file_format",
    "load_outcomes",
    "load_records",
    "load_reports",
]
