"""Cost per successful task and the arm comparison, every number checked by hand."""

from __future__ import annotations

import math

import pytest

import costkit
from costkit.outcomes import Outcome
from costkit.report.tasks import compare_arms, task_report, wilson


def _o(task: str, ok: bool, t: float = 0.0, value: float | None = None) -> Outcome:
    return Outcome(task=task, success=ok, value=value, timestamp=t)


def test_cost_per_successful_task_by_feature(make_record) -> None:
    records = [
        make_record("a1", task="A", feature="faq", cost_usd=0.25),
        make_record("a2", task="A", feature="faq", cost_usd=0.25),  # A: 0.5, succeeded
        make_record("b1", task="B", feature="faq", cost_usd=1.0),  # B: 1.0, failed (then fixed? latest wins)
        make_record("c1", task="C", feature="faq", cost_usd=0.125),  # C: open
        make_record("d1", task="D", feature="summary", cost_usd=2.0),  # D: 2.0, succeeded
        make_record("x1", task=None, feature="faq", cost_usd=9.0),  # not part of a task
    ]
    outcomes = [_o("B", True, 1.0), _o("B", False, 2.0, 3.0), _o("A", True, 1.0, 10.0), _o("D", True)]
    rep = task_report(records, outcomes, by="feature")
    faq = rep.group("faq")
    assert (faq.tasks, faq.successes, faq.failures, faq.open) == (3, 1, 1, 1)
    assert faq.cost_usd == 1.5 and faq.open_cost_usd == 0.125 and faq.failed_cost_usd == 1.0
    assert faq.success_rate == 0.5 and faq.cost_per_task == 0.75 and faq.cost_per_success == 1.5
    assert faq.value == 13.0
    assert rep.group("summary").cost_per_success == 2.0
    assert (rep.total.tasks, rep.total.successes, rep.total.cost_usd, rep.total.cost_per_success) == (4, 2, 3.5, 1.75)


def test_wilson_matches_the_formula() -> None:
    lo, hi = wilson(8, 10)
    assert (round(lo, 4), round(hi, 4)) == (0.4902, 0.9433)
    assert wilson(0, 0) == (0.0, 1.0)


def _arm_records(make_record, arm: str, n: int, successes: int, cost: float):
    recs = [make_record(f"{arm}{i}", task=f"{arm}-{i}", experiment="prompt", arm=arm, cost_usd=cost) for i in range(n)]
    outs = [_o(f"{arm}-{i}", i < successes) for i in range(n)]
    return recs, outs


def test_arms_compare_with_intervals_and_a_verdict(make_record) -> None:
    r1, o1 = _arm_records(make_record, "control", 200, 150, 0.01)
    r2, o2 = _arm_records(make_record, "v2", 200, 180, 0.01)
    r3, o3 = _arm_records(make_record, "v3", 20, 16, 0.01)
    rep = task_report(r1 + r2 + r3, o1 + o2 + o3, by=("experiment", "arm"))
    control, v2, v3 = compare_arms(rep)
    assert (control.arm, control.verdict) == ("control", "control")
    assert v2.success_rate_diff == pytest.approx(0.15)
    assert v2.stats.cost_per_success == pytest.approx(2.0 / 180)
    assert v2.verdict.startswith("significant: success rate higher")
    assert v2.cost_per_success_diff_ci is not None and v2.cost_per_success_diff_ci[1] < 0
    assert v3.verdict == "not yet significant"  # 16/20 vs 150/200: the interval still holds 0
    lo, hi = v3.success_rate_diff_ci
    assert lo < 0 < hi


def test_delta_method_interval_of_cost_per_success(make_record) -> None:
    # costs 1,2,3,4 with outcomes ok,ok,fail,ok: R = 10/3; the delta-method half-width by hand
    costs = [1.0, 2, 3, 4]
    recs = [make_record(f"r{i}", task=f"t{i}", experiment="e", arm="a", cost_usd=c) for i, c in enumerate(costs)]
    outs = [_o("t0", True), _o("t1", True), _o("t2", False), _o("t3", True)]
    (cmp,) = compare_arms(task_report(recs, outs, by=("experiment", "arm")))
    n, mc, ms = 4, 2.5, 0.75
    var_c = (1 + 4 + 9 + 16 - n * mc * mc) / 3
    var_s = ms * (1 - ms) * n / 3
    cov = (1 + 2 + 4 - n * mc * ms) / 3
    r = mc / ms
    half = 1.959963984540054 * math.sqrt((var_c - 2 * r * cov + r * r * var_s) / ms**2 / n)
    assert cmp.cost_per_success_ci == pytest.approx((r - half, r + half))


def test_tasks_written_by_the_fake_provider(fake_openai, cost_records, sim_clock) -> None:
    fake_openai.fake.on("hard", "long answer " * 40)
    client = costkit.wrap(fake_openai, sink=cost_records)
    for task, question, ok in (("t1", "easy one", True), ("t2", "a hard one", False), ("t3", "easy two", True)):
        with costkit.tags(task=task, feature="support"):
            for _ in range(2):
                client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": question}])
                sim_clock.advance(30)
        costkit.outcome(task, success=ok)
    rep = task_report(cost_records.records, cost_records.outcomes, by="feature")
    g = rep.group("support")
    cost = {t: sum(r.cost_usd for r in cost_records.records if r.task == t) for t in ("t1", "t2", "t3")}
    assert (g.tasks, g.successes, g.failures) == (3, 2, 1)
    assert g.cost_per_success == pytest.approx(sum(cost.values()) / 2)
    assert g.failed_cost_usd == pytest.approx(cost["t2"]) and cost["t2"] > cost["t1"]
    assert [r.timestamp for r in cost_records.records][:2] == [sim_clock.now() - 180, sim_clock.now() - 150]
