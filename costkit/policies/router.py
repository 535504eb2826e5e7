"""The router: send each call to the cheapest model that does the job.

One policy class, four ways to decide (strategies in :mod:`costkit.policies.routing`)::

    Router.tiers({"faq": "gpt-4o-mini", "legal": "gpt-4o"}, by="feature")     # the app says which route
    Router.heuristic(["gpt-4o-mini", "gpt-4o"], thresholds=[0.3])               # a complexity score
    Router.learned(examples, models=["gpt-4o-mini", "gpt-4o"], target_quality=0.95)   # learned from labels
    Router.cascade(["gpt-4o-mini", "gpt-4o"], gate=gates.json_schema(schema))   # try cheap, check, escalate

Whatever decided, the router then does the same things for every strategy:

* drops models that cannot take the call (tools, images, JSON schema, context window, output
  limit; from the price book) -- it never routes to a model that lacks what the call uses;
* within the chosen tier, picks the cheapest model by estimated call cost;
* on a retryable provider error that got past the retry layer, an open circuit or a context
  overflow, moves to the next eligible model (stronger tiers, your ``fallbacks``, then the model
  the application asked for), as an attempt of kind ``"retry"``;
* in ``shadow=True`` mode decides and notes what it would have done, without changing the model.

What it decided goes into ``call.notes`` (and from there into the cost records): ``routed_from``,
``route_reason``, ``route_scores``, ``route_skipped``; ``shadow_model`` / ``shadow_route`` in shadow
mode. The route name, when a strategy has one, becomes the call's ``route`` tag unless the
application set it. The recorder prices the saving from ``requested_model`` vs ``model``.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._call import Call, Result
from .._env import Env
from .._pipeline import FlowPolicy, Io, Step
from .._warn import warn_once
from ..errors import ConfigError
from .routing.decision import Decision, Strategy, as_tier
from .routing.eligibility import DEFAULT_OUTPUT_TOKENS, CallSize, Catalog, needs_of
from .routing.fallback import fallback_reason

if TYPE_CHECKING:
    from ..gates import Gate
    from .routing.cascade import Cascade
    from .routing.heuristic import ComplexityScorer

AttemptFlow = Generator[Step, Any, Result]
#: the providers (as the cost map names them) each SDK client can send a model to
CLIENT_PROVIDERS = {
    "openai": frozenset({"openai", "azure", "text-completion-openai"}),
    "anthropic": frozenset({"anthropic"}),
}


def unknown_model_message(model: str, pricing: Any) -> tuple[str, list[str]]:
    """Why ``model`` is refused, and the closest names the price book knows."""
    import difflib

    names: list[str] = []
    cost_map = getattr(pricing, "cost_map", None)
    entries = getattr(cost_map, "entries", None)
    if entries is not None:
        names = list(entries)
    overrides = getattr(pricing, "overrides", ())
    names += [p.model for p in (overrides() if callable(overrides) else overrides)]
    close = difflib.get_close_matches(model, names, n=3, cutoff=0.75)
    hint = f"did you mean {', '.join(repr(c) for c in close)}? " if close else ""
    message = (
        f"unknown model {model!r}: {hint}(a model the cost map lacks needs a price first: "
        f"costkit.pricing.register({model!r}, input_per_million=..., output_per_million=...), "
        "or in the PriceBook given to costkit.wrap(pricing=...))"
    )
    return message, close


class Router(FlowPolicy):
    """A routing policy around a :class:`~costkit.policies.routing.decision.Strategy`; build it with
    :meth:`tiers`, :meth:`heuristic`, :meth:`learned`, :meth:`load` or :meth:`cascade`."""

    def __init__(
        self,
        strategy: Strategy,
        *,
        fallbacks: Sequence[str] = (),
        fallback: bool = True,
        shadow: bool = False,
        pricing: Any = None,
        default_output_tokens: int = DEFAULT_OUTPUT_TOKENS,
    ) -> None:
        if not callable(getattr(strategy, "decide", None)):
            raise ConfigError("strategy", f"{strategy!r} has no decide(call) method")
        if isinstance(fallbacks, str):
            fallbacks = (fallbacks,)
        self.fallbacks = as_tier(list(fallbacks), "fallbacks") if fallbacks else ()
        if not isinstance(fallback, bool):
            raise ConfigError("fallback", f"must be a bool, got {fallback!r}")
        if not isinstance(shadow, bool):
            raise ConfigError("shadow", f"must be a bool, got {shadow!r}")
        if not isinstance(default_output_tokens, int) or default_output_tokens < 0:
            raise ConfigError("default_output_tokens", f"must be an int >= 0, got {default_output_tokens!r}")
        self.strategy = strategy
        self.fallback = fallback
        self.shadow = shadow
        self.catalog = Catalog(pricing, default_output_tokens=default_output_tokens)
        self._check_known(self.catalog.pricing, self.model_fields(learned=False), only_typos=pricing is None)

    def bind(self, env: Env) -> None:
        """Route and check eligibility with the wrapper's price book unless this router was given its own;
        refuse (at ``costkit.wrap``) a model the wrapped client cannot send to."""
        self.catalog.adopt_pricing(env.pricing)
        self._check_known(self.catalog.pricing, self.model_fields())
        if env.client in CLIENT_PROVIDERS:
            self._check_servable(env.client)

    def model_fields(self, *, learned: bool = True) -> dict[str, tuple[str, ...]]:
        """Every model this router may send a call to, by the constructor field that named it (a
        learned router's models, named by its training labels, with ``learned``)."""
        fields = getattr(self.strategy, "model_fields", None)
        named: dict[str, tuple[str, ...]] = dict(fields()) if callable(fields) else {}
        trained = getattr(getattr(self.strategy, "model", None), "models", None)
        if learned and not named and trained:
            named = {f"models[{i}]": (m,) for i, m in enumerate(trained)}
        if self.fallbacks:
            named["fallbacks"] = tuple(self.fallbacks)
        return named

    def _check_known(self, pricing: Any, fields: Mapping[str, Sequence[str]], *, only_typos: bool = False) -> None:
        """A model the price book has never heard of is refused, with the nearest names it knows.

        Checked when the router is built and again when it is wrapped (against the wrapper's price
        book, where a private model may be registered): at build time without a price book of its
        own, only a name close to a known one (a typo) is refused at once."""
        for field, models in fields.items():
            for model in models:
                if pricing.get(model) is None:
                    message, close = unknown_model_message(model, pricing)
                    if close or not only_typos:
                        raise ConfigError(field, message)

    def _check_servable(self, client: str) -> None:
        for field, models in self.model_fields().items():
            for model in models:
                price = self.catalog.pricing.get(model)
                provider = getattr(price, "provider", None)
                if provider and provider not in CLIENT_PROVIDERS[client]:
                    raise ConfigError(
                        field,
                        f"{model!r} is served by {provider}, but this router runs in a wrapped {client} client, "
                        f"which would send it to {client}'s API. Route across providers through litellm "
                        f"(costkit.wrap(litellm, policies=[...])), or keep this tier to {client} models",
                    )

    # ------------------------------------------------------------------------------ constructors
    @classmethod
    def tiers(
        cls,
        mapping: Mapping[str, str | Sequence[str]],
        *,
        by: str | Callable[[Call], str | None] = "route",
        default: str | None = None,
        **options: Any,
    ) -> Router:
        """Route by an explicit table: ``by`` names the tag (``route``, ``feature``...) or is a rule
        ``fn(call) -> route``; a route maps to a model or a list of models (cheapest eligible wins)."""
        from .routing.tiers import Tiers

        return cls(Tiers(mapping, by=by, default=default), **options)

    @classmethod
    def heuristic(
        cls,
        models: Sequence[str | Sequence[str]],
        *,
        thresholds: Sequence[float] | None = None,
        weights: Mapping[str, float] | None = None,
        keywords: Sequence[str] | None = None,
        length_scale: float = 500.0,
        scorer: ComplexityScorer | None = None,
        text: Callable[[Call], str] | None = None,
        **options: Any,
    ) -> Router:
        """Route by a complexity score (length, reasoning keywords, several questions, code, math);
        ``models`` are tiers cheap -> strong, ``thresholds`` the score cuts between them."""
        from .routing.decision import text_of
        from .routing.heuristic import DEFAULT_KEYWORDS, ComplexityScorer, Heuristic

        if scorer is None:
            scorer = ComplexityScorer(
                weights=weights,
                keywords=DEFAULT_KEYWORDS if keywords is None else keywords,
                length_scale=length_scale,
            )
        elif weights is not None or keywords is not None:
            raise ConfigError("scorer", "pass either scorer= or weights=/keywords=, not both")
        strategy = Heuristic(models, thresholds=thresholds, scorer=scorer, text=text or text_of)
        return cls(strategy, **options)

    @classmethod
    def learned(
        cls,
        examples: Iterable[Mapping[str, Any]],
        models: Sequence[str],
        *,
        target_quality: float = 0.95,
        embedder: Any = None,
        method: str = "ensemble",
        k: int = 50,
        group_weight: float = 0.6,
        confidence: float = 0.95,
        margin: float | None = None,
        ood_rate: float | None = 0.02,
        topic_rate: float | None = 0.5,
        folds: int = 5,
        seed: int = 0,
        holdout: str = "examples",
        l2_grid: Sequence[float] | None = None,
        linear_weights: Sequence[float] | None = None,
        text: Callable[[Call], str] | None = None,
        **options: Any,
    ) -> Router:
        """Learn from labeled traffic which cheaper model suffices for which request.

        ``examples``: ``{"prompt": str, "ok": {model: bool, ...}}`` (and optionally ``"group"``, a
        topic or feature name used only while training). ``models``: cheapest first, strongest
        last. The router picks, per request, the cheapest model whose predicted quality keeps the
        traffic at ``target_quality`` of the strongest model's, with the threshold calibrated on
        held-out (out-of-fold) examples so the target holds at ``confidence`` (``margin``: a fixed
        number of standard errors instead). ``ood_rate``: prompts unlike the training prompts go to
        the strongest model (``notes["route_ood"]``; None turns the check off). ``topic_rate``: when
        every example has a ``"group"`` (at least ``folds`` distinct ones), the strangest
        ``topic_rate`` of prompts like the training ones (maybe from a topic never seen) are routed
        with a more careful threshold, calibrated on whole held-out groups
        (``notes["route_new_topic"]``; None: one threshold for all).
        ``holdout="groups"`` calibrates every prompt's threshold on whole held-out groups. ``k``: the
        neighbours of the kNN vote; ``group_weight``: the topic model's share of the ensemble.
        ``method``: ``"ensemble"`` (a ridge model of each model's P(ok), routed on the gain of the
        stronger model, blended with the kNN vote), ``"linear"`` (ridge alone) or ``"knn"``.
        ``l2_grid`` / ``linear_weights``: what cross-validation inside the examples chooses the
        ridge penalty and the blend from (defaults in :mod:`costkit.policies.routing.learned`).
        """
        from .routing.learned import L2_GRID, LINEAR_WEIGHTS, LearnedStrategy, train

        model = train(
            examples,
            models,
            target_quality=target_quality,
            embedder=embedder,
            method=method,
            k=k,
            group_weight=group_weight,
            confidence=confidence,
            margin=margin,
            ood_rate=ood_rate,
            topic_rate=topic_rate,
            folds=folds,
            seed=seed,
            holdout=holdout,
            l2_grid=L2_GRID if l2_grid is None else tuple(l2_grid),
            linear_weights=LINEAR_WEIGHTS if linear_weights is None else tuple(linear_weights),
        )
        return cls(LearnedStrategy(model, embedder=embedder, text=text), **options)

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        embedder: Any = None,
        text: Callable[[Call], str] | None = None,
        target_quality: float | None = None,
        **options: Any,
    ) -> Router:
        """A learned router saved with :meth:`save` (the embedder must be the one it was trained with)."""
        from .routing.learned import LearnedModel, LearnedStrategy

        model = LearnedModel.load(path)
        if target_quality is not None:
            model = model.with_target(target_quality)
        return cls(LearnedStrategy(model, embedder=embedder, text=text), **options)

    def save(self, path: str | Path) -> None:
        """Save a learned router (arrays and settings in one ``.npz``; no pickle)."""
        from .routing.learned import LearnedStrategy

        if not isinstance(self.strategy, LearnedStrategy):
            raise TypeError("only a learned router has state to save; the others are their constructor arguments")
        self.strategy.model.save(path)

    @property
    def learned_model(self) -> Any:
        return getattr(self.strategy, "model", None)

    @classmethod
    def cascade(
        cls,
        models: Sequence[str],
        gate: Gate | Callable[[Call, Result], Any],
        **options: Any,
    ) -> Cascade:
        """Call the cheapest model, check its answer with ``gate``, escalate to the next on failure."""
        from .routing.cascade import Cascade

        return Cascade(models, gate, **options)

    # ------------------------------------------------------------------------------ the flow
    def decide(self, call: Call) -> Decision | None:
        """The strategy's decision; a strategy that fails degrades to no routing (warned once)."""
        try:
            return self.strategy.decide(call)
        except Exception as exc:
            warn_once(
                f"router:{type(self.strategy).__name__}:{type(exc).__name__}",
                f"costkit: router strategy {type(self.strategy).__name__} failed ({exc!r}); "
                "calls go to the requested model",
            )
            return None

    def plan(self, call: Call, decision: Decision) -> tuple[list[str], dict[str, str]]:
        """The eligible models in the order to try them, and why the others were skipped."""
        needs = needs_of(call)
        size = CallSize(call)
        ordered: list[str] = []
        skipped: dict[str, str] = {}
        groups: list[Sequence[str]] = [*decision.tiers, self.fallbacks, (call.model,)]
        for tier in groups:
            eligible = []
            for m in tier:
                if m in ordered or m in eligible or m in skipped:
                    continue
                why = self.catalog.ineligible(m, call, needs, size)
                if why is None:
                    eligible.append(m)
                else:
                    skipped[m] = why
            ordered.extend(self.catalog.cheapest_first(eligible, call, size))
        return ordered, skipped

    def routed(self, call: Call, model: str, decision: Decision, skipped: Mapping[str, str]) -> Call:
        """The call as the router sends it: the model, the route tag, and the notes that explain it."""
        notes: dict[str, Any] = {"route_reason": decision.reason, **decision.notes}
        if decision.scores:
            notes["route_scores"] = dict(decision.scores)
        if skipped:
            notes["route_skipped"] = dict(skipped)
        if model != call.model:
            notes["routed_from"] = call.model
        out = call.with_notes(**notes).with_model(model)
        if decision.route is not None and call.tags.route is None:
            out = out.evolve(tags=out.tags.merged(type(out.tags)(route=decision.route)))
        return out

    def batch_prepare(self, call: Call) -> Call:
        """A batch item goes to the model the router chooses for the same call (``costkit.batch.BatchPrepare``),
        with the same notes; the lane submits one chunk per model. In shadow mode it stays as asked."""
        if call.pinned or self.shadow:
            return call
        decision = self.decide(call)
        if decision is None:
            return call
        models, skipped = self.plan(call, decision)
        return self.routed(call, models[0] if models else call.model, decision, skipped)

    async def adecide(self, call: Call) -> Decision | None:
        """:meth:`decide` for an async pipeline: a strategy with ``adecide`` (one that embeds through
        a network) is awaited; the others decide synchronously (no I/O)."""
        adecide = getattr(self.strategy, "adecide", None)
        if adecide is None:
            return self.decide(call)
        try:
            return await adecide(call)
        except Exception as exc:
            warn_once(
                f"router:{type(self.strategy).__name__}:{type(exc).__name__}",
                f"costkit: router strategy {type(self.strategy).__name__} failed ({exc!r}); "
                "calls go to the requested model",
            )
            return None

    def flow(self, call: Call) -> AttemptFlow:
        if call.pinned:  # a gate's judge names its model itself
            return (yield call)
        if hasattr(self.strategy, "adecide"):  # it may embed over a network: an I/O step
            decision = yield Io(lambda: self.decide(call), lambda: self.adecide(call))
        else:
            decision = self.decide(call)
        return (yield from self.route(call, decision))

    def route(self, call: Call, decision: Decision | None) -> AttemptFlow:
        """Everything after the decision, without I/O: plan, shadow or send with fallbacks."""
        if decision is None:
            return (yield call)
        models, skipped = self.plan(call, decision)
        if self.shadow:
            notes: dict[str, Any] = {"route_reason": decision.reason, **decision.notes}
            if models:
                notes["shadow_model"] = notes["shadow_route"] = models[0]
            if decision.scores:
                notes["route_scores"] = dict(decision.scores)
            return (yield call.with_notes(**notes))
        first = self.routed(call, models[0] if models else call.model, decision, skipped)
        return (yield from self.with_fallbacks(first, models[1:]))

    def with_fallbacks(self, call: Call, rest: Sequence[str]) -> AttemptFlow:
        """Send ``call``; on a failure another model may not have, try the next of ``rest``."""
        current = call
        remaining = list(rest) if self.fallback else []
        while True:
            try:
                return (yield current)
            except Exception as exc:
                why = fallback_reason(exc)
                if why is None or not remaining:
                    raise
                current = self.fallback_call(current, remaining.pop(0), why)

    @staticmethod
    def fallback_call(failed: Call, model: str, why: str) -> Call:
        """The next attempt after ``failed`` erred: another model, kind ``retry``, the reason noted."""
        return failed.evolve(
            model=model,
            kind="retry",
            attempt=failed.attempt + 1,
            notes={**failed.notes, "fallback_from": failed.model, "fallback_reason": why},
        )

    def __repr__(self) -> str:
        mode = ", shadow=True" if self.shadow else ""
        return f"Router({self.strategy!r}{mode})"


__all__ = ["Router"]
