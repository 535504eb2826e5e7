"""What guardrails, budgets and @budgeted cost per call, and what reserving buys over check-then-record.

    python benchmarks/bench_budget.py [--n 5000] [--repeat 5] [--redis-url redis://...]

1. Overhead per call on the caller's thread (a policy around an instant terminal), against the
   bare pipeline in the same run: medians over ``--repeat`` runs, in microseconds and as ratios.
   The prompt is a 2-message chat (counted with costkit.tokens, priced with costkit.pricing).
   Redis rows run when a server is given or ``redis-server`` is on PATH (started for the run).
2. Overspend under concurrency: 64 threads, each call's cost random in [$0.001, $0.02], each
   provider call taking 0-2 ms, against a $1.00 daily budget. "check-then-record" refuses a call
   when spent >= limit and adds the cost after the call (what LiteLLM issues #34732/#40095
   describe); Budget reserves the worst case first. Printed: what was spent against the limit.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from _timing import median_us, redis_for_run

from costkit._budgeted import ScopeCheck, budgeted
from costkit._call import Call, Result, Usage
from costkit._pipeline import Pipeline
from costkit.errors import BudgetExceeded
from costkit.policies.budget import Budget, BudgetLimit
from costkit.policies.budget_backends import RedisBudgetBackend
from costkit.policies.guardrails import Guardrails, WorstCaseEstimator

MODEL = "gpt-4o-mini"
MESSAGES = (
    {"role": "system", "content": "You are a support assistant. Answer in two sentences."},
    {"role": "user", "content": "My invoice shows two charges for the same month. What should I do?"},
)


def make_call() -> Call:
    return Call(
        provider="openai", api="chat", requested_model=MODEL, model=MODEL, messages=MESSAGES, max_output_tokens=200
    )


def terminal(call: Call) -> Result:
    return Result(text="ok", usage=Usage(input_tokens=40, output_tokens=30), model=call.model, cost_usd=2.4e-5)


def per_call_us(run: Callable[[Call], Any], n: int, repeat: int, wrap: Callable[[Callable[[], None]], None]) -> float:
    def prepare() -> Callable[[], None]:
        calls = [make_call() for _ in range(n)]

        def loop() -> None:
            for c in calls:
                run(c)

        return lambda: wrap(loop)

    return median_us(prepare, n, repeat)


def plain(fn: Callable[[], None]) -> None:
    fn()


def overhead(n: int, repeat: int, redis_url: str | None) -> None:
    big = [BudgetLimit(usd=1e9), BudgetLimit(usd=1e9, tenant="*", name="per-tenant")]
    est = WorstCaseEstimator()
    est(make_call())  # load the tokenizer and the price map outside the timings
    rows: list[tuple[str, Callable[[Call], Any], Callable[[Callable[[], None]], None]]] = [
        ("bare pipeline", Pipeline([], terminal).run, plain),
        ("ScopeCheck, no scope active", Pipeline([ScopeCheck()], terminal).run, plain),
        (
            "ScopeCheck, inside @budgeted",
            Pipeline([ScopeCheck()], terminal).run,
            lambda fn: budgeted(max_usd_per_call=1e9, max_usd_per_day=1e9)(fn)(),
        ),
        ("Guardrails(max_output_tokens)", Pipeline([Guardrails(max_output_tokens=100)], terminal).run, plain),
        ("Guardrails(max_cost_usd) (count+price)", Pipeline([Guardrails(max_cost_usd=1.0)], terminal).run, plain),
        ("Budget in-process, 2 limits", Pipeline([Budget(big)], terminal).run, plain),
    ]
    if redis_url:
        backend = RedisBudgetBackend(redis_url, prefix="bench")
        pinged = backend.client

        def two_pings(call: Call) -> Result:  # the floor: the two round trips reserve + settle make
            pinged.ping()
            pinged.ping()
            return terminal(call)

        rows.append(("two Redis PINGs (round-trip floor)", Pipeline([], two_pings).run, plain))
        rows.append(("Budget Redis, 2 limits", Pipeline([Budget(big, backend=backend)], terminal).run, plain))
    results = [(name, per_call_us(run, n if "Redis" not in name else n // 5, repeat, wrap)) for name, run, wrap in rows]
    base = results[0][1]
    print(f"\n1. overhead per call (median of {repeat} runs, {n} calls each; Redis rows {n // 5})")
    print(f"   {'chain':42s} {'us/call':>9s} {'+us':>9s} {'ratio':>7s}")
    for name, us in results:
        print(f"   {name:42s} {us:9.2f} {us - base:9.2f} {us / base:7.2f}")


def overspend(redis_url: str | None) -> None:
    limit_usd, threads, calls = 1.0, 64, 40

    def hammer(call_one: Callable[[float, float], bool]) -> tuple[float, int]:
        spent_box = [0.0]
        lock = threading.Lock()

        def worker(seed: int) -> None:
            rnd = random.Random(seed)
            for _ in range(calls):
                worst = rnd.uniform(0.001, 0.02)
                actual = worst * rnd.random()
                if call_one(worst, actual):
                    with lock:
                        spent_box[0] += actual

        ts = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        return spent_box[0], 0

    # check-then-record
    state = {"spent": 0.0}
    state_lock = threading.Lock()

    def naive(worst: float, actual: float) -> bool:
        with state_lock:
            if state["spent"] >= limit_usd:
                return False
        time.sleep(random.random() * 0.002)  # the provider call
        with state_lock:
            state["spent"] += actual
        return True

    naive_spent, _ = hammer(naive)

    class Est(WorstCaseEstimator):
        def __call__(self, call: Call) -> Any:
            from costkit.policies.guardrails import WorstCase

            return WorstCase(
                model=call.model, input_tokens=0, max_output_tokens=0, output_cap_from="call", usd=call.params["worst"]
            )

    def reserving(backend: Any) -> Callable[[float, float], bool]:
        b = Budget([BudgetLimit(usd=limit_usd)], backend=backend, estimator=Est())

        def term(call: Call) -> Result:
            time.sleep(random.random() * 0.002)
            return Result(text="x", cost_usd=call.params["actual"])

        run = Pipeline([b], term).run

        def one(worst: float, actual: float) -> bool:
            try:
                run(make_call().evolve(params={"worst": worst, "actual": actual}))
                return True
            except BudgetExceeded:
                return False

        return one

    rows = [("check-then-record", naive_spent), ("Budget, in-process", hammer(reserving(None))[0])]
    if redis_url:
        rows.append(("Budget, Redis", hammer(reserving(RedisBudgetBackend(redis_url, prefix="over")))[0]))
    print(f"\n2. {threads} threads x {calls} calls, random cost $0.001-$0.02, against a ${limit_usd:.2f} budget")
    for name, spent in rows:
        print(f"   {name:22s} spent ${spent:.4f}  ({spent / limit_usd:.1%} of the limit)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--redis-url")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    with redis_for_run(args.redis_url) as url:
        overhead(args.n, args.repeat, url)
        overspend(url)


if __name__ == "__main__":
    main()
