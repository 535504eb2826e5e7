"""A quality-gated cascade: call the cheapest model, check its answer, escalate on failure.

Each step is a real provider attempt with its own cost record: the first is the call itself,
an escalation is ``kind="escalation"`` with the next attempt number, a judge's question is
``kind="judge"``. The recorder charges rejected attempts against the router's saving, so a
cascade that escalates too often shows up as costing more, not less.

A streamed call cannot be checked before the caller sees it, so every step but the last is made
without streaming; an answer that passes its gate is handed back whole and the wrapper replays it
to the caller as the SDK's own stream chunks. The last model's answer streams as asked.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..._call import Call, Result
from ..._pipeline import relay
from ..._warn import warn_once
from ...errors import ConfigError
from ...gates import Gate, Verdict, as_gate
from ..router import AttemptFlow, Router
from .decision import Decision, as_tier
from .fallback import fallback_reason

_STREAM_PARAMS = ("stream", "stream_options")  # SDK keywords that only a streamed request may carry


class _Ladder:
    """The cascade's strategy: its models in the given order (cheap first), as one-model tiers."""

    def __init__(self, models: tuple[str, ...]) -> None:
        self.models = models

    def decide(self, call: Call) -> Decision:
        return Decision(tiers=tuple((m,) for m in self.models), reason="cascade")

    def model_fields(self) -> dict[str, tuple[str, ...]]:
        """The models it may send to, by the constructor field that named them."""
        return {f"models[{i}]": (m,) for i, m in enumerate(self.models)}

    def __repr__(self) -> str:
        return f"cascade{list(self.models)}"


class Cascade(Router):
    """``Router.cascade(models, gate=...)``: models cheapest first; ``gate`` decides when to escalate."""

    def __init__(self, models: Sequence[str], gate: Gate | Callable[[Call, Result], Any], **options: Any) -> None:
        if isinstance(models, str):
            raise ConfigError("models", "a cascade needs a list of at least two models, cheapest first")
        ladder = as_tier(list(models), "models")
        if len(ladder) < 2:
            raise ConfigError("models", "a cascade needs at least two models, cheapest first")
        if options.get("shadow"):
            raise ConfigError("shadow", "a cascade cannot run in shadow mode: it must call a model to check its answer")
        self.gate = as_gate(gate, "gate")
        super().__init__(_Ladder(ladder), **options)
        self.models = ladder

    def batch_prepare(self, call: Call) -> Call:
        """A batch item stays as asked: the gate needs the cheap model's answer before choosing."""
        return call

    def flow(self, call: Call) -> AttemptFlow:
        if call.pinned:  # a gate's judge names its model itself
            return (yield call)
        decision = self.strategy.decide(call)
        assert decision is not None
        models, skipped = self.plan(call, Decision(tiers=decision.tiers, reason=decision.reason))
        models = [m for m in models if m in self.models] or models  # cascade order, requested model only as last resort
        path: list[dict[str, str]] = []
        current = self.routed(call, models[0], decision, skipped)
        attempt = current.attempt
        result: Result | None = None
        for i, model in enumerate(models):
            last = i == len(models) - 1
            step = current.evolve(model=model, attempt=attempt)
            if not last and step.stream:
                step = _unstreamed(step)
            try:
                result = yield step
            except Exception as exc:
                why = fallback_reason(exc) if self.fallback else None
                if why is None or last:
                    raise
                path.append({"model": model, "error": why})
                attempt += 1
                current = step.evolve(
                    kind="retry",
                    stream=call.stream,
                    params=call.params,
                    notes=_step_notes(current.notes, fallback_from=model, fallback_reason=why),
                )
                continue
            attempt += 1
            if last:
                path.append({"model": model, "verdict": "final"})
                break
            verdict, attempt = yield from self._judge(step, result, attempt)
            if verdict:
                path.append({"model": model, "verdict": "pass"})
                break
            path.append({"model": model, "verdict": "fail", "gate": verdict.gate, "reason": verdict.reason})
            current = step.evolve(
                kind="escalation",
                stream=call.stream,
                params=call.params,
                notes=_step_notes(
                    current.notes, escalated_from=model, escalation_reason=f"{verdict.gate}: {verdict.reason}"
                ),
            )
        assert result is not None
        return result.with_notes(cascade=path)

    def _judge(self, call: Call, result: Result, attempt: int) -> Any:
        """Run the gate's flow inside this one; the calls it asks (a judge) go down the chain as numbered attempts."""
        numbered = itertools.count(attempt)

        def number(ask: Call) -> Call:
            return ask.evolve(attempt=next(numbered))

        try:
            verdict: Verdict = yield from relay(self.gate.evaluate(call, result), number)
        except Exception as exc:  # a broken gate must not fail the call: escalate (safe for quality)
            warn_once(
                f"gate:{type(self.gate).__name__}:{type(exc).__name__}",
                f"costkit: cascade gate {self.gate!r} raised {exc!r}; treating the answer as rejected",
            )
            verdict = Verdict(False, f"gate raised {type(exc).__name__}", "error")
        return verdict, next(numbered)

    def __repr__(self) -> str:
        return f"Router.cascade({list(self.models)}, gate={self.gate!r})"


_STEP_NOTES = ("fallback_from", "fallback_reason", "escalated_from", "escalation_reason", "cascade_unstreamed")


def _step_notes(notes: Mapping[str, Any], **new: str) -> dict[str, Any]:
    """The next step's notes: the call's own, without the previous step's, plus why this step happens."""
    return {**{k: v for k, v in notes.items() if k not in _STEP_NOTES}, **new}


def _unstreamed(call: Call) -> Call:
    params = {k: v for k, v in call.params.items() if k not in _STREAM_PARAMS}
    return call.evolve(stream=False, params=params, notes={**call.notes, "cascade_unstreamed": True})


__all__ = ["Cascade"]
