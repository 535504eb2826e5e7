"""settle_tasks: one outcome per task the fake provider served, judged by one stated rule."""

from __future__ import annotations

import costkit
from costkit.report.tasks import task_report
from costkit.sinks import SQLiteSink
from costkit.testing.outcomes import settle_tasks


def _ask(client, task: str, text: str) -> None:
    with costkit.tags(task=task, feature="support"):
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": text}])


def test_the_fixture_settles_each_open_task_once(fake_openai, cost_records, settle_tasks, sim_clock) -> None:
    fake_openai.fake.on("refund", "Refunds take 5 days.")
    client = costkit.wrap(fake_openai, sink=cost_records, record_text=True)
    for i, text in enumerate(["refund please", "where is my refund", "hello", "refund?"]):
        _ask(client, f"t{i % 3}", text)  # t0 asks twice
    sim_clock.advance(60)
    made = settle_tasks(
        lambda task, records: all("5 days" in r.completion_text for r in records), value=lambda t, r: 1.0
    )
    assert [(o.task, o.success, o.value, o.timestamp) for o in made] == [
        ("t0", True, 1.0, sim_clock.now()),
        ("t1", True, 1.0, sim_clock.now()),
        ("t2", False, 1.0, sim_clock.now()),
    ]
    assert settle_tasks(lambda task, records: True) == []  # already settled
    report = task_report(cost_records.records, cost_records.outcomes, by="feature")
    (g,) = report.groups
    assert (g.tasks, g.successes, g.failures) == (3, 2, 1)
    assert g.cost_usd == sum(r.cost_usd for r in cost_records.records)


def test_any_sink_that_reads_back(fake_openai, tmp_path) -> None:
    sink = SQLiteSink(tmp_path / "c.db")
    client = costkit.wrap(fake_openai, sink=sink)
    _ask(client, "a", "x")
    _ask(client, "b", "y")
    made = settle_tasks(sink, lambda task, records: task == "a", channel="test")
    assert [(o.task, o.success, dict(o.labels)) for o in made] == [
        ("a", True, {"channel": "test"}),
        ("b", False, {"channel": "test"}),
    ]
    assert [o.task for o in sink.outcomes()] == ["a", "b"]
    sink.close()
