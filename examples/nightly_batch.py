"""A nightly job through the provider's Batch API: the same calls at half the price, resumable.

    python examples/nightly_batch.py

By day a support app triages tickets one by one (interactive prices, answers cached). At night
``costkit.batch.run`` sends the day's backlog as one OpenAI batch job, with the wrapped client's
policies applied per item: the exact cache answers tickets already triaged (never submitted), the
guardrail caps every item's output. Each item leaves a ``kind="batch"`` record at batch prices
with what it would have cost interactively. The job's state file (SQLite, here in a temporary
directory) makes it resumable: running the same job again, as after a crash, submits nothing
twice. Here the real ``openai`` SDK talks HTTP to costkit's fake server (``costkit.testing.serve``).
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from pathlib import Path

import openai

import costkit
from costkit.report import aggregate
from costkit.sinks import SQLiteSink
from costkit.testing import serve

TICKETS = [f"Ticket {n}: " + ("I was charged twice" if n % 3 == 0 else "the app crashes on start") for n in range(60)]


def triage(ticket: str) -> dict:
    """One ticket's request: the keyword arguments of chat.completions.create."""
    return {"model": "gpt-4o-mini", "temperature": 0,
            "messages": [{"role": "system", "content": "Label the ticket: billing, bug or other. Answer JSON."},
                         {"role": "user", "content": ticket}]}


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, serve() as server:
        server.fake.on(r"charged", '{"label": "billing"}')
        server.fake.on(r"crash", '{"label": "bug"}')
        sink = SQLiteSink(str(Path(tmp) / "costs.db"))
        client = costkit.wrap(
            openai.OpenAI(base_url=server.base_url, api_key="not-needed-for-the-fake"),
            policies=[costkit.Guardrails(max_output_tokens=20), costkit.ExactCache(store=str(Path(tmp) / "cache"))],
            sink=sink,
        )
        with costkit.tags(feature="ticket_triage"):  # by day, as tickets arrive
            for ticket in TICKETS[:5]:
                client.chat.completions.create(**triage(ticket))

        state = str(Path(tmp) / "jobs.db")  # keep it somewhere durable in production
        backoff = costkit.batch.Backoff(initial_s=0.05, max_s=0.2)  # the fake is fast; the default polls minutes apart
        nightly = [triage(t) for t in TICKETS]
        answers = costkit.batch.run(client, "chat.completions.create", nightly, state=state,
                                    progress=False, backoff=backoff, tags={"feature": "nightly_triage"})
        labels = Counter(json.loads(a.choices[0].message.content)["label"] for a in answers)
        print(f"nightly job: {len(answers)} answers, labels {dict(labels)}")
        sent = server.fake.batch_api.submitted()
        print(f"items submitted to the Batch API: {sum(sent.values())} (5 answered by the exact cache), "
              f"submitted twice: {sum(1 for n in sent.values() if n > 1)}")

        again = costkit.batch.run(client, "chat.completions.create", nightly, state=state,
                                  progress=False, backoff=backoff, tags={"feature": "nightly_triage"})
        print(f"the same job run again (a restart): {len(again)} answers, "
              f"items submitted now {sum(server.fake.batch_api.submitted().values())}")

        sink.flush()
        records = sink.records()
        batch = [r for r in records if r.kind == "batch"]
        interactive_usd = sum(r.notes["interactive_cost_usd"] for r in batch)
        batch_usd = sum(r.cost_usd or 0 for r in batch)
        print(f"\ncost records: {len(records)}")
        for group in aggregate(records, by=["feature", "kind"]).groups:
            print(f"  {group.key[0]:<15} {group.key[1]:<10} requests={group.requests:<3} "
                  f"cost=${group.cost_usd:.7f} saved=${group.saved_usd:.7f}")
        print(f"\n{len(batch)} batch items: interactive ${interactive_usd:.7f} -> batch ${batch_usd:.7f} "
              f"(ratio {batch_usd / interactive_usd:.2f}); savings['batch'] "
              f"${sum(r.savings.get('batch', 0) for r in batch):.7f}")
        sink.close()


if __name__ == "__main__":
    main()
