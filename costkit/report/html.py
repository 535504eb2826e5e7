"""A single self-contained HTML report: totals, a bar chart and a table per grouping.

No network, no JavaScript, no external CSS or fonts: the file can be mailed, attached to a
ticket or opened from disk years later. Bars are inline SVG.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from .aggregate import GroupStats, Report
from .render import cells, columns, describe_filters, key_label, pct, usd

CHART_ROWS = 15  # bars per chart; the table below it lists every group

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1200px;
color:#1b1f24;padding:0 1rem}
h1{font-size:1.5rem;margin:0 0 .25rem}h2{font-size:1.15rem;margin:2rem 0 .5rem}
.meta{color:#57606a;margin-bottom:1.25rem}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(160px,1fr));gap:.75rem}
.card{border:1px solid #d0d7de;border-radius:8px;padding:.6rem .8rem}
.card .v{font-size:1.35rem;font-weight:600}.card .l{color:#57606a;font-size:.8rem;text-transform:uppercase}
table{border-collapse:collapse;width:100%;margin-top:.5rem;font-variant-numeric:tabular-nums}
th,td{padding:.3rem .5rem;border-bottom:1px solid #eaeef2;text-align:right;white-space:nowrap}
th{background:#f6f8fa;font-weight:600}th.k,td.k{text-align:left}
td.k{max-width:28rem;overflow:hidden;text-overflow:ellipsis}
svg text{font:12px system-ui,sans-serif}.scroll{overflow-x:auto}.none{color:#8c959f;font-style:italic}
"""

_BAR = "#0969da"
_SAVED = "#1a7f37"


def _card(label: str, value: str) -> str:
    return f'<div class="card"><div class="l">{escape(label)}</div><div class="v">{escape(value)}</div></div>'


def _bars(items: Sequence[tuple[str, float, float]], *, width: int = 900, saved_only: bool = False) -> str:
    """Horizontal bars: (label, cost, saved) -> cost bar and a lighter saved bar after it."""
    if not items:
        return ""
    label_w, value_w, row_h = 240, 260, 22
    plot_w = width - label_w - value_w
    biggest = max((c + s for _, c, s in items), default=0.0) or 1.0
    rows = []
    for i, (label, cost, saved) in enumerate(items):
        y = i * row_h
        cw = plot_w * cost / biggest
        sw = plot_w * saved / biggest
        short = label if len(label) <= 34 else label[:33] + "…"
        rows.append(
            f'<g transform="translate(0,{y})"><title>{escape(label)}: ${usd(cost)} cost, ${usd(saved)} saved</title>'
            f'<text x="{label_w - 8}" y="15" text-anchor="end">{escape(short)}</text>'
            f'<rect x="{label_w}" y="3" width="{cw:.2f}" height="16" fill="{_BAR}"/>'
            f'<rect x="{label_w + cw:.2f}" y="3" width="{sw:.2f}" height="16" fill="{_SAVED}" '
            f'opacity="{1 if saved_only else 0.35}"/>'
            f'<text x="{label_w + cw + sw + 6:.2f}" y="15">{escape(_bar_label(cost, saved, saved_only))}</text></g>'
        )
    height = row_h * len(items) + 4
    return (
        f'<svg role="img" aria-label="cost by group" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">{"".join(rows)}</svg>'
    )


def _bar_label(cost: float, saved: float, saved_only: bool) -> str:
    if saved_only:
        return f"${usd(saved)}"
    return f"${usd(cost)}" + (f" (saved ${usd(saved)})" if saved > 0 else "")


def _key_cell(value: Any) -> str:
    label = key_label(value)
    cls = "k none" if value is None or value == "" else "k"
    return f'<td class="{cls}">{escape(label)}</td>'


def _table(rep: Report, layers: Sequence[str]) -> str:
    head = "".join(f'<th class="k">{escape(d)}</th>' for d in rep.by)
    head += "".join(f"<th>{escape(c)}</th>" for c in columns(layers))
    body = [
        "<tr>"
        + "".join(_key_cell(k) for k in g.key)
        + "".join(f"<td>{escape(c)}</td>" for c in cells(g, layers))
        + "</tr>"
        for g in rep.groups
    ]
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def _section(rep: Report, layers: Sequence[str]) -> str:
    title = " x ".join(rep.by)
    items = [(" / ".join(key_label(k) for k in g.key), g.cost_usd, g.saved_usd) for g in rep.groups[:CHART_ROWS]]
    more = len(rep.groups) - len(items)
    note = f'<p class="meta">Chart shows the {len(items)} costliest of {len(rep.groups)} groups.</p>' if more else ""
    legend = (
        f'<p class="meta"><span style="color:{_BAR}">&#9632;</span> cost '
        f'<span style="color:{_SAVED};opacity:.5">&#9632;</span> saved by costkit</p>'
    )
    chart = _bars(items)
    return f"<section><h2>By {escape(title)}</h2>{legend if chart else ''}{chart}{note}{_table(rep, layers)}</section>"


def _totals(total: GroupStats, layers: Sequence[str]) -> str:
    cards = [
        _card("cost", f"${usd(total.cost_usd)}"),
        _card("requests", f"{total.requests:,}"),
        _card("cost / request", f"${usd(total.cost_per_request)}"),
        _card("saved", f"${usd(total.saved_usd)} ({pct(total.savings_rate)})"),
        _card("cache hit rate", pct(total.cache_hit_rate)),
        _card("provider attempts", f"{total.attempts:,}"),
        _card("errors", f"{total.errors:,}"),
        _card("unpriced records", f"{total.unpriced:,}"),
    ]
    out = f'<div class="cards">{"".join(cards)}</div>'
    if layers:
        items = [(k, 0.0, total.savings[k]) for k in layers]
        out += f"<h2>Saved by layer</h2>{_bars(items, saved_only=True)}"
    return out


def to_html(
    reports: Sequence[Report],
    *,
    title: str = "costkit cost report",
    source: str = "",
    filters: Mapping[str, Any] | None = None,
    generated: dt.datetime | None = None,
) -> str:
    """The whole report as one HTML document (a str)."""
    generated = generated or dt.datetime.now(dt.timezone.utc)
    total = reports[0].total if reports else None
    layers = reports[0].layers if reports else ()
    meta = (
        f"source {escape(source or '-')} · filters {escape(describe_filters(filters or {}))} · "
        f"generated {escape(generated.strftime('%Y-%m-%d %H:%M UTC'))} · "
        f"{total.records if total else 0:,} records"
    )
    body = [f"<h1>{escape(title)}</h1>", f'<div class="meta">{meta}</div>']
    if total is not None:
        body.append(_totals(total, layers))
    body += [_section(rep, layers) for rep in reports]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_CSS}</style></head>"
        f"<body>{''.join(body)}</body></html>\n"
    )


__all__ = ["CHART_ROWS", "to_html"]
