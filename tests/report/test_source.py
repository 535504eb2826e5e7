from __future__ import annotations

from pathlib import Path

import pytest

from costkit.report.aggregate import parse_time
from costkit.report.source import file_format, load_records
from costkit.sinks import JSONLSink, SQLiteSink


@pytest.fixture
def files(tmp_path: Path, records) -> dict[str, Path]:
    db, jl = tmp_path / "costs.db", tmp_path / "costs.jsonl"
    with SQLiteSink(db) as s, JSONLSink(jl) as j:
        for r in records:
            s.emit(r)
            j.emit(r)
    return {"sqlite": db, "jsonl": jl}


@pytest.mark.parametrize("fmt", ["sqlite", "jsonl"])
def test_reads_back_every_record(files, records, fmt) -> None:
    assert list(load_records(files[fmt])) == records


@pytest.mark.parametrize("fmt", ["sqlite", "jsonl"])
def test_filters_are_the_same_for_both_formats(files, fmt) -> None:
    got = load_records(
        files[fmt],
        since=parse_time("2026-11-01"),
        until=parse_time("2026-11-01", end=True),
        tenant="acme",
        feature="faq",
    )
    assert [r.request_id for r in got] == ["r1", "r4"]
    assert [r.request_id for r in load_records(files[fmt], day="2026-11-02")] == ["r5", "r6", "r6"]


def test_format_by_extension_then_content(files, tmp_path: Path) -> None:
    assert file_format(files["sqlite"]) == "sqlite"
    assert file_format(files["jsonl"]) == "jsonl"
    odd = tmp_path / "costs.data"
    odd.write_bytes(files["sqlite"].read_bytes())
    assert file_format(odd) == "sqlite"
    odd.write_bytes(files["jsonl"].read_bytes())
    assert file_format(odd) == "jsonl"


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_records(tmp_path / "nope.jsonl")
