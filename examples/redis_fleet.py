"""Several processes, one Redis: a shared cache, fleet-wide dedup and one budget for all of them.

    python examples/redis_fleet.py

Starts its own ``redis-server`` on a free local port (it must be on PATH: ``apt-get install
redis-server`` or ``brew install redis``; without it the example says so and exits), then 4 worker
processes, each with its own wrapped client and fake provider (a stand-in for 4 app servers):

* ``costkit.Dedup(redis=url)``: the 4 workers ask the same question at the same moment; one provider
  call is made fleet-wide, the others wait for it through Redis;
* ``costkit.ExactCache(store=RedisStore(url))``: the answer, stored once, answers any worker later;
* ``costkit.Budget(..., backend=RedisBudgetBackend(url))``: the trial tenant's daily budget is one
  counter for the whole fleet (atomic Lua reservations), so together the workers never overspend.

Each worker writes its records to a JSONL file; the parent reads them all back.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import costkit
from costkit.backends import RedisBudgetBackend, RedisStore
from costkit.report import load_records
from costkit.sinks import JSONLSink
from costkit.testing import FakeOpenAI, FakeProvider

WORKERS = 4
TRIAL = costkit.BudgetLimit(usd=0.003, window="day", tenant="trial", name="trial-plan")


def worker(n: int, url: str, start: multiprocessing.synchronize.Barrier, out: str) -> None:
    fake = FakeProvider(latency_s=0.5, default="Here is a careful answer. " * 8)  # ~40 output tokens
    fake.on(r"opening hours", "We are open 9-17, Monday to Friday.")
    budget = costkit.Budget(limits=[TRIAL], backend=RedisBudgetBackend(url))
    sink = JSONLSink(out)
    raw = FakeOpenAI(fake)
    client = costkit.wrap(
        raw,
        policies=[  # Dedup keeps a finished answer 1 s (for a client's retry); the cache keeps it longer
            costkit.Dedup(redis=url, ttl_s=1.0),
            costkit.ExactCache(store=RedisStore(url)),
            budget,
        ],
        sink=sink,
    )

    def ask(tenant: str, question: str) -> None:
        with costkit.tags(tenant=tenant, feature="support_answer"):
            client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": question}],
                                           max_tokens=60, temperature=0)

    raw.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "warm-up"}])  # not wrapped
    costkit.tokens.count_text("warm-up", "gpt-4o")  # load the SDK and the tokenizer before the race ...
    fake.reset()
    start.wait()  # ... so that every worker asks at the same moment
    ask("acme", "What are your opening hours?")
    time.sleep(1.5)  # past the Dedup ttl_s
    if n == 0:
        ask("acme", "What are your opening hours?")  # asked again later: the shared exact cache answers
    refused = 0
    for i in range(6):
        try:
            ask("trial", f"Worker {n}, question {i}: how do I export my data?")
        except costkit.BudgetExceeded:
            refused += 1
    sink.close()
    print(f"worker {n} (pid {os.getpid()}): provider calls {fake.count()}, trial calls refused {refused}")


def run_fleet(url: str, tmp: str) -> None:
    ctx = multiprocessing.get_context("spawn")  # fresh interpreters, like separate app servers
    start = ctx.Barrier(WORKERS)
    outs = [str(Path(tmp) / f"worker{n}.jsonl") for n in range(WORKERS)]
    procs = [ctx.Process(target=worker, args=(n, url, start, outs[n])) for n in range(WORKERS)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    if any(p.exitcode != 0 for p in procs):
        sys.exit(f"a worker failed: exit codes {[p.exitcode for p in procs]}")
    records = [r for out in outs for r in load_records(out)]

    faq = [r for r in records if r.tenant == "acme"]
    print(f"\nsame question, {len(faq)} asks from {WORKERS} processes: "
          + ", ".join(f"{sum(r.cache == c for r in faq)} {c}" for c in ("none", "dedup", "exact"))
          + f" (cache 'none' = a provider call); saved ${sum(r.saved_usd for r in faq):.6f}")
    trial = [r for r in records if r.tenant == "trial"]
    spent = costkit.Budget(limits=[TRIAL], backend=RedisBudgetBackend(url)).spent(TRIAL, costkit.Tags(tenant="trial"))
    print(f"trial tenant: {len(trial)} calls answered across the fleet, ${sum(r.cost_usd for r in trial):.6f} "
          f"recorded, ${spent:.6f} settled in Redis, limit ${TRIAL.usd}")


def main() -> None:
    server = shutil.which("redis-server")
    if server is None:
        sys.exit("redis-server is not on PATH: install it (apt-get install redis-server, brew install redis) "
                 "and run this again; the example starts its own server on a free port.")
    with socket.socket() as s:  # a free port
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        redis_proc = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--dir", tmp,
                                       "--appendonly", "yes"], stdout=subprocess.DEVNULL)  # budgets must persist
        try:
            for _ in range(100):  # wait until it accepts connections
                with socket.socket() as s:
                    if s.connect_ex(("127.0.0.1", port)) == 0:
                        break
                time.sleep(0.05)
            print(f"redis-server on port {port}")
            run_fleet(f"redis://127.0.0.1:{port}/0", tmp)
        finally:
            redis_proc.terminate()
            redis_proc.wait(10)


if __name__ == "__main__":
    main()
