"""How a policy takes part in the batch lane: three small protocols, found by ``isinstance``.

A batch item never runs through the policy chain (nothing is sent until the whole job is
submitted, and the answer comes hours later), so a policy that makes sense per item says so by
implementing one of these. The lane walks the wrapped client's chain in order and, per item:

* :class:`BatchPrepare` ``batch_prepare(call) -> call``: change the item before it is sent, or
  refuse it by raising (``Guardrails`` clamps ``max_tokens`` at batch prices; ``PromptCompressor``
  shortens the prompt; ``Router`` picks the model);
* :class:`BatchCache` ``batch_lookup(call) -> (result | None, ticket)``: answer the item now (it
  is never submitted), or give a JSON-able ``ticket`` that ``batch_store(ticket, result)`` later
  stores the provider's answer under (``ExactCache``); the ticket is kept in the job's state, so a
  restarted process still stores what comes back;
* :class:`BatchBudget` ``batch_reserve(call, ttl_s) -> ticket | None`` holds the item's worst
  case at batch prices (``BudgetExceeded`` when it does not fit: the whole job is then refused
  and every hold released), ``batch_settle(ticket, usd, tokens)`` replaces the hold with what
  the item cost, ``batch_release(ticket)`` drops it (``Budget``).

The calls a batch lane builds have ``kind="batch"``, so a worst-case estimate prices them at
the cost map's batch rates.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from .._call import Call, Result


@runtime_checkable
class BatchPrepare(Protocol):
    def batch_prepare(self, call: Call) -> Call: ...


@runtime_checkable
class BatchCache(Protocol):
    def batch_lookup(self, call: Call) -> tuple[Result | None, Any]: ...

    def batch_store(self, ticket: Any, result: Result) -> None: ...


@runtime_checkable
class BatchBudget(Protocol):
    def batch_reserve(self, call: Call, ttl_s: float) -> Any: ...

    def batch_settle(self, ticket: Any, usd: float, tokens: int) -> None: ...

    def batch_release(self, ticket: Any) -> None: ...


def policy_tag(index: int, policy: Any) -> str:
    """How a ticket names the policy that issued it: its place in the chain and its class, so a
    restarted process with a different chain never hands a ticket to the wrong policy."""
    return f"{index}:{type(policy).__name__}"


def find_policy(policies: tuple[Any, ...], tag: str) -> Any | None:
    """The policy a :func:`policy_tag` names, if the chain still has it there."""
    index, _, name = tag.partition(":")
    try:
        policy = policies[int(index)]
    except (ValueError, IndexError):
        return None
    return policy if type(policy).__name__ == name else None


def settle(policies: Sequence[Any], tickets: Mapping[str, Any], usd: float, tokens: int) -> None:
    """Replace an item's budget holds with what it cost (0 for an item that did not run)."""
    for tag, ticket in tickets.get("budget") or ():
        budget = find_policy(tuple(policies), str(tag))
        if isinstance(budget, BatchBudget):
            budget.batch_settle(ticket, usd, tokens)


def store(policies: Sequence[Any], tickets: Mapping[str, Any], result: Result) -> None:
    """Store an item's answer in every cache that missed it."""
    for tag, ticket in tickets.get("cache") or ():
        cache = find_policy(tuple(policies), str(tag))
        if isinstance(cache, BatchCache):
            cache.batch_store(ticket, result)


__all__ = ["BatchBudget", "BatchCache", "BatchPrepare", "find_policy", "policy_tag", "settle", "store"]
