"""Replay a workload through one configuration: every request in arrival order, groups concurrently.

Interactive requests run one after another; a request with followers (identical requests that
arrive while it is in flight, and client retries) runs together with them, each in its own thread,
the provider holding the first answer back until the others are past the layers before it
(benchmarks/workload_fake.py). The offline share runs last, as one batch job when the
configuration has a batch lane, else interactively. What comes back is what the application
received per request, the provider's call log (what it billed) and costkit's records.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import attrs
from workload_configs import Configuration, TraceClock
from workload_fake import Hold, WorkloadProvider, norm
from workload_trace import Request, Workload

NIGHTLY_AFTER_S = 3600.0  # the offline job runs an hour after the trace ends
GRACE_S = 0.03  # how long a group's other members get to pass the layers before the provider's answer


@attrs.frozen
class Outcome:
    """What the application got for one request."""

    index: int
    text: str | None
    error: str | None
    seconds: float | None  # wall time of the call (None: answered in a batch job)
    inside_s: float | None = None  # of which inside costkit's interceptor (None: not costkit, or batch)
    concurrent: bool = False


@attrs.frozen
class Run:
    name: str
    note: str
    outcomes: tuple[Outcome, ...]
    calls: tuple[Any, ...]  # the provider's log: costkit.testing.FakeCall
    batch_from: int | None  # calls from this index on were batch items (None: no batch lane)
    records: tuple[Any, ...]  # costkit's CostRecords (empty for LiteLLM)
    wall_s: float


def replay(workload: Workload, config: Configuration, *, seed: int = 0) -> Run:
    fake = WorkloadProvider(workload, fault_rate=workload.spec.fault_rate, seed=seed)
    clock = TraceClock()
    config.open(fake, clock)
    t0 = time.perf_counter()
    outcomes: dict[int, Outcome] = {}
    followers: dict[int, list[Request]] = {}
    for r in workload.requests:
        if r.leader is not None:
            followers.setdefault(r.leader, []).append(r)
    try:
        for r in workload.requests:
            if r.lane != "interactive" or r.leader is not None:
                continue
            clock.now_s = r.t_s
            group = followers.get(r.index)
            if group:
                _run_group(workload, config, fake, [r, *group], outcomes)
            else:
                outcomes[r.index] = _ask(workload, config, r)
        offline = [r for r in workload.requests if r.lane == "offline"]
        clock.now_s = max((r.t_s for r in workload.requests), default=0.0) + NIGHTLY_AFTER_S
        batch_from = len(fake.calls)
        answers = config.offline(offline, [workload.messages(r) for r in offline]) if offline else None
        if answers is None:
            batch_from = None
            for r in offline:
                outcomes[r.index] = _ask(workload, config, r)
        else:
            for r, text in zip(offline, answers, strict=True):
                outcomes[r.index] = Outcome(r.index, text, None if text is not None else "ItemError", None)
        wall = time.perf_counter() - t0
        records = tuple(config.records())
    finally:
        config.close()
    ordered = tuple(outcomes[r.index] for r in workload.requests)
    return Run(config.name, config.note, ordered, tuple(fake.calls), batch_from, records, wall)


def _ask(workload: Workload, config: Configuration, r: Request, concurrent: bool = False) -> Outcome:
    messages = workload.messages(r)
    t0 = time.perf_counter()
    config.inside_s()  # start this thread's count afresh
    try:
        text = config.ask(r, messages)
        error = None
    except Exception as exc:  # the application sees the SDK's error: a failed request
        text, error = None, type(exc).__name__
    seconds = time.perf_counter() - t0
    return Outcome(r.index, text, error, seconds, config.inside_s(), concurrent)


def _run_group(
    workload: Workload, config: Configuration, fake: WorkloadProvider, members: list[Request], out: dict[int, Outcome]
) -> None:
    q = workload.question(members[0])
    hold = Hold((q.system_id, norm(workload.text(members[0]))), len(members), GRACE_S)
    fake.hold = hold

    def run(r: Request) -> None:
        hold.start()
        out[r.index] = _ask(workload, config, r, concurrent=True)

    threads = [threading.Thread(target=run, args=(r,)) for r in members]
    try:
        for t in threads:
            t.start()
            time.sleep(0.001)  # arrival order: the leader first
        for t in threads:
            t.join()
    finally:
        fake.hold = None
