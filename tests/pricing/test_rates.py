"""costkit.pricing.rates: what each kind of token costs, and when off-peak windows are open.

Rates and windows are written out by hand; expected dollars are the hand products in the comments.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from costkit._call import Usage
from costkit.pricing import OffPeak, Rates, price_from_map_entry
from costkit.pricing import rates as module


def test_each_kind_of_token_bills_at_its_own_rate() -> None:
    rates = Rates(input=2e-6, output=7e-6, cache_read=0.3e-6, cache_write=5e-6)
    usage = Usage(input_tokens=10_000, output_tokens=1_000, cached_read_tokens=3_000, cache_write_tokens=2_000)
    # 5,000 uncached x $2/M + 3,000 read x $0.3/M + 2,000 written x $5/M + 1,000 out x $7/M
    assert rates.cost(usage) == pytest.approx(0.01 + 0.0009 + 0.01 + 0.007, abs=1e-15)


def w(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


def at(day: int, hhmm: str) -> datetime:
    """2026-11-16 is a Monday: day 0 = Monday ... 6 = Sunday."""
    h, m = hhmm.split(":")
    return datetime(2026, 11, 16 + day, int(h), int(m), tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("when", "is_open"),
    [
        ("03:59", False),
        ("04:00", True),  # the start minute is in the window
        ("05:59", True),
        ("06:00", False),  # the end minute is not
        ("22:00", True),  # 22:00-02:00 wraps past midnight
        ("23:59", True),
        ("00:00", True),
        ("01:59", True),
        ("02:00", False),
        ("12:00", False),
    ],
)
def test_windows_include_their_start_minute_and_not_their_end_minute(when: str, is_open: bool) -> None:
    off = OffPeak(input_per_token=1e-6, rules=((None, ((w("04:00"), w("06:00")), (w("22:00"), w("02:00")))),))
    assert off.is_open(at(2, when)) is is_open


def test_a_window_from_a_time_to_itself_is_the_whole_day() -> None:
    off = OffPeak(input_per_token=1e-6, rules=((None, ((w("07:00"), w("07:00")),)),))
    assert all(off.is_open(at(0, f"{h:02d}:{m:02d}")) for h in range(24) for m in (0, 59))


def test_a_naive_time_is_read_as_utc_and_an_aware_one_is_converted() -> None:
    off = OffPeak(input_per_token=1e-6, rules=((None, ((w("04:00"), w("06:00")),)),))
    assert off.is_open(datetime(2026, 11, 18, 4, 30))
    assert not off.is_open(datetime(2026, 11, 18, 3, 30))
    plus_two = timezone(timedelta(hours=2))
    assert off.is_open(datetime(2026, 11, 18, 6, 30, tzinfo=plus_two))  # 04:30 UTC
    assert not off.is_open(datetime(2026, 11, 18, 4, 30, tzinfo=plus_two))  # 02:30 UTC


def test_weekday_rules_pick_iso_weekdays() -> None:
    off = OffPeak(
        input_per_token=1e-6,
        rules=((frozenset({6, 7}), ((0, 0),)), (frozenset({1, 2, 3, 4, 5}), ((w("04:00"), w("06:00")),))),
    )
    for day in range(7):
        weekend = day >= 5
        assert off.is_open(at(day, "12:00")) is weekend, day
        assert off.is_open(at(day, "04:30")) is True, day


@pytest.mark.parametrize("tz", [None, "Asia/Shanghai"])
def test_now_agrees_with_an_explicit_time_on_every_day_of_two_weeks(
    monkeypatch: pytest.MonkeyPatch, tz: str | None
) -> None:
    """The per-call path reads the clock without datetime: each single weekday must come out right."""
    start = at(0, "00:00")
    for day in range(14):
        off = OffPeak(input_per_token=1e-6, rules=((frozenset({day % 7 + 1}), ((0, 0),)),), weekday_timezone=tz)
        for offset_h in (1, 13, 20):
            moment = start + timedelta(days=day, hours=offset_h)
            monkeypatch.setattr(module.time, "time", lambda m=moment: m.timestamp())
            assert off.is_open() == off.is_open(moment), (day, offset_h)


def test_now_opens_each_weekday_on_its_own_day(monkeypatch: pytest.MonkeyPatch) -> None:
    start = at(0, "00:00")  # a Monday (ISO 1)
    for day in range(14):
        monkeypatch.setattr(module.time, "time", lambda d=day: (start + timedelta(days=d, hours=12)).timestamp())
        for iso in range(1, 8):
            off = OffPeak(input_per_token=1e-6, rules=((frozenset({iso}), ((0, 0),)),))
            assert off.is_open() is (iso == day % 7 + 1), (day, iso)


def test_weekdays_are_read_in_the_rules_timezone() -> None:
    # Friday 17:00 UTC is already Saturday 01:00 in Shanghai
    off = OffPeak(input_per_token=1e-6, rules=((frozenset({6}), ((0, 0),)),), weekday_timezone="Asia/Shanghai")
    assert off.is_open(at(4, "17:00")) and not off.is_open(at(4, "15:00"))
    unknown = OffPeak(input_per_token=1e-6, rules=((frozenset({6}), ((0, 0),)),), weekday_timezone="Mars/Olympus")
    assert not unknown.is_open(at(4, "17:00"))  # an unknown zone reads weekdays in UTC
    assert unknown.is_open(at(5, "01:00"))


def test_the_minute_of_now_is_the_utc_minute(monkeypatch: pytest.MonkeyPatch) -> None:
    off = OffPeak(input_per_token=1e-6, rules=((None, ((w("04:00"), w("06:00")),)),))
    for when, expected in (("03:59", False), ("04:00", True), ("05:59", True), ("06:00", False)):
        moment = at(3, when) + timedelta(seconds=30)
        monkeypatch.setattr(module.time, "time", lambda m=moment: m.timestamp())
        assert off.is_open() is expected, when


def test_off_peak_rates_replace_the_standard_ones_and_missing_cache_rates_follow_off_peak_input() -> None:
    standard = Rates(input=4e-6, output=8e-6, cache_read=1e-6, cache_write=5e-6)
    full = OffPeak(
        input_per_token=2e-6, output_per_token=3e-6, cache_read_per_token=0.5e-6, cache_write_per_token=2.5e-6
    )
    assert full.apply(standard, read_missing=False, write_missing=False) == Rates(2e-6, 3e-6, 0.5e-6, 2.5e-6)
    only_input = OffPeak(input_per_token=2e-6)
    assert only_input.apply(standard, read_missing=False, write_missing=False) == Rates(2e-6, 8e-6, 1e-6, 5e-6)
    # the model publishes no cache rates: those tokens bill at the (off-peak) input rate
    assert only_input.apply(standard, read_missing=True, write_missing=False) == Rates(2e-6, 8e-6, 2e-6, 5e-6)
    assert only_input.apply(standard, read_missing=False, write_missing=True) == Rates(2e-6, 8e-6, 1e-6, 2e-6)
    assert OffPeak().apply(standard, read_missing=True, write_missing=True) == Rates(4e-6, 8e-6, 4e-6, 4e-6)


def _off_peak(hours: object) -> OffPeak | None:
    entry = {"input_cost_per_token": 4e-6, "off_peak_pricing": {"input_cost_per_token": 1e-6, "hours_utc": hours}}
    return price_from_map_entry("m", entry).off_peak


@pytest.mark.parametrize(
    ("hours", "windows"),
    [
        ("04:00-06:30", ((240, 390),)),
        (["00:00-01:00", " 22:15 - 23:59 "], ((0, 60), (1335, 1439))),
        (
            ["bad", "04:00-06:00", "25:00-26:00", "04:60-05:00", "1-2-3", 7, "04-05", "07:00-08:00"],
            ((240, 360), (420, 480)),
        ),
        ("23:59-00:00", ((1439, 0),)),
    ],
)
def test_hours_are_read_as_utc_minutes_and_malformed_windows_are_skipped(hours: object, windows: tuple) -> None:
    off = _off_peak(hours)
    assert off is not None and off.rules == ((None, windows),)


def test_a_block_without_valid_hours_never_opens() -> None:
    for hours in (None, 42, ["bad"], "24:00-01:00"):
        off = _off_peak(hours)
        assert off is not None and off.rules == ()
        assert not off.is_open(at(0, "04:00"))


def test_times_are_utc_whatever_the_local_timezone(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        off = OffPeak(
            input_per_token=1e-6, rules=((frozenset({3}), ((w("04:00"), w("06:00")),)),), weekday_timezone="UTC"
        )
        assert off.is_open(datetime(2026, 11, 18, 4, 30))  # naive: UTC, a Wednesday
        assert not off.is_open(datetime(2026, 11, 18, 13, 30))
        assert off.is_open(datetime(2026, 11, 18, 4, 30, tzinfo=timezone.utc))
        assert not off.is_open(datetime(2026, 11, 18, 23, 30))  # 08:30 Thursday in Tokyo, still Wednesday in UTC
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
