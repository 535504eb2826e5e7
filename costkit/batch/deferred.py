"""``@costkit.budgeted(..., batch=True)``: a function content with deferred results, run as batch jobs.

::

    @costkit.budgeted(feature="nightly_summary", max_usd_per_day=25, batch=True)
    def summarize(doc):
        reply = client.chat.completions.create(model="gpt-4o-mini", messages=[...], temperature=0)
        return reply.choices[0].message.content

    summaries = summarize.map(docs, client=client, state="jobs.db")   # input order

``map`` runs the function once per input with its calls *deferred*: the first call each run makes
is collected (the run stops there) and all of them go out as one batch job at batch prices; when
the job is done the function runs again and each call is answered from the job, the SDK's own
object, or the SDK's own exception for an item that failed. A function that makes a second call
after reading the first answer gets a second round (``rounds``, default 4). The function body
therefore runs more than once per input: it should do nothing but build calls and read answers.

The scope's limits hold as for a call: each item's worst case (batch prices) against
``max_usd_per_call``, the whole job's against ``max_usd_per_day`` / ``max_usd_per_month``, all
reserved before anything is submitted and settled per item.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
from collections.abc import Callable, Iterable
from typing import Any

from .._budgeted import BudgetedScope, Invocation, deferring
from .._call import Call, Result
from .._estimate import WorstCaseEstimator
from .._ledger import Reservation, nano_to_usd, usd_to_nano
from ..errors import BudgetExceeded, ConfigError
from .errors import BatchError
from .job import DEFAULT_STATE, submit_calls
from .methods import METHODS, BatchMethod
from .poll import Backoff
from .prepare import request_body
from .results import ItemError

_METHOD_OF_API = {
    ("openai", "chat.completions"): "chat.completions.create",
    ("openai", "responses"): "responses.create",
    ("anthropic", "messages"): "messages.create",
}


class _Deferred(BaseException):
    """Stops a run at its first unanswered call (a BaseException: ``except Exception`` in the
    function body does not swallow it)."""


class ScopeBudget:
    """A ``budgeted`` scope's limits over a batch job (:class:`costkit.batch.BatchBudget`)."""

    def __init__(self, scope: BudgetedScope, estimator: WorstCaseEstimator | None = None) -> None:
        self.scope = scope
        self.estimator = estimator or WorstCaseEstimator()
        self._held: dict[str, tuple[Invocation, Reservation]] = {}

    def batch_reserve(self, call: Call, ttl_s: float) -> str | None:
        if not self.scope.has_usd_limits:
            return None
        worst = self.estimator(call)
        amount = usd_to_nano(worst.usd or 0.0, round_up=True)
        inv = Invocation(self.scope)
        labelled = self.scope.holds(inv, amount)
        res = self.scope.backend.reserve([h for _, h in labelled], ttl_s)
        if not res.ok:
            assert res.refused is not None
            label = next(name for name, h in labelled if h == res.refused)
            raise BudgetExceeded(
                f"{self.scope.name}: the batch job's worst case does not fit in {label}",
                scope=f"budgeted:{self.scope.name}:{label}",
                spent_usd=nano_to_usd(res.spent),
                limit_usd=nano_to_usd(res.refused.limit),
                requested_usd=nano_to_usd(amount),
            )
        self._held[res.id] = (inv, res)
        return res.id

    def batch_settle(self, ticket: Any, usd: float, tokens: int) -> None:
        held = self._held.pop(str(ticket), None)
        if held is not None:
            inv, res = held
            self.scope.backend.settle(res, [usd_to_nano(usd)] * len(res.holds))
            self.scope.backend.forget([inv.call_key])

    def batch_release(self, ticket: Any) -> None:
        held = self._held.pop(str(ticket), None)
        if held is not None:
            inv, res = held
            self.scope.backend.release(res)
            self.scope.backend.forget([inv.call_key])


def _method(call: Call) -> BatchMethod:
    name = _METHOD_OF_API.get((call.provider, call.api))
    if name is None:
        raise ConfigError("batch", f"{call.provider} {call.api} calls have no batch API")
    return METHODS[name]


def _key(call: Call) -> str:
    """The request a call sends (what the batch answers), as a digest."""
    body = request_body(_method(call).adapter.to_kwargs(call))
    return hashlib.blake2b(json.dumps([call.provider, call.api, body], sort_keys=True).encode()).hexdigest()


def _round(
    fn: Callable[[Any], Any], items: list[Any], done: dict[int, Any], answers: dict[str, Any]
) -> dict[str, Call]:
    """Run the function on every input without an answer yet; the calls still unanswered, by request."""
    wanted: dict[str, Call] = {}

    def answer(call: Call) -> Result:
        key = _key(call)
        if key in answers:
            found = answers[key]
            if isinstance(found, ItemError):
                raise found.exception
            result: Result = _method(call).adapter.to_result(call, found)
            return result
        wanted.setdefault(key, call)
        raise _Deferred

    for i, value in enumerate(items):
        if i in done:
            continue
        with deferring(answer), contextlib.suppress(_Deferred):
            done[i] = fn(value)
    return wanted


def mapper(fn: Callable[[Any], Any], scope: BudgetedScope) -> Callable[..., list[Any]]:
    """The ``.map`` of a ``budgeted(batch=True)`` function (see the module docstring)."""

    def map_(
        inputs: Iterable[Any],
        *,
        client: Any,
        state: str = DEFAULT_STATE,
        rounds: int = 4,
        progress: bool = False,
        backoff: Backoff | None = None,
        reconcile_after_s: float = 30.0,
    ) -> list[Any]:
        items = list(inputs)
        answers: dict[str, Any] = {}
        done: dict[int, Any] = {}
        budget = ScopeBudget(scope)
        for _ in range(rounds):
            wanted = _round(fn, items, done, answers)
            if not wanted:
                break
            calls = [c.evolve(kind="batch") for c in wanted.values()]
            methods = {_method(c).name for c in calls}
            if len(methods) > 1:
                raise ConfigError("batch", f"one round's calls must use one method, got {sorted(methods)}")
            job_id = "bd_" + hashlib.blake2b("".join(wanted).encode(), digest_size=12).hexdigest()
            job = submit_calls(
                client,
                _method(calls[0]),
                functools.partial(list, calls),
                n=len(calls),
                job_id=job_id,
                state=state,
                backoff=backoff,
                reconcile_after_s=reconcile_after_s,
                extra_policies=(budget,),
            )
            try:
                job.wait(progress=progress)
                answers.update(zip(wanted, job.results(), strict=True))
            finally:
                job.close()
        missing = [i for i in range(len(items)) if i not in done]
        if missing:
            raise BatchError(f"{len(missing)} inputs still made new calls after {rounds} rounds (first: {missing[0]})")
        return [done[i] for i in range(len(items))]

    return map_


__all__ = ["ScopeBudget", "mapper"]
