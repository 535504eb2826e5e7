"""Test a policy on its own: run it around a terminal you write, sync or async, with no client.

::

    from costkit import Call, Result
    from costkit.testing import run_policy

    def provider(call):                       # what "the rest of the chain" answers
        return Result(text="ok", model=call.model)

    result = run_policy(MyPolicy(), Call(provider="openai", api="chat.completions", requested_model="m",
                                         model="m", messages=({"role": "user", "content": "hi"},)), provider)

The call gets a fresh request scope (as a wrapped client's would), so a policy that reads the
request's records (budgets) behaves as it does behind ``costkit.wrap``; ``bind(env)`` is called
with a default price book when the policy has one.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from .._call import Call, Result
from .._env import Env, bind_all
from .._pipeline import Pipeline
from .._recorder import Recorder
from .._scope import RequestScope


def _prepared(policy: Any, call: Call, pricing: Any) -> tuple[Any, Call]:
    if pricing is None:
        from ..pricing import default_pricebook

        pricing = default_pricebook()
    bind_all([policy], Env(pricing, Recorder(None, pricing)))
    return policy, call if call.scope is not None else call.evolve(scope=RequestScope())


def run_policy(policy: Any, call: Call, terminal: Callable[[Call], Result], *, pricing: Any = None) -> Result:
    """``policy`` handling ``call`` with ``terminal`` as the rest of the chain (sync)."""
    policy, call = _prepared(policy, call, pricing)
    return Pipeline([policy], terminal).run(call)


async def arun_policy(
    policy: Any,
    call: Call,
    terminal: Callable[[Call], Awaitable[Result]] | Callable[[Call], Result],
    *,
    pricing: Any = None,
) -> Result:
    """``policy`` handling ``call`` with ``terminal`` as the rest of the chain (async; a plain
    function works as a terminal too)."""
    policy, call = _prepared(policy, call, pricing)

    async def aterminal(c: Call) -> Result:
        out = terminal(c)
        return await out if inspect.isawaitable(out) else out

    def no_sync(c: Call) -> Result:  # pragma: no cover - the async chain never calls it
        raise RuntimeError("sync terminal used from an async chain")

    return await Pipeline([policy], no_sync, aterminal).arun(call)


__all__ = ["arun_policy", "run_policy"]
