"""@costkit.budgeted: per-invocation, per-day and per-month spend of a function, enforced by ScopeCheck."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any

import pytest

from costkit._budgeted import _UNLIMITED, BudgetedScope, ScopeCheck, active_scopes, budgeted, charge, deferring
from costkit._call import Call, Result, Usage
from costkit._context import current_tags
from costkit._ledger import Hold
from costkit._pipeline import Pipeline
from costkit._scope import RequestScope
from costkit._stream import ResultStream
from costkit.errors import BudgetExceeded, ConfigError, GuardrailViolation
from costkit.policies.guardrails import WorstCaseEstimator
from costkit.pricing import PriceBook
from costkit.records import CostRecord


def book() -> PriceBook:
    b = PriceBook(base=None, cost_map={})
    b.register("strong", input_per_million=10, output_per_million=30, max_output_tokens=1000)
    return b


class FixedInput(WorstCaseEstimator):
    """Every prompt is 1000 tokens: with max_tokens=100 the worst case is $0.013, 50 output tokens cost $0.0115."""

    def __init__(self) -> None:
        super().__init__(book())

    def input_tokens(self, call: Call) -> int:
        return 1000


WORST, ACTUAL = 0.013, 0.0115


class Provider:
    def __init__(self, tool_calls: bool = False) -> None:
        self.calls: list[Call] = []
        self.tool_calls = tool_calls
        self.prices = book()
        self.lock = threading.Lock()

    def __call__(self, call: Call) -> Result:
        with self.lock:
            self.calls.append(call)
        usage = Usage(input_tokens=1000, output_tokens=50)
        tools = ({"id": "1", "name": "lookup"},) if self.tool_calls else ()
        return Result(
            text="ok",
            tool_calls=tools,
            finish_reason="tool_calls" if tools else "stop",
            usage=usage,
            model=call.model,
            cost_usd=self.prices.cost(call.model, usage),
        )

    async def acall(self, call: Call) -> Result:
        await asyncio.sleep(0)
        return self(call)


def make_call(max_tokens: int = 100) -> Call:
    return Call(
        provider="openai",
        api="chat",
        requested_model="strong",
        model="strong",
        messages=({"role": "user", "content": "hi"},),
        max_output_tokens=max_tokens,
    )


def chain(provider: Provider) -> Pipeline:
    return Pipeline([ScopeCheck(estimator=FixedInput())], provider, provider.acall)


def test_per_call_limit_refuses_the_call_that_would_exceed_it() -> None:
    provider = Provider()
    run = chain(provider).run

    @budgeted(feature="summary", max_usd_per_call=0.03)
    def summarize() -> None:
        run(make_call())
        run(make_call())  # 0.0115 + 0.013 <= 0.03
        run(make_call())  # 0.023 + 0.013 > 0.03

    with pytest.raises(BudgetExceeded) as e:
        summarize()
    assert len(provider.calls) == 2
    err = e.value
    assert err.spent_usd == pytest.approx(2 * ACTUAL, abs=1e-12)
    assert err.limit_usd == 0.03 and err.requested_usd == pytest.approx(WORST, abs=1e-12)
    assert err.scope == "budgeted:summary:max_usd_per_call"
    assert err.details["remaining"] == pytest.approx(0.03 - 2 * ACTUAL, abs=1e-12)
    # the next invocation starts a fresh per-call budget
    provider.calls.clear()

    @budgeted(max_usd_per_call=0.03)
    def once() -> None:
        run(make_call())

    once()
    once()
    assert len(provider.calls) == 2


def test_per_day_limit_spans_invocations() -> None:
    provider = Provider()
    run = chain(provider).run

    @budgeted(feature="nightly", max_usd_per_call=0.02, max_usd_per_day=0.05)
    def nightly() -> None:
        run(make_call())

    for _ in range(3):
        nightly()  # 3 x 0.0115 = 0.0345; a 4th: 0.0345 + 0.013 = 0.0475 <= 0.05
    nightly()
    with pytest.raises(BudgetExceeded) as e:
        nightly()  # 0.046 + 0.013 > 0.05
    assert e.value.details["limit"] == "max_usd_per_day"
    assert nightly.budget.spent_today() == pytest.approx(4 * ACTUAL, abs=1e-12)  # type: ignore[attr-defined]
    assert nightly.budget.spent_this_month() == pytest.approx(4 * ACTUAL, abs=1e-12)  # type: ignore[attr-defined]


def test_month_limit() -> None:
    run = chain(Provider()).run

    @budgeted(max_usd_per_month=0.02)
    def f() -> None:
        run(make_call())

    f()
    with pytest.raises(BudgetExceeded, match="max_usd_per_month"):
        f()


async def test_async_function_and_the_tasks_it_starts() -> None:
    provider = Provider()
    arun = chain(provider).arun
    refused: list[BudgetExceeded] = []

    async def one() -> None:
        try:
            await arun(make_call())
        except BudgetExceeded as e:
            refused.append(e)

    @budgeted(max_usd_per_call=0.1)
    async def agent() -> None:
        await asyncio.gather(*(one() for _ in range(20)))  # tasks copy the context: the scope follows

    await agent()
    assert len(provider.calls) == 7  # 7 worst cases held at once fit in $0.10, an 8th does not
    assert all(e.details["remaining"] < e.requested_usd for e in refused)


def test_threads_share_the_scope_when_given_the_context() -> None:
    provider = Provider()
    run = chain(provider).run
    spent: list[float] = []

    @budgeted(max_usd_per_call=0.2)
    def fan_out() -> None:
        def work() -> None:
            for _ in range(5):
                try:
                    run(make_call())
                except BudgetExceeded:
                    pass

        with ThreadPoolExecutor(8) as pool:
            for f in [pool.submit(contextvars.copy_context().run, work) for _ in range(8)]:
                f.result()
        spent.append(active_scopes()[-1].spent_usd)

    fan_out()
    assert spent[0] <= 0.2
    assert spent[0] == pytest.approx(len(provider.calls) * ACTUAL, abs=1e-12)
    assert 13 <= len(provider.calls) <= 17  # sequentially 17 fit (17 x 0.0115 + 0.013 > 0.2)


def test_a_thread_without_the_context_is_outside_the_scope() -> None:
    provider = Provider()
    run = chain(provider).run

    @budgeted(max_usd_per_call=0.001)
    def f() -> None:
        t = threading.Thread(target=run, args=(make_call(),))
        t.start()
        t.join()

    f()
    assert len(provider.calls) == 1


def test_max_calls() -> None:
    provider = Provider()
    run = chain(provider).run

    @budgeted(max_calls=3)
    def loop() -> None:
        while True:
            run(make_call())

    with pytest.raises(GuardrailViolation) as e:
        loop()
    assert e.value.rule == "max_calls" and len(provider.calls) == 3


def test_max_tool_steps_stops_a_runaway_agent() -> None:
    provider = Provider(tool_calls=True)  # the model asks for a tool every time
    run = chain(provider).run

    @budgeted(max_tool_steps=2)
    def agent() -> None:
        while True:
            run(make_call())

    with pytest.raises(GuardrailViolation) as e:
        agent()
    # two tool rounds allowed; the third request for tools is paid for, then the loop is stopped
    assert e.value.rule == "max_tool_steps" and len(provider.calls) == 3


def test_feature_and_tenant_tag_the_calls_inside() -> None:
    seen: list[Any] = []

    @budgeted(feature="nightly", tenant="acme")
    def f() -> None:
        seen.append(current_tags())

    f()
    assert (seen[0].feature, seen[0].tenant) == ("nightly", "acme")
    assert current_tags().feature is None


def test_no_scope_no_work() -> None:
    class Exploding(WorstCaseEstimator):
        def __call__(self, call: Call) -> Any:
            raise AssertionError("the estimate is not made outside a scope")

    provider = Provider()
    Pipeline([ScopeCheck(estimator=Exploding())], provider).run(make_call())
    assert len(provider.calls) == 1


def test_nested_scopes_are_all_enforced_and_charged() -> None:
    run = chain(Provider()).run

    @budgeted(max_usd_per_call=0.02)
    def inner() -> None:
        run(make_call())

    @budgeted(max_usd_per_call=0.03)
    def outer() -> float:
        inner()
        inner()  # each inner call has room; outer: 0.0115 + 0.013 <= 0.03
        return active_scopes()[-1].spent_usd

    assert outer.__wrapped__ is not None  # type: ignore[attr-defined]

    @budgeted(max_usd_per_call=0.03)
    def outer3() -> None:
        inner()
        inner()
        inner()  # outer: 0.023 + 0.013 > 0.03

    with pytest.raises(BudgetExceeded, match="outer3"):
        outer3()
    assert outer() == pytest.approx(2 * ACTUAL, abs=1e-12)


def test_failure_releases_the_hold() -> None:
    def down(call: Call) -> Result:
        raise ConnectionError

    run = Pipeline([ScopeCheck(estimator=FixedInput())], down).run

    @budgeted(max_usd_per_call=0.02)
    def f() -> float:
        for _ in range(3):
            with pytest.raises(ConnectionError):
                run(make_call())  # never refused: each failure gave its hold back
        return active_scopes()[-1].spent_usd

    assert f() == 0.0


class _Acc:
    def __init__(self) -> None:
        self.n = 0

    def add(self, chunk: Any) -> bool:
        self.n += 1
        return True

    def result(self) -> Result:
        return Result(text="x" * self.n, usage=Usage(input_tokens=1000, output_tokens=self.n))


def test_stream_is_settled_when_consumed() -> None:
    prices = book()

    def terminal(call: Call) -> Result:
        finalize = lambda r: r.evolve(cost_usd=prices.cost("strong", r.usage))  # noqa: E731
        return Result(stream=ResultStream(iter(range(10)), _Acc(), finalize), model=call.model)

    run = Pipeline([ScopeCheck(estimator=FixedInput())], terminal).run

    @budgeted(max_usd_per_call=1.0)
    def f() -> tuple[float, float]:
        result = run(make_call().evolve(stream=True))
        before = active_scopes()[-1].spent_usd
        assert isinstance(result.stream, ResultStream)
        list(result.stream)
        return before, active_scopes()[-1].spent_usd

    assert f() == (0.0, pytest.approx(0.01 + 10 * 30e-6, abs=1e-12))


def record(request_id: str, cost: float) -> CostRecord:
    return CostRecord(
        request_id=request_id,
        attempt=1,
        kind="embedding",
        timestamp=0.0,
        provider="openai",
        requested_model="m",
        model="m",
        cost_usd=cost,
    )


def test_charge_adds_records_the_scope_check_did_not_see() -> None:
    run = chain(Provider()).run

    @budgeted(max_usd_per_call=0.05)
    def f() -> float:
        charge(record("emb-1", 0.004))  # e.g. an embedding call made inside the function
        call = make_call()
        run(call)
        charge(record(call.request_id, ACTUAL))  # the recorder's record of the checked call: not twice
        return active_scopes()[-1].spent_usd

    assert f() == pytest.approx(0.004 + ACTUAL, abs=1e-12)
    charge(record("outside", 1.0))  # no scope: nothing happens


def test_charged_spend_counts_against_the_limit() -> None:
    run = chain(Provider()).run

    @budgeted(max_usd_per_call=0.02)
    def f() -> None:
        charge(record("judge", 0.01))
        run(make_call())  # 0.01 + 0.013 > 0.02

    with pytest.raises(BudgetExceeded):
        f()


def test_with_a_wrapped_client() -> None:
    import costkit
    from costkit.sinks.memory import MemorySink
    from costkit.testing import FakeOpenAI, FakeProvider

    sink = MemorySink()
    client = costkit.wrap(FakeOpenAI(FakeProvider(default="an answer")), policies=[ScopeCheck()], sink=sink)
    client.costkit_recorder.listeners.append(charge)  # what costkit.wrap does for every client

    @budgeted(feature="faq", max_usd_per_call=0.01)
    def ask() -> float:
        for _ in range(2):
            client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "hello"}], max_tokens=20
            )
        return active_scopes()[-1].spent_usd

    spent = ask()
    assert len(sink.records) == 2 and all(r.feature == "faq" for r in sink.records)
    assert spent == pytest.approx(sum(r.cost_usd or 0 for r in sink.records), abs=1e-9)


def test_bare_decorator_and_sync_async_detection() -> None:
    @budgeted
    def f(x: int) -> int:
        return x + 1

    @budgeted(max_calls=1)
    async def g(x: int) -> int:
        return x * 2

    assert f(1) == 2 and f.__name__ == "f"
    assert asyncio.run(g(3)) == 6 and asyncio.iscoroutinefunction(g)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"max_usd_per_call": 0}, "max_usd_per_call"),
        ({"max_usd_per_day": -1}, "max_usd_per_day"),
        ({"max_usd_per_month": "10"}, "max_usd_per_month"),
        ({"max_calls": 2.5}, "max_calls"),
        ({"max_tool_steps": 0}, "max_tool_steps"),
        ({"feature": ""}, "feature"),
    ],
)
def test_config_errors_at_decoration(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as e:
        budgeted(**kwargs)(lambda: None)
    assert e.value.field == field


def test_last_in_the_chain_a_request_counts_once_and_each_attempt_holds_its_own_worst_case() -> None:
    from costkit._pipeline import FlowPolicy

    provider = Provider()

    class ThreeAttempts(FlowPolicy):  # e.g. a retry policy above the check
        def flow(self, call: Call) -> Any:
            for n in (1, 2, 3):
                result = yield call.evolve(attempt=n, kind="call" if n == 1 else "retry")
            return result

    run = Pipeline([ThreeAttempts(), ScopeCheck(estimator=FixedInput())], provider).run

    @budgeted(max_calls=1, max_usd_per_call=0.04)
    def f() -> float:
        run(make_call())  # 3 attempts x 0.0115; the third: 0.023 + 0.013 <= 0.04
        return active_scopes()[-1].spent_usd

    assert f() == pytest.approx(3 * ACTUAL, abs=1e-12)
    assert len(provider.calls) == 3

    @budgeted(max_usd_per_call=0.03)
    def g() -> None:
        run(make_call())  # the third attempt's worst case no longer fits: refused before it is sent

    provider.calls.clear()
    with pytest.raises(BudgetExceeded):
        g()
    assert len(provider.calls) == 2


# ------------------------------------------------------------------ cancelled and timed-out requests are billed


async def test_cancelled_requests_are_recorded_and_charged_for_their_input() -> None:
    """The reported bypass: 30 wait_for-cancelled gpt-4o calls inside @budgeted(max_usd_per_day=0.001) spent 0."""
    import costkit
    from costkit.sinks import MemorySink
    from costkit.testing import FakeAsyncOpenAI, FakeProvider

    sink = MemorySink()
    client = costkit.wrap(FakeAsyncOpenAI(FakeProvider(latency_s=5.0)), sink=sink)
    prompt = [{"role": "user", "content": "Summarize the following report in detail. " * 20}]

    @budgeted(max_usd_per_day=0.001)
    async def ask() -> Any:
        call = client.chat.completions.create(model="gpt-4o", messages=prompt, max_tokens=10)
        return await asyncio.wait_for(call, 0.02)

    outcomes = []
    for _ in range(30):
        try:
            await ask()
        except TimeoutError:
            outcomes.append("timeout")
        except BudgetExceeded:
            outcomes.append("refused")
    timeouts = outcomes.count("timeout")
    assert timeouts >= 1 and outcomes.count("refused") == 30 - timeouts
    assert len(sink.records) == timeouts
    for r in sink.records:
        assert (r.success, r.usage_estimated, r.error_type) == (False, True, "CancelledError")
        assert r.input_tokens > 100 and r.output_tokens == 0 and r.cost_usd == pytest.approx(r.input_tokens * 2.5e-6)
    spent = ask.budget.spent_today()  # type: ignore[attr-defined]
    assert spent == pytest.approx(sum(r.cost_usd for r in sink.records)) and 0 < spent <= 0.001


def test_a_request_refused_with_an_http_status_is_not_billed() -> None:
    import openai

    import costkit
    from costkit.sinks import MemorySink
    from costkit.testing import FakeOpenAI

    sink = MemorySink()
    raw = FakeOpenAI()
    raw.fake.fail_next(1, 400)
    with pytest.raises(openai.BadRequestError):
        costkit.wrap(raw, sink=sink).chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "x"}]
        )
    (r,) = sink.records
    assert (r.success, r.cost_usd, r.input_tokens, r.usage_estimated) == (False, 0.0, 0, False)


# ------------------------------------------------------------------ exact amounts on every reserve and settle path
class FixedWorst(WorstCaseEstimator):
    """A worst case of exactly ``usd`` (None: an unpriced model)."""

    def __init__(self, usd: float | None) -> None:
        super().__init__(book())
        self.usd = usd

    def __call__(self, call: Call) -> Any:
        from costkit._estimate import WorstCase

        return WorstCase(model=call.model, input_tokens=0, max_output_tokens=0, output_cap_from="call", usd=self.usd)


def _held() -> tuple[int, int]:
    """(reserved, spent) of the innermost invocation's per-call ledger, in nano-dollars."""
    inv = active_scopes()[-1]
    state = inv.scope.backend.usage(inv.call_key)
    return state.reserved, state.spent


def _attempt(call: Call, cost: float, input_tokens: int) -> CostRecord:
    return CostRecord(
        request_id=call.request_id,
        attempt=call.attempt,
        kind=call.kind,
        timestamp=0.0,
        provider="openai",
        requested_model=call.requested_model,
        model=call.model,
        input_tokens=input_tokens,
        cost_usd=cost,
    )


def test_a_hold_is_rounded_up_to_the_next_nano_dollar() -> None:
    seen: list[tuple[int, int]] = []

    def provider(call: Call) -> Result:
        seen.append(_held())
        return Result(text="x", cost_usd=1e-9)

    run = Pipeline([ScopeCheck(estimator=FixedWorst(1.2e-9))], provider).run

    @budgeted(max_usd_per_call=1e-9)
    def tight() -> None:
        run(make_call())

    with pytest.raises(BudgetExceeded) as e:
        tight()  # 1.2 nano-dollars hold 2: more than the 1 allowed
    assert e.value.requested_usd == 2e-9 and e.value.limit_usd == 1e-9

    @budgeted(max_usd_per_call=2e-9)
    def room() -> tuple[int, int]:
        run(make_call())
        return _held()

    assert room() == (0, 1)
    assert seen == [(2, 0)]


def test_an_unpriced_model_holds_nothing_and_settles_what_its_records_say() -> None:
    seen: list[tuple[int, int]] = []

    def provider(call: Call) -> Result:
        seen.append(_held())
        return Result(text="x", cost_usd=0.002)

    run = Pipeline([ScopeCheck(estimator=FixedWorst(None))], provider).run

    @budgeted(max_usd_per_call=0.005)
    def f() -> tuple[int, int]:
        run(make_call())
        return _held()

    with pytest.warns(UserWarning, match="cannot price 'strong'"):
        assert f() == (0, 2_000_000)
    assert seen == [(0, 0)]


def test_a_request_that_failed_after_paid_attempts_is_charged_what_they_cost() -> None:
    def paid_then_fails(call: Call) -> Result:
        assert call.scope is not None
        call.scope.add(_attempt(call, 0.004, 400))
        call.scope.add(_attempt(call, 0.0025, 250))
        raise ConnectionError

    run = Pipeline([ScopeCheck(estimator=FixedInput())], paid_then_fails).run

    @budgeted(max_usd_per_call=1.0)
    def f() -> tuple[int, int]:
        with pytest.raises(ConnectionError):
            run(make_call().evolve(scope=RequestScope()))
        return _held()

    assert f() == (0, 6_500_000)


async def test_an_async_request_that_failed_after_a_paid_attempt_is_charged_for_it() -> None:
    async def paid_then_fails(call: Call) -> Result:
        await asyncio.sleep(0)
        assert call.scope is not None
        call.scope.add(_attempt(call, 0.004, 400))
        raise ConnectionError

    arun = Pipeline([ScopeCheck(estimator=FixedInput())], lambda c: Result(), paid_then_fails).arun

    @budgeted(max_usd_per_call=1.0)
    async def f() -> tuple[int, int]:
        with pytest.raises(ConnectionError):
            await arun(make_call().evolve(scope=RequestScope()))
        return _held()

    assert await f() == (0, 4_000_000)


@pytest.mark.parametrize(("paid", "spent"), [(False, 0), (True, 2_000_000)])
def test_an_interrupted_call_still_settles_or_releases_its_hold(paid: bool, spent: int) -> None:
    def interrupted(call: Call) -> Result:
        if paid:
            assert call.scope is not None
            call.scope.add(_attempt(call, 0.002, 200))
        raise KeyboardInterrupt

    run = Pipeline([ScopeCheck(estimator=FixedInput())], interrupted).run

    @budgeted(max_usd_per_call=1.0)
    def f() -> tuple[int, int]:
        with pytest.raises(KeyboardInterrupt):
            run(make_call().evolve(scope=RequestScope()))
        return _held()

    assert f() == (0, spent)


def test_a_streamed_answer_after_a_failed_attempt_is_charged_for_both() -> None:
    prices = book()

    def failed_once_then_streams(call: Call) -> Result:
        assert call.scope is not None
        call.scope.add(_attempt(call, 0.004, 400))
        finalize = lambda r: r.evolve(cost_usd=prices.cost("strong", r.usage))  # noqa: E731
        return Result(stream=ResultStream(iter(range(10)), _Acc(), finalize), model=call.model)

    run = Pipeline([ScopeCheck(estimator=FixedInput())], failed_once_then_streams).run

    @budgeted(max_usd_per_call=1.0)
    def f() -> tuple[tuple[int, int], tuple[int, int]]:
        result = run(make_call().evolve(stream=True, scope=RequestScope()))
        during = _held()
        list(result.stream)  # type: ignore[arg-type]
        return during, _held()

    # held: the worst case $0.013; then the failed attempt $0.004 + the stream (1000 in, 10 out) $0.0103
    assert f() == ((13_000_000, 0), (0, 14_300_000))


def test_a_refusal_in_an_inner_scope_gives_back_the_outer_hold_and_count() -> None:
    provider = Provider()
    run = chain(provider).run
    outer_state: list[tuple[int, int, int]] = []

    @budgeted(max_usd_per_call=0.001)
    def inner() -> None:
        run(make_call())

    @budgeted(max_usd_per_call=1.0, max_calls=5)
    def outer() -> None:
        with pytest.raises(BudgetExceeded):
            inner()
        inv = active_scopes()[-1]
        state = inv.scope.backend.usage(inv.call_key)
        outer_state.append((state.reserved, state.spent, inv.calls))

    outer()
    assert outer_state == [(0, 0, 0)] and provider.calls == []


def test_the_per_call_day_and_month_ledgers_are_each_charged() -> None:
    run = chain(Provider()).run

    @budgeted(max_usd_per_call=1.0, max_usd_per_day=2.0, max_usd_per_month=3.0)
    def f() -> None:
        run(make_call())
        run(make_call())

    f()
    assert f.budget.spent_today() == pytest.approx(2 * ACTUAL, abs=1e-12)  # type: ignore[attr-defined]
    assert f.budget.spent_this_month() == pytest.approx(2 * ACTUAL, abs=1e-12)  # type: ignore[attr-defined]
    day = f.budget.backend.usage(f.budget._key("day")[0])  # type: ignore[attr-defined]
    assert (day.spent, day.reserved) == (23_000_000, 0)


def test_a_budgeted_scope_reserves_for_the_call_as_the_leading_guardrails_cap_it() -> None:
    """A call without max_tokens was priced at the model's 16k-token ceiling and refused, although the
    Guardrails in front capped it at 300."""
    import costkit
    from costkit.sinks import MemorySink
    from costkit.testing import FakeOpenAI

    client = costkit.wrap(FakeOpenAI(), [costkit.Guardrails(max_output_tokens=300)], sink=MemorySink())
    assert [type(p).__name__ for p in client.costkit_policies] == ["Guardrails", "ScopeCheck"]

    @budgeted(max_usd_per_call=0.01)
    def ask() -> Any:
        return client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])

    assert ask().choices[0].message.content


# ------------------------------------------------------------------ the holds, the refusal, deferred answers
NOV_22 = datetime(2026, 11, 22, 12, tzinfo=timezone.utc).timestamp()
NOV_23 = datetime(2026, 11, 23, tzinfo=timezone.utc).timestamp()
DEC_1 = datetime(2026, 12, 1, tzinfo=timezone.utc).timestamp()


def test_the_holds_of_a_call_name_each_ledger_its_limit_and_when_its_window_ends() -> None:
    scope = BudgetedScope(name="f", max_usd_per_call=0.5, max_usd_per_month=3.0, clock=lambda: NOV_22)
    with scope.invocation() as inv:
        assert scope.holds(inv, 7) == [
            ("max_usd_per_call", Hold(key=inv.call_key, limit=500_000_000, amount=7, expires_at=None)),
            # no day limit: the ledger only counts (for spent_today())
            ("max_usd_per_day", Hold(key="day|2026-11-22", limit=_UNLIMITED, amount=7, expires_at=NOV_23)),
            ("max_usd_per_month", Hold(key="month|2026-11", limit=3_000_000_000, amount=7, expires_at=DEC_1)),
        ]


def test_a_refusal_says_exactly_what_did_not_fit() -> None:
    provider = Provider()
    run = chain(provider).run
    refusals: list[BudgetExceeded] = []

    def second_then_third(call: Call) -> Result:
        with pytest.raises(BudgetExceeded) as e:
            run(make_call())  # while this call's worst case is held
        refusals.append(e.value)
        return provider(call)

    @budgeted(feature="summary", max_usd_per_call=0.03)
    def summarize() -> None:
        run(make_call())
        Pipeline([ScopeCheck(estimator=FixedInput())], second_then_third).run(make_call())

    summarize()
    (err,) = refusals
    # spent $0.0115 + held $0.013 + this call's $0.013 > $0.03; the third call counted while it was checked
    assert (err.scope, err.spent_usd, err.limit_usd, err.requested_usd) == (
        "budgeted:summary:max_usd_per_call",
        0.0115,
        0.03,
        0.013,
    )
    assert err.details == {
        "reason": "limit",
        "limit": "max_usd_per_call",
        "reserved": 0.013,
        "remaining": 0.0055,
        "model": "strong",
        "calls": 3,
    }
    assert str(err) == (
        "summary: this call's worst case on strong does not fit in max_usd_per_call (scope=budgeted:summary:"
        "max_usd_per_call, spent=$0.011500, limit=$0.030000, this call up to $0.013000)"
    )


def test_a_scope_with_only_call_counts_never_prices_the_call() -> None:
    provider = Provider()
    run = Pipeline([ScopeCheck(estimator=FixedWorst(None))], provider).run

    @budgeted(max_calls=2)
    def f() -> None:
        run(make_call())

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an unpriced model would be warned about if it were priced
        f()
    assert len(provider.calls) == 1


def test_a_deferred_call_is_answered_without_the_chain_or_a_hold() -> None:
    provider = Provider()
    run = chain(provider).run
    asked: list[Call] = []

    def answer(call: Call) -> Result:
        asked.append(call)
        return Result(text="from the batch job")

    @budgeted(max_usd_per_call=0.001)  # less than the worst case: the chain would refuse it
    def f() -> tuple[str | None, tuple[int, int]]:
        call = make_call()
        with deferring(answer):
            result = run(call)
        assert asked == [call]
        return result.text, _held()

    assert f() == ("from the batch job", (0, 0))
    assert provider.calls == []
