"""Heuristic: a transparent complexity score cut into tiers."""

from __future__ import annotations

from typing import Any

import pytest

from costkit import Call, ConfigError, Result, Router, Usage
from costkit._pipeline import Pipeline
from costkit.policies.routing.heuristic import ComplexityScorer, default_thresholds


def send(router: Router, text: str) -> Call:
    seen: list[Call] = []

    def terminal(call: Call) -> Result:
        seen.append(call)
        return Result(text="x", model=call.model, usage=Usage(input_tokens=5, output_tokens=1))

    Pipeline([router], terminal).run(Call(provider="openai", api="chat", requested_model="gpt-4o", model="gpt-4o",
                                          messages=({"role": "user", "content": text},)))
    return seen[0]


SIMPLE = "What is the capital of France?"
COMPLEX = (
    "Debug this and explain why it fails, step by step, then compare two fixes and their trade-offs:\n"
    "```python\ndef f(x):\n    return x / 0\n```\n"
    "Traceback (most recent call last):\n  ZeroDivisionError\n"
    "1. What is the root cause?\n2. How would you refactor it?\n3. What is the complexity?\n"
) * 3


def test_signals_are_reported_and_bounded() -> None:
    scorer = ComplexityScorer()
    simple, hard = scorer(SIMPLE), scorer(COMPLEX)
    assert set(simple.signals) == {"length", "reasoning", "questions", "code", "math"}
    assert all(0.0 <= v <= 1.0 for v in hard.signals.values())
    assert simple.score < 0.05 < 0.5 < hard.score
    assert hard.signals["code"] == 1.0 and hard.signals["reasoning"] == 1.0 and hard.signals["questions"] == 1.0
    assert scorer("Solve $x^2 = 4$ and compute 12 * 7").signals["math"] == 1.0


def test_weights_select_signals() -> None:
    only_code = ComplexityScorer(weights={"code": 1.0})
    assert only_code("def f():\n  pass;\n").score == 1.0
    assert only_code("a long plain sentence " * 100).score == 0.0


def test_simple_goes_cheap_complex_goes_strong_with_scores_in_the_notes() -> None:
    router = Router.heuristic(["gpt-4o-mini", "gpt-4o"])
    cheap = send(router, SIMPLE)
    assert cheap.model == "gpt-4o-mini"
    assert cheap.notes["route_scores"]["complexity"] < 0.3
    assert cheap.notes["route_reason"].startswith("complexity 0.0")
    strong = send(router, COMPLEX)
    assert strong.model == "gpt-4o" and "routed_from" not in strong.notes


def test_three_tiers_and_custom_thresholds() -> None:
    router = Router.heuristic(["gpt-4o-mini", "gpt-3.5-turbo", "gpt-4o"], thresholds=[0.01, 0.5])
    assert send(router, "hi").model == "gpt-4o-mini"
    medium = "Explain why, step by step, and compare the trade-offs of both designs"
    assert send(router, medium).model == "gpt-3.5-turbo"
    assert send(router, COMPLEX).model == "gpt-4o"
    assert default_thresholds(2) == (0.3,) and default_thresholds(3) == (0.2, 0.4)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"models": ["gpt-4o"]}, "models"),
        ({"models": "gpt-4o"}, "models"),
        ({"models": ["a", "a"]}, "models[1]"),
        ({"thresholds": [0.2, 0.4]}, "thresholds"),
        ({"thresholds": [1.5]}, "thresholds"),
        ({"models": ["a", "b", "c"], "thresholds": [0.5, 0.2]}, "thresholds"),
        ({"weights": {"vibes": 1.0}}, "weights.vibes"),
        ({"weights": {"code": -1}}, "weights.code"),
        ({"weights": {"code": 0}}, "weights"),
        ({"keywords": "prove"}, "keywords"),
        ({"length_scale": 0}, "length_scale"),
        ({"scorer": ComplexityScorer(), "weights": {"code": 1}}, "scorer"),
    ],
)
def test_misconfiguration_fails_at_construction(kwargs: dict[str, Any], field: str) -> None:
    args = {"models": ["gpt-4o-mini", "gpt-4o"], **kwargs}
    with pytest.raises(ConfigError) as info:
        Router.heuristic(**args)
    assert info.value.field == field
