"""RetryBudget: which failures are retried, how often, how long it waits, and the fleet-wide ratio."""

from __future__ import annotations

import asyncio
import os
import random
import threading
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import openai
import pytest
from _resilience import Clock, Scripted, bad_request, make_call, rate_limited, server_error, timeout
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import costkit
from costkit import Call, RetryBudgetExhausted
from costkit._pipeline import Io, Pipeline, Sleep
from costkit.errors import ConfigError
from costkit.policies.retry import FullJitterBackoff, RetryBudget


def drive(policy: RetryBudget, call: Call, terminal: Scripted) -> tuple[Any, list[float]]:
    """Run the flow by hand, collecting the sleeps instead of sleeping."""
    gen = policy.flow(call)
    sleeps: list[float] = []
    to_send: Any = None
    error: BaseException | None = None
    while True:
        try:
            step = gen.throw(error) if error is not None else gen.send(to_send)
        except StopIteration as stop:
            return stop.value, sleeps
        error, to_send = None, None
        if isinstance(step, Sleep):
            sleeps.append(step.seconds)
        elif isinstance(step, Io):
            to_send = step.run()
        else:
            assert isinstance(step, Call)
            try:
                to_send = terminal(step)
            except Exception as exc:
                error = exc


def test_is_public_and_owns_retries() -> None:
    assert costkit.RetryBudget is RetryBudget
    assert RetryBudget.owns_retries is True


def test_retries_transient_failures_with_attempt_and_kind() -> None:
    term = Scripted([server_error(), rate_limited()])
    result = Pipeline([RetryBudget(max_attempts=3, backoff_base_s=0)], term).run(make_call())
    assert result.text == "ok"
    assert [(c.attempt, c.kind) for c in term.calls] == [(1, "call"), (2, "retry"), (3, "retry")]
    assert len({c.request_id for c in term.calls}) == 1


def test_never_retries_a_bad_request() -> None:
    term = Scripted([bad_request()])
    policy = RetryBudget(backoff_base_s=0)
    with pytest.raises(openai.BadRequestError):
        Pipeline([policy], term).run(make_call())
    assert len(term.calls) == 1
    assert policy.stats.not_retryable == 1 and policy.stats.retries == 0


def test_stops_at_max_attempts_with_the_provider_error() -> None:
    term = Scripted(fail=lambda c: server_error())
    policy = RetryBudget(max_attempts=4, backoff_base_s=0)
    with pytest.raises(openai.InternalServerError):
        Pipeline([policy], term).run(make_call())
    assert [c.attempt for c in term.calls] == [1, 2, 3, 4]
    assert policy.stats.attempts_exhausted == 1 and policy.stats.retries == 3


def test_max_attempts_one_never_retries() -> None:
    term = Scripted([timeout()])
    with pytest.raises(openai.APITimeoutError):
        Pipeline([RetryBudget(max_attempts=1)], term).run(make_call())
    assert len(term.calls) == 1


def test_honours_retry_after() -> None:
    term = Scripted([rate_limited("2"), rate_limited("0.5")])
    result, sleeps = drive(RetryBudget(max_attempts=3), make_call(), term)
    assert result.text == "ok"
    assert sleeps == [2.0, 0.5]


def test_retry_after_longer_than_allowed_is_raised_at_once() -> None:
    term = Scripted([rate_limited("120")])
    policy = RetryBudget(max_attempts=3, max_retry_after_s=60)
    with pytest.raises(openai.RateLimitError):
        drive(policy, make_call(), term)
    assert len(term.calls) == 1 and policy.stats.retry_after_too_long == 1


def test_backoff_is_exponential_with_full_jitter() -> None:
    backoff = FullJitterBackoff(base_s=0.5, max_s=4.0, rng=random.Random(7))
    assert [backoff.cap(n) for n in (1, 2, 3, 4, 5, 6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    for n in (1, 2, 3, 4, 5):
        draws = [backoff(n) for _ in range(500)]
        assert all(0.0 <= d <= backoff.cap(n) for d in draws)
        # full jitter spreads over the whole interval, not around its top
        assert min(draws) < 0.1 * backoff.cap(n) and max(draws) > 0.9 * backoff.cap(n)


def test_sleeps_come_from_backoff_without_retry_after() -> None:
    term = Scripted([server_error(), server_error()])
    policy = RetryBudget(max_attempts=3, backoff_base_s=1.0, backoff_max_s=8.0, rng=random.Random(1))
    _, sleeps = drive(policy, make_call(), term)
    assert len(sleeps) == 2 and 0 <= sleeps[0] <= 1.0 and 0 <= sleeps[1] <= 2.0


def test_fleet_ratio_caps_retries_in_an_outage() -> None:
    clock = Clock()
    policy = RetryBudget(max_attempts=5, budget_ratio=0.1, min_retries_per_s=0, backoff_base_s=0, clock=clock)
    term = Scripted(fail=lambda c: server_error())
    pipe = Pipeline([policy], term)
    for _ in range(100):
        with pytest.raises(openai.InternalServerError):
            pipe.run(make_call())
    c = policy.stats
    assert c.calls == 100 and c.retries == 10 and len(term.calls) == 110
    assert c.window_calls == 100 and c.window_retries == 10
    assert c.refused == 100  # every call ended on a refusal: 90 at their first retry, 10 at their second


def test_reserve_lets_a_quiet_service_retry() -> None:
    clock = Clock()
    policy = RetryBudget(
        max_attempts=3, budget_ratio=0.1, window_s=10, min_retries_per_s=0.5, backoff_base_s=0, clock=clock
    )
    term = Scripted([server_error()])
    assert Pipeline([policy], term).run(make_call()).text == "ok"
    assert policy.stats.retries == 1  # 0.1 x 1 call alone would allow none; the reserve is 5 per window


def test_window_slides() -> None:
    clock = Clock()
    policy = RetryBudget(
        max_attempts=2, budget_ratio=0.5, window_s=10, min_retries_per_s=0, backoff_base_s=0, clock=clock
    )
    term = Scripted(fail=lambda c: server_error())
    pipe = Pipeline([policy], term)
    for _ in range(10):
        with pytest.raises(openai.InternalServerError):
            pipe.run(make_call())
    assert policy.stats.retries == 5
    clock.now += 11  # the first ten calls and five retries left the window
    assert policy.stats.window_calls == 0
    for _ in range(4):
        with pytest.raises(openai.InternalServerError):
            pipe.run(make_call())
    assert policy.stats.retries == 7 and policy.stats.window_retries == 2


def test_on_exhausted_raise_gives_retry_budget_exhausted() -> None:
    policy = RetryBudget(budget_ratio=0, min_retries_per_s=0, on_exhausted="raise")
    err = server_error()
    term = Scripted([err])
    with pytest.raises(RetryBudgetExhausted) as info:
        Pipeline([policy], term).run(make_call())
    assert info.value.last_error is err and info.value.__cause__ is err
    assert len(term.calls) == 1


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"max_attempts": 0}, "max_attempts"),
        ({"max_attempts": 2.5}, "max_attempts"),
        ({"budget_ratio": -0.1}, "budget_ratio"),
        ({"budget_ratio": float("nan")}, "budget_ratio"),
        ({"window_s": 0}, "window_s"),
        ({"min_retries_per_s": -1}, "min_retries_per_s"),
        ({"backoff_base_s": "1"}, "backoff_base_s"),
        ({"backoff_max_s": -1}, "backoff_max_s"),
        ({"max_retry_after_s": -1}, "max_retry_after_s"),
        ({"retry_on": 3}, "retry_on"),
        ({"on_exhausted": "ignore"}, "on_exhausted"),
        ({"on_redis_error": "maybe"}, "on_redis_error"),
        ({"name": ""}, "name"),
        ({"redis": "http://localhost"}, "redis"),
        ({"redis": 42}, "redis"),
    ],
)
def test_config_errors_name_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as info:
        RetryBudget(**kwargs)
    assert info.value.field == field


def test_custom_retry_on() -> None:
    term = Scripted([bad_request()])
    policy = RetryBudget(retry_on=lambda exc: isinstance(exc, openai.BadRequestError), backoff_base_s=0)
    assert Pipeline([policy], term).run(make_call()).text == "ok"


def _injected(rate: float, seed: int) -> Callable[[Call], Exception | None]:
    rng = random.Random(seed)
    lock = threading.Lock()
    kinds = [rate_limited, server_error, timeout]

    def fail(call: Call) -> Exception | None:
        with lock:
            if rng.random() < rate:
                return rng.choice(kinds)()
        return None

    return fail


def test_threads_with_30_percent_failures_stay_within_budget() -> None:
    policy = RetryBudget(max_attempts=3, budget_ratio=0.1, window_s=60, min_retries_per_s=0.1, backoff_base_s=0)
    term = Scripted(fail=_injected(0.3, seed=11))
    pipe = Pipeline([policy], term)
    outcomes: list[str] = []

    def one(_: int) -> str:
        try:
            return pipe.run(make_call()).text or ""
        except (openai.RateLimitError, openai.InternalServerError, openai.APITimeoutError) as exc:
            return type(exc).__name__

    with ThreadPoolExecutor(16) as pool:
        outcomes = list(pool.map(one, range(400)))
    c = policy.stats
    assert c.calls == 400 and len(outcomes) == 400
    assert c.retries <= 0.1 * c.calls + 0.1 * 60
    assert len(term.calls) == c.calls + c.retries
    by_request: dict[str, list[int]] = {}
    for call in term.calls:
        by_request.setdefault(call.request_id, []).append(call.attempt)
    assert all(sorted(a) == list(range(1, len(a) + 1)) and len(a) <= 3 for a in by_request.values())
    assert outcomes.count("ok") >= 400 * 0.7 - 5  # about 30% fail once; some of those were retried


async def test_asyncio_tasks_share_the_budget() -> None:
    clock = Clock()
    policy = RetryBudget(max_attempts=3, budget_ratio=0.2, min_retries_per_s=0, backoff_base_s=0, clock=clock)
    term = Scripted(fail=lambda c: server_error())
    pipe = Pipeline([policy], term, term.acall)

    async def one() -> str:
        try:
            return (await pipe.arun(make_call())).text or ""
        except openai.InternalServerError:
            return "failed"

    outcomes = await asyncio.gather(*(one() for _ in range(50)))
    assert outcomes == ["failed"] * 50
    assert policy.stats.retries == 10 and len(term.calls) == 60


async def test_async_retry_after_sleep_does_not_block_the_loop() -> None:
    term = Scripted([rate_limited("0.05")])
    pipe = Pipeline([RetryBudget()], term, term.acall)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        for _ in range(5):
            await asyncio.sleep(0.005)
            ticks += 1

    result, _ = await asyncio.gather(pipe.arun(make_call()), ticker())
    assert result.text == "ok" and ticks == 5 and [c.attempt for c in term.calls] == [1, 2]


# ----------------------------------------------------------------------------- Redis


@pytest.mark.redis
def test_redis_window_is_shared_between_instances(redis_url: str) -> None:
    clock = Clock()
    a = RetryBudget(budget_ratio=0.1, min_retries_per_s=0, backoff_base_s=0, redis=redis_url, name="fleet", clock=clock)
    b = RetryBudget(budget_ratio=0.1, min_retries_per_s=0, backoff_base_s=0, redis=redis_url, name="fleet", clock=clock)
    ok = Scripted()
    for _ in range(10):
        Pipeline([a], ok).run(make_call())
    # b has seen no call itself, but the fleet has: one retry is allowed, the next is refused
    failing = Scripted(fail=lambda c: server_error())
    with pytest.raises(openai.InternalServerError):
        Pipeline([b], failing).run(make_call())
    assert len(failing.calls) == 2
    assert b.stats.window_calls == 11 and b.stats.window_retries == 1
    assert b.stats.refused == 1


@pytest.mark.redis
def test_redis_down_fail_open_uses_the_local_window() -> None:
    dead = "redis://127.0.0.1:1/0"
    policy = RetryBudget(backoff_base_s=0, redis=dead, on_redis_error="open")
    term = Scripted([server_error()])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert Pipeline([policy], term).run(make_call()).text == "ok"
    assert len(term.calls) == 2
    assert policy.redis_guard is not None and policy.redis_guard.failures >= 1
    assert any("Redis" in str(w.message) for w in caught)


@pytest.mark.redis
def test_redis_down_fail_closed_refuses_retries() -> None:
    policy = RetryBudget(backoff_base_s=0, redis="redis://127.0.0.1:1/0", on_redis_error="closed")
    term = Scripted([server_error()])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(openai.InternalServerError):
            Pipeline([policy], term).run(make_call())
    assert len(term.calls) == 1 and policy.stats.refused == 1


def _process_worker(redis_url: str, seed: int, n: int) -> tuple[int, int, int]:
    policy = RetryBudget(
        max_attempts=3,
        budget_ratio=0.1,
        window_s=60,
        min_retries_per_s=0,
        backoff_base_s=0,
        redis=redis_url,
        name="procs",
    )
    term = Scripted(fail=_injected(0.3, seed))
    pipe = Pipeline([policy], term)
    ok = 0
    for _ in range(n):
        try:
            pipe.run(make_call())
            ok += 1
        except (openai.RateLimitError, openai.InternalServerError, openai.APITimeoutError):
            pass
    c = policy.stats
    return c.calls, c.retries, ok


@pytest.mark.redis
def test_four_processes_share_one_budget(redis_url: str) -> None:
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        jobs = [(redis_url, seed, 100) for seed in range(4)]
        results = pool.starmap_async(_process_worker, jobs, chunksize=1).get(180)  # bounded: never a hung test
    calls = sum(r[0] for r in results)
    retries = sum(r[1] for r in results)
    assert calls == 400
    assert retries <= 0.1 * calls
    import redis

    window: dict[bytes, bytes] = redis.Redis.from_url(redis_url).hgetall("costkit:{retry:procs}:window")  # type: ignore[assignment]
    assert sum(int(v) for k, v in window.items() if k.startswith(b"retries_")) == retries


# ----------------------------------------------------------------------------- end to end


def test_wrapped_client_with_30_percent_injected_failures() -> None:
    """429 / 500 / timeouts on 30% of attempts: every call ends within its attempt limit, retries stay
    within the ratio, and every attempt (failed ones included) has its cost record."""
    from costkit.sinks import MemorySink
    from costkit.testing import Failure, FakeOpenAI, FakeProvider

    fake = FakeProvider(
        failure_rate=0.3,
        failure_kinds=[Failure.rate_limit(retry_after=0.0), Failure.server_error(500), Failure.timeout(delay_s=5.0)],
        seed=5,
    )
    client = FakeOpenAI(fake, timeout=0.05, max_retries=2)
    sink = MemorySink()
    retry = RetryBudget(max_attempts=3, budget_ratio=0.1, window_s=60, min_retries_per_s=0.1, backoff_base_s=0)
    wrapped = costkit.wrap(client, policies=[retry], sink=sink)

    def one(i: int) -> str:
        try:
            reply = wrapped.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": f"question {i}"}]
            )
            return reply.choices[0].message.content or ""
        except (openai.RateLimitError, openai.InternalServerError, openai.APITimeoutError) as exc:
            return type(exc).__name__

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(one, range(200)))
    c = retry.stats
    assert c.calls == 200 and len(outcomes) == 200
    assert c.retries <= 0.1 * 200 + 0.1 * 60
    # the SDK's own retries are off (costkit owns them): one provider request per attempt
    assert len(fake.calls) == c.calls + c.retries
    records = sink.records
    assert len(records) == len(fake.calls)
    assert sum(not r.success for r in records) == fake.count(failed=True)
    by_request: dict[str, list[Any]] = {}
    for r in records:
        by_request.setdefault(r.request_id, []).append(r)
    assert len(by_request) == 200
    for attempts in by_request.values():
        attempts.sort(key=lambda r: r.attempt)
        assert len(attempts) <= 3
        assert [(r.attempt, r.kind) for r in attempts] == [(1, "call")] + [
            (n, "retry") for n in range(2, len(attempts) + 1)
        ]
        assert all(not r.success for r in attempts[:-1])  # only a failure is retried
    # a call failed exactly when its last attempt failed; the error is the SDK's own class
    failed = sum(not attempts[-1].success for attempts in by_request.values())
    assert failed == sum(not o.startswith("Fake answer") for o in outcomes)
    assert failed > 0 and c.retries > 0


def test_ring_counts_a_sliding_window() -> None:
    from costkit.policies._redis_state import Ring

    ring = Ring(10.0, 10, ("a", "b"))
    ring.add(100.0, "a")
    ring.add(100.5, "a", 2)
    ring.add(105.0, "b")
    assert ring.totals(105.0) == {"a": 3, "b": 1}
    assert ring.totals(109.9) == {"a": 3, "b": 1}
    assert ring.totals(110.0) == {"a": 0, "b": 1}  # the bucket of t=100 left the window
    ring.add(120.0, "a")  # reuses the slot of t=100, reset first
    assert ring.totals(120.0) == {"a": 1, "b": 0}
    ring.clear()
    assert ring.totals(120.0) == {"a": 0, "b": 0}


def test_wrapped_anthropic_client_sdk_retries_are_off_and_529_is_retried() -> None:
    import anthropic

    from costkit.sinks import MemorySink
    from costkit.testing import FakeAnthropic, FakeProvider

    # what the installed SDK raises for a 529 (OverloadedError; its parent class differs by version:
    # APIStatusError before anthropic 2.5, InternalServerError from 2.5 on): the wrapped client must raise it too
    raw = FakeAnthropic(FakeProvider(), max_retries=0)
    raw.fake.fail_next(1, 529)
    with pytest.raises(anthropic.APIStatusError) as raw_info:
        raw.messages.create(model="claude-sonnet-4-5", max_tokens=50, messages=[{"role": "user", "content": "hi"}])

    fake = FakeProvider()
    sink = MemorySink()
    retry = RetryBudget(max_attempts=2, backoff_base_s=0)
    wrapped = costkit.wrap(FakeAnthropic(fake, max_retries=2), policies=[retry], sink=sink)
    fake.fail_next(3, 529)
    with pytest.raises(anthropic.APIStatusError) as info:
        wrapped.messages.create(model="claude-sonnet-4-5", max_tokens=50, messages=[{"role": "user", "content": "hi"}])
    assert type(info.value) is type(raw_info.value)
    assert info.value.status_code == raw_info.value.status_code == 529
    # two costkit attempts, one request each: the SDK's own retries (max_retries=2) were turned off
    assert len(fake.calls) == 2
    assert [(r.attempt, r.kind, r.success) for r in sink.records] == [(1, "call", False), (2, "retry", False)]
    reply = wrapped.messages.create(
        model="claude-sonnet-4-5", max_tokens=50, messages=[{"role": "user", "content": "hi"}]
    )
    assert reply.content[0].text and len(fake.calls) == 4  # the third 529, then the answer


# ----------------------------------------------------------------------------- the two backends agree


@pytest.mark.redis
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    steps=st.lists(
        st.tuples(st.booleans(), st.floats(min_value=0, max_value=4, allow_nan=False)), min_size=1, max_size=80
    ),
    ratio=st.sampled_from([0.0, 0.1, 0.5]),
    reserve_per_s=st.sampled_from([0.0, 0.1]),
)
def test_memory_and_redis_budgets_decide_alike(
    redis_url: str, steps: list[tuple[bool, float]], ratio: float, reserve_per_s: float
) -> None:
    import uuid

    clock = Clock()
    kw: dict[str, Any] = dict(
        max_attempts=3, budget_ratio=ratio, window_s=10, min_retries_per_s=reserve_per_s, backoff_base_s=0, clock=clock
    )
    memory = RetryBudget(**kw)
    shared = RetryBudget(redis=redis_url, name=uuid.uuid4().hex, **kw)
    for failing, advance in steps:
        clock.now += advance
        for policy in (memory, shared):
            term = Scripted(fail=(lambda c: server_error()) if failing else None)
            try:
                Pipeline([policy], term).run(make_call())
            except openai.InternalServerError:
                pass
        assert memory.stats == shared.stats
