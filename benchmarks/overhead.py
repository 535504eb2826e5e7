"""What the wrapper costs per call, against one local fake HTTP server, in one run.

Variants (interleaved call by call in a shuffled order, so machine noise hits all of them alike):
  raw        the openai SDK, unwrapped
  wrapped    costkit.wrap(client) with no policies (records to a MemorySink)
  policies   costkit.wrap(client) with every non-embedding policy that exists (cache misses)
  litellm    litellm.completion against the same server
  state-mem  Guardrails + Dedup + Budget + CircuitBreaker + RetryBudget, state in this process
  state-redis  the same five with their state in a local redis-server (started for the run)

Prints median and p99 per call and the median of the per-round differences to the raw SDK
(the paired difference is what the wrapper adds; it is far less noisy than comparing two medians).

A second section isolates the wrapper's own work: the wrapped method around an SDK method that
returns a prebuilt ChatCompletion instantly (no HTTP, no SDK), so only costkit's code is timed:
adapter, chain, recorder, pricing and the MemorySink.

    python benchmarks/overhead.py [--rounds 2000]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import costkit
from costkit.sinks import MemorySink
from costkit.testing import FakeProvider, serve


@contextlib.contextmanager
def fake_server(in_process: bool):
    """The fake provider in its own process (the default: it does not compete with the client for
    the GIL) or in this one; yields its OpenAI base URL."""
    if in_process:
        with serve(FakeProvider(default="ok")) as srv:
            yield srv.base_url
        return
    proc = subprocess.Popen([sys.executable, "-m", "costkit.testing", "--port", "0", "--reply", "ok"],
                            stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()  # "OpenAI base_url:    http://127.0.0.1:PORT/v1"
        yield line.split()[-1]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def available_policies() -> list[object]:
    """Every policy that needs no embedder, configured as a user would (all pass the call through)."""
    policies: list[object] = []
    candidates: list[Callable[[], object]] = [
        lambda: costkit.Guardrails(max_input_tokens=100_000, max_output_tokens=800, max_cost_usd=1.0),
        lambda: costkit.Budget(limits=[costkit.BudgetLimit(usd=1_000_000.0, window="day", tenant="*")]),
        lambda: costkit.Dedup(),
        lambda: costkit.ExactCache(),
        lambda: costkit.ContextBudget(history=100_000),
        lambda: costkit.Router.tiers({"faq": "gpt-4o-mini"}),
        lambda: costkit.CircuitBreaker(),
        lambda: costkit.RetryBudget(max_attempts=3, budget_ratio=0.1),
    ]
    for make in candidates:
        try:
            policies.append(make())
        except Exception as exc:  # a policy that does not exist (yet) or needs other arguments
            print(f"  (skipped a policy: {type(exc).__name__}: {exc})", file=sys.stderr)
    return policies


def state_policies(redis_url: str | None) -> list[object]:
    """The five stateful policies, their state in process or in Redis."""
    from costkit.backends import RedisBudgetBackend

    limits = [costkit.BudgetLimit(usd=1_000_000.0, window="day", tenant="*")]
    return [
        costkit.Guardrails(max_output_tokens=800, max_cost_usd=1.0),
        costkit.Dedup(redis=redis_url) if redis_url else costkit.Dedup(),
        costkit.Budget(limits, backend=RedisBudgetBackend(redis_url) if redis_url else None),
        costkit.CircuitBreaker(redis=redis_url) if redis_url else costkit.CircuitBreaker(),
        costkit.RetryBudget(redis=redis_url) if redis_url else costkit.RetryBudget(),
    ]


def wrapper_only(rounds: int, policies: list[object]) -> dict[str, float]:
    """Median microseconds of the wrapper's own work per call, with and without policies."""
    from openai.types.chat import ChatCompletion

    from costkit._recorder import Recorder
    from costkit._wrap import _Engine
    from costkit.providers.openai import ChatAdapter

    done = ChatCompletion.model_validate({
        "id": "x", "object": "chat.completion", "created": 1, "model": "gpt-4o",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "ok"}}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12}})

    def instant_sdk(**kwargs: object) -> ChatCompletion:
        return done

    out = {}
    for name, chain in (("wrapped", []), ("policies", policies)):
        engine = _Engine(chain, Recorder(MemorySink(), costkit.pricing.default_pricebook()), "openai")
        create = engine.function(ChatAdapter(), instant_sdk, is_async=False)
        times = []
        for i in range(rounds + 500):
            msgs = [{"role": "user", "content": f"question {i}"}]
            t = time.perf_counter()
            create(model="gpt-4o", messages=msgs, max_tokens=16)
            if i >= 500:
                times.append(time.perf_counter() - t)
        out[name] = statistics.median(times) * 1e6
        out[name + "_p99"] = pct(times, 0.99) * 1e6
    return out


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=2000)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--in-process", action="store_true", help="run the fake server in this process")
    args = ap.parse_args()
    warnings.simplefilter("ignore")

    import litellm
    import openai
    from _timing import redis_for_run

    with fake_server(args.in_process) as base_url, redis_for_run(None) as redis_url:
        def client() -> openai.OpenAI:
            return openai.OpenAI(base_url=base_url, api_key="sk-fake", max_retries=0)

        raw = client()
        wrapped = costkit.wrap(client(), sink=MemorySink())
        policies = available_policies()
        with_policies = costkit.wrap(client(), policies=policies, sink=MemorySink())
        print(f"policies in the chain: {[type(p).__name__ for p in with_policies.costkit_policies]}")

        def openai_call(client: object, i: int) -> None:
            client.chat.completions.create(  # type: ignore[attr-defined]
                model="gpt-4o", messages=[{"role": "user", "content": f"question {i}"}], max_tokens=16)

        def litellm_call(i: int) -> None:
            litellm.completion(model="openai/gpt-4o", api_base=base_url, api_key="sk-fake",
                               messages=[{"role": "user", "content": f"question {i}"}], max_tokens=16)

        state_mem = costkit.wrap(client(), policies=state_policies(None), sink=MemorySink())
        variants: dict[str, Callable[[int], None]] = {
            "raw": lambda i: openai_call(raw, i),
            "wrapped": lambda i: openai_call(wrapped, i),
            "policies": lambda i: openai_call(with_policies, i),
            "state-mem": lambda i: openai_call(state_mem, i),
            "litellm": litellm_call,
        }
        if redis_url:
            state_redis = costkit.wrap(client(), policies=state_policies(redis_url), sink=MemorySink())
            variants["state-redis"] = lambda i: openai_call(state_redis, i)
        else:
            print("(no redis-server on PATH: the state-redis variant is skipped)")
        times: dict[str, list[float]] = {k: [] for k in variants}
        order = list(variants.items())
        rng = random.Random(0)
        n = 0
        for r in range(args.warmup + args.rounds):
            rng.shuffle(order)  # no variant always goes first (the first request of a round pays wake-ups)
            for name, fn in order:
                n += 1
                t = time.perf_counter()
                fn(n)
                dt = time.perf_counter() - t
                if r >= args.warmup:
                    times[name].append(dt)

    us = 1e6
    base = times["raw"]
    print(f"\n{args.rounds} rounds, one call of each variant per round, against one local HTTP server\n")
    print(f"{'variant':<12} {'median us':>10} {'p99 us':>10} {'x raw':>7} {'paired diff median us':>22}")
    for name, vals in times.items():
        diffs = [a - b for a, b in zip(vals, base)]
        print(f"{name:<12} {statistics.median(vals) * us:>10.1f} {pct(vals, 0.99) * us:>10.1f} "
              f"{statistics.median(vals) / statistics.median(base):>7.3f} {statistics.median(diffs) * us:>22.1f}")

    own = wrapper_only(max(args.rounds, 5000), available_policies())
    print("\ncostkit's own work per call (SDK method replaced by an instant return, no HTTP):")
    print(f"  no policies:   median {own['wrapped']:.1f} us, p99 {own['wrapped_p99']:.1f} us")
    print(f"  with policies: median {own['policies']:.1f} us, p99 {own['policies_p99']:.1f} us")


if __name__ == "__main__":
    main()
