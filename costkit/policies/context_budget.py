"""ContextBudget: a token budget per part of the prompt, so an 8,000-token history is not sent
for a three-sentence reply.

The messages are split into sections — ``system`` (system/developer messages), ``history``
(earlier turns), ``retrieved`` (documents put in the prompt), ``tools`` (tool results) — and
the last user turn, which is never cut (:mod:`costkit.policies.compress.sections`). What happens
to a section over its budget is ``on_over``:

* ``"compress"`` (the default): the :class:`~costkit.PromptCompressor` reduces it keeping what
  matters for the question — retrieved documents to their most relevant sentences, history to
  the recent turns plus a cached summary of the older ones, tool results to trimmed JSON, the
  system prompt to its most relevant sentences;
* ``"truncate"``: heads are kept — history loses its oldest turns (a tool result never outlives
  the call that asked for it), each retrieved or tool text is cut to an equal share, the system
  prompt loses its tail;
* ``"reject"``: the call fails with :class:`~costkit.GuardrailViolation` naming the section.

``output`` caps ``max_output_tokens``. What was removed goes to the record (``notes["tokens_removed"]``,
and per strategy ``notes["compression"]``); the recorder prices it as this layer's saving, net of
any summary's cost. Caches placed before this layer key on the uncompressed question, so a hit
never depends on the compression.
"""

from __future__ import annotations

from typing import Any

from .._call import Call, content_text
from .._pipeline import Flow, FlowPolicy
from ..errors import ConfigError, GuardrailViolation
from .compress.policy import PromptCompressor, check_budget
from .compress.sections import (
    SECTIONS,
    Classifier,
    check_classifier,
    default_classify,
    is_tool_result,
    sections_of,
)

ON_OVER = ("compress", "truncate", "reject")


class ContextBudget(FlowPolicy):
    """Token budgets per prompt section; see the module docstring."""

    layer = "context_budget"

    def __init__(
        self,
        *,
        system: int | None = None,
        history: int | None = None,
        retrieved: int | None = None,
        tools: int | None = None,
        output: int | None = None,
        on_over: str = "compress",
        compressor: PromptCompressor | None = None,
        classify: Classifier | None = None,
        marker: str = " [...]",
    ) -> None:
        self.budgets: dict[str, Any] = {
            "system": check_budget("system", system, shares=False),
            "history": check_budget("history", history, shares=False),
            "retrieved": check_budget("retrieved", retrieved, shares=False),
            "tools": check_budget("tools", tools, shares=False),
        }
        self.output = check_budget("output", output, shares=False)
        if on_over not in ON_OVER:
            raise ConfigError("on_over", f"must be one of {', '.join(ON_OVER)}, got {on_over!r}")
        if compressor is not None and not isinstance(compressor, PromptCompressor):
            raise ConfigError("compressor", "must be a costkit.PromptCompressor")
        if not isinstance(marker, str):
            raise ConfigError("marker", "must be a str")
        self.classify = check_classifier(classify)
        self.on_over = on_over
        self.marker = marker
        self._compressor = compressor

    @property
    def compressor(self) -> PromptCompressor:
        """The compressor used when ``on_over="compress"`` (built on first use: it loads an embedder)."""
        if self._compressor is None:
            self._compressor = PromptCompressor(classify=self.classify)
        return self._compressor

    def __repr__(self) -> str:
        set_ = ", ".join(f"{k}={v}" for k, v in {**self.budgets, "output": self.output}.items() if v is not None)
        return f"ContextBudget({set_}, on_over={self.on_over!r})"

    def bind(self, env: Any) -> None:
        if self.on_over == "compress":
            self.compressor.bind(env)

    def flow(self, call: Call) -> Flow:
        if self.on_over == "compress":
            call = yield from self.compressor.reduce(call, self.budgets, layer=self.layer)
        elif self.on_over == "truncate":
            call = self.truncate(call)
        else:
            self.check(call)
        if self.output is not None and (call.max_output_tokens is None or call.max_output_tokens > self.output):
            call = call.evolve(max_output_tokens=self.output)
        return (yield call)

    # ------------------------------------------------------------------ reject
    def check(self, call: Call) -> None:
        """Raise :class:`GuardrailViolation` if a section is over its budget."""
        from ..tokens import count_text

        sections = sections_of(call.messages, self.classify)
        for name in SECTIONS:
            budget = self.budgets[name]
            if budget is None:
                continue
            used = sum(
                count_text(content_text(m.get("content")), call.model) + 4
                for m, s in zip(call.messages, sections, strict=True)
                if s == name
            )
            if used > budget:
                raise GuardrailViolation(
                    f"context_budget.{name}", f"{used} tokens over the budget of {budget}", limit=budget, actual=used
                )

    # ------------------------------------------------------------------ truncate
    def truncate(self, call: Call) -> Call:
        """The call with every section under its budget by head cuts (the same call if nothing was over)."""
        from ..tokens import count_messages, count_text, encoding_for_model

        model = call.model
        messages = list(call.messages)
        sections = sections_of(messages, self.classify)
        keep = [True] * len(messages)
        changed = False

        def cost(i: int) -> int:
            return count_text(content_text(messages[i].get("content")), model) + 4

        budget = self.budgets["history"]
        if budget is not None:
            hist = [
                i
                for i, s in enumerate(sections)
                if s in ("history",) or (s == "tools" and self.budgets["tools"] is None)
            ]
            total = sum(cost(i) for i in hist)
            for i in hist:
                if total <= budget:
                    break
                keep[i] = False
                total -= cost(i)
                changed = True
            # a tool result never outlives the assistant call that asked for it
            for i, m in enumerate(messages):
                if keep[i] and is_tool_result(m):
                    j = i - 1
                    while j >= 0 and is_tool_result(messages[j]):
                        j -= 1
                    if j >= 0 and not keep[j]:
                        keep[i] = False
        enc = encoding_for_model(model)
        for name in ("retrieved", "tools", "system"):
            budget = self.budgets[name]
            if budget is None:
                continue
            idx = [i for i, s in enumerate(sections) if s == name and keep[i]]
            if not idx:
                continue
            if sum(cost(i) for i in idx) <= budget:
                continue
            share = max(0, budget // len(idx) - 4)
            for i in idx:
                text = content_text(messages[i].get("content"))
                tokens = enc.encode(text, disallowed_special=())
                if len(tokens) > share:
                    cut = enc.decode(tokens[: max(0, share - 2)]) + self.marker
                    messages[i] = {**messages[i], "content": cut}
                    changed = True
        if not changed:
            return call
        kept = tuple(m for m, k in zip(messages, keep, strict=False) if k)
        before = count_messages(list(call.messages), model)
        after = count_messages(list(kept), model)
        return call.evolve(
            messages=kept,
            notes={
                **call.notes,
                "tokens_removed": max(0, before - after),
                "context_budget": {"before": before, "after": after},
            },
        )


__all__ = ["ON_OVER", "SECTIONS", "ContextBudget", "default_classify"]
