"""Aggregate cost records: which feature (tenant, model, route, day ...) spent the money.

Works on any iterable of :class:`CostRecord` (a MemorySink, ``iter_sqlite``, ``iter_jsonl``) in
one pass, so a large SQLite file is streamed, never loaded whole. Several groupings can be
computed from the same pass (:func:`aggregate_many`).

Words used here:

* **request**: one logical call (distinct ``request_id``), however many attempts it took;
* **attempt**: a record that went to a provider (kind call / retry / escalation / batch /
  embedding / judge, not answered by a cache);
* **cache hit rate**: requests answered by a cache (exact, semantic, dedup) / requests;
* **share**: the group's cost / the cost of every record the report read.

A request whose attempts fall in two groups (a cascade escalating from one model to another,
grouped by model) counts as a request in both; the total counts it once.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import attrs

from ..errors import ConfigError
from ..records import CostRecord

GroupKey = tuple[Any, ...]


@functools.lru_cache(maxsize=4096)
def _hour_start(hour: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(hour * 3600, dt.timezone.utc)


# records arrive in time order, so formatting once per UTC hour (cached) is enough
def _day(r: CostRecord) -> str:
    return _label(int(r.timestamp // 3600), "%Y-%m-%d")


def _month(r: CostRecord) -> str:
    return _label(int(r.timestamp // 3600), "%Y-%m")


def _hour(r: CostRecord) -> str:
    return _label(int(r.timestamp // 3600), "%Y-%m-%dT%H:00Z")


@functools.lru_cache(maxsize=4096)
def _label(hour: int, fmt: str) -> str:
    return _hour_start(hour).strftime(fmt)


def _field(name: str) -> Callable[[CostRecord], Any]:
    return lambda r: getattr(r, name)


# dimension -> how to read it from a record (times are UTC)
DIMENSIONS: Mapping[str, Callable[[CostRecord], Any]] = {
    **{
        f: _field(f)
        for f in (
            "feature",
            "tenant",
            "user",
            "model",
            "requested_model",
            "route",
            "prompt_version",
            "task",
            "experiment",
            "arm",
            "provider",
            "kind",
            "cache",
            "error_type",
        )
    },
    "success": lambda r: "ok" if r.success else "error",
    "day": _day,
    "month": _month,
    "hour": _hour,
}

_CACHE_HIT_KIND = "cache_hit"


def is_cache_hit(r: CostRecord) -> bool:
    return r.kind == _CACHE_HIT_KIND or r.cache != "none"


def check_dimensions(by: Iterable[str], *, field: str = "by") -> tuple[str, ...]:
    """Validate grouping dimensions; ``ConfigError`` names the unknown one."""
    dims = tuple(by)
    for d in dims:
        if d not in DIMENSIONS:
            raise ConfigError(field, f"cannot group by {d!r}; choose from {', '.join(DIMENSIONS)}")
    if len(set(dims)) != len(dims):
        raise ConfigError(field, f"{dims} names a dimension twice")
    return dims


@attrs.frozen(kw_only=True, slots=True)
class GroupStats:
    """Totals of one group (or of everything, for :attr:`Report.total`)."""

    key: GroupKey
    requests: int
    attempts: int
    cache_hits: int
    records: int
    input_tokens: int
    output_tokens: int
    cached_read_tokens: int
    cache_write_tokens: int
    cost_usd: float
    saved_usd: float
    savings: Mapping[str, float]
    errors: int
    unpriced: int
    cached_requests: int
    share: float  # of the report's total cost, 0..1

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @property
    def cache_hit_rate(self) -> float:
        """Requests answered by a cache / requests."""
        return self.cached_requests / self.requests if self.requests else 0.0

    @property
    def cost_per_request(self) -> float:
        return self.cost_usd / self.requests if self.requests else 0.0

    @property
    def would_have_cost_usd(self) -> float:
        """What these requests would have cost without costkit's layers."""
        return self.cost_usd + self.saved_usd

    @property
    def savings_rate(self) -> float:
        """saved / (cost + saved): the share of the bill costkit removed."""
        base = self.would_have_cost_usd
        return self.saved_usd / base if base else 0.0

    def to_dict(self, by: Sequence[str] = ()) -> dict[str, Any]:
        d: dict[str, Any] = dict(zip(by, self.key, strict=False)) if by else {}
        d.update(
            requests=self.requests,
            attempts=self.attempts,
            cache_hits=self.cache_hits,
            records=self.records,
            cache_hit_rate=self.cache_hit_rate,
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            cached_read_tokens=self.cached_read_tokens,
            cache_write_tokens=self.cache_write_tokens,
            cost_usd=self.cost_usd,
            cost_per_request=self.cost_per_request,
            saved_usd=self.saved_usd,
            savings_rate=self.savings_rate,
            savings=dict(self.savings),
            errors=self.errors,
            unpriced=self.unpriced,
            share=self.share,
        )
        return d


@attrs.frozen(kw_only=True, slots=True)
class Report:
    """Groups sorted by cost (largest first), and the total over every record read."""

    by: tuple[str, ...]
    groups: tuple[GroupStats, ...]
    total: GroupStats

    @property
    def layers(self) -> tuple[str, ...]:
        """Every savings layer that appears, largest total first."""
        return tuple(sorted(self.total.savings, key=lambda k: (-self.total.savings[k], k)))

    def group(self, *key: Any) -> GroupStats:
        """The group whose key is ``key`` (e.g. ``report.group("faq")``); KeyError if absent."""
        for g in self.groups:
            if g.key == key:
                return g
        raise KeyError(key)

    def to_dict(self) -> dict[str, Any]:
        return {
            "by": list(self.by),
            "total": self.total.to_dict(),
            "groups": [g.to_dict(self.by) for g in self.groups],
        }


class _Acc:
    """Running totals of one group."""

    __slots__ = (
        "attempts",
        "cache_hits",
        "cache_write_tokens",
        "cached_read_tokens",
        "cached_request_ids",
        "cost_usd",
        "errors",
        "input_tokens",
        "output_tokens",
        "records",
        "request_ids",
        "saved_usd",
        "savings",
        "unpriced",
    )

    def __init__(self) -> None:
        self.request_ids: set[str] = set()
        self.cached_request_ids: set[str] = set()
        self.attempts = self.cache_hits = self.records = self.errors = self.unpriced = 0
        self.input_tokens = self.output_tokens = self.cached_read_tokens = self.cache_write_tokens = 0
        self.cost_usd = self.saved_usd = 0.0
        self.savings: dict[str, float] = {}

    def add(self, r: CostRecord, hit: bool) -> None:
        self.records += 1
        rid = r.request_id
        self.request_ids.add(rid)
        if hit:
            self.cache_hits += 1
            self.cached_request_ids.add(rid)
        else:
            self.attempts += 1
        self.input_tokens += r.input_tokens
        self.output_tokens += r.output_tokens
        if r.cached_read_tokens:
            self.cached_read_tokens += r.cached_read_tokens
        if r.cache_write_tokens:
            self.cache_write_tokens += r.cache_write_tokens
        cost = r.cost_usd
        if cost is None:
            self.unpriced += 1
        else:
            self.cost_usd += cost
            if not r.priced:
                self.unpriced += 1
        if r.saved_usd:
            self.saved_usd += r.saved_usd
        if r.savings:
            savings = self.savings
            for layer, usd in r.savings.items():
                savings[layer] = savings.get(layer, 0.0) + usd
        if not r.success:
            self.errors += 1

    def freeze(self, key: GroupKey, total_cost: float) -> GroupStats:
        return GroupStats(
            key=key,
            requests=len(self.request_ids),
            attempts=self.attempts,
            cache_hits=self.cache_hits,
            records=self.records,
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            cached_read_tokens=self.cached_read_tokens,
            cache_write_tokens=self.cache_write_tokens,
            cost_usd=self.cost_usd,
            saved_usd=self.saved_usd,
            savings=dict(sorted(self.savings.items(), key=lambda kv: (-kv[1], kv[0]))),
            errors=self.errors,
            unpriced=self.unpriced,
            cached_requests=len(self.cached_request_ids),
            share=self.cost_usd / total_cost if total_cost else 0.0,
        )


def _sort_key(g: GroupStats) -> tuple[float, float, str]:
    return (-g.cost_usd, -g.saved_usd, repr(g.key))


def aggregate_many(records: Iterable[CostRecord], groupings: Iterable[Iterable[str]]) -> list[Report]:
    """One report per grouping, from a single pass over ``records``."""
    plans = [check_dimensions(by) for by in groupings]
    readers = [[DIMENSIONS[d] for d in dims] for dims in plans]
    accs: list[dict[GroupKey, _Acc]] = [{} for _ in plans]
    total = _Acc()
    plan = list(zip(accs, readers, strict=True))
    for r in records:
        hit = r.kind == _CACHE_HIT_KIND or r.cache != "none"
        total.add(r, hit)
        for acc, read in plan:
            key = (read[0](r),) if len(read) == 1 else tuple(f(r) for f in read)
            group = acc.get(key)
            if group is None:
                group = acc[key] = _Acc()
            group.add(r, hit)
    total_cost = total.cost_usd
    frozen_total = total.freeze((), total_cost)
    return [
        Report(
            by=dims,
            groups=tuple(sorted((a.freeze(k, total_cost) for k, a in acc.items()), key=_sort_key)),
            total=frozen_total,
        )
        for dims, acc in zip(plans, accs, strict=True)
    ]


def aggregate(records: Iterable[CostRecord], by: str | Iterable[str] = ("feature",)) -> Report:
    """Group ``records`` by one or more dimensions (``"feature"``, ``("tenant", "day")`` ...)."""
    dims = (by,) if isinstance(by, str) else tuple(by)
    return aggregate_many(records, [dims])[0]


# -- filtering ----------------------------------------------------------------------------------


def parse_time(value: str | float | dt.datetime | dt.date, *, end: bool = False, field: str = "since") -> float:
    """Epoch seconds from a date (``2026-11-01``), an ISO datetime, a datetime or a number.

    A bare date means the start of that UTC day; with ``end=True`` (for ``until``) the end of it,
    so ``--until 2026-11-30`` includes the 30th. Naive datetimes are read as UTC.
    """
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            if len(text) == 10:
                value = dt.date.fromisoformat(text)
            else:
                value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ConfigError(field, f"{value!r} is not a date (YYYY-MM-DD) or an ISO datetime") from None
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return value.timestamp()
    if isinstance(value, dt.date):
        day = dt.datetime(value.year, value.month, value.day, tzinfo=dt.timezone.utc)
        return (day + dt.timedelta(days=1) if end else day).timestamp()
    raise ConfigError(field, f"expected a date, datetime or epoch seconds, got {type(value).__name__}")


def filter_records(
    records: Iterable[CostRecord],
    *,
    since: float | None = None,
    until: float | None = None,
    **equals: Any,
) -> Iterable[CostRecord]:
    """Records with ``since <= timestamp < until`` whose fields equal ``equals`` (lazily).

    An unknown field is a ``ConfigError`` at once, not when the result is first iterated.
    """
    for name in equals:
        if name not in DIMENSIONS:
            raise ConfigError(name, f"cannot filter on {name!r}; choose from {', '.join(DIMENSIONS)}")
    tests = [(DIMENSIONS[k], v) for k, v in equals.items()]

    def keep(r: CostRecord) -> bool:
        if since is not None and r.timestamp < since:
            return False
        if until is not None and r.timestamp >= until:
            return False
        return all(read(r) == v for read, v in tests)

    return filter(keep, records)


__all__ = [
    "DIMENSIONS",
    "GroupStats",
    "Report",
    "aggregate",
    "aggregate_many",
    "check_dimensions",
    "filter_records",
    "is_cache_hit",
    "parse_time",
]
