"""costkit._redis: bounded clients, backing off after a failure, fail open/closed, warn once, counters."""

from __future__ import annotations

import socket
import warnings
from types import SimpleNamespace
from typing import Any

import pytest
import redis

from costkit._redis import MARKED_DOWN, RedisGuard, RedisUnavailable, as_text, connect, connect_async
from costkit._warn import CostkitWarning, reset_warnings
from costkit.errors import ConfigError, StateUnavailable


@pytest.fixture(autouse=True)
def _fresh_warnings() -> None:
    reset_warnings()


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Op:
    """An operation that fails with ``exc`` while set, and counts how often it ran."""

    def __init__(self, exc: BaseException | None = None) -> None:
        self.exc = exc
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.exc is not None:
            raise self.exc
        return "redis"


def test_open_falls_back_warns_once_and_leaves_redis_alone_for_retry_after_s() -> None:
    clock = Clock()
    guard = RedisGuard("thing 'a'", retry_after_s=5, clock=clock)
    op = Op(redis.ConnectionError("refused"))
    with pytest.warns(CostkitWarning, match=r"Redis for thing 'a' is unavailable .*on_redis_error='open'"):
        assert guard.run(op, lambda: "local") == "local"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert guard.run(op, lambda: "local") == "local"  # marked down: not tried, not warned
        clock.now += 4.9
        assert guard.run(op, lambda: "local") == "local"
    assert op.calls == 1 and not guard.available()
    clock.now += 0.1
    op.exc = None
    assert guard.available() and guard.run(op, lambda: "local") == "redis"
    assert (op.calls, guard.failures, guard.fallbacks) == (2, 1, 3)


def test_closed_raises_state_unavailable_with_the_reason() -> None:
    guard = RedisGuard("thing", on_redis_error="closed", retry_after_s=60)
    with pytest.warns(CostkitWarning, match="failing calls"), pytest.raises(StateUnavailable) as e:
        guard.run(Op(redis.TimeoutError("slow")), lambda: "local")
    assert isinstance(e.value, RedisUnavailable) and e.value.reason == "TimeoutError: slow"
    with pytest.raises(RedisUnavailable) as again:
        guard.run(Op(), lambda: "local")
    assert again.value.reason == MARKED_DOWN
    assert (guard.failures, guard.fallbacks) == (1, 0)


def test_call_raises_in_either_mode_and_other_errors_pass_through() -> None:
    guard = RedisGuard("thing")  # open: call() still raises, the caller decides
    with pytest.warns(CostkitWarning), pytest.raises(RedisUnavailable):
        guard.call(Op(OSError("reset")))
    guard = RedisGuard("other")
    with pytest.raises(KeyError):  # a bug is not an outage
        guard.call(Op(KeyError("x")))
    assert guard.failures == 0 and guard.available()


async def test_async_twins_await_the_operation() -> None:
    guard = RedisGuard("async thing", retry_after_s=60)

    async def ok() -> str:
        return "redis"

    async def down() -> str:
        raise redis.ConnectionError("refused")

    assert await guard.arun(ok, lambda: "local") == "redis"
    with pytest.warns(CostkitWarning):
        assert await guard.arun(down, lambda: "local") == "local"
    with pytest.raises(RedisUnavailable):
        await guard.acall(ok)  # marked down
    assert (guard.failures, guard.fallbacks) == (1, 1)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"on_redis_error": "maybe"}, "on_redis_error"),
        ({"retry_after_s": -1}, "retry_after_s"),
        ({"retry_after_s": float("nan")}, "retry_after_s"),
    ],
)
def test_guard_config_errors(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as e:
        RedisGuard("thing", **kwargs)
    assert e.value.field == field


@pytest.mark.parametrize(
    ("target", "kwargs", "field"),
    [
        ("http://x", {}, "redis"),
        (object(), {}, "redis"),
        (redis.asyncio.Redis(), {}, "redis"),
        ("redis://x", {"timeout_s": 0}, "timeout_s"),
        ("redis://x", {"timeout_s": float("inf")}, "timeout_s"),
    ],
)
def test_connect_config_errors(target: Any, kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as e:
        connect(target, **kwargs)
    assert e.value.field == field


def test_a_url_gets_bounded_timeouts_and_no_client_retries() -> None:
    clients = [(connect("redis://127.0.0.1:1/0", timeout_s=0.2), 0.2), (connect_async("redis://127.0.0.1:1/0"), 0.5)]
    for client, timeout_s in clients:
        kw = client.connection_pool.connection_kwargs
        assert kw["socket_timeout"] == kw["socket_connect_timeout"] == timeout_s
        assert kw["retry"].get_retries() == 0 and not kw.get("retry_on_timeout")
    given = redis.Redis()
    assert connect(given) is given


def test_a_silent_server_costs_one_timeout_then_none() -> None:
    with socket.socket() as silent:  # accepts connections (the kernel's backlog), never replies
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        client = connect(f"redis://127.0.0.1:{silent.getsockname()[1]}/0", timeout_s=0.2)
        guard = RedisGuard("silent", retry_after_s=60)
        with pytest.warns(CostkitWarning, match="Timeout"):
            assert guard.run(lambda: client.get("k"), lambda: None) is None
        assert guard.run(lambda: client.get("k"), lambda: "skipped") == "skipped"
    assert guard.failures == 1


@pytest.mark.redis
def test_against_a_real_redis(redis_url: str) -> None:
    client = connect(redis_url)
    guard = RedisGuard("real")
    script = client.register_script("return ARGV[1]")
    assert as_text(guard.run(lambda: script(keys=[], args=["hello"]), lambda: "local")) == "hello"
    assert (guard.failures, guard.fallbacks) == (0, 0)


# ------------------------------------------------------------------ one health state per server


class Blackhole:
    """A TCP server that accepts connections and never answers (a Redis behind a dead network path)."""

    def __init__(self) -> None:
        import threading

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def close(self) -> None:
        self.sock.close()
        for c in self.accepted:
            c.close()


def test_a_blackholed_redis_costs_the_process_one_timeout_not_one_per_policy() -> None:
    """The reported stall: five Redis-backed policies each paid their own timeout on every call (1.8-2.0 s)."""
    import costkit
    from costkit.policies.budget_backends import RedisBudgetBackend
    from costkit.policies.cache.stores import RedisStore
    from costkit.sinks import MemorySink
    from costkit.testing import FakeOpenAI

    costkit.tokens.count_text("warm up the tokenizer", "gpt-4o-mini")  # so the calls fit in one back-off period
    hole = Blackhole()
    url = f"redis://127.0.0.1:{hole.port}/0"
    try:
        policies = [
            costkit.Dedup(redis=url),
            costkit.ExactCache(RedisStore(url, timeout_s=0.2)),
            costkit.Budget([costkit.BudgetLimit(usd=10)], backend=RedisBudgetBackend(url, timeout_s=0.2)),
            costkit.CircuitBreaker(redis=url),
            costkit.RetryBudget(redis=url),
        ]
        raw = FakeOpenAI()
        client = costkit.wrap(raw, policies, sink=MemorySink())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CostkitWarning)
            for i in range(5):
                reply = client.chat.completions.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": f"q{i}"}], temperature=0
                )
                assert reply.choices[0].message.content
        assert len(raw.fake.calls) == 5  # every call answered (fail open)
        assert len(hole.accepted) == 1  # one policy tried Redis once; the others saw it marked down
        guards = [p.redis_guard for p in (policies[0], policies[3], policies[4])] + [policies[2].backend.redis_guard]
        assert sum(g.failures for g in guards) <= 1
    finally:
        hole.close()


# ------------------------------------------------------------------ a call's Redis writes in one round trip


def _stateful_client(
    redis_url: str, fake: Any, *, usd: float = 100.0, derive: str = "deterministic", failure_threshold: int = 5
) -> SimpleNamespace:
    """A wrapped client with every layer that keeps state in Redis (the policies of examples/redis_fleet.py)."""
    import costkit
    from costkit.backends import RedisBudgetBackend
    from costkit.sinks import MemorySink

    limit = costkit.BudgetLimit(usd=usd)
    budget = costkit.Budget([limit], backend=RedisBudgetBackend(redis_url))
    retry = costkit.RetryBudget(redis=redis_url)
    circuit = costkit.CircuitBreaker(failure_threshold, None, redis=redis_url)
    cache = costkit.ExactCache(store=redis_url)
    dedup = costkit.Dedup(redis=redis_url, derive=derive, wait_timeout_s=5.0, poll_s=0.01)
    policies = [costkit.Guardrails(max_output_tokens=50), dedup, cache, budget, circuit, retry]
    fake.fake.set_default("ok")  # short: a complete answer (finish_reason "stop"), so the cache stores it
    client = costkit.wrap(fake, policies, sink=MemorySink())
    return SimpleNamespace(
        client=client, budget=budget, limit=limit, retry=retry, circuit=circuit, cache=cache, dedup=dedup
    )


def _count_round_trips(monkeypatch: pytest.MonkeyPatch, fake: Any) -> dict[str, int]:
    """Writes to a Redis socket (one per command, or one per pipeline or script) before and after the
    provider is asked."""
    from redis.connection import AbstractConnection

    trips = {"before": 0, "after": 0}
    asked = []
    real_send = AbstractConnection.send_packed_command
    real_handle = fake.handle

    def send(self: Any, command: Any, check_health: bool = True) -> None:
        trips["after" if asked else "before"] += 1
        real_send(self, command, check_health)

    def handle(*args: Any, **kwargs: Any) -> Any:
        asked.append(1)
        return real_handle(*args, **kwargs)

    monkeypatch.setattr(AbstractConnection, "send_packed_command", send)
    monkeypatch.setattr(fake, "handle", handle)
    return trips


@pytest.mark.redis
def test_a_call_makes_one_round_trip_to_redis_before_the_provider_and_one_after(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dedup's claim, the cache lookup, the reservation and the circuit's admission go in one script
    before the provider call; Dedup's answer and lock release, the cache entry, the settlement, the
    circuit's outcome and the retry budget's count go in one pipeline when the request ends (the
    cache entry is a store write of its own)."""
    from costkit.testing import FakeOpenAI

    state = _stateful_client(redis_url, FakeOpenAI())
    client, budget, limit, retry, circuit, cache = (
        state.client, state.budget, state.limit, state.retry, state.circuit, state.cache
    )
    q = [{"role": "user", "content": "warm up"}]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CostkitWarning)  # the test Redis persists nothing: said once
        client.chat.completions.create(model="gpt-4o", messages=q, max_tokens=5, temperature=0)
    trips = _count_round_trips(monkeypatch, client.fake)
    reply = client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "hi"}], max_tokens=5, temperature=0
    )
    assert reply.choices[0].message.content
    assert trips == {"before": 1, "after": 2}  # after: the layers' writes, and the cache entry
    assert budget.spent(limit) > 0 and retry.stats.window_calls == 2 and circuit.stats.admitted == 2
    assert cache.stats["misses"] == 2 and client.fake.count() == 2


@pytest.mark.redis
async def test_an_async_call_makes_one_round_trip_to_redis_before_the_provider(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from costkit.testing import FakeAsyncOpenAI

    state = _stateful_client(redis_url, FakeAsyncOpenAI())
    client, budget, limit, circuit = state.client, state.budget, state.limit, state.circuit
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CostkitWarning)
        await client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "a"}], max_tokens=5)
    trips = _count_round_trips(monkeypatch, client.fake)
    await client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "b"}], max_tokens=5)
    assert trips["before"] == 1
    assert circuit.stats.admitted == 2 and budget.spent(limit) > 0


def _ask(client: Any, text: str = "same question") -> Any:
    return client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": text}], max_tokens=5, temperature=0
    )


def _held(budget: Any, limit: Any) -> int:
    return int(budget.backend.usage(budget.key_for(limit)).reserved)


@pytest.mark.redis
def test_a_cache_hit_found_in_the_one_script_leaves_the_checks_below_it_unasked(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from costkit.testing import FakeOpenAI

    state = _stateful_client(redis_url, FakeOpenAI(), derive="never")  # no Dedup answer before the cache's
    client, budget, limit, circuit, cache = state.client, state.budget, state.limit, state.circuit, state.cache
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CostkitWarning)
        first = _ask(client)
    trips = _count_round_trips(monkeypatch, client.fake)
    second = _ask(client)
    seen = dict(trips)  # (what the asserts below read from Redis is not the call's)
    assert second.choices[0].message.content == first.choices[0].message.content
    assert client.fake.count() == 1 and cache.stats["hits"] == 1
    assert circuit.stats.admitted == 1 and _held(budget, limit) == 0  # neither was asked for the hit
    assert seen == {"before": 1, "after": 0}  # the checks' script; nothing below the cache ran, nothing to write


@pytest.mark.redis
@pytest.mark.parametrize("is_async", [False, True])
async def test_a_refused_reservation_in_the_one_script_stops_the_call_and_frees_dedups_lock(
    redis_url: str, is_async: bool
) -> None:
    import costkit
    from costkit.testing import FakeAsyncOpenAI, FakeOpenAI

    state = _stateful_client(redis_url, FakeAsyncOpenAI() if is_async else FakeOpenAI(), usd=1e-7)
    client, budget, limit, circuit = state.client, state.budget, state.limit, state.circuit
    for _ in range(2):  # the second finds no lock left by the first (it would wait wait_timeout_s)
        with pytest.raises(costkit.BudgetExceeded), warnings.catch_warnings():
            warnings.simplefilter("ignore", CostkitWarning)
            if is_async:
                await _ask(client)
            else:
                _ask(client)
    assert client.fake.count() == 0
    assert circuit.stats.admitted == 0  # below the budget: its check never ran
    assert _held(budget, limit) == 0


@pytest.mark.redis
def test_an_open_circuit_in_the_one_script_stops_the_call_and_the_reservation_above_it_is_given_back(
    redis_url: str,
) -> None:
    import costkit
    from costkit.testing import FakeOpenAI

    state = _stateful_client(redis_url, FakeOpenAI(), failure_threshold=1)
    client, budget, limit, circuit = state.client, state.budget, state.limit, state.circuit
    client.fake.fail_next(3, status=500)  # every attempt the retry budget makes
    with pytest.raises(Exception, match="500"), warnings.catch_warnings():
        warnings.simplefilter("ignore", CostkitWarning)
        _ask(client, "first")
    asked = client.fake.count()
    with pytest.raises(costkit.CircuitOpen):
        _ask(client, "second")
    assert client.fake.count() == asked and circuit.stats.rejected == 1
    assert _held(budget, limit) == 0 and budget.spent(limit) == 0


@pytest.mark.redis
def test_a_dedup_follower_in_another_process_gets_the_leaders_answer_without_asking_its_own_checks(
    redis_url: str,
) -> None:
    """Two wrapped clients stand for two processes: the second's claim finds the first's lock, waits,
    and gets its answer; its budget and circuit are never asked."""
    import threading
    import time

    from costkit.testing import FakeOpenAI
    from costkit.testing.rules import Reply

    def slow(request: Any) -> Reply:
        time.sleep(0.5)
        return Reply(text="the leader's answer")

    leader = _stateful_client(redis_url, FakeOpenAI())
    follower = _stateful_client(redis_url, FakeOpenAI())
    leader.client.fake.on(".", slow)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CostkitWarning)
        thread = threading.Thread(target=_ask, args=(leader.client,))
        thread.start()
        time.sleep(0.2)
        reply = _ask(follower.client)
        thread.join()
    assert reply.choices[0].message.content == "the leader's answer"
    assert leader.client.fake.count() == 1 and follower.client.fake.count() == 0
    assert follower.circuit.stats.admitted == 0 and _held(follower.budget, follower.limit) == 0


@pytest.mark.redis
def test_a_dead_redis_costs_one_failed_round_trip_and_every_layer_degrades_as_when_alone() -> None:
    from costkit.testing import FakeOpenAI

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"redis://127.0.0.1:{s.getsockname()[1]}/0"
    state = _stateful_client(dead, FakeOpenAI())
    client, budget, circuit, cache = state.client, state.budget, state.circuit, state.cache
    with pytest.warns(CostkitWarning, match="unavailable"):
        reply = _ask(client)
    assert reply.choices[0].message.content and client.fake.count() == 1
    assert state.dedup.redis_guard.failures == 1  # the one script failed; the others found the server marked down
    assert budget.backend.unenforced == 1 and circuit.stats.admitted == 1 and cache.stats["misses"] == 1
    assert circuit.redis_guard.failures == 0 and circuit.redis_guard.fallbacks >= 1
