"""The application under test: a support bot that answers through a costkit-wrapped client.

It takes the client (and the sink) from outside, as an application should: production passes
``openai.OpenAI()`` and a ``SQLiteSink``, the tests pass costkit's fakes (see test_app.py).
"""

from __future__ import annotations

from typing import Any

import costkit

SYSTEM = "You are Acme's support assistant. Answer in two sentences at most."


class SupportBot:
    def __init__(self, client: Any, *, sink: Any = None, model: str = "gpt-4o-mini") -> None:
        self.model = model
        self.llm = costkit.wrap(
            client,
            policies=[
                costkit.Guardrails(max_output_tokens=200),
                costkit.ExactCache(store="memory"),
                costkit.RetryBudget(max_attempts=3, budget_ratio=0.5, backoff_base_s=0.01),
            ],
            sink=sink,
        )

    def answer(self, question: str, *, tenant: str) -> str:
        with costkit.tags(tenant=tenant, feature="support_answer"):
            reply = self.llm.chat.completions.create(
                model=self.model,
                messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}],
                temperature=0,
            )
        return reply.choices[0].message.content or ""
