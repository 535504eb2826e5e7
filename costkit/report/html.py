"""The HTML report: the dashboard's page, static, in one self-contained file.

``costkit report costs.db --format html`` builds the dashboard's whole document from the ledger
(charts over time, alerts, forecast, arms, the costliest requests) and adds one chart and table
per ``--by`` grouping. From Python, :func:`to_html` renders reports alone (the grouping charts
and tables, and the totals), or a dashboard document given as ``data``. The file inlines its data
and plotly.js (from the ``plotly`` package): open it from disk, mail it, attach it to a ticket;
it fetches nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from .aggregate import Report
from .render import describe_filters


def to_html(
    reports: Sequence[Report],
    *,
    title: str = "costkit cost report",
    source: str = "",
    filters: Mapping[str, Any] | None = None,
    generated: dt.datetime | None = None,
    data: Mapping[str, Any] | None = None,
) -> str:
    """The report as one HTML document (a str); ``data`` is a dashboard document to show with it."""
    from ..dashboard.page import static_page

    generated = generated or dt.datetime.now(dt.timezone.utc)
    doc: dict[str, Any] = dict(data) if data is not None else {"source": source}
    doc.update(
        title=title,
        filters=describe_filters(filters or {}) if filters else doc.get("filters"),
        generated_at=doc.get("generated_at") or generated.strftime("%Y-%m-%d %H:%M UTC"),
        reports=[r.to_dict() for r in reports],
    )
    if "totals" not in doc:
        doc["totals"] = reports[0].total.to_dict() if reports else {}
    return static_page(doc, title=title)


__all__ = ["to_html"]
