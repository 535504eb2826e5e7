"""Reports answered from the rollups a SQL sink keeps (see :mod:`costkit.sinks._rollup`), in SQL.

:func:`rollup_reports` returns the same :class:`~costkit.report.aggregate.Report` s that
:func:`~costkit.report.aggregate.aggregate_many` computes from the records, or None when the
rollups cannot answer exactly: a grouping or filter on a dimension they do not keep (``user``,
``task``), two dimensions that vary within a request (``model`` and ``kind``), ``since`` /
``until`` off an hour boundary, or a file whose older records predate its rollups. The caller then
reads the records.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from ..sinks._rollup import BIT_DIMS, CELL_DIMS, REQUEST_COUNTS, SUMS, TIME_DIMS, q
from .aggregate import GroupStats, Report, _sort_key, check_dimensions


class Dialect:
    """What differs between SQLite and Postgres in the queries here.

    ``mark``: the placeholder; ``time_label(dim)``: a rollup hour as its UTC day / month / hour
    label; ``bucket(seconds)``: a record's timestamp as an integer bucket; ``note_bool(key)`` /
    ``note_number(key)``: a note read defensively (1/0 for a JSON true/false, a number, else NULL:
    stored notes are not trusted, a malformed or missing value is NULL, never an error);
    ``has_note(key)``: a cheap pre-filter for records carrying that note; ``unindexed(expr)``: the
    expression in a form the planner will not answer from an index (SQLite would walk all of
    ``request_id``'s index to group a time range by it, instead of the timestamp index).
    """

    def __init__(
        self,
        name: str,
        mark: str,
        time_label: Callable[[str], str],
        bucket: Callable[[int], str],
        note_bool: Callable[[str], str],
        note_number: Callable[[str], str],
        has_note: Callable[[str], str],
        unindexed: Callable[[str], str] = lambda expr: expr,
    ) -> None:
        self.name = name
        self.mark = mark
        self.time_label = time_label
        self.bucket = bucket
        self.note_bool = note_bool
        self.note_number = note_number
        self.has_note = has_note
        self.unindexed = unindexed


def _key_literal(key: str) -> str:
    if not key.replace("_", "").isalnum():
        raise ValueError(f"not a note key: {key!r}")
    return key


_SQLITE_FORMATS = {"day": "%Y-%m-%d", "month": "%Y-%m", "hour": "%Y-%m-%dT%H:00Z"}
_PG_FORMATS = {"day": "YYYY-MM-DD", "month": "YYYY-MM", "hour": 'YYYY-MM-DD"T"HH24:00"Z"'}
SQLITE = Dialect(
    "sqlite",
    "?",
    lambda dim: f"strftime('{_SQLITE_FORMATS[dim]}', hour * 3600, 'unixepoch')",
    lambda s: f"CAST(timestamp / {int(s)} AS INTEGER)",
    lambda k: (
        f"(CASE WHEN json_valid(notes) THEN CASE json_type(notes, '$.{_key_literal(k)}') "
        "WHEN 'true' THEN 1 WHEN 'false' THEN 0 END END)"
    ),
    lambda k: (
        f"(CASE WHEN json_valid(notes) AND json_type(notes, '$.{_key_literal(k)}') IN ('integer', 'real') "
        f"THEN json_extract(notes, '$.{_key_literal(k)}') END)"
    ),
    lambda k: f"notes LIKE '%\"{_key_literal(k)}\"%'",
    lambda expr: f"+{expr}",
)
POSTGRES = Dialect(
    "postgres",
    "%s",
    lambda dim: f"to_char(to_timestamp(hour * 3600) AT TIME ZONE 'UTC', '{_PG_FORMATS[dim]}')",
    lambda s: f"floor(timestamp / {int(s)})::bigint",
    lambda k: (
        f"(CASE WHEN jsonb_typeof(notes -> '{_key_literal(k)}') = 'boolean' "
        f"THEN CASE WHEN (notes ->> '{_key_literal(k)}') = 'true' THEN 1 ELSE 0 END END)"
    ),
    lambda k: (
        f"(CASE WHEN jsonb_typeof(notes -> '{_key_literal(k)}') = 'number' "
        f"THEN (notes ->> '{_key_literal(k)}')::float8 END)"
    ),
    lambda k: f"notes ? '{_key_literal(k)}'",
)


def _request_column(dims: Sequence[str]) -> str | None:
    varying = [d for d in dims if d in BIT_DIMS]
    if len(varying) > 1:
        return None
    return f"req_{varying[0]}" if varying else "req_first"


def _expr(dim: str, dialect: Dialect) -> str | None:
    if dim in TIME_DIMS:
        return dialect.time_label(dim)
    if dim in CELL_DIMS:
        return q(dim)
    return None


def _where(
    since: float | None, until: float | None, equals: Mapping[str, Any], dialect: Dialect
) -> tuple[str, list[Any]] | None:
    clauses: list[str] = []
    args: list[Any] = []
    for bound, op in ((since, ">="), (until, "<")):
        if bound is None:
            continue
        if bound % 3600:
            return None  # the rollups are hourly
        clauses.append(f"hour {op} {dialect.mark}")
        args.append(int(bound // 3600))
    for name, value in equals.items():
        if name not in CELL_DIMS:
            return None
        clauses.append(f"{q(name)} = {dialect.mark}")
        args.append("" if value is None else str(value))
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), args


def _key(values: Iterable[Any]) -> tuple[Any, ...]:
    return tuple(None if v == "" else v for v in values)


def rollup_reports(
    execute: Callable[[str, Sequence[Any]], list[tuple[Any, ...]]],
    table: str,
    groupings: Iterable[Iterable[str]],
    *,
    since: float | None = None,
    until: float | None = None,
    equals: Mapping[str, Any] | None = None,
    dialect: Dialect = SQLITE,
) -> list[Report] | None:
    """Reports from ``table``'s rollups via ``execute(sql, args) -> rows``; None when they cannot answer."""
    plans = [check_dimensions(by) for by in groupings]
    where = _where(since, until, equals or {}, dialect)
    if where is None:
        return None
    cond, args = where
    for dims in plans:
        if _request_column(dims) is None or any(_expr(d, dialect) is None for d in dims):
            return None
    rollup, savings = q(table + "_rollup"), q(table + "_rollup_savings")
    sums = ", ".join(f"SUM({q(c)})" for c in (*SUMS, *REQUEST_COUNTS))

    def stats(dims: Sequence[str]) -> tuple[dict[tuple[Any, ...], list[Any]], dict[tuple[Any, ...], dict[str, float]]]:
        exprs = [_expr(d, dialect) or "" for d in dims]
        select = ", ".join(exprs)
        group = f" GROUP BY {', '.join(str(i + 1) for i in range(len(exprs)))}" if exprs else ""
        head = f"{select}, " if exprs else ""
        rows = execute(f"SELECT {head}{sums} FROM {rollup}{cond}{group}", args)
        out = {_key(row[: len(exprs)]): list(row[len(exprs) :]) for row in rows if row[len(exprs)] is not None}
        layer_rows = execute(
            f"SELECT {head}layer, SUM(usd) FROM {savings}{cond}{group}{', layer' if exprs else ' GROUP BY layer'}", args
        )
        layers: dict[tuple[Any, ...], dict[str, float]] = {}
        for row in layer_rows:
            key = _key(row[: len(exprs)])
            layers.setdefault(key, {})[row[len(exprs)]] = float(row[len(exprs) + 1])
        return out, layers

    total_rows, total_layers = stats(())
    total_values = total_rows.get((), None)
    total_cost = float(total_values[SUMS.index("cost_usd")]) if total_values else 0.0
    total = _group((), total_values, total_layers.get((), {}), "req_first", total_cost)
    reports = []
    for dims in plans:
        rows, layers = stats(dims)
        column = _request_column(dims) or "req_first"
        groups = tuple(
            sorted((_group(k, v, layers.get(k, {}), column, total_cost) for k, v in rows.items()), key=_sort_key)
        )
        reports.append(Report(by=dims, groups=groups, total=total))
    return reports


def _group(
    key: tuple[Any, ...], values: list[Any] | None, savings: Mapping[str, float], column: str, total_cost: float
) -> GroupStats:
    v: dict[str, Any] = dict(
        zip((*SUMS, *REQUEST_COUNTS), values or [0] * (len(SUMS) + len(REQUEST_COUNTS)), strict=True)
    )
    cost = float(v["cost_usd"] or 0.0)
    return GroupStats(
        key=key,
        requests=int(v[column] or 0),
        attempts=int(v["records"] or 0) - int(v["cache_hits"] or 0),
        cache_hits=int(v["cache_hits"] or 0),
        records=int(v["records"] or 0),
        input_tokens=int(v["input_tokens"] or 0),
        output_tokens=int(v["output_tokens"] or 0),
        cached_read_tokens=int(v["cached_read_tokens"] or 0),
        cache_write_tokens=int(v["cache_write_tokens"] or 0),
        cost_usd=cost,
        saved_usd=float(v["saved_usd"] or 0.0),
        savings=dict(sorted(savings.items(), key=lambda kv: (-kv[1], kv[0]))),
        errors=int(v["errors"] or 0),
        unpriced=int(v["unpriced"] or 0),
        cached_requests=int(v["req_hit"] or 0),
        share=cost / total_cost if total_cost else 0.0,
    )


__all__ = ["POSTGRES", "SQLITE", "Dialect", "rollup_reports"]
