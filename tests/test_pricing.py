"""costkit.pricing: prices agree with litellm.completion_cost; overrides, self-hosted, unknown models, bad input."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import warnings
from datetime import datetime, timezone

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from costkit import ConfigError, Usage, pricing
from costkit._warn import CostkitWarning
from costkit.pricing import CostMap, ModelPrice, PriceBook

TOLERANCE = 1e-9  # USD


@pytest.fixture(scope="module")
def litellm():
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import litellm as module
    module.suppress_debug_info = True
    return module


def _openai_response(litellm, model: str, prompt: int, completion: int, cached: int = 0):
    from litellm.types.utils import PromptTokensDetailsWrapper
    from litellm.types.utils import Usage as LiteUsage

    details = PromptTokensDetailsWrapper(cached_tokens=cached) if cached else None
    usage = LiteUsage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=prompt + completion,
        prompt_tokens_details=details,
    )
    return litellm.ModelResponse(model=model, usage=usage)


def _anthropic_response(litellm, model: str, prompt: int, completion: int, read: int = 0, write: int = 0):
    from litellm.types.utils import Usage as LiteUsage

    # litellm's Anthropic usage: prompt_tokens already includes cache reads and writes (costkit's convention too)
    usage = LiteUsage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=prompt + completion,
        cache_read_input_tokens=read,
        cache_creation_input_tokens=write,
    )
    return litellm.ModelResponse(model=model, usage=usage)


# (model as users pass it, provider family, whether the provider reports Anthropic-style cache fields)
MODELS = [
    ("gpt-4o", "openai", False),
    ("gpt-4o-2024-08-06", "openai", False),
    ("gpt-4o-mini", "openai", False),
    ("gpt-4.1", "openai", False),
    ("gpt-4.1-mini", "openai", False),
    ("o3-mini", "openai", False),
    ("o4-mini", "openai", False),
    ("gpt-5", "openai", False),
    ("gpt-5-mini", "openai", False),
    ("gpt-5.4", "openai", False),  # long context: above 272k tokens
    ("azure/gpt-4o", "azure", False),
    ("claude-sonnet-4-5", "anthropic", True),
    ("anthropic/claude-haiku-4-5", "anthropic", True),
    ("claude-opus-4-5", "anthropic", True),
    ("gemini/gemini-2.5-pro", "gemini", False),  # long context: above 200k tokens
    ("gemini/gemini-2.5-flash", "gemini", False),
    ("gemini/gemini-2.5-flash-lite", "gemini", False),
    ("vertex_ai/gemini-2.5-pro", "vertex", False),
    ("vertex_ai/claude-3-5-haiku", "vertex", True),
    ("mistral/mistral-large-latest", "mistral", False),
    ("mistral/mistral-small-latest", "mistral", False),
    ("mistral/codestral-latest", "mistral", False),
    ("deepseek/deepseek-chat", "deepseek", False),
    ("deepseek/deepseek-reasoner", "deepseek", False),
    ("bedrock/anthropic.claude-3-5-sonnet-20240620-v1:0", "bedrock", True),
    ("bedrock/us.anthropic.claude-3-7-sonnet-20250219-v1:0", "bedrock", True),
    ("bedrock/amazon.nova-pro-v1:0", "bedrock", False),
    ("groq/openai/gpt-oss-120b", "groq", False),
    ("xai/grok-4.3", "xai", False),  # long context, inclusive threshold
    ("xai/grok-4.5", "xai", False),
    ("dashscope/qwen-plus-latest", "dashscope", False),  # range table (tiered_pricing)
    ("fireworks_ai/accounts/fireworks/models/deepseek-v3", "fireworks", False),  # default cache rate
    ("together_ai/meta-llama/Llama-3.3-70B-Instruct-Turbo", "together", False),
    ("perplexity/sonar", "perplexity", False),
    ("command-r-08-2024", "cohere", False),
]

# (prompt tokens incl. cached, output tokens, cached read, cache write); writes only where reported
USAGES = [
    (1_200, 300, 0, 0),
    (5_000, 700, 2_048, 0),
    (3_000, 100, 1_000, 500),
    (200_000, 10, 0, 0),  # exactly at a 200k threshold: only xAI's inclusive tier applies
    (250_000, 1_000, 10_000, 0),
    (300_000, 1_000, 20_000, 3_000),
]


def test_at_least_twenty_models_across_providers():
    assert len(MODELS) >= 20
    assert len({family for _, family, _ in MODELS}) >= 10


@pytest.mark.parametrize(("model", "family", "anthropic_shape"), MODELS, ids=[m for m, _, _ in MODELS])
def test_cost_matches_litellm_completion_cost(litellm, model, family, anthropic_shape):
    assert pricing.get(model) is not None, model
    for prompt, completion, read, write in USAGES:
        if anthropic_shape:
            response = _anthropic_response(litellm, model, prompt, completion, read, write)
        else:
            write = 0  # OpenAI-shaped usage reports no cache writes
            response = _openai_response(litellm, model, prompt, completion, read)
        expected = litellm.completion_cost(completion_response=response, model=model)
        usage = Usage(input_tokens=prompt, output_tokens=completion, cached_read_tokens=read, cache_write_tokens=write)
        got = pricing.cost(model, usage)
        assert got is not None
        assert math.isclose(got, expected, rel_tol=0, abs_tol=TOLERANCE), (model, prompt, completion, read, write)


@pytest.mark.parametrize(
    ("model", "prompt"),
    [
        ("gpt-4o", 5_000),
        ("claude-sonnet-4-5", 5_000),
        ("gemini/gemini-2.5-pro", 250_000),
        ("gpt-5.4", 300_000),  # tiered batch rates (*_above_272k_tokens_batches)
        ("mistral/mistral-large-latest", 5_000),  # no batch rates: half price
    ],
)
def test_batch_cost_matches_litellm_batch_cost_calculator(litellm, model, prompt):
    from litellm.cost_calculator import batch_cost_calculator
    from litellm.types.utils import PromptTokensDetailsWrapper
    from litellm.types.utils import Usage as LiteUsage

    lite_usage = LiteUsage(
        prompt_tokens=prompt,
        completion_tokens=400,
        total_tokens=prompt + 400,
        prompt_tokens_details=PromptTokensDetailsWrapper(cached_tokens=1_000),
    )
    price = pricing.get(model)
    assert price is not None
    expected = sum(batch_cost_calculator(lite_usage, model, price.provider))
    got = pricing.cost(model, Usage(input_tokens=prompt, output_tokens=400, cached_read_tokens=1_000), batch=True)
    assert math.isclose(got, expected, rel_tol=0, abs_tol=TOLERANCE)
    assert got < pricing.cost(model, Usage(input_tokens=prompt, output_tokens=400, cached_read_tokens=1_000))


@pytest.mark.parametrize(
    "at",
    [
        datetime(2026, 11, 18, 8, 30, tzinfo=timezone.utc),  # Wednesday, peak
        datetime(2026, 11, 18, 4, 30, tzinfo=timezone.utc),  # Wednesday, off-peak window 04:00-06:00
        datetime(2026, 11, 18, 23, 59, tzinfo=timezone.utc),  # Wednesday, off-peak 10:00-00:00
        datetime(2026, 11, 22, 8, 30, tzinfo=timezone.utc),  # Sunday, off-peak all day
        datetime(2026, 11, 20, 17, 0, tzinfo=timezone.utc),  # Friday UTC, already Saturday in Shanghai
    ],
)
@pytest.mark.parametrize(
    "model", ["deepseek/deepseek-v4-pro", "deepseek/deepseek-v4-flash", "tencent/deepseek-v4-pro-0813"]
)
def test_off_peak_rates_match_litellm_at_a_given_time(litellm, model, at):
    from litellm.litellm_core_utils.llm_cost_calc.utils import generic_cost_per_token
    from litellm.types.utils import PromptTokensDetailsWrapper
    from litellm.types.utils import Usage as LiteUsage

    lite_usage = LiteUsage(
        prompt_tokens=4_000,
        completion_tokens=500,
        total_tokens=4_500,
        prompt_tokens_details=PromptTokensDetailsWrapper(cached_tokens=1_500),
    )
    price = pricing.get(model)
    assert price is not None and price.off_peak is not None
    expected = sum(
        generic_cost_per_token(model=price.model, usage=lite_usage, custom_llm_provider=price.provider, current_time=at)
    )
    got = pricing.cost(model, Usage(input_tokens=4_000, output_tokens=500, cached_read_tokens=1_500), at=at)
    assert math.isclose(got, expected, rel_tol=0, abs_tol=TOLERANCE)


def test_off_peak_windows_switch_the_rate():
    price = pricing.get("deepseek/deepseek-v4-pro")
    usage = Usage(input_tokens=1_000_000)
    peak = price.cost(usage, at=datetime(2026, 11, 18, 8, 0, tzinfo=timezone.utc))
    off = price.cost(usage, at=datetime(2026, 11, 18, 4, 0, tzinfo=timezone.utc))
    assert peak == pytest.approx(price.input_per_token * 1_000_000)
    assert off == pytest.approx(price.off_peak.input_per_token * 1_000_000)
    assert off < peak


@pytest.mark.parametrize(
    ("model", "tier"),
    [
        ("gpt-4o", "priority"),
        ("gpt-5", "flex"),
        ("gpt-5", "priority"),
        ("gpt-5-mini", "flex"),
        ("o4-mini", "flex"),
        ("gpt-5.4", "priority"),  # priority rates above 272k tokens
        ("gemini/gemini-2.5-pro", "priority"),  # priority rates above 200k tokens
        ("gemini/gemini-2.5-pro", "flex"),
        ("gpt-4o", "flex"),  # no flex prices for gpt-4o: standard rates
        ("gpt-4o", "auto"),
        ("gpt-4o", "default"),
    ],
)
def test_service_tier_cost_matches_litellm(litellm, model, tier):
    for prompt, completion, cached in [(5_000, 700, 2_048), (300_000, 1_000, 20_000)]:
        response = _openai_response(litellm, model, prompt, completion, cached)
        expected = litellm.completion_cost(completion_response=response, model=model, service_tier=tier)
        usage = Usage(input_tokens=prompt, output_tokens=completion, cached_read_tokens=cached)
        got = pricing.cost(model, usage, service_tier=tier)
        assert math.isclose(got, expected, rel_tol=0, abs_tol=TOLERANCE), (model, tier, prompt)


def test_service_tiers_change_the_price():
    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000)
    standard = pricing.cost("gpt-5", usage)
    assert pricing.cost("gpt-5", usage, service_tier="flex") == pytest.approx(standard / 2)
    assert pricing.cost("gpt-5", usage, service_tier="priority") > standard
    assert pricing.cost("gpt-5", usage, service_tier="fast") == pricing.cost("gpt-5", usage, service_tier="priority")
    assert pricing.cost("gpt-5", usage, service_tier="no-such-tier") == standard
    price = pricing.get("gpt-5")
    assert price.for_service_tier("FLEX").input_per_token == price.input_per_token / 2
    assert price.for_service_tier(None) is price
    assert pricing.worst_case_cost("gpt-5", 1_000, 100, service_tier="flex") == pytest.approx(
        pricing.worst_case_cost("gpt-5", 1_000, 100) / 2
    )


@pytest.mark.parametrize("model", ["deepseek/deepseek-v4-pro", "tencent/deepseek-v4-pro-0813"])
def test_off_peak_now_agrees_with_an_explicit_time(monkeypatch, model):
    """The per-call path reads the clock without datetime; it must agree with ``at=`` for every hour of a week."""
    import costkit.pricing.rates as module

    off_peak = pricing.get(model).off_peak
    start = int(datetime(2026, 11, 16, tzinfo=timezone.utc).timestamp())  # a Monday
    for minute in range(0, 7 * 24 * 60, 17):
        epoch = start + minute * 60 + 5
        monkeypatch.setattr(module.time, "time", lambda epoch=epoch: float(epoch))
        assert off_peak.is_open() == off_peak.is_open(datetime.fromtimestamp(epoch, timezone.utc)), minute


@pytest.mark.slow
def test_whole_cost_map_agrees_with_litellm(litellm):
    """Every chat/completion model of the bundled map, five usages each, against litellm.completion_cost."""
    book = pricing.default_pricebook()
    entries = book.cost_map.entries
    # litellm's Together AI size buckets ("together-ai-21.1b-41b") are not model names: litellm prices
    # such a name as an unknown model of the smallest bucket, costkit uses the entry as written.
    known = {k for k in entries if k.startswith("together-ai-")}
    # (prompt, output, cache read, cache write): OpenAI-shaped usages, then one with Anthropic-style cache writes
    usages = [(1_200, 300, 0, 0), (5_000, 700, 2_048, 0), (200_000, 10, 0, 0), (300_000, 1_000, 20_000, 0),
              (3_000, 100, 1_000, 500)]  # fmt: skip
    checked, mismatches = 0, []
    for key, entry in entries.items():
        if entry.get("mode") not in ("chat", "completion") or key in known:
            continue
        if "input_cost_per_token" not in entry and "tiered_pricing" not in entry:
            continue
        provider = entry.get("litellm_provider")
        checked += 1
        for prompt, completion, cached, written in usages:
            if written:
                response = _anthropic_response(litellm, key, prompt, completion, cached, written)
            else:
                response = _openai_response(litellm, key, prompt, completion, cached)
            expected = litellm.completion_cost(completion_response=response, model=key, custom_llm_provider=provider)
            usage = Usage(
                input_tokens=prompt, output_tokens=completion, cached_read_tokens=cached, cache_write_tokens=written
            )
            got = book.cost(key, usage, provider=provider)
            if got is None or abs(got - expected) > TOLERANCE:
                mismatches.append((key, prompt, expected, got))
                break
    assert checked > 2_500
    assert mismatches == []


# ----------------------------------------------------------------------------------------- resolution


@pytest.mark.parametrize(
    ("name", "provider", "key"),
    [
        ("gpt-4o", None, "gpt-4o"),
        ("openai/gpt-4o", None, "gpt-4o"),
        ("gpt-4o", "openai", "gpt-4o"),
        ("gpt-4o", "litellm", "gpt-4o"),
        ("gpt-4o", "azure", "azure/gpt-4o"),
        ("GPT-4o", None, "gpt-4o"),
        ("gpt-4o-2024-08-06", None, "gpt-4o-2024-08-06"),
        ("gpt-4o-2031-01-01", None, "gpt-4o"),  # a snapshot the map does not list yet
        ("anthropic/claude-sonnet-4-5", None, "claude-sonnet-4-5"),
        ("claude-sonnet-4-5", "anthropic", "claude-sonnet-4-5"),
        ("claude-sonnet-4-5-latest", None, "claude-sonnet-4-5-20250929"),
        ("claude-3-5-sonnet-latest", None, "anthropic.claude-3-5-sonnet-20241022-v2:0"),  # via Bedrock's list price
        ("gemini/gemini-2.5-pro", None, "gemini/gemini-2.5-pro"),
        ("gemini-2.5-pro", "gemini", "gemini/gemini-2.5-pro"),
        ("bedrock/anthropic.claude-3-5-sonnet-20240620-v1:0", None, "anthropic.claude-3-5-sonnet-20240620-v1:0"),
        ("groq/openai/gpt-oss-120b", None, "groq/openai/gpt-oss-120b"),
        ("deepseek-chat", "openai", "deepseek-chat"),  # an OpenAI client pointed at DeepSeek
    ],
)
def test_get_resolves_the_names_users_pass(name, provider, key):
    price = pricing.get(name, provider)
    assert price is not None
    assert price.model == key


def test_model_price_fields_come_from_the_map():
    price = pricing.get("gpt-4o")
    assert (price.provider, price.mode) == ("openai", "chat")
    assert price.input_per_token == 2.5e-06 and price.output_per_token == 1e-05
    assert price.cache_read_per_token == 1.25e-06 and price.cache_write_per_token is None
    assert (price.batch_input_per_token, price.batch_output_per_token) == (1.25e-06, 5e-06)
    assert (price.max_input_tokens, price.max_output_tokens) == (128_000, 16_384)
    assert price.supports_function_calling and price.supports_vision and price.supports_response_schema
    assert price.supports_prompt_caching
    assert price.input_per_million == pytest.approx(2.5)

    gemini = pricing.get("gemini/gemini-2.5-pro")
    (tier,) = gemini.tiers
    assert (tier.above_tokens, tier.input_per_token, tier.output_per_token) == (200_000, 2.5e-06, 1.5e-05)


def test_cost_bills_each_kind_of_token_at_its_rate():
    price = pricing.get("claude-sonnet-4-5")  # $3 in, $15 out, $0.30 cache read, $3.75 cache write per million
    usage = Usage(input_tokens=10_000, output_tokens=1_000, cached_read_tokens=6_000, cache_write_tokens=2_000)
    expected = 2_000 * 3e-06 + 6_000 * 3e-07 + 2_000 * 3.75e-06 + 1_000 * 1.5e-05
    assert price.cost(usage) == pytest.approx(expected, abs=1e-12)
    assert pricing.cost("claude-sonnet-4-5", usage) == price.cost(usage)


def test_a_missing_cache_price_bills_cached_tokens_as_input():
    price = pricing.get("command-r-08-2024")
    assert price.cache_read_per_token is None
    usage = Usage(input_tokens=1_000, cached_read_tokens=400)
    assert price.cost(usage) == pytest.approx(1_000 * price.input_per_token)


def test_worst_case_cost_assumes_no_cache_and_every_output_token():
    assert pricing.worst_case_cost("gpt-4o", 1_000, 500) == pytest.approx(1_000 * 2.5e-06 + 500 * 1e-05)
    # no cap given: the model's own maximum output
    assert pricing.worst_case_cost("gpt-4o", 1_000) == pytest.approx(1_000 * 2.5e-06 + 16_384 * 1e-05)
    assert pricing.worst_case_cost("no-such-model-xyz", 1_000, 10) is None


def test_lookups_are_memoized_and_the_map_is_parsed_once():
    book = pricing.default_pricebook()
    first = book.get("gpt-4o-mini")
    assert book.get("gpt-4o-mini") is first
    entries = book.cost_map.entries
    assert book.cost_map.entries is entries
    assert book.cost_map.load_seconds is not None and book.cost_map.load_seconds > 0
    assert len(entries) > 4_000


def test_importing_pricing_does_not_import_litellm():
    code = (
        "import sys, costkit.pricing as p, costkit.tokens as t\n"
        "from costkit import Usage\n"
        "assert p.cost('gpt-4o', Usage(input_tokens=10)) > 0\n"
        "assert t.count_text('hello world', 'gpt-4') == 2\n"
        "assert 'litellm' not in sys.modules, 'litellm was imported'\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "LITELLM_LOCAL_MODEL_COST_MAP"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


# ----------------------------------------------------------------------------------------- overrides


def test_register_wins_over_the_map_and_is_seen_by_derived_books():
    base = PriceBook(base=None, cost_map=CostMap())
    derived = PriceBook(base=base)
    assert derived.get("gpt-4o").input_per_token == 2.5e-06
    price = base.register("gpt-4o", input_per_million=1.0, output_per_million=2.0, cached_read_per_million=0.5)
    assert price.source == "override"
    assert base.get("gpt-4o") is price
    assert derived.get("gpt-4o") is price  # the base's later register() is not hidden by the child's memo
    usage = Usage(input_tokens=2_000_000, output_tokens=1_000_000, cached_read_tokens=1_000_000)
    assert base.cost("gpt-4o", usage) == pytest.approx(1.0 + 0.5 + 2.0)
    # the process-wide book is untouched
    assert pricing.get("gpt-4o").input_per_token == 2.5e-06


def test_overrides_layer_over_the_default_book():
    book = PriceBook(
        overrides={
            "my-model": {"input_per_million": 0.2, "output_per_million": 0.6, "max_output_tokens": 4096},
            "gpt-4o": ModelPrice(model="ignored", input_per_token=1e-06, output_per_token=2e-06),
        }
    )
    assert book.get("my-model").max_output_tokens == 4096
    assert book.cost("my-model", Usage(input_tokens=1_000_000, output_tokens=1_000_000)) == pytest.approx(0.8)
    assert book.get("gpt-4o").model == "gpt-4o" and book.get("gpt-4o").input_per_token == 1e-06
    assert book.get("gpt-4o-mini") is pricing.get("gpt-4o-mini")  # everything else from the default book
    assert pricing.get("my-model") is None


def test_provider_specific_override_applies_only_to_that_provider():
    book = PriceBook()
    book.register("llama-3-8b", input_per_million=0.05, output_per_million=0.08, provider="groq")
    book.register("llama-3-8b", input_per_million=0.2, output_per_million=0.2)
    assert book.get("llama-3-8b", "groq").input_per_token == pytest.approx(0.05e-6)
    assert book.get("groq/llama-3-8b").input_per_token == pytest.approx(0.05e-6)
    assert book.get("llama-3-8b").input_per_token == pytest.approx(0.2e-6)


def test_batch_without_batch_rates_is_half_price():
    book = PriceBook(base=None)
    book.register("m", input_per_million=2.0, output_per_million=8.0)
    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000)
    assert book.cost("m", usage) == pytest.approx(10.0)
    assert book.cost("m", usage, batch=True) == pytest.approx(5.0)
    book.register(
        "m", input_per_million=2.0, output_per_million=8.0, batch_input_per_million=0.5, batch_output_per_million=1.0
    )
    assert book.cost("m", usage, batch=True) == pytest.approx(1.5)


def test_module_level_register_changes_the_default_book():
    book = pricing.default_pricebook()
    try:
        pricing.register("costkit-test-model-1", input_per_million=1.0, output_per_million=3.0)
        assert pricing.cost("costkit-test-model-1", Usage(input_tokens=1_000_000)) == pytest.approx(1.0)
    finally:
        book._overrides.pop((None, "costkit-test-model-1"), None)
        book._memo.clear()


# ----------------------------------------------------------------------------------------- self-hosted


def test_register_self_hosted_turns_gpu_cost_into_per_token_prices():
    book = PriceBook(base=None)
    price = book.register_self_hosted("llama-70b-local", usd_per_gpu_hour=2.0, tokens_per_second=1_000, gpus=4)
    usd_per_second = 2.0 * 4 / 3600
    assert price.output_per_token == pytest.approx(usd_per_second / 1_000)
    assert price.input_per_token == pytest.approx(usd_per_second / 10_000)  # prefill 10x faster by default
    assert price.source == "self_hosted" and not price.supports_prompt_caching
    # one hour of saturated decoding costs exactly one hour of the GPUs
    assert book.cost("llama-70b-local", Usage(output_tokens=3_600_000)) == pytest.approx(8.0)

    half_busy = book.register_self_hosted(
        "m2", usd_per_gpu_hour=2.0, tokens_per_second=1_000, prefill_tokens_per_second=4_000, utilization=0.5
    )
    assert half_busy.output_per_token == pytest.approx(2.0 / 3600 / 500)
    assert half_busy.input_per_token == pytest.approx(2.0 / 3600 / 2_000)


# ----------------------------------------------------------------------------------------- unknown + bad input


def test_unknown_model_is_none_with_exactly_one_warning_naming_register():
    book = PriceBook()
    assert book.get("totally-unknown-model-9") is None
    assert book.cost("totally-unknown-model-9", Usage(input_tokens=5)) is None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert book.warn_unknown("totally-unknown-model-9") is True
        assert book.warn_unknown("totally-unknown-model-9") is False
        pricing.warn_unknown("totally-unknown-model-9")
    assert len(caught) == 1
    assert issubclass(caught[0].category, CostkitWarning)
    assert 'costkit.pricing.register("totally-unknown-model-9", input_per_million=' in str(caught[0].message)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"input_per_million": -1.0, "output_per_million": 1.0}, "input_per_million"),
        ({"input_per_million": float("nan"), "output_per_million": 1.0}, "input_per_million"),
        ({"input_per_million": 1.0, "output_per_million": float("inf")}, "output_per_million"),
        ({"input_per_million": "1.0", "output_per_million": 1.0}, "input_per_million"),
        ({"input_per_million": True, "output_per_million": 1.0}, "input_per_million"),
        (
            {"input_per_million": 1.0, "output_per_million": 1.0, "cached_read_per_million": -0.1},
            "cached_read_per_million",
        ),
        (
            {"input_per_million": 1.0, "output_per_million": 1.0, "batch_output_per_million": "x"},
            "batch_output_per_million",
        ),
        ({"input_per_million": 1.0, "output_per_million": 1.0, "max_output_tokens": 0}, "max_output_tokens"),
        ({"input_per_million": 1.0, "output_per_million": 1.0, "max_input_tokens": float("inf")}, "max_input_tokens"),
        ({"input_per_million": None, "output_per_million": 1.0}, "input_per_million"),
        ({"input_per_million": 1.0, "output_per_million": 1.0, "provider": ""}, "provider"),
    ],
)
def test_bad_register_input_names_the_field(kwargs, field):
    with pytest.raises(ConfigError) as err:
        PriceBook(base=None).register("m", **kwargs)
    assert err.value.field == field


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"usd_per_gpu_hour": 2.0, "tokens_per_second": 0}, "tokens_per_second"),
        ({"usd_per_gpu_hour": -2.0, "tokens_per_second": 10}, "usd_per_gpu_hour"),
        ({"usd_per_gpu_hour": float("nan"), "tokens_per_second": 10}, "usd_per_gpu_hour"),
        ({"usd_per_gpu_hour": 2.0, "tokens_per_second": 10, "gpus": 0}, "gpus"),
        ({"usd_per_gpu_hour": 2.0, "tokens_per_second": 10, "gpus": 1.5}, "gpus"),
        ({"usd_per_gpu_hour": 2.0, "tokens_per_second": 10, "utilization": 1.5}, "utilization"),
        (
            {"usd_per_gpu_hour": 2.0, "tokens_per_second": 10, "prefill_tokens_per_second": -1},
            "prefill_tokens_per_second",
        ),
    ],
)
def test_bad_self_hosted_input_names_the_field(kwargs, field):
    with pytest.raises(ConfigError) as err:
        PriceBook(base=None).register_self_hosted("m", **kwargs)
    assert err.value.field == field


def test_bad_construction_names_the_field():
    with pytest.raises(ConfigError) as err:
        PriceBook(base="default")
    assert err.value.field == "base"
    with pytest.raises(ConfigError) as err:
        PriceBook(overrides={"m": 3})
    assert err.value.field == "overrides.m"
    with pytest.raises(ConfigError) as err:
        ModelPrice(model="m", input_per_token=-1.0)
    assert err.value.field == "input_per_token"
    with pytest.raises(ConfigError) as err:
        ModelPrice(model="m", output_per_token=None)
    assert err.value.field == "output_per_token"


def test_a_missing_cost_map_warns_once_and_prices_nothing(tmp_path):
    book = PriceBook(base=None, cost_map=str(tmp_path / "absent.json"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert book.get("gpt-4o") is None
        assert book.get("gpt-4o-mini") is None
    assert len(caught) == 1 and "could not read the cost map" in str(caught[0].message)


def test_a_custom_cost_map_in_litellms_format():
    book = PriceBook(
        base=None,
        cost_map={
            "acme/fast": {
                "litellm_provider": "acme",
                "mode": "chat",
                "input_cost_per_token": 1e-07,
                "output_cost_per_token": 2e-07,
                "input_cost_per_token_above_1k_tokens": 3e-07,
            },
        },
    )
    assert book.get("fast", "acme").model == "acme/fast"
    assert book.cost("acme/fast", Usage(input_tokens=1_000, output_tokens=10)) == pytest.approx(1e-04 + 2e-06)
    assert book.cost("acme/fast", Usage(input_tokens=1_001, output_tokens=10)) == pytest.approx(1_001 * 3e-07 + 2e-06)


@pytest.mark.slow
def test_whole_cost_map_service_tiers_agree_with_litellm(litellm):
    """Every (model, service tier) pair the map prices, against litellm.completion_cost(service_tier=...).

    litellm's Fireworks calculator ignores ``service_tier`` although the map lists Fireworks
    priority prices; costkit bills them (documented in docs/pricing.md), so Fireworks is left out.
    """
    book = pricing.default_pricebook()
    checked, mismatches = 0, []
    for key, entry in book.cost_map.entries.items():
        provider = entry.get("litellm_provider")
        if entry.get("mode") != "chat" or "input_cost_per_token" not in entry or provider == "fireworks_ai":
            continue
        price = book.get(key, provider)
        for tier, _ in price.service_tiers:
            checked += 1
            for prompt, completion, cached in [(5_000, 700, 2_048), (300_000, 1_000, 20_000)]:
                response = _openai_response(litellm, key, prompt, completion, cached)
                expected = litellm.completion_cost(
                    completion_response=response, model=key, custom_llm_provider=provider, service_tier=tier
                )
                usage = Usage(input_tokens=prompt, output_tokens=completion, cached_read_tokens=cached)
                got = book.cost(key, usage, provider=provider, service_tier=tier)
                if abs(got - expected) > TOLERANCE:
                    mismatches.append((key, tier, prompt, expected, got))
                    break
    assert checked > 300
    assert mismatches == []


def test_concurrent_first_lookups_parse_the_map_once():
    from concurrent.futures import ThreadPoolExecutor

    cost_map = CostMap(pricing.litellm_cost_map_path())
    book = PriceBook(base=None, cost_map=cost_map)
    with ThreadPoolExecutor(8) as pool:
        maps = list(pool.map(lambda _: cost_map.entries, range(16)))
        prices = list(pool.map(lambda _: book.get("gpt-4o"), range(16)))
    assert all(m is maps[0] for m in maps)
    assert len({(p.model, p.input_per_token) for p in prices}) == 1
