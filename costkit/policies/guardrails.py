"""Guardrails: refuse or shrink a request *before* it is paid for.

Every rule is checked on the request as it is about to be sent, from a pre-call estimate:

* ``max_input_tokens``: the prompt (messages + tool schemas), counted with ``costkit.tokens``.
  Input cannot be shortened without changing meaning (that is ``ContextBudget``'s job), so an
  over-long prompt is always rejected.
* ``max_output_tokens``: the call's ``max_tokens`` is clamped to the limit (``on_over="clamp"``)
  or the call is rejected (``on_over="reject"``). A call that sets no cap gets the limit as its
  cap in both modes: it did not ask for more, it just did not say.
* ``max_cost_usd``: the worst case ``input tokens x input price + max output tokens x output
  price`` (a call without a cap is priced at the model's own output ceiling from the cost map).
  Over the limit, ``clamp`` lowers ``max_tokens`` to what fits and ``reject`` refuses; when not
  even ``min_output_tokens`` fit, both refuse.
* ``max_tool_steps``: how many times the conversation already went round the tool loop
  (assistant turns that asked for tools); past the limit the call is rejected.

"Negotiate scope rather than obey": a clamp is not silent. It is written to
``call.notes["clamped"]`` (copied into the cost record), e.g.
``{"max_output_tokens": {"from": 4096, "to": 812, "by": ["max_cost_usd"]}}``.

The worst-case estimate is shared with :class:`~costkit.policies.budget.Budget` and the
``@costkit.budgeted`` scope check: :class:`WorstCaseEstimator`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from .._call import Call
from .._env import Env
from .._estimate import Estimator, PriceLike, PricingLike, WorstCase, WorstCaseEstimator
from .._pipeline import Flow, FlowPolicy
from .._warn import warn_once
from ..errors import ConfigError, GuardrailViolation

ON_OVER = ("clamp", "reject")
ON_UNPRICED = ("allow", "reject")


def count_tool_steps(messages: Sequence[Mapping[str, Any]]) -> int:
    """Assistant turns that asked for tools (OpenAI ``tool_calls``/``function_call``, Anthropic ``tool_use``)."""
    steps = 0
    for m in messages:
        if m.get("role") != "assistant":
            continue
        if m.get("tool_calls") or m.get("function_call"):
            steps += 1
            continue
        content = m.get("content")
        if isinstance(content, list | tuple) and any(
            isinstance(p, Mapping) and p.get("type") in ("tool_use", "function_call") for p in content
        ):
            steps += 1
    return steps


def record_clamp(call: Call, original: int | None, new: int, rules: Sequence[str]) -> Call:
    """``call`` with ``max_output_tokens=new`` and the clamp written to ``notes["clamped"]``."""
    clamped = dict(call.notes.get("clamped") or {})
    prior = clamped.get("max_output_tokens")
    if isinstance(prior, Mapping):  # an outer layer clamped already: keep its "from", add our rules
        original = prior.get("from", original)
        rules = [*prior.get("by", ()), *rules]
    clamped["max_output_tokens"] = {"from": original, "to": new, "by": list(rules)}
    return call.evolve(max_output_tokens=new, notes={**call.notes, "clamped": clamped})


def _check_limit(field: str, value: float | None, *, integer: bool) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or (integer and not isinstance(value, int)):
        raise ConfigError(field, f"must be {'an int' if integer else 'a number'} or None, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(field, f"must be > 0, got {value!r}")


class Guardrails(FlowPolicy):
    """Per-request limits checked before the call; see the module docstring."""

    narrows_calls = True  # it only caps a call: @budgeted's check goes after it and reserves for the cap

    def __init__(
        self,
        *,
        max_input_tokens: int | None = None,
        max_output_tokens: int | None = None,
        max_cost_usd: float | None = None,
        max_tool_steps: int | None = None,
        on_over: str = "clamp",
        min_output_tokens: int = 1,
        on_unpriced: str = "allow",
        pricing: PricingLike | None = None,
        estimator: WorstCaseEstimator | None = None,
    ) -> None:
        _check_limit("max_input_tokens", max_input_tokens, integer=True)
        _check_limit("max_output_tokens", max_output_tokens, integer=True)
        _check_limit("max_cost_usd", max_cost_usd, integer=False)
        _check_limit("max_tool_steps", max_tool_steps, integer=True)
        _check_limit("min_output_tokens", min_output_tokens, integer=True)
        if on_over not in ON_OVER:
            raise ConfigError("on_over", f"must be one of {', '.join(ON_OVER)}, got {on_over!r}")
        if on_unpriced not in ON_UNPRICED:
            raise ConfigError("on_unpriced", f"must be one of {', '.join(ON_UNPRICED)}, got {on_unpriced!r}")
        if max_output_tokens is not None and min_output_tokens > max_output_tokens:
            raise ConfigError("min_output_tokens", "must not be larger than max_output_tokens")
        if estimator is not None and pricing is not None:
            raise ConfigError("estimator", "give pricing or estimator, not both")
        self.max_input_tokens = max_input_tokens
        self.max_output_tokens = max_output_tokens
        self.max_cost_usd = max_cost_usd
        self.max_tool_steps = max_tool_steps
        self.on_over = on_over
        self.min_output_tokens = min_output_tokens
        self.on_unpriced = on_unpriced
        self.estimator = estimator or WorstCaseEstimator(pricing)
        self._needs_tokens = max_input_tokens is not None or max_cost_usd is not None

    def __repr__(self) -> str:
        fields = ("max_input_tokens", "max_output_tokens", "max_cost_usd", "max_tool_steps", "on_over")
        set_ = ", ".join(f"{f}={getattr(self, f)!r}" for f in fields if getattr(self, f) is not None)
        return f"Guardrails({set_})"

    def bind(self, env: Env) -> None:
        """Price with the wrapper's book unless this policy was given its own."""
        self.estimator.adopt_pricing(env.pricing)

    def check(self, call: Call) -> Call:
        """The call as it may be sent (possibly clamped), or raise :class:`GuardrailViolation`."""
        if self.max_tool_steps is not None:
            steps = count_tool_steps(call.messages)
            if steps > self.max_tool_steps:
                raise GuardrailViolation(
                    "max_tool_steps",
                    f"the conversation already has {steps} tool steps, more than {self.max_tool_steps}",
                    limit=self.max_tool_steps,
                    actual=steps,
                )
        input_tokens = self.estimator.input_tokens(call) if self._needs_tokens else 0
        if self.max_input_tokens is not None and input_tokens > self.max_input_tokens:
            raise GuardrailViolation(
                "max_input_tokens",
                f"the prompt has {input_tokens} tokens, more than {self.max_input_tokens}",
                limit=self.max_input_tokens,
                actual=input_tokens,
            )
        original = call.max_output_tokens
        rules: list[str] = []
        cap = self.max_output_tokens
        if cap is not None and (original is None or original > cap):
            if original is not None and self.on_over == "reject":
                raise GuardrailViolation(
                    "max_output_tokens",
                    f"the call asks for up to {original} output tokens, more than {cap}",
                    limit=cap,
                    actual=original,
                )
            call = call.evolve(max_output_tokens=cap)
            rules.append("max_output_tokens")
        if self.max_cost_usd is not None:
            call, cost_rule = self._check_cost(call, input_tokens)
            rules += cost_rule
        if rules and call.max_output_tokens is not None:
            call = record_clamp(call, original, call.max_output_tokens, rules)
        return call

    def _check_cost(self, call: Call, input_tokens: int) -> tuple[Call, list[str]]:
        limit = self.max_cost_usd
        assert limit is not None
        worst = self.estimator.estimate(call, input_tokens)
        if worst.usd is None:
            self._unpriced(call, worst)
            return call, []
        if worst.usd <= limit:
            return call, []
        cap = worst.max_output_tokens
        if self.on_over == "reject" and worst.output_cap_from == "call":
            raise GuardrailViolation(
                "max_cost_usd",
                f"the worst case of this call on {call.model} is ${worst.usd:.6f}, more than ${limit:.6f} "
                f"({input_tokens} input tokens, up to {cap} output tokens)",
                limit=limit,
                actual=worst.usd,
            )
        fit = self._fitting_output_tokens(call, worst, limit)
        if fit < self.min_output_tokens:
            raise GuardrailViolation(
                "max_cost_usd",
                f"even {self.min_output_tokens} output tokens on {call.model} would cost more than ${limit:.6f} "
                f"({input_tokens} input tokens cost ${worst.input_usd or 0.0:.6f})",
                limit=limit,
                actual=worst.usd,
            )
        return call.evolve(max_output_tokens=fit), ["max_cost_usd"]

    def _fitting_output_tokens(self, call: Call, worst: WorstCase, limit: float) -> int:
        """The largest output cap whose worst case stays within ``limit``."""
        cap = worst.max_output_tokens or 0
        per_token = (worst.output_per_token or 0.0) * worst.choices  # every answer spends the cap
        if per_token <= 0:
            return cap
        guess = min(cap, math.floor((limit - (worst.input_usd or 0.0)) / per_token + 1e-9))
        # The book may price tiers the linear guess ignores: step down until the book agrees.
        while guess >= 1:
            usd = self.estimator.estimate(call, worst.input_tokens, guess).usd
            if usd is None or usd <= limit:
                break
            guess = min(guess - 1, math.floor(guess * limit / usd))
        return max(guess, 0)

    def _unpriced(self, call: Call, worst: WorstCase) -> None:
        what = "price" if worst.max_output_tokens is not None else "price or output ceiling"
        if self.on_unpriced == "reject":
            raise GuardrailViolation("max_cost_usd", f"no {what} for {call.model!r}: the worst case cannot be bounded")
        warn_once(
            f"guardrails-unpriced:{call.model}",
            f"costkit: Guardrails(max_cost_usd=...) cannot bound {call.model!r} (no {what}); the call is allowed. "
            f"Register one with costkit.pricing.register({call.model!r}, input_per_million=..., "
            "output_per_million=...), or pass on_unpriced='reject'.",
        )

    def batch_prepare(self, call: Call) -> Call:
        """A batch item is checked and clamped like a call (``costkit.batch.BatchPrepare``); its
        worst case is priced at batch rates (the call's kind is ``batch``)."""
        return self.check(call)

    def flow(self, call: Call) -> Flow:
        result = yield self.check(call)
        assert result is not None
        return result


__all__ = [
    "Estimator",
    "Guardrails",
    "PriceLike",
    "PricingLike",
    "WorstCase",
    "WorstCaseEstimator",
    "count_tool_steps",
    "record_clamp",
]
