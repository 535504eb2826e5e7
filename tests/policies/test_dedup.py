"""Dedup: keys, in-flight coalescing (threads, asyncio, processes via Redis), completed answers, hand-over."""

from __future__ import annotations

import asyncio
import os
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletion

import costkit
from costkit import Call, Result, Tags, Usage
from costkit._pipeline import Pipeline
from costkit._stream import ResultStream
from costkit.errors import ConfigError, StateUnavailable
from costkit.policies.cache.keys import exact_key
from costkit.policies.dedup import Dedup, dedup_key, is_deterministic

_REQ = httpx.Request("POST", "https://api.openai.com/v1/chat/completions")


def make_call(text: str = "What is 2+2?", *, temperature: Any = 0, tags: Tags | None = None, **params: Any) -> Call:
    if temperature is not None:
        params["temperature"] = temperature
    return Call(
        provider="openai",
        api="chat.completions",
        requested_model="gpt-4o-mini",
        model="gpt-4o-mini",
        messages=({"role": "user", "content": text},),
        params=params,
        tags=tags or Tags(),
    )


def completion(text: str) -> ChatCompletion:
    return ChatCompletion.model_validate(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1,
            "model": "gpt-4o-mini",
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15},
        }
    )


class Provider:
    """A terminal that counts calls; ``hold`` blocks each call until released (so others pile up)."""

    def __init__(self, *, hold: float = 0.0, fail: Exception | None = None) -> None:
        self.calls: list[Call] = []
        self.hold = hold
        self.fail = fail
        self._lock = threading.Lock()

    def _answer(self, call: Call) -> Result:
        with self._lock:
            self.calls.append(call)
            n = len(self.calls)
        if self.fail is not None:
            raise self.fail
        return Result(
            text=f"answer {n}",
            model=call.model,
            raw=completion(f"answer {n}"),
            usage=Usage(input_tokens=12, output_tokens=3),
            cost_usd=0.0042,
            finish_reason="stop",
        )

    def __call__(self, call: Call) -> Result:
        time.sleep(self.hold)
        return self._answer(call)

    async def acall(self, call: Call) -> Result:
        await asyncio.sleep(self.hold)
        return self._answer(call)


# ----------------------------------------------------------------------------- keys


def test_is_public() -> None:
    assert costkit.Dedup is Dedup


def test_keys() -> None:
    assert is_deterministic(make_call(temperature=0))
    assert is_deterministic(make_call(temperature=0.0, n=1))
    assert not is_deterministic(make_call(temperature=None))  # the provider's default (1.0) samples
    assert not is_deterministic(make_call(temperature=0.7))
    assert not is_deterministic(make_call(temperature=0, n=3))

    det = make_call()
    assert dedup_key(det) == "exact:" + exact_key(det)
    assert dedup_key(make_call(temperature=None)) is None
    assert dedup_key(make_call(temperature=None), derive="always") is not None
    assert dedup_key(det, derive="never") is None

    idem = make_call(temperature=0.9, tags=Tags(idempotency_key="req-1"))
    key = dedup_key(idem, derive="never")
    assert key is not None and key.startswith("idem:")
    # the same key for the same request only: another question, another tenant, another key
    assert dedup_key(make_call("other", temperature=0.9, tags=Tags(idempotency_key="req-1"))) != key
    assert dedup_key(make_call(temperature=0.9, tags=Tags(idempotency_key="req-1", tenant="b"))) != key
    assert dedup_key(make_call(temperature=0.9, tags=Tags(idempotency_key="req-2"))) != key
    # transport-only parameters do not change it (a client retry with another timeout is the same request)
    assert dedup_key(make_call(temperature=0.9, tags=Tags(idempotency_key="req-1"), timeout=5)) == key


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"ttl_s": -1}, "ttl_s"),
        ({"derive": "sometimes"}, "derive"),
        ({"scope_user": "yes"}, "scope_user"),
        ({"wait_timeout_s": 0}, "wait_timeout_s"),
        ({"max_entries": 0}, "max_entries"),
        ({"lease_s": 0}, "lease_s"),
        ({"poll_s": -0.1}, "poll_s"),
        ({"on_redis_error": "half"}, "on_redis_error"),
        ({"redis": "memcached://x"}, "redis"),
        ({"name": ""}, "name"),
    ],
)
def test_config_errors_name_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as info:
        Dedup(**kwargs)
    assert info.value.field == field


# ----------------------------------------------------------------------------- in-process


def test_100_threads_one_provider_call() -> None:
    provider = Provider(hold=0.3)
    dedup = Dedup()
    pipe = Pipeline([dedup], provider)
    barrier = threading.Barrier(100)

    def one(_: int) -> Result:
        barrier.wait()
        return pipe.run(make_call())

    with ThreadPoolExecutor(100) as pool:
        results = list(pool.map(one, range(100)))
    assert len(provider.calls) == 1
    assert {r.text for r in results} == {"answer 1"}
    assert [r.source for r in results].count("provider") == 1
    assert [r.source for r in results].count("dedup") == 99
    assert all(r.cost_usd == 0.0042 and r.raw is not None for r in results)
    c = dedup.stats
    assert c.leaders == 1 and c.coalesced + c.replayed == 99


async def test_100_asyncio_tasks_one_provider_call() -> None:
    provider = Provider(hold=0.2)
    dedup = Dedup()
    pipe = Pipeline([dedup], provider, provider.acall)
    results = await asyncio.gather(*(pipe.arun(make_call()) for _ in range(100)))
    assert len(provider.calls) == 1
    assert {r.text for r in results} == {"answer 1"}
    assert dedup.stats.coalesced == 99


async def test_threads_and_tasks_share_one_flight() -> None:
    provider = Provider(hold=0.3)
    dedup = Dedup()
    sync_pipe = Pipeline([dedup], provider)
    async_pipe = Pipeline([dedup], provider, provider.acall)
    with ThreadPoolExecutor(10) as pool:
        futures = [pool.submit(sync_pipe.run, make_call()) for _ in range(10)]
        async_results = await asyncio.gather(*(async_pipe.arun(make_call()) for _ in range(10)))
        thread_results = [f.result() for f in futures]
    assert len(provider.calls) == 1
    assert {r.text for r in [*async_results, *thread_results]} == {"answer 1"}


def test_sampled_calls_are_not_coalesced() -> None:
    provider = Provider(hold=0.05)
    pipe = Pipeline([Dedup()], provider)
    with ThreadPoolExecutor(5) as pool:
        list(pool.map(lambda _: pipe.run(make_call(temperature=None)), range(5)))
    assert len(provider.calls) == 5


def test_client_retry_after_timeout_gets_the_first_answer() -> None:
    clock = [0.0]
    provider = Provider()
    dedup = Dedup(ttl_s=60, clock=lambda: clock[0])
    pipe = Pipeline([dedup], provider)
    tags = Tags(idempotency_key="order-42")
    first = pipe.run(make_call(temperature=1.0, tags=tags))
    clock[0] = 59.0
    again = pipe.run(make_call(temperature=1.0, tags=tags))  # the client timed out and retried
    assert again.text == first.text and again.source == "dedup" and len(provider.calls) == 1
    clock[0] = 61.0
    assert pipe.run(make_call(temperature=1.0, tags=tags)).text == "answer 2"  # past the TTL
    assert dedup.stats.replayed == 1


def test_ttl_zero_coalesces_in_flight_only() -> None:
    provider = Provider()
    pipe = Pipeline([Dedup(ttl_s=0)], provider)
    pipe.run(make_call())
    pipe.run(make_call())
    assert len(provider.calls) == 2


def test_leader_error_is_shared_with_waiters_and_not_kept() -> None:
    err = openai.InternalServerError("down", response=httpx.Response(500, request=_REQ), body=None)
    provider = Provider(hold=0.3, fail=err)
    dedup = Dedup()
    pipe = Pipeline([dedup], provider)
    barrier = threading.Barrier(10)

    def one(_: int) -> str:
        barrier.wait()
        try:
            return pipe.run(make_call()).text or ""
        except openai.InternalServerError:
            return "failed"

    with ThreadPoolExecutor(10) as pool:
        outcomes = list(pool.map(one, range(10)))
    assert outcomes == ["failed"] * 10 and len(provider.calls) == 1
    provider.fail = None
    assert pipe.run(make_call()).text == "answer 2"  # a failure is not remembered


async def test_cancelled_leader_hands_over_to_a_waiter() -> None:
    provider = Provider(hold=0.3)
    pipe = Pipeline([Dedup()], provider, provider.acall)
    leader = asyncio.create_task(pipe.arun(make_call()))
    await asyncio.sleep(0.05)
    follower = asyncio.create_task(pipe.arun(make_call()))
    await asyncio.sleep(0.05)
    leader.cancel()
    result = await follower
    assert result.source == "provider"  # it became the leader and called itself
    assert len(provider.calls) == 1  # the cancelled leader never reached the provider's answer
    with pytest.raises(asyncio.CancelledError):
        await leader


def test_waiter_gives_up_after_wait_timeout() -> None:
    provider = Provider(hold=0.5)
    dedup = Dedup(wait_timeout_s=0.05)
    pipe = Pipeline([dedup], provider)
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(pipe.run, make_call())
        time.sleep(0.1)
        second = pool.submit(pipe.run, make_call())
        assert {first.result().text, second.result().text} == {"answer 1", "answer 2"}
    assert dedup.stats.wait_timeouts == 1


class _TextAccumulator:
    def __init__(self) -> None:
        self.parts: list[str] = []

    def add(self, chunk: Any) -> bool:
        self.parts.append(chunk)
        return True

    def result(self) -> Result:
        return Result(
            text="".join(self.parts),
            model="gpt-4o-mini",
            raw=completion("".join(self.parts)),
            finish_reason="stop",
            usage=Usage(input_tokens=12, output_tokens=len(self.parts)),
        )


def test_stream_followers_get_the_leaders_final_result() -> None:
    calls: list[Call] = []

    def streaming(call: Call) -> Result:
        calls.append(call)
        return Result(
            stream=ResultStream(iter(["Hel", "lo"]), _TextAccumulator(), lambda r: r.evolve(cost_usd=0.001)),
            model=call.model,
        )

    dedup = Dedup()
    pipe = Pipeline([dedup], streaming)
    lead = pipe.run(make_call(stream=True))
    assert lead.stream is not None
    with ThreadPoolExecutor(3) as pool:
        waiting = [pool.submit(pipe.run, make_call(stream=True)) for _ in range(3)]
        time.sleep(0.1)
        assert not any(f.done() for f in waiting)  # the stream is still being read
        assert "".join(lead.stream) == "Hello"
        followers = [f.result(timeout=5) for f in waiting]
    assert len(calls) == 1
    assert all(
        r.text == "Hello" and r.stream is None and r.source == "dedup" and r.cost_usd == 0.001 for r in followers
    )
    assert followers[0].raw.choices[0].message.content == "Hello"


def test_stream_closed_early_hands_over() -> None:
    calls: list[Call] = []

    def streaming(call: Call) -> Result:
        calls.append(call)
        return Result(stream=ResultStream(iter(["a", "b", "c"]), _TextAccumulator()), model=call.model)

    pipe = Pipeline([Dedup()], streaming)
    lead = pipe.run(make_call(stream=True))
    assert lead.stream is not None
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(pipe.run, make_call(stream=True))
        time.sleep(0.05)
        next(iter(lead.stream))
        lead.stream.close()  # the leader's caller gave up half way
        took_over = waiting.result(timeout=5)
    assert took_over.stream is not None and len(calls) == 2


# ----------------------------------------------------------------------------- Redis


@pytest.mark.redis
def test_redis_shares_the_answer_between_instances(redis_url: str) -> None:
    a_provider, b_provider = Provider(), Provider()
    a = Pipeline([Dedup(redis=redis_url, name="t")], a_provider)
    b = Pipeline([Dedup(redis=redis_url, name="t")], b_provider)
    first = a.run(make_call())
    second = b.run(make_call())
    assert len(a_provider.calls) == 1 and b_provider.calls == []
    assert second.source == "dedup" and second.text == first.text
    assert isinstance(second.raw, ChatCompletion) and second.raw.choices[0].message.content == "answer 1"
    assert second.usage == Usage(input_tokens=12, output_tokens=3) and second.cost_usd == 0.0042


def test_a_planted_redis_answer_never_runs_code_and_is_dropped(redis_url: str, monkeypatch: Any) -> None:
    """Another process's answers live in Redis, which is not a trusted code path."""
    import json

    import litellm
    import redis

    sent: list[dict] = []
    monkeypatch.setattr(litellm, "completion", lambda **kw: sent.append(kw))
    dedup = Dedup(redis=redis_url, name="plant")
    done_key = dedup._keys(dedup.key_for(make_call()))[0]
    plant = {"v": 1, "text": "PWNED", "tool_calls": [], "finish_reason": "stop", "usage": [1, 1, 0, 0, False],
             "model": "x", "cost_usd": 0.0,
             "raw": {"type": "litellm.completion", "data": {"model": "gpt-4o", "api_base": "http://attacker.invalid"}}}
    client = redis.Redis.from_url(redis_url)
    client.set(done_key, json.dumps(plant))
    provider = Provider()
    with pytest.warns(costkit._warn.CostkitWarning, match="could not be read"):
        result = Pipeline([dedup], provider).run(make_call())
    assert result.source == "provider" and result.text == "answer 1" and sent == []
    assert dedup.stats.corrupt == 1 and len(provider.calls) == 1
    assert client.get(done_key) is None or json.loads(client.get(done_key))["text"] == "answer 1"


@pytest.mark.redis
def test_redis_waiter_takes_over_a_dead_leaders_lock(redis_url: str) -> None:
    import redis

    dedup = Dedup(redis=redis_url, name="dead", lease_s=0.3, poll_s=0.02)
    key = dedup.key_for(make_call())
    assert key is not None
    _done_key, lock_key = dedup._keys(key)
    redis.Redis.from_url(redis_url).set(lock_key, "a-process-that-died", px=300)
    provider = Provider()
    result = Pipeline([dedup], provider).run(make_call())
    assert result.source == "provider" and len(provider.calls) == 1


@pytest.mark.redis
def test_redis_down_fail_open_keeps_in_process_dedup() -> None:
    provider = Provider(hold=0.2)
    dedup = Dedup(redis="redis://127.0.0.1:1/0")
    pipe = Pipeline([dedup], provider)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with ThreadPoolExecutor(20) as pool:
            results = list(pool.map(lambda _: pipe.run(make_call()), range(20)))
    assert len(provider.calls) == 1 and {r.text for r in results} == {"answer 1"}
    assert any("Redis" in str(w.message) for w in caught)


@pytest.mark.redis
def test_redis_down_fail_closed_fails_before_the_provider() -> None:
    provider = Provider()
    pipe = Pipeline([Dedup(redis="redis://127.0.0.1:1/0", on_redis_error="closed")], provider)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(StateUnavailable):
            pipe.run(make_call())
        # calls without a key never touch Redis
        assert pipe.run(make_call(temperature=None)).text == "answer 1"
    assert len(provider.calls) == 1


def _process_worker(redis_url: str, start_at: float, n_threads: int) -> tuple[int, list[str], int]:
    """One of four processes: 25 threads ask the same temperature-0 question through a wrapped client."""
    from costkit.testing import FakeOpenAI, FakeProvider

    fake = FakeProvider(latency_s=0.3, default=f"answered in process {os.getpid()}")
    dedup = Dedup(redis=redis_url, name="procs", poll_s=0.01)
    client = costkit.wrap(FakeOpenAI(fake), policies=[dedup], sink=None)

    def ask(_: int) -> str:
        reply = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "What is 2+2?"}], temperature=0
        )
        return reply.choices[0].message.content or ""

    time.sleep(max(0.0, start_at - time.time()))
    with ThreadPoolExecutor(n_threads) as pool:
        texts = list(pool.map(ask, range(n_threads)))
    return len(fake.calls), texts, dedup.stats.shared


@pytest.mark.redis
def test_four_processes_100_calls_one_provider_call(redis_url: str) -> None:
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        # the workers start importing now and begin together once all have (a few seconds on 2 cores)
        out = pool.starmap_async(_process_worker, [(redis_url, time.time() + 8.0, 25)] * 4, chunksize=1).get(180)
    assert sum(n for n, _, _ in out) == 1
    texts = [t for _, ts, _ in out for t in ts]
    # one process answered; the 99 other calls, in all four processes, got its answer (the SDK's own object)
    assert len(texts) == 100 and len(set(texts)) == 1 and texts[0].startswith("answered in process")
    # in each of the three other processes one thread got the answer from Redis, the rest from that thread
    assert sorted(shared for _, _, shared in out) == [0, 1, 1, 1]


# ----------------------------------------------------------------------------- end to end


def test_wrapped_client_100_threads_one_provider_call_and_dedup_records() -> None:
    from costkit.sinks import MemorySink
    from costkit.testing import FakeOpenAI, FakeProvider

    fake = FakeProvider(latency_s=0.3)
    sink = MemorySink()
    wrapped = costkit.wrap(FakeOpenAI(fake), policies=[Dedup()], sink=sink)
    barrier = threading.Barrier(100)

    def one(i: int) -> str:
        barrier.wait()
        kwargs: dict[str, Any] = {"stream": True} if i % 2 else {}
        reply = wrapped.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "What is 2+2?"}], temperature=0, **kwargs
        )
        if i % 2:
            return "".join(chunk.choices[0].delta.content or "" for chunk in reply if chunk.choices)
        return reply.choices[0].message.content or ""

    with ThreadPoolExecutor(100) as pool:
        texts = list(pool.map(one, range(100)))
    assert len(fake.calls) == 1
    assert len(set(texts)) == 1 and texts[0]
    records = sink.records
    provider = [r for r in records if r.kind != "cache_hit"]
    hits = [r for r in records if r.kind == "cache_hit"]
    assert len(provider) == 1 and len(hits) == 99
    assert all(r.cache == "dedup" and r.cost_usd == 0.0 for r in hits)
    assert provider[0].cost_usd is not None and provider[0].cost_usd > 0
    assert all(r.savings == {"dedup": provider[0].cost_usd} for r in hits)


async def test_wrapped_async_client_100_tasks_one_provider_call() -> None:
    from costkit.testing import FakeAsyncOpenAI, FakeProvider

    fake = FakeProvider(latency_s=0.2)
    wrapped = costkit.wrap(FakeAsyncOpenAI(fake), policies=[Dedup()], sink=None)
    replies = await asyncio.gather(
        *(
            wrapped.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "What is 2+2?"}], temperature=0
            )
            for _ in range(100)
        )
    )
    assert len(fake.calls) == 1
    assert len({r.choices[0].message.content for r in replies}) == 1


@pytest.mark.redis
def test_a_redis_that_never_answers_does_not_hang_the_call() -> None:
    import socket

    with socket.socket() as silent:  # accepts connections (the kernel's backlog), never replies
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        port = silent.getsockname()[1]
        provider = Provider()
        dedup = Dedup(redis=f"redis://127.0.0.1:{port}/0")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            first = Pipeline([dedup], provider).run(make_call())
            second = Pipeline([dedup], provider).run(make_call())  # Redis marked down: no second wait
    assert first.text == "answer 1" and second.source == "dedup" and len(provider.calls) == 1
    assert dedup.redis_guard is not None and dedup.redis_guard.failures == 1


@pytest.mark.redis
async def test_redis_cancelled_leader_releases_its_lock(redis_url: str) -> None:
    import redis

    slow = Provider(hold=5.0)
    a = Dedup(redis=redis_url, name="cancel", lease_s=60)
    leader = asyncio.create_task(Pipeline([a], slow, slow.acall).arun(make_call()))
    key = a.key_for(make_call())
    assert key is not None
    lock_key = a._keys(key)[1]
    client = redis.Redis.from_url(redis_url)
    for _ in range(200):
        if client.exists(lock_key):
            break
        await asyncio.sleep(0.01)
    assert client.exists(lock_key)
    leader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leader
    assert not client.exists(lock_key)  # released at once, not after lease_s
    fast = Provider()
    result = await Pipeline([Dedup(redis=redis_url, name="cancel")], fast, fast.acall).arun(make_call())
    assert result.source == "provider" and len(fast.calls) == 1
