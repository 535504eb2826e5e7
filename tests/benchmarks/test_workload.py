"""The workload benchmark: the generator keeps the data's structure, the fake answers from the data,
the oracle and the wrong-answer counts add up on hand-built traces, and --json has the promised shape."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import attrs
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

from workload_configs import CostkitConfiguration, TraceClock  # noqa: E402
from workload_data import MmluItem, QqpPair, Sources, SquadQuestion, TraceRow  # noqa: E402
from workload_fake import WorkloadProvider, answer_id  # noqa: E402
from workload_gptcache import FixedThresholdCache  # noqa: E402
from workload_replay import Outcome, Run, replay  # noqa: E402
from workload_score import billed_usd, judge, oracle_usd, score, upper_bound  # noqa: E402
from workload_trace import STRONG, WEAK, Question, Request, Spec, Workload, generate  # noqa: E402

import costkit  # noqa: E402
from costkit.pricing import default_pricebook  # noqa: E402
from costkit.testing import FakeOpenAI  # noqa: E402
from costkit.tokens import count_messages, count_text  # noqa: E402

PARAGRAPHS = (
    "The harbour opened in 1820. Ships came from the south.",
    "The bridge was built in 1901. It spans the river Lune.",
    "The market runs on Fridays. Farmers sell cheese there.",
)


def mini_sources() -> Sources:
    items = tuple(
        MmluItem("s", f"Question {i} about topic {i}?\nA. yes\nB. no\nAnswer:", i % 2 == 0, i % 3 != 0)
        for i in range(6)
    )
    return Sources(
        split="dev",
        qqp=(
            QqpPair("How do I bake bread at home?", "What is the best way to bake bread at home?", True),
            QqpPair("How do I learn Python fast?", "How do I learn Java fast?", False),
        ),
        mmlu=items,
        router_train=items,
        squad=(SquadQuestion("When was the bridge built?", "Town", 1, PARAGRAPHS, "The bridge was built in 1901."),),
        trace=tuple(TraceRow(float(i), 300 + 10 * i, 40 + i) for i in range(60)),
    )


def test_generator_is_replayable_and_keeps_the_data_structure() -> None:
    spec = Spec(requests=60, tenants=2, paragraphs=3, client_retry_rate=0.2)
    first, second = generate(mini_sources(), spec), generate(mini_sources(), spec)
    assert first.requests == second.requests and first.systems == second.systems

    qs = first.questions.values()
    faq = [q for q in qs if q.family == "faq"]
    # a duplicate pair is one question with two phrasings; a non-duplicate pair is two questions
    assert all(len(q.phrasings) in (1, 2) for q in faq)
    assert all(len(q.phrasings) == 2 for q in faq if "bread" in q.phrasings[0])
    assert all(len(q.phrasings) == 1 for q in faq if "fast" in q.phrasings[0])
    docs = [q for q in qs if q.family == "docs"]
    assert docs and all(q.context[q.gold] == PARAGRAPHS[1] and len(q.context) == 3 for q in docs)
    # requests: in arrival order, followers right behind an identical leader, offline answered once each
    reqs = first.requests
    assert [r.index for r in reqs] == list(range(len(reqs)))
    for r in reqs:
        if r.leader is not None:
            lead = reqs[r.leader]
            assert (lead.qid, lead.phrasing, lead.lane) == (r.qid, r.phrasing, "interactive") and r.why
    offline = [(r.qid, r.phrasing) for r in reqs if r.lane == "offline"]
    assert len(offline) == len(set(offline))
    assert {r.feature for r in reqs if r.lane == "offline"} <= {"nightly"}


def hand_workload() -> Workload:
    """Four questions of one tenant; hand-chosen labels and sizes."""
    system = "You are the faq assistant of tenant t00. Be brief."
    q = {
        "a": Question("t00:faq:0:0", "t00", "faq", "s", ("Is it open?", "Is it open today?"), True, True, 20),
        "b": Question("t00:faq:1:0", "t00", "faq", "s", ("How far is it?",), False, True, 30),
        "c": Question(
            "t00:docs:0:0",
            "t00",
            "docs",
            "s",
            ("When was the bridge built?",),
            False,
            True,
            25,
            context=PARAGRAPHS,
            gold=1,
            answer_sentence="The bridge was built in 1901.",
        ),
        "d": Question("t00:faq:2:0", "t00", "faq", "s", ("Where do I park?",), True, False, 15),
    }
    requests = (
        Request(0, 0.0, "t00", "faq", q["a"].qid, 0, "interactive"),
        Request(1, 1.0, "t00", "faq", q["a"].qid, 1, "interactive"),  # a paraphrase
        Request(2, 2.0, "t00", "faq", q["b"].qid, 0, "interactive"),
        Request(3, 3.0, "t00", "docs", q["c"].qid, 0, "interactive"),
        Request(4, 4.0, "t00", "faq", q["a"].qid, 0, "interactive"),  # a repeat
        Request(5, 9.0, "t00", "nightly", q["d"].qid, 0, "offline"),  # only ever offline: batch prices
    )
    return Workload(Spec(fault_rate=0.0), "dev", {"s": system}, {x.qid: x for x in q.values()}, requests, ())


def test_oracle_on_a_hand_computed_trace() -> None:
    w = hand_workload()
    book = default_pricebook()
    weak, strong = book.get(WEAK), book.get(STRONG)
    system = {"role": "system", "content": w.systems["s"]}

    def tokens(question: Question, model: str, context: tuple[str, ...] = ()) -> tuple[int, int]:
        msgs = [system, *({"role": "user", "name": "context", "content": c} for c in context),
                {"role": "user", "content": question.phrasings[0]}]  # fmt: skip
        return count_messages(msgs, model), count_text(question.answer(True), model)

    qa, qb, qc, qd = w.questions.values()
    a_in, a_out = tokens(qa, WEAK)  # weak knows it: the cheap model, once (the paraphrase and repeat are free)
    b_in, b_out = tokens(qb, STRONG)  # only the strong model knows it
    c_in, c_out = tokens(qc, STRONG, (PARAGRAPHS[1],))  # strong only, with the paragraph holding the answer only
    d_in, d_out = tokens(qd, WEAK)  # asked only by the nightly job: batch prices
    expected = (
        a_in * weak.input_per_token
        + a_out * weak.output_per_token
        + (b_in + c_in) * strong.input_per_token
        + (b_out + c_out) * strong.output_per_token
        + d_in * weak.batch_input_per_token
        + d_out * weak.batch_output_per_token
    )
    assert a_in > 10 and c_in > b_in  # the paragraph is counted
    assert oracle_usd(w) == pytest.approx(expected, rel=1e-12)


def test_wrong_answers_are_counted_against_the_truth_and_the_frontier_models_answer() -> None:
    w = hand_workload()
    qa, qb, qc, qd = w.questions.values()
    texts = [
        qa.answer(True),  # right
        qb.answer(True),  # right (strong knows b)
        qa.answer(True),  # b asked, a's answer: a cache hit from another question -> caused
        qc.answer(False),  # c: the frontier model knows it (its answer sentence was compressed away) -> caused
        None,  # failed
        qd.answer(False),  # d: the frontier model is wrong on it too -> wrong, not caused
    ]
    fixed = [w.requests[0], w.requests[2], w.requests[2], w.requests[3], w.requests[4], w.requests[5]]
    w2 = Workload(w.spec, w.split, w.systems, w.questions, tuple(fixed), ())
    outcomes = tuple(Outcome(i, t, None if t else "APIError", 0.001) for i, t in enumerate(texts))
    run = Run("x", "", outcomes, (), None, (), 0.0)
    judged = judge(w2, run)
    assert judged["calls"] == 6
    assert judged["wrong_rate"] == pytest.approx(2 / 6)
    assert judged["wrong_rate_abs"] == pytest.approx(3 / 6)
    assert judged["failed_rate"] == pytest.approx(1 / 6)
    assert answer_id(qa.answer(True)) == "ANSWER-t00:faq:0:0"


def test_the_wrong_rate_bound_counts_a_question_asked_often_as_one_cluster() -> None:
    # 100 requests, 2 caused wrong: spread over two questions, or both on one popular question
    spread = [[1, 1], [1, 1]] + [[0, 1]] * 98
    popular = [[2, 2]] + [[0, 1]] * 98
    # rate 0.02; cluster variance sum((y - 0.02 m)^2) / n^2 * c / (c - 1)
    var_spread = (2 * 0.98**2 + 98 * 0.02**2) / 100**2 * 100 / 99
    var_popular = (1.96**2 + 98 * 0.02**2) / 100**2 * 99 / 98
    assert upper_bound(spread) == pytest.approx(0.02 + 1.645 * var_spread**0.5)
    assert upper_bound(popular) == pytest.approx(0.02 + 1.645 * var_popular**0.5)
    assert upper_bound(popular) > upper_bound(spread) and upper_bound([[0, 5]]) == 1.0  # one cluster: no bound


def test_the_fake_answers_from_the_data_and_the_bill_is_read_from_its_log() -> None:
    w = hand_workload()
    fake = WorkloadProvider(w, fault_rate=0.0)
    client = FakeOpenAI(fake)

    def ask(request: Request, model: str, messages: list[dict] | None = None) -> str | None:
        msgs = messages or w.messages(request)
        reply = client.chat.completions.create(model=model, messages=msgs, temperature=0)
        return answer_id(reply.choices[0].message.content)

    b = w.requests[2]
    assert ask(b, WEAK) == "WRONG-t00:faq:1:0" and ask(b, STRONG) == "ANSWER-t00:faq:1:0"
    d = w.requests[5]
    assert ask(d, WEAK) == "ANSWER-t00:faq:2:0" and ask(d, STRONG) == "WRONG-t00:faq:2:0"
    # a docs question whose answer sentence did not reach the model is answered wrong
    c = w.requests[3]
    assert ask(c, STRONG) == "ANSWER-t00:docs:0:0"
    kept = [m for m in w.messages(c) if m.get("name") != "context" or "bridge" not in m["content"]]
    assert ask(c, STRONG, kept) == "WRONG-t00:docs:0:0"
    # white space does not change a question (the compressor's normalize step collapses runs of spaces)
    spaced = [*w.messages(b)[:-1], {"role": "user", "content": "How  far is  it?"}]
    assert ask(b, STRONG, spaced) == "ANSWER-t00:faq:1:0"
    # a system prompt a layer rewrote names no question of the workload
    changed = [{"role": "system", "content": "Be brief."}, *w.messages(b)[1:]]
    assert ask(b, STRONG, changed) == "UNKNOWN"
    run = Run("x", "", (), tuple(fake.calls), None, (), 0.0)
    book = default_pricebook()
    expected = sum(book.cost(c.model, c.usage) for c in fake.calls)
    assert billed_usd(run)[0] == pytest.approx(expected) and expected > 0


def test_a_costkit_layer_sees_the_fake_as_a_real_provider() -> None:
    w = hand_workload()
    fake = WorkloadProvider(w, fault_rate=0.0)
    client = costkit.wrap(FakeOpenAI(fake), policies=[costkit.ExactCache("memory")], sink=None)
    a = w.requests[0]
    for _ in range(3):
        reply = client.chat.completions.create(model=STRONG, messages=w.messages(a), temperature=0)
        assert answer_id(reply.choices[0].message.content) == "ANSWER-t00:faq:0:0"
    assert fake.count() == 1


@pytest.mark.slow
def test_json_output_has_a_key_per_configuration_with_the_promised_figures(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    saved = tmp_path / "trace.json"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "workload.py"), "--json", "--requests", "80",
           "--configs", "exact_cache", "full", "--save-trace", str(saved)]  # fmt: skip
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, check=True)
    doc = json.loads(out.stdout)
    assert set(doc) == {"baseline", "exact_cache", "full", "workload"}
    for name in ("baseline", "exact_cache", "full"):
        figures = doc[name]
        for key in ("cost_usd", "saving", "wrong_rate", "oracle_ratio", "overhead_us_p50", "overhead_us_p99"):
            assert key in figures, (name, key)
        assert figures["oracle_ratio"] == pytest.approx(figures["cost_usd"] / doc["workload"]["oracle_usd"], rel=1e-3)
        assert figures["saving"] == pytest.approx(1 - figures["cost_usd"] / doc["baseline"]["cost_usd"], abs=1e-4)
        assert figures["calls"] == doc["workload"]["requests"]
    assert doc["baseline"]["wrong_rate"] == 0.0 and doc["baseline"]["saving"] == 0.0
    assert doc["exact_cache"]["cost_usd"] <= doc["baseline"]["cost_usd"]
    assert saved.exists()
    # the saved trace replays to the same workload
    replay = [*cmd[:3], "--load-trace", str(saved), "--configs", "baseline"]
    again = subprocess.run(replay, env=env, capture_output=True, text=True, timeout=600, check=True)
    assert json.loads(again.stdout)["workload"]["requests"] == doc["workload"]["requests"]


class OracleConfiguration:
    """The oracle as a configuration: each question once, by the cheapest model that knows it, with only
    the paragraph that holds its answer; a question asked again is answered from what came back."""

    name, note = "oracle", ""

    def __init__(self, workload: Workload) -> None:
        self.workload = workload

    def open(self, fake: WorkloadProvider, clock: TraceClock) -> None:
        self.client, self.answers = FakeOpenAI(fake), {}

    def ask(self, request: Request, messages: list[dict]) -> str | None:
        q = self.workload.question(request)
        if q.qid not in self.answers:
            kept = [m for m in messages if m.get("name") != "context" or m["content"] == q.context[q.gold]]
            model = WEAK if q.weak_correct else STRONG
            reply = self.client.chat.completions.create(model=model, messages=kept, temperature=0)
            self.answers[q.qid] = reply.choices[0].message.content
        return self.answers[q.qid]

    def offline(self, requests: object, messages: object) -> None:
        return None

    def records(self) -> list:
        return []

    def inside_s(self) -> None:
        return None

    def close(self) -> None:
        pass


def interactive_only() -> Workload:
    """The hand trace with its offline request asking again what was asked interactively (the oracle
    above has no batch lane, so it must not owe batch prices)."""
    w = hand_workload()
    last = attrs.evolve(w.requests[5], qid=w.requests[2].qid)
    return attrs.evolve(w, requests=(*w.requests[:5], last))


def test_the_baseline_saves_nothing_and_the_oracle_costs_one_oracle() -> None:
    w = interactive_only()
    oracle = oracle_usd(w)
    base_run = replay(w, CostkitConfiguration("baseline", lambda clock: []))
    base = score(w, base_run, None, oracle)
    again = score(w, base_run, base["cost_usd"], oracle)
    assert again["saving"] == 0.0 and again["wrong_rate"] == 0.0
    assert base["provider_calls"] == 6 and base["oracle_ratio"] > 1.0
    by_oracle = replay(w, OracleConfiguration(w))
    figures = score(w, by_oracle, base["cost_usd"], oracle)
    assert figures["provider_calls"] == 3  # three distinct questions
    assert figures["oracle_ratio"] == pytest.approx(1.0, abs=2e-3)
    assert billed_usd(by_oracle)[0] == pytest.approx(oracle, rel=1e-12)  # the figures are rounded
    assert figures["wrong_rate"] == 0.0 and figures["wrong_rate_abs"] == 0.0
    assert figures["saving"] == pytest.approx(1 - oracle / base["cost_usd"], abs=2e-3)


def test_a_planted_wrong_cache_hit_counts_as_a_wrong_answer() -> None:
    """A cache that answers every question of a partition from its first entry (threshold -1): the
    paraphrase and the repeat of question a are right, question b and the nightly d get a's answer."""
    w = hand_workload()
    run = replay(w, CostkitConfiguration("planted", lambda clock: [FixedThresholdCache(-1.0)]))
    got = [answer_id(o.text) for o in run.outcomes]
    a = "ANSWER-t00:faq:0:0"
    assert got == [a, a, a, "ANSWER-t00:docs:0:0", a, a]
    assert len(run.calls) == 2  # a and the docs question (another partition: its retrieved paragraphs)
    figures = score(w, run, None, oracle_usd(w))
    assert figures["wrong_rate"] == pytest.approx(2 / 6, abs=1e-5)  # b and d: neither is what gpt-4o would have said
    assert figures["answered_by_cache"] == {"semantic": 4}
    assert figures["by_feature"]["faq"]["wrong_rate"] == pytest.approx(1 / 4, abs=1e-5)  # of 4 faq requests
    assert figures["by_feature"]["nightly"]["wrong_rate"] == 1.0
