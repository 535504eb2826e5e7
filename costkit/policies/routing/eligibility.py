"""Which models can take this call at all, and which of them is cheapest.

A router must never send a call to a model that lacks a capability the call uses (tools, images,
a JSON schema) or whose context window the prompt does not fit: that turns a saving into an error.
What a model can do comes from the price book (LiteLLM's cost map plus overrides). A model the
book does not know, or whose flag is unknown, is not trusted with a capability the call uses; the
requested model itself is always allowed (the application chose it).

The prompt's token count is needed only when it might not fit: a token is at least one byte, so a
prompt whose UTF-8 size (plus per-message overhead) is under the window fits without counting.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from ..._call import Call
from ..._pricing_ref import PricingRef

MESSAGE_OVERHEAD_TOKENS = 8  # per message, an upper bound on role/format tokens
IMAGE_TOKENS_BOUND = 2000  # an upper bound on what one image part adds to the prompt
DEFAULT_OUTPUT_TOKENS = 256  # what a call is assumed to produce when it sets no limit (for cost ranking)

_IMAGE_PART_TYPES = frozenset({"image_url", "image", "input_image"})


@attrs.frozen(slots=True)
class Needs:
    """The capabilities a call uses."""

    tools: bool = False
    vision: bool = False
    json_schema: bool = False
    images: int = 0

    def names(self) -> tuple[str, ...]:
        return tuple(n for n in ("tools", "vision", "json_schema") if getattr(self, n))


def _images(content: Any) -> int:
    if not isinstance(content, list | tuple):
        return 0
    return sum(1 for part in content if isinstance(part, Mapping) and part.get("type") in _IMAGE_PART_TYPES)


def _format_type(value: Any) -> str | None:
    if isinstance(value, Mapping):
        t = value.get("type")
        return t if isinstance(t, str) else None
    t = getattr(value, "type", None)  # a pydantic model passed as response_format: structured output
    return t if isinstance(t, str) else ("json_schema" if isinstance(value, type) else None)


def needs_of(call: Call) -> Needs:
    """Read the capabilities a call uses from its params and messages."""
    p = call.params
    tools = bool(p.get("tools") or p.get("functions"))
    images = sum(_images(m.get("content")) for m in call.messages)
    fmt = _format_type(p.get("response_format"))
    text = p.get("text")
    if fmt is None and isinstance(text, Mapping):  # the Responses API: text={"format": {...}}
        fmt = _format_type(text.get("format"))
    if fmt is None and p.get("output_format") is not None:  # Anthropic structured outputs
        fmt = "json_schema"
    return Needs(tools=tools, vision=images > 0, json_schema=fmt in ("json_schema", "json_object"), images=images)


class CallSize:
    """A call's prompt size, computed only as precisely as a question needs (memoized per call)."""

    def __init__(self, call: Call) -> None:
        self.call = call
        self._bound: int | None = None
        self._counted: dict[str, int] = {}

    @property
    def upper_bound(self) -> int:
        """More tokens than the prompt can have: UTF-8 bytes + per-message overhead + images + tools."""
        if self._bound is None:
            total = 0
            for m in self.call.messages:
                total += len(json.dumps(m, ensure_ascii=False, default=str).encode()) + MESSAGE_OVERHEAD_TOKENS
                total += _images(m.get("content")) * IMAGE_TOKENS_BOUND
            tools = self.call.params.get("tools")
            if tools:
                total += len(json.dumps(tools, default=str).encode())
            self._bound = total
        return self._bound

    def tokens(self, model: str) -> int:
        """The prompt's token count in ``model``'s tokenizer (costkit.tokens, offline)."""
        if model not in self._counted:
            from ... import tokens

            tools = self.call.params.get("tools")
            try:
                n = tokens.count_request(self.call.messages, model, tools if isinstance(tools, Iterable) else None)
            except Exception:  # counting is an estimate: never let it fail the call
                n = self.upper_bound
            self._counted[model] = n
        return self._counted[model]

    def estimate(self, model: str) -> int:
        """A cheap estimate for cost ranking: the exact count when already known, else bytes / 4."""
        if model in self._counted:
            return self._counted[model]
        return max(1, self.upper_bound // 4)


class Catalog(PricingRef):
    """Model facts from a price book: capabilities, context windows and estimated call cost."""

    def __init__(self, pricing: Any = None, *, default_output_tokens: int = DEFAULT_OUTPUT_TOKENS) -> None:
        super().__init__(pricing)
        self.default_output_tokens = default_output_tokens

    def price(self, model: str, provider: str | None = None) -> Any:
        try:
            return self.pricing.get(model, provider)
        except Exception:  # an unknown or malformed entry: treated as unknown
            return None

    def ineligible(self, model: str, call: Call, needs: Needs, size: CallSize) -> str | None:
        """Why ``model`` cannot take ``call`` (None when it can)."""
        if model == call.requested_model:
            return None
        price = self.price(model, call.provider)
        if price is None:
            return f"unknown model (needs {', '.join(needs.names())})" if needs.names() else None
        if needs.tools and not price.supports_function_calling:
            return "no tool calling"
        if needs.vision and not price.supports_vision:
            return "no vision"
        if needs.json_schema and not price.supports_response_schema:
            return "no JSON schema output"
        out = call.max_output_tokens
        if out is not None and price.max_output_tokens is not None and out > price.max_output_tokens:
            return f"max output {price.max_output_tokens} < requested {out}"
        window = price.max_input_tokens
        if window is not None and size.upper_bound > window:
            n = size.tokens(model)
            if n > window:
                return f"prompt of {n} tokens exceeds the {window}-token context window"
        return None

    def estimated_cost(self, model: str, call: Call, size: CallSize) -> float | None:
        """What the call would cost on ``model`` (estimated prompt, expected output), None if unpriced."""
        price = self.price(model, call.provider)
        if price is None:
            return None
        out = call.max_output_tokens if call.max_output_tokens is not None else self.default_output_tokens
        try:
            return float(price.worst_case_cost(size.estimate(model), out))
        except Exception:
            return None

    def cheapest_first(self, models: Sequence[str], call: Call, size: CallSize) -> list[str]:
        """``models`` by estimated cost, ascending; unpriced ones keep their order after the priced."""
        if len(models) < 2:
            return list(models)
        keyed = []
        for i, m in enumerate(models):
            c = self.estimated_cost(m, call, size)
            keyed.append((c is None, c or 0.0, i, m))
        return [m for *_, m in sorted(keyed)]


__all__ = ["DEFAULT_OUTPUT_TOKENS", "CallSize", "Catalog", "Needs", "needs_of"]
