"""Budget counters: reserve / settle / release, in-process and in a real Redis."""

from __future__ import annotations

import random
import threading
import time
import warnings
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from costkit._ledger import Hold, InProcessBudgetBackend, Reservation, thresholds_crossed, usd_to_nano, window_of
from costkit._warn import CostkitWarning, reset_warnings
from costkit.errors import ConfigError
from costkit.policies.budget_backends import RedisBudgetBackend

KEYS = ("global", "tenant=a", "feature=x")
LIMITS = {"global": 1_000, "tenant=a": 600, "feature=x": 450}


def holds(amounts: dict[str, int]) -> list[Hold]:
    return [Hold(key=k, limit=LIMITS[k], amount=a) for k, a in amounts.items()]


# ----------------------------------------------------------------------------- units and windows
def test_usd_to_nano_is_exact_and_rounds_holds_up() -> None:
    assert usd_to_nano(1.0) == 1_000_000_000
    assert usd_to_nano(0.1) == 100_000_000  # no float drift
    assert usd_to_nano(0.3) == 300_000_000
    assert usd_to_nano(1.5e-10) == 0
    assert usd_to_nano(1.5e-10, round_up=True) == 1
    assert sum(usd_to_nano(0.1) for _ in range(10)) == usd_to_nano(1.0)


def test_windows_are_utc() -> None:
    t = 1_795_000_000.0  # 2026-11-18T11:06:40Z
    assert window_of("day", t) == ("2026-11-18", 1_795_046_400.0)
    assert window_of("hour", t) == ("2026-11-18T11", 1_795_003_200.0)
    assert window_of("month", t) == ("2026-11", 1_796_083_200.0)  # 2026-12-01T00:00Z
    assert window_of("week", t)[0] == "2026-W47"
    assert window_of("total", t) == ("total", None)
    assert window_of("month", 1_796_083_199.0)[0] == "2026-11"
    assert window_of("month", 1_796_083_200.0)[0] == "2026-12"
    assert window_of("month", 1_798_761_600.0)[0] == "2027-01"  # December rolls the year
    with pytest.raises(ConfigError) as e:
        window_of("fortnight", t)
    assert e.value.field == "window"


def test_thresholds_crossed_once() -> None:
    assert thresholds_crossed(0, 500, 1000, (0.5, 0.8)) == [0.5]
    assert thresholds_crossed(500, 900, 1000, (0.5, 0.8)) == [0.8]
    assert thresholds_crossed(100, 990, 1000, (0.5, 0.8, 0.95)) == [0.5, 0.8, 0.95]
    assert thresholds_crossed(900, 900, 1000, (0.5, 0.8)) == []


# ----------------------------------------------------------------------------- in-process
def test_reserve_checks_all_counters_at_once() -> None:
    b = InProcessBudgetBackend()
    r1 = b.reserve(holds({"global": 400, "tenant=a": 400}), ttl_s=60)
    assert r1.ok
    r2 = b.reserve(holds({"global": 300, "tenant=a": 300}), ttl_s=60)  # tenant=a: 400 + 300 > 600
    assert not r2.ok and r2.refused is not None and r2.refused.key == "tenant=a"
    assert (r2.spent, r2.reserved) == (0, 400)
    # nothing of the refused reservation was held on the counter that had room
    assert b.usage("global").reserved == 400
    assert b.settle(r1, [250, 250]) == [(0, 250), (0, 250)]
    assert b.usage("global").spent == 250 and b.usage("global").reserved == 0
    r3 = b.reserve(holds({"tenant=a": 350}), ttl_s=60)
    assert r3.ok
    b.release(r3)
    assert b.usage("tenant=a").reserved == 0 and b.usage("tenant=a").spent == 250


def test_reservations_expire_after_their_ttl() -> None:
    now = [100.0]
    b = InProcessBudgetBackend(monotonic=lambda: now[0])
    r = b.reserve(holds({"feature=x": 450}), ttl_s=30)
    assert r.ok
    assert not b.reserve(holds({"feature=x": 1}), ttl_s=30).ok
    now[0] += 31  # the holder crashed: its hold lapses
    assert b.usage("feature=x").reserved == 0
    assert b.reserve(holds({"feature=x": 450}), ttl_s=30).ok
    # a late settle of the lapsed reservation still records the spend, once
    b.settle(r, [100])
    assert b.usage("feature=x").spent == 100 and b.usage("feature=x").reserved == 450


def test_ended_windows_are_swept() -> None:
    wall, mono = [1000.0], [0.0]
    b = InProcessBudgetBackend(clock=lambda: wall[0], monotonic=lambda: mono[0], sweep_every_s=10)
    old = Hold(key="day|old", limit=10, amount=1, expires_at=1500.0)
    b.settle(b.reserve([old], 60), [1])
    wall[0], mono[0] = 2000.0, 100.0
    b.reserve([Hold(key="day|new", limit=10, amount=1, expires_at=90_000.0)], 60)
    assert b.usage("day|old").spent == 0  # dropped with its window
    assert b.usage("day|new").reserved == 1


def test_threads_never_overrun_and_never_lose_a_unit() -> None:
    b = InProcessBudgetBackend()
    limit = 100_000
    settled: list[int] = []
    refused_with_room: list[tuple[int, int]] = []
    lock = threading.Lock()

    def worker(seed: int) -> None:
        rnd = random.Random(seed)
        for _ in range(400):
            amount = rnd.randint(1, 900)
            r = b.reserve([Hold(key="k", limit=limit, amount=amount)], 60)
            if not r.ok:
                if r.spent + r.reserved + amount <= limit:
                    refused_with_room.append((r.spent, r.reserved))
                continue
            if rnd.random() < 0.2:
                b.release(r)
                continue
            actual = rnd.randint(0, amount)
            b.settle(r, [actual])
            with lock:
                settled.append(actual)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    state = b.usage("k")
    assert state.reserved == 0
    assert state.spent == sum(settled) <= limit
    assert refused_with_room == []


# ----------------------------------------------------------------------------- property-based
class LedgerMachine(RuleBasedStateMachine):
    """Any interleaving of reserve/settle/release/expiry matches a simple model, to the unit."""

    backend: Any
    reservations = Bundle("reservations")

    def make_backend(self) -> Any:
        self.now = 0.0
        return InProcessBudgetBackend(monotonic=lambda: self.now)

    def expire_all(self) -> None:
        self.now += 1_000.0

    @initialize()
    def setup(self) -> None:
        self.backend = self.make_backend()
        self.spent = dict.fromkeys(KEYS, 0)
        self.live: dict[str, dict[str, int]] = {}  # reservation id -> key -> amount still held

    def reserved(self, key: str) -> int:
        return sum(h.get(key, 0) for h in self.live.values())

    @rule(
        target=reservations,
        amounts=st.dictionaries(st.sampled_from(KEYS), st.integers(0, 700), min_size=1, max_size=3),
    )
    def reserve(self, amounts: dict[str, int]) -> Any:
        fits = all(self.spent[k] + self.reserved(k) + a <= LIMITS[k] for k, a in amounts.items())
        r = self.backend.reserve(holds(amounts), ttl_s=600)
        assert r.ok == fits
        if not r.ok:
            k = r.refused.key
            assert (r.spent, r.reserved) == (self.spent[k], self.reserved(k))
            assert r.spent + r.reserved + r.refused.amount > r.refused.limit
            return None
        self.live[r.id] = dict(amounts)
        return r

    @rule(r=consumes(reservations), fraction=st.floats(0, 1))
    def settle(self, r: Any, fraction: float) -> None:
        if r is None or r.id not in self.live:  # refused, or its holder crashed (it never settles)
            return
        actual = [int(h.amount * fraction) for h in r.holds]
        changes = self.backend.settle(r, actual)
        for h, a, (before, after) in zip(r.holds, actual, changes):
            assert before == self.spent[h.key] and after == before + a
            self.spent[h.key] += a
        self.live.pop(r.id, None)

    @rule(r=consumes(reservations))
    def release(self, r: Any) -> None:
        if r is None or r.id not in self.live:
            return
        self.backend.release(r)
        self.live.pop(r.id, None)

    @rule()
    def crash_and_expire(self) -> None:
        # every holder died: their holds lapse after the TTL, settled spend stays
        self.expire_all()
        self.live.clear()

    @invariant()
    def counters_match_the_model(self) -> None:
        if not hasattr(self, "backend"):
            return
        for k in KEYS:
            state = self.backend.usage(k)
            assert state.spent == self.spent[k]
            assert state.reserved == self.reserved(k)
            assert state.spent + state.reserved <= LIMITS[k]


TestInProcessLedger = LedgerMachine.TestCase
TestInProcessLedger.settings = settings(max_examples=100, stateful_step_count=30, deadline=None)


@pytest.mark.redis
def test_redis_ledger_matches_the_model(redis_url: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)

    class RedisLedger(LedgerMachine):
        def make_backend(self) -> Any:
            client.flushall()
            self.prefix = f"t{random.getrandbits(40)}"
            return RedisBudgetBackend(redis_url, prefix=self.prefix)

        def expire_all(self) -> None:
            # lapse every hold by moving its deadline into the past, as a crash + TTL would
            for key in client.scan_iter("*:h"):
                members: list[bytes] = client.zrange(key, 0, -1)  # type: ignore[assignment]
                if members:
                    client.zadd(key, dict.fromkeys(members, 0))

    run_state_machine_as_test(
        RedisLedger,
        settings=settings(
            max_examples=25, stateful_step_count=25, deadline=None, suppress_health_check=list(HealthCheck)
        ),
    )
    client.close()


# ----------------------------------------------------------------------------- Redis
@pytest.mark.redis
def test_redis_reserve_settle_release(redis_url: str) -> None:
    b = RedisBudgetBackend(redis_url, prefix="unit")
    r1 = b.reserve(holds({"global": 400, "tenant=a": 400}), ttl_s=60)
    assert r1.ok
    r2 = b.reserve(holds({"global": 300, "tenant=a": 300}), ttl_s=60)
    assert not r2.ok and r2.refused is not None and r2.refused.key == "tenant=a" and r2.reserved == 400
    assert b.usage("global").reserved == 400
    assert b.settle(r1, [250, 260]) == [(0, 250), (0, 260)]
    assert (b.usage("tenant=a").spent, b.usage("tenant=a").reserved) == (260, 0)
    r3 = b.reserve(holds({"tenant=a": 340}), ttl_s=60)
    assert r3.ok
    b.release(r3)
    assert b.usage("tenant=a").reserved == 0
    b.close()


@pytest.mark.redis
def test_redis_holds_lapse_after_ttl_and_window_keys_expire(redis_url: str) -> None:
    import redis

    b = RedisBudgetBackend(redis_url, prefix="ttl")
    ends = time.time() + 3600
    r = b.reserve([Hold(key="day|x", limit=100, amount=100, expires_at=ends)], ttl_s=0.05)
    assert r.ok and b.usage("day|x").reserved == 100
    time.sleep(0.1)
    assert b.usage("day|x").reserved == 0  # a crashed holder does not keep the budget
    assert b.reserve([Hold(key="day|x", limit=100, amount=100, expires_at=ends)], ttl_s=60).ok
    client = redis.Redis.from_url(redis_url)
    ttl = client.ttl(b.key("day|x"))
    assert 3600 < ttl <= 3600 + 86400  # kept a day past the window's end, then dropped
    total = b.reserve([Hold(key="total|x", limit=100, amount=1)], ttl_s=60)
    assert total.ok and client.ttl(b.key("total|x")) == -1
    client.close()


@pytest.mark.redis
def test_keys_share_one_cluster_slot(redis_url: str) -> None:
    b = RedisBudgetBackend(redis_url, prefix="app:budget")
    assert b.key("day|global|2026-11-22|usd") == "{app:budget}:day|global|2026-11-22|usd"


class _DownClient:
    """A Redis client whose server is gone: every script call fails."""

    def __init__(self) -> None:
        self.calls = 0

    def register_script(self, _src: str) -> Any:
        def run(**_kw: Any) -> Any:
            import redis

            self.calls += 1
            raise redis.ConnectionError("Connection refused")

        return run


def test_fail_open_lets_calls_through_unenforced_and_backs_off() -> None:
    client = _DownClient()
    b = RedisBudgetBackend(client=client, on_redis_error="open", retry_after_s=60)
    with pytest.warns(CostkitWarning, match="unavailable"):
        r = b.reserve(holds({"global": 10}), ttl_s=60)
    assert r.ok and not r.enforced and "ConnectionError" in (r.error or "")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once only
        r2 = b.reserve(holds({"global": 10}), ttl_s=60)
    assert r2.ok and not r2.enforced
    assert client.calls == 1  # marked down: the second call did not pay another timeout
    assert b.unenforced == 2


def test_fail_closed_refuses() -> None:
    b = RedisBudgetBackend(client=_DownClient(), on_redis_error="closed")
    with pytest.warns(CostkitWarning):
        r = b.reserve(holds({"global": 10}), ttl_s=60)
    assert not r.ok and not r.enforced and r.refused is None


def test_settle_while_down_is_counted_as_dropped() -> None:
    b = RedisBudgetBackend(client=_DownClient(), retry_after_s=0)
    with pytest.warns(CostkitWarning):
        r = b.reserve(holds({"global": 10}), ttl_s=60)
    assert b.settle(r, [5]) == [(0, 0)]
    assert b.dropped == 1


def test_unreachable_server_fails_within_the_socket_timeout() -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    b = RedisBudgetBackend(f"redis://127.0.0.1:{port}/0", on_redis_error="closed", timeout_s=0.2)
    with pytest.warns(CostkitWarning):
        r = b.reserve(holds({"global": 10}), ttl_s=60)
    assert not r.ok and not r.enforced


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({}, "url"),
        ({"url": "redis://x", "client": object()}, "url"),
        ({"url": "redis://x", "on_redis_error": "maybe"}, "on_redis_error"),
        ({"url": "redis://x", "timeout_s": 0}, "timeout_s"),
        ({"url": "redis://x", "timeout_s": float("inf")}, "timeout_s"),
        ({"url": "redis://x", "retry_after_s": -1}, "retry_after_s"),
        ({"url": "redis://x", "prefix": "a{b}"}, "prefix"),
        ({"url": "http://x"}, "url"),
        ({"client": object()}, "client"),
    ],
)
def test_redis_backend_config_errors(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as e:
        RedisBudgetBackend(**kwargs)
    assert e.value.field == field


@pytest.mark.redis
def test_redis_counts_large_budgets_exactly(redis_url: str) -> None:
    b = RedisBudgetBackend(redis_url, prefix="big")
    big = usd_to_nano(2_000_000.0)  # 2e15 nano-dollars: Lua would print such a number as 2e+15
    h = [Hold(key="k", limit=big, amount=usd_to_nano(1_000_000.123456789))]
    r = b.reserve(h, ttl_s=60)
    assert r.ok and b.usage("k").reserved == 1_000_000_123_456_789
    assert b.settle(r, [1_000_000_123_456_789]) == [(0, 1_000_000_123_456_789)]
    r2 = b.reserve(h, ttl_s=60)
    assert not r2.ok and r2.spent == 1_000_000_123_456_789


def test_a_redis_that_never_answers_costs_one_timeout_not_a_hang() -> None:
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)  # accepts connections (the kernel does), never replies
    port = server.getsockname()[1]
    try:
        b = RedisBudgetBackend(f"redis://127.0.0.1:{port}/0", on_redis_error="open", timeout_s=0.2, retry_after_s=60)
        with pytest.warns(CostkitWarning, match="Timeout"):
            r = b.reserve(holds({"global": 10}), ttl_s=60)
        assert r.ok and not r.enforced
        b.settle(r, [5])  # not enforced: nothing held; Redis is marked down, not asked again
        assert b.reserve(holds({"global": 10}), ttl_s=60).error == "redis marked down"
    finally:
        server.close()


@given(st.floats(0, 1e6, allow_nan=False), st.floats(0, 1e6, allow_nan=False))
def test_a_hold_never_under_covers_a_cost_within_it(actual: float, worst: float) -> None:
    if actual <= worst:
        assert usd_to_nano(actual) <= usd_to_nano(worst, round_up=True)
    assert usd_to_nano(actual, round_up=True) - usd_to_nano(actual) <= 1


# ------------------------------------------------------------------ counters lost, cancelled reservations


@pytest.mark.redis
def test_counters_lost_to_a_flush_are_detected_and_closed_refuses(redis_url: str) -> None:
    """The reported overspend: spend reached 121% of the limit after a Redis restart without persistence."""
    client = redis.Redis.from_url(redis_url)
    closed = RedisBudgetBackend(redis_url, prefix="lost", on_redis_error="closed")
    h = holds({"global": 100})
    r = closed.reserve(h, ttl_s=60)
    closed.settle(r, [90])
    assert closed.usage("global").spent == 90
    client.flushall()  # what a restart without persistence does to the counters
    with pytest.warns(CostkitWarning, match="counters of 'lost' were lost"):
        after = closed.reserve(h, ttl_s=60)
    assert (after.ok, after.enforced, after.error) == (False, False, "counters_lost")
    assert closed.reserve(h, ttl_s=60).error == "counters_lost" and closed.resets == 1
    closed.acknowledge_reset()
    assert closed.reserve(h, ttl_s=60).ok


@pytest.mark.redis
def test_counters_lost_fail_open_warns_counts_and_goes_on(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    a = RedisBudgetBackend(redis_url, prefix="lost2", on_redis_error="open")
    b = RedisBudgetBackend(redis_url, prefix="lost2", on_redis_error="open")
    h = holds({"global": 100})
    a.settle(a.reserve(h, ttl_s=60), [10])
    b.settle(b.reserve(h, ttl_s=60), [10])
    client.flushall()
    with pytest.warns(CostkitWarning, match="were lost"):
        assert a.reserve(h, ttl_s=60).ok  # a starts a new epoch
    reset_warnings()
    with pytest.warns(CostkitWarning, match="were lost"):
        assert b.reserve(h, ttl_s=60).ok  # b finds a's new epoch, not its own: lost too
    assert (a.resets, b.resets) == (1, 1)
    assert a.reserve(h, ttl_s=60).ok and a.resets == 1  # once adopted, no more resets


@pytest.mark.redis
def test_a_redis_without_persistence_is_warned_about(redis_url: str) -> None:
    """The session's Redis runs with --appendonly no --save '': budgets there are one restart from $0."""
    b = RedisBudgetBackend(redis_url, prefix="persist")
    with pytest.warns(CostkitWarning, match="appendonly yes"):
        b.reserve(holds({"global": 100}), ttl_s=60)


@pytest.mark.redis
async def test_a_reservation_whose_task_is_cancelled_is_released(redis_url: str) -> None:
    """The reported leak: cancelled while the reservation ran in a worker thread, held until its TTL (900 s)."""
    import asyncio
    import time

    b = RedisBudgetBackend(redis_url, prefix="cancel")
    real = b.reserve

    def slow_reserve(hs: Any, ttl_s: float) -> Any:
        time.sleep(0.3)  # the task is cancelled meanwhile; the reservation still happens
        return real(hs, ttl_s)

    b.reserve = slow_reserve  # type: ignore[method-assign]
    task = asyncio.ensure_future(b.areserve(holds({"global": 100}), 900))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(500):  # the orphan is released when the thread is done (a loaded machine: up to 10 s)
        await asyncio.sleep(0.02)
        if b.usage("global").reserved == 0 and b.usage("global") is not None and _held_once(b):
            break
    assert b.usage("global").reserved == 0 and _held_once(b)


def _held_once(b: RedisBudgetBackend) -> bool:
    """The slow reservation did reach Redis (so the release, not a no-op, is what freed it)."""
    client = b.client
    return client.get(b.key("epoch")) is not None


# ------------------------------------------------------------------ the arguments the scripts get and what comes back
@pytest.mark.redis
def test_a_window_counter_is_kept_exactly_a_day_past_its_end_and_a_hold_for_its_ttl(redis_url: str) -> None:
    b = RedisBudgetBackend(redis_url, prefix="args")
    ends = float(int(time.time()) + 3600)
    r = b.reserve([Hold(key="day|y", limit=100, amount=10, expires_at=ends)], ttl_s=100)
    assert r.ok
    client = redis.Redis.from_url(redis_url)
    assert client.expiretime(b.key("day|y")) == int(ends) + 86400
    score = client.zscore(b.key("day|y") + ":h", r.id)
    now_ms = int(time.time() * 1000)
    assert score is not None and 99_000 <= score - now_ms <= 100_000  # the hold's deadline: now + 100 s
    b.settle(r, [4])
    assert client.expiretime(b.key("day|y")) == int(ends) + 86400
    client.close()


@pytest.mark.redis
def test_a_closed_backend_that_lost_its_counters_keeps_refusing_with_nothing_held(redis_url: str) -> None:
    closed = RedisBudgetBackend(redis_url, prefix="lost3", on_redis_error="closed")
    h = [Hold(key="day|z", limit=100, amount=10)]
    assert closed.reserve(h, ttl_s=60).ok
    redis.Redis.from_url(redis_url).flushall()
    with pytest.warns(CostkitWarning, match="were lost"):
        closed.reserve(h, ttl_s=60)
    again = closed.reserve(h, ttl_s=60)
    assert (again.ok, again.enforced, again.error, again.holds) == (False, False, "counters_lost", tuple(h))
    assert isinstance(again.id, str) and again.id and again.id != closed.reserve(h, ttl_s=60).id


class _EpochThief:
    """A Redis whose reserve script always finds another process's epoch (the counters keep being lost)."""

    def register_script(self, src: str) -> Any:
        return lambda **_kw: [-1, 0, 0, 0, b"someone-else"]


def test_counters_lost_again_while_retrying_fail_open_without_looping() -> None:
    b = RedisBudgetBackend(client=_EpochThief(), on_redis_error="open")
    b._epoch = "mine"
    h = [Hold(key="day|z", limit=100, amount=10)]
    with pytest.warns(CostkitWarning, match="were lost"):
        r = b.reserve(h, ttl_s=60)
    assert (r.ok, r.enforced, r.error, r.holds) == (True, False, "counters_lost", tuple(h))
    assert isinstance(r.id, str) and r.id
    assert (b.resets, b.unenforced) == (1, 1)


def test_an_unreachable_redis_answers_with_the_reservation_id() -> None:
    b = RedisBudgetBackend(client=_DownClient(), on_redis_error="open")
    with pytest.warns(CostkitWarning):
        r = b.reserve(holds({"global": 10}), ttl_s=60)
    assert isinstance(r.id, str) and r.id and r.holds == tuple(holds({"global": 10}))


def test_settle_needs_one_amount_per_hold() -> None:
    b = RedisBudgetBackend(client=_DownClient(), on_redis_error="open")
    with pytest.warns(CostkitWarning):
        r = b.reserve([Hold(key="a", limit=100, amount=10), Hold(key="b", limit=100, amount=10)], ttl_s=60)
    with pytest.raises(ValueError):
        b.settle(r, [5])


@pytest.mark.redis
def test_a_refused_redis_reservation_names_itself_and_what_it_asked_for(redis_url: str) -> None:
    b = RedisBudgetBackend(redis_url, prefix="refused")
    asked = (Hold(key="a", limit=100, amount=10), Hold(key="b", limit=5, amount=10))
    refused = b.reserve(list(asked), ttl_s=60)
    assert (refused.ok, refused.holds, refused.refused) == (False, asked, asked[1])
    assert isinstance(refused.id, str) and refused.id
    assert refused.id != b.reserve([Hold(key="a", limit=100, amount=1)], ttl_s=60).id
    b.close()


def test_a_release_while_redis_is_down_leaves_the_hold_to_its_ttl() -> None:
    client = _DownClient()
    b = RedisBudgetBackend(client=client, on_redis_error="closed")
    held = Reservation(id="r1", holds=(Hold(key="a", limit=100, amount=10),), ok=True)
    with pytest.warns(CostkitWarning, match="unavailable"):
        b.release(held)  # no error: the hold lapses by its TTL
    assert client.calls == 1
