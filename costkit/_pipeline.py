"""The policy chain: a plain list of policies, outermost first, ending in a terminal.

A policy has one method, ``handle(call, next) -> Result`` (and its async twin
``ahandle(call, anext)``). A policy subclasses :class:`FlowPolicy` and writes its logic once, as
a generator (the pattern of httpx's auth flows)::

    class AddNote(FlowPolicy):
        def flow(self, call):
            result = yield call.with_notes(seen=True)   # hand the call to the rest of the chain
            return result

``yield call`` sends a call down the chain and receives its Result (or the exception, thrown
into the generator at the ``yield``); ``yield Io(run, arun)`` does I/O: ``run()`` in the sync
driver, ``await arun()`` in the async one (``arun=None``: ``run`` in a worker thread);
``yield Sleep(s)`` waits without blocking an event loop and ``yield Wait(future)`` waits for
another thread's result. Effects are the only place the two drivers differ; ``return result``
ends the flow. Returning before the first ``yield`` answers without calling the provider (a
cache hit); yielding several times retries or escalates.

:func:`drive` and :func:`adrive` are the two drivers: every flow in costkit (policies, gates,
strategies that embed through a network) runs through them.
"""

from __future__ import annotations

import concurrent.futures
import functools
import time
from collections.abc import Awaitable, Callable, Generator, Sequence
from typing import Any, Protocol, TypeAlias, TypeVar, runtime_checkable

import attrs

from ._call import Call, Result
from .errors import ConfigError

Next: TypeAlias = Callable[[Call], Result]
ANext: TypeAlias = Callable[[Call], Awaitable[Result]]
T = TypeVar("T")


@runtime_checkable
class Policy(Protocol):
    """One layer of the chain. See the module docstring."""

    def handle(self, call: Call, next: Next) -> Result: ...

    async def ahandle(self, call: Call, anext: ANext) -> Result: ...


class Effect(Protocol):
    """Something a flow yields to have the driver do I/O for it: ``run`` in the sync driver,
    ``arun`` in the async one. The value comes back at the ``yield``; an exception is thrown in."""

    def run(self) -> Any: ...

    async def arun(self) -> Any: ...


@attrs.frozen(slots=True)
class Io:
    """I/O with a sync and an async half: ``sync()`` in the sync driver, ``await async_()`` in the
    async one. Without an async half the sync one runs in a worker thread from async code (a
    blocking client, such as redis-py's, must never run on an event loop)."""

    sync: Callable[[], Any]
    async_: Callable[[], Awaitable[Any]] | None = None

    def run(self) -> Any:
        return self.sync()

    async def arun(self) -> Any:
        if self.async_ is not None:
            return await self.async_()
        import asyncio  # imported here: `import costkit` stays light

        return await asyncio.to_thread(self.sync)


@attrs.frozen(slots=True)
class Sleep:
    """Wait: ``time.sleep`` in the sync driver, ``asyncio.sleep`` in the async one."""

    seconds: float

    def run(self) -> None:
        if self.seconds > 0:
            time.sleep(self.seconds)

    async def arun(self) -> None:
        if self.seconds > 0:
            import asyncio

            await asyncio.sleep(self.seconds)


@attrs.frozen(slots=True)
class Wait:
    """Wait for another thread's or task's result (a ``concurrent.futures.Future``); a timeout is
    thrown into the flow as ``TimeoutError``."""

    future: concurrent.futures.Future[Any]
    timeout_s: float | None = None

    def run(self) -> Any:
        try:
            return self.future.result(self.timeout_s)
        except concurrent.futures.TimeoutError:
            raise TimeoutError(f"waited {self.timeout_s}s") from None

    async def arun(self) -> Any:
        import asyncio

        waiter = asyncio.shield(asyncio.wrap_future(self.future))
        try:
            return await asyncio.wait_for(waiter, self.timeout_s)
        except asyncio.TimeoutError:
            raise TimeoutError(f"waited {self.timeout_s}s") from None


@attrs.frozen(slots=True)
class Ahead:
    """A check before a call (Dedup's claim, a reservation, a circuit's admission, a cache lookup):
    ``check`` is an effect, and ``call`` is what the flow sends on next when its answer lets the call
    go (``check.go(answer)``). Run alone, it is ``check``. In a wrapped request (:class:`PreCall`)
    the driver sends ``call`` on at once and the check waits for the checks of the layers below:
    they run together (one round trip to Redis) just before anything below does I/O or calls the
    provider, and each flow gets its answer then, in chain order, before the provider is called."""

    check: Any  # an Effect with go(answer) -> bool and a static run_all(checks) (costkit._redis_batch.RedisCheck)
    call: Call

    def run(self) -> Any:
        return self.check.run()

    async def arun(self) -> Any:
        return await self.check.arun()


Step: TypeAlias = "Call | Effect"
Flow: TypeAlias = Generator[Step, Any, Result]


def blocking(fn: Callable[[], T], *, io: bool = True) -> Generator[Io, Any, T]:
    """A sub-flow (``yield from``) for state that lives in Redis or in this process: ``io=True``
    yields an :class:`Io` (a worker thread from async code); ``io=False`` calls ``fn`` inline (a
    lock-protected update that never waits)."""
    if io:
        return (yield Io(fn))
    return fn()


def _advance(flow: Generator[Any, Any, Any], to_send: Any, error: BaseException | None) -> tuple[bool, Any]:
    """Resume ``flow`` with a value or an exception: ``(True, its next step)`` or ``(False, what it returned)``."""
    try:
        return True, (flow.throw(error) if error is not None else flow.send(to_send))
    except StopIteration as stop:
        return False, stop.value


def relay(flow: Generator[Step, Any, T], rewrite: Callable[[Call], Call]) -> Generator[Step, Any, T]:
    """Run another flow inside this one (``yield from relay(...)``), rewriting each call it asks
    for (a cascade numbers its gate's judge calls). What the chain answers, or raises, goes back to
    ``flow``; an exception ``flow`` lets out comes out of the ``yield from``."""
    to_send: Any = None
    error: BaseException | None = None
    try:
        while True:
            going, step = _advance(flow, to_send, error)
            if not going:
                return step
            error = None
            if isinstance(step, Call):
                step = rewrite(step)
            elif isinstance(step, Ahead):  # its call is not the one the chain gets: the check goes alone
                step = step.check
            try:
                to_send = yield step
            except Exception as exc:
                error = exc
    finally:
        flow.close()


# ----------------------------------------------------------------------------- the request's pre-call checks


class Preempted(BaseException):
    """Raised up the chain from a pre-call flush when a check's answer stopped its flow (a hit, a
    refusal, a follower): the layers below it unwind (their checks never ran) until the driver of
    that flow, which goes on from what the flow did instead. Never leaves the chain."""

    def __init__(self, entry: _Pending) -> None:
        super().__init__("preempted")
        self.entry = entry


class _Pending:
    __slots__ = ("flow", "outcome", "resumed", "step")

    def __init__(self, flow: Generator[Any, Any, Any], step: Ahead) -> None:
        self.flow = flow
        self.step = step
        self.resumed = False  # the flow got its answer and sent its call on
        self.outcome: tuple[str, Any] = ("", None)  # what the flow did instead: (return|raise|step, value)


class PreCall:
    """One request's pending :class:`Ahead` checks (``call.scope.checks``, set by the wrapper): the
    flows of consecutive layers wait here until something below does I/O or calls the provider, then
    their checks run together (``run_all``: one script per Redis server) and the flows are resumed
    in chain order. A flow that does not send its call on (a hit, a refusal, a wait) preempts the
    layers below it: their checks never run, as when each check went alone."""

    __slots__ = ("pending",)

    def __init__(self) -> None:
        self.pending: list[_Pending] = []

    def _checks(self) -> list[Any]:
        return [p.step.check for p in self.pending]

    def flush(self) -> None:
        """Run the pending checks and resume their flows (raises :class:`Preempted` when one stops)."""
        while self.pending:
            checks = self._checks()
            self._resume(type(checks[0]).run_all(checks))

    async def aflush(self) -> None:
        """:meth:`flush` with the checks in a worker thread; a task cancelled meanwhile gives back what they hold."""
        import asyncio

        while self.pending:
            checks = self._checks()
            running = asyncio.ensure_future(asyncio.to_thread(type(checks[0]).run_all, checks))
            try:
                outcomes = await asyncio.shield(running)
            except asyncio.CancelledError:
                self.pending.clear()
                running.add_done_callback(functools.partial(_give_back, checks))
                raise
            self._resume(outcomes)

    def _resume(self, outcomes: list[tuple[Any, BaseException | None]]) -> None:
        for i, (value, error) in enumerate(outcomes):
            entry = self.pending.pop(0)
            try:
                going, step = _advance(entry.flow, value, error)
            except Exception as exc:
                entry.outcome = ("raise", exc)
            else:
                if going and step is entry.step.call:
                    entry.resumed = True  # its driver is waiting on the chain below, which goes on
                    continue
                entry.outcome = ("step", step) if going else ("return", step)
            below, self.pending[:] = self._checks(), []
            ran = outcomes[i + 1 :]
            if ran:  # checks below it ran although it does not send its call on: given back
                _warn_unsent(entry)
                _undo(below[: len(ran)], ran)
            raise Preempted(entry)

    def forget(self, entry: _Pending) -> None:
        if entry in self.pending:
            self.pending.remove(entry)

    def ahead(self, flow: Generator[Any, Any, Any], step: Ahead, send: Next) -> tuple[str, Any]:
        """The sync driver's :class:`Ahead`: send the call on now, the check with the ones below.
        Returns what the driver does next: ``send``/``throw`` a value into the flow, or the
        flow's own ``return``/``raise``/``step`` when its answer stopped the call."""
        entry = _Pending(flow, step)
        self.pending.append(entry)
        try:
            try:
                got: tuple[str, Any] = ("send", send(step.call))
            except Exception as exc:
                got = ("throw", exc)
            if not entry.resumed:  # the chain answered with no I/O of its own: check now, as when alone
                self.flush()
            return got
        except Preempted as p:
            if p.entry is not entry:
                raise
            return entry.outcome
        finally:
            self.forget(entry)

    async def aahead(self, flow: Generator[Any, Any, Any], step: Ahead, anext: ANext) -> tuple[str, Any]:
        """:meth:`ahead` for the async driver."""
        entry = _Pending(flow, step)
        self.pending.append(entry)
        try:
            try:
                got: tuple[str, Any] = ("send", await anext(step.call))
            except Exception as exc:
                got = ("throw", exc)
            if not entry.resumed:
                await self.aflush()
            return got
        except Preempted as p:
            if p.entry is not entry:
                raise
            return entry.outcome
        finally:
            self.forget(entry)


def _give_back(checks: list[Any], done: Any) -> None:
    if not done.cancelled() and done.exception() is None:
        _undo(checks, done.result())


def _undo(checks: list[Any], outcomes: list[tuple[Any, BaseException | None]]) -> None:
    undo = getattr(checks[0], "undo_all", None) if checks else None
    if callable(undo):
        undo(checks, outcomes)


def _warn_unsent(entry: _Pending) -> None:
    from ._warn import warn_once

    warn_once(
        f"precall-contract:{type(entry.step.check).__name__}",
        "costkit: a flow did not send its call on after a check that let it go; what the checks below "
        "it took is given back",
    )


def _after_check(kind: str, value: Any) -> tuple[bool, Any, tuple[Any, BaseException | None] | None]:
    """What a driver does after :meth:`PreCall.ahead`: ``(going, step, None)`` when the check's answer
    stopped the call (the flow's own next step or return value), ``(_, _, (to_send, error))`` when
    the chain's answer goes back into the flow; the flow's own exception goes out of the driver."""
    if kind == "raise":
        raise value
    if kind == "send":
        return True, None, (value, None)
    if kind == "throw":
        return True, None, (None, value)
    return kind != "return", value, None


def _no_next(call: Call) -> Result:
    raise TypeError("this flow asks a model but was run without a chain to send it to")


def checks_of(call: Call) -> PreCall | None:
    """The request's pending pre-call checks (None outside a wrapped client: each check goes alone)."""
    scope = call.scope
    return scope.checks if scope is not None else None


def drive(flow: Generator[Step, Any, T], next: Next | None = None, checks: PreCall | None = None) -> T:
    """Run ``flow`` to its end: calls go to ``next``, effects run synchronously; an :class:`Ahead`
    joins ``checks`` (the request's pre-call checks) when there are some, else runs alone.

    An exception from ``next`` or an effect is thrown into the flow at its ``yield``. The flow is
    always closed (``finally``), so an interrupted flow's own ``finally`` runs.
    """
    send = next or _no_next
    to_send: Any = None
    error: BaseException | None = None
    try:
        while True:
            going, step = _advance(flow, to_send, error)
            while going and checks is not None and isinstance(step, Ahead):
                going, step, resume = _after_check(*checks.ahead(flow, step, send))
                if resume is not None:
                    to_send, error = resume
                    break
            else:
                if not going:
                    return step
                error = None
                try:
                    if isinstance(step, Call):
                        to_send = send(step)
                    else:
                        if checks is not None and checks.pending:  # the layers above are decided first
                            checks.flush()
                        to_send = step.run()
                except Exception as exc:
                    error = exc
    finally:
        flow.close()


async def adrive(flow: Generator[Step, Any, T], anext: ANext | None = None, checks: PreCall | None = None) -> T:
    """:func:`drive` for async code: calls are awaited on ``anext``, effects with ``arun``.

    A cancelled task throws ``CancelledError`` into the flow too, so a flow can undo what it
    holds (a budget reservation) before the cancellation goes on.
    """
    to_send: Any = None
    error: BaseException | None = None
    try:
        while True:
            going, step = _advance(flow, to_send, error)
            while going and checks is not None and anext is not None and isinstance(step, Ahead):
                try:
                    outcome = await checks.aahead(flow, step, anext)
                except BaseException as exc:  # CancelledError: thrown into the flow at its check
                    if not _is_cancellation(exc):
                        raise
                    outcome = ("throw", exc)
                going, step, resume = _after_check(*outcome)
                if resume is not None:
                    to_send, error = resume
                    break
            else:
                if not going:
                    return step
                error = None
                try:
                    if isinstance(step, Call):
                        if anext is None:
                            _no_next(step)
                        assert anext is not None
                        to_send = await anext(step)
                    else:
                        if checks is not None and checks.pending:
                            await checks.aflush()
                        to_send = await step.arun()
                except Exception as exc:
                    error = exc
                except BaseException as exc:  # CancelledError: let the flow clean up, then it goes on
                    if not _is_cancellation(exc):
                        raise
                    error = exc
    finally:
        flow.close()


def _is_cancellation(exc: BaseException) -> bool:
    import asyncio

    return isinstance(exc, asyncio.CancelledError)


class FlowPolicy:
    """Base class for a policy written once as a generator ``flow(call)``; see the module docstring."""

    #: True when the flow does nothing anyone could see before its first :class:`Ahead` (or its
    #: call): it may then start while the checks of the layers above are still pending, and its check
    #: joins theirs. Any other policy starts only once the checks above have answered.
    joins_checks: bool = False

    def flow(self, call: Call) -> Flow:  # pragma: no cover - always overridden
        raise TypeError(f"{type(self).__name__} must define flow(call)")

    def handle(self, call: Call, next: Next) -> Result:
        return drive(self.flow(call), next, checks_of(call))

    async def ahandle(self, call: Call, anext: ANext) -> Result:
        return await adrive(self.flow(call), anext, checks_of(call))


def check_policies(policies: Sequence[Any]) -> tuple[Policy, ...]:
    """Reject anything that is not a policy at construction, naming its position."""
    out = []
    for i, p in enumerate(policies):
        if isinstance(p, type):
            raise ConfigError(f"policies[{i}]", f"{p.__name__} is a class: pass an instance, e.g. {p.__name__}()")
        if not (callable(getattr(p, "handle", None)) and callable(getattr(p, "ahandle", None))):
            raise ConfigError(
                f"policies[{i}]",
                f"{p!r} is not a policy: it needs handle(call, next) and ahandle(call, anext) "
                "(subclass costkit.FlowPolicy to write both at once)",
            )
        out.append(p)
    return tuple(out)


class Pipeline:
    """Runs a call through the policies into the terminal; the closures are built once."""

    def __init__(
        self,
        policies: Sequence[Any],
        terminal: Next,
        aterminal: ANext | None = None,
    ) -> None:
        self.policies = check_policies(policies)
        self._run: Next = _chain_sync(self.policies, terminal)
        self._arun: ANext | None = _chain_async(self.policies, aterminal) if aterminal else None

    def run(self, call: Call) -> Result:
        return self._run(call)

    async def arun(self, call: Call) -> Result:
        if self._arun is None:
            raise ConfigError("terminal", "this pipeline has no async terminal")
        return await self._arun(call)


def _chain_sync(policies: Sequence[Policy], terminal: Next) -> Next:
    nxt = terminal
    for policy in reversed(policies):
        nxt = _bind_sync(policy, nxt)
    return nxt


def _bind_sync(policy: Policy, nxt: Next) -> Next:
    handle = policy.handle
    if getattr(policy, "joins_checks", False) is True:
        return lambda call: handle(call, nxt)

    def step(call: Call) -> Result:
        checks = checks_of(call)
        if checks is not None and checks.pending:  # the checks above decide before this layer starts
            checks.flush()
        return handle(call, nxt)

    return step


def _chain_async(policies: Sequence[Policy], terminal: ANext) -> ANext:
    nxt = terminal
    for policy in reversed(policies):
        nxt = _bind_async(policy, nxt)
    return nxt


def _bind_async(policy: Policy, nxt: ANext) -> ANext:
    ahandle = policy.ahandle
    joins = getattr(policy, "joins_checks", False) is True

    async def step(call: Call) -> Result:
        checks = None if joins else checks_of(call)
        if checks is not None and checks.pending:
            await checks.aflush()
        return await ahandle(call, nxt)

    return step


__all__ = [
    "ANext",
    "Ahead",
    "Effect",
    "Flow",
    "FlowPolicy",
    "Io",
    "Next",
    "Pipeline",
    "Policy",
    "PreCall",
    "Preempted",
    "Sleep",
    "Step",
    "Wait",
    "adrive",
    "blocking",
    "check_policies",
    "checks_of",
    "drive",
    "relay",
]
