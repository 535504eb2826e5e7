"""The policy chain: a plain list of policies, outermost first, ending in a terminal.

A policy has one method, ``handle(call, next) -> Result`` (and its async twin
``ahandle(call, anext)``). A policy that does no I/O subclasses :class:`FlowPolicy` and writes
its logic once, as a generator (the pattern of httpx's auth flows)::

    class AddNote(FlowPolicy):
        def flow(self, call):
            result = yield call.with_notes(seen=True)   # hand the call to the rest of the chain
            return result

``yield call`` sends a call down the chain and receives its Result (or the exception, thrown
into the generator at the ``yield``); ``yield Sleep(s)`` waits without blocking an event loop;
``return result`` ends the flow. Returning before the first ``yield`` answers without calling
the provider (a cache hit); yielding several times retries or escalates.
"""

from __future__ import annotations

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


@attrs.frozen(slots=True)
class Sleep:
    """Yielded by a flow to wait: ``time.sleep`` in the sync driver, ``asyncio.sleep`` in the async one."""

    seconds: float


Flow: TypeAlias = Generator["Call | Sleep", "Result | None", Result]


class FlowPolicy:
    """Base class for a policy written once as a generator ``flow(call)``; see the module docstring."""

    def flow(self, call: Call) -> Flow:  # pragma: no cover - always overridden
        raise TypeError(f"{type(self).__name__} must define flow(call)")

    def handle(self, call: Call, next: Next) -> Result:
        gen = self.flow(call)
        to_send: Any = None
        error: BaseException | None = None
        while True:
            try:
                step = gen.throw(error) if error is not None else gen.send(to_send)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            error = None
            if isinstance(step, Sleep):
                if step.seconds > 0:
                    time.sleep(step.seconds)
                to_send = None
                continue
            try:
                to_send = next(step)
            except Exception as exc:
                error = exc

    async def ahandle(self, call: Call, anext: ANext) -> Result:
        gen = self.flow(call)
        to_send: Any = None
        error: BaseException | None = None
        while True:
            try:
                step = gen.throw(error) if error is not None else gen.send(to_send)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            error = None
            if isinstance(step, Sleep):
                if step.seconds > 0:
                    import asyncio  # imported here: `import costkit` stays light

                    await asyncio.sleep(step.seconds)
                to_send = None
                continue
            try:
                to_send = await anext(step)
            except Exception as exc:
                error = exc


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


__all__ = ["ANext", "Flow", "FlowPolicy", "Next", "Pipeline", "Policy", "Sleep", "check_policies"]
