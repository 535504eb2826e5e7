"""Monitor: alerts reach the callbacks and the costkit.alerts log once, off the caller's thread by
default; budget thresholds arrive through the same path; evaluate() reads stored records."""

from __future__ import annotations

import logging
import threading

import pytest
from alert_traffic import record, stored

import costkit
from costkit.alerts import Alert, Burst, CostAnomaly, Monitor, evaluate
from costkit.errors import ConfigError

T0 = 1_793_491_200.0


def _loop(n: int = 12) -> list:
    return [record(request_id=f"r{i}", timestamp=T0 + i, cost_usd=0.25) for i in range(n)]


def test_callbacks_and_one_log_line_per_alert_even_when_a_callback_fails(caplog) -> None:
    got: list[Alert] = []

    def broken(alert: Alert) -> None:
        raise RuntimeError("pager down")

    monitor = Monitor([Burst(max_usd=1.0)], on_alert=[broken, got.append], background=False)
    with caplog.at_level(logging.WARNING, logger="costkit.alerts"), pytest.warns(Warning, match="pager down"):
        for r in _loop():
            monitor.emit(r)
    (alert,) = got
    assert list(monitor.alerts) == [alert] and monitor.counts == {"burst": 1, "callback_errors": 1}
    lines = [r for r in caplog.records if r.name == "costkit.alerts"]
    assert [r.getMessage() for r in lines] == [alert.message] and lines[0].levelno == logging.WARNING
    assert lines[0].costkit_alert["rule"] == "burst"


def test_background_mode_runs_rules_and_callbacks_off_the_callers_thread() -> None:
    threads: list[str] = []
    monitor = Monitor([Burst(max_usd=1.0)], on_alert=lambda a: threads.append(threading.current_thread().name))
    for r in _loop():
        monitor.emit(r)  # only enqueues
    monitor.flush()
    assert len(threads) == 1 and threads[0] != threading.current_thread().name
    assert monitor.stats.dropped == 0 and monitor.stats.written == 12
    monitor.close()


def test_budget_thresholds_arrive_as_alerts(fake_openai, cost_records, caplog) -> None:
    got: list[Alert] = []
    monitor = Monitor([CostAnomaly()], on_alert=got.append, background=False)
    budget = costkit.Budget(
        [costkit.BudgetLimit(usd=0.0002, window="day", tenant="*")], alerts=(0.5,), on_alert=monitor.budget
    )
    client = costkit.wrap(fake_openai, policies=[budget], sink=[cost_records, monitor])
    with caplog.at_level(logging.WARNING, logger="costkit.alerts"):
        for i in range(40):
            with costkit.tags(tenant="acme"):
                try:
                    client.chat.completions.create(
                        model="gpt-4o-mini", messages=[{"role": "user", "content": f"q{i} " * 20}], max_tokens=50
                    )
                except costkit.BudgetExceeded:
                    break
    (alert,) = got
    spent = sum(r.cost_usd for r in cost_records.records)
    assert alert.rule == "budget" and alert.subject == {"tenant": "acme"} and alert.threshold == 0.0001
    assert 0.0001 <= alert.value <= spent and alert.details["unit"] == "usd" and alert.details["share"] == 0.5
    assert alert.message.startswith("budget day:tenant=* [tenant=acme] passed 50% of $0.00")
    assert any(r.getMessage() == alert.message for r in caplog.records)


def test_evaluate_reads_a_window_of_stored_records(tmp_path) -> None:
    recs = _loop(12) + [record(request_id=f"s{i}", timestamp=T0 + 600 + i, cost_usd=0.25) for i in range(12)]
    path = stored(tmp_path, recs)
    rule = Burst(max_usd=1.0)
    assert len(evaluate(path, [rule])) == 2
    (late,) = evaluate(path, [rule], since=T0 + 300)
    assert late.window_end_s == T0 + 610 and [a.key for a in evaluate(recs, [rule], since=T0 + 300)] == [late.key]
    (early,) = evaluate(path, [rule], until=T0 + 300)
    assert early.window_end_s == T0 + 10
    empty = tmp_path / "empty.jsonl"
    empty.touch()
    assert evaluate(empty, [rule]) == [] and evaluate([], [rule]) == []


def test_alert_values_and_key() -> None:
    (alert,) = evaluate(_loop(), [Burst(max_usd=1.0)])
    d = alert.to_dict()
    assert set(d) == {
        "rule",
        "subject",
        "at",
        "at_iso",
        "window_start_s",
        "window_end_s",
        "value",
        "threshold",
        "message",
        "details",
    }
    assert d["at_iso"] == "2026-11-01T00:00:04Z" and alert.key == ("burst", (("tenant", "acme"),), T0 - 50)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"rules": []}, "rules"),
        ({"rules": [object()]}, "rules"),
        ({"rules": [CostAnomaly()], "on_alert": 3}, "on_alert"),
    ],
)
def test_bad_configuration_names_the_field(kwargs, field) -> None:
    with pytest.raises(ConfigError) as err:
        Monitor(**kwargs)
    assert err.value.field == field


def test_a_replay_returns_its_alerts_without_logging_them(caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="costkit.alerts"):
        assert len(evaluate(_loop(), [Burst(max_usd=1.0)])) == 1
    assert [r for r in caplog.records if r.name == "costkit.alerts"] == []
