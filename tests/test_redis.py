"""costkit._redis: bounded clients, backing off after a failure, fail open/closed, warn once, counters."""

from __future__ import annotations

import socket
import warnings
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


@pytest.mark.redis
def test_the_writes_after_a_call_go_in_one_round_trip(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Dedup's answer and lock release, the budget's settlement, the circuit's outcome and the retry
    budget's call count need no answer before the call returns: they go in one pipeline at its end.
    What is left before the provider call is what decides it: Dedup's claim, the reservation, the
    circuit's admission."""
    import costkit
    from costkit.backends import RedisBudgetBackend
    from costkit.sinks import MemorySink
    from costkit.testing import FakeOpenAI

    limit = costkit.BudgetLimit(usd=100.0)
    budget = costkit.Budget([limit], backend=RedisBudgetBackend(redis_url))
    retry = costkit.RetryBudget(redis=redis_url)
    circuit = costkit.CircuitBreaker(redis=redis_url)
    client = costkit.wrap(
        FakeOpenAI(), [costkit.Dedup(redis=redis_url), budget, circuit, retry], sink=MemorySink()
    )
    q = [{"role": "user", "content": "warm up"}]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CostkitWarning)  # the test Redis persists nothing: said once
        client.chat.completions.create(model="gpt-4o", messages=q, max_tokens=5, temperature=0)
    trips: list[str] = []
    real = RedisGuard.call

    def counted(self: RedisGuard, op: Any) -> Any:
        trips.append(self.what)
        return real(self, op)

    monkeypatch.setattr(RedisGuard, "call", counted)
    reply = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}],
                                           max_tokens=5, temperature=0)
    assert reply.choices[0].message.content
    assert len(trips) == 4  # three before the call (they decide it), one after
    assert budget.spent(limit) > 0 and retry.stats.window_calls == 2 and circuit.stats.admitted == 2
