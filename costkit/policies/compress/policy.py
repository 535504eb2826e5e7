"""PromptCompressor: each prompt section reduced to its budget, keeping what matters for the question.

The last user turn is the query and is never changed. In order:

1. **normalize** (always safe, on by default): redundant white space, repeated paragraphs and
   repeated documents go (:mod:`.normalize`);
2. **history** over its budget: the recent turns that fit stay, older ones become one summary made
   by a cheap model through the wrapped client, cached per conversation prefix (:mod:`.history`);
3. **retrieved** documents over their budget: the most relevant whole sentences stay, in
   document order (:mod:`.select`, :mod:`.ranking`); with ``token_ratio``, the least informative
   words of what was kept are pruned too, so more sentences fit (:mod:`.prune`); another
   compressor plugs in through :class:`~.protocol.TextCompressor`;
4. **tools** results over their budget: JSON trimmed with its keys and structure kept (:mod:`.tool_json`);
5. **system** over its budget (only if one is set): the system prompt's most relevant sentences.

A budget is an int (tokens, the section's message framing included) or a float in (0, 1] (that
share of the section's own tokens). What each step removed goes to the record:
``notes["compression"]`` maps each strategy to ``{"tokens_removed": n}`` (history also
``summary_cost_usd``) and the recorder prices it at the requested model's input rate, net of the
summary's cost, as the ``compressor`` saving (``context_budget`` when ContextBudget drives it).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping, Sequence
from typing import Any

from ..._call import Call, content_text
from ..._pipeline import Flow, FlowPolicy, Step, drive
from ...errors import ConfigError
from .history import HistoryCompactor
from .normalize import drop_duplicate_blocks, normalize_space
from .protocol import TextCompressor
from .ranking import RankWeights
from .sections import Classifier, check_classifier, last_user_index, sections_of
from .selector import SentenceSelector
from .tool_json import trim_tool_result

Budget = int | float | None
Message = Mapping[str, Any]
BUDGETED = ("system", "history", "retrieved", "tools")


def check_budget(field: str, value: Any, *, shares: bool = True) -> Budget:
    """A budget as given: None, an int >= 0 (tokens) or, if ``shares``, a float in (0, 1]."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(field, f"must be an int number of tokens or None, got {type(value).__name__}")
    if isinstance(value, float):
        if not shares or not 0.0 < value <= 1.0:
            hint = "a share in (0, 1]" if shares else "an int number of tokens"
            raise ConfigError(field, f"must be {hint}, got {value!r}")
        return value
    if value < 0:
        raise ConfigError(field, f"must be >= 0, got {value}")
    return value


def _resolve(budget: Budget, current: int) -> int | None:
    if budget is None:
        return None
    if isinstance(budget, float):
        return int(current * budget)
    return budget


class PromptCompressor(FlowPolicy):
    """Reduces prompt sections to their budgets (see the module docstring)."""

    layer = "compressor"

    def __init__(
        self,
        *,
        retrieved: Budget = None,
        history: Budget = None,
        tools: Budget = None,
        system: Budget = None,
        normalize: bool = True,
        token_ratio: float | None = None,
        min_relevance: float = 0.15,
        phrases: bool = False,
        gap: str = " … ",
        embedder: Any = None,
        weights: RankWeights | None = None,
        compressor: TextCompressor | None = None,
        summarize: bool = True,
        summary_model: str | None = None,
        summary_tokens: int = 400,
        summary_store: Any = None,
        classify: Classifier | None = None,
    ) -> None:
        self.budgets: dict[str, Budget] = {
            "system": check_budget("system", system),
            "history": check_budget("history", history),
            "retrieved": check_budget("retrieved", retrieved),
            "tools": check_budget("tools", tools),
        }
        if compressor is not None and not isinstance(compressor, TextCompressor):
            raise ConfigError(
                "compressor", "must have a name and compress(texts, *, query, budget_tokens, count, overhead)"
            )
        if isinstance(summary_tokens, bool) or not isinstance(summary_tokens, int) or summary_tokens < 16:
            raise ConfigError("summary_tokens", f"must be an int >= 16, got {summary_tokens!r}")
        if summary_store is not None and not (
            callable(getattr(summary_store, "get", None)) and callable(getattr(summary_store, "aget", None))
        ):
            raise ConfigError("summary_store", "must be a costkit cache store (MemoryStore, DiskStore, RedisStore)")
        self.normalize = bool(normalize)
        self.default = SentenceSelector(
            embedder=embedder,
            weights=weights,
            min_relevance=min_relevance,
            gap=gap,
            phrases=phrases,
            token_ratio=token_ratio,
        )
        self.compressor: TextCompressor = compressor or self.default
        self.history = HistoryCompactor(
            summary_model=summary_model, summary_tokens=summary_tokens, store=summary_store, summarize=summarize
        )
        self.classify = check_classifier(classify)

    def __repr__(self) -> str:
        set_ = ", ".join(f"{k}={v}" for k, v in self.budgets.items() if v is not None)
        return f"PromptCompressor({set_})"

    def bind(self, env: Any) -> None:
        """The wrapper's price book picks the cheaper summarizer."""
        self.history.pricing = env.pricing

    def flow(self, call: Call) -> Flow:
        compressed = yield from self.reduce(call, self.budgets, layer=self.layer)
        return (yield compressed)

    def batch_prepare(self, call: Call) -> Call:
        """A batch item is compressed as the same call would be (``costkit.batch.BatchPrepare``), but
        for a history that needs a summary: that is a model call of its own, which a batch item cannot
        make while it is prepared, so the history is left whole then."""
        budgets = {**self.budgets, "history": None} if self.history.summarize else self.budgets
        return drive(self.reduce(call, budgets, layer=self.layer))

    # ------------------------------------------------------------------ the work
    def reduce(self, call: Call, budgets: Mapping[str, Budget], *, layer: str) -> Generator[Step, Any, Call]:
        """A sub-flow (``yield from``): ``call`` with every section within its budget and what each
        strategy removed in ``notes["compression"]`` (the same call when nothing changed)."""
        from ...tokens import count_messages, count_text

        model = call.model

        def count(text: str) -> int:
            return count_text(text, model)

        def size(msgs: Sequence[Message]) -> int:
            return count_messages(list(msgs), model) - 3 if msgs else 0  # without the reply priming

        messages: list[Message] = list(call.messages)
        strategies: dict[str, dict[str, Any]] = {}

        def account(name: str, before: list[Message], extra: Mapping[str, Any] | None = None) -> None:
            removed = size(before) - size(messages)
            if removed > 0 or extra:
                strategies[name] = {"tokens_removed": max(0, removed), **(extra or {})}

        if self.normalize:
            before = list(messages)
            messages = self._normalized(messages)
            account("normalize", before)
        sections = sections_of(messages, self.classify)

        history_budget = budgets.get("history")
        if history_budget is not None:
            idx = [
                i for i, s in enumerate(sections) if s == "history" or (s == "tools" and budgets.get("tools") is None)
            ]
            hist = [messages[i] for i in idx]
            limit = _resolve(history_budget, size(hist))
            if hist and limit is not None and size(hist) > limit:
                before = list(messages)
                done = yield from self.history.compact(call, hist, limit, size)
                at = idx[0]
                rest = [(m, s) for i, (m, s) in enumerate(zip(messages, sections, strict=True)) if i not in set(idx)]
                messages = [m for m, _ in rest[:at]] + list(done.messages) + [m for m, _ in rest[at:]]
                sections = sections[:at] + ["history"] * len(done.messages) + [s for _, s in rest[at:]]
                extra: dict[str, Any] = {}
                if done.summarized_messages:
                    extra = {
                        "summarized_messages": done.summarized_messages,
                        "summary_cost_usd": done.summary_cost_usd,
                        "summary_cached": done.summary_cached,
                        "summary_model": done.summary_model,
                    }
                if done.dropped_messages:
                    extra["dropped_messages"] = done.dropped_messages
                account("history", before, extra)

        query = content_text(messages[last_user_index(messages)].get("content")) if messages else ""
        for name in ("retrieved", "system"):
            budget = budgets.get(name)
            idx = [i for i, s in enumerate(sections) if s == name and isinstance(messages[i].get("content"), str)]
            if budget is None or not idx:
                continue
            docs = [messages[i] for i in idx]
            limit = _resolve(budget, size(docs))
            if limit is None or size(docs) <= limit:
                continue
            before = list(messages)
            texts = [str(m["content"]) for m in docs]
            overhead = [size([{**m, "content": ""}]) for m in docs]
            reduced = self._compress(texts, query, limit, count, overhead, system=name == "system")
            drop = set()
            for i, new in zip(idx, reduced, strict=True):
                if new is None or not new.strip():
                    drop.add(i)
                else:
                    messages[i] = {**messages[i], "content": new}
            messages = [m for i, m in enumerate(messages) if i not in drop]
            sections = [s for i, s in enumerate(sections) if i not in drop]
            account(name, before)

        tools_budget = budgets.get("tools")
        if tools_budget is not None:
            idx = [i for i, s in enumerate(sections) if s == "tools" and isinstance(messages[i].get("content"), str)]
            limit = _resolve(tools_budget, size([messages[i] for i in idx]))
            if idx and limit is not None and size([messages[i] for i in idx]) > limit:
                before = list(messages)
                for i, share in zip(idx, self._shares([messages[i] for i in idx], limit, size, count), strict=True):
                    messages[i] = {
                        **messages[i],
                        "content": trim_tool_result(str(messages[i]["content"]), share, count),
                    }
                account("tools", before)

        if not strategies:
            return call
        total = sum(s["tokens_removed"] for s in strategies.values())
        compression = {"layer": layer, "strategies": strategies}
        return call.evolve(
            messages=tuple(messages),
            notes={**call.notes, "tokens_removed": total, "compression": compression},
        )

    # ------------------------------------------------------------------ helpers
    def _normalized(self, messages: list[Message]) -> list[Message]:
        """White space normalized everywhere; repeated retrieved paragraphs and documents dropped."""
        sections = sections_of(messages, self.classify)
        seen_blocks: set[str] = set()
        out: list[Message] = []
        for m, section in zip(messages, sections, strict=True):
            content = m.get("content")
            if not isinstance(content, str):
                out.append(m)
                continue
            new = normalize_space(content)
            if section == "retrieved":
                new = drop_duplicate_blocks(new, seen_blocks)
                if not new:
                    continue
            out.append(m if new == content else {**m, "content": new})
        return out

    def _compress(
        self,
        texts: list[str],
        query: str,
        limit: int,
        count: Callable[[str], int],
        overhead: list[int],
        *,
        system: bool,
    ) -> list[str | None]:
        compressor = self.default if system else self.compressor
        reduced = list(compressor.compress(texts, query=query, budget_tokens=limit, count=count, overhead=overhead))
        fits = len(reduced) == len(texts) and all(t is None or isinstance(t, str) for t in reduced)
        if fits:
            used = sum(count(t) + o for t, o in zip(reduced, overhead, strict=True) if t)
            fits = used <= limit
        if not fits and compressor is not self.default:
            from ..._warn import warn_once

            warn_once(
                f"compress:plugin:{compressor.name}",
                f"costkit: compressor {compressor.name!r} returned texts over the budget; the default one is used",
            )
            reduced = list(
                self.default.compress(texts, query=query, budget_tokens=limit, count=count, overhead=overhead)
            )
        return reduced

    @staticmethod
    def _shares(
        msgs: list[Message], limit: int, size: Callable[[Sequence[Message]], int], count: Callable[[str], int]
    ) -> list[int]:
        """Each tool result's token share: small ones keep what they need, the rest split what is left."""
        needs = [count(str(m["content"])) for m in msgs]
        frame = [size([m]) - n for m, n in zip(msgs, needs, strict=True)]
        room = max(0, limit - sum(frame))
        shares = [0] * len(msgs)
        left = len(msgs)
        for i in sorted(range(len(msgs)), key=lambda i: needs[i]):
            shares[i] = min(needs[i], room // left)
            room -= shares[i]
            left -= 1
        return shares


__all__ = ["BUDGETED", "Budget", "PromptCompressor", "check_budget"]
