from __future__ import annotations

import warnings

import pytest

import costkit
from costkit._warn import CostkitWarning
from costkit.errors import ConfigError
from costkit.outcomes import Outcome, registered_sinks, stats
from costkit.sinks import MemorySink, SQLiteSink


def test_outcome_goes_to_the_sink_of_the_wrapped_client(fake_openai, cost_records, sim_clock) -> None:
    client = costkit.wrap(fake_openai, sink=cost_records)
    with costkit.tags(task="ticket-1", feature="support"):
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    sim_clock.advance(60)
    made = costkit.outcome("ticket-1", success=True, value=12.5, channel="email")
    assert cost_records.records[0].task == "ticket-1"
    assert cost_records.outcomes == [made]
    assert made == Outcome(
        task="ticket-1", success=True, value=12.5, labels={"channel": "email"}, timestamp=sim_clock.now()
    )


def test_two_default_sinks_on_one_file_are_one_ledger(tmp_path, fake_openai) -> None:
    path = tmp_path / "costs.db"
    a, b = SQLiteSink(path), SQLiteSink(path)
    costkit.wrap(fake_openai, sink=a)
    costkit.wrap(fake_openai, sink=b)
    assert len(registered_sinks()) == 1
    costkit.outcome("t1", success=False)
    b.flush()
    assert [o.task for o in a.outcomes()] == ["t1"]
    a.close()
    b.close()


def test_every_ledger_gets_it_once_and_sink_overrides(fake_openai) -> None:
    m1, m2, only = MemorySink(), MemorySink(), MemorySink()
    clients = [  # an outcome goes to the sinks of clients that are alive
        costkit.wrap(fake_openai, sink=m1),
        costkit.wrap(fake_openai, sink=[m2, print]),  # a FanoutSink hands it to the members that take outcomes
    ]
    costkit.outcome("t1", success=True)
    costkit.outcome("t2", success=True, sink=only)
    assert [o.task for o in m1.outcomes] == [o.task for o in m2.outcomes] == ["t1"]
    assert [o.task for o in only.outcomes] == ["t2"]
    del clients


def test_no_sink_drops_counts_and_warns_once() -> None:
    with pytest.warns(CostkitWarning, match="no sink took the outcome"):
        costkit.outcome("t1", success=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        costkit.outcome("t2", success=True)  # warned once only
    assert stats["dropped"] == 2


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"task": "", "success": True}, "task"),
        ({"task": "t", "success": 1}, "success"),
        ({"task": "t", "success": True, "value": float("nan")}, "value"),
        ({"task": "t", "success": True, "channel": 3}, "channel"),
    ],
)
def test_bad_arguments_name_the_field(kwargs, field) -> None:
    with pytest.raises(ConfigError) as exc:
        costkit.outcome(**kwargs)
    assert exc.value.field == field


def test_a_sink_without_emit_outcome_is_refused_when_named() -> None:
    with pytest.raises(ConfigError):
        costkit.outcome("t", success=True, sink=print)


def test_stored_outcomes_are_rebuilt_field_by_field() -> None:
    o = Outcome.from_dict({"task": 5, "success": 1, "value": "x", "labels": {"a": 1}, "timestamp": "7", "code": "x"})
    assert o == Outcome(task="5", success=True, value=None, labels={"a": "1"}, timestamp=7.0)
