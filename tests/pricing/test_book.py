"""costkit.pricing.book: PriceBook.cost / worst_case_cost pass every pricing option to the model's sheet."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from costkit._call import Usage
from costkit.pricing import PriceBook

MAP = {
    "m": {
        "input_cost_per_token": 1e-6,
        "output_cost_per_token": 2e-6,
        "input_cost_per_token_flex": 0.5e-6,
        "max_output_tokens": 1_000,
    },
    "night": {
        "input_cost_per_token": 1e-6,
        "output_cost_per_token": 2e-6,
        "off_peak_pricing": {"input_cost_per_token": 0.25e-6, "hours_utc": "04:00-06:00"},
    },
    "groq/m": {"input_cost_per_token": 3e-6, "output_cost_per_token": 4e-6, "litellm_provider": "groq"},
}
DAY = datetime(2026, 11, 18, 12, tzinfo=timezone.utc)


def test_cost_passes_provider_batch_time_and_service_tier() -> None:
    book = PriceBook(base=None, cost_map=MAP)
    usage = Usage(input_tokens=10_000, output_tokens=1_000)
    assert book.cost("m", usage, at=DAY) == pytest.approx(0.01 + 0.002, abs=1e-15)
    assert book.cost("m", usage, provider="groq") == pytest.approx(0.03 + 0.004, abs=1e-15)
    assert book.cost("m", usage, batch=True, at=DAY) == pytest.approx(0.005 + 0.001, abs=1e-15)
    assert book.cost("night", usage, at=DAY) == pytest.approx(0.01 + 0.002, abs=1e-15)
    assert book.cost("night", usage, at=DAY.replace(hour=5)) == pytest.approx(0.0025 + 0.002, abs=1e-15)
    assert book.cost("m", usage, service_tier="flex", at=DAY) == pytest.approx(0.005 + 0.002, abs=1e-15)
    assert book.cost("nothing", usage) is None


def test_worst_case_cost_passes_provider_batch_and_service_tier() -> None:
    book = PriceBook(base=None, cost_map=MAP)
    assert book.worst_case_cost("groq/m", 1_000, 100) == pytest.approx(0.003 + 0.0004, abs=1e-15)
    assert book.worst_case_cost("m", 1_000, 100, provider="groq") == pytest.approx(0.003 + 0.0004, abs=1e-15)
    assert book.worst_case_cost("m", 1_000, 100, batch=True) == pytest.approx(0.0005 + 0.0001, abs=1e-15)
    assert book.worst_case_cost("m", 1_000, service_tier="flex") == pytest.approx(0.0005 + 0.002, abs=1e-15)
    assert book.worst_case_cost("nothing", 1_000, 100) is None
