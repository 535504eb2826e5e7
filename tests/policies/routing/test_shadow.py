"""Shadow mode end to end: records keep the requested model and say what the route would have cost."""

from __future__ import annotations

import pytest

import costkit
from costkit import Router, Usage, pricing
from costkit.policies.routing.shadow import shadow_cost, shadow_summary
from costkit.sinks import MemorySink
from costkit.testing import FakeOpenAI, FakeProvider


def test_shadow_records_price_the_route_not_taken() -> None:
    sink = MemorySink()
    router = Router.heuristic(["gpt-4o-mini", "gpt-4o"], shadow=True)
    client = costkit.wrap(FakeOpenAI(FakeProvider(default="Paris is the capital.")), sink=sink, policies=[router])
    client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Capital of France?"}])
    hard_text = "x = 2 * 3; y = x ** 2\n" * 400 + "Prove, step by step, and compare approaches."
    client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": hard_text}])
    assert [c.model for c in client.fake.calls] == ["gpt-4o", "gpt-4o"]
    easy, hard = sink.records
    assert easy.model == "gpt-4o" and easy.notes["shadow_model"] == "gpt-4o-mini" and easy.savings == {}
    assert hard.notes["shadow_model"] == "gpt-4o"
    usage = Usage(input_tokens=easy.input_tokens, output_tokens=easy.output_tokens)
    assert shadow_cost(easy) == pytest.approx(pricing.cost("gpt-4o-mini", usage))
    summary = shadow_summary(sink.records)
    assert summary.records == 2 and summary.rerouted == 1
    assert summary.actual_usd == pytest.approx((easy.cost_usd or 0) + (hard.cost_usd or 0))
    assert summary.saving_usd == pytest.approx((easy.cost_usd or 0) - pricing.cost("gpt-4o-mini", usage))
    assert 0 < summary.saving_ratio < 1


def test_records_without_a_shadow_decision_are_skipped() -> None:
    sink = MemorySink()
    client = costkit.wrap(FakeOpenAI(FakeProvider(default="ok")), sink=sink, policies=[])
    client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert shadow_cost(sink.records[0]) is None
    assert shadow_summary(sink.records).records == 0 and shadow_summary([]).saving_ratio == 0.0
