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


Step: TypeAlias = "Call | Effect"
Flow: TypeAlias = Generator[Step, Any, Result]


def blocking(fn: Callable[[], T], *, io: bool = True) -> Generator[Io, Any, T]:
    """A sub-flow (``yield from``) for state that lives in Redis or in this process: ``io=True``
    yields an :class:`Io` (a worker thread from async code); ``io=False`` calls ``fn`` inline (a
    lock-protected update that never waits)."""
    if io:
        return (yield Io(fn))
    return fn()


def relay(flow: Generator[Step, Any, T], rewrite: Callable[[Call], Call]) -> Generator[Step, Any, T]:
    """Run another flow inside this one (``yield from relay(...)``), rewriting each call it asks
    for (a cascade numbers its gate's judge calls). What the chain answers, or raises, goes back to
    ``flow``; an exception ``flow`` lets out comes out of the ``yield from``."""
    to_send: Any = None
    error: BaseException | None = None
    try:
        while True:
            try:
                step = flow.throw(error) if error is not None else flow.send(to_send)
            except StopIteration as stop:
                return stop.value
            error = None
            try:
                to_send = yield (rewrite(step) if isinstance(step, Call) else step)
            except Exception as exc:
                error = exc
    finally:
        flow.close()


def _no_next(call: Call) -> Result:
    raise TypeError("this flow asks a model but was run without a chain to send it to")


def drive(flow: Generator[Step, Any, T], next: Next | None = None) -> T:
    """Run ``flow`` to its end: calls go to ``next``, effects run synchronously.

    An exception from ``next`` or an effect is thrown into the flow at its ``yield``. The flow is
    always closed (``finally``), so an interrupted flow's own ``finally`` runs.
    """
    send = next or _no_next
    to_send: Any = None
    error: BaseException | None = None
    try:
        while True:
            try:
                step = flow.throw(error) if error is not None else flow.send(to_send)
            except StopIteration as stop:
                return stop.value
            error = None
            try:
                to_send = send(step) if isinstance(step, Call) else step.run()
            except Exception as exc:
                error = exc
    finally:
        flow.close()


async def adrive(flow: Generator[Step, Any, T], anext: ANext | None = None) -> T:
    """:func:`drive` for async code: calls are awaited on ``anext``, effects with ``arun``.

    A cancelled task throws ``CancelledError`` into the flow too, so a flow can undo what it
    holds (a budget reservation) before the cancellation goes on.
    """
    to_send: Any = None
    error: BaseException | None = None
    try:
        while True:
            try:
                step = flow.throw(error) if error is not None else flow.send(to_send)
            except StopIteration as stop:
                return stop.value
            error = None
            try:
                if isinstance(step, Call):
                    if anext is None:
                        _no_next(step)
                    assert anext is not None
                    to_send = await anext(step)
                else:
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

    def flow(self, call: Call) -> Flow:  # pragma: no cover - always overridden
        raise TypeError(f"{type(self).__name__} must define flow(call)")

    def handle(self, call: Call, next: Next) -> Result:
        return drive(self.flow(call), next)

    async def ahandle(self, call: Call, anext: ANext) -> Result:
        return await adrive(self.flow(call), anext)


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

    def step(call: Call) -> Result:
        return handle(call, nxt)

    return step


def _chain_async(policies: Sequence[Policy], terminal: ANext) -> ANext:
    nxt = terminal
    for policy in reversed(policies):
        nxt = _bind_async(policy, nxt)
    return nxt


def _bind_async(policy: Policy, nxt: ANext) -> ANext:
    ahandle = policy.ahandle

    async def step(call: Call) -> Result:
        return await ahandle(call, nxt)

    return step


__all__ = [
    "ANext",
    "Effect",
    "Flow",
    "FlowPolicy",
    "Io",
    "Next",
    "Pipeline",
    "Policy",
    "Sleep",
    "Step",
    "Wait",
    "adrive",
    "blocking",
    "check_policies",
    "drive",
    "relay",
]
