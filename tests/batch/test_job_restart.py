"""A 10,000-item job through the fake HTTP server with the real SDKs, killed with SIGKILL mid-job
(while a batch it created has not answered yet) and run again: it finishes, no item was
submitted twice, and every item's cost is its batch-rate cost from LiteLLM's map to 1e-9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from costkit.testing import FakeProvider, serve

from .conftest import MODEL, map_batch_cost

N = 10_000
ROOT = Path(__file__).resolve().parents[2]


def _requests(path: Path) -> None:
    lines = (
        json.dumps({"model": MODEL, "messages": [{"role": "user", "content": f"summarise record {i}"}]})
        for i in range(N)
    )
    path.write_text("\n".join(lines) + "\n")


def _command(server_url: str, tmp: Path) -> list[str]:
    return [
        sys.executable, "-m", "costkit.report.cli", "batch", "run", str(tmp / "requests.jsonl"),
        "--method", "chat.completions.create", "--base-url", server_url, "--state", str(tmp / "jobs.db"),
        "--sink", str(tmp / "costs.jsonl"), "--out", str(tmp / "answers.jsonl"), "--max-requests", "2000",
        "--poll-initial", "0.05", "--poll-max", "0.2", "--reconcile-after", "0", "--no-progress",
    ]  # fmt: skip


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OPENAI_API_KEY": "sk-costkit-fake"}


@pytest.mark.slow
def test_kill_9_mid_job_and_restart_finishes_without_submitting_an_item_twice(tmp_path):
    _requests(tmp_path / "requests.jsonl")
    fake = FakeProvider()
    api = fake.batch_api
    api.set_timing(in_progress_s=3600.0)  # nothing ends before the kill
    api.delay_next_create(60.0, after=2)  # the 3rd batch is created, its answer never arrives
    with serve(fake) as server:
        first = subprocess.Popen(_command(server.base_url, tmp_path), env=_env(), stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE)  # fmt: skip
        deadline = time.monotonic() + 120
        while len(api.submissions) < 3 and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(api.submissions) == 3, first.communicate()[1].decode()[-2000:]
        time.sleep(0.3)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        assert first.returncode == -signal.SIGKILL

        api.set_timing(in_progress_s=0.0)
        second = subprocess.run(_command(server.base_url, tmp_path), env=_env(), capture_output=True, timeout=240)
        assert second.returncode == 0, second.stderr.decode()[-3000:]
        assert b"10000 answers, 0 without one" in second.stdout

    sent = Counter(int(cid.rsplit("-", 1)[1]) for s in api.submissions for cid in s.custom_ids)
    assert len(sent) == N and set(sent.values()) == {1}
    assert [len(s.custom_ids) for s in api.submissions] == [2000] * 5
    prompts = Counter(s_body["messages"][0]["content"] for s in api.submissions for s_body in s.bodies)
    assert len(prompts) == N and set(prompts.values()) == {1}

    answers = [json.loads(line) for line in (tmp_path / "answers.jsonl").read_text().splitlines()]
    assert [a["choices"][0]["message"]["content"] for a in answers] == [
        f"Fake answer to: summarise record {i}" for i in range(N)
    ]
    records = [json.loads(line) for line in (tmp_path / "costs.jsonl").read_text().splitlines()]
    assert len(records) == N and {r["kind"] for r in records} == {"batch"}
    assert len({r["request_id"] for r in records}) == N
    for r in records:
        assert abs(r["cost_usd"] - map_batch_cost(MODEL, r["input_tokens"], r["output_tokens"])) <= 1e-9
