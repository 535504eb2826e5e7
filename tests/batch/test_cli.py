"""costkit batch status / run, through the costkit console entry."""

from __future__ import annotations

import json

import costkit
from costkit.batch import submit
from costkit.report.cli import main
from costkit.testing import FakeOpenAI

from .conftest import FAST, chat


def test_status_lists_jobs_and_one_jobs_chunks(tmp_path, capsys):
    state = str(tmp_path / "jobs.db")
    client = costkit.wrap(FakeOpenAI(), sink=None)
    job = submit(client, "chat.completions.create", [chat(i) for i in range(3)], state=state, backoff=FAST)
    job.wait()
    assert main(["batch", "status", state]) == 0
    out = capsys.readouterr().out
    assert job.id in out and "succeeded" in out.splitlines()[0] and " 3 " in out
    assert main(["batch", "status", state, job.id, "--json"]) == 0
    (doc,) = json.loads(capsys.readouterr().out)
    assert doc["counts"] == {"succeeded": 3} and doc["chunks"][0]["status"] == "ended"
    assert doc["cost_usd"] > 0 and doc["saved_usd"] == doc["interactive_usd"] - doc["cost_usd"]
    assert main(["batch", "status", str(tmp_path / "missing.db")]) == 2
    assert main(["batch", "status", state, "bj_nope"]) == 2
