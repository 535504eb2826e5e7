from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest

from costkit._warn import CostkitWarning
from costkit.errors import ConfigError
from costkit.records import FIELDS, CostRecord
from costkit.sinks import JSONLSink
from costkit.sinks.jsonl import iter_jsonl


def test_one_json_object_per_line_with_every_field(tmp_path: Path, make_record) -> None:
    path = tmp_path / "costs.jsonl"
    sink = JSONLSink(path, batch_size=2)
    recs = [make_record(feature=f) for f in ("a", "b", "c")]
    for r in recs:
        sink.emit(r)
    assert sink.flush(30)
    lines = path.read_text().splitlines()
    assert len(lines) == 3
    first = json.loads(lines[0])
    assert set(first) == set(FIELDS)
    assert first["feature"] == "a"
    assert first["savings"] == {"router": 0.0015}
    assert (sink.emitted, sink.written, sink.dropped, sink.errors) == (3, 3, 0, 0)
    sink.close()


def test_records_round_trip_exactly(tmp_path: Path, edge_records: list[CostRecord]) -> None:
    path = tmp_path / "costs.jsonl"
    recs = edge_records
    with JSONLSink(path) as sink:
        for r in recs:
            sink.emit(r)
        assert sink.records() == recs
    assert JSONLSink.read(path) == recs


def test_appends_to_existing_file_and_survives_a_torn_last_line(tmp_path: Path, make_record) -> None:
    path = tmp_path / "costs.jsonl"
    a, b = make_record(), make_record()
    with JSONLSink(path) as s1:
        s1.emit(a)
    with JSONLSink(path) as s2:
        s2.emit(b)
    with open(path, "a") as f:
        f.write('{"request_id": "torn", "att')
    with pytest.warns(CostkitWarning, match="skipped a line"):
        assert list(iter_jsonl(path)) == [a, b]


def test_non_json_notes_are_written_not_dropped(tmp_path: Path, make_record) -> None:
    path = tmp_path / "costs.jsonl"
    with JSONLSink(path) as sink:
        sink.emit(make_record(notes={"shape": (1, 2), "obj": object, "tags": {"b"}}))
    (rec,) = JSONLSink.read(path)
    assert rec.notes["shape"] == [1, 2]
    assert rec.notes["tags"] == ["b"]
    assert rec.notes["obj"] == str(object)


def test_unwritable_path_fails_at_construction(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigError) as err:
        JSONLSink(blocker / "sub" / "costs.jsonl")
    assert err.value.field == "path"


def test_write_error_is_counted_never_raised(tmp_path: Path, make_record) -> None:
    path = tmp_path / "costs.jsonl"
    sink = JSONLSink(path)
    path.unlink()
    path.mkdir()  # the file became a directory: every write fails
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sink.emit(make_record())
        assert sink.flush(30)
    assert (sink.written, sink.dropped, sink.errors) == (0, 1, 1)
    assert any(w.category is CostkitWarning for w in caught)
    sink.close()


def test_pending_lines_are_written_at_interpreter_exit(tmp_path: Path) -> None:
    path = tmp_path / "exit.jsonl"
    script = textwrap.dedent(
        f"""
        from costkit.records import CostRecord
        from costkit.sinks import JSONLSink
        sink = JSONLSink({str(path)!r}, flush_interval_s=3600, batch_size=100_000)
        for i in range(1000):
            sink.emit(CostRecord(request_id=str(i), attempt=1, kind="call", timestamp=float(i),
                                 provider="openai", requested_model="m", model="m"))
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    assert [r.request_id for r in JSONLSink.read(path)] == [str(i) for i in range(1000)]


def test_a_rotated_file_is_reopened(tmp_path: Path, make_record) -> None:
    path = tmp_path / "costs.jsonl"
    sink = JSONLSink(path)
    a, b = make_record(), make_record()
    sink.emit(a)
    assert sink.flush(30)
    path.rename(tmp_path / "costs.jsonl.1")  # what logrotate does
    sink.emit(b)
    assert sink.flush(30)
    sink.close()
    assert JSONLSink.read(tmp_path / "costs.jsonl.1") == [a]
    assert JSONLSink.read(path) == [b]


def test_new_file_is_private_and_outcome_lines_are_told_apart(tmp_path: Path, make_record) -> None:
    from costkit.outcomes import make_outcome
    from costkit.sinks.jsonl import iter_jsonl_outcomes

    path = tmp_path / "logs" / "costs.jsonl"
    rec, o = make_record(), make_outcome("t1", False, labels_are="kw")
    with JSONLSink(path) as sink:
        sink.emit(rec)
        sink.emit_outcome(o)
    assert path.stat().st_mode & 0o777 == 0o600 and path.parent.stat().st_mode & 0o777 == 0o700
    assert JSONLSink.read(path) == [rec]
    assert list(iter_jsonl_outcomes(path)) == [o]
