"""costkit.report: which feature, tenant, model or day spent the money.

``aggregate(records, by=...)`` works on any iterable of CostRecords; ``load_records(path)``
streams them from a SQLite or JSONL file; ``to_table`` / ``to_json`` / ``to_csv`` / ``to_html``
render reports; ``main`` is the ``costkit`` console script (``costkit report costs.db --by feature``).
"""

from __future__ import annotations

from .aggregate import DIMENSIONS, GroupStats, Report, aggregate, aggregate_many, filter_records, parse_time
from .cli import main
from .html import to_html
from .render import to_csv, to_json, to_table
from .source import load_records

__all__ = [
    "DIMENSIONS",
    "GroupStats",
    "Report",
    "aggregate",
    "aggregate_many",
    "filter_records",
    "load_records",
    "main",
    "parse_time",
    "to_csv",
    "to_html",
    "to_json",
    "to_table",
]
