"""ContextBudget: a token budget per part of the prompt, so an 8,000-token history is not sent
for a three-sentence reply.

The messages are split into sections — ``system`` (system/developer messages), ``history``
(earlier turns), ``retrieved`` (documents put in the prompt), ``tools`` (tool results) — and
the last user turn, which is never cut. Each section over its budget is brought under it:

* history: the oldest turns are dropped first (a tool result never outlives the call that asked
  for it);
* retrieved and tool results: each message's text is cut to its share of the budget;
* system: cut only if a ``system`` budget is set (the head is kept).

``output`` caps ``max_output_tokens``. What was removed goes to ``call.notes["tokens_removed"]``,
which the recorder prices as this layer's saving. Caches placed before this layer key on the
uncompressed question, so a hit never depends on the compression.

Which messages are "retrieved" is decided by ``classify(message) -> section | None``; by default
a message whose ``name`` is ``context``, ``retrieved`` or ``documents``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .._call import Call, content_text
from .._pipeline import Flow, FlowPolicy
from ..errors import ConfigError

SECTIONS = ("system", "history", "retrieved", "tools")
RETRIEVED_NAMES = frozenset({"context", "retrieved", "documents"})

Message = Mapping[str, Any]
Classifier = Callable[[Message], "str | None"]


def default_classify(message: Message) -> str | None:
    """Section of a message, or None to let its role decide."""
    if message.get("name") in RETRIEVED_NAMES:
        return "retrieved"
    return None


def _is_tool_result(message: Message) -> bool:
    if message.get("role") in ("tool", "function"):
        return True
    content = message.get("content")
    return (
        message.get("role") == "user"
        and isinstance(content, list)
        and bool(content)
        and all(isinstance(p, Mapping) and p.get("type") == "tool_result" for p in content)
    )


def _last_user_index(messages: Sequence[Message]) -> int:
    for i in range(len(messages) - 1, -1, -1):
        if messages[i].get("role") == "user" and not _is_tool_result(messages[i]):
            return i
    return len(messages) - 1


def _check_budget(field: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(field, f"must be an int number of tokens or None, got {type(value).__name__}")
    if value < 0:
        raise ConfigError(field, f"must be >= 0, got {value}")
    return value


class ContextBudget(FlowPolicy):
    """Token budgets per prompt section; see the module docstring."""

    def __init__(
        self,
        *,
        system: int | None = None,
        history: int | None = None,
        retrieved: int | None = None,
        tools: int | None = None,
        output: int | None = None,
        classify: Classifier | None = None,
        marker: str = " [...]",
    ) -> None:
        self.budgets = {
            "system": _check_budget("system", system),
            "history": _check_budget("history", history),
            "retrieved": _check_budget("retrieved", retrieved),
            "tools": _check_budget("tools", tools),
        }
        self.output = _check_budget("output", output)
        if classify is not None and not callable(classify):
            raise ConfigError("classify", "must be a callable(message) -> section name or None")
        if not isinstance(marker, str):
            raise ConfigError("marker", "must be a str")
        self.classify = classify or default_classify
        self.marker = marker

    def __repr__(self) -> str:
        set_ = ", ".join(f"{k}={v}" for k, v in {**self.budgets, "output": self.output}.items() if v is not None)
        return f"ContextBudget({set_})"

    def section_of(self, message: Message, index: int, last_user: int) -> str:
        if index == last_user:
            return "question"
        chosen = self.classify(message)
        if chosen is not None:
            if chosen not in SECTIONS:
                raise ConfigError("classify", f"returned {chosen!r}; sections are {', '.join(SECTIONS)}")
            return chosen
        if message.get("role") in ("system", "developer"):
            return "system"
        if _is_tool_result(message):
            return "tools"
        return "history"

    def fit(self, call: Call) -> Call:
        """The call with every section under its budget (the same call if nothing was over)."""
        from ..tokens import count_messages, count_text, encoding_for_model

        model = call.model
        messages = list(call.messages)
        last_user = _last_user_index(messages)
        sections = [self.section_of(m, i, last_user) for i, m in enumerate(messages)]
        keep = [True] * len(messages)
        changed = False

        def cost(i: int) -> int:
            return count_text(content_text(messages[i].get("content")), model) + 4

        # history: drop the oldest whole turns first
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
                if keep[i] and _is_tool_result(m):
                    j = i - 1
                    while j >= 0 and _is_tool_result(messages[j]):
                        j -= 1
                    if j >= 0 and not keep[j]:
                        keep[i] = False
        # retrieved / tools / system: cut each message's text to its share
        enc = encoding_for_model(model)
        for name in ("retrieved", "tools", "system"):
            budget = self.budgets[name]
            if budget is None:
                continue
            idx = [i for i, s in enumerate(sections) if s == name and keep[i]]
            if not idx:
                continue
            sizes = {i: cost(i) for i in idx}
            if sum(sizes.values()) <= budget:
                continue
            share = max(0, budget // len(idx) - 4)
            for i in idx:
                text = content_text(messages[i].get("content"))
                tokens = enc.encode(text, disallowed_special=())
                if len(tokens) > share:
                    cut = enc.decode(tokens[: max(0, share - 2)]) + self.marker
                    messages[i] = {**messages[i], "content": cut}
                    changed = True

        changes: dict[str, Any] = {}
        if changed:
            kept = tuple(m for m, k in zip(messages, keep, strict=False) if k)
            before = count_messages(list(call.messages), model)
            after = count_messages(list(kept), model)
            changes["messages"] = kept
            changes["notes"] = {
                **call.notes,
                "tokens_removed": max(0, before - after),
                "context_budget": {"before": before, "after": after},
            }
        if self.output is not None and (call.max_output_tokens is None or call.max_output_tokens > self.output):
            changes["max_output_tokens"] = self.output
        return call.evolve(**changes) if changes else call

    def flow(self, call: Call) -> Flow:
        return (yield self.fit(call))


__all__ = ["SECTIONS", "ContextBudget", "default_classify"]
