"""costkit in one screen, offline: a real openai client answered by costkit's fake provider.

    python examples/quickstart.py

Swap ``FakeOpenAI(fake)`` for ``openai.OpenAI()`` and the same code runs against the real API.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import costkit
from costkit.report.aggregate import aggregate
from costkit.sinks import SQLiteSink
from costkit.testing import FakeOpenAI, FakeProvider


def main() -> None:
    # The fake provider: scripted answers, usage counted with the real tokenizer.
    fake = FakeProvider(default="I can help with that.")
    fake.on(r"refund", "Refunds are processed within 5 business days.")
    fake.on(r"classify", '{"label": "billing"}')

    db = Path(tempfile.mkdtemp()) / "costs.db"
    sink = SQLiteSink(str(db))
    client = costkit.wrap(
        FakeOpenAI(fake),
        policies=[
            costkit.Guardrails(max_output_tokens=400, max_cost_usd=0.05),
            costkit.ExactCache(store="memory"),
            costkit.Router.tiers({"classify": "gpt-4o-mini"}),
            costkit.RetryBudget(max_attempts=3, budget_ratio=0.2),
        ],
        sink=sink,
    )

    question = [{"role": "user", "content": "How long does a refund take?"}]
    with costkit.tags(tenant="acme", feature="support_answer", prompt_version="support_v14"):
        for _ in range(3):  # the same FAQ three times: one provider call, two cache hits
            reply = client.chat.completions.create(model="gpt-4o", messages=question, temperature=0)
        print("answer:", reply.choices[0].message.content)

        stream = client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "Tell me about your plans"}], stream=True
        )
        print("streamed:", "".join(chunk.choices[0].delta.content or "" for chunk in stream))

    # Classification does not need a frontier model: the router sends route "classify" to gpt-4o-mini.
    with costkit.tags(tenant="acme", feature="ticket_triage", route="classify"):
        for ticket in ("I was charged twice", "My invoice is wrong", "Card declined"):
            client.chat.completions.create(
                model="gpt-4o", messages=[{"role": "user", "content": f"classify: {ticket}"}], temperature=0
            )

    fake.fail_next(1, status=429, retry_after=0.01)  # one rate limit: RetryBudget retries it
    with costkit.tags(tenant="globex", feature="support_answer"):
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hello"}])

    sink.flush()
    records = sink.records()
    print(f"\nprovider calls made: {fake.count()}   cost records: {len(records)}")
    print(f"{'kind':<10} {'feature':<15} {'model':<12} {'in':>4} {'out':>4} {'cost $':>10} {'saved $':>10}  cache")
    for r in records:
        print(f"{r.kind:<10} {r.feature or '-':<15} {r.model:<12} {r.input_tokens:>4} {r.output_tokens:>4} "
              f"{r.cost_usd or 0:>10.6f} {r.saved_usd:>10.6f}  {r.cache}")

    print("\nwhich feature spent the money:")
    report = aggregate(records, by=["feature"])
    for group in report.groups:
        print(f"  {group.key[0]:<15} requests={group.requests:<3} cost=${group.cost_usd:.6f} "
              f"saved=${group.saved_usd:.6f} ({group.share:.0%} of spend)")
    print(f"  {'total':<15} requests={report.total.requests:<3} cost=${report.total.cost_usd:.6f} "
          f"saved=${report.total.saved_usd:.6f}")
    print(f"\nrecords are in {db}; try: costkit report {db} --by feature --by model")
    sink.close()


if __name__ == "__main__":
    main()
