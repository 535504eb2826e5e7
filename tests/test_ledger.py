"""costkit._ledger: integer money, UTC windows, the in-process counters and what a request spent.

Every expectation is written out by hand (nano-dollars, calendar dates, epoch seconds), never
computed with the code under test.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timezone

import pytest

from costkit import _ledger
from costkit._call import Call, Result, Usage
from costkit._ledger import (
    Hold,
    InProcessBudgetBackend,
    RequestSpend,
    Reservation,
    nano_to_usd,
    thresholds_crossed,
    usd_to_nano,
    window_of,
)
from costkit._scope import RequestScope
from costkit.errors import ConfigError
from costkit.records import CostRecord


def ts(*args: int) -> float:
    return datetime(*args, tzinfo=timezone.utc).timestamp()


# ------------------------------------------------------------------------------ nano-dollars
@pytest.mark.parametrize(
    ("usd", "nano"),
    [
        (0.013, 13_000_000),
        (1.0, 1_000_000_000),
        (1.2e-9, 1),  # a fraction of a nano-dollar below one half rounds down
        (1.5e-9, 2),  # one half rounds up (not to even)
        (2.5e-9, 3),
        (1.498e-9, 1),
        (0.1 + 0.2, 300_000_000),  # 0.30000000000000004: float noise is not a nano-dollar
        (0.0, 0),
    ],
)
def test_usd_to_nano_rounds_to_the_nearest_nano_dollar(usd: float, nano: int) -> None:
    assert usd_to_nano(usd) == nano


@pytest.mark.parametrize(
    ("usd", "nano"),
    [
        (1.2e-9, 2),  # a hold never under-covers: any fraction of a nano-dollar is one more
        (1.0e-9, 1),
        (0.013, 13_000_000),
        (0.1 + 0.2, 300_000_000),  # float noise (below 1/1000 nano-dollar) is not rounded up
        (1.0004e-9, 1),
        (1.002e-9, 2),
    ],
)
def test_usd_to_nano_rounds_holds_up(usd: float, nano: int) -> None:
    assert usd_to_nano(usd, round_up=True) == nano


def test_nano_to_usd() -> None:
    assert nano_to_usd(13_000_000) == 0.013
    assert nano_to_usd(1) == 1e-9
    assert nano_to_usd(0) == 0.0


# ------------------------------------------------------------------------------ windows
@pytest.fixture(autouse=True)
def _empty_window_memo() -> None:
    """Every test computes its windows: an answer memoized by an earlier test (or by a process the
    test runner forked from, as mutation testing does) would hide what the computation does."""
    _ledger._window_memo.clear()


@pytest.mark.parametrize(
    ("window", "now", "window_id", "ends"),
    [
        ("hour", ts(2026, 11, 22, 13, 59, 59), "2026-11-22T13", ts(2026, 11, 22, 14)),
        ("hour", ts(2026, 11, 22, 14), "2026-11-22T14", ts(2026, 11, 22, 15)),
        ("hour", ts(2026, 12, 31, 23, 30), "2026-12-31T23", ts(2027, 1, 1)),
        ("day", ts(2026, 11, 22, 23, 59, 59), "2026-11-22", ts(2026, 11, 23)),
        ("day", ts(2026, 11, 23), "2026-11-23", ts(2026, 11, 24)),
        ("day", ts(2024, 2, 28, 12), "2024-02-28", ts(2024, 2, 29)),
        # ISO weeks start on Monday: 2026-11-22 is a Sunday (week 47), 2026-11-23 a Monday (week 48)
        ("week", ts(2026, 11, 22, 18), "2026-W47", ts(2026, 11, 23)),
        ("week", ts(2026, 11, 23, 0), "2026-W48", ts(2026, 11, 30)),
        ("week", ts(2026, 11, 25, 9), "2026-W48", ts(2026, 11, 30)),
        ("week", ts(2021, 1, 2, 10), "2020-W53", ts(2021, 1, 4)),  # the ISO year of early January
        ("month", ts(2026, 11, 30, 23, 59), "2026-11", ts(2026, 12, 1)),
        ("month", ts(2026, 12, 15), "2026-12", ts(2027, 1, 1)),
        ("month", ts(2026, 1, 1), "2026-01", ts(2026, 2, 1)),
        ("total", ts(2026, 11, 22, 13), "total", None),
    ],
)
def test_window_of_names_the_utc_window_and_when_it_ends(
    window: str, now: float, window_id: str, ends: float | None
) -> None:
    assert window_of(window, now) == (window_id, ends)
    assert window_of(window, now) == (window_id, ends)  # answered again from the memo


def test_window_of_within_one_hour_is_memoized_per_window() -> None:
    """Two windows asked in the same hour each get their own answer (the memo is keyed by both)."""
    now = ts(2026, 11, 22, 13, 5)
    assert window_of("day", now)[0] == "2026-11-22"
    assert window_of("hour", now)[0] == "2026-11-22T13"
    assert window_of("month", now + 60)[0] == "2026-11"
    assert window_of("hour", now + 3600)[0] == "2026-11-22T14"


def test_window_of_keeps_answering_after_its_memo_is_cleared() -> None:
    start = ts(2026, 1, 1)
    for hour in range(600):  # more hours than the memo holds
        assert window_of("hour", start + hour * 3600 + 1)[1] == start + (hour + 1) * 3600


def test_an_unknown_window_names_the_field() -> None:
    with pytest.raises(ConfigError) as e:
        window_of("fortnight", ts(2026, 11, 22))
    assert e.value.field == "window"
    assert str(e.value) == "window: must be one of hour, day, week, month, total, got 'fortnight'"


@pytest.fixture
def far_east_local_time(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process's local time is UTC+14 (Kiribati): most UTC hours are on the next local day."""
    monkeypatch.setenv("TZ", "Pacific/Kiritimati")
    time.tzset()
    yield
    monkeypatch.delenv("TZ")
    time.tzset()


@pytest.mark.usefixtures("far_east_local_time")
@pytest.mark.parametrize(
    ("window", "window_id", "ends"),
    [
        ("hour", "2026-11-22T12", ts(2026, 11, 22, 13)),
        ("day", "2026-11-22", ts(2026, 11, 23)),
        ("week", "2026-W47", ts(2026, 11, 23)),
        ("month", "2026-11", ts(2026, 12, 1)),
    ],
)
def test_windows_are_utc_whatever_the_local_timezone(window: str, window_id: str, ends: float) -> None:
    # 2026-11-22 12:30 UTC is 2026-11-23 02:30 in Kiribati
    assert window_of(window, ts(2026, 11, 22, 12, 30)) == (window_id, ends)


# ------------------------------------------------------------------------------ the in-process counters
class Clock:
    def __init__(self) -> None:
        self.wall = ts(2026, 11, 22, 12)
        self.mono = 1000.0

    def time(self) -> float:
        return self.wall

    def monotonic(self) -> float:
        return self.mono


def backend(clock: Clock | None = None, **kw: float) -> InProcessBudgetBackend:
    clock = clock or Clock()
    return InProcessBudgetBackend(clock=clock.time, monotonic=clock.monotonic, **kw)


def hold(key: str = "k", limit: int = 100, amount: int = 10, expires_at: float | None = None) -> Hold:
    return Hold(key=key, limit=limit, amount=amount, expires_at=expires_at)


def test_a_hold_that_exactly_fills_the_limit_fits_and_one_more_unit_does_not() -> None:
    b = backend()
    assert b.reserve([hold(amount=60)], 60).ok
    assert b.reserve([hold(amount=40)], 60).ok  # 0 + 60 + 40 == 100
    refused = b.reserve([hold(amount=1)], 60)
    assert not refused.ok
    assert (refused.refused, refused.spent, refused.reserved) == (hold(amount=1), 0, 100)
    assert b.usage("k").reserved == 100


def test_spent_and_reserved_both_count_against_the_limit() -> None:
    b = backend()
    first = b.reserve([hold(amount=30)], 60)
    assert b.settle(first, [25]) == [(0, 25)]
    second = b.reserve([hold(amount=50)], 60)  # 25 spent + 50 held
    refused = b.reserve([hold(amount=26)], 60)  # 25 + 50 + 26 > 100
    assert not refused.ok and (refused.spent, refused.reserved) == (25, 50)
    assert b.reserve([hold(amount=25)], 60).ok  # 25 + 50 + 25 == 100
    assert b.settle(second, [50]) == [(25, 75)]


def test_a_reservation_holds_all_counters_or_none() -> None:
    b = backend()
    res = b.reserve([hold("a", limit=100, amount=10), hold("b", limit=5, amount=10)], 60)
    assert not res.ok and res.refused == hold("b", limit=5, amount=10)
    assert b.usage("a").reserved == 0 and b.usage("b").reserved == 0
    ok = b.reserve([hold("a", limit=100, amount=10), hold("b", limit=50, amount=7)], 60)
    assert ok.ok and ok.refused is None
    assert (b.usage("a").reserved, b.usage("b").reserved) == (10, 7)


def test_settle_replaces_the_hold_with_the_actual_amount_on_every_counter() -> None:
    b = backend()
    res = b.reserve([hold("a", amount=40), hold("b", amount=30)], 60)
    other = b.reserve([hold("a", amount=5)], 60)
    assert b.settle(res, [12, 9]) == [(0, 12), (0, 9)]
    assert (b.usage("a").spent, b.usage("a").reserved) == (12, 5)  # the other reservation still holds
    assert (b.usage("b").spent, b.usage("b").reserved) == (9, 0)
    assert b.settle(res, [3, 0]) == [(12, 15), (9, 9)]  # a second settle adds spend, holds nothing
    assert b.usage("a").reserved == 5
    b.settle(other, [5])
    assert (b.usage("a").spent, b.usage("a").reserved) == (20, 0)


def test_settle_needs_one_amount_per_hold() -> None:
    b = backend()
    res = b.reserve([hold("a"), hold("b")], 60)
    with pytest.raises(ValueError):
        b.settle(res, [5])
    with pytest.raises(ValueError):
        b.settle(res, [5, 5, 5])


def test_a_refused_reservation_names_itself_and_what_it_asked_for() -> None:
    b = backend()
    asked = (hold("a", amount=10), hold("b", limit=5, amount=10))
    refused = b.reserve(list(asked), 60)
    assert (refused.ok, refused.holds, refused.refused) == (False, asked, asked[1])
    assert isinstance(refused.id, str) and refused.id
    assert refused.id != b.reserve([hold("a")], 60).id


def test_settle_accepts_integral_floats() -> None:
    b = backend()
    res = b.reserve([hold(amount=10)], 60)
    assert b.settle(res, [7.0]) == [(0, 7)]  # type: ignore[list-item]
    assert isinstance(b.usage("k").spent, int)


def test_release_drops_only_that_reservation() -> None:
    b = backend()
    first = b.reserve([hold("a", amount=30), hold("b", amount=30)], 60)
    second = b.reserve([hold("a", amount=20)], 60)
    b.release(first)
    assert (b.usage("a").reserved, b.usage("b").reserved) == (20, 0)
    b.release(first)  # twice: nothing more to drop
    assert b.usage("a").reserved == 20
    assert b.usage("a").spent == 0 and b.usage("b").spent == 0
    b.release(Reservation(id="never-made", holds=(hold("unknown"),), ok=True))  # unknown counter: no error
    assert b.usage("unknown").reserved == 0
    b.release(second)
    assert b.usage("a").reserved == 0


def test_a_hold_lapses_after_its_ttl() -> None:
    clock = Clock()
    b = backend(clock)
    b.reserve([hold(amount=70)], 30)
    clock.mono += 29.999
    assert b.usage("k").reserved == 70
    assert not b.reserve([hold(amount=31)], 30).ok
    clock.mono += 0.001  # exactly the deadline: lapsed
    assert b.usage("k").reserved == 0
    assert b.reserve([hold(amount=100)], 30).ok


def test_a_lapsed_hold_is_purged_before_a_reservation_is_checked() -> None:
    clock = Clock()
    b = backend(clock)
    late = b.reserve([hold(amount=70)], 10)
    clock.mono += 10
    assert b.reserve([hold(amount=100)], 60).ok  # the lapsed 70 no longer counts
    assert b.settle(late, [20]) == [(0, 20)]  # a late settle still records the spend
    assert (b.usage("k").spent, b.usage("k").reserved) == (20, 100)


def test_ended_windows_are_swept_but_live_counters_and_holds_are_kept() -> None:
    clock = Clock()
    b = backend(clock, sweep_every_s=60)
    ended = hold("ended", expires_at=clock.wall - 1)
    live = hold("live", expires_at=clock.wall + 3600)
    forever = hold("forever", expires_at=None)
    held = hold("held", expires_at=clock.wall - 1)
    for h in (ended, live, forever):
        b.settle(b.reserve([h], 600), [7])
    b.reserve([held], 600)  # still in flight
    clock.mono += 60
    b.reserve([hold("other", expires_at=clock.wall + 3600)], 600)  # an operation after the sweep period
    assert b.usage("ended").spent == 0  # dropped: its window is over
    assert b.usage("live").spent == 7 and b.usage("forever").spent == 7
    assert b.usage("held").reserved == 10  # its window ended, but a hold is still in flight


def test_a_counter_is_kept_until_the_instant_after_its_window_ends() -> None:
    clock = Clock()
    b = backend(clock, sweep_every_s=60)
    b.settle(b.reserve([hold("ending", expires_at=clock.wall + 100)], 600), [7])
    clock.wall, clock.mono = clock.wall + 100, clock.mono + 60  # the very end of the window
    b.reserve([hold("x")], 600)
    assert b.usage("ending").spent == 7  # a settlement landing now still finds it
    clock.wall, clock.mono = clock.wall + 0.001, clock.mono + 60
    b.reserve([hold("x")], 600)
    assert b.usage("ending").spent == 0


def test_the_sweep_waits_for_its_period() -> None:
    clock = Clock()
    b = backend(clock, sweep_every_s=60)
    b.reserve([hold("first")], 600)  # the first operation sweeps (nothing to drop) and sets the next sweep
    old = hold("old", expires_at=clock.wall + 10)
    b.settle(b.reserve([old], 600), [7])
    clock.wall += 20  # the window is over ...
    clock.mono += 59.5
    b.reserve([hold("x")], 600)  # ... but the sweep period is not
    assert b.usage("old").spent == 7
    clock.mono += 0.5  # exactly the period: swept
    b.reserve([hold("x")], 600)
    assert b.usage("old").spent == 0
    clock.mono += 30
    assert b.settle(b.reserve([old], 600), [4]) == [(0, 4)]
    clock.mono += 29  # 59 s after the last sweep: not yet
    b.reserve([hold("x")], 600)
    assert b.usage("old").spent == 4


def test_forget_drops_counters() -> None:
    b = backend()
    b.settle(b.reserve([hold("a"), hold("b")], 60), [5, 5])
    b.forget(["a", "missing"])
    assert b.usage("a").spent == 0 and b.usage("b").spent == 5


async def test_the_async_methods_are_the_sync_ones() -> None:
    b = backend()
    res = await b.areserve([hold(amount=60)], 60)
    assert res.ok and b.usage("k").reserved == 60
    assert not (await b.areserve([hold(amount=41)], 60)).ok
    assert await b.asettle(res, [15]) == [(0, 15)]
    other = await b.areserve([hold(amount=30)], 60)
    await b.arelease(other)
    assert (b.usage("k").spent, b.usage("k").reserved) == (15, 0)


# ------------------------------------------------------------------------------ alerts
@pytest.mark.parametrize(
    ("before", "after", "limit", "expected"),
    [
        (0, 50, 100, [0.5]),  # reaching the threshold exactly crosses it
        (50, 60, 100, []),  # starting exactly on it does not cross it again
        (49, 80, 100, [0.5, 0.8]),
        (0, 100, 100, [0.5, 0.8, 1.0]),
        (80, 80, 100, []),
        (90, 70, 100, []),  # spend never goes down, but a smaller after crosses nothing
        (0, 10, 0, []),
        (0, 4, 10, []),
        (0, 5, 10, [0.5]),
        (0, 1, 1, [0.5, 0.8, 1.0]),  # the smallest limit there is: one nano-dollar or one token
    ],
)
def test_thresholds_crossed(before: int, after: int, limit: int, expected: list[float]) -> None:
    assert thresholds_crossed(before, after, limit, (0.5, 0.8, 1.0)) == expected


def test_thresholds_crossed_with_a_negative_limit_is_empty() -> None:
    assert thresholds_crossed(-20, -5, -10, (0.5,)) == []


# ------------------------------------------------------------------------------ what a request spent
def attempt(cost: float, input_tokens: int, output_tokens: int, n: int = 1) -> CostRecord:
    return CostRecord(
        request_id="r",
        attempt=n,
        kind="call",
        timestamp=0.0,
        provider="openai",
        requested_model="m",
        model="m",
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cost_usd=cost,
    )


def call(scope: RequestScope | None, stream: bool = False) -> Call:
    return Call(provider="openai", api="chat", requested_model="m", model="m", messages=(), stream=stream, scope=scope)


def test_a_request_spent_the_attempts_recorded_after_it_started() -> None:
    scope = RequestScope()
    scope.add(attempt(9.0, 900, 900))  # before this layer's turn: not its request's spend below it
    spend = RequestSpend(call(scope))
    scope.add(attempt(0.002, 100, 0, n=1))  # a failed attempt, billed for its input
    scope.add(attempt(0.0035, 120, 40, n=2))
    final = Result(usage=Usage(input_tokens=120, output_tokens=40), cost_usd=0.0035)
    assert spend.total(final) == (pytest.approx(0.0055, abs=1e-15), 260)
    assert spend.failed() == (pytest.approx(0.0055, abs=1e-15), 260)


def test_a_request_that_failed_before_any_attempt_spent_nothing() -> None:
    scope = RequestScope()
    scope.add(attempt(9.0, 900, 900))
    assert RequestSpend(call(scope)).failed() == (0.0, 0)
    assert RequestSpend(call(None)).failed() == (0.0, 0)


def test_a_streamed_answer_adds_its_final_cost_to_the_failed_attempts_before_it() -> None:
    """A stream's own record is written when it ends, after the settle reads the scope."""
    scope = RequestScope()
    scope.add(attempt(9.0, 900, 900))
    spend = RequestSpend(call(scope, stream=True))
    scope.add(attempt(0.002, 100, 0))  # the first attempt failed
    final = Result(usage=Usage(input_tokens=100, output_tokens=30), cost_usd=0.0031)
    assert spend.total(final) == (pytest.approx(0.0051, abs=1e-15), 100 + 130)


def test_without_a_scope_the_answer_says_what_it_cost() -> None:
    spend = RequestSpend(call(None))
    final = Result(usage=Usage(input_tokens=100, output_tokens=30), cost_usd=0.0031)
    assert spend.total(final) == (0.0031, 130)
    assert spend.total(Result(usage=Usage(input_tokens=7, output_tokens=3))) == (0.0, 10)  # unpriced: $0


def test_a_cache_hit_spent_nothing() -> None:
    hit = Result(usage=Usage(input_tokens=100, output_tokens=30), cost_usd=0.0031, source="exact")
    assert RequestSpend(call(None)).total(hit) == (0.0, 0)
    scope = RequestScope()
    assert RequestSpend(call(scope, stream=True)).total(hit) == (0.0, 0)
