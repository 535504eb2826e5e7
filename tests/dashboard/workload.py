"""A ledger written by the fake provider at a simulated clock: 9 days of a small product.

* 2026-11-02 .. 2026-11-10 UTC, 08:00-19:00 each day; tenants acme, globex, initech;
  features support (an experiment on its prompt, by task), search (routed to gpt-4o-mini by the
  ``simple`` route: router savings) and summary; repeated questions hit the exact cache.
* Every support call is one task; its outcome is settled by ``settle_tasks`` with a rule that
  makes arm v2 succeed more often than control.
* On the last day: globex's summary costs ~12x its usual at 14:00 (a cost anomaly) and initech
  loops at 16:00 (60 search calls within a minute: a burst).
* The semantic cache's sampled verification (``notes["cache_verified"]``, written by the semantic
  cache's verifier, which lands separately) is stood in for by records emitted as that cache
  writes them: 6 semantic hits an hour on support, 2 of them verified right; a refuted one every
  third day; at 12:00 on the last day, 10 refuted of 12 sampled (a false-hit alert).

``write(sink)`` returns what the tests need to know (the clock's last time).
"""

from __future__ import annotations

import hashlib
from typing import Any

import costkit
from costkit.records import CostRecord
from costkit.testing import FakeOpenAI, FakeProvider, SimClock
from costkit.testing.outcomes import settle_tasks

START = "2026-11-02T00:00:00Z"
DAYS = 9
QUESTIONS = [f"How do I {verb} my {thing}?" for verb in ("reset", "export", "delete") for thing in ("password", "data")]


def _h(text: str) -> int:
    return int(hashlib.blake2b(text.encode(), digest_size=4).hexdigest(), 16)


def write(sink: Any) -> dict[str, Any]:
    exp = costkit.Experiment(
        "support-prompt",
        arms={"control": {}, "v2": costkit.Arm(tags={"prompt_version": "support_v2"})},
        by="task",
    )
    provider = FakeProvider()
    provider.on(r"^Summarize", "In short: " + "the document says this and that. " * 40)
    provider.on(r"^retry step", "Trying again with a longer plan. " * 30)
    provider.on(r"^How do I", "Here is how, step by step. " * 25)
    client = costkit.wrap(
        FakeOpenAI(provider),
        policies=[
            exp,
            costkit.ExactCache(store="memory"),
            costkit.Router.tiers({"simple": "gpt-4o-mini"}, by="route"),
        ],
        sink=sink,
    )
    n = 0
    with SimClock(START) as clock:
        for day in range(DAYS):
            for hour in range(8, 20):
                clock.set(clock.now() - clock.now() % 86400 + hour * 3600)
                for i, (tenant, feature) in enumerate(
                    [
                        ("acme", "support"),
                        ("globex", "support"),
                        ("acme", "search"),
                        ("initech", "search"),
                        ("globex", "summary"),
                    ]
                ):
                    clock.advance(60)
                    n += 1
                    q = f"{QUESTIONS[(day * 7 + hour * 3 + i) % len(QUESTIONS)]} (case {(day * 5 + hour) % 11})"
                    content = q if feature != "summary" else "Summarize: " + "lorem ipsum " * 40 + str(n)
                    if feature == "summary" and day == DAYS - 1 and hour == 14:
                        content = "Summarize: " + "lorem ipsum dolor " * 3000
                    tags = {"tenant": tenant, "feature": feature}
                    if feature == "support":
                        tags["task"] = f"t{n}"
                    if feature == "search":
                        tags["route"] = "simple"
                    with costkit.tags(**tags):
                        client.chat.completions.create(
                            model="gpt-4o", messages=[{"role": "user", "content": content}], temperature=0
                        )
                if day == DAYS - 1 and hour == 16:
                    for k in range(60):  # a loop
                        clock.advance(0.5)
                        with costkit.tags(tenant="initech", feature="search"):
                            client.chat.completions.create(
                                model="gpt-4o", messages=[{"role": "user", "content": f"retry step {k}"}], temperature=0
                            )
                _semantic(sink, clock.now(), day, hour)
            clock.set(clock.now() - clock.now() % 86400 + 86400)
        clock.set("2026-11-10T19:30:00Z")

        def success(task: str, records: list[Any]) -> bool:
            arm = records[0].arm
            return _h(task) % 100 < (85 if arm == "v2" else 65)

        settle_tasks(sink, success)
        end = clock.now()
    costkit.sinks.flush_sink(sink)
    return {"end": end, "requests": n + 60}


def _semantic(sink: Any, now: float, day: int, hour: int) -> None:
    """One hour of the semantic cache's records (see the module docstring)."""
    ok, wrong = (2, 10) if (day == DAYS - 1 and hour == 12) else (2, 1 if (day % 3 == 0 and hour == 11) else 0)
    base = dict(provider="openai", requested_model="gpt-4o", model="gpt-4o", tenant="acme", feature="support")
    for k in range(6):
        notes: dict[str, Any] = {"max_false_hit_rate": 0.02, "similarity": 0.97}
        if k < ok:
            notes["cache_verified"] = True
        sink.emit(
            CostRecord(
                request_id=f"sem-{day}-{hour}-{k}",
                attempt=0,
                kind="cache_hit",
                cache="semantic",
                timestamp=now + 10 + k,
                cost_usd=0.0,
                saved_usd=0.003,
                savings={"semantic": 0.003},
                notes=notes,
                **base,
            )
        )
    for k in range(wrong):  # a refuted sampled hit: the provider answered instead
        sink.emit(
            CostRecord(
                request_id=f"ref-{day}-{hour}-{k}",
                attempt=1,
                kind="call",
                timestamp=now + 20 + k,
                cost_usd=0.003,
                input_tokens=40,
                output_tokens=280,
                notes={"cache_verified": False},
                **base,
            )
        )
