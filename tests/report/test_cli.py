from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from costkit.report.cli import main
from costkit.sinks import JSONLSink, SQLiteSink


@pytest.fixture
def db(tmp_path: Path, records) -> Path:
    path = tmp_path / "costs.db"
    with SQLiteSink(path) as s:
        for r in records:
            s.emit(r)
    return path


def test_default_is_a_table_by_feature(db: Path, capsys) -> None:
    assert main(["report", str(db)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("costkit report: costs.db  (filters: none)\n")
    assert "by feature\n" in out
    assert "total cost $1.9375 over 6 requests" in out
    rows = [line.split()[0] for line in out.split("by feature\n")[1].splitlines()[2:]]
    assert rows == ["summary", "(none)", "faq"]


def test_by_repeated_and_combined(db: Path, capsys) -> None:
    assert main(["report", str(db), "--by", "feature", "--by", "tenant,day", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [r["by"] for r in doc["reports"]] == [["feature"], ["tenant", "day"]]
    assert doc["reports"][1]["groups"][0]["tenant"] == "acme"
    assert doc["reports"][1]["groups"][0]["day"] == "2026-11-01"
    assert doc["reports"][1]["groups"][0]["cost_usd"] == 1.25


def test_since_until_and_tenant_filters(db: Path, capsys) -> None:
    assert (
        main(
            [
                "report",
                str(db),
                "--since",
                "2026-11-01",
                "--until",
                "2026-11-01",
                "--tenant",
                "acme",
                "--format",
                "json",
            ]
        )
        == 0
    )
    doc = json.loads(capsys.readouterr().out)
    assert doc["filters"] == {"since": "2026-11-01", "until": "2026-11-01", "tenant": "acme"}
    assert doc["total"]["requests"] == 3  # r1, r3, r4
    assert doc["total"]["cost_usd"] == 1.25


def test_csv_to_a_file_from_jsonl(tmp_path: Path, records, capsys) -> None:
    path = tmp_path / "costs.jsonl"
    with JSONLSink(path) as s:
        for r in records:
            s.emit(r)
    out = tmp_path / "report.csv"
    assert main(["report", str(path), "--by", "model", "--format", "csv", "-o", str(out)]) == 0
    assert capsys.readouterr().err == "wrote " + str(out) + " (8 records)\n"
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [(r["model"], r["cost_usd"]) for r in rows] == [
        ("", "1.9375"),
        ("gpt-4o", "1.5"),
        ("gpt-4o-mini", "0.4375"),
        ("mystery-1", "0.0"),
    ]


def test_html_file(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    assert main(["report", str(db), "--format", "html", "-o", str(out), "--by", "feature", "--by", "model"]) == 0
    html = out.read_text()
    assert html.startswith("<!DOCTYPE html>")
    doc = json.loads(html.split('<script type="application/json" id="data">')[1].split("</script>")[0])
    assert [r["by"] for r in doc["reports"]] == [["feature"], ["model"]]
    assert doc["totals"]["cost_usd"] == 1.9375 and doc["bucket"] == "hour"  # under 3 days: per hour
    assert (doc["time"][0], doc["time"][-1], len(doc["time"])) == ("2026-11-01T10:00Z", "2026-11-02T09:00Z", 24)
    assert doc["cost_by"]["feature"]["names"] == ["summary", "(none)", "faq"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["report", "{tmp}/missing.db"], "costkit: error: no such file: {tmp}/missing.db"),
        (["report", "{db}", "--by", "colour"], "costkit: error: --by: cannot group by 'colour'"),
        (["report", "{db}", "--since", "yesterday"], "costkit: error: --since: 'yesterday' is not a date"),
        (["report", "{db}", "--top", "0"], "costkit: error: --top: expected a positive number"),
        (["report", "{tmp}/notes.db"], "costkit: error: cannot read {tmp}/notes.db"),
    ],
)
def test_clear_errors(db: Path, tmp_path: Path, capsys, argv, message) -> None:
    (tmp_path / "notes.db").write_text("not a database " * 50)
    fill = {"tmp": str(tmp_path), "db": str(db)}
    assert main([a.format(**fill) for a in argv]) == 2
    assert capsys.readouterr().err.startswith(message.format(**fill))


def test_no_command_prints_help(capsys) -> None:
    assert main([]) == 2
    assert "report" in capsys.readouterr().err


def test_runs_as_a_module(db: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.run(
        [sys.executable, "-m", "costkit.report", "report", str(db), "--by", "tenant"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert "by tenant" in proc.stdout


def test_no_path_reads_the_file_wrap_writes(tmp_path: Path, records, monkeypatch, capsys) -> None:
    from costkit.sinks import SQLiteSink

    path = tmp_path / "default" / "costs.db"
    monkeypatch.setenv("COSTKIT_DB", str(path))
    with SQLiteSink(path) as sink:
        for r in records:
            sink.emit(r)
    assert main(["report"]) == 0
    out = capsys.readouterr().out
    assert "costkit report: costs.db" in out and "total cost $1.9375" in out


def test_tasks_and_arms_sections(tmp_path: Path, capsys) -> None:
    from costkit.outcomes import make_outcome
    from costkit.records import CostRecord

    path = tmp_path / "costs.db"
    with SQLiteSink(path) as sink:
        for i in range(40):
            arm = "control" if i % 2 else "v2"
            sink.emit(
                CostRecord(
                    request_id=f"r{i}",
                    attempt=1,
                    kind="call",
                    timestamp=1.8e9 + i,
                    provider="openai",
                    requested_model="gpt-4o",
                    model="gpt-4o",
                    feature="faq",
                    task=f"t{i}",
                    experiment="prompt",
                    arm=arm,
                    cost_usd=0.5,
                )
            )
            sink.emit_outcome(make_outcome(f"t{i}", success=i % 4 != 1))
    assert main(["report", str(path), "--tasks", "--arms"]) == 0
    out = capsys.readouterr().out
    assert "tasks by feature" in out
    faq = next(line for line in out.splitlines() if line.startswith("faq") and "75.0%" in line)
    assert faq.split()[1:5] == ["40", "30", "10", "0"] and "0.666667" in faq
    control = next(line for line in out.splitlines() if line.startswith("prompt") and "control" in line)
    v2 = next(line for line in out.splitlines() if line.startswith("prompt") and " v2 " in line)
    assert "50.0%" in control and "100.0%" in v2 and "significant: success rate higher" in v2


def _ledger(tmp_path: Path) -> Path:
    from costkit.outcomes import make_outcome
    from costkit.records import CostRecord

    path = tmp_path / "tasks.db"
    with SQLiteSink(path) as sink:
        for i in range(40):
            arm = "control" if i % 2 else "v2"
            sink.emit(
                CostRecord(
                    request_id=f"r{i}",
                    attempt=1,
                    kind="call",
                    timestamp=1.8e9 + i * 3600,
                    provider="openai",
                    requested_model="gpt-4o",
                    model="gpt-4o",
                    feature="faq",
                    task=f"t{i}",
                    experiment="prompt",
                    arm=arm,
                    cost_usd=0.5,
                )
            )
            sink.emit_outcome(make_outcome(f"t{i}", success=i % 4 != 1))
    return path


def test_json_is_one_document_with_every_section(tmp_path: Path, capsys) -> None:
    path = _ledger(tmp_path)
    argv = [
        "report",
        str(path),
        "--format",
        "json",
        "--tasks",
        "--arms",
        "--forecast",
        "--alerts",
        "--burst-usd",
        "0.75",
    ]
    assert main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc) == {"source", "filters", "total", "reports", "tasks", "arms", "forecast", "alerts"}
    (faq,) = doc["tasks"][0]["groups"]
    assert (faq["tasks"], faq["successes"], faq["failures"], faq["cost_per_success"]) == (40, 30, 10, 20 / 30)
    assert [(a["arm"], a["success_rate"]) for a in doc["arms"]] == [("control", 0.5), ("v2", 1.0)]
    assert doc["forecast"][0]["key"] == "(all)" and doc["forecast"][0]["spent_usd"] == 20.0
    assert doc["alerts"] == []  # one call an hour: no burst, and no baseline for anomalies yet


def test_csv_carries_tasks_and_arms_rows(tmp_path: Path, capsys) -> None:
    assert main(["report", str(_ledger(tmp_path)), "--format", "csv", "--tasks", "--arms"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["grouping"] for r in rows] == ["total", "feature", "tasks:feature", "arms", "arms"]
    tasks = rows[2]
    assert (tasks["feature"], tasks["tasks"], tasks["successes"], tasks["cost_usd"]) == ("faq", "40", "30", "")
    control, v2 = rows[3], rows[4]
    assert (control["experiment"], control["arm"], control["verdict"]) == ("prompt", "control", "control")
    assert v2["verdict"] == "significant: success rate higher, cost per successful task lower"
    assert float(v2["success_rate_ci_low"]) > 0.8


def test_text_has_forecast_and_alerts_sections(tmp_path: Path, capsys) -> None:
    assert main(["report", str(_ledger(tmp_path)), "--forecast", "--alerts"]) == 0
    out = capsys.readouterr().out
    total = next(line.split() for line in out.splitlines() if line.startswith("(all)"))
    assert "month-end forecast" in out and total[:3] == ["(all)", "2027-01", "20.00"]  # 1.8e9 is 2027-01-15
    assert "alerts (0)" in out


@pytest.mark.parametrize("fmt", ["sqlite", "jsonl"])
def test_quality_section_counts_unfamiliar_routing_and_refuted_samples_per_feature(
    tmp_path: Path, capsys, make_record, fmt
) -> None:
    notes = [
        ("faq", {"route_ood": False, "route_new_topic": False}),
        ("faq", {"route_ood": True, "route_new_topic": False}),
        ("faq", {"route_ood": False, "route_new_topic": True}),
        ("faq", {"route_ood": False, "route_new_topic": False, "cache_verified": True}),
        ("faq", {"cache_verified": False}),  # the provider call after a refuted sample
        ("exam", {"route_ood": "yes"}),  # not a JSON boolean: not counted (stored notes are untrusted)
        ("exam", {"cache_verified": True}),
        ("exam", {}),
    ]
    path = tmp_path / ("costs.db" if fmt == "sqlite" else "costs.jsonl")
    with (SQLiteSink(path) if fmt == "sqlite" else JSONLSink(path)) as sink:
        for i, (feature, note) in enumerate(notes):
            sink.emit(make_record(f"q{i}", feature=feature, notes=note))
    assert main(["report", str(path), "--quality", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["quality"] == [
        {"feature": "exam", "routed": 0, "unfamiliar": 0, "careful": 0, "careful_of": 0, "verified": 1, "refuted": 0,
         "live_false_hit_rate": 0.0},
        {"feature": "faq", "routed": 4, "unfamiliar": 1, "careful": 1, "careful_of": 4, "verified": 2, "refuted": 1,
         "live_false_hit_rate": 0.5},
    ]  # fmt: skip
    assert main(["report", str(path), "--quality"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.split("quality signals")[1].splitlines()[3:]]
    assert rows == [["exam", "0", "-", "-", "1", "0", "0.0%"], ["faq", "4", "25.0%", "25.0%", "2", "1", "50.0%"]]


def test_rebuild_rollups_of_an_old_file(db: Path, capsys) -> None:
    import sqlite3

    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE cost_records_meta SET value = 999 WHERE key = 'rollup_from_id'")
        conn.execute("DELETE FROM cost_records_rollup")
    assert main(["report", "--rebuild-rollups", str(db), "--by", "model"]) == 0
    captured = capsys.readouterr()
    assert captured.err == f"rebuilt the rollups of {db}: 8 records\n" and "gpt-4o-mini" in captured.out
    assert main(["report", "--rebuild-rollups", str(db.with_suffix(".jsonl"))]) == 2
    assert "no such file" in capsys.readouterr().err


def test_dashboard_command_needs_records(tmp_path: Path, capsys) -> None:
    assert main(["dashboard", str(tmp_path / "missing.db")]) == 2
    assert capsys.readouterr().err == f"costkit: error: no such file: {tmp_path / 'missing.db'}\n"


def test_alert_options_make_the_rules() -> None:
    from costkit.alerts import Burst, CacheHealth, CostAnomaly
    from costkit.report.cli import alert_rules, build_parser

    args = build_parser().parse_args(
        ["report", "x.db", "--burst-factor", "4", "--min-hit-rate", "0.3", "--ttl-s", "60"]
    )
    anomaly, cache, burst = alert_rules(args)
    assert anomaly == CostAnomaly(min_usd=1.0) and cache == CacheHealth(min_hit_rate=0.3, ttl_s=60)
    assert burst == Burst(factor=4.0, min_usd=0.01, window_s=60.0)
    assert len(alert_rules(build_parser().parse_args(["dashboard"]))) == 2  # no burst rule unless asked
