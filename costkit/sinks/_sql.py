"""SQL text both SQL sinks build the same way: quoted identifiers and the records' WHERE clause.

The two drivers differ only in the placeholder (``?`` for sqlite3, ``%s`` for psycopg).
"""

from __future__ import annotations

from typing import Any


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
