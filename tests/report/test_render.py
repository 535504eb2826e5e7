from __future__ import annotations

import csv
import io
import json

import pytest

from costkit.report.aggregate import aggregate, aggregate_many
from costkit.report.render import to_csv, to_json, to_table, usd


def test_usd_keeps_sub_cent_digits() -> None:
    assert [usd(x) for x in (0.0, 1.0, 0.5625, 0.000123, 1234.5, 2.55e-06)] == [
        "0.00",
        "1.00",
        "0.5625",
        "0.000123",
        "1,234.50",
        "0.00000255",
    ]


def test_table_lists_totals_then_groups_by_cost(records) -> None:
    text = to_table(aggregate_many(records, [["feature"]]), title="T")
    lines = text.splitlines()
    assert lines[0] == "T"
    assert "total cost $1.9375 over 6 requests (7 provider attempts, 1 cache hit, hit rate 16.7%)" in text
    assert "saved $0.75 (27.9% of $2.6875 without costkit); errors 1; unpriced records 1" in text
    assert "saved by layer: router $0.50, exact $0.25" in text
    header = lines.index("by feature") + 1
    assert lines[header].split() == [
        "feature",
        "requests",
        "attempts",
        "hit",
        "rate",
        "in",
        "tokens",
        "out",
        "tokens",
        "cost",
        "$",
        "share",
        "$/request",
        "saved",
        "$",
        "errors",
        "unpriced",
    ]
    rows = [line.split() for line in lines[header + 2 : header + 5]]
    assert rows == [
        ["summary", "2", "2", "0.0%", "1,100", "220", "1.00", "51.6%", "0.50", "0.00", "0", "1"],
        ["(none)", "1", "2", "0.0%", "200", "40", "0.5625", "29.0%", "0.5625", "0.00", "0", "0"],
        ["faq", "3", "3", "33.3%", "200", "40", "0.375", "19.4%", "0.125", "0.75", "1", "0"],
    ]


def test_table_top_summarizes_the_rest(records) -> None:
    text = to_table(aggregate_many(records, [["feature"]]), top=1)
    assert "summary" in text and "\nfaq" not in text
    assert "... 2 more groups, $0.9375 (48.4%)" in text


def test_json_document(records) -> None:
    doc = json.loads(
        to_json(
            aggregate_many(records, [["feature"], ["tenant"]]),
            source="x.db",
            filters={"tenant": None, "since": "2026-11-01"},
        )
    )
    assert doc["source"] == "x.db"
    assert doc["filters"] == {"since": "2026-11-01"}
    assert doc["total"]["cost_usd"] == 1.9375
    assert [r["by"] for r in doc["reports"]] == [["feature"], ["tenant"]]
    assert doc["reports"][1]["groups"][0] | {} == {
        **doc["reports"][1]["groups"][0],
        "tenant": "acme",
        "cost_usd": 1.8125,
        "requests": 4,
    }


def test_csv_rows(records) -> None:
    rows = list(
        csv.DictReader(io.StringIO(to_csv([aggregate(records, by="feature"), aggregate(records, by="tenant")])))
    )
    assert [(r["grouping"], r["feature"], r["tenant"], r["cost_usd"]) for r in rows] == [
        ("total", "", "", "1.9375"),
        ("feature", "summary", "", "1.0"),
        ("feature", "", "", "0.5625"),
        ("feature", "faq", "", "0.375"),
        ("tenant", "", "acme", "1.8125"),
        ("tenant", "", "globex", "0.125"),
    ]
    faq = rows[3]
    assert (faq["saved_router"], faq["saved_exact"], faq["requests"], faq["errors"]) == ("0.5", "0.25", "3", "1")


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_csv_cells_that_a_spreadsheet_would_run_are_escaped(make_record, start) -> None:
    payload = f"{start}HYPERLINK(\"http://x\",\"y\")"
    text = to_csv([aggregate([make_record("r1", feature=payload, cost_usd=0.5)], by="feature")])
    row = list(csv.reader(io.StringIO(text)))[2]
    assert row[1] == "'" + payload  # a leading quote: shown as text, never evaluated
    assert f"\"'{start}" in text  # and the cell is quoted
    assert float(row[2]) == 1  # numbers stay numbers (requests)


def test_table_shows_control_characters_instead_of_sending_them(make_record) -> None:
    evil = "acme\x1b[2J\x1b[31mEVIL\nfake line\r"
    text = to_table([aggregate([make_record("r1", tenant=evil, cost_usd=0.5)], by="tenant")], title="t\x07")
    assert "\x1b" not in text and "\r" not in text and "\x07" not in text
    assert "acme\\x1b[2J\\x1b[31mEVIL\\nfake line\\r" in text
    assert not any(line.startswith("fake line") for line in text.splitlines())
