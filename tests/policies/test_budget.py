"""Budget: reserve the worst case, settle the actual, release on failure; in-process and across processes."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import subprocess
import sys
import threading
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from costkit._call import Call, Result, Tags, Usage
from costkit._ledger import CounterState, Hold, InProcessBudgetBackend, usd_to_nano
from costkit._pipeline import FlowPolicy, Pipeline
from costkit._scope import RequestScope
from costkit._stream import ResultStream
from costkit._warn import CostkitWarning
from costkit.errors import BudgetExceeded, ConfigError
from costkit.policies.budget import Budget, BudgetAlert, BudgetLimit
from costkit.policies.budget_backends import RedisBudgetBackend
from costkit.policies.guardrails import WorstCaseEstimator
from costkit.pricing import PriceBook
from costkit.records import CostRecord

INPUT_TOKENS = 1000  # every test prompt counts as 1000 tokens: costs are exact below


def book() -> PriceBook:
    b = PriceBook(base=None, cost_map={})
    b.register("strong", input_per_million=10, output_per_million=30, max_output_tokens=1000)
    b.register("cheap", input_per_million=1, output_per_million=2, max_output_tokens=1000)
    return b


class FixedInput(WorstCaseEstimator):
    """Prices with the test book; every prompt is INPUT_TOKENS long (the tokenizer is tested elsewhere)."""

    def __init__(self, input_tokens: int = INPUT_TOKENS) -> None:
        super().__init__(book())
        self.n = input_tokens

    def input_tokens(self, call: Call) -> int:
        return self.n


class Provider:
    """A terminal answering with ``output`` tokens; logs the models it was called with."""

    def __init__(self, output: int = 50, fail: BaseException | None = None, input_tokens: int = INPUT_TOKENS) -> None:
        self.output = output
        self.input_tokens = input_tokens
        self.fail = fail
        self.models: list[str] = []
        self.prices = book()

    def __call__(self, call: Call) -> Result:
        self.models.append(call.model)
        if self.fail is not None:
            raise self.fail
        usage = Usage(input_tokens=self.input_tokens, output_tokens=self.output)
        return Result(text="ok", usage=usage, model=call.model, cost_usd=self.prices.cost(call.model, usage))

    async def acall(self, call: Call) -> Result:
        await asyncio.sleep(0)
        return self(call)


def make_call(model: str = "strong", max_tokens: int | None = 100, **tags: str) -> Call:
    return Call(
        provider="openai",
        api="chat",
        requested_model=model,
        model=model,
        messages=({"role": "user", "content": "hi"},),
        max_output_tokens=max_tokens,
        tags=Tags(**tags),
    )


def budget(*limits: BudgetLimit, **kw: Any) -> Budget:
    kw.setdefault("estimator", FixedInput())
    return Budget(list(limits), **kw)


# strong, 1000 input tokens: $0.01; 100 output tokens: $0.003 -> worst case $0.013; 50 output: actual $0.0115
WORST, ACTUAL = 0.013, 0.0115


def test_settles_the_actual_cost_exactly() -> None:
    limit = BudgetLimit(usd=1.0)
    b = budget(limit)
    Pipeline([b], Provider()).run(make_call())
    assert b.spent(limit) == pytest.approx(ACTUAL, abs=0)
    assert b.backend.usage(b.key_for(limit)).reserved == 0


def test_refuses_a_call_whose_worst_case_does_not_fit() -> None:
    limit = BudgetLimit(usd=0.03)
    b, provider = budget(limit), Provider()
    run = Pipeline([b], provider).run
    run(make_call())
    run(make_call())  # 0.0115 spent + 0.013 worst = 0.0245 <= 0.03: allowed
    with pytest.raises(BudgetExceeded) as e:
        run(make_call())  # 0.023 spent + 0.013 worst > 0.03
    assert len(provider.models) == 2  # the refused call never reached the provider
    err = e.value
    assert err.spent_usd == pytest.approx(0.023, abs=1e-12)
    assert err.limit_usd == 0.03 and err.requested_usd == pytest.approx(WORST, abs=1e-12)
    assert err.scope.startswith("day:global[global]@")
    assert err.details["remaining"] == pytest.approx(0.007, abs=1e-12)
    assert err.details["reason"] == "limit" and err.details["unit"] == "usd"


def test_a_call_that_fits_the_remaining_budget_is_not_refused() -> None:
    limit = BudgetLimit(usd=0.03)
    b, provider = budget(limit, estimator=FixedInput(100)), Provider(input_tokens=100)
    run = Pipeline([b], provider).run
    # 100 input tokens = $0.001; max_tokens 100 -> worst $0.004; actual (50 out) $0.0025
    for _ in range(11):
        run(make_call())
    assert b.spent(limit) == pytest.approx(0.0275, abs=1e-12)  # 0.0025 left: worst 0.004 no longer fits
    with pytest.raises(BudgetExceeded):
        run(make_call())
    run(make_call(max_tokens=40))  # worst 0.001 + 0.0012 = 0.0022 <= 0.0025: allowed
    assert len(provider.models) == 12


def test_failure_releases_the_hold_and_the_error_passes_through() -> None:
    limit = BudgetLimit(usd=1.0)
    b = budget(limit)

    class ProviderDown(Exception):
        pass

    with pytest.raises(ProviderDown):
        Pipeline([b], Provider(fail=ProviderDown())).run(make_call())
    state = b.backend.usage(b.key_for(limit))
    assert (state.spent, state.reserved) == (0, 0)


def test_limits_per_tenant_feature_and_pair() -> None:
    per_tenant = BudgetLimit(usd=1.0, tenant="*")
    acme_only = BudgetLimit(usd=1.0, tenant="acme")
    per_pair = BudgetLimit(usd=1.0, tenant="*", feature="*")
    faq = BudgetLimit(usd=1.0, feature="faq", window="month")
    b = budget(per_tenant, acme_only, per_pair, faq)
    run = Pipeline([b], Provider()).run
    run(make_call(tenant="acme", feature="faq"))
    run(make_call(tenant="acme", feature="chat"))
    run(make_call(tenant="beta", feature="faq"))
    run(make_call())
    acme, beta = Tags(tenant="acme"), Tags(tenant="beta")
    assert b.spent(per_tenant, acme) == pytest.approx(2 * ACTUAL, abs=1e-12)
    assert b.spent(per_tenant, beta) == pytest.approx(ACTUAL, abs=1e-12)
    assert b.spent(per_tenant, Tags()) == pytest.approx(ACTUAL, abs=1e-12)  # untagged calls: bucket "-"
    assert b.spent(acme_only, acme) == pytest.approx(2 * ACTUAL, abs=1e-12)
    assert b.spent(per_pair, Tags(tenant="acme", feature="chat")) == pytest.approx(ACTUAL, abs=1e-12)
    assert b.spent(faq, Tags(feature="faq")) == pytest.approx(2 * ACTUAL, abs=1e-12)
    assert b.key_for(per_pair, Tags(tenant="acme", feature="faq")).startswith(
        "day:tenant=*,feature=*|tenant=acme,feature=faq|"
    )
    with pytest.raises(ValueError):
        b.key_for(acme_only, beta)


def test_one_exhausted_tenant_does_not_block_another() -> None:
    per_tenant = BudgetLimit(usd=0.02, tenant="*")
    b = budget(per_tenant)
    run = Pipeline([b], Provider()).run
    run(make_call(tenant="acme"))
    with pytest.raises(BudgetExceeded) as e:
        run(make_call(tenant="acme"))
    assert e.value.details["bucket"] == "tenant=acme"
    run(make_call(tenant="beta"))


def test_degrades_to_a_cheaper_model_when_the_budget_is_short() -> None:
    limit = BudgetLimit(usd=0.02)
    b, provider = budget(limit, on_exceed="degrade", degrade_to=["cheap"]), Provider()
    seen: list[Call] = []

    class Spy(FlowPolicy):
        def flow(self, call: Call) -> Any:
            seen.append(call)
            return (yield call)

    run = Pipeline([b, Spy()], provider).run
    run(make_call())  # strong: spent 0.0115, 0.0085 left < 0.013
    run(make_call())  # cheap worst: 0.001 + 0.0002 = 0.0012: fits
    assert provider.models == ["strong", "cheap"]
    assert seen[1].notes["budget_degraded"] == {"from": "strong", "to": "cheap"}
    assert seen[1].requested_model == "strong"
    assert b.spent(limit) == pytest.approx(ACTUAL + 0.0011, abs=1e-12)


def test_degrade_raises_when_nothing_fits() -> None:
    b = budget(BudgetLimit(usd=0.0005), on_exceed="degrade", degrade_to="cheap")
    with pytest.raises(BudgetExceeded):
        Pipeline([b], Provider()).run(make_call())


def test_token_budgets() -> None:
    limit = BudgetLimit(tokens=2500)
    b = budget(limit)
    run = Pipeline([b], Provider()).run
    run(make_call())  # worst 1100 tokens, actual 1050
    assert b.spent(limit, unit="tokens") == 1050
    with pytest.raises(BudgetExceeded) as e:
        run(make_call(max_tokens=500))  # 1050 + 1500 > 2500
    assert e.value.details["unit"] == "tokens" and e.value.details["remaining"] == 1450
    run(make_call(max_tokens=400))  # 1050 + 1400 <= 2500


def test_threshold_alerts_fire_once_per_crossing() -> None:
    alerts: list[BudgetAlert] = []
    limit = BudgetLimit(usd=0.05, name="support")
    b = budget(limit, alerts=(0.5, 0.8), on_alert=alerts.append)
    run = Pipeline([b], Provider()).run
    for _ in range(3):
        run(make_call())  # spent: 0.0115, 0.023, 0.0345
    assert [(a.threshold, a.spent) for a in alerts] == [(0.5, pytest.approx(0.0345, abs=1e-12))]
    run(make_call())  # 0.046 crosses 0.8
    assert [a.threshold for a in alerts] == [0.5, 0.8]
    assert alerts[1].limit is limit and alerts[1].unit == "usd" and alerts[1].limit_value == 0.05


def test_a_failing_alert_callback_never_fails_the_call() -> None:
    def boom(_alert: BudgetAlert) -> None:
        raise RuntimeError("pager down")

    b = budget(BudgetLimit(usd=0.01), alerts=(0.5,), on_alert=boom, estimator=FixedInput(100))
    with pytest.warns(CostkitWarning, match="on_alert"):
        Pipeline([b], Provider(output=300, input_tokens=100)).run(make_call(max_tokens=300))  # $0.01: crosses 50%


class _Acc:
    def __init__(self) -> None:
        self.parts: list[str] = []

    def add(self, chunk: Any) -> bool:
        self.parts.append(chunk)
        return True

    def result(self) -> Result:
        return Result(text="".join(self.parts), usage=Usage(input_tokens=INPUT_TOKENS, output_tokens=len(self.parts)))


def test_a_stream_is_settled_when_it_ends() -> None:
    limit = BudgetLimit(usd=1.0)
    b = budget(limit)
    prices = book()

    def finalize(r: Result) -> Result:
        return r.evolve(cost_usd=prices.cost("strong", r.usage))

    def terminal(call: Call) -> Result:
        return Result(stream=ResultStream(iter(["a"] * 20), _Acc(), finalize), model=call.model)

    result = Pipeline([b], terminal).run(make_call().evolve(stream=True))
    key = b.key_for(limit)
    assert b.backend.usage(key).reserved == usd_to_nano(WORST)  # held while the stream runs
    assert isinstance(result.stream, ResultStream)
    assert list(result.stream) == ["a"] * 20
    state = b.backend.usage(key)
    assert state.reserved == 0 and state.spent == usd_to_nano(0.01 + 20 * 30e-6)


def test_settles_every_attempt_the_chain_below_made() -> None:
    """With the recorder's per-request records, a retry below the budget is paid for too."""
    limit = BudgetLimit(usd=1.0)
    b, provider = budget(limit), Provider()
    prices = book()

    def recording_terminal(call: Call) -> Result:  # what the recorder does: one record per attempt
        result = provider(call)
        call.scope.add(
            CostRecord(
                request_id=call.request_id,
                attempt=call.attempt,
                kind=call.kind,
                timestamp=0.0,
                provider="openai",
                requested_model=call.requested_model,
                model=call.model,
                input_tokens=INPUT_TOKENS,
                output_tokens=50,
                cost_usd=prices.cost(call.model, result.usage),
            )
        )
        return result

    class TwoAttempts(FlowPolicy):  # a cascade: cheap first, then strong
        def flow(self, call: Call) -> Any:
            yield call.with_model("cheap")
            return (yield call.evolve(attempt=2, kind="escalation"))

    call = make_call().evolve(scope=RequestScope())
    Pipeline([b, TwoAttempts()], recording_terminal).run(call)
    assert b.spent(limit) == pytest.approx(0.0011 + ACTUAL, abs=1e-12)


def test_cache_hit_below_the_budget_costs_nothing() -> None:
    limit = BudgetLimit(usd=1.0)
    b = budget(limit)

    def cache_hit(call: Call) -> Result:
        return Result(text="cached", usage=Usage(input_tokens=10, output_tokens=5), source="exact", cost_usd=0.5)

    Pipeline([b], cache_hit).run(make_call())
    assert b.spent(limit) == 0.0


def test_unpriced_model_reserves_nothing_and_warns() -> None:
    limit = BudgetLimit(usd=1.0)
    b = budget(limit)
    held = []

    def provider(c: Call) -> Result:  # what is held while the call is in flight
        held.append(b.backend.usage(b.key_for(limit)).reserved)
        return Result(text="x", model=c.model)

    with pytest.warns(CostkitWarning, match="cannot price 'mystery'"):
        Pipeline([b], provider).run(make_call(model="mystery"))
    assert held == [0] and b.spent(limit) == 0.0
    b2 = budget(limit, on_unpriced="reject")
    with pytest.raises(BudgetExceeded) as e:
        Pipeline([b2], lambda c: Result(text="x")).run(make_call(model="mystery"))
    assert e.value.details["reason"] == "unpriced"


def test_a_call_no_limit_applies_to_passes_untouched() -> None:
    b = budget(BudgetLimit(usd=0.000001, tenant="acme"))
    provider = Provider()
    Pipeline([b], provider).run(make_call(tenant="beta"))
    assert provider.models == ["strong"]


async def test_async_tasks_never_overrun() -> None:
    limit = BudgetLimit(usd=0.1)
    b, provider = budget(limit), Provider()
    arun = Pipeline([b], provider, provider.acall).arun

    refusals: list[BudgetExceeded] = []

    async def one() -> bool:
        try:
            await arun(make_call())
            return True
        except BudgetExceeded as e:
            refusals.append(e)
            return False

    done = await asyncio.gather(*(one() for _ in range(40)))
    # all 40 tasks reserve before any settles: 7 worst cases (7 x 0.013 = 0.091) fit in 0.1, an 8th does not
    assert sum(done) == 7
    assert b.spent(limit) == pytest.approx(7 * ACTUAL, abs=1e-12)
    assert all(e.details["remaining"] < e.requested_usd for e in refusals)
    assert b.backend.usage(b.key_for(limit)).reserved == 0


async def test_async_failure_releases() -> None:
    limit = BudgetLimit(usd=1.0)
    b = budget(limit)

    async def down(call: Call) -> Result:
        raise TimeoutError

    with pytest.raises(TimeoutError):
        await Pipeline([b], lambda c: Result(), down).arun(make_call())
    assert b.backend.usage(b.key_for(limit)).reserved == 0


def test_threads_never_overrun() -> None:
    limit = BudgetLimit(usd=0.5)
    b, provider = budget(limit), Provider()
    run = Pipeline([b], provider).run
    ok: list[int] = []
    refusals: list[BudgetExceeded] = []

    def worker() -> None:
        for _ in range(20):
            try:
                run(make_call())
                ok.append(1)
            except BudgetExceeded as e:
                refusals.append(e)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # sequentially 43 calls fit (43 x 0.0115 = 0.4945); holds in flight may refuse a few earlier
    assert 30 <= len(ok) <= 43
    assert b.spent(limit) == pytest.approx(len(ok) * ACTUAL, abs=1e-12)
    assert b.spent(limit) <= 0.5
    assert all(e.details["remaining"] < e.requested_usd for e in refusals)


def test_with_a_wrapped_client_the_budget_settles_what_the_records_say() -> None:
    import costkit
    from costkit.sinks.memory import MemorySink
    from costkit.testing import FakeOpenAI, FakeProvider

    prices = book()
    prices.register("gpt-4o-mini", input_per_million=0.15, output_per_million=0.6, max_output_tokens=16384)
    limit = BudgetLimit(usd=1.0, tenant="*")
    b = Budget([limit], pricing=prices)
    sink = MemorySink()
    client = costkit.wrap(
        FakeOpenAI(FakeProvider(default="four words of answer")), policies=[b], sink=sink, pricing=prices
    )
    client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hello"}], max_tokens=50, costkit={"tenant": "acme"}
    )
    (record,) = sink.records
    assert record.cost_usd and record.cost_usd > 0
    assert b.spent(limit, Tags(tenant="acme")) == pytest.approx(record.cost_usd, abs=1e-9)


# ----------------------------------------------------------------------------- backends through the policy
class _DownClient:
    """A Redis client whose server is gone."""

    def register_script(self, _src: str) -> Any:
        def run(**_kw: Any) -> Any:
            import redis

            raise redis.ConnectionError("Connection refused")

        return run


def test_fail_closed_backend_refuses_with_a_reason() -> None:
    b = budget(BudgetLimit(usd=1.0), backend=RedisBudgetBackend(client=_DownClient(), on_redis_error="closed"))
    with pytest.warns(CostkitWarning), pytest.raises(BudgetExceeded) as e:
        Pipeline([b], Provider()).run(make_call())
    assert e.value.details["reason"] == "backend_unavailable"


def test_fail_open_backend_lets_the_call_through() -> None:
    backend = RedisBudgetBackend(client=_DownClient(), on_redis_error="open")
    provider = Provider()
    with pytest.warns(CostkitWarning):
        Pipeline([budget(BudgetLimit(usd=1.0), backend=backend)], provider).run(make_call())
    assert provider.models == ["strong"] and backend.unenforced == 1


@pytest.mark.redis
def test_redis_backend_through_the_policy(redis_url: str) -> None:
    limit = BudgetLimit(usd=0.03)
    b = budget(limit, backend=RedisBudgetBackend(redis_url, prefix="policy"))
    run = Pipeline([b], Provider()).run
    run(make_call())
    run(make_call())
    with pytest.raises(BudgetExceeded):
        run(make_call())
    assert b.spent(limit) == pytest.approx(2 * ACTUAL, abs=1e-12)


# ----------------------------------------------------------------------------- config
@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({}, "usd"),
        ({"usd": -1}, "usd"),
        ({"usd": float("nan")}, "usd"),
        ({"tokens": 1.5}, "tokens"),
        ({"usd": 1, "window": "fortnight"}, "window"),
        ({"usd": 1, "tenant": ""}, "tenant"),
        ({"usd": 1, "feature": "a|b"}, "feature"),
        ({"usd": 1, "name": ""}, "name"),
    ],
)
def test_budget_limit_config_errors(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as e:
        BudgetLimit(**kwargs)
    assert e.value.field == field


@pytest.mark.parametrize(
    ("args", "kwargs", "field"),
    [
        ([], {}, "limits"),
        (["x"], {}, "limits[0]"),
        ([BudgetLimit(usd=1), BudgetLimit(usd=2)], {}, "limits[1]"),
        ([BudgetLimit(usd=1)], {"on_exceed": "shrug"}, "on_exceed"),
        ([BudgetLimit(usd=1)], {"on_exceed": "degrade"}, "degrade_to"),
        ([BudgetLimit(usd=1)], {"alerts": (0, 0.5)}, "alerts"),
        ([BudgetLimit(usd=1)], {"alerts": (1.5,)}, "alerts"),
        ([BudgetLimit(usd=1)], {"on_alert": "pager"}, "on_alert"),
        ([BudgetLimit(usd=1)], {"reservation_ttl_s": 0}, "reservation_ttl_s"),
        ([BudgetLimit(usd=1)], {"backend": object()}, "backend"),
        ([BudgetLimit(usd=1)], {"on_unpriced": "maybe"}, "on_unpriced"),
    ],
)
def test_budget_config_errors(args: list[Any], kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as e:
        Budget(args, **kwargs)
    assert e.value.field == field


def test_default_backend_is_in_process() -> None:
    assert isinstance(Budget([BudgetLimit(usd=1)]).backend, InProcessBudgetBackend)


# ----------------------------------------------------------------------------- many processes
# 4 processes x 16 threads against one Redis: the worker below is this file run as a script.
LIMIT_USD = 1.0
PROCESSES, THREADS, CALLS = 4, 16, 25


def _worker(url: str, prefix: str, seed: int, out: str) -> None:
    limit = BudgetLimit(usd=LIMIT_USD)
    b = Budget([limit], backend=RedisBudgetBackend(url, prefix=prefix, timeout_s=2.0), estimator=FixedInput(100))
    prices = book()
    lock = threading.Lock()
    log: list[dict[str, Any]] = []

    def thread(tseed: int) -> None:
        rnd = random.Random(tseed)

        def terminal(call: Call) -> Result:
            time.sleep(rnd.random() * 0.002)  # calls overlap in flight
            out_tokens = rnd.randint(0, call.max_output_tokens or 0)
            usage = Usage(input_tokens=100, output_tokens=out_tokens)
            return Result(text="x", usage=usage, cost_usd=prices.cost(call.model, usage))

        run = Pipeline([b], terminal).run
        for _ in range(CALLS):
            max_tokens = rnd.randint(1, 660)  # worst case $0.00103 .. $0.0208
            worst = prices.worst_case_cost("strong", 100, max_tokens)
            try:
                result = run(make_call(max_tokens=max_tokens))
                entry = {"ok": True, "cost_nano": usd_to_nano(result.cost_usd or 0.0), "worst": worst}
            except BudgetExceeded as e:
                entry = {"ok": False, "remaining": e.details["remaining"], "requested": e.requested_usd, "worst": worst}
            with lock:
                log.append(entry)

    threads = [threading.Thread(target=thread, args=(seed * 1000 + i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    Path(out).write_text(json.dumps(log))


@pytest.mark.redis
@pytest.mark.slow
def test_four_processes_sixteen_threads_never_overspend(redis_url: str, tmp_path: Path) -> None:
    prefix = "hammer"
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    outs = [tmp_path / f"worker{i}.json" for i in range(PROCESSES)]
    procs = [
        subprocess.Popen([sys.executable, __file__, "--worker", redis_url, prefix, str(i + 1), str(out)], env=env)
        for i, out in enumerate(outs)
    ]
    for p in procs:
        assert p.wait(timeout=180) == 0
    log = [e for out in outs for e in json.loads(out.read_text())]
    assert len(log) == PROCESSES * THREADS * CALLS
    ok = [e for e in log if e["ok"]]
    refused = [e for e in log if not e["ok"]]

    backend = RedisBudgetBackend(redis_url, prefix=prefix)
    limit = BudgetLimit(usd=LIMIT_USD)
    state = backend.usage(Budget([limit], backend=backend).key_for(limit))
    spent_by_workers = sum(e["cost_nano"] for e in ok)
    assert state.spent == spent_by_workers  # not a nano-dollar lost or counted twice
    assert state.spent <= usd_to_nano(LIMIT_USD)  # recorded spend never exceeds $1.00
    assert state.reserved == 0  # every hold was settled or released
    # no call was refused while the remaining budget covered its worst case
    assert all(e["remaining"] < e["requested"] for e in refused)
    assert all(e["requested"] == pytest.approx(e["worst"], abs=1e-9) for e in refused)
    assert len(ok) > 50 and len(refused) > 100  # the budget was really contested
    print(f"\n{len(ok)} calls admitted, {len(refused)} refused, spent ${state.spent / 1e9:.6f} of ${LIMIT_USD:.2f}")


if __name__ == "__main__" and sys.argv[1:2] == ["--worker"]:
    _worker(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])


async def test_async_stream_is_settled_when_it_ends() -> None:
    from costkit._stream import AsyncResultStream, ReplaySource

    limit = BudgetLimit(usd=1.0)
    b = budget(limit)
    prices = book()

    def finalize(r: Result) -> Result:
        return r.evolve(cost_usd=prices.cost("strong", r.usage))

    async def aterminal(call: Call) -> Result:
        return Result(stream=AsyncResultStream(ReplaySource(["a"] * 7), _Acc(), finalize), model=call.model)

    result = await Pipeline([b], lambda c: Result(), aterminal).arun(make_call().evolve(stream=True))
    assert isinstance(result.stream, AsyncResultStream)
    assert [c async for c in result.stream] == ["a"] * 7
    state = b.backend.usage(b.key_for(limit))
    assert state.reserved == 0 and state.spent == usd_to_nano(0.01 + 7 * 30e-6)


@pytest.mark.redis
async def test_redis_backend_async_path(redis_url: str) -> None:
    limit = BudgetLimit(usd=0.03)
    b, provider = budget(limit, backend=RedisBudgetBackend(redis_url, prefix="async")), Provider()
    arun = Pipeline([b], provider, provider.acall).arun
    await arun(make_call())
    await arun(make_call())
    with pytest.raises(BudgetExceeded):
        await arun(make_call())
    assert b.spent(limit) == pytest.approx(2 * ACTUAL, abs=1e-12)


# ------------------------------------------------------------------ property: the policy under any interleaving
class ParamWorst(WorstCaseEstimator):
    """The worst case is whatever the test put in the call's params."""

    def __call__(self, call: Call) -> Any:
        from costkit.policies.guardrails import WorstCase

        return WorstCase(
            model=call.model, input_tokens=0, max_output_tokens=0, output_cap_from="call", usd=call.params["worst"]
        )


@settings(max_examples=200, deadline=None)
@given(
    calls=st.lists(
        st.tuples(
            st.sampled_from(["acme", "beta", None]),
            st.integers(1, 40_000_000),  # worst case, nano-USD
            st.floats(0, 1),  # actual / worst
            st.booleans(),  # the provider fails
        ),
        min_size=1,
        max_size=10,
    ),
    data=st.data(),
)
def test_any_interleaving_of_calls_never_loses_or_double_counts(calls: list[Any], data: Any) -> None:
    """Calls start and finish in an order hypothesis picks; the ledger always matches what happened."""
    glob, per_tenant = BudgetLimit(usd=0.1), BudgetLimit(usd=0.05, tenant="*")
    b = Budget([glob, per_tenant], estimator=ParamWorst())

    async def scenario() -> None:
        gates = [asyncio.Event() for _ in calls]
        settled: dict[str, int] = {}
        outcome: dict[int, str] = {}

        async def terminal(call: Call) -> Result:
            i = call.params["i"]
            await gates[i].wait()
            if calls[i][3]:
                raise ConnectionError
            return Result(text="x", cost_usd=call.params["actual"])

        arun = Pipeline([b], lambda c: Result(), terminal).arun

        async def one(i: int) -> None:
            tenant, worst, frac, _ = calls[i]
            actual = worst * frac // 1
            call = make_call(**({"tenant": tenant} if tenant else {})).evolve(
                params={"i": i, "worst": worst / 1e9, "actual": actual / 1e9}
            )
            try:
                await arun(call)
            except BudgetExceeded as e:
                assert e.details["remaining"] < e.requested_usd  # refused only when it did not fit
                outcome[i] = "refused"
                return
            except ConnectionError:
                outcome[i] = "failed"
                return
            outcome[i] = "ok"
            for key in (b.key_for(glob), b.key_for(per_tenant, Tags(tenant=tenant))):
                settled[key] = settled.get(key, 0) + usd_to_nano(actual / 1e9)

        tasks: dict[int, asyncio.Task[None]] = {}
        pending_start = list(range(len(calls)))
        while pending_start or any(not g.is_set() for g in gates):
            startable = pending_start
            finishable = [i for i in tasks if not gates[i].is_set()]
            choice = data.draw(st.sampled_from([("start", i) for i in startable] + [("finish", i) for i in finishable]))
            if choice[0] == "start":
                pending_start.remove(choice[1])
                tasks[choice[1]] = asyncio.create_task(one(choice[1]))
            else:
                gates[choice[1]].set()
            for _ in range(3):
                await asyncio.sleep(0)
            for key in {b.key_for(glob)} | {b.key_for(per_tenant, Tags(tenant=t)) for t, *_ in calls}:
                state = b.backend.usage(key)
                limit = usd_to_nano(0.1 if key == b.key_for(glob) else 0.05)
                assert state.spent + state.reserved <= limit
            if not pending_start and all(t.done() for t in tasks.values()):
                break
        await asyncio.gather(*tasks.values())
        for key in {b.key_for(glob)} | {b.key_for(per_tenant, Tags(tenant=t)) for t, *_ in calls}:
            state = b.backend.usage(key)
            assert state.reserved == 0
            assert state.spent == settled.get(key, 0)

    asyncio.run(scenario())


@pytest.mark.parametrize("budget_first", [True, False])
def test_with_retries_through_a_wrapped_client(budget_first: bool) -> None:
    """Last in the chain each attempt holds and settles on its own; first, the request's records are summed."""
    import costkit
    from costkit.policies.retry import RetryBudget
    from costkit.sinks.memory import MemorySink
    from costkit.testing import FakeOpenAI, FakeProvider

    prices = book()
    prices.register("gpt-4o-mini", input_per_million=0.15, output_per_million=0.6, max_output_tokens=16384)
    limit = BudgetLimit(usd=1.0)
    b = Budget([limit], pricing=prices)
    retry = RetryBudget(max_attempts=3, backoff_base_s=0, backoff_max_s=0, min_retries_per_s=100)
    fake = FakeProvider(default="a short answer")
    fake.fail_next(2, 500)
    sink = MemorySink()
    chain = [b, retry] if budget_first else [retry, b]
    client = costkit.wrap(FakeOpenAI(fake), policies=chain, sink=sink, pricing=prices)
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], max_tokens=30)
    assert [r.success for r in sink.records] == [False, False, True]
    cost = sum(r.cost_usd or 0.0 for r in sink.records)
    assert cost > 0
    state = b.backend.usage(b.key_for(limit))
    assert state.reserved == 0 and state.spent == usd_to_nano(cost)


def test_counter_names_are_unambiguous_whatever_the_tag_values() -> None:
    """The reported collision: tenant "a,feature=b" + feature "c" shared a counter with tenant "a" +
    feature "b,feature=c"; tenant "", "-" and unset shared one too."""
    from costkit.policies.budget import bucket_part

    limit = BudgetLimit(usd=1.0, tenant="*", feature="*")
    pairs = [
        ("a,feature=b", "c"),
        ("a", "b,feature=c"),
        ("", "f"),
        ("-", "f"),
        (None, "f"),
        ("a|b", "f"),
        ("a b", "f"),
        ("~2D", "f"),
        ("%41", "f"),
        ("A", "f"),
    ]
    buckets = [limit.bucket(Tags(tenant=t, feature=f)) for t, f in pairs]
    assert len(set(buckets)) == len(pairs)
    assert all("|" not in b for b in buckets)
    assert limit.bucket(Tags(tenant="acme", feature="faq")) == "tenant=acme,feature=faq"  # plain names unchanged
    # a counter's name is stored (Redis): its spelling is a contract; in an encoded value even "/" is encoded
    assert [bucket_part(v) for v in (None, "", "-", "a,b", "a/b c")] == ["-", "~", "~-", "~a%2Cb", "~a%2Fb%20c"]
    b, provider = budget(limit), Provider()
    chain = Pipeline([b], provider)
    chain.run(make_call().evolve(tags=Tags(tenant="a,feature=b", feature="c")))
    assert b.spent(limit, Tags(tenant="a", feature="b,feature=c")) == 0.0
    assert b.spent(limit, Tags(tenant="a,feature=b", feature="c")) > 0.0


# ------------------------------------------------------------------ the request itself cannot overspend


_REQUEST = st.fixed_dictionaries(
    {
        "n": st.sampled_from([None, 1, 2, 8]),
        "cap": st.integers(1, 4000),
        "where": st.sampled_from(
            [
                "max_tokens",
                "max_completion_tokens",
                "extra_body:max_tokens",
                "extra_body:max_completion_tokens",
                "extra_body:n+max_tokens",
                "none",
            ]
        ),
        "cancel": st.booleans(),
    }
)


def _kwargs(req: dict[str, Any]) -> dict[str, Any]:
    kw: dict[str, Any] = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Tell me a long story."}]}
    where, cap = req["where"], req["cap"]
    extra: dict[str, Any] = {}
    if where in ("max_tokens", "max_completion_tokens"):
        kw[where] = cap
    elif where.startswith("extra_body:"):
        kw["max_tokens"] = 5  # what a careless reader of the keywords would reserve for
        extra["max_tokens" if "max_tokens" in where else "max_completion_tokens"] = cap
        if "n+" in where:
            extra["n"] = req["n"] or 8
    if req["n"] is not None and "n" not in extra:
        kw["n"] = req["n"]
    if extra:
        kw["extra_body"] = extra
    return kw


@settings(max_examples=40, deadline=None)
@given(requests=st.lists(_REQUEST, min_size=1, max_size=12), guard=st.booleans())
def test_requests_with_n_extra_body_caps_and_cancellations_never_overspend(
    requests: list[dict[str, Any]], guard: bool
) -> None:
    """Through the real SDK and the fake provider: whatever the request asks for (n answers, output
    caps under any name in the keywords or in extra_body, or no cap), and whether the caller
    cancels it mid-flight, what was spent never passes the limit."""
    import costkit
    from costkit.sinks import MemorySink
    from costkit.testing import FakeAsyncOpenAI, FakeProvider

    limit_usd = 0.004
    sink = MemorySink()
    fake = FakeProvider(default="word " * 5000)
    slow = FakeProvider(default="word " * 5000, latency_s=5.0)
    limit = BudgetLimit(usd=limit_usd)
    policies: list[Any] = [costkit.Guardrails(max_output_tokens=3000)] if guard else []
    budget_policy = costkit.Budget([limit])
    fast = costkit.wrap(FakeAsyncOpenAI(fake), [*policies, budget_policy], sink=sink)
    cancelled = costkit.wrap(FakeAsyncOpenAI(slow), [*policies, budget_policy], sink=sink)

    async def scenario() -> None:
        for req in requests:
            client = cancelled if req["cancel"] else fast
            try:
                await asyncio.wait_for(client.chat.completions.create(**_kwargs(req)), 0.05 if req["cancel"] else 30)
            except (BudgetExceeded, TimeoutError):
                pass

    asyncio.run(scenario())
    spent = sum(r.cost_usd or 0.0 for r in sink.records)
    assert spent <= limit_usd + 1e-12
    assert budget_policy.spent(limit) == pytest.approx(spent, abs=1e-9)


# ------------------------------------------------------------------ exact amounts on every reserve and settle path
def _attempt_record(call: Call, cost: float, input_tokens: int, output_tokens: int = 0) -> CostRecord:
    return CostRecord(
        request_id=call.request_id,
        attempt=call.attempt,
        kind=call.kind,
        timestamp=0.0,
        provider="openai",
        requested_model=call.requested_model,
        model=call.model,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cost_usd=cost,
    )


def test_a_hold_is_rounded_up_to_the_next_nano_dollar() -> None:
    """A worst case of 1.2 nano-dollars holds 2: a 1-nano-dollar limit refuses it, a 2-nano-dollar one takes it."""
    tight = BudgetLimit(usd=1e-9)
    with pytest.raises(BudgetExceeded) as e:
        Pipeline([Budget([tight], estimator=ParamWorst())], Provider()).run(
            make_call().evolve(params={"worst": 1.2e-9})
        )
    assert (e.value.details["requested"], e.value.details["limit_value"]) == (2e-9, 1e-9)

    room = BudgetLimit(usd=2e-9)
    b = Budget([room], estimator=ParamWorst())
    held: list[int] = []

    def provider(call: Call) -> Result:
        held.append(b.backend.usage(b.key_for(room)).reserved)
        return Result(text="x", cost_usd=1e-9)

    Pipeline([b], provider).run(make_call().evolve(params={"worst": 1.2e-9}))
    assert held == [2]
    assert (b.backend.usage(b.key_for(room)).spent, b.backend.usage(b.key_for(room)).reserved) == (1, 0)


def test_the_worst_case_held_is_exact_in_nano_dollars_and_tokens() -> None:
    usd, tokens = BudgetLimit(usd=1.0, name="usd"), BudgetLimit(tokens=10_000, name="tokens")
    b = budget(usd, tokens)
    held: list[tuple[int, int]] = []

    def provider(call: Call) -> Result:
        held.append(
            (b.backend.usage(b.key_for(usd)).reserved, b.backend.usage(b.key_for(tokens, unit="tokens")).reserved)
        )
        return Provider()(call)

    Pipeline([b], provider).run(make_call(max_tokens=100))
    # strong: 1000 input tokens at $10/M + 100 output tokens at $30/M = $0.013; 1000 + 100 tokens
    assert held == [(13_000_000, 1_100)]
    assert b.backend.usage(b.key_for(usd)).spent == 11_500_000  # 50 output tokens: $0.0115
    assert b.backend.usage(b.key_for(tokens, unit="tokens")).spent == 1_050


@pytest.mark.parametrize("limit", [BudgetLimit(usd=1.0), BudgetLimit(usd=1.0, tokens=5000)])
def test_a_request_that_failed_after_paid_attempts_settles_what_they_cost(limit: BudgetLimit) -> None:
    """The attempts below recorded before the error (a failed attempt billed for its input, a retry that
    also failed) are what the request spent: settled, not released."""
    b = budget(limit)

    def paid_then_fails(call: Call) -> Result:
        call.scope.add(_attempt_record(call, 0.004, 400))
        call.scope.add(_attempt_record(call, 0.0025, 250))
        raise ConnectionError

    with pytest.raises(ConnectionError):
        Pipeline([b], paid_then_fails).run(make_call().evolve(scope=RequestScope()))
    state = b.backend.usage(b.key_for(limit))
    assert (state.spent, state.reserved) == (6_500_000, 0)
    if limit.tokens:
        assert b.spent(limit, unit="tokens") == 650


async def test_an_async_request_that_failed_after_paid_attempts_settles_what_they_cost() -> None:
    limit = BudgetLimit(usd=1.0, tokens=5000)
    b = budget(limit)

    async def paid_then_fails(call: Call) -> Result:
        await asyncio.sleep(0)
        call.scope.add(_attempt_record(call, 0.004, 400))
        raise ConnectionError

    with pytest.raises(ConnectionError):
        await Pipeline([b], lambda c: Result(), paid_then_fails).arun(make_call().evolve(scope=RequestScope()))
    assert b.backend.usage(b.key_for(limit)) == type(b.backend.usage(b.key_for(limit)))(4_000_000, 0)
    assert b.spent(limit, unit="tokens") == 400


async def test_a_cancelled_request_settles_its_paid_attempt_or_releases() -> None:
    limit = BudgetLimit(usd=1.0)
    b = budget(limit)
    started = asyncio.Event()

    async def hangs(call: Call) -> Result:
        if call.params.get("paid"):
            call.scope.add(_attempt_record(call, 0.003, 300))
        started.set()
        await asyncio.sleep(30)
        raise AssertionError("cancelled before")

    arun = Pipeline([b], lambda c: Result(), hangs).arun
    for paid, spent in ((False, 0), (True, 3_000_000)):
        started.clear()
        task = asyncio.create_task(arun(make_call().evolve(scope=RequestScope(), params={"paid": paid})))
        await started.wait()
        assert b.backend.usage(b.key_for(limit)).reserved == 13_000_000
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert (b.backend.usage(b.key_for(limit)).spent, b.backend.usage(b.key_for(limit)).reserved) == (spent, 0)


@pytest.mark.parametrize(("paid", "spent"), [(False, 0), (True, 2_000_000)])
def test_an_interrupted_call_still_settles_or_releases_its_hold(paid: bool, spent: int) -> None:
    """A KeyboardInterrupt is not thrown into the flow: the driver closes it, and the hold is undone then."""
    limit = BudgetLimit(usd=1.0)
    b = budget(limit)

    def interrupted(call: Call) -> Result:
        if paid:
            call.scope.add(_attempt_record(call, 0.002, 200))
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        Pipeline([b], interrupted).run(make_call().evolve(scope=RequestScope()))
    state = b.backend.usage(b.key_for(limit))
    assert (state.spent, state.reserved) == (spent, 0)


def test_a_streamed_answer_after_a_failed_attempt_settles_both() -> None:
    """A stream's own record comes when it ends: its cost is added to the paid attempts before it."""
    usd, tokens = BudgetLimit(usd=1.0, name="usd"), BudgetLimit(tokens=100_000, name="tokens")
    b = budget(usd, tokens)
    prices = book()

    def finalize(r: Result) -> Result:
        return r.evolve(cost_usd=prices.cost("strong", r.usage))

    def failed_once_then_streams(call: Call) -> Result:
        call.scope.add(_attempt_record(call, 0.004, 400))  # the first attempt failed, billed its input
        return Result(stream=ResultStream(iter(["a"] * 20), _Acc(), finalize), model=call.model)

    result = Pipeline([b], failed_once_then_streams).run(make_call().evolve(stream=True, scope=RequestScope()))
    assert list(result.stream) == ["a"] * 20  # type: ignore[arg-type]
    # the stream: 1000 input tokens at $10/M + 20 output tokens at $30/M = $0.0106
    assert b.backend.usage(b.key_for(usd)) == type(b.backend.usage(b.key_for(usd)))(14_600_000, 0)
    assert b.spent(tokens, unit="tokens") == 400 + 1000 + 20


def test_a_fail_open_backend_is_neither_settled_nor_released() -> None:
    backend = RedisBudgetBackend(client=_DownClient(), on_redis_error="open")
    with pytest.warns(CostkitWarning):
        Pipeline([budget(BudgetLimit(usd=1.0), backend=backend)], Provider()).run(make_call())
    stream_budget = budget(BudgetLimit(usd=1.0), backend=backend)

    def streams(call: Call) -> Result:
        return Result(stream=ResultStream(iter(["a"]), _Acc(), lambda r: r.evolve(cost_usd=0.001)), model=call.model)

    list(Pipeline([stream_budget], streams).run(make_call().evolve(stream=True)).stream)  # type: ignore[arg-type]
    with pytest.raises(ConnectionError):
        Pipeline([stream_budget], Provider(fail=ConnectionError())).run(make_call())
    assert backend.unenforced == 3
    assert backend.dropped == 0  # a settle with nothing held would have been attempted (and dropped)


NOV_22 = datetime(2026, 11, 22, 12, tzinfo=timezone.utc).timestamp()


def _nested_refusal(b: Budget, **tags: str) -> BudgetExceeded:
    """Settle one call, then, while a second is in flight (its worst case held), refuse a third."""
    run = Pipeline([b], Provider()).run
    run(make_call(**tags))
    refusals: list[BudgetExceeded] = []

    def provider(call: Call) -> Result:
        with pytest.raises(BudgetExceeded) as e:
            run(make_call(**tags))
        refusals.append(e.value)
        return Provider()(call)

    Pipeline([b], provider).run(make_call(**tags))
    return refusals[0]


def test_a_usd_refusal_says_exactly_what_did_not_fit() -> None:
    limit = BudgetLimit(usd=0.03, tenant="*", name="support")
    err = _nested_refusal(budget(limit, clock=lambda: NOV_22), tenant="acme")
    # spent 0.0115 + held 0.013 + this call's 0.013 > 0.03
    assert (err.spent_usd, err.limit_usd, err.requested_usd) == (0.0115, 0.03, 0.013)
    assert err.scope == "support[tenant=acme]@2026-11-22"
    assert err.details == {
        "reason": "limit",
        "limit": "support",
        "bucket": "tenant=acme",
        "window": "2026-11-22",
        "unit": "usd",
        "spent": 0.0115,
        "reserved": 0.013,
        "remaining": 0.0055,
        "requested": 0.013,
        "limit_value": 0.03,
        "model": "strong",
        "worst_case_tokens": 1100,
    }
    assert str(err) == (
        "this call's worst case does not fit in the remaining budget (scope=support[tenant=acme]@2026-11-22, "
        "spent=$0.011500, limit=$0.030000, this call up to $0.013000)"
    )


def test_a_token_refusal_says_exactly_what_did_not_fit() -> None:
    usd, tokens = BudgetLimit(usd=1.0), BudgetLimit(tokens=2500, window="month", name="tok")
    err = _nested_refusal(budget(usd, tokens, clock=lambda: NOV_22))
    # spent 1050 + held 1100 + this call's 1100 > 2500
    assert err.scope == "tok[global]@2026-11"
    assert (err.spent_usd, err.limit_usd, err.requested_usd) == (0.0, 0.0, 0.0)
    assert err.details == {
        "reason": "limit",
        "limit": "tok",
        "bucket": "global",
        "window": "2026-11",
        "unit": "tokens",
        "spent": 1050.0,
        "reserved": 1100.0,
        "remaining": 350.0,
        "requested": 1100.0,
        "limit_value": 2500.0,
        "model": "strong",
        "worst_case_tokens": 1100,
    }
    assert str(err).startswith(
        "this call's worst case (1100 tokens) does not fit in the remaining token budget (350 of 2500 tokens left)"
    )


class _Unavailable:
    """A backend that cannot enforce: it answers every reservation with ``error``."""

    def __init__(self, error: str) -> None:
        self.error = error

    def reserve(self, holds: Any, ttl_s: float) -> Any:
        from costkit._ledger import Reservation

        return Reservation(id="r", holds=tuple(holds), ok=False, enforced=False, error=self.error)

    async def areserve(self, holds: Any, ttl_s: float) -> Any:
        return self.reserve(holds, ttl_s)


@pytest.mark.parametrize(
    ("error", "reason", "message"),
    [
        ("ConnectionError", "backend_unavailable", "the budget backend is unavailable and fails closed"),
        (
            "counters_lost",
            "counters_lost",
            "the budget counters were lost (Redis restarted without persistence or was flushed) and the backend "
            "fails closed; call backend.acknowledge_reset() to start again",
        ),
    ],
)
def test_a_backend_that_cannot_enforce_refuses_with_its_reason(error: str, reason: str, message: str) -> None:
    b = budget(BudgetLimit(usd=1.0, name="all"), backend=_Unavailable(error))  # type: ignore[arg-type]
    provider = Provider()
    with pytest.raises(BudgetExceeded) as e:
        Pipeline([b], provider).run(make_call())
    assert provider.models == []
    assert e.value.details == {"reason": reason, "error": error, "model": "strong"}
    assert (e.value.scope, e.value.requested_usd) == ("all", pytest.approx(0.013, abs=1e-15))
    assert str(e.value).startswith(message + " (scope=all,")


def test_an_unpriced_call_refused_by_a_backend_that_cannot_enforce_asked_for_nothing() -> None:
    b = budget(BudgetLimit(usd=1.0, name="all"), backend=_Unavailable("ConnectionError"))  # type: ignore[arg-type]
    with pytest.warns(CostkitWarning, match="cannot price"), pytest.raises(BudgetExceeded) as e:
        Pipeline([b], Provider()).run(make_call(model="mystery"))
    assert (e.value.requested_usd, e.value.details["reason"]) == (0.0, "backend_unavailable")


def test_degrade_is_not_tried_when_the_backend_cannot_enforce() -> None:
    b = budget(BudgetLimit(usd=1.0), backend=_Unavailable("x"), on_exceed="degrade", degrade_to="cheap")  # type: ignore[arg-type]
    provider = Provider()
    with pytest.raises(BudgetExceeded) as e:
        Pipeline([b], provider).run(make_call())
    assert e.value.details["reason"] == "backend_unavailable" and provider.models == []


def test_alerts_report_each_limit_and_unit_in_its_own_units() -> None:
    alerts: list[BudgetAlert] = []
    usd, tokens = BudgetLimit(usd=0.02, name="usd"), BudgetLimit(tokens=2000, name="tok")
    b = budget(usd, tokens, alerts=(0.5,), on_alert=alerts.append, clock=lambda: NOV_22)
    Pipeline([b], Provider()).run(make_call())  # $0.0115 of $0.02, 1050 of 2000 tokens: both cross 50%
    assert alerts == [
        BudgetAlert(
            limit=usd, bucket="global", window="2026-11-22", unit="usd", threshold=0.5, spent=0.0115, limit_value=0.02
        ),
        BudgetAlert(
            limit=tokens,
            bucket="global",
            window="2026-11-22",
            unit="tokens",
            threshold=0.5,
            spent=1050.0,
            limit_value=2000.0,
        ),
    ]


async def test_async_alerts_and_stream_settlement_use_the_same_amounts() -> None:
    alerts: list[BudgetAlert] = []
    limit = BudgetLimit(usd=0.02)
    b = budget(limit, alerts=(0.5,), on_alert=alerts.append)
    provider = Provider()
    await Pipeline([b], provider, provider.acall).arun(make_call())
    assert [(a.threshold, a.spent) for a in alerts] == [(0.5, 0.0115)]
    assert b.backend.usage(b.key_for(limit)).spent == 11_500_000


# ------------------------------------------------------------------ windows, unpriced models, token-only spend
NOV_23 = datetime(2026, 11, 23, tzinfo=timezone.utc).timestamp()
DEC_1 = datetime(2026, 12, 1, tzinfo=timezone.utc).timestamp()


def test_each_hold_names_its_counter_limit_amount_and_window_end() -> None:
    day = BudgetLimit(usd=0.5, tokens=4000, tenant="*", name="day")
    month = BudgetLimit(tokens=5000, window="month", name="month")
    ever = BudgetLimit(usd=2.0, window="total", name="ever")
    plan = budget(day, month, ever, clock=lambda: NOV_22).plan(make_call(tenant="acme"))
    assert plan is not None
    # strong: 1000 input tokens at $10/M + 100 output tokens at $30/M = $0.013 = 13,000,000 nano-dollars; 1100 tokens
    assert plan.holds == (
        Hold(key="day|tenant=acme|2026-11-22|usd", limit=500_000_000, amount=13_000_000, expires_at=NOV_23),
        Hold(key="day|tenant=acme|2026-11-22|tokens", limit=4000, amount=1100, expires_at=NOV_23),
        Hold(key="month|global|2026-11|tokens", limit=5000, amount=1100, expires_at=DEC_1),
        Hold(key="ever|global|total|usd", limit=2_000_000_000, amount=13_000_000, expires_at=None),
    )


def test_a_days_counter_is_dropped_after_its_day_and_a_total_one_is_kept() -> None:
    wall, mono = [NOV_22], [0.0]
    backend = InProcessBudgetBackend(clock=lambda: wall[0], monotonic=lambda: mono[0])
    day, ever = BudgetLimit(usd=1.0, name="day"), BudgetLimit(usd=1.0, window="total", name="ever")
    b = budget(day, ever, backend=backend, clock=lambda: wall[0])
    run = Pipeline([b], Provider()).run
    run(make_call())
    nov_22 = b.key_for(day)
    wall[0], mono[0] = NOV_23 + 60, 120.0  # the next day, after the sweep period
    run(make_call())
    assert backend.usage(nov_22) == CounterState(0, 0)  # swept with its day
    assert backend.usage(b.key_for(day)) == CounterState(11_500_000, 0)
    assert backend.usage(b.key_for(ever)) == CounterState(23_000_000, 0)


def test_a_call_one_second_after_midnight_draws_on_the_new_days_budget() -> None:
    now = [NOV_23 - 1]
    limit = BudgetLimit(usd=1.0)
    b = budget(limit, clock=lambda: now[0])
    run = Pipeline([b], Provider()).run
    run(make_call())  # 23:59:59
    now[0] = NOV_23  # 00:00:00: the same hour-long memo slot for any divisor but 3600
    run(make_call())
    assert b.backend.usage(b.key_for(limit, now=NOV_23 - 1)).spent == 11_500_000
    assert b.backend.usage(b.key_for(limit, now=NOV_23)).spent == 11_500_000


def test_an_unpriced_model_is_refused_with_its_name_when_asked() -> None:
    provider = Provider()
    b = budget(BudgetLimit(usd=1.0, name="all"), BudgetLimit(tokens=9000, name="tok"), on_unpriced="reject")
    with pytest.raises(BudgetExceeded) as e:
        Pipeline([b], provider).run(make_call(model="mystery"))
    assert provider.models == []
    assert (e.value.scope, e.value.details) == ("all", {"reason": "unpriced", "model": "mystery"})
    assert str(e.value) == (
        "no price for 'mystery': its worst case cannot be reserved "
        "(scope=all, spent=$0.000000, limit=$0.000000, this call up to $0.000000)"
    )


def test_an_unpriced_model_is_warned_about_once_per_model(caplog: pytest.LogCaptureFixture) -> None:
    b = budget(BudgetLimit(usd=1.0))
    run = Pipeline([b], lambda c: Result(text="x", model=c.model)).run
    with caplog.at_level(logging.WARNING, logger="costkit"), pytest.warns(CostkitWarning):
        for model in ("mystery", "mystery", "enigma"):
            run(make_call(model=model))
    assert [(r.name, r.getMessage()) for r in caplog.records] == [
        (
            "costkit.budget-unpriced",
            f"costkit: Budget cannot price {m!r}; its calls reserve $0 and settle $0 (register a price with "
            f"costkit.pricing.register({m!r}, ...), or on_unpriced='reject')",
        )
        for m in ("mystery", "enigma")
    ]


def test_a_token_only_budget_holds_an_unpriced_models_tokens_without_a_warning() -> None:
    limit = BudgetLimit(tokens=5000)
    b = budget(limit, on_unpriced="reject")
    held: list[int] = []

    def provider(call: Call) -> Result:
        held.append(b.backend.usage(b.key_for(limit, unit="tokens")).reserved)
        return Result(text="x", model=call.model, usage=Usage(input_tokens=1000, output_tokens=30))

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Pipeline([b], provider).run(make_call(model="mystery"))
    assert held == [1100]  # 1000 prompt tokens + the call's cap of 100
    assert b.backend.usage(b.key_for(limit, unit="tokens")) == CounterState(1030, 0)


def test_a_failed_unpriced_attempt_is_settled_against_a_token_limit() -> None:
    """An attempt with tokens but no dollars (an unpriced model) is spend all the same: settled, not released."""
    limit = BudgetLimit(tokens=5000)
    b = budget(limit)

    def unpriced_then_fails(call: Call) -> Result:
        call.scope.add(_attempt_record(call, None, 400))  # type: ignore[arg-type]
        raise ConnectionError

    with pytest.raises(ConnectionError):
        Pipeline([b], unpriced_then_fails).run(make_call(model="mystery").evolve(scope=RequestScope()))
    assert b.backend.usage(b.key_for(limit, unit="tokens")) == CounterState(400, 0)


# ---------------------------------------------------------- alerts on every settle path, the backend's async half
def test_a_stream_that_crosses_a_threshold_alerts_when_it_ends() -> None:
    alerts: list[BudgetAlert] = []
    limit = BudgetLimit(usd=0.02, name="s")
    b = budget(limit, alerts=(0.5,), on_alert=alerts.append, clock=lambda: NOV_22)
    prices = book()

    def streams(call: Call) -> Result:
        finalize = lambda r: r.evolve(cost_usd=prices.cost("strong", r.usage))  # noqa: E731
        return Result(stream=ResultStream(iter(["a"] * 20), _Acc(), finalize), model=call.model)

    result = Pipeline([b], streams).run(make_call().evolve(stream=True))
    assert alerts == []  # nothing is settled before the stream ends
    list(result.stream)  # type: ignore[arg-type]
    # 1000 input tokens at $10/M + 20 output tokens at $30/M = $0.0106: past half of $0.02
    assert alerts == [
        BudgetAlert(
            limit=limit, bucket="global", window="2026-11-22", unit="usd", threshold=0.5, spent=0.0106, limit_value=0.02
        )
    ]


def test_without_on_alert_a_crossing_is_silent() -> None:
    limit = BudgetLimit(usd=0.02)
    b = budget(limit)  # the default alerts (0.5, 0.8, 0.95) and nobody to tell
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Pipeline([b], Provider()).run(make_call())  # $0.0115 of $0.02
    assert b.backend.usage(b.key_for(limit)) == CounterState(11_500_000, 0)


def test_each_kind_of_alert_callback_failure_is_warned_about_once() -> None:
    errors = iter([RuntimeError("pager down"), ValueError("bad payload"), RuntimeError("pager still down")])

    def flaky(_alert: BudgetAlert) -> None:
        raise next(errors)

    b = budget(BudgetLimit(usd=0.05), alerts=(0.2, 0.4, 0.6), on_alert=flaky)
    run = Pipeline([b], Provider()).run
    with pytest.warns(CostkitWarning) as warned:
        for _ in range(3):  # spent $0.0115, $0.023, $0.0345: one threshold crossed by each
            run(make_call())
    assert [str(w.message) for w in warned] == [
        "costkit: a budget on_alert callback failed: RuntimeError('pager down')",
        "costkit: a budget on_alert callback failed: ValueError('bad payload')",
    ]


class _CallLog(InProcessBudgetBackend):
    """The in-process counters, logging which of their sync and async methods were called."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list[str] = []

    def reserve(self, holds: Any, ttl_s: float) -> Any:
        self.log.append("reserve")
        return super().reserve(holds, ttl_s)

    def settle(self, reservation: Any, actual: Any) -> Any:
        self.log.append("settle")
        return super().settle(reservation, actual)

    def release(self, reservation: Any) -> None:
        self.log.append("release")
        super().release(reservation)

    async def areserve(self, holds: Any, ttl_s: float) -> Any:
        self.log.append("areserve")
        return InProcessBudgetBackend.reserve(self, holds, ttl_s)

    async def asettle(self, reservation: Any, actual: Any) -> Any:
        self.log.append("asettle")
        return InProcessBudgetBackend.settle(self, reservation, actual)

    async def arelease(self, reservation: Any) -> None:
        self.log.append("arelease")
        InProcessBudgetBackend.release(self, reservation)


async def test_an_async_request_uses_the_backends_async_methods() -> None:
    """The async half is the backend's own (the Redis one releases a reservation whose task was
    cancelled; a native async backend never blocks the loop), not the sync half in a thread."""
    backend, limit = _CallLog(), BudgetLimit(usd=1.0)
    b = budget(limit, backend=backend)
    works, fails = Provider(), Provider(fail=ConnectionError())
    await Pipeline([b], works, works.acall).arun(make_call())
    with pytest.raises(ConnectionError):
        await Pipeline([b], fails, fails.acall).arun(make_call())
    assert backend.log == ["areserve", "asettle", "areserve", "arelease"]
    Pipeline([b], works).run(make_call())
    with pytest.raises(ConnectionError):
        Pipeline([b], fails).run(make_call())
    assert backend.log[4:] == ["reserve", "settle", "reserve", "release"]
    assert backend.usage(b.key_for(limit)) == CounterState(23_000_000, 0)
