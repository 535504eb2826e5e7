"""The policy chain: a plain list of policies, outermost first, ending in a terminal.

A policy has one method, ``handle(call, next) -> Result`` (and its async twin
``ahandle(call, anext)``). A policy that does no I/O subclasses :class:`FlowPolicy` and writes
its logic once, as a generator (the pattern of httpx's auth flows)::

    class AddNote(FlowPolicy):
        def flow(self, call):
            result = yield call.with_notes(seen=True)   # hand the call to the rest of the chain
            return result

``yield call`` sends a call down the chain and receives its Result (or the exception, thrown
into the generator at the ``yield``); ``yield Sleep(s)`` waits without blocking an event loop,
``yield Do(fn)`` runs blocking I/O (in a worker thread from async code) and ``yield Wait(future)``
waits for another thread's result — the only places where the two drivers differ;
``return result`` ends the flow. Returning before the first ``yield`` answers without calling
the provider (a cache hit); yielding several times retries or escalates.
"""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Awaitable, Callable, Generator, Sequence
from typing import Any, Protocol, TypeAlias, runtime_checkable

import attrs

from ._call import Call, Result
from .errors import ConfigError

Next: TypeAlias = Callable[[Call], Result]
ANext: TypeAlias = Callable[[Call], Awaitable[Result]]


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
class Sleep:
    """Wait: ``time.sleep`` in the sync driver, ``asyncio.sleep`` in the async one."""

    seconds: float

    def run(self) -> None:
        if self.seconds > 0:
            time.sleep(self.seconds)

    async def arun(self) -> None:
        if self.seconds > 0:
            import asyncio  # imported here: `import costkit` stays light

            await asyncio.sleep(self.seconds)


@attrs.frozen(slots=True)
class Do:
    """Run ``fn()`` and send its value back: inline when sync, in a worker thread from async code
    when ``blocking`` (network I/O such as Redis), inline otherwise (a lock-protected update)."""

    fn: Callable[[], Any]
    blocking: bool = False

    def run(self) -> Any:
        return self.fn()

    async def arun(self) -> Any:
        if not self.blocking:
            return self.fn()
        import asyncio

        return await asyncio.to_thread(self.fn)


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


Flow: TypeAlias = Generator["Call | Effect", Any, Result]


class FlowPolicy:
    """Base class for a policy written once as a generator ``flow(call)``; see the module docstring."""

    def flow(self, call: Call) -> Flow:  # pragma: no cover - always overridden
        raise TypeError(f"{type(self).__name__} must define flow(call)")

    def handle(self, call: Call, next: Next) -> Result:
        gen = self.flow(call)
        to_send: Any = None
        error: BaseException | None = None
        try:
            while True:
                try:
                    step = gen.throw(error) if error is not None else gen.send(to_send)
                except StopIteration as stop:
                    return stop.value
                error = None
                try:
                    to_send = next(step) if isinstance(step, Call) else step.run()
                except Exception as exc:
                    error = exc
        finally:
            gen.close()  # interrupted mid-flow (KeyboardInterrupt...): the flow's finally runs now

    async def ahandle(self, call: Call, anext: ANext) -> Result:
        gen = self.flow(call)
        to_send: Any = None
        error: BaseException | None = None
        try:
            while True:
                try:
                    step = gen.throw(error) if error is not None else gen.send(to_send)
                except StopIteration as stop:
                    return stop.value
                error = None
                try:
                    to_send = await anext(step) if isinstance(step, Call) else await step.arun()
                except Exception as exc:
                    error = exc
        finally:
            gen.close()  # a cancelled task: the flow's finally runs now


def check_policies(policies: Sequence[Any]) -> tuple[Policy, ...]:
    """Reject anything that is not a policy at construction, naming its position."""
    out = []
    for i, p in enumerate(policies):
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
    "Do",
    "Effect",
    "Flow",
    "FlowPolicy",
    "Next",
    "Pipeline",
    "Policy",
    "Sleep",
    "Wait",
    "check_policies",
]
