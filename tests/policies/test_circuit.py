"""CircuitBreaker: opening, failing fast, half-open probes, closing; in-process and in Redis."""

from __future__ import annotations

import asyncio
import os
import random
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import openai
import pytest
from _resilience import Clock, Scripted, bad_request, make_call, rate_limited, server_error
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import costkit
from costkit import Call, CircuitOpen
from costkit._pipeline import Pipeline
from costkit.errors import ConfigError, StateUnavailable
from costkit.policies.circuit import CLOSED, HALF_OPEN, OPEN, CircuitBreaker
from costkit.policies.retry import RetryBudget


@pytest.fixture(params=["memory", "redis"])
def backend(request: pytest.FixtureRequest) -> dict[str, Any]:
    if request.param == "memory":
        return {}
    return {"redis": request.getfixturevalue("redis_url")}


def run(pipe: Pipeline, call: Call | None = None) -> str:
    try:
        return pipe.run(call or make_call()).text or ""
    except CircuitOpen:
        return "open"
    except openai.APIError as exc:
        return type(exc).__name__


def test_is_public() -> None:
    assert costkit.CircuitBreaker is CircuitBreaker


def test_opens_after_consecutive_failures_and_fails_fast(backend: dict[str, Any]) -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=3, failure_rate=None, open_s=30, clock=clock, **backend)
    term = Scripted(fail=lambda c: server_error())
    pipe = Pipeline([breaker], term)
    assert [run(pipe) for _ in range(3)] == ["InternalServerError"] * 3
    assert breaker.state("openai", "gpt-4o-mini") == OPEN
    with pytest.raises(CircuitOpen) as info:
        pipe.run(make_call())
    assert info.value.provider == "openai" and info.value.model == "gpt-4o-mini"
    assert info.value.retry_after_s == pytest.approx(30.0)
    assert [run(pipe) for _ in range(10)] == ["open"] * 10
    assert len(term.calls) == 3  # nothing reached the provider once open
    c = breaker.stats
    assert c.rejected == 11 and c.opened == 1 and c.failures == 3


def test_successes_reset_the_consecutive_count(backend: dict[str, Any]) -> None:
    outcomes = iter([server_error(), server_error(), None, server_error(), server_error(), None])
    breaker = CircuitBreaker(failure_threshold=3, failure_rate=None, clock=Clock(), **backend)
    pipe = Pipeline([breaker], Scripted(fail=lambda c: next(outcomes)))
    for _ in range(6):
        run(pipe)
    assert breaker.state("openai", "gpt-4o-mini") == CLOSED


def test_failure_rate_in_window_opens(backend: dict[str, Any]) -> None:
    clock = Clock()
    n = iter(range(1000))
    # every other call fails: never 3 in a row, but 50% of the window
    breaker = CircuitBreaker(failure_threshold=3, failure_rate=0.5, min_calls=10, window_s=60, clock=clock, **backend)
    pipe = Pipeline([breaker], Scripted(fail=lambda c: server_error() if next(n) % 2 else None))
    results = [run(pipe) for _ in range(12)]
    assert results[:10] == ["ok", "InternalServerError"] * 5
    assert breaker.state("openai", "gpt-4o-mini") == OPEN
    assert results[10:] == ["open", "open"]


def test_failure_rate_needs_min_calls(backend: dict[str, Any]) -> None:
    breaker = CircuitBreaker(failure_threshold=None, failure_rate=0.5, min_calls=10, clock=Clock(), **backend)
    pipe = Pipeline([breaker], Scripted(fail=lambda c: server_error()))
    assert [run(pipe) for _ in range(9)] == ["InternalServerError"] * 9
    assert breaker.state("openai", "gpt-4o-mini") == CLOSED
    run(pipe)
    assert breaker.state("openai", "gpt-4o-mini") == OPEN


def test_old_failures_leave_the_window(backend: dict[str, Any]) -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=None, failure_rate=0.5, min_calls=4, window_s=10, clock=clock, **backend)
    failing = [True]
    pipe = Pipeline([breaker], Scripted(fail=lambda c: server_error() if failing[0] else None))
    for _ in range(3):
        run(pipe)
    clock.now += 11
    failing[0] = False
    for _ in range(3):
        run(pipe)
    failing[0] = True
    run(pipe)  # 1 failure out of 4 in the window, not 4 of 7
    assert breaker.state("openai", "gpt-4o-mini") == CLOSED


def test_half_open_probe_success_closes(backend: dict[str, Any]) -> None:
    clock = Clock()
    down = [True]
    breaker = CircuitBreaker(failure_threshold=2, failure_rate=None, open_s=30, clock=clock, **backend)
    term = Scripted(fail=lambda c: server_error() if down[0] else None)
    pipe = Pipeline([breaker], term)
    run(pipe), run(pipe)
    assert run(pipe) == "open"
    clock.now += 30
    assert breaker.state("openai", "gpt-4o-mini") == HALF_OPEN
    down[0] = False
    assert run(pipe) == "ok"  # the probe
    assert breaker.state("openai", "gpt-4o-mini") == CLOSED
    assert [run(pipe) for _ in range(3)] == ["ok"] * 3
    assert breaker.stats.probes == 1


def test_half_open_probe_failure_reopens(backend: dict[str, Any]) -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=2, failure_rate=None, open_s=30, clock=clock, **backend)
    term = Scripted(fail=lambda c: server_error())
    pipe = Pipeline([breaker], term)
    run(pipe), run(pipe)
    clock.now += 31
    assert run(pipe) == "InternalServerError"  # the probe failed
    assert breaker.state("openai", "gpt-4o-mini") == OPEN
    assert run(pipe) == "open"
    assert len(term.calls) == 3 and breaker.stats.opened == 2


def test_half_open_admits_only_the_probe_budget(backend: dict[str, Any]) -> None:
    clock = Clock()
    breaker = CircuitBreaker(
        failure_threshold=1, failure_rate=None, open_s=10, half_open_probes=2, clock=clock, **backend
    )
    release = threading.Event()
    entered = threading.Semaphore(0)
    first = [True]

    def fail(call: Call) -> Exception | None:
        if first[0]:
            first[0] = False
            return server_error()
        entered.release()
        release.wait(5)
        return None

    pipe = Pipeline([breaker], Scripted(fail=fail))
    assert run(pipe) == "InternalServerError"
    clock.now += 10
    with ThreadPoolExecutor(2) as pool:
        probes = [pool.submit(run, pipe) for _ in range(2)]
        assert entered.acquire(timeout=5) and entered.acquire(timeout=5)
        # both probe slots are taken: a third call fails fast
        assert run(pipe) == "open"
        release.set()
        assert [p.result() for p in probes] == ["ok", "ok"]
    assert breaker.state("openai", "gpt-4o-mini") == CLOSED


def test_lost_probe_frees_its_slot_after_open_s(backend: dict[str, Any]) -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=1, failure_rate=None, open_s=10, clock=clock, **backend)
    pipe = Pipeline([breaker], Scripted(fail=lambda c: server_error()))
    run(pipe)
    clock.now += 10
    gen = breaker.flow(make_call())  # a probe whose caller vanishes after being admitted
    step = gen.send(None)  # Redis state is a check (Ahead); in-process state is updated inline
    if not isinstance(step, Call):
        step = gen.send(step.run())
    assert isinstance(step, Call)
    gen.close()
    assert run(pipe) == "open"
    clock.now += 10
    assert run(pipe) == "InternalServerError"  # a new probe was admitted


def test_caller_errors_do_not_count(backend: dict[str, Any]) -> None:
    breaker = CircuitBreaker(failure_threshold=2, failure_rate=None, clock=Clock(), **backend)
    pipe = Pipeline([breaker], Scripted(fail=lambda c: bad_request()))
    assert [run(pipe) for _ in range(5)] == ["BadRequestError"] * 5
    assert breaker.state("openai", "gpt-4o-mini") == CLOSED


def test_failure_categories_are_configurable() -> None:
    breaker = CircuitBreaker(failure_threshold=2, failure_rate=None, failures=["server"], clock=Clock())
    pipe = Pipeline([breaker], Scripted(fail=lambda c: rate_limited()))
    for _ in range(4):
        run(pipe)
    assert breaker.state("openai", "gpt-4o-mini") == CLOSED


def test_one_circuit_per_provider_and_model(backend: dict[str, Any]) -> None:
    breaker = CircuitBreaker(failure_threshold=2, failure_rate=None, clock=Clock(), **backend)
    pipe = Pipeline([breaker], Scripted(fail=lambda c: server_error() if c.model == "gpt-4o" else None))
    run(pipe, make_call("gpt-4o")), run(pipe, make_call("gpt-4o"))
    assert run(pipe, make_call("gpt-4o")) == "open"
    assert run(pipe, make_call("gpt-4o-mini")) == "ok"
    assert breaker.state("openai", "gpt-4o-mini") == CLOSED


def test_with_retry_budget_100_percent_failures_fail_fast(backend: dict[str, Any]) -> None:
    breaker = CircuitBreaker(failure_threshold=5, failure_rate=None, open_s=60, clock=Clock(), **backend)
    retry = RetryBudget(max_attempts=3, budget_ratio=0.5, backoff_base_s=0)
    term = Scripted(fail=lambda c: server_error())
    pipe = Pipeline([retry, breaker], term)
    outcomes = [run(pipe) for _ in range(50)]
    # call 1: three failed attempts; call 2: two more open the circuit, its third attempt fails fast
    # (CircuitOpen is not retried); calls 3-50 fail fast. Five provider calls in all.
    assert len(term.calls) == 5
    assert outcomes == ["InternalServerError"] + ["open"] * 49
    assert breaker.stats.rejected == 49


async def test_asyncio_opens_and_fails_fast(backend: dict[str, Any]) -> None:
    breaker = CircuitBreaker(failure_threshold=5, failure_rate=None, clock=Clock(), **backend)
    term = Scripted(fail=lambda c: server_error())
    pipe = Pipeline([breaker], term, term.acall)

    async def one() -> str:
        try:
            return (await pipe.arun(make_call())).text or ""
        except CircuitOpen:
            return "open"
        except openai.InternalServerError:
            return "failed"

    for _ in range(5):
        assert await one() == "failed"
    outcomes = await asyncio.gather(*(one() for _ in range(100)))
    assert outcomes == ["open"] * 100 and len(term.calls) == 5


def test_threads_30_percent_failures_do_not_open_a_rate_breaker() -> None:
    rng = random.Random(3)
    lock = threading.Lock()

    def fail(call: Call) -> Exception | None:
        with lock:
            return server_error() if rng.random() < 0.3 else None

    breaker = CircuitBreaker(failure_threshold=None, failure_rate=0.6, min_calls=50)
    term = Scripted(fail=fail)
    pipe = Pipeline([breaker], term)
    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(lambda _: run(pipe), range(400)))
    assert "open" not in outcomes and len(term.calls) == 400
    assert breaker.stats.failures == outcomes.count("InternalServerError")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"failure_threshold": 0}, "failure_threshold"),
        ({"failure_rate": 1.5}, "failure_rate"),
        ({"failure_rate": 0}, "failure_rate"),
        ({"failure_threshold": None, "failure_rate": None}, "failure_threshold"),
        ({"min_calls": 0}, "min_calls"),
        ({"window_s": -1}, "window_s"),
        ({"open_s": 0}, "open_s"),
        ({"half_open_probes": 0}, "half_open_probes"),
        ({"failures": ["server", "meteor"]}, "failures"),
        ({"failures": "server"}, "failures"),
        ({"failures": []}, "failures"),
        ({"on_redis_error": "sometimes"}, "on_redis_error"),
        ({"redis": "localhost:6379"}, "redis"),
        ({"name": "a{b}"}, "name"),
    ],
)
def test_config_errors_name_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as info:
        CircuitBreaker(**kwargs)
    assert info.value.field == field


@pytest.mark.redis
def test_redis_circuit_is_shared_between_instances(redis_url: str) -> None:
    clock = Clock()
    a = CircuitBreaker(failure_threshold=3, failure_rate=None, redis=redis_url, name="fleet", clock=clock)
    b = CircuitBreaker(failure_threshold=3, failure_rate=None, redis=redis_url, name="fleet", clock=clock)
    failing = Scripted(fail=lambda c: server_error())
    for _ in range(3):
        run(Pipeline([a], failing))
    healthy = Scripted()
    assert run(Pipeline([b], healthy)) == "open" and healthy.calls == []
    assert b.state("openai", "gpt-4o-mini") == OPEN


@pytest.mark.redis
def test_redis_down_fail_open_uses_local_circuits() -> None:
    breaker = CircuitBreaker(failure_threshold=2, failure_rate=None, redis="redis://127.0.0.1:1/0")
    term = Scripted(fail=lambda c: server_error())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        outcomes = [run(Pipeline([breaker], term)) for _ in range(4)]
    assert outcomes == ["InternalServerError", "InternalServerError", "open", "open"]
    assert any("Redis" in str(w.message) for w in caught)
    assert breaker.redis_guard is not None and breaker.redis_guard.fallbacks >= 4


@pytest.mark.redis
def test_redis_down_fail_closed_fails_the_call_before_the_provider() -> None:
    breaker = CircuitBreaker(redis="redis://127.0.0.1:1/0", on_redis_error="closed")
    term = Scripted()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(StateUnavailable):
            Pipeline([breaker], term).run(make_call())
    assert term.calls == []


# ----------------------------------------------------------------------------- end to end


def test_wrapped_client_100_percent_failures_open_the_circuit() -> None:
    from costkit.sinks import MemorySink
    from costkit.testing import Failure, FakeOpenAI, FakeProvider

    fake = FakeProvider(failure_rate=1.0, failure_kinds=[Failure.server_error(500), Failure.overloaded(503)], seed=2)
    sink = MemorySink()
    breaker = CircuitBreaker(failure_threshold=5, failure_rate=None, open_s=60)
    retry = RetryBudget(max_attempts=3, budget_ratio=0.5, backoff_base_s=0)
    wrapped = costkit.wrap(FakeOpenAI(fake), policies=[retry, breaker], sink=sink)
    outcomes = []
    for i in range(40):
        try:
            wrapped.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": f"q{i}"}])
            outcomes.append("ok")
        except CircuitOpen:
            outcomes.append("open")
        except openai.InternalServerError:
            outcomes.append("failed")
    assert len(fake.calls) == 5  # then every call failed fast
    assert outcomes == ["failed"] + ["open"] * 39
    assert len(sink.records) == 5 and not any(r.success for r in sink.records)
    assert breaker.state("openai", "gpt-4o") == OPEN


# ----------------------------------------------------------------------------- the two backends agree


_STEPS = st.lists(
    st.tuples(st.sampled_from(["ok", "fail", "bad"]), st.floats(min_value=0, max_value=8, allow_nan=False)),
    min_size=1,
    max_size=60,
)


@pytest.mark.redis
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=_STEPS, threshold=st.sampled_from([None, 2, 3]), rate=st.sampled_from([None, 0.5, 0.8]))
def test_memory_and_redis_circuits_decide_alike(
    redis_url: str, steps: list[tuple[str, float]], threshold: int | None, rate: float | None
) -> None:
    import uuid

    if threshold is None and rate is None:
        threshold = 2
    clock = Clock()
    kw: dict[str, Any] = dict(
        failure_threshold=threshold, failure_rate=rate, min_calls=4, window_s=20, open_s=10, clock=clock
    )
    memory = CircuitBreaker(**kw)
    shared = CircuitBreaker(redis=redis_url, name=uuid.uuid4().hex, **kw)
    outcome = ["ok"]
    errors = {"fail": server_error, "bad": bad_request}
    term = Scripted(fail=lambda c: errors[outcome[0]]() if outcome[0] in errors else None)
    for what, advance in steps:
        clock.now += advance
        outcome[0] = what
        assert run(Pipeline([memory], term)) == run(Pipeline([shared], term))
        assert memory.state("openai", "gpt-4o-mini") == shared.state("openai", "gpt-4o-mini")
    assert memory.stats == shared.stats
