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
