"""Latency of an exact-cache hit through the wrapped OpenAI client, end to end, in one run.

    python benchmarks/cache_exact_hit.py [--rounds 3000]

``client.chat.completions.create(...)`` on ``costkit.wrap(FakeOpenAI(), policies=[ExactCache(store)],
sink=MemorySink())`` after one miss has filled the cache: every timed call is a hit, answered by the
cache with a real ``ChatCompletion`` and recorded as a ``cache_hit`` CostRecord. Variants are
interleaved call by call (machine noise hits all alike):

  baseline-miss   the same wrapped client with no cache: a call answered by the in-process fake
                  provider through the real openai SDK and its HTTP stack (what a hit replaces)
  memory / disk / redis   an exact hit from MemoryStore, DiskStore (diskcache, JSON), RedisStore
                  (a local redis-server started here, if installed)

Prints median and p99 microseconds per call and the ratio of each median to the baseline's.
Target: memory hit median <= 200 us.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import redis_for_run

import costkit
from costkit.policies.cache.stores import DiskStore, MemoryStore, RedisStore
from costkit.sinks import MemorySink
from costkit.testing import FakeOpenAI

MESSAGES = [
    {"role": "system", "content": "You answer customer questions about the Acme store briefly."},
    {"role": "user", "content": "What is your return policy for opened electronics bought online?"},
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3000)
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="costkit-exact-bench-")
    with redis_for_run(None) as redis_url:
        try:
            run(args.rounds, tmp, redis_url)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def run(rounds: int, tmp: str, redis_url: str | None) -> None:
    stores = {"memory": MemoryStore(), "disk": DiskStore(Path(tmp) / "disk")}
    if redis_url:
        stores["redis"] = RedisStore(redis_url)
    clients = {"baseline-miss": costkit.wrap(FakeOpenAI(), sink=MemorySink())}
    sinks = {}
    for name, store in stores.items():
        sinks[name] = MemorySink()
        clients[name] = costkit.wrap(FakeOpenAI(), policies=[costkit.ExactCache(store)], sink=sinks[name])
    for name, client in clients.items():  # fill each cache and warm every path
        for _ in range(20):
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, temperature=0)
    times: dict[str, list[float]] = {name: [] for name in clients}
    perf = time.perf_counter
    for _ in range(rounds):
        for name, client in clients.items():
            t0 = perf()
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, temperature=0)
            times[name].append((perf() - t0) * 1e6)
    for name, sink in sinks.items():
        hits = sum(1 for r in sink.records if r.cache == "exact")
        assert hits >= rounds, f"{name}: only {hits} exact hits recorded"
        saved = sink.records[-1].saved_usd
    base = statistics.median(times["baseline-miss"])
    print(f"exact-cache hit through costkit.wrap(openai.OpenAI) ({rounds} interleaved rounds)")
    print(f"{'variant':>14}  {'median us':>10}  {'p99 us':>10}  {'median / baseline':>18}")
    for name, ts in times.items():
        ts.sort()
        med = statistics.median(ts)
        p99 = ts[int(0.99 * (len(ts) - 1))]
        print(f"{name:>14}  {med:10.1f}  {p99:10.1f}  {med / base:18.3f}")
    print(f"last hit recorded cost_usd=0 and saved_usd={saved:.8f} (the original call's cost)")


if __name__ == "__main__":
    main()
