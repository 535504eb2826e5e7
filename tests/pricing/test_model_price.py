"""costkit.pricing.model_price: what a usage costs on one model's sheet (tiers, range tables,
batch, off-peak, service tiers), on hand-written LiteLLM-format entries.

Every expected dollar is the hand product written next to it, never computed with costkit.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from costkit._call import Usage
from costkit.pricing import ModelPrice, price_from_map_entry

BASE = {
    "input_cost_per_token": 1e-6,
    "output_cost_per_token": 2e-6,
    "cache_read_input_token_cost": 0.1e-6,
    "cache_creation_input_token_cost": 1.25e-6,
    "max_output_tokens": 4_000,
}
# long context above 200k: $2 in, $4 out, $0.2 read, $2.5 write per million
TIERED = {
    **BASE,
    "input_cost_per_token_above_200k_tokens": 2e-6,
    "output_cost_per_token_above_200k_tokens": 4e-6,
    "cache_read_input_token_cost_above_200k_tokens": 0.2e-6,
    "cache_creation_input_token_cost_above_200k_tokens": 2.5e-6,
}
LONG = Usage(input_tokens=250_000, output_tokens=1_000, cached_read_tokens=10_000, cache_write_tokens=5_000)
SHORT = Usage(input_tokens=100_000, output_tokens=1_000, cached_read_tokens=10_000, cache_write_tokens=5_000)


def price(entry: dict, model: str = "m") -> ModelPrice:
    return price_from_map_entry(model, entry)


def test_a_flat_price_bills_each_kind_of_token() -> None:
    # 85,000 x $1/M + 10,000 x $0.1/M + 5,000 x $1.25/M + 1,000 x $2/M
    assert price(BASE).cost(SHORT) == pytest.approx(0.085 + 0.001 + 0.00625 + 0.002, abs=1e-15)


def test_missing_cache_rates_bill_as_input() -> None:
    p = price({"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6})
    # every prompt token at $1/M, cached or not
    assert p.cost(SHORT) == pytest.approx(0.1 + 0.002, abs=1e-15)


def test_above_the_threshold_every_token_bills_at_the_tier() -> None:
    p = price(TIERED)
    # 235,000 x $2/M + 10,000 x $0.2/M + 5,000 x $2.5/M + 1,000 x $4/M
    assert p.cost(LONG) == pytest.approx(0.47 + 0.002 + 0.0125 + 0.004, abs=1e-15)
    assert p.cost(SHORT) == pytest.approx(0.085 + 0.001 + 0.00625 + 0.002, abs=1e-15)


def test_a_tier_without_cache_rates_keeps_the_base_cache_rates() -> None:
    p = price({k: v for k, v in TIERED.items() if not k.startswith("cache_") or "above" not in k})
    # 235,000 x $2/M + 10,000 x $0.1/M + 5,000 x $1.25/M (the cache writes keep their rate) + 1,000 x $4/M
    assert p.cost(LONG) == pytest.approx(0.47 + 0.001 + 0.00625 + 0.004, abs=1e-15)


def test_a_tier_of_a_model_without_cache_rates_bills_cached_tokens_at_the_tier_input() -> None:
    entry = {k: v for k, v in TIERED.items() if not k.startswith("cache_")}
    # every prompt token at the tier's $2/M
    assert price(entry).cost(LONG) == pytest.approx(0.5 + 0.004, abs=1e-15)


def test_the_threshold_itself_is_below_the_tier_except_for_xai() -> None:
    at_threshold = Usage(input_tokens=200_000, output_tokens=1_000)
    assert price(TIERED).cost(at_threshold) == pytest.approx(0.2 + 0.002, abs=1e-15)
    xai = price({**TIERED, "litellm_provider": "xai"})
    assert xai.cost(at_threshold) == pytest.approx(0.4 + 0.004, abs=1e-15)
    assert xai.cost(Usage(input_tokens=199_999)) == pytest.approx(0.199999, abs=1e-15)


def test_two_thresholds_apply_in_turn() -> None:
    entry = {**TIERED, "input_cost_per_token_above_500k_tokens": 3e-6}
    p = price(entry)
    # above 500k: input $3/M; output and cache rates stay those of the 200k tier
    usage = Usage(input_tokens=600_000, output_tokens=1_000, cache_write_tokens=100_000)
    assert p.cost(usage) == pytest.approx(1.5 + 0.25 + 0.004, abs=1e-15)
    assert p.cost(LONG) == pytest.approx(0.47 + 0.002 + 0.0125 + 0.004, abs=1e-15)


RANGED = {
    "output_cost_per_token": 9e-6,
    "tiered_pricing": [
        {"range": [0, 32_000], "input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6},
        {"range": [32_000, 128_000], "input_cost_per_token": 3e-6, "cache_read_input_token_cost": 0.5e-6},
        {
            "range": [128_000, 1_000_000],
            "input_cost_per_token": 5e-6,
            "output_cost_per_token": 6e-6,
            "cache_creation_input_token_cost": 7e-6,
        },
    ],
}


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        (Usage(input_tokens=32_000, output_tokens=100), 0.032 + 0.0002),  # (0, 32k]: $1 in, $2 out
        (Usage(input_tokens=32_001, output_tokens=100), 0.096003 + 0.0009),  # (32k, 128k]: $3 in, the sheet's $9 out
        # cache reads at the row's $0.5/M, cache writes (no row rate) at the row's input rate
        (Usage(input_tokens=100_000, cached_read_tokens=20_000, cache_write_tokens=10_000), 0.21 + 0.01 + 0.03),
        (Usage(input_tokens=200_000, output_tokens=10, cache_write_tokens=1_000), 0.995 + 0.00006 + 0.007),
        (Usage(input_tokens=2_000_000, output_tokens=10), 10.0 + 0.00006),  # past the table: its last row
    ],
)
def test_a_range_table_prices_the_whole_request_at_one_row(usage: Usage, expected: float) -> None:
    assert price(RANGED).cost(usage) == pytest.approx(expected, abs=1e-12)


def test_a_request_with_no_prompt_uses_the_sheets_own_rates() -> None:
    p = price({**RANGED, "input_cost_per_token": 4e-6})
    assert p.cost(Usage(input_tokens=0, output_tokens=100)) == pytest.approx(0.0009, abs=1e-15)


# ------------------------------------------------------------------ batch
def test_batch_without_batch_rates_is_half_of_every_rate() -> None:
    # half of $1 in, $2 out, $0.1 read, $1.25 write per million
    assert price(BASE).cost(SHORT, batch=True) == pytest.approx((0.085 + 0.001 + 0.00625 + 0.002) / 2, abs=1e-15)
    p = price({"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6})
    assert p.cost(SHORT, batch=True) == pytest.approx((0.1 + 0.002) / 2, abs=1e-15)


def test_batch_cache_writes_are_half_the_cache_write_rate() -> None:
    """claude-sonnet-4-5's sheet: $3.75/M cache writes; a batch without batch rates bills $1.875/M."""
    p = price(
        {"input_cost_per_token": 3e-6, "output_cost_per_token": 15e-6, "cache_creation_input_token_cost": 3.75e-6}
    )
    assert p.cost(Usage(input_tokens=2_000, cache_write_tokens=2_000), batch=True) == pytest.approx(0.00375, abs=1e-15)


BATCH = {
    **BASE,
    "input_cost_per_token_batches": 0.4e-6,
    "output_cost_per_token_batches": 0.8e-6,
}


def test_batch_rates_from_the_map_and_their_cache_fallbacks() -> None:
    # cache rates without batch keys follow the batch input rate: 100,000 prompt tokens x $0.4/M + 1,000 x $0.8/M
    assert price(BATCH).cost(SHORT, batch=True) == pytest.approx(0.04 + 0.0008, abs=1e-15)
    entry = {**BATCH, "cache_read_input_token_cost_batches": 0.05e-6, "cache_creation_input_token_cost_batches": 0.6e-6}
    # 85,000 x $0.4/M + 10,000 x $0.05/M + 5,000 x $0.6/M + 1,000 x $0.8/M
    assert price(entry).cost(SHORT, batch=True) == pytest.approx(0.034 + 0.0005 + 0.003 + 0.0008, abs=1e-15)


def test_only_a_batch_output_rate_halves_the_input_side() -> None:
    entry = {**BASE, "output_cost_per_token_batches": 0.3e-6}
    # half of $1 in / $0.1 read / $1.25 write; the map's $0.3/M out
    assert price(entry).cost(SHORT, batch=True) == pytest.approx(0.0425 + 0.0005 + 0.003125 + 0.0003, abs=1e-15)


def test_long_context_batch_rates() -> None:
    entry = {
        **TIERED,
        **BATCH,
        "input_cost_per_token_above_200k_tokens_batches": 1e-6,
        "output_cost_per_token_above_200k_tokens_batches": 1.5e-6,
        "cache_read_input_token_cost_above_200k_tokens_batches": 0.09e-6,
        "cache_creation_input_token_cost_above_200k_tokens_batches": 1.1e-6,
    }
    p = price(entry)
    # 235,000 x $1/M + 10,000 x $0.09/M + 5,000 x $1.1/M + 1,000 x $1.5/M
    assert p.cost(LONG, batch=True) == pytest.approx(0.235 + 0.0009 + 0.0055 + 0.0015, abs=1e-15)
    # below the threshold: the flat batch rates (cache rates follow the batch input)
    assert p.cost(SHORT, batch=True) == pytest.approx(0.04 + 0.0008, abs=1e-15)
    assert p.rates(250_000, batch=True) == type(p.rates(0))(1e-6, 1.5e-6, 0.09e-6, 1.1e-6)


def test_a_tier_with_only_some_batch_rates_keeps_the_flat_batch_rate_for_the_rest() -> None:
    entry = {**TIERED, **BATCH, "output_cost_per_token_above_200k_tokens_batches": 1.5e-6}
    # input at the flat batch $0.4/M (the tier has no batch input rate); output at the tier's batch $1.5/M
    assert price(entry).cost(LONG, batch=True) == pytest.approx(0.1 + 0.0015, abs=1e-15)


# ------------------------------------------------------------------ service tiers
FLEXIBLE = {
    **BASE,
    "input_cost_per_token_flex": 0.6e-6,
    "output_cost_per_token_flex": 1.4e-6,
    "input_cost_per_token_priority": 1.8e-6,
}


def test_a_service_tier_bills_at_its_rates_falling_back_to_the_standard_ones() -> None:
    p = price(FLEXIBLE)
    usage = Usage(input_tokens=10_000, output_tokens=1_000)
    assert p.cost(usage, service_tier="flex") == pytest.approx(0.006 + 0.0014, abs=1e-15)
    assert p.cost(usage, service_tier="priority") == pytest.approx(0.018 + 0.002, abs=1e-15)
    assert p.cost(usage, service_tier="Priority") == pytest.approx(0.018 + 0.002, abs=1e-15)
    assert p.cost(usage, service_tier="fast") == pytest.approx(0.018 + 0.002, abs=1e-15)
    for standard in ("auto", "default", "scale", ""):
        assert p.cost(usage, service_tier=standard) == pytest.approx(0.01 + 0.002, abs=1e-15)
    assert p.cost(usage) == pytest.approx(0.01 + 0.002, abs=1e-15)
    assert p.for_service_tier("flex").input_per_token == 0.6e-6
    assert p.for_service_tier("ultrafast") is p and p.for_service_tier(None) is p
    plain = price(BASE)
    assert plain.for_service_tier("flex") is plain
    assert plain.cost(usage, service_tier="flex") == pytest.approx(0.01 + 0.002, abs=1e-15)


def test_a_batch_request_on_a_service_tier_bills_at_that_tiers_batch_rates() -> None:
    usage = Usage(input_tokens=10_000, output_tokens=1_000)
    # half of the flex rates ($0.6 in, $1.4 out per million)
    assert price(FLEXIBLE).cost(usage, batch=True, service_tier="flex") == pytest.approx(0.003 + 0.0007, abs=1e-15)


def test_a_service_tier_at_a_given_time_uses_its_off_peak_rates() -> None:
    entry = {
        **FLEXIBLE,
        "off_peak_pricing": {"input_cost_per_token": 0.2e-6, "hours_utc": "04:00-06:00"},
    }
    p = price(entry)
    usage = Usage(input_tokens=10_000, output_tokens=1_000)
    night = datetime(2026, 11, 18, 4, 30, tzinfo=timezone.utc)
    assert p.cost(usage, at=night, service_tier="flex") == pytest.approx(0.002 + 0.0014, abs=1e-15)
    assert p.cost(usage, at=night.replace(hour=8), service_tier="flex") == pytest.approx(0.006 + 0.0014, abs=1e-15)


# ------------------------------------------------------------------ off-peak
OFF_PEAK = {
    **BASE,
    "off_peak_pricing": {"input_cost_per_token": 0.5e-6, "output_cost_per_token": 1.5e-6, "hours_utc": "04:00-06:00"},
}


def test_off_peak_rates_apply_while_the_window_is_open() -> None:
    p = price(OFF_PEAK)
    night, day = datetime(2026, 11, 18, 5, tzinfo=timezone.utc), datetime(2026, 11, 18, 6, tzinfo=timezone.utc)
    # the sheet's cache rates stay: 85,000 x $0.5/M + 10,000 x $0.1/M + 5,000 x $1.25/M + 1,000 x $1.5/M
    assert p.cost(SHORT, at=night) == pytest.approx(0.0425 + 0.001 + 0.00625 + 0.0015, abs=1e-15)
    assert p.cost(SHORT, at=day) == pytest.approx(0.085 + 0.001 + 0.00625 + 0.002, abs=1e-15)


def test_off_peak_cache_rates_follow_off_peak_input_where_the_sheet_has_none() -> None:
    entry = {k: v for k, v in OFF_PEAK.items() if not k.startswith("cache_")}
    night = datetime(2026, 11, 18, 5, tzinfo=timezone.utc)
    # every prompt token at the off-peak $0.5/M
    assert price(entry).cost(SHORT, at=night) == pytest.approx(0.05 + 0.0015, abs=1e-15)


def test_off_peak_on_a_long_context_tier() -> None:
    entry = {
        **{k: v for k, v in TIERED.items() if not k.startswith("cache_")},
        **{"off_peak_pricing": OFF_PEAK["off_peak_pricing"]},
    }
    entry["cache_read_input_token_cost_above_200k_tokens"] = 0.2e-6
    night = datetime(2026, 11, 18, 5, tzinfo=timezone.utc)
    # above 200k the tier publishes a read rate ($0.2/M, kept) but no write rate (follows off-peak input $0.5/M)
    assert price(entry).cost(LONG, at=night) == pytest.approx(0.1175 + 0.002 + 0.0025 + 0.0015, abs=1e-15)
    # below it the sheet has no cache rates at all: every prompt token at $0.5/M
    assert price(entry).cost(SHORT, at=night) == pytest.approx(0.05 + 0.0015, abs=1e-15)


def test_off_peak_on_a_range_table_keeps_the_rows_cache_rates() -> None:
    entry = {**RANGED, "off_peak_pricing": {"input_cost_per_token": 0.4e-6, "hours_utc": "04:00-06:00"}}
    night = datetime(2026, 11, 18, 5, tzinfo=timezone.utc)
    usage = Usage(input_tokens=100_000, cached_read_tokens=20_000, cache_write_tokens=10_000)
    # the row's read rate ($0.5/M) and write rate (its input, $3/M) stay; uncached tokens at $0.4/M
    assert price(entry).cost(usage, at=night) == pytest.approx(0.028 + 0.01 + 0.03, abs=1e-15)


def test_off_peak_above_a_tier_without_any_cache_rates_bills_cached_tokens_at_off_peak_input() -> None:
    entry = {k: v for k, v in TIERED.items() if not k.startswith("cache_")}
    entry["off_peak_pricing"] = OFF_PEAK["off_peak_pricing"]
    night = datetime(2026, 11, 18, 5, tzinfo=timezone.utc)
    # every prompt token at the off-peak $0.5/M, output at $1.5/M
    assert price(entry).cost(LONG, at=night) == pytest.approx(0.125 + 0.0015, abs=1e-15)


def test_off_peak_above_a_tier_keeps_the_base_cache_write_rate_the_tier_does_not_replace() -> None:
    entry = {k: v for k, v in TIERED.items() if k != "cache_creation_input_token_cost_above_200k_tokens"}
    entry["off_peak_pricing"] = OFF_PEAK["off_peak_pricing"]
    night = datetime(2026, 11, 18, 5, tzinfo=timezone.utc)
    # 235,000 x $0.5/M + 10,000 x the tier's $0.2/M read + 5,000 x the sheet's $1.25/M write + 1,000 x $1.5/M
    assert price(entry).cost(LONG, at=night) == pytest.approx(0.1175 + 0.002 + 0.00625 + 0.0015, abs=1e-15)


def test_rates_default_to_an_empty_standard_request() -> None:
    assert price(RANGED).rates() == price(RANGED).rates(0) == type(price(RANGED).rates())(0.0, 9e-6, 0.0, 0.0)
    p = price(BATCH)
    assert p.rates() == type(p.rates())(1e-6, 2e-6, 0.1e-6, 1.25e-6)  # not the batch rates


def test_a_one_token_prompt_is_priced_by_the_tables_first_row() -> None:
    p = price({**RANGED, "input_cost_per_token": 4e-6})
    assert p.cost(Usage(input_tokens=1, output_tokens=100)) == pytest.approx(1e-6 + 0.0002, abs=1e-15)


def test_a_tier_that_changes_only_the_output_rate_keeps_the_input_rate() -> None:
    entry = {**TIERED, "output_cost_per_token_above_500k_tokens": 6e-6}
    usage = Usage(input_tokens=600_000, output_tokens=1_000)
    # input at the 200k tier's $2/M, output at the 500k tier's $6/M
    assert price(entry).cost(usage) == pytest.approx(1.2 + 0.006, abs=1e-15)


# ------------------------------------------------------------------ worst case
def test_worst_case_is_every_prompt_token_uncached_and_every_output_token_used() -> None:
    p = price(TIERED)
    assert p.worst_case_cost(1_000, 500) == pytest.approx(0.001 + 0.001, abs=1e-15)
    assert p.worst_case_cost(1_000) == pytest.approx(0.001 + 0.008, abs=1e-15)  # the sheet's 4,000-token ceiling
    assert p.worst_case_cost(250_000, 500) == pytest.approx(0.5 + 0.002, abs=1e-15)
    assert p.worst_case_cost(1_000, 500, batch=True) == pytest.approx(0.0005 + 0.0005, abs=1e-15)
    assert price(FLEXIBLE).worst_case_cost(1_000, 500, service_tier="flex") == pytest.approx(0.0006 + 0.0007, abs=1e-15)
    no_ceiling = price({"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6})
    assert no_ceiling.worst_case_cost(1_000) == pytest.approx(0.001, abs=1e-15)


def test_per_million_views() -> None:
    p = price(BASE)
    assert (p.input_per_million, p.output_per_million) == (pytest.approx(1.0), pytest.approx(2.0))
