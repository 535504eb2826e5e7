"""Tests of an application that uses costkit, with costkit's pytest fixtures.

    python examples/pytest_app/test_app.py     # or: python -m pytest examples/pytest_app

``fake_openai`` is a real ``openai.OpenAI`` answered in process by the fake provider
(``fake_openai.fake``); ``cost_records`` is a fresh ``MemorySink``. Installing costkit registers
the fixtures (a pytest plugin): no conftest.py needed. The tests assert what the application
pays for: which model was called, how many provider calls were made, the exact cost of each.
"""

from __future__ import annotations

import openai
import pytest
from app import SupportBot

import costkit
from costkit.testing import Failure


@pytest.fixture
def bot(fake_openai, cost_records):
    fake_openai.fake.on(r"(?i)refund", "Refunds take 5 business days.")
    return SupportBot(fake_openai, sink=cost_records)


def test_answers_and_records_the_exact_cost(bot, fake_openai, cost_records):
    assert bot.answer("How do refunds work?", tenant="acme") == "Refunds take 5 business days."

    assert fake_openai.fake.count(model="gpt-4o-mini") == 1
    [record] = cost_records.records
    assert (record.tenant, record.feature, record.kind) == ("acme", "support_answer", "call")
    usage = costkit.Usage(input_tokens=record.input_tokens, output_tokens=record.output_tokens)
    assert record.cost_usd == pytest.approx(costkit.pricing.cost("gpt-4o-mini", usage))
    assert record.output_tokens == costkit.tokens.count_text("Refunds take 5 business days.", "gpt-4o-mini")


def test_a_repeated_question_is_free(bot, fake_openai, cost_records):
    bot.answer("How do refunds work?", tenant="acme")
    bot.answer("How do refunds work?", tenant="acme")

    assert fake_openai.fake.count() == 1
    first, hit = cost_records.records
    assert (hit.kind, hit.cache, hit.cost_usd) == ("cache_hit", "exact", 0.0)
    assert hit.saved_usd == pytest.approx(first.cost_usd)


def test_tenants_never_share_answers(bot, fake_openai):
    bot.answer("How do refunds work?", tenant="acme")
    bot.answer("How do refunds work?", tenant="globex")

    assert fake_openai.fake.count() == 2


def test_output_is_capped(bot, fake_openai, cost_records):
    bot.answer("Tell me everything", tenant="acme")

    assert fake_openai.fake.last.request.max_tokens == 200  # the guardrail's cap reached the provider
    assert cost_records.records[0].notes["clamped"]["max_output_tokens"]["to"] == 200


def test_a_rate_limit_is_retried_and_both_attempts_are_recorded(bot, fake_openai, cost_records):
    fake_openai.fake.fail_next(1, Failure.rate_limit(retry_after=0))

    assert bot.answer("How do refunds work?", tenant="acme") == "Refunds take 5 business days."
    failed, retried = cost_records.records
    assert (failed.success, failed.error_type, failed.cost_usd) == (False, "RateLimitError", 0.0)
    assert (retried.kind, retried.attempt, retried.success) == ("retry", 2, True)


def test_an_outage_reaches_the_caller_as_the_sdks_own_error(bot, fake_openai, cost_records):
    fake_openai.fake.fail_next(3, 503)

    with pytest.raises(openai.InternalServerError):
        bot.answer("How do refunds work?", tenant="acme")
    assert fake_openai.fake.count() == 3  # max_attempts, no more
    assert [r.success for r in cost_records.records] == [False, False, False]


def test_the_same_app_over_http(fake_server, cost_records):
    fake_server.fake.on(r"(?i)refund", "Refunds take 5 business days.")
    bot = SupportBot(fake_server.openai_client(), sink=cost_records)  # the SDK's real network stack

    assert bot.answer("How do refunds work?", tenant="acme") == "Refunds take 5 business days."
    assert fake_server.fake.last.path == "/v1/chat/completions"
    assert cost_records.records[0].cost_usd > 0


if __name__ == "__main__":  # python examples/pytest_app/test_app.py: pytest on this file, in a fresh process
    import subprocess
    import sys

    raise SystemExit(subprocess.call([sys.executable, "-m", "pytest", __file__, "-q", "-p", "no:cacheprovider"]))
