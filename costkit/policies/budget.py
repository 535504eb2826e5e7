"""Budget: USD and token limits per tenant, feature, both, or globally, per UTC window.

Reserve, then settle: before a call is sent its worst case (see
:class:`~costkit.policies.guardrails.WorstCaseEstimator`) is *reserved* against every limit
that applies, atomically; a call whose worst case does not fit is refused (``BudgetExceeded``)
or degraded to a cheaper model (``on_exceed="degrade"``). When the answer is in, the hold is
replaced by what the request really cost (*settled*); a call that fails is *released*. Checking
spend first and recording it later is what lets concurrent requests overrun a budget; holding
the worst case closes that gap, in one process (:class:`InProcessBudgetBackend`) or across
processes and hosts (:class:`RedisBudgetBackend`).

What is settled is what everything below the Budget in the chain spent on the request: the sum
of the request's provider-attempt records appended while the Budget waited (retries and
escalations included; cache hits cost nothing), or, for a streamed answer, the final result's
``cost_usd`` once the stream ends. Placed last in the chain (just before the provider), every
provider attempt is reserved on the model actually called, and spend can never pass a limit;
placed higher, one worst case is held for the whole request and retries below it can overshoot.
"""

from __future__ import annotations

import math
import re
import time
import urllib.parse
from collections.abc import Callable, Generator, Iterator, Sequence
from typing import Any

import attrs

from .._call import Call, Result, Tags
from .._env import Env
from .._estimate import PricingLike, WorstCase, WorstCaseEstimator
from .._ledger import (
    WINDOWS,
    BudgetBackend,
    Hold,
    InProcessBudgetBackend,
    RequestSpend,
    Reservation,
    nano_to_usd,
    thresholds_crossed,
    usd_to_nano,
    window_of,
)
from .._pipeline import Ahead, Flow, FlowPolicy, Io
from .._redis_batch import write_now_or_later
from .._warn import warn_once
from ..errors import BudgetExceeded, ConfigError
from .budget_backends import COUNTERS_LOST, RedisBudgetBackend

ANY = "*"
ON_EXCEED = ("raise", "degrade")
_DIMENSIONS = ("tenant", "feature")


def _positive_number(field: str, value: Any, *, integer: bool = False) -> None:
    kind = "an int" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)):
        raise ConfigError(field, f"must be {kind}, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(field, f"must be > 0, got {value!r}")


@attrs.frozen(kw_only=True, slots=True)
class BudgetLimit:
    """One limit: ``usd`` and/or ``tokens`` per ``window`` (hour, day, week, month, total; UTC).

    ``tenant`` / ``feature`` select whose calls it counts: ``None`` counts every call together,
    ``"*"`` gives each tenant (feature) its own budget, a name counts only that one. So
    ``BudgetLimit(usd=5, tenant="*", feature="*")`` is $5 a day per (tenant, feature) pair. A call
    with no tenant counts under ``"-"`` in a ``"*"`` limit. ``name`` labels it (default: derived),
    and names its counters: renaming a limit starts its spend from zero.
    """

    usd: float | None = None
    tokens: int | None = None
    window: str = "day"
    tenant: str | None = None
    feature: str | None = None
    name: str | None = None

    def __attrs_post_init__(self) -> None:
        if self.usd is None and self.tokens is None:
            raise ConfigError("usd", "a BudgetLimit needs usd=, tokens=, or both")
        if self.usd is not None:
            _positive_number("usd", self.usd)
        if self.tokens is not None:
            _positive_number("tokens", self.tokens, integer=True)
        if self.window not in WINDOWS:
            raise ConfigError("window", f"must be one of {', '.join(WINDOWS)}, got {self.window!r}")
        for dim in _DIMENSIONS:
            value = getattr(self, dim)
            if value is not None and (not isinstance(value, str) or not value or "|" in value):
                raise ConfigError(dim, f"must be None, '*' or a non-empty name without '|', got {value!r}")
        if self.name is not None and (not isinstance(self.name, str) or not self.name or "|" in self.name):
            raise ConfigError("name", f"must be a non-empty str without '|', got {self.name!r}")

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        dims = ",".join(f"{d}={getattr(self, d)}" for d in _DIMENSIONS if getattr(self, d) is not None)
        return f"{self.window}:{dims or 'global'}"

    def bucket(self, tags: Tags) -> str | None:
        """Which budget of this limit a call with ``tags`` draws on, or None when the limit does not apply."""
        parts = []
        for dim in _DIMENSIONS:
            want = getattr(self, dim)
            if want is None:
                continue
            have = getattr(tags, dim)
            if want == ANY:
                parts.append(f"{dim}={bucket_part(have)}")
            elif have != want:
                return None
            else:
                parts.append(f"{dim}={want}")
        return ",".join(parts) or "global"


_PLAIN_PART = re.compile(r"[A-Za-z0-9_.@:+/]+")


def bucket_part(value: str | None) -> str:
    """A tag value as one unambiguous part of a counter name.

    Unset is ``-``; a plain value (letters, digits, ``_ . @ : + /``) is itself; anything else
    (``""``, ``"-"``, a value with ``,`` ``=`` ``|`` or spaces) is ``~`` + its percent-encoding. So
    no two different (tenant, feature) pairs can share a counter, whatever characters they use,
    and the counters of plain names keep their names across versions.
    """
    if value is None:
        return "-"
    if value != "-" and _PLAIN_PART.fullmatch(value):
        return value
    return "~" + urllib.parse.quote(value, safe="")


@attrs.frozen(kw_only=True, slots=True)
class BudgetAlert:
    """Spend crossed ``threshold`` (a fraction) of a limit; passed to ``on_alert`` once per crossing."""

    limit: BudgetLimit
    bucket: str
    window: str  # the window's id, e.g. "2026-11-22"
    unit: str  # "usd" or "tokens"
    threshold: float
    spent: float  # USD or tokens, after the settlement that crossed it
    limit_value: float


@attrs.frozen(slots=True)
class _Target:
    """One counter of one limit for one call: which limit, bucket, window, unit."""

    limit: BudgetLimit
    bucket: str
    window: str
    unit: str


@attrs.frozen(slots=True)
class _Plan:
    call: Call
    worst: WorstCase
    targets: tuple[_Target, ...]
    holds: tuple[Hold, ...]


AlertCallback = Callable[[BudgetAlert], None]
# what a plan restored from a batch item's ticket carries besides its targets and holds (settling reads only those)
_RESTORED_CALL = Call(provider="", api="", requested_model="", model="", messages=())
_NO_WORST = WorstCase(model="", input_tokens=0, max_output_tokens=None, output_cap_from=None, usd=None)


class Budget(FlowPolicy):
    """Reserve-then-settle budgets; see the module docstring.

    ``limits``: :class:`BudgetLimit` s (all that apply to a call are reserved at once).
    ``backend``: :class:`InProcessBudgetBackend` (default) or :class:`RedisBudgetBackend`.
    ``on_exceed``: ``"raise"`` (``BudgetExceeded``) or ``"degrade"``: try ``degrade_to`` models in
    order and send the call to the first whose worst case fits (noted as ``budget_degraded``).
    ``alerts``: fractions of a limit; ``on_alert(BudgetAlert)`` is called once per crossing
    (across processes too with Redis: the crossing is computed from one atomic settlement).
    ``reservation_ttl_s``: how long a hold lives if its process dies before settling.
    ``on_unpriced``: a model without a price holds $0 (``"allow"``, warned once) or is refused.
    """

    def __init__(
        self,
        limits: Sequence[BudgetLimit],
        *,
        backend: BudgetBackend | None = None,
        on_exceed: str = "raise",
        degrade_to: Sequence[str] | str = (),
        alerts: Sequence[float] = (0.5, 0.8, 0.95),
        on_alert: AlertCallback | None = None,
        reservation_ttl_s: float = 900.0,
        on_unpriced: str = "allow",
        pricing: PricingLike | None = None,
        estimator: WorstCaseEstimator | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        limits = list(limits) if not isinstance(limits, BudgetLimit) else [limits]
        if not limits:
            raise ConfigError("limits", "give at least one BudgetLimit")
        seen: set[str] = set()
        for i, limit in enumerate(limits):
            if not isinstance(limit, BudgetLimit):
                raise ConfigError(f"limits[{i}]", f"must be a BudgetLimit, got {type(limit).__name__}")
            if limit.label in seen:
                raise ConfigError(f"limits[{i}]", f"two limits are labelled {limit.label!r}; give one a name=")
            seen.add(limit.label)
        if on_exceed not in ON_EXCEED:
            raise ConfigError("on_exceed", f"must be 'raise' or 'degrade', got {on_exceed!r}")
        degrade = (degrade_to,) if isinstance(degrade_to, str) else tuple(degrade_to)
        if any(not isinstance(m, str) or not m for m in degrade):
            raise ConfigError("degrade_to", "must be model names")
        if on_exceed == "degrade" and not degrade:
            raise ConfigError("degrade_to", "on_exceed='degrade' needs at least one cheaper model to degrade to")
        alerts = tuple(alerts)
        if any(isinstance(a, bool) or not isinstance(a, int | float) or not 0 < a <= 1 for a in alerts):
            raise ConfigError("alerts", f"must be fractions in (0, 1], got {alerts!r}")
        if on_alert is not None and not callable(on_alert):
            raise ConfigError("on_alert", "must be callable")
        _positive_number("reservation_ttl_s", reservation_ttl_s)
        if on_unpriced not in ("allow", "reject"):
            raise ConfigError("on_unpriced", f"must be 'allow' or 'reject', got {on_unpriced!r}")
        if estimator is not None and pricing is not None:
            raise ConfigError("estimator", "give pricing or estimator, not both")
        if backend is not None and not all(callable(getattr(backend, m, None)) for m in ("reserve", "areserve")):
            raise ConfigError("backend", f"{backend!r} is not a budget backend")
        self.limits = tuple(limits)
        self.backend: BudgetBackend = backend if backend is not None else InProcessBudgetBackend()
        self.on_exceed = on_exceed
        self.degrade_to = degrade
        self.alerts = tuple(sorted(alerts))
        self.on_alert = on_alert
        self.reservation_ttl_s = float(reservation_ttl_s)
        self.on_unpriced = on_unpriced
        self.estimator = estimator or WorstCaseEstimator(pricing)
        self._clock = clock
        self._memo: dict[tuple[Tags, int], list[tuple[_Target, float | None, str]]] = {}

    joins_checks = True  # before its reservation: a plan, no I/O and nothing kept

    def __repr__(self) -> str:
        return f"Budget(limits={list(self.limits)!r}, backend={self.backend!r}, on_exceed={self.on_exceed!r})"

    def bind(self, env: Env) -> None:
        """Price with the wrapper's book unless this policy was given its own."""
        self.estimator.adopt_pricing(env.pricing)

    # ------------------------------------------------------------------ I/O-free logic
    def _targets(self, tags: Tags, now: float) -> list[tuple[_Target, float | None, str]]:
        """(target, window end, counter key) for every limit that applies; memoized per (tags, UTC hour)."""
        memo_key = (tags, int(now // 3600))
        found = self._memo.get(memo_key)
        if found is not None:
            return found
        out = []
        for limit in self.limits:
            bucket = limit.bucket(tags)
            if bucket is None:
                continue
            window, ends = window_of(limit.window, now)
            for unit, value in (("usd", limit.usd), ("tokens", limit.tokens)):
                if value is not None:
                    target = _Target(limit, bucket, window, unit)
                    out.append((target, ends, self.counter_key(target)))
        if len(self._memo) > 4096:
            self._memo.clear()
        self._memo[memo_key] = out
        return out

    @staticmethod
    def counter_key(target: _Target) -> str:
        return f"{target.limit.label}|{target.bucket}|{target.window}|{target.unit}"

    def key_for(
        self, limit: BudgetLimit, tags: Tags | None = None, *, unit: str = "usd", now: float | None = None
    ) -> str:
        """The backend counter key of ``limit`` for calls tagged ``tags`` (for inspection and tests)."""
        bucket = limit.bucket(tags or Tags())
        if bucket is None:
            raise ValueError(f"{limit.label} does not apply to {tags}")
        window, _ = window_of(limit.window, self._clock() if now is None else now)
        return self.counter_key(_Target(limit, bucket, window, unit))

    def spent(self, limit: BudgetLimit, tags: Tags | None = None, *, unit: str = "usd") -> float:
        """Settled spend of ``limit`` in the current window (USD, or tokens)."""
        state = self.backend.usage(self.key_for(limit, tags, unit=unit))
        return nano_to_usd(state.spent) if unit == "usd" else float(state.spent)

    def plan(self, call: Call) -> _Plan | None:
        """What to reserve for ``call``: one hold per applicable limit and unit; None when no limit applies."""
        targets = self._targets(call.tags, self._clock())
        if not targets:
            return None
        worst = self.estimator(call)
        if worst.usd is None and any(t.unit == "usd" for t, _, _ in targets):
            if self.on_unpriced == "reject":
                raise BudgetExceeded(
                    f"no price for {call.model!r}: its worst case cannot be reserved",
                    scope=targets[0][0].limit.label,
                    details={"reason": "unpriced", "model": call.model},
                )
            warn_once(
                f"budget-unpriced:{call.model}",
                f"costkit: Budget cannot price {call.model!r}; its calls reserve $0 and settle $0 "
                f"(register a price with costkit.pricing.register({call.model!r}, ...), or on_unpriced='reject')",
            )
        usd = usd_to_nano(worst.usd or 0.0, round_up=True)
        holds = []
        for target, ends, key in targets:
            if target.unit == "usd":
                limit, amount = usd_to_nano(target.limit.usd or 0.0), usd
            else:
                limit, amount = int(target.limit.tokens or 0), worst.tokens
            holds.append(Hold(key=key, limit=limit, amount=amount, expires_at=ends))
        return _Plan(call, worst, tuple(t for t, _, _ in targets), tuple(holds))

    def refusal(self, plan: _Plan, res: Reservation) -> BudgetExceeded:
        if not res.enforced:
            lost = res.error == COUNTERS_LOST
            return BudgetExceeded(
                "the budget counters were lost (Redis restarted without persistence or was flushed) and the "
                "backend fails closed; call backend.acknowledge_reset() to start again"
                if lost
                else "the budget backend is unavailable and fails closed",
                scope=plan.targets[0].limit.label,
                requested_usd=plan.worst.usd or 0.0,
                details={
                    "reason": COUNTERS_LOST if lost else "backend_unavailable",
                    "error": res.error,
                    "model": plan.call.model,
                },
            )
        assert res.refused is not None
        i = plan.holds.index(res.refused)
        target, hold = plan.targets[i], res.refused
        to_unit: Callable[[int], float] = nano_to_usd if target.unit == "usd" else float
        remaining = to_unit(hold.limit - res.spent - res.reserved)
        details = {
            "reason": "limit",
            "limit": target.limit.label,
            "bucket": target.bucket,
            "window": target.window,
            "unit": target.unit,
            "spent": to_unit(res.spent),
            "reserved": to_unit(res.reserved),
            "remaining": remaining,
            "requested": to_unit(hold.amount),
            "limit_value": to_unit(hold.limit),
            "model": plan.call.model,
            "worst_case_tokens": plan.worst.tokens,
        }
        scope = f"{target.limit.label}[{target.bucket}]@{target.window}"
        if target.unit == "usd":
            return BudgetExceeded(
                "this call's worst case does not fit in the remaining budget",
                scope=scope,
                spent_usd=nano_to_usd(res.spent),
                limit_usd=nano_to_usd(hold.limit),
                requested_usd=nano_to_usd(hold.amount),
                details=details,
            )
        return BudgetExceeded(
            f"this call's worst case ({hold.amount} tokens) does not fit in the remaining token budget "
            f"({remaining:.0f} of {hold.limit} tokens left)",
            scope=scope,
            details=details,
        )

    def _degrade_candidates(self, call: Call) -> list[Call]:
        return [call.with_model(m) for m in self.degrade_to if m != call.model]

    def _degraded(self, original: Call, plan: _Plan) -> _Plan:
        call = plan.call.with_notes(budget_degraded={"from": original.model, "to": plan.call.model})
        return attrs.evolve(plan, call=call)

    def _amounts(self, plan: _Plan, usd: float, tokens: int) -> list[int]:
        return [usd_to_nano(usd) if t.unit == "usd" else int(tokens) for t in plan.targets]

    def _alerts(self, plan: _Plan, changes: Sequence[tuple[int, int]]) -> None:
        if self.on_alert is None or not self.alerts:
            return
        for target, hold, (before, after) in zip(plan.targets, plan.holds, changes, strict=True):
            for threshold in thresholds_crossed(before, after, hold.limit, self.alerts):
                to_unit: Callable[[int], float] = nano_to_usd if target.unit == "usd" else float
                alert = BudgetAlert(
                    limit=target.limit,
                    bucket=target.bucket,
                    window=target.window,
                    unit=target.unit,
                    threshold=threshold,
                    spent=to_unit(after),
                    limit_value=to_unit(hold.limit),
                )
                try:
                    self.on_alert(alert)
                except Exception as exc:
                    warn_once(
                        f"budget-alert:{type(exc).__name__}", f"costkit: a budget on_alert callback failed: {exc!r}"
                    )

    def _settle(self, plan: _Plan, res: Reservation, usd: float, tokens: int) -> None:
        if not res.enforced:
            return
        changes = self.backend.settle(res, self._amounts(plan, usd, tokens))
        self._alerts(plan, changes)

    def _after(self, plan: _Plan, res: Reservation, spend: RequestSpend, result: Result) -> Result:
        # A stream is settled when it ends (its cost is known then); the callback is sync, and the
        # backend's sync settle is bounded by its timeouts.
        result.when_complete(lambda final: self._settle(plan, res, *spend.total(final)))
        return result

    def _alternatives(self, call: Call, refused: Reservation) -> Iterator[_Plan]:
        """The cheaper plans to try after ``refused`` (degrade mode; never when the backend was unavailable)."""
        if self.on_exceed != "degrade" or not refused.enforced:
            return
        for cheaper in self._degrade_candidates(call):
            alt = self.plan(cheaper)
            if alt is not None:
                yield alt

    # ------------------------------------------------------------------ the batch lane (costkit.batch.BatchBudget)
    def batch_reserve(self, call: Call, ttl_s: float) -> dict[str, Any] | None:
        """Hold a batch item's worst case (batch prices: its kind is ``batch``) until its answer
        settles it; a JSON ticket, None when no limit applies, ``BudgetExceeded`` when it does not fit."""
        plan = self.plan(call)
        if plan is None:
            return None
        res = self.backend.reserve(plan.holds, max(float(ttl_s), self.reservation_ttl_s))
        if not res.ok:
            raise self.refusal(plan, res)
        targets = [[t.limit.label, t.bucket, t.window, t.unit] for t in plan.targets]
        holds = [[h.key, h.limit, h.amount, h.expires_at] for h in plan.holds]
        return {"id": res.id, "enforced": res.enforced, "targets": targets, "holds": holds}

    def batch_settle(self, ticket: Any, usd: float, tokens: int) -> None:
        """Replace a batch item's hold with what it cost (alerts as for a call)."""
        restored = self._restore(ticket)
        if restored is not None:
            self._settle(*restored, usd, tokens)

    def batch_release(self, ticket: Any) -> None:
        restored = self._restore(ticket)
        if restored is not None and restored[1].enforced:
            self.backend.release(restored[1])

    def _restore(self, ticket: Any) -> tuple[_Plan, Reservation] | None:
        """A ticket read back (from a state file: data, checked, never code) as a plan and its reservation."""
        try:
            by_label = {limit.label: limit for limit in self.limits}
            targets = tuple(_Target(by_label[t[0]], str(t[1]), str(t[2]), str(t[3])) for t in ticket["targets"])
            holds = tuple(
                Hold(key=str(h[0]), limit=int(h[1]), amount=int(h[2]), expires_at=h[3]) for h in ticket["holds"]
            )
            res = Reservation(id=str(ticket["id"]), holds=holds, ok=True, enforced=bool(ticket["enforced"]))
        except (KeyError, IndexError, TypeError, ValueError):
            return None  # a limit renamed since, or a foreign ticket: nothing to settle against
        if len(targets) != len(holds):
            return None
        return _Plan(_RESTORED_CALL, _NO_WORST, targets, holds), res

    # ------------------------------------------------------------------ the flow
    def _reserve_io(self, holds: Sequence[Hold]) -> Io:
        return Io(
            lambda: self.backend.reserve(holds, self.reservation_ttl_s),
            lambda: self.backend.areserve(holds, self.reservation_ttl_s),
        )

    def _reserve_step(self, plan: _Plan) -> Ahead | Io:
        """The reservation: with the request's other checks when the backend can (one round trip to Redis)."""
        reserve_check = getattr(self.backend, "reserve_check", None)
        check = reserve_check(plan.holds, self.reservation_ttl_s) if callable(reserve_check) else None
        return Ahead(check, plan.call) if check is not None else self._reserve_io(plan.holds)

    def _settle_io(self, plan: _Plan, res: Reservation, usd: float, tokens: int) -> Io:
        amounts = self._amounts(plan, usd, tokens)

        async def asettle() -> None:
            self._alerts(plan, await self.backend.asettle(res, amounts))

        return Io(lambda: self._alerts(plan, self.backend.settle(res, amounts)), asettle)

    def _settle_answered(
        self, call: Call, plan: _Plan, res: Reservation, usd: float, tokens: int
    ) -> Generator[Io, Any, None]:
        """Settle after the answer: in Redis, with the request's other writes (one round trip at its end)."""
        settle_write = getattr(self.backend, "settle_write", None)
        if callable(settle_write):
            write = settle_write(res, self._amounts(plan, usd, tokens), lambda changes: self._alerts(plan, changes))
            yield from write_now_or_later(call.scope, write)
            return
        yield self._settle_io(plan, res, usd, tokens)

    def _release_io(self, res: Reservation) -> Io:
        return Io(lambda: self.backend.release(res), lambda: self.backend.arelease(res))

    def flow(self, call: Call) -> Flow:
        plan = self.plan(call)
        if plan is None:
            return (yield call)
        res: Reservation = yield self._reserve_step(plan)
        if not res.ok:
            for alt in self._alternatives(call, res):
                alt_res: Reservation = yield self._reserve_io(alt.holds)
                if alt_res.ok:
                    plan, res = self._degraded(call, alt), alt_res
                    break
            else:
                raise self.refusal(plan, res)
        spend = RequestSpend(plan.call)
        try:
            result: Result = yield plan.call
        except BaseException as exc:  # a provider error, a cancellation: settle what was spent, or release
            if res.enforced:
                usd, tokens = spend.failed()
                undo = self._settle_io(plan, res, usd, tokens) if usd or tokens else self._release_io(res)
                if isinstance(exc, GeneratorExit):  # the driver is closing the flow: no more steps
                    undo.run()
                else:
                    yield undo
            raise
        if result.stream is None:
            if res.enforced:
                yield from self._settle_answered(call, plan, res, *spend.total(result))
            return result
        return self._after(plan, res, spend, result)


__all__ = [
    "ANY",
    "Budget",
    "BudgetAlert",
    "BudgetLimit",
    "InProcessBudgetBackend",
    "RedisBudgetBackend",
    "RequestSpend",
]
