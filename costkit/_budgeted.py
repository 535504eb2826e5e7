"""``@costkit.budgeted``: a spending limit around a function, enforced in this process.

::

    @costkit.budgeted(feature="nightly_summary", max_usd_per_call=0.02, max_usd_per_day=25)
    def summarize(doc): ...

Each invocation of the function opens a *scope* (held in a contextvar, so it follows the
function into asyncio tasks it starts, and into threads given ``contextvars.copy_context()``).
:class:`ScopeCheck`, the outermost policy of every wrapped client, sees the active scopes and,
for each call made inside one, reserves the call's worst case against the invocation's
``max_usd_per_call`` and the function's ``max_usd_per_day`` / ``max_usd_per_month`` (UTC windows)
together, refusing with :class:`~costkit.errors.BudgetExceeded` when it does not fit, and
settles what the request cost once it is answered (streams: when the stream ends). It also
stops runaway loops: ``max_calls`` completions per invocation and ``max_tool_steps`` rounds of
tool calls (:class:`~costkit.errors.GuardrailViolation`). With no scope active ScopeCheck costs
one contextvar read.

Records that reach the recorder without passing a ScopeCheck of the scope (an embedding, a
judge call, a client built without ScopeCheck) are added by :func:`charge`, which the recorder
calls for every record. Spend is per process; a :class:`~costkit.policies.budget.Budget` with a
Redis backend enforces limits across processes.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar, overload

from ._call import Call, Result
from ._env import Env
from ._estimate import PricingLike, WorstCase, WorstCaseEstimator
from ._ledger import (
    Hold,
    InProcessBudgetBackend,
    RequestSpend,
    Reservation,
    nano_to_usd,
    new_reservation_id,
    usd_to_nano,
    window_of,
)
from ._pipeline import ANext, Flow, FlowPolicy, Next, adrive, drive
from ._warn import warn_once
from .errors import BudgetExceeded, ConfigError, GuardrailViolation
from .records import CostRecord

P = ParamSpec("P")
R = TypeVar("R")

_SCOPES: contextvars.ContextVar[tuple[Invocation, ...]] = contextvars.ContextVar("costkit_budget_scopes", default=())
# set while a ``budgeted(batch=True)`` function runs under ``.map``: its calls are answered from a batch job
_DEFERRED: contextvars.ContextVar[Callable[[Call], Result] | None] = contextvars.ContextVar(
    "costkit_deferred", default=None
)
_ids = itertools.count(1)
_UNLIMITED = 2**62  # nano-USD: a ledger that only counts


def _limit(field: str, value: Any, *, integer: bool = False) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)):
        raise ConfigError(field, f"must be {'an int' if integer else 'a number'} or None, got {value!r}")
    if not value > 0 or value == float("inf"):
        raise ConfigError(field, f"must be > 0, got {value!r}")


class BudgetedScope:
    """The limits of one ``@budgeted`` function and its in-process ledger (``decorated.budget``)."""

    def __init__(
        self,
        *,
        name: str,
        feature: str | None = None,
        tenant: str | None = None,
        max_usd_per_call: float | None = None,
        max_usd_per_day: float | None = None,
        max_usd_per_month: float | None = None,
        max_calls: int | None = None,
        max_tool_steps: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        _limit("max_usd_per_call", max_usd_per_call)
        _limit("max_usd_per_day", max_usd_per_day)
        _limit("max_usd_per_month", max_usd_per_month)
        _limit("max_calls", max_calls, integer=True)
        _limit("max_tool_steps", max_tool_steps, integer=True)
        for field, value in (("feature", feature), ("tenant", tenant)):
            if value is not None and (not isinstance(value, str) or not value):
                raise ConfigError(field, f"must be a non-empty str or None, got {value!r}")
        self.name = name
        self.feature = feature
        self.tenant = tenant
        self.max_usd_per_call = max_usd_per_call
        self.max_usd_per_day = max_usd_per_day
        self.max_usd_per_month = max_usd_per_month
        self.max_calls = max_calls
        self.max_tool_steps = max_tool_steps
        self.backend = InProcessBudgetBackend(clock=clock)
        self._clock = clock
        self.has_usd_limits = any(v is not None for v in (max_usd_per_call, max_usd_per_day, max_usd_per_month))

    def __repr__(self) -> str:
        return f"BudgetedScope({self.name!r})"

    def _key(self, window: str) -> tuple[str, float | None]:
        window_id, ends = window_of(window, self._clock())
        return f"{window}|{window_id}", ends

    def spent_today(self) -> float:
        """USD this function spent in the current UTC day (this process)."""
        return nano_to_usd(self.backend.usage(self._key("day")[0]).spent)

    def spent_this_month(self) -> float:
        return nano_to_usd(self.backend.usage(self._key("month")[0]).spent)

    def holds(self, invocation: Invocation, amount: int) -> list[tuple[str, Hold]]:
        """(limit name, hold) per ledger: this invocation, today, this month, for a call of ``amount`` nano-USD.

        Spend is always kept on all three (for ``spent_today()`` ...); a limit left unset never refuses.
        """
        out = []
        for label, limit, window in (
            ("max_usd_per_call", self.max_usd_per_call, None),
            ("max_usd_per_day", self.max_usd_per_day, "day"),
            ("max_usd_per_month", self.max_usd_per_month, "month"),
        ):
            key, ends = (invocation.call_key, None) if window is None else self._key(window)
            cap = _UNLIMITED if limit is None else usd_to_nano(limit)
            out.append((label, Hold(key=key, limit=cap, amount=amount, expires_at=ends)))
        return out

    @contextmanager
    def invocation(self) -> Iterator[Invocation]:
        """Open one invocation's scope (what the decorator does around each call of the function)."""
        inv = Invocation(self)
        token = _SCOPES.set((*_SCOPES.get(), inv))
        tags_cm = _tags_block(self.feature, self.tenant)
        try:
            with tags_cm:
                yield inv
        finally:
            _SCOPES.reset(token)
            self.backend.forget([inv.call_key])


def _tags_block(feature: str | None, tenant: str | None) -> Any:
    if feature is None and tenant is None:
        from contextlib import nullcontext

        return nullcontext()
    from ._context import tags

    return tags(feature=feature, tenant=tenant)


class Invocation:
    """One running call of a budgeted function: its call and tool-step counts and per-call ledger key."""

    def __init__(self, scope: BudgetedScope) -> None:
        self.scope = scope
        self.id = next(_ids)
        self.call_key = f"call|{self.id}"
        self.calls = 0
        self.tool_steps = 0
        self.checked: set[str] = set()  # request ids settled by a ScopeCheck (charge() skips them)
        self.tool_requests: set[str] = set()  # request ids whose answer asked for tools
        self._lock = threading.Lock()

    @property
    def spent_usd(self) -> float:
        """What this invocation has spent so far (settled)."""
        return nano_to_usd(self.scope.backend.usage(self.call_key).spent)

    def admit(self, call: Call) -> bool:
        """Count the request, or refuse it for max_calls / max_tool_steps; False for a further attempt of one.

        A request is counted once, however many attempts (retries, escalations) it makes below.
        """
        s = self.scope
        with self._lock:
            if call.request_id in self.checked:
                return False
            if s.max_tool_steps is not None and self.tool_steps > s.max_tool_steps:
                raise GuardrailViolation(
                    "max_tool_steps",
                    f"{s.name} already took {self.tool_steps} tool steps in this call, more than {s.max_tool_steps}",
                    limit=s.max_tool_steps,
                    actual=self.tool_steps,
                )
            if s.max_calls is not None and self.calls >= s.max_calls:
                raise GuardrailViolation(
                    "max_calls",
                    f"{s.name} already made {self.calls} completion calls in this call (max_calls={s.max_calls})",
                    limit=s.max_calls,
                    actual=self.calls + 1,
                )
            self.calls += 1
            self.checked.add(call.request_id)
            return True

    def unadmit(self, call: Call) -> None:
        with self._lock:
            self.calls -= 1
            self.checked.discard(call.request_id)

    def saw_result(self, call: Call, result: Result) -> None:
        if result.tool_calls or result.finish_reason == "tool_calls":
            with self._lock:
                if call.request_id not in self.tool_requests:
                    self.tool_requests.add(call.request_id)
                    self.tool_steps += 1

    def add_spent(self, usd: float) -> None:
        holds = [h for _, h in self.scope.holds(self, 0)]
        if usd:
            self.scope.backend.settle(
                Reservation(id=new_reservation_id(), holds=tuple(holds), ok=True), [usd_to_nano(usd)] * len(holds)
            )


def charge(record: CostRecord) -> None:
    """Add ``record``'s cost to every active ``budgeted`` scope that has not accounted for it already.

    The recorder calls this for every record it emits. A request that passed the scope's
    :class:`ScopeCheck` is settled by the check itself, so its records are skipped here.
    """
    scopes = _SCOPES.get()
    if not scopes or not record.cost_usd:
        return
    for inv in scopes:
        if record.request_id not in inv.checked:
            inv.add_spent(record.cost_usd)


class _Held:
    """The reservations one call holds in the active scopes."""

    __slots__ = ("call", "items", "spend")

    def __init__(self, call: Call, items: list[tuple[Invocation, Reservation]], spend: RequestSpend) -> None:
        self.call = call
        self.items = items
        self.spend = spend

    def settle(self, usd: float) -> None:
        nano = usd_to_nano(usd)
        for inv, res in self.items:
            inv.scope.backend.settle(res, [nano] * len(res.holds))

    def release(self) -> None:
        for inv, res in self.items:
            inv.scope.backend.release(res)

    def failed(self) -> None:
        usd, _ = self.spend.failed()
        if usd:
            self.settle(usd)
        else:
            self.release()

    def done(self, final: Result) -> None:
        usd, _ = self.spend.total(final)
        self.settle(usd)
        for inv, _res in self.items:
            inv.saw_result(self.call, final)


class ScopeCheck(FlowPolicy):
    """Enforces the active ``budgeted`` scopes on each call.

    Outermost (where ``costkit.wrap`` puts it) it holds one worst case per request; last in the
    chain it holds one per provider attempt, on the model really called (retries cannot overshoot).
    A request counts once toward ``max_calls`` either way. The worst case is estimated as
    :class:`~costkit.Guardrails` does (``pricing`` / ``estimator``); a model without a price holds
    $0 (warned once) and is settled at what its records say.
    """

    def __init__(
        self,
        *,
        pricing: PricingLike | None = None,
        estimator: WorstCaseEstimator | None = None,
        reservation_ttl_s: float = 900.0,
    ) -> None:
        if estimator is not None and pricing is not None:
            raise ConfigError("estimator", "give pricing or estimator, not both")
        _limit("reservation_ttl_s", reservation_ttl_s)
        self.estimator = estimator or WorstCaseEstimator(pricing)
        self.reservation_ttl_s = float(reservation_ttl_s)

    def __repr__(self) -> str:
        return "ScopeCheck()"

    def bind(self, env: Env) -> None:
        """Price with the wrapper's book unless this policy was given its own."""
        self.estimator.adopt_pricing(env.pricing)

    def _worst(self, call: Call) -> WorstCase | None:
        worst = self.estimator(call)
        if worst.usd is None:
            warn_once(
                f"budgeted-unpriced:{call.model}",
                f"costkit: @budgeted cannot price {call.model!r}; its calls reserve $0 "
                f"(register a price with costkit.pricing.register({call.model!r}, ...))",
            )
        return worst

    def enter(self, scopes: tuple[Invocation, ...], call: Call) -> _Held:
        """Admit ``call`` in every scope and reserve its worst case, or raise (holding nothing)."""
        admitted: list[Invocation] = []
        items: list[tuple[Invocation, Reservation]] = []
        try:
            for inv in scopes:
                if inv.admit(call):
                    admitted.append(inv)
            worst = self._worst(call) if any(inv.scope.has_usd_limits for inv in scopes) else None
            amount = usd_to_nano((worst.usd if worst else None) or 0.0, round_up=True)
            for inv in scopes:
                labelled = inv.scope.holds(inv, amount)
                res = inv.scope.backend.reserve([h for _, h in labelled], self.reservation_ttl_s)
                if not res.ok:
                    raise _refusal(inv, labelled, res, call)
                items.append((inv, res))
        except BaseException:
            for inv, res in items:
                inv.scope.backend.release(res)
            for inv in admitted:
                inv.unadmit(call)
            raise
        return _Held(call, items, RequestSpend(call))

    def flow(self, call: Call) -> Flow:
        scopes = _SCOPES.get()
        deferred = _DEFERRED.get()
        if deferred is not None:  # costkit/batch/deferred.py: the answer comes from a batch job
            return deferred(call)
        held = self.enter(scopes, call)
        try:
            result: Result = yield call
        except BaseException:  # in process: settled at once, even while the flow is being closed
            held.failed()
            raise
        result.when_complete(held.done)
        return result

    # with no budgeted scope active (most calls) the check costs one contextvar read, no flow
    def handle(self, call: Call, next: Next) -> Result:
        if not _SCOPES.get():
            return next(call)
        return drive(self.flow(call), next)

    async def ahandle(self, call: Call, anext: ANext) -> Result:
        if not _SCOPES.get():
            return await anext(call)
        return await adrive(self.flow(call), anext)


def _refusal(inv: Invocation, labelled: list[tuple[str, Hold]], res: Reservation, call: Call) -> BudgetExceeded:
    assert res.refused is not None
    label = next(name for name, h in labelled if h is res.refused or h == res.refused)
    hold = res.refused
    return BudgetExceeded(
        f"{inv.scope.name}: this call's worst case on {call.model} does not fit in {label}",
        scope=f"budgeted:{inv.scope.name}:{label}",
        spent_usd=nano_to_usd(res.spent),
        limit_usd=nano_to_usd(hold.limit),
        requested_usd=nano_to_usd(hold.amount),
        details={
            "reason": "limit",
            "limit": label,
            "reserved": nano_to_usd(res.reserved),
            "remaining": nano_to_usd(hold.limit - res.spent - res.reserved),
            "model": call.model,
            "calls": inv.calls,
        },
    )


@contextmanager
def deferring(answer: Callable[[Call], Result]) -> Iterator[None]:
    """Inside, every call a ``budgeted`` scope sees is answered by ``answer(call)`` instead of the chain."""
    token = _DEFERRED.set(answer)
    try:
        yield
    finally:
        _DEFERRED.reset(token)


def active_scopes() -> tuple[Invocation, ...]:
    """The ``budgeted`` invocations enclosing this point (innermost last)."""
    return _SCOPES.get()


@overload
def budgeted(func: Callable[P, R], /) -> Callable[P, R]: ...


@overload
def budgeted(
    func: None = None,
    /,
    *,
    feature: str | None = None,
    tenant: str | None = None,
    max_usd_per_call: float | None = None,
    max_usd_per_day: float | None = None,
    max_usd_per_month: float | None = None,
    max_calls: int | None = None,
    max_tool_steps: int | None = None,
    name: str | None = None,
    batch: bool = False,
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...


def budgeted(
    func: Callable[..., Any] | None = None,
    /,
    *,
    feature: str | None = None,
    tenant: str | None = None,
    max_usd_per_call: float | None = None,
    max_usd_per_day: float | None = None,
    max_usd_per_month: float | None = None,
    max_calls: int | None = None,
    max_tool_steps: int | None = None,
    name: str | None = None,
    batch: bool = False,
) -> Any:
    """Limit what a sync or async function may spend on completions; see the module docstring.

    ``feature`` / ``tenant`` also tag every call made inside (as ``costkit.tags`` would). The
    decorated function has ``.budget`` (its :class:`BudgetedScope`: ``spent_today()`` ...).
    ``batch=True`` (sync functions) adds ``.map(inputs, client=...)``: the function's calls for
    all inputs run as batch jobs at batch prices (``costkit.batch.deferred``).
    Misconfiguration raises ``ConfigError`` when decorating, not when calling.
    """

    def decorate(fn: Callable[..., Any]) -> Any:
        if not callable(fn):
            raise ConfigError("func", f"@budgeted decorates a function, got {fn!r}")
        scope = BudgetedScope(
            name=name or feature or str(getattr(fn, "__qualname__", repr(fn))),
            feature=feature,
            tenant=tenant,
            max_usd_per_call=max_usd_per_call,
            max_usd_per_day=max_usd_per_day,
            max_usd_per_month=max_usd_per_month,
            max_calls=max_calls,
            max_tool_steps=max_tool_steps,
        )
        if batch and inspect.iscoroutinefunction(fn):
            raise ConfigError("batch", "batch=True decorates a sync function (its .map runs the batch jobs)")
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def arun(*args: Any, **kwargs: Any) -> Any:
                with scope.invocation():
                    return await fn(*args, **kwargs)

            arun.budget = scope  # type: ignore[attr-defined]
            return arun

        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            with scope.invocation():
                return fn(*args, **kwargs)

        run.budget = scope  # type: ignore[attr-defined]
        if batch:
            from .batch.deferred import mapper

            run.map = mapper(run, scope)  # type: ignore[attr-defined]
        return run

    if func is not None:
        return decorate(func)
    return decorate


__all__ = ["BudgetedScope", "Invocation", "ScopeCheck", "active_scopes", "budgeted", "charge"]
