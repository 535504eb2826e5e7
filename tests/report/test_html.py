from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from html.parser import HTMLParser

from costkit.records import CostRecord
from costkit.report.aggregate import aggregate, aggregate_many
from costkit.report.html import CHART_ROWS, to_html

WHEN = dt.datetime(2026, 11, 3, 12, tzinfo=dt.timezone.utc)


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += attrs

    def handle_data(self, data):
        self.text.append(data)


def _parse(html: str) -> _Collector:
    c = _Collector()
    c.feed(html)
    return c


def test_self_contained_no_network_no_script(records) -> None:
    html = to_html(aggregate_many(records, [["feature"], ["model"]]), source="costs.db", generated=WHEN)
    doc = _parse(html)
    assert "script" not in doc.tags
    assert "link" not in doc.tags and "img" not in doc.tags
    assert not [v for k, v in doc.attrs if k in ("src", "href") and v]
    assert not re.search(r"url\(|@import|https?://(?!www\.w3\.org/2000/svg)", html)
    assert doc.tags.count("svg") == 3  # savings by layer + one chart per grouping
    assert doc.tags.count("table") == 2


def test_totals_and_rows(records) -> None:
    html = to_html(
        aggregate_many(records, [["feature"]]),
        title="Nov costs",
        source="costs.db",
        filters={"tenant": None, "since": "2026-11-01"},
        generated=WHEN,
    )
    text = " ".join(_parse(html).text)
    assert "Nov costs" in text
    assert "$1.9375" in text
    assert "$0.75 (27.9%)" in text
    assert "since=2026-11-01" in text and "tenant=" not in text
    assert "generated 2026-11-03 12:00 UTC" in text
    assert re.findall(r'<td class="k[^"]*">([^<]*)</td>', html) == ["summary", "(none)", "faq"]


def test_user_values_are_escaped(make_record: Callable[..., CostRecord]) -> None:
    rec = make_record("x", feature="<script>alert(1)</script>", cost_usd=1.0)
    html = to_html([aggregate([rec], by="feature")], generated=WHEN)
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_chart_is_capped_but_table_lists_everything(make_record: Callable[..., CostRecord]) -> None:
    recs = [make_record(str(i), feature=f"f{i:02d}", cost_usd=float(i + 1)) for i in range(CHART_ROWS + 5)]
    html = to_html([aggregate(recs, by="feature")], generated=WHEN)
    svg = html[html.index("<svg") : html.index("</svg>")]
    assert svg.count("<rect") == 2 * CHART_ROWS
    assert html.count("<tr>") == 1 + CHART_ROWS + 5
    assert f"costliest of {CHART_ROWS + 5} groups" in html


def test_empty_report() -> None:
    html = to_html([aggregate([], by="feature")], generated=WHEN)
    assert "0 records" in html
