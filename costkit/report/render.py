"""Render reports as a plain-text table, JSON or CSV (HTML lives in :mod:`costkit.report.html`)."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from .aggregate import GroupStats, Report

NONE_LABEL = "(none)"


def usd(value: float) -> str:
    """Dollars with enough digits for sub-cent LLM calls."""
    if abs(value) >= 100:
        return f"{value:,.2f}"
    # at least 6 decimals, and 3 significant digits for tiny per-call costs (0.00000255)
    places = 6 if value == 0 else max(6, min(12, 2 - math.floor(math.log10(abs(value)))))
    text = f"{value:.{places}f}".rstrip("0")
    decimals = len(text.split(".")[1])
    return text + "0" * (2 - decimals) if decimals < 2 else text


def _n(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def pct(value: float) -> str:
    return f"{value * 100:.1f}%"


def key_label(value: Any) -> str:
    return NONE_LABEL if value is None or value == "" else str(value)


def visible(text: str) -> str:
    """``text`` with control characters shown as escapes (``\\x1b``, ``\\n``): a tag value can
    never move the cursor, recolour the terminal or start a fake line of the report."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: Any) -> Any:
    """A cell a spreadsheet will not run as a formula (OWASP CSV injection): text starting with
    ``= + - @``, tab or CR gets a leading single quote (the csv module then quotes the cell).
    Numbers stay numbers."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def describe_filters(filters: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in filters.items() if v is not None) or "none"


# -- table ---------------------------------------------------------------------------------------


def columns(layers: Sequence[str] = ()) -> list[str]:
    """The per-group columns after the grouping keys (all right-aligned); a ``saved: <layer>`` one per layer."""
    return [
        "requests",
        "attempts",
        "hit rate",
        "in tokens",
        "out tokens",
        "cost $",
        "share",
        "$/request",
        "saved $",
        *(f"saved: {k}" for k in layers),
        "errors",
        "unpriced",
    ]


def cells(g: GroupStats, layers: Sequence[str] = ()) -> list[str]:
    """One group's values under :func:`columns`, formatted for people (text and HTML alike)."""
    return [
        f"{g.requests:,}",
        f"{g.attempts:,}",
        pct(g.cache_hit_rate),
        f"{g.input_tokens:,}",
        f"{g.output_tokens:,}",
        usd(g.cost_usd),
        pct(g.share),
        usd(g.cost_per_request),
        usd(g.saved_usd),
        *(usd(g.savings.get(k, 0.0)) for k in layers),
        f"{g.errors:,}",
        f"{g.unpriced:,}",
    ]


def _grid(header: Sequence[str], aligns: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(f"{c:{a}{w}}" for c, a, w in zip(cells, aligns, widths, strict=True)).rstrip()

    return [line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)]


def totals_lines(total: GroupStats, layers: Sequence[str]) -> list[str]:
    lines = [
        f"total cost ${usd(total.cost_usd)} over {total.requests:,} requests "
        f"({_n(total.attempts, 'provider attempt')}, {_n(total.cache_hits, 'cache hit')}, "
        f"hit rate {pct(total.cache_hit_rate)})",
        f"saved ${usd(total.saved_usd)} "
        f"({pct(total.savings_rate)} of ${usd(total.would_have_cost_usd)} without costkit)"
        f"; errors {total.errors:,}; unpriced records {total.unpriced:,}",
        f"tokens: {total.input_tokens:,} in ({total.cached_read_tokens:,} cached read, "
        f"{total.cache_write_tokens:,} cache write), {total.output_tokens:,} out",
    ]
    if layers:
        lines.append("saved by layer: " + ", ".join(f"{k} ${usd(total.savings[k])}" for k in layers))
    return lines


def to_table(reports: Sequence[Report], *, title: str = "costkit report", top: int | None = None) -> str:
    """A plain-text report: totals, then one table per grouping, largest cost first."""
    out = [title, ""]
    if reports:
        out += totals_lines(reports[0].total, reports[0].layers)
    for rep in reports:
        groups = rep.groups if top is None else rep.groups[:top]
        header = [*rep.by, *columns()]
        aligns = ["<"] * len(rep.by) + [">"] * (len(header) - len(rep.by))
        rows = [[*(visible(key_label(k)) for k in g.key), *cells(g)] for g in groups]
        out += ["", f"by {' x '.join(rep.by)}", *_grid(header, aligns, rows)]
        if len(groups) < len(rep.groups):
            rest = rep.groups[len(groups) :]
            rest_cost, rest_share = sum(g.cost_usd for g in rest), sum(g.share for g in rest)
            out.append(f"... {_n(len(rest), 'more group')}, ${usd(rest_cost)} ({pct(rest_share)})")
    return "\n".join(visible(line) for line in out) + "\n"


# -- json / csv ----------------------------------------------------------------------------------


def to_json(
    reports: Sequence[Report],
    *,
    source: str = "",
    filters: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> str:
    """One JSON document: the groupings, and ``extra`` sections (``tasks``, ``arms``, ``forecast``,
    ``alerts``: lists of values with ``to_dict()``) under their names."""
    total = reports[0].total.to_dict() if reports else {}
    doc: dict[str, Any] = {
        "source": source,
        "filters": {k: v for k, v in (filters or {}).items() if v is not None},
        "total": total,
        "reports": [r.to_dict() for r in reports],
    }
    for name, values in (extra or {}).items():
        doc[name] = [v.to_dict() for v in values]
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


_CSV_METRICS = (
    "requests",
    "attempts",
    "cache_hits",
    "records",
    "cache_hit_rate",
    "input_tokens",
    "output_tokens",
    "cached_read_tokens",
    "cache_write_tokens",
    "cost_usd",
    "share",
    "cost_per_request",
    "saved_usd",
    "savings_rate",
    "errors",
    "unpriced",
)


_CSV_TASKS = (
    "tasks",
    "successes",
    "failures",
    "open",
    "success_rate",
    "cost_per_task",
    "cost_per_success",
    "failed_cost_usd",
    "open_cost_usd",
)
_CSV_ARMS = (
    "control",
    "success_rate_ci_low",
    "success_rate_ci_high",
    "cost_per_success_ci_low",
    "cost_per_success_ci_high",
    "success_rate_diff",
    "cost_per_success_diff",
    "verdict",
)


def to_csv(reports: Sequence[Report], *, tasks: Sequence[Any] = (), arms: Sequence[Any] = ()) -> str:
    """One row per group of every grouping, plus a ``total`` row; savings as ``saved_<layer>`` columns.

    ``tasks`` (TaskReports) add rows whose ``grouping`` is ``tasks:<dims>``, ``arms`` (ArmComparisons)
    rows whose ``grouping`` is ``arms``, with their own columns after the others (empty elsewhere).
    """
    dims: list[str] = []
    for rep in [*reports, *tasks]:
        dims += [d for d in rep.by if d not in dims]
    if arms:
        dims += [d for d in ("experiment", "arm") if d not in dims]
    layers = list(reports[0].layers) if reports else []
    task_columns = list(_CSV_TASKS) if tasks or arms else []
    arm_columns = list(_CSV_ARMS) if arms else []
    buf = io.StringIO()
    # strings quoted, numbers bare: an escaped cell is quoted, as OWASP advises
    w = csv.writer(buf, lineterminator="\n", quoting=csv.QUOTE_NONNUMERIC)
    header = ["grouping", *dims, *_CSV_METRICS, *(f"saved_{k}" for k in layers), *task_columns, *arm_columns]
    w.writerow([csv_safe(h) for h in header])
    blank_report = [""] * (len(_CSV_METRICS) + len(layers))

    def keys(d: Mapping[str, Any], by: Sequence[str]) -> list[str]:
        return ["" if x not in by or d.get(x) is None else str(d[x]) for x in dims]

    def row(grouping: str, by: Sequence[str], g: GroupStats) -> list[Any]:
        d = g.to_dict(by)
        out = [grouping, *keys(d, by), *(d[m] for m in _CSV_METRICS), *(g.savings.get(k, 0.0) for k in layers)]
        return [csv_safe(v) for v in out + [""] * (len(task_columns) + len(arm_columns))]

    def task_row(grouping: str, by: Sequence[str], d: Mapping[str, Any], arm: Sequence[Any] = ()) -> list[Any]:
        values = ["" if d.get(c) is None else d[c] for c in _CSV_TASKS]
        tail = list(arm) if arm_columns and arm else [""] * len(arm_columns)
        return [csv_safe(v) for v in [grouping, *keys(d, by), *blank_report, *values, *tail]]

    if reports:
        w.writerow(row("total", (), reports[0].total))
    for rep in reports:
        for g in rep.groups:
            w.writerow(row("+".join(rep.by), rep.by, g))
    for t in tasks:
        for tg in t.groups:
            w.writerow(task_row("tasks:" + "+".join(t.by), t.by, tg.to_dict(t.by)))
    for c in arms:
        d = c.to_dict()
        ci = c.cost_per_success_ci or (None, None)
        arm = [c.control, *c.success_rate_ci, *ci, c.success_rate_diff, c.cost_per_success_diff, c.verdict]
        w.writerow(task_row("arms", ("experiment", "arm"), d, ["" if v is None else v for v in arm]))
    return buf.getvalue()


def forecast_lines(forecasts: Sequence[Any]) -> list[str]:
    """Text lines: month-end forecast per feature (the total first) with its 95% interval."""
    header = ["feature", "month", "spent $", "daily mean $", "days used", "days left", "forecast $", "95% interval $"]
    rows = [
        [
            visible(key_label(f.key)),
            f.month,
            usd(f.spent_usd),
            usd(f.daily_mean_usd),
            f"{f.days_used}",
            f"{f.remaining_days:.1f}",
            usd(f.forecast_usd),
            "-" if f.low_usd is None else f"{usd(f.low_usd)} - {usd(f.high_usd)}",
        ]
        for f in forecasts
    ]
    aligns = ["<", "<"] + [">"] * (len(header) - 2)
    return [
        "month-end forecast (daily mean of the last complete days; 95% prediction interval)",
        *_grid(header, aligns, rows),
    ]


QUALITY_NOTES = ("route_ood", "route_new_topic", "cache_verified")


@attrs.frozen(kw_only=True)
class QualitySignal:
    """One feature's quality signals from its records' notes."""

    feature: str | None
    routed: int  # learned-router decisions (records carrying route_ood)
    unfamiliar: int  # ... sent to the strongest model as unlike the training prompts
    careful: int  # ... routed with the careful threshold for a possibly new topic
    careful_of: int  # decisions by a router that has that threshold
    verified: int  # semantic hits sampled and checked by the verifier
    refuted: int  # ... that the verifier said were wrong

    @property
    def live_false_hit_rate(self) -> float | None:
        return self.refuted / self.verified if self.verified else None

    def to_dict(self) -> dict[str, Any]:
        return {**attrs.asdict(self), "live_false_hit_rate": self.live_false_hit_rate}


def quality_signals(flags: Mapping[str | None, Mapping[str, tuple[int, int]]]) -> list[QualitySignal]:
    """The store's note counts (:meth:`~costkit.report.store.Store.noted_flags` over QUALITY_NOTES) per feature."""
    out = []
    for feature in sorted(flags, key=lambda f: (f is None, f or "")):
        f = flags[feature]
        (ood, routed), (careful, careful_of), (right, verified) = (f[k] for k in QUALITY_NOTES)
        out.append(QualitySignal(
            feature=feature, routed=routed, unfamiliar=ood, careful=careful, careful_of=careful_of,
            verified=verified, refuted=verified - right,
        ))  # fmt: skip
    return out


def quality_lines(signals: Sequence[QualitySignal]) -> list[str]:
    """Text lines: per feature, how much routed traffic the learned router found unfamiliar, and
    what the semantic cache's sampled verification says about its live false-hit rate."""

    def share(part: int, whole: int) -> str:
        return "-" if whole == 0 else f"{part / whole:.1%}"

    rows = [
        [
            visible(key_label(s.feature)),
            f"{s.routed:,}",
            share(s.unfamiliar, s.routed),
            share(s.careful, s.careful_of),
            f"{s.verified:,}",
            f"{s.refuted:,}",
            share(s.refuted, s.verified),
        ]
        for s in signals
    ]
    header = ["feature", "routed", "unfamiliar", "new topic", "verified", "refuted", "live false-hit rate"]
    return [
        "quality signals (records: learned-router decisions; semantic hits sampled for verification)",
        *_grid(header, ["<"] + [">"] * (len(header) - 1), rows),
    ]


__all__ = [
    "QUALITY_NOTES",
    "QualitySignal",
    "cells",
    "columns",
    "csv_safe",
    "describe_filters",
    "forecast_lines",
    "key_label",
    "pct",
    "quality_lines",
    "quality_signals",
    "to_csv",
    "to_json",
    "to_table",
    "totals_lines",
    "usd",
    "visible",
]
