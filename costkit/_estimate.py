"""The worst case of a call, known before it is sent: what Guardrails, Budget and
``@costkit.budgeted`` reserve or refuse on. A core module (it prices with :mod:`costkit.pricing`
and counts with :mod:`costkit.tokens`, both imported on first use).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import attrs

from ._call import Call
from ._pricing_ref import PricingRef


class PriceLike(Protocol):
    """What the estimate reads from a :class:`costkit.pricing.ModelPrice`."""

    input_per_token: float
    output_per_token: float
    max_output_tokens: int | None


class PricingLike(Protocol):
    """The part of :class:`costkit.pricing.PriceBook` the estimate uses."""

    def get(self, model: str, provider: str | None = None) -> Any: ...

    def worst_case_cost(
        self, model: str, input_tokens: int, max_output_tokens: int, provider: str | None = None, *, batch: bool = ...
    ) -> float | None: ...


@attrs.frozen(kw_only=True, slots=True)
class WorstCase:
    """The most a call can cost, known before it is sent.

    ``max_output_tokens`` is the cap the estimate used: the call's own, else the model's ceiling
    from the cost map (``output_cap_from`` says which; ``None`` when neither is known, and then
    ``usd`` is ``None`` too). ``usd`` is ``None`` for a model without a price.
    """

    model: str
    input_tokens: int
    max_output_tokens: int | None
    output_cap_from: str | None  # "call", "model" or None
    usd: float | None
    input_usd: float | None = None
    output_per_token: float | None = None
    choices: int = 1  # answers asked for (``n``): the output cap is spent once per answer

    @property
    def tokens(self) -> int:
        """Worst-case tokens (input + output cap per answer); output counts 0 when no cap is known."""
        return self.input_tokens + (self.max_output_tokens or 0) * self.choices


Estimator = Callable[[Call], WorstCase]


def _tool_specs(call: Call) -> Sequence[Any]:
    tools = call.params.get("tools") or call.params.get("functions")
    return list(tools) if isinstance(tools, Sequence) and not isinstance(tools, str) else []


class WorstCaseEstimator(PricingRef):
    """Count the prompt (``costkit.tokens``) and price the worst case (``costkit.pricing``).

    ``pricing`` is a :class:`costkit.pricing.PriceBook` (default: the wrapper's, else the
    process-wide book). Both modules are imported on first use, so building a policy stays cheap.
    """

    def input_tokens(self, call: Call) -> int:
        from . import tokens

        n = tokens.count_messages(list(call.messages), call.model)
        tools = _tool_specs(call)
        if tools:
            n += tokens.count_tools(tools, call.model)
        return int(n)

    def __call__(self, call: Call) -> WorstCase:
        return self.estimate(call, self.input_tokens(call))

    def estimate(self, call: Call, input_tokens: int, max_output_tokens: int | None = None) -> WorstCase:
        """The worst case of ``call`` with ``input_tokens`` and (optionally) another output cap."""
        pricing = self.pricing
        price = pricing.get(call.model)
        cap = max_output_tokens if max_output_tokens is not None else call.max_output_tokens
        cap_from: str | None = "call" if cap is not None else None
        if cap is None and price is not None and getattr(price, "max_output_tokens", None):
            cap, cap_from = int(price.max_output_tokens), "model"
        choices = call.choices
        if price is None or cap is None:
            return WorstCase(
                model=call.model,
                input_tokens=input_tokens,
                max_output_tokens=cap,
                output_cap_from=cap_from,
                usd=None,
                choices=choices,
            )
        if call.kind == "batch":  # a batch item bills at the cost map's batch rates
            usd = pricing.worst_case_cost(call.model, input_tokens, cap * choices, batch=True)
            rates = price.rates(input_tokens, batch=True)
            input_rate, output_rate = float(rates.input), float(rates.output)
        else:
            usd = pricing.worst_case_cost(call.model, input_tokens, cap * choices)
            input_rate, output_rate = float(price.input_per_token), float(price.output_per_token)
        return WorstCase(
            model=call.model,
            input_tokens=input_tokens,
            max_output_tokens=cap,
            output_cap_from=cap_from,
            usd=usd,
            input_usd=input_tokens * input_rate,
            output_per_token=output_rate,
            choices=choices,
        )


__all__ = ["Estimator", "PriceLike", "PricingLike", "WorstCase", "WorstCaseEstimator"]
