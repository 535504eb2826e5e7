"""What both SQL sinks share: the record columns' kinds and indexes, quoted identifiers and the
records' WHERE clause.

The two drivers differ only in the placeholder (``?`` for sqlite3, ``%s`` for psycopg).
"""

from __future__ import annotations

from typing import Any, Final

# The record fields by the kind of column they need (each driver names its own SQL types).
INTEGER_FIELDS: Final = frozenset(
    {"attempt", "input_tokens", "output_tokens", "cached_read_tokens", "cache_write_tokens"}
)
REAL_FIELDS: Final = frozenset({"timestamp", "cost_usd", "saved_usd", "latency_ms"})
BOOL_FIELDS: Final = frozenset({"priced", "success", "usage_estimated"})
JSON_FIELDS: Final = frozenset({"savings", "notes"})
NOT_NULL_FIELDS: Final = frozenset(
    {"request_id", "attempt", "kind", "timestamp", "provider", "requested_model", "model"}
)
#: index name suffix -> its columns: what the report's groupings and time windows read by
INDEXES: Final = {
    "ts": ("timestamp",),
    "tenant_ts": ("tenant", "timestamp"),
    "feature_ts": ("feature", "timestamp"),
    "model_ts": ("model", "timestamp"),
    "request": ("request_id",),
    "task": ("task",),
    "arm": ("experiment", "arm"),
}


def quote(identifier: str) -> str:
    """A SQL identifier in double quotes, safe for any name (a table a user chose, a record field)."""
    return '"' + identifier.replace('"', '""') + '"'


def where_clause(
    since: float | None, until: float | None, equals: dict[str, Any], *, placeholder: str
) -> tuple[str, list[Any]]:
    """`` WHERE ...`` (or ``""``) and its arguments: ``since <= timestamp < until`` and exact matches
    (``None`` matches NULL). Values go as arguments; only quoted field names enter the text."""
    where: list[str] = []
    args: list[Any] = []
    if since is not None:
        where.append(f"timestamp >= {placeholder}")
        args.append(since)
    if until is not None:
        where.append(f"timestamp < {placeholder}")
        args.append(until)
    for name, value in equals.items():
        if value is None:
            where.append(f"{quote(name)} IS NULL")
        else:
            where.append(f"{quote(name)} = {placeholder}")
            args.append(value)
    return (" WHERE " + " AND ".join(where) if where else ""), args
