"""Rollups a SQL sink keeps beside its records, so a report over millions of records reads thousands of rows.

The rollup table has one row per UTC hour and *cell*: a combination of the dimensions reports
group by (:data:`CELL_DIMS`; NULL is stored as ``''``). Each row sums what the report shows
(records, tokens, cost, saved, errors, unpriced) and counts requests without keeping their ids:

* a record carries ``firsts``, a bit mask set by the writer: bit 0 when it is the first record of
  its request; bit ``1 + i`` when it is the first record of its request with its value of the
  *varying* dimension ``i`` (:data:`BIT_DIMS`: the model, kind, cache ... and the UTC hour, day
  and month may change between a request's attempts); :data:`HIT_BIT` when it is the request's
  first cache hit;
* so the requests of a group are the sum of the bit that fits the grouping: bit 0 when it uses only
  dimensions a request never changes (tenant, feature, route ...), the varying dimension's bit when
  it uses one of those. A grouping by two varying dimensions (model and day) cannot be answered
  from the rollups; the report then reads the records.

The writer knows a request's earlier records from a bounded memory of recent requests
(:class:`RequestMemory`): costkit emits a request's records together, so its records meet there.
Savings by layer sit in a second table with the same cells and a ``layer`` column.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections import OrderedDict
from typing import Any

from ..records import CostRecord
from ._sql import quote as q

#: dimensions a request's records always share (from its tags)
CONSTANT_DIMS = ("feature", "tenant", "route", "prompt_version", "experiment", "arm")
#: dimensions that may change between the records of one request
VARYING_DIMS = ("model", "requested_model", "provider", "kind", "cache", "success", "error_type")
CELL_DIMS = CONSTANT_DIMS + VARYING_DIMS
#: UTC time buckets: a request's records may straddle one; they have request bits, not cell columns
TIME_DIMS = ("hour", "day", "month")
BIT_DIMS = VARYING_DIMS + TIME_DIMS
FIRST_BIT = 1
HIT_BIT = 1 << (1 + len(BIT_DIMS))
SUMS = (
    "records",
    "cache_hits",
    "input_tokens",
    "output_tokens",
    "cached_read_tokens",
    "cache_write_tokens",
    "cost_usd",
    "saved_usd",
    "errors",
    "unpriced",
)
REQUEST_COUNTS = ("req_first", *(f"req_{d}" for d in BIT_DIMS), "req_hit")


def varying_bit(dim: str) -> int:
    return 1 << (1 + BIT_DIMS.index(dim))


_TIME_FORMATS = {"hour": "%Y-%m-%dT%H", "day": "%Y-%m-%d", "month": "%Y-%m"}


@functools.lru_cache(maxsize=4096)
def _time_label(hour: int, dim: str) -> str:
    return dt.datetime.fromtimestamp(hour * 3600, dt.timezone.utc).strftime(_TIME_FORMATS[dim])


def cell_value(record: CostRecord, dim: str) -> str:
    if dim == "success":
        return "ok" if record.success else "error"
    if dim in _TIME_FORMATS:
        return _time_label(int(record.timestamp // 3600), dim)
    value = getattr(record, dim)
    return "" if value is None else str(value)


def is_hit(record: CostRecord) -> bool:
    return record.kind == "cache_hit" or record.cache != "none"


class RequestMemory:
    """Which (dimension, value) pairs the recent requests' records already had: the ``firsts`` bits."""

    def __init__(self, max_requests: int = 100_000) -> None:
        self.max_requests = max_requests
        self._seen: OrderedDict[str, set[tuple[int, str]]] = OrderedDict()

    def firsts(self, record: CostRecord) -> int:
        seen = self._seen.get(record.request_id)
        bits = 0
        if seen is None:
            seen = self._seen[record.request_id] = set()
            bits = FIRST_BIT
            if len(self._seen) > self.max_requests:
                self._seen.popitem(last=False)
        for i, dim in enumerate(BIT_DIMS):
            key = (i, cell_value(record, dim))
            if key not in seen:
                seen.add(key)
                bits |= 1 << (1 + i)
        if is_hit(record) and (-1, "") not in seen:
            seen.add((-1, ""))
            bits |= HIT_BIT
        return bits


def _cell_columns() -> str:
    return ", ".join(f"{q(d)} TEXT NOT NULL" for d in CELL_DIMS)


def rollup_ddl(table: str, *, real: str = "REAL", integer: str = "INTEGER", unique_nulls: str = "") -> list[str]:
    """CREATE statements of the two rollup tables of ``table`` (``<table>_rollup``, ``<table>_rollup_savings``)."""
    keys = ", ".join(["hour", *map(q, CELL_DIMS)])
    sums = ", ".join(f"{q(c)} {real if c in ('cost_usd', 'saved_usd') else integer} NOT NULL" for c in SUMS)
    counts = ", ".join(f"{q(c)} {integer} NOT NULL" for c in REQUEST_COUNTS)
    return [
        f"CREATE TABLE IF NOT EXISTS {q(table + '_rollup')} (hour {integer} NOT NULL, {_cell_columns()}, "
        f"{sums}, {counts}, UNIQUE {unique_nulls} ({keys}))",
        f"CREATE TABLE IF NOT EXISTS {q(table + '_rollup_savings')} (hour {integer} NOT NULL, {_cell_columns()}, "
        f"layer TEXT NOT NULL, usd {real} NOT NULL, UNIQUE {unique_nulls} ({keys}, layer))",
    ]


def _hit_sql(alias: str = "") -> str:
    return f"({alias}kind = 'cache_hit' OR {alias}cache <> 'none')"


def _cell_select() -> str:
    parts = []
    for d in CELL_DIMS:
        if d == "success":
            parts.append("CASE WHEN success <> 0 THEN 'ok' ELSE 'error' END")
        else:
            parts.append(f"COALESCE({q(d)}, '')")
    return ", ".join(parts)


def rollup_update_sql(table: str, source: str, where: str, *, hour_expr: str) -> list[str]:
    """Statements adding the records of ``source`` matching ``where`` into the rollups (one GROUP BY each)."""
    keys = ", ".join(["hour", *map(q, CELL_DIMS)])
    n_keys = 1 + len(CELL_DIMS)
    group = ", ".join(str(i) for i in range(1, n_keys + 1))
    sums = [
        "COUNT(*)",
        f"SUM(CASE WHEN {_hit_sql()} THEN 1 ELSE 0 END)",
        "SUM(input_tokens)",
        "SUM(output_tokens)",
        "SUM(COALESCE(cached_read_tokens, 0))",
        "SUM(COALESCE(cache_write_tokens, 0))",
        "SUM(COALESCE(cost_usd, 0))",
        "SUM(COALESCE(saved_usd, 0))",
        "SUM(CASE WHEN success <> 0 THEN 0 ELSE 1 END)",
        "SUM(CASE WHEN cost_usd IS NULL OR priced = 0 THEN 1 ELSE 0 END)",
    ]
    counts = ["SUM(firsts & 1)"]
    counts += [f"SUM((firsts & {varying_bit(d)}) / {varying_bit(d)})" for d in BIT_DIMS]
    counts.append(f"SUM((firsts & {HIT_BIT}) / {HIT_BIT})")
    columns = [*SUMS, *REQUEST_COUNTS]
    update = ", ".join(f"{q(c)} = {q(table + '_rollup')}.{q(c)} + excluded.{q(c)}" for c in columns)
    main = (
        f"INSERT INTO {q(table + '_rollup')} ({keys}, {', '.join(map(q, columns))}) "
        f"SELECT {hour_expr}, {_cell_select()}, {', '.join(sums + counts)} FROM {source} WHERE {where} "
        f"GROUP BY {group} ON CONFLICT ({keys}) DO UPDATE SET {update}"
    )
    return [main]


def savings_rows(records: list[tuple[CostRecord, int]]) -> dict[tuple[Any, ...], float]:
    """(hour, cell..., layer) -> USD over a batch (computed in Python: few records carry savings)."""
    out: dict[tuple[Any, ...], float] = {}
    for r, _ in records:
        if not r.savings:
            continue
        cell = (int(r.timestamp // 3600), *(cell_value(r, d) for d in CELL_DIMS))
        for layer, usd in r.savings.items():
            key = (*cell, str(layer))
            out[key] = out.get(key, 0.0) + float(usd)
    return out


def rollup_rows(records: list[tuple[CostRecord, int]]) -> list[tuple[Any, ...]]:
    """The rollup rows of a batch computed in Python, as ``(hour, cell..., sums..., request counts...)``,
    sorted by key (so concurrent writers upsert in one order and cannot deadlock). The same sums
    :func:`rollup_update_sql` computes in SQL (Postgres, where ids do not mark a batch)."""
    n_sums = len(SUMS) + len(REQUEST_COUNTS)
    bits = [varying_bit(d) for d in BIT_DIMS]
    out: dict[tuple[Any, ...], list[Any]] = {}
    for r, firsts in records:
        key = (int(r.timestamp // 3600), *(cell_value(r, d) for d in CELL_DIMS))
        acc = out.get(key)
        if acc is None:
            acc = out[key] = [0] * n_sums
            acc[SUMS.index("cost_usd")] = acc[SUMS.index("saved_usd")] = 0.0
        cost = r.cost_usd
        values = (
            1,
            1 if is_hit(r) else 0,
            r.input_tokens,
            r.output_tokens,
            r.cached_read_tokens or 0,
            r.cache_write_tokens or 0,
            cost or 0.0,
            r.saved_usd or 0.0,
            0 if r.success else 1,
            1 if cost is None or not r.priced else 0,
            firsts & FIRST_BIT,
            *(1 if firsts & b else 0 for b in bits),
            1 if firsts & HIT_BIT else 0,
        )
        for i, v in enumerate(values):
            acc[i] += v
    return [(*k, *v) for k, v in sorted(out.items())]


def rollup_upsert_sql(table: str, mark: str) -> str:
    """Add one row of :func:`rollup_rows` into ``table``'s rollup (insert, or add to the existing sums)."""
    keys = ", ".join(["hour", *map(q, CELL_DIMS)])
    columns = [*SUMS, *REQUEST_COUNTS]
    name = q(table + "_rollup")
    marks = ", ".join([mark] * (1 + len(CELL_DIMS) + len(columns)))
    update = ", ".join(f"{q(c)} = {name}.{q(c)} + excluded.{q(c)}" for c in columns)
    return (
        f"INSERT INTO {name} ({keys}, {', '.join(map(q, columns))}) VALUES ({marks}) "
        f"ON CONFLICT ({keys}) DO UPDATE SET {update}"
    )


def savings_upsert_sql(table: str, mark: str) -> str:
    keys = ", ".join(["hour", *map(q, CELL_DIMS), "layer"])
    marks = ", ".join([mark] * (3 + len(CELL_DIMS)))
    name = q(table + "_rollup_savings")
    return (
        f"INSERT INTO {name} ({keys}, usd) VALUES ({marks}) "
        f"ON CONFLICT ({keys}) DO UPDATE SET usd = {name}.usd + excluded.usd"
    )


__all__ = [
    "BIT_DIMS",
    "CELL_DIMS",
    "CONSTANT_DIMS",
    "FIRST_BIT",
    "HIT_BIT",
    "REQUEST_COUNTS",
    "SUMS",
    "TIME_DIMS",
    "VARYING_DIMS",
    "RequestMemory",
    "cell_value",
    "is_hit",
    "rollup_ddl",
    "rollup_rows",
    "rollup_update_sql",
    "rollup_upsert_sql",
    "savings_rows",
    "savings_upsert_sql",
    "varying_bit",
]
