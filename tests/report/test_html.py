"""The HTML report: the dashboard's page, static and self-contained (the browser test draws it)."""

from __future__ import annotations

import datetime as dt
import json
import re
from html.parser import HTMLParser

from costkit.report.aggregate import aggregate_many
from costkit.report.html import to_html

WHEN = dt.datetime(2026, 11, 3, 12, tzinfo=dt.timezone.utc)


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.scripts: list[str] = []
        self._in: dict | None = None

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in = dict(attrs) if tag == "script" else None
        if tag == "script":
            self.scripts.append("")

    def handle_data(self, data):
        if self._in is not None:
            self.scripts[-1] += data

    def handle_endtag(self, tag):
        if tag == "script":
            self._in = None


def _parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    return page


def _data(html: str) -> dict:
    return json.loads(re.search(r'<script type="application/json" id="data">(.*?)</script>', html, re.S).group(1))


def test_one_file_that_fetches_nothing(records) -> None:
    html = to_html(aggregate_many(records, [["feature"], ["model"]]), source="costs.db", generated=WHEN)
    page = _parse(html)
    assert not [a for t, a in page.tags if a.get("src") or a.get("href")]  # nothing loaded from anywhere
    assert not [t for t, _ in page.tags if t in ("link", "img", "iframe")]
    csp = next(a["content"] for t, a in page.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy")
    assert "default-src 'none'" in csp and "connect-src 'none'" in csp
    assert any(s.lstrip().startswith("/**\n* plotly.js v") for s in page.scripts)  # the library, inlined


def test_the_page_carries_the_reports_numbers(records) -> None:
    reports = aggregate_many(records, [["feature"], ["model"]])
    html = to_html(reports, title="Nov costs", source="costs.db", filters={"tenant": "acme"}, generated=WHEN)
    data = _data(html)
    assert data["title"] == "Nov costs" and data["filters"] == "tenant=acme" and data["source"] == "costs.db"
    assert data["generated_at"] == "2026-11-03 12:00 UTC"
    assert data["reports"] == json.loads(json.dumps([r.to_dict() for r in reports]))
    assert data["totals"]["cost_usd"] == 1.9375 and data["totals"]["saved_usd"] == 0.75
    assert "<title>Nov costs</title>" in html


def test_untrusted_values_cannot_leave_the_data_block(records, make_record) -> None:
    evil = "</script><script>alert(1)</script><!--"
    reports = aggregate_many([*records, make_record("x", feature=evil)], [["feature"]])
    html = to_html(reports, title="<b>t</b>", source=evil, generated=WHEN)
    assert html.count("<script") == 4  # the library, the config, the data, the page's code
    assert evil not in html and "<b>t</b>" not in html
    data = _data(html)
    assert data["source"] == evil and evil in [g["feature"] for g in data["reports"][0]["groups"]]


def test_without_plotly_the_page_says_so(records, monkeypatch) -> None:
    from costkit.dashboard import page

    monkeypatch.setattr(page, "plotly_js_path", lambda: None)
    html = to_html(aggregate_many(records, [["feature"]]), generated=WHEN)
    assert "plotly.js v" not in html and html.count("<script") == 3
    assert "pip install 'costkit[dashboard]'" in html
