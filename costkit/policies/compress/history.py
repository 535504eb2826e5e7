"""History compaction: keep the recent turns that fit, summarize the older ones once.

The older turns are summarized by a cheap model through the wrapped client itself (a request of
kind ``summary``: it goes down the rest of the chain, is sent to the provider and leaves its own
cost record). A summary is stored under the hash of the conversation prefix it covers, so a
conversation pays for each summary once: the next turns find it in the store.

Cut points are quantized (every ``step_turns`` user turns) so consecutive calls of one
conversation share their cut and their summary; a new summary extends the previous one (the
previous summary plus the turns since its cut), so its price stays bounded however long the
conversation grows. When the old part is too small to be worth a summary, or the summary request
fails, the old turns are dropped instead (and a failure warns once).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Generator, Mapping, Sequence
from typing import Any

import attrs

from ..._call import Call, content_text
from ..._pipeline import Io, Step
from ..._warn import warn_once
from .sections import is_tool_result

Message = Mapping[str, Any]

SUMMARY_INSTRUCTIONS = (
    "You compress conversations. Summarize the conversation below for the assistant who will continue "
    "it: keep every fact, name, number, decision, open question and user preference; drop greetings "
    "and repetition. Write plain sentences, no preamble."
)
SUMMARY_HEADER = "Summary of the earlier conversation:\n"

#: cheap default summarizers per provider (the call's own model is used when it is cheaper)
DEFAULT_SUMMARY_MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-haiku-4-5"}


@attrs.frozen(kw_only=True, slots=True)
class Compaction:
    """What history compaction did to one call."""

    messages: tuple[Message, ...]
    summarized_messages: int = 0
    dropped_messages: int = 0
    summary_cost_usd: float = 0.0
    summary_cached: bool = False
    summary_model: str | None = None


def prefix_key(messages: Sequence[Message], model: str) -> str:
    """The store key of a summary: the hash of the messages it covers, its model and instructions."""
    doc = json.dumps([model, SUMMARY_INSTRUCTIONS, list(messages)], sort_keys=True, default=str, ensure_ascii=False)
    return "summary:" + hashlib.sha256(doc.encode()).hexdigest()


def turn_starts(history: Sequence[Message]) -> list[int]:
    """Indices where a user turn starts (a cut there never separates a tool result from its call)."""
    return [i for i, m in enumerate(history) if m.get("role") == "user" and not is_tool_result(m)]


def transcript(messages: Sequence[Message]) -> str:
    lines = []
    for m in messages:
        text = content_text(m.get("content"))
        if not text and m.get("tool_calls"):
            text = json.dumps(m.get("tool_calls"), default=str)
        lines.append(f"{m.get('role', 'user')}: {text}")
    return "\n\n".join(lines)


class HistoryCompactor:
    """Fits a conversation's history into a budget (see the module docstring)."""

    def __init__(
        self,
        *,
        summary_model: str | None = None,
        summary_tokens: int = 400,
        step_turns: int = 4,
        min_summarized_tokens: int = 1000,
        store: Any = None,
        summarize: bool = True,
    ) -> None:
        from ..cache.stores import MemoryStore

        self.summary_model = summary_model
        self.summary_tokens = summary_tokens
        self.step_turns = step_turns
        self.min_summarized_tokens = min_summarized_tokens
        self.store = store if store is not None else MemoryStore(max_entries=4096)
        self.summarize = summarize
        self.pricing: Any = None  # set by the policy's bind(env): picks the cheaper summarizer

    def model_for(self, call: Call) -> str:
        """The summarizer: the configured one, else the provider's cheap default or the call's own
        model, whichever costs less per input token."""
        if self.summary_model is not None:
            return self.summary_model
        default = DEFAULT_SUMMARY_MODELS.get(call.provider)
        if default is None:
            return call.model
        if self.pricing is not None:
            own, cheap = self.pricing.get(call.model, call.provider), self.pricing.get(default, call.provider)
            if own is not None and (cheap is None or own.input_per_token <= cheap.input_per_token):
                return call.model
        return default

    def compact(
        self, call: Call, history: Sequence[Message], budget: int, count: Callable[[Sequence[Message]], int]
    ) -> Generator[Step, Any, Compaction]:
        """A sub-flow (``yield from``): the history within ``budget`` tokens as ``count`` measures it."""
        history = tuple(history)
        if count(history) <= budget:
            return Compaction(messages=history)
        starts = turn_starts(history)
        reserve = self.summary_tokens + 16 if self.summarize else 0
        fits = [s for s in starts if count(history[s:]) <= budget - reserve]
        needed = fits[0] if fits else len(history)
        cuts = [s for k, s in enumerate(starts) if k % self.step_turns == 0 and s > 0] + [len(history)]
        cut = min(c for c in cuts if c >= needed)
        if (
            starts and cut > needed and cut > starts[-1]
        ):  # a shared cut would drop the latest turn too: cut where needed
            cut = needed
            cuts = sorted({*cuts, cut})
        old, kept = history[:cut], history[cut:]
        if not self.summarize or count(old) < self.min_summarized_tokens:
            return Compaction(messages=kept, dropped_messages=len(old))
        model = self.model_for(call)
        summary, cost, cached = yield from self._summary(call, model, history, cut, starts)
        if summary is None:
            return Compaction(messages=kept, dropped_messages=len(old))
        head = {"role": "user", "content": SUMMARY_HEADER + summary}
        return Compaction(
            messages=(head, *kept),
            summarized_messages=len(old),
            summary_cost_usd=cost,
            summary_cached=cached,
            summary_model=model,
        )

    def _get(self, key: str) -> Generator[Step, Any, Mapping[str, Any] | None]:
        found = yield Io(lambda: self.store.get(key), lambda: self.store.aget(key))
        return found if isinstance(found, Mapping) else None

    def _summary(
        self, call: Call, model: str, history: tuple[Message, ...], cut: int, starts: list[int]
    ) -> Generator[Step, Any, tuple[str | None, float, bool]]:
        key = prefix_key(history[:cut], model)
        found = yield from self._get(key)
        if found is not None and isinstance(found.get("summary"), str):
            return found["summary"], 0.0, True
        # extend the longest earlier summary of this conversation (looked for at its last 16 turns)
        base, since = None, 0
        for c in sorted((c for c in starts if 0 < c < cut), reverse=True)[:16]:
            earlier = yield from self._get(prefix_key(history[:c], model))
            if earlier is not None and isinstance(earlier.get("summary"), str):
                base, since = earlier["summary"], c
                break
        text = transcript(history[since:cut])
        if base is not None:
            text = f"{SUMMARY_HEADER}{base}\n\nThe conversation went on:\n\n{text}"
        request = call.evolve(
            kind="summary",
            pinned=True,
            model=model,
            requested_model=model,
            messages=({"role": "system", "content": SUMMARY_INSTRUCTIONS}, {"role": "user", "content": text}),
            params={},
            max_output_tokens=self.summary_tokens,
            stream=False,
            notes={},
        )
        try:
            result = yield request
        except Exception as exc:
            warn_once(
                f"compress:summary:{type(exc).__name__}",
                f"costkit: a history summary request failed ({exc!r}); older turns are dropped instead",
            )
            return None, 0.0, False
        summary = (result.text or "").strip()
        if not summary:
            return None, float(result.cost_usd or 0.0), False
        value = {"summary": summary, "model": model}
        yield Io(lambda: self.store.set(key, value), lambda: self.store.aset(key, value))
        return summary, float(result.cost_usd or 0.0), False


__all__ = [
    "DEFAULT_SUMMARY_MODELS",
    "SUMMARY_HEADER",
    "SUMMARY_INSTRUCTIONS",
    "Compaction",
    "HistoryCompactor",
    "prefix_key",
    "transcript",
    "turn_starts",
]
