"""What retry budget, circuit breaker and dedup cost per call, and what they save.

    python benchmarks/bench_resilience.py [--n 20000] [--repeat 5] [--redis-url redis://...]

1. Overhead per call on the caller's thread (a policy around an instant terminal), against the
   bare pipeline in the same run: medians over ``--repeat`` runs, in microseconds and as ratios.
   In-process state always; Redis state when a server is given or ``redis-server`` is on PATH
   (started on a free port for the run).
2. Outage amplification: provider requests per logical call at 100% server errors, for the
   SDK's own retries (openai, max_retries=2), a plain 3-attempt retry, and RetryBudget(3, 0.1).
3. 30% injected 429/500/timeouts: share of calls that succeed and provider requests per call,
   without retries and with RetryBudget(3, 0.1) and RetryBudget(3, 0.5).
4. 100 concurrent identical temperature-0 calls (threads, 0.2 s provider latency): provider
   calls and wall time without and with Dedup.

Everything runs offline against costkit.testing's fake provider or a scripted terminal.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import openai
from _timing import median_us, redis_for_run

import costkit
from costkit import Call, Result
from costkit._pipeline import Pipeline
from costkit.policies.circuit import CircuitBreaker
from costkit.policies.dedup import Dedup
from costkit.policies.retry import RetryBudget
from costkit.testing import Failure, FakeOpenAI, FakeProvider


def make_call(i: int, temperature: float | None = None) -> Call:
    params = {} if temperature is None else {"temperature": temperature}
    return Call(
        provider="openai",
        api="chat",
        requested_model="gpt-4o-mini",
        model="gpt-4o-mini",
        messages=({"role": "user", "content": f"question {i}"},),
        params=params,
    )


def instant(call: Call) -> Result:
    return Result(text="ok", model=call.model)


def per_call_us(policies: list[Any], calls: list[Call], repeat: int) -> float:
    pipe = Pipeline(policies, instant)

    def loop() -> None:
        for c in calls:
            pipe.run(c)

    return median_us(lambda: loop, len(calls), repeat)


def overhead(n: int, repeat: int, redis_url: str | None) -> None:
    print(f"\n1. overhead per call (median of {repeat} runs; {n} calls in-process, {n // 10} with Redis)")
    plain = [make_call(i) for i in range(n)]
    keyed = [make_call(i, temperature=0) for i in range(n)]
    base = per_call_us([], plain, repeat)
    rows: list[tuple[str, float]] = [("bare pipeline", base)]
    rows.append(("RetryBudget (memory)", per_call_us([RetryBudget()], plain, repeat)))
    rows.append(("CircuitBreaker (memory)", per_call_us([CircuitBreaker()], plain, repeat)))
    rows.append(("Dedup, no key (sampled call)", per_call_us([Dedup()], plain, repeat)))
    rows.append(("Dedup, keyed, leader (memory)", per_call_us([Dedup()], keyed, repeat)))
    rows.append(("Dedup, keyed, replay (memory)", per_call_us([Dedup()], [keyed[0]] * n, repeat)))
    if redis_url:
        import redis

        m = n // 10
        redis.Redis.from_url(redis_url).flushall()
        rows.append(("RetryBudget (Redis)", per_call_us([RetryBudget(redis=redis_url)], plain[:m], repeat)))
        rows.append(("CircuitBreaker (Redis)", per_call_us([CircuitBreaker(redis=redis_url)], plain[:m], repeat)))
        rows.append(("Dedup, keyed, leader (Redis)", per_call_us([Dedup(redis=redis_url, ttl_s=0)], keyed[:m], repeat)))
    for name, us in rows:
        print(f"   {name:34s} {us:8.1f} us/call   x{us / base:5.1f} bare   +{us - base:7.1f} us")


def outage() -> None:
    print("\n2. outage (100% HTTP 500): provider requests per logical call")
    n = 8
    fake = FakeProvider(failure_rate=1.0, failure_kinds=[Failure.server_error(500)])
    sdk = FakeOpenAI(fake, max_retries=2)

    def run(create: Callable[..., Any], count: int) -> float:
        fake.reset()

        def one(i: int) -> None:
            try:
                create(model="gpt-4o-mini", messages=[{"role": "user", "content": f"q{i}"}])
            except openai.APIError:
                pass

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(one, range(count)))
        return len(fake.calls) / count

    sdk_ratio = run(sdk.chat.completions.create, n)  # the SDK sleeps between its own retries
    plain = costkit.wrap(
        FakeOpenAI(fake), policies=[RetryBudget(3, budget_ratio=1e9, backoff_base_s=0)], sink=None
    ).chat.completions.create
    budget = costkit.wrap(
        FakeOpenAI(fake),
        policies=[RetryBudget(3, budget_ratio=0.1, min_retries_per_s=1.0, backoff_base_s=0)],
        sink=None,
    ).chat.completions.create
    print(f"   openai SDK default (max_retries=2), {n} calls     {sdk_ratio:5.2f}")
    print(f"   3 attempts, no budget, 1000 calls              {run(plain, 1000):5.2f}")
    print(f"   RetryBudget(3, 0.1), reserve 1/s x 10 s, 1000   {run(budget, 1000):5.2f}")


def thirty_percent() -> None:
    print("\n3. 30% injected failures (429 / 500 / read timeout), 1000 calls, 8 threads")
    kinds = [Failure.rate_limit(retry_after=0.0), Failure.server_error(500), Failure.timeout(delay_s=5.0)]
    for label, policies in (
        ("no retries", []),
        ("RetryBudget(3, 0.1)", [RetryBudget(3, budget_ratio=0.1, backoff_base_s=0)]),
        ("RetryBudget(3, 0.5)", [RetryBudget(3, budget_ratio=0.5, backoff_base_s=0)]),
    ):
        fake = FakeProvider(failure_rate=0.3, failure_kinds=kinds, seed=9)
        create = costkit.wrap(FakeOpenAI(fake, timeout=0.02), policies=policies, sink=None).chat.completions.create
        ok = 0
        lock = threading.Lock()

        def one(i: int, create: Callable[..., Any] = create) -> None:
            nonlocal ok
            try:
                create(model="gpt-4o-mini", messages=[{"role": "user", "content": f"q{i}"}])
                with lock:
                    ok += 1
            except openai.APIError:
                pass

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(one, range(1000)))
        print(f"   {label:22s} success {ok / 10:5.1f}%   requests/call {len(fake.calls) / 1000:5.3f}")


def concurrent_identical() -> None:
    print("\n4. 100 concurrent identical temperature-0 calls (threads, provider latency 0.2 s)")
    for label, policies in (("no dedup", []), ("Dedup()", [Dedup()])):
        fake = FakeProvider(latency_s=0.2)
        create = costkit.wrap(FakeOpenAI(fake), policies=policies, sink=None).chat.completions.create
        barrier = threading.Barrier(100)

        def one(_: int, create: Callable[..., Any] = create, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            create(model="gpt-4o-mini", messages=[{"role": "user", "content": "What is 2+2?"}], temperature=0)

        t0 = time.perf_counter()
        with ThreadPoolExecutor(100) as pool:
            list(pool.map(one, range(100)))
        wall = time.perf_counter() - t0
        print(f"   {label:10s} provider calls {len(fake.calls):4d}   wall {wall:5.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--redis-url", default=None)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    with redis_for_run(args.redis_url) as url:
        print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, Redis: {url or 'none'}")
        overhead(args.n, args.repeat, url)
        outage()
        thirty_percent()
        concurrent_identical()


if __name__ == "__main__":
    main()
