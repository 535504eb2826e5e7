"""RequestScope: what one logical request carries besides its (frozen) Call.

A wrapped method builds one scope per request and every Call of that request (retries,
escalations, a judge's question) carries the same scope object. It holds the plumbing the layers
share, typed, instead of private keys in ``Call.notes``:

* the request's cost records, held until the request ends so savings can be settled across its
  attempts (``mark()`` / ``since(mark)``: "the records made below me since I started");
* what the adapter must remember to send an unchanged call back exactly as given (the original
  messages, the keyword that carried the output cap).

The scope is mutable and shared on purpose (it is the request's ledger); it never takes part in a
Call's equality or repr.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from .records import CostRecord


@attrs.define(eq=False, slots=True)
class RequestScope:
    """The per-request state every layer of one wrapped call shares (see the module docstring)."""

    #: the request's records so far (provider attempts, side calls), emitted when the request ends
    records: list[CostRecord] = attrs.field(factory=list)
    #: the messages exactly as the application gave them (an unchanged call is sent back as given)
    original_messages: tuple[Mapping[str, Any], ...] | None = None
    #: the keywords that carried the output cap (``max_tokens``, ``max_completion_tokens`` ...)
    output_cap_names: tuple[str, ...] = ()
    #: keywords the caller passed in ``extra_body`` (True: also directly), restored there when sent
    lifted: dict[str, bool] = attrs.field(factory=dict)
    #: how the chain's terminal sends a call (the SDK method, or the SDK's request with this body)
    send: Callable[[Any], Any] | None = None
    #: the caller asked for the SDK's raw response object (``with_raw_response``): no layer may
    #: answer it from elsewhere, and ``response`` holds that object once the provider answered
    raw_response: bool = False
    response: Any = None
    #: sent to a beta endpoint (anthropic's ``beta.messages``): its answer is the beta's own type, for
    #: which no cached answer of the plain API may stand in (the cache keys say ``beta.messages``)
    beta: bool = False
    #: the beta features the call turned on (its ``anthropic-beta`` header): part of its cache key
    betas: str = ""
    #: Redis writes nothing waits for (settlements, lock releases, counters), sent in one pipeline
    #: when the request ends; None outside a wrapped client (then each is sent at once)
    writes: list[Any] | None = None
    #: the layers' checks before the provider call (a ``costkit._pipeline.PreCall``), run together
    #: in one round trip; None outside a wrapped client (then each check goes alone)
    checks: Any = None

    # No lock: a request's records are appended one at a time (list.append is atomic) and read by
    # slicing (atomic too); one built per call, on the hot path, a lock would only cost.
    def add(self, record: CostRecord) -> None:
        self.records.append(record)

    def mark(self) -> int:
        """A position in the request's records: pass it to :meth:`since` later."""
        return len(self.records)

    def since(self, mark: int) -> list[CostRecord]:
        """The records added after ``mark`` (what the layers below spent since then)."""
        return self.records[mark:]

    def spent_since(self, mark: int) -> tuple[float, int]:
        """(USD, tokens) of the records added after ``mark``."""
        usd, tokens = 0.0, 0
        for r in self.since(mark):
            usd += r.cost_usd or 0.0
            tokens += r.input_tokens + r.output_tokens
        return usd, tokens


__all__ = ["RequestScope"]
