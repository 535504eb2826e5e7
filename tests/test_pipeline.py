import asyncio

import pytest

from costkit import Call, ConfigError, FlowPolicy, Result, Sleep
from costkit._pipeline import Pipeline


def make_call(**kw):
    base = dict(provider="openai", api="chat.completions", requested_model="m", model="m",
                messages=({"role": "user", "content": "q"},))
    base.update(kw)
    return Call(**base)


class Tag(FlowPolicy):
    def __init__(self, name, log):
        self.name, self.log = name, log

    def flow(self, call):
        self.log.append(f"{self.name}>")
        result = yield call.with_notes(**{self.name: True})
        self.log.append(f"<{self.name}")
        return result


class RetryOnce(FlowPolicy):
    def __init__(self):
        self.slept = []

    def flow(self, call):
        try:
            return (yield call)
        except ValueError:
            yield Sleep(0)
            return (yield call.evolve(attempt=call.attempt + 1, kind="retry"))


class Answer(FlowPolicy):
    def flow(self, call):
        return Result(text="cached", source="exact")
        yield  # pragma: no cover - makes this a generator


def test_order_is_outermost_first_and_calls_are_evolved_not_mutated():
    log, seen = [], []

    def terminal(call):
        seen.append(call)
        log.append("T")
        return Result(text="ok")

    original = make_call()
    result = Pipeline([Tag("a", log), Tag("b", log)], terminal).run(original)
    assert log == ["a>", "b>", "T", "<b", "<a"]
    assert result.text == "ok"
    assert dict(seen[0].notes) == {"a": True, "b": True}
    assert dict(original.notes) == {}


def test_exception_thrown_into_flow_lets_policy_retry_sync_and_async():
    attempts = []

    def terminal(call):
        attempts.append((call.attempt, call.kind))
        if call.attempt == 1:
            raise ValueError("boom")
        return Result(text="second")

    async def aterminal(call):
        return terminal(call)

    pipe = Pipeline([RetryOnce()], terminal, aterminal)
    assert pipe.run(make_call()).text == "second"
    assert asyncio.run(pipe.arun(make_call())).text == "second"
    assert attempts == [(1, "call"), (2, "retry"), (1, "call"), (2, "retry")]


def test_unhandled_exception_propagates_unchanged():
    class Boom(Exception):
        pass

    def terminal(call):
        raise Boom("x")

    with pytest.raises(Boom):
        Pipeline([Tag("a", [])], terminal).run(make_call())


def test_early_return_never_reaches_terminal():
    def terminal(call):  # pragma: no cover - must not run
        raise AssertionError("terminal reached")

    assert Pipeline([Answer()], terminal).run(make_call()).source == "exact"


def test_non_policy_is_rejected_naming_its_position():
    with pytest.raises(ConfigError) as err:
        Pipeline([Tag("a", []), object()], lambda c: Result())
    assert err.value.field == "policies[1]"


def test_async_without_terminal_is_a_clear_error():
    pipe = Pipeline([], lambda c: Result())
    with pytest.raises(ConfigError):
        asyncio.run(pipe.arun(make_call()))


# ------------------------------------------------------------------ pre-call checks in one batch


class Check:
    """A batchable check answered from memory; ``run_all`` writes down each batch it runs."""

    def __init__(self, name, answer, log):
        self.name, self.answer, self.log = name, answer, log

    def go(self, value):
        return value == "go"

    def run(self):
        self.log.append(("alone", self.name))
        return self.answer

    async def arun(self):
        return self.run()

    @staticmethod
    def run_all(checks):
        checks[0].log.append(("batch", [c.name for c in checks]))
        out = []
        for c in checks:
            out.append((c.answer, None))
            if not c.go(c.answer):
                break
        return out


class Gate(FlowPolicy):
    """Asks its check; "stop" answers the call itself, "wait" sleeps first, anything else sends it on."""

    joins_checks = True  # nothing happens before its check

    def __init__(self, name, answer, log):
        self.name, self.answer, self.log = name, answer, log

    def flow(self, call):
        from costkit._pipeline import Ahead

        verdict = yield Ahead(Check(self.name, self.answer, self.log), call)
        self.log.append((self.name, verdict))
        if verdict == "stop":
            return Result(text=self.name)
        if verdict == "wait":
            yield Sleep(0)
        try:
            result = yield call
        except GeneratorExit:
            self.log.append((self.name, "closed"))
            raise
        return result


def scoped_call():
    from costkit._pipeline import PreCall
    from costkit._scope import RequestScope

    scope = RequestScope()
    scope.checks = PreCall()
    return make_call(scope=scope)


def terminal_of(log):
    def terminal(call):
        if call.scope is not None and call.scope.checks is not None and call.scope.checks.pending:
            call.scope.checks.flush()  # what the wrapper's terminal does
        log.append("provider")
        return Result(text="provider")

    async def aterminal(call):
        if call.scope is not None and call.scope.checks is not None and call.scope.checks.pending:
            await call.scope.checks.aflush()
        log.append("provider")
        return Result(text="provider")

    return terminal, aterminal


@pytest.mark.parametrize("is_async", [False, True])
@pytest.mark.parametrize(
    ("answers", "text", "expected"),
    [
        (("go", "go", "go"), "provider", [("a", "go"), ("b", "go"), ("c", "go"), "provider"]),
        # b stops the call with its own answer, handed to a; c is never asked, the provider never called
        (("go", "stop", "go"), "b", [("a", "go"), ("b", "stop")]),
    ],
)
def test_the_checks_of_consecutive_layers_run_in_one_batch_and_stop_at_the_first_that_stops_the_call(
    is_async, answers, text, expected
):
    log = []
    gates = [Gate(name, answer, log) for name, answer in zip("abc", answers)]
    pipe = Pipeline(gates, *terminal_of(log))
    call = scoped_call()
    out = asyncio.run(pipe.arun(call)) if is_async else pipe.run(call)
    assert out.text == text
    assert log == [("batch", ["a", "b", "c"]), *expected]


def test_a_layer_that_waits_after_its_answer_sends_the_call_on_again_and_the_layers_below_ask_anew():
    log = []
    pipe = Pipeline([Gate("a", "wait", log), Gate("b", "go", log)], *terminal_of(log))
    assert pipe.run(scoped_call()).text == "provider"
    # the first batch stops at a (its answer is not "go"); after a's wait, b's check goes alone in a batch of its own
    assert log == [("batch", ["a", "b"]), ("a", "wait"), ("batch", ["b"]), ("b", "go"), "provider"]


def test_without_a_request_scope_each_check_goes_alone():
    log = []
    pipe = Pipeline([Gate("a", "go", log), Gate("b", "go", log)], *terminal_of(log))
    assert pipe.run(make_call()).text == "provider"
    assert log == [("alone", "a"), ("a", "go"), ("alone", "b"), ("b", "go"), "provider"]


def test_a_layer_below_that_answers_without_io_still_waits_for_the_checks_above():
    log = []
    pipe = Pipeline([Gate("a", "stop", log), Answer()], *terminal_of(log))
    assert pipe.run(scoped_call()).text == "a"  # as if a had been asked first: its answer wins
    log.clear()
    pipe = Pipeline([Gate("a", "go", log), Answer()], *terminal_of(log))
    assert pipe.run(scoped_call()).text == "cached"
    assert log == [("batch", ["a"]), ("a", "go")]


def test_io_below_waits_for_the_checks_above():
    log = []

    class Lookup(FlowPolicy):
        def flow(self, call):
            from costkit._pipeline import Io

            yield Io(lambda: log.append("lookup"))
            return (yield call)

    pipe = Pipeline([Gate("a", "go", log), Lookup()], *terminal_of(log))
    pipe.run(scoped_call())
    assert log == [("batch", ["a"]), ("a", "go"), "lookup", "provider"]
    log.clear()
    pipe = Pipeline([Gate("a", "stop", log), Lookup()], *terminal_of(log))
    assert pipe.run(scoped_call()).text == "a"
    assert log == [("batch", ["a"]), ("a", "stop")]  # the lookup below never ran


def test_a_layer_that_does_not_join_the_checks_starts_only_after_the_checks_above_answered():
    log = []

    class Count(FlowPolicy):  # keeps something at once (a counter): it must not run for a call stopped above
        def flow(self, call):
            log.append("counted")
            return (yield call)

    pipe = Pipeline([Gate("a", "stop", log), Count(), Gate("b", "go", log)], *terminal_of(log))
    assert pipe.run(scoped_call()).text == "a"
    assert log == [("batch", ["a"]), ("a", "stop")]
    log.clear()
    pipe = Pipeline([Gate("a", "go", log), Count(), Gate("b", "go", log)], *terminal_of(log))
    assert pipe.run(scoped_call()).text == "provider"
    assert log == [("batch", ["a"]), ("a", "go"), "counted", ("batch", ["b"]), ("b", "go"), "provider"]


def test_a_task_cancelled_while_its_checks_run_gives_back_what_they_took():
    import threading
    import time

    log = []
    given_back = threading.Event()

    class SlowCheck(Check):
        @staticmethod
        def run_all(checks):
            time.sleep(0.2)  # the round trip, in a worker thread
            return [(c.answer, None) for c in checks]

        @staticmethod
        def undo_all(checks, outcomes):
            log.append(("given back", [c.name for c in checks], outcomes))
            given_back.set()

    class SlowGate(Gate):
        def flow(self, call):
            from costkit._pipeline import Ahead

            verdict = yield Ahead(SlowCheck(self.name, self.answer, self.log), call)
            self.log.append((self.name, verdict))
            return (yield call)

    pipe = Pipeline([SlowGate("a", "go", log)], *terminal_of(log))

    async def main():
        task = asyncio.ensure_future(pipe.arun(scoped_call()))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.to_thread(given_back.wait, 5)

    asyncio.run(main())
    assert log == [("given back", ["a"], [("go", None)])]  # the flow never got its answer; the provider was not called
