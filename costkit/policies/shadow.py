"""Shadow: measure what a policy would do before letting it act.

``costkit.Shadow(policy)`` runs ``policy``'s decision on every call and notes what it would have
done, without changing the call that is sent or the answer the application gets:

* the policy answers by itself (a cache hit): the call still goes to the provider; its record
  carries ``notes["shadow"] = {"policy": ..., "would": "answer", "source": "semantic", ...}``, and
  that attempt's cost is what the hit would have saved (``costkit.report`` adds it up);
* the policy changes the call (a compressor trims the prompt, a router picks a model): the
  original call is sent; ``notes["shadow"]`` says ``"would": "change"`` with the model it would
  have used and the prompt tokens it would have removed (``tokens_removed``) and their price
  (``saved_usd``);
* otherwise ``"would": "pass"``.

A side request the policy makes for itself (a compressor's history summary) is made for real and
recorded as such, so the measured saving is net of it. The wrapped policy still sees the real
answer (a cache stores it, so its hit rate can be measured
on real traffic). Suited to policies that decide before the call (caches, the context budget,
a router); a policy that calls several times (retry, cascade) sees the one real answer again.
Combine with :class:`~costkit.Experiment` to shadow a change in one arm only.
"""

from __future__ import annotations

from typing import Any

from .._call import Call, Result
from .._env import Env
from .._pipeline import ANext, Next, check_policies

SIDE_KINDS = ("summary", "embedding", "judge")  # requests a policy makes for itself, not the answer


class Shadow:
    """Run ``policy`` for measurement only; see the module docstring."""

    def __init__(self, policy: Any, *, name: str | None = None) -> None:
        (self.policy,) = check_policies([policy])
        self.name = name or type(policy).__name__
        self.pricing: Any = None

    def bind(self, env: Env) -> None:
        self.pricing = env.pricing
        bind = getattr(self.policy, "bind", None)
        if callable(bind):
            bind(env)

    def _note(self, original: Call, seen: Call | None, answered: Result | None) -> dict[str, Any]:
        note: dict[str, Any] = {"policy": self.name}
        if answered is not None:
            note.update(would="answer", source=answered.source)
            return note
        if seen is None or (seen.model == original.model and seen.messages == original.messages):
            note["would"] = "pass"
            return note
        note["would"] = "change"
        if seen.model != original.model:
            note["model"] = seen.model
        removed = seen.notes.get("tokens_removed")
        if isinstance(removed, int) and removed > 0:
            note["tokens_removed"] = removed
            price = self.pricing.get(original.model, provider=original.provider) if self.pricing else None
            if price is not None:
                note["saved_usd"] = removed * float(price.input_per_token)
        return note

    def handle(self, call: Call, next: Next) -> Result:
        seen: list[Call] = []
        real: list[Result] = []

        def probe(c: Call) -> Result:
            if c.kind in SIDE_KINDS:  # the policy's own side request (a history summary): made for real
                return next(c)
            if real:
                return real[0]
            seen.append(c)
            shadowed = call.with_notes(shadow=self._note(call, c, None))
            real.append(next(shadowed))
            return real[0]

        out = self.policy.handle(call, probe)
        if real:
            return real[0]
        return next(call.with_notes(shadow=self._note(call, None, out)))  # it answered: ask the provider anyway

    async def ahandle(self, call: Call, anext: ANext) -> Result:
        seen: list[Call] = []
        real: list[Result] = []

        async def probe(c: Call) -> Result:
            if c.kind in SIDE_KINDS:
                return await anext(c)
            if real:
                return real[0]
            seen.append(c)
            real.append(await anext(call.with_notes(shadow=self._note(call, c, None))))
            return real[0]

        out = await self.policy.ahandle(call, probe)
        if real:
            return real[0]
        return await anext(call.with_notes(shadow=self._note(call, None, out)))

    def __repr__(self) -> str:
        return f"Shadow({self.policy!r})"


__all__ = ["Shadow"]
