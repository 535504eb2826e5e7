"""SemanticCache: answer a question asked before *in other words*, at a false-hit rate you choose.

``SemanticCache(max_false_hit_rate=0.02)`` embeds the last user turn, finds the nearest cached
questions **inside the call's partition** (:mod:`.partition`), rescores them (:mod:`.calibration`;
a candidate whose wording flips the meaning -- a negation, an antonym, swapped arguments, another
number, unit, date or name -- is vetoed, :mod:`.contrast`) and answers from the best one only if
its score clears the threshold calibrated for that rate.

* **The threshold** comes from a :class:`~.calibration.Calibration`: the one shipped for the
  embedder, one you pass, or one per ``tags.feature`` (``calibrations={"faq": cal}``).
* **Verifier** (optional, :mod:`.verifier`): asked about candidates just below the threshold,
  about a sampled share of direct hits (a live false-hit estimate: ``live_quality`` and
  ``notes["cache_verified"]``), and about entries not yet shared with this user. Its verdicts are
  stored in the entry and move that entry's threshold (:mod:`.adaptation`) in every process.
* **Sharing** (``min_distinct_users``, :mod:`.sharing`): an entry answers other users only once
  that many distinct users asked it, or, with a verifier, once the verifier confirms it.
* What is not cached, TTLs and labels are the shared :class:`~.rules.CacheRules`.

**Records carry no other request's text.** A hit's ``notes`` hold ``cached_question_text``: note
keys ending in ``_text`` are prompt or completion text, and the recorder drops them unless the
wrapper was built with ``record_text=True``.

The policy is one flow (:class:`~costkit._pipeline.FlowPolicy`): embedding, search, verification
and writes are ``Io`` effects, run inline for the in-process store and the bundled embedder,
awaited (or in a worker thread) for a provider embedder, a pgvector store or a blocking verifier.
A failing store, embedder or verifier is a miss plus one warning, never a failed call.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections import Counter
from collections.abc import Callable, Generator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from ..._call import SOURCE_SEMANTIC_CACHE, Call, Result
from ..._pipeline import FlowPolicy, Step, drive
from ..._serialize import SerializationError, result_from_json, result_to_json
from ..._warn import warn_once
from ...errors import ConfigError
from .adaptation import KEEP, NO, YES, entry_threshold, refuted_at_or_above
from .calibration import Calibration, calibrate, check_rate, default_calibration
from .partition import partition_key, semantic_query
from .rules import CacheRules, count_bypass, request_skip_reason, result_skip_reason
from .semantic_io import FAILED, CacheIo, one_effect
from .semantic_store import Candidate, LocalSemanticStore, as_semantic_store
from .sharing import USERS
from .verifier import LiveQuality, Verifier


@attrs.frozen(kw_only=True)
class Match:
    """What a lookup found: the best cached question, its similarity and score, and the decision."""

    question: str
    similarity: float
    score: float
    threshold: float
    hit: bool
    entry_id: Any


@attrs.frozen(slots=True)
class Plan:
    """What the cache does for one call, decided before any I/O."""

    key: str  # the partition
    query: str
    ttl: float | None
    calibration: Calibration
    threshold: float
    explore: float  # the verifier's band starts here (inf: no verifier)


@attrs.frozen(slots=True)
class Decision:
    """``hit``, ``verify`` or ``miss`` for the best candidate; ``sampled``: a direct hit picked for checking."""

    action: str
    score: float = -math.inf
    candidate: Candidate | None = None
    threshold: float = math.inf
    sampled: bool = False
    new_asker: str | None = None  # a user to count on the entry (sharing)
    unshared: bool = False  # the entry would answer, but not this user yet


MISS = Decision("miss")


class SemanticCache(FlowPolicy):
    """The semantic cache policy; see the module docstring.

    ``max_false_hit_rate``: δ. ``embedder``: None (bundled static model), a name, an embedder or a
    callable. ``store``: None (in process), a directory, or a pgvector store. ``calibration``: a
    :class:`Calibration` or a path (None: the one shipped for the embedder); ``calibrations``: per
    ``tags.feature``. ``verifier``: a callable ``(query, cached_question, cached_answer) -> bool``
    or a :class:`~.verifier.Verifier`. ``rules``: a :class:`~.rules.CacheRules`, or its keywords
    (``ttl_s``, ``ttl_by_feature``, ``ttl_by_route``, ``namespace``, ``cache_sampled``,
    ``cache_tool_calls``, ``min_distinct_users``) given here directly. ``scope_user``: entries
    private to ``tags.user``. ``history``: ``"exact"`` (earlier turns must match) or ``"ignore"``.
    """

    SIZE_CHECK_EVERY = 256

    def __init__(
        self,
        max_false_hit_rate: float = 0.02,
        embedder: Any = None,
        store: Any = None,
        *,
        calibration: Calibration | str | Path | None = None,
        calibrations: Mapping[str, Calibration | str | Path] | None = None,
        verifier: Verifier | Callable[..., Any] | None = None,
        rules: CacheRules | None = None,
        scope_user: bool = False,
        history: str = "exact",
        top_k: int | None = None,
        **rule_options: Any,
    ) -> None:
        from ...embedders import as_embedder

        self.max_false_hit_rate = check_rate(max_false_hit_rate)
        if history not in ("exact", "ignore"):
            raise ConfigError("history", f"must be 'exact' or 'ignore', got {history!r}")
        if top_k is not None and (not isinstance(top_k, int) or top_k < 1):
            raise ConfigError("top_k", f"must be an int >= 1, got {top_k!r}")
        self.verifier = Verifier.of(verifier)
        if self.verifier is not None and self.verifier.band < self.max_false_hit_rate:
            raise ConfigError("verifier.band", "must be >= max_false_hit_rate (it is the looser rate)")
        self.rules = self._rules(rules, rule_options)
        self.embedder = as_embedder(embedder)
        self.store = as_semantic_store(store)
        self.calibration = self._check_calibration("calibration", self._resolve(calibration))
        self.calibrations: dict[str, Calibration] = {
            str(f): self._check_calibration(f"calibrations[{f!r}]", self._resolve(c))
            for f, c in (calibrations or {}).items()
        }
        self.scope_user = bool(scope_user)
        self.history = history
        self.top_k = top_k
        self.stats: Counter[str] = Counter()
        self._thresholds: dict[tuple[int, float], tuple[Calibration, float]] = {}
        self._pairs: dict[tuple[int, float], tuple[float, float]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._random = random.Random()
        self.io = CacheIo(self)
        # the in-process store without a directory does no I/O: its calls run inline in both drivers
        self.store_inline = isinstance(self.store, LocalSemanticStore) and self.store.directory is None

    # -- configuration --------------------------------------------------------------------
    @staticmethod
    def _rules(rules: CacheRules | None, options: Mapping[str, Any]) -> CacheRules:
        if rules is not None and options:
            raise ConfigError(next(iter(options)), "pass either rules=CacheRules(...) or its keywords, not both")
        if rules is not None:
            if not isinstance(rules, CacheRules):
                raise ConfigError("rules", f"must be a CacheRules, got {type(rules).__name__}")
            return rules
        known = {"ttl_s", "ttl_by_feature", "ttl_by_route", "namespace", "cache_sampled", "cache_tool_calls"}
        known.add("min_distinct_users")
        for name in options:
            if name not in known:
                raise ConfigError(name, f"unknown option; SemanticCache takes {', '.join(sorted(known))}")
        defaults: dict[str, Any] = {
            "namespace": "semantic",
            "ttl_s": None,
            "ttl_by_feature": None,
            "ttl_by_route": None,
            "cache_sampled": False,
            "cache_tool_calls": False,
        }
        return CacheRules(**{**defaults, **options})

    def _resolve(self, cal: Any) -> Calibration:
        if cal is None:
            found = default_calibration(self.embedder.name)
            if found is None:
                raise ConfigError(
                    "calibration",
                    f"no calibration ships for embedder {self.embedder.name!r}: measure one on labeled pairs with "
                    "costkit.policies.cache.calibrate(pairs, embedder) and pass calibration=",
                )
            return found
        if isinstance(cal, Calibration):
            return cal
        if isinstance(cal, str | Path):
            return Calibration.load(cal)
        raise ConfigError("calibration", f"expected a Calibration or a path, got {type(cal).__name__}")

    def _check_calibration(self, field: str, cal: Calibration) -> Calibration:
        if cal.embedder != self.embedder.name:
            raise ConfigError(
                field, f"calibrated for embedder {cal.embedder!r}, but this cache embeds with {self.embedder.name!r}"
            )
        return cal

    def calibrate(self, pairs: Any, *, feature: str | None = None, scorer: str = "learned") -> Calibration:
        """Measure a calibration on labeled pairs with this cache's embedder and use it (for ``feature``, or all)."""
        cal = calibrate(pairs, self.embedder, scorer=scorer, source=f"SemanticCache.calibrate(feature={feature!r})")
        if feature is None:
            self.calibration = cal
        else:
            self.calibrations[feature] = cal
        return cal

    def threshold_for(self, cal: Calibration, rate: float) -> float:
        """The calibrated threshold for ``rate`` (memoized per calibration object)."""
        key = (id(cal), rate)
        found = self._thresholds.get(key)
        if found is None or found[0] is not cal:  # an id can be reused once a calibration is dropped
            found = self._thresholds[key] = (cal, cal.threshold(rate))
        return found[1]

    def thresholds_with(self, cal: Calibration, accuracy: float) -> tuple[float, float]:
        """(direct threshold, band start) for a verifier of stated ``accuracy`` (memoized per calibration)."""
        key = (id(cal), -accuracy)
        found = self._thresholds.get(key)
        if found is None or found[0] is not cal:
            pair = cal.thresholds_with_verifier(self.max_false_hit_rate, accuracy)
            self._pairs[key] = pair
            found = self._thresholds[key] = (cal, pair[0])
        return self._pairs[key]

    @property
    def live_quality(self) -> LiveQuality:
        """The sampled verification of direct hits so far (``Verifier(sample=...)``), in this process."""
        return LiveQuality(sampled=self.stats["sampled"], refuted=self.stats["sampled_refuted"])

    # -- I/O-free steps -------------------------------------------------------------------
    def plan(self, call: Call) -> Plan | None:
        """What to look up for ``call``, or None when it may not use the cache (counted)."""
        reason = request_skip_reason(call, cache_sampled=self.rules.cache_sampled)
        query = semantic_query(call) if reason is None else None
        if reason is None and query is None:
            reason = "no_text_turn"
        ttl = self.rules.ttl_for(call) if reason is None else None
        if reason is None and ttl is not None and ttl <= 0:
            reason = "ttl_zero"
        if reason is not None or query is None:
            count_bypass("SemanticCache", self.stats, reason or "no_text_turn", call)
            return None
        feature = call.tags.feature
        cal = self.calibrations.get(feature, self.calibration) if feature is not None else self.calibration
        key = partition_key(call, scope_user=self.scope_user, namespace=self.rules.namespace, history=self.history)
        v = self.verifier
        if v is not None and v.accuracy is not None:  # threshold and band chosen together, the judge's errors counted
            threshold, explore = self.thresholds_with(cal, v.accuracy)
        else:
            threshold = self.threshold_for(cal, self.max_false_hit_rate)
            explore = self.threshold_for(cal, v.band) if v is not None else math.inf
        return Plan(key=key, query=query, ttl=ttl, calibration=cal, threshold=threshold, explore=explore)

    def rank(self, plan: Plan, candidates: Sequence[Candidate]) -> tuple[float, Candidate] | None:
        """The best candidate by the calibration's scorer (vetoed ones score -inf)."""
        cands = sorted(candidates, key=lambda c: -c.similarity)[: plan.calibration.top_k]
        if not cands:
            return None
        scores = plan.calibration.scorer.score_candidates(
            plan.query, [c.question for c in cands], [c.similarity for c in cands]
        )
        best = int(np.argmax(scores))
        return scores[best], cands[best]

    def entry_threshold(self, plan: Plan, payload: Mapping[str, Any]) -> float:
        """The calibrated threshold moved by the verdicts stored in this entry."""
        v = self.verifier
        floor = plan.explore if v is not None else plan.threshold
        return entry_threshold(plan.threshold, floor, payload, v.min_confirmations if v is not None else 3)

    def decide(self, plan: Plan, ranked: tuple[float, Candidate] | None, call: Call) -> Decision:
        """``hit``, ``verify`` or ``miss``, from the score, the entry's verdicts and who may see it."""
        if ranked is None:
            return MISS
        score, cand = ranked
        v = self.verifier
        t = self.entry_threshold(plan, cand.payload)
        admission = self.rules.sharing.admit(cand.payload, call)
        asker = admission.users[-1] if admission.users else None
        if score >= t:
            if admission.serve and v is None:
                return Decision("hit", score, cand, t)
            if v is None:
                return Decision("miss", score, cand, t, new_asker=asker, unshared=True)
            sampled = admission.serve and not v.verify_all and self._random.random() < v.sample
            if admission.serve and not v.verify_all and not sampled:
                return Decision("hit", score, cand, t)
            return Decision("verify", score, cand, t, sampled=sampled, new_asker=asker, unshared=not admission.serve)
        if v is not None and score >= plan.explore and not refuted_at_or_above(cand.payload, score):
            return Decision("verify", score, cand, t, new_asker=asker)
        return Decision("miss", score, cand, t, new_asker=None)

    def _hit_result(self, call: Call, plan: Plan, decision: Decision, verified: bool) -> Result | None:
        cand = decision.candidate
        assert cand is not None
        try:
            result = result_from_json(cand.payload["result"], source=SOURCE_SEMANTIC_CACHE, call=call)
        except Exception as exc:  # stored data is untrusted: any failure to rebuild is a miss
            self.stats["corrupt"] += 1
            warn_once(f"semantic-cache-corrupt:{type(exc).__name__}", f"costkit: unreadable semantic entry ({exc})")
            self.io.guard("delete", self.store.delete, cand.entry_id)
            return None
        self.stats["hits"] += 1
        notes: dict[str, Any] = {
            "similarity": round(cand.similarity, 6),
            "score": round(decision.score, 6),
            "threshold": round(decision.threshold, 6),
            "max_false_hit_rate": self.max_false_hit_rate,
            "cached_question_text": cand.question,  # a "_text" note: dropped from records unless record_text
            "entry_id": cand.entry_id,
            "verified": verified,
        }
        if decision.sampled:
            notes["cache_verified"] = True
        return result.with_notes(**notes)

    def _payload(self, call: Call, plan: Plan, result: Result) -> dict[str, Any] | None:
        reason = result_skip_reason(result, cache_tool_calls=self.rules.cache_tool_calls, api=call.api)
        if reason is not None:
            self.stats[f"not_stored:{reason}"] += 1
            return None
        try:
            doc = result_to_json(result)
        except SerializationError as exc:
            self.stats["not_stored:unserializable"] += 1
            warn_once(f"semantic-serialize:{type(result.raw).__name__}", f"costkit: cannot cache answer: {exc}")
            return None
        return {
            "q": plan.query,
            "result": doc,
            "at": time.time(),
            "ns": self.rules.namespace,
            "tags": {n: v for n, v in call.tags.as_dict().items() if n != "idempotency_key"},
            **self.rules.sharing.stamp(call),
        }

    # -- the flow -------------------------------------------------------------------------
    def flow(self, call: Call) -> Generator[Step, Any, Result]:
        plan = self.plan(call)
        if plan is None:
            return (yield call)
        vector = yield self.io.embed(plan.query, call)
        if vector is None:
            return (yield call)
        found = yield self.io.store("search", plan.key, vector, self.top_k or plan.calibration.top_k)
        candidates = [] if found is FAILED else [Candidate(float(s), i, p) for s, i, p in found or ()]
        decision = self.decide(plan, self.rank(plan, candidates), call)
        cand = decision.candidate
        if decision.new_asker is not None and cand is not None:
            yield self.io.store("append", cand.entry_id, USERS, [decision.new_asker], cap=KEEP)
        verified = decision.action == "verify"
        if verified and cand is not None:
            ok = yield self.io.verify(plan.query, cand)
            self.stats["verified_yes" if ok else "verified_no"] += 1
            yield self.io.store("append", cand.entry_id, YES if ok else NO, [float(decision.score)], cap=KEEP)
            if decision.sampled:
                self.stats["sampled"] += 1
                self.stats["sampled_refuted"] += not ok
                if not ok:
                    call = call.with_notes(cache_verified=False)  # the record of the provider call says so
            decision = attrs.evolve(decision, action="hit" if ok else "miss")
        if decision.action == "hit":
            hit = self._hit_result(call, plan, decision, verified)
            if hit is not None:
                return hit
        self.stats["misses"] += 1
        if decision.unshared:
            self.stats["not_shared"] += 1
            if cand is not None and cand.question == plan.query:
                # the same words: the asker was counted on that entry; a twin entry would split the count
                return (yield call)
        result = yield call
        if result.stream is not None:
            result.when_complete(lambda final: self._schedule_store(call, plan, vector, final))
            return result
        yield from self._write(call, plan, vector, result)
        return result

    def _write(self, call: Call, plan: Plan, vector: np.ndarray, result: Result) -> Generator[Step, Any, None]:
        payload = self._payload(call, plan, result)
        if payload is None:
            return
        added = yield self.io.store("add", plan.key, vector, payload, plan.ttl)
        if added is None or added is FAILED:  # the pgvector store answers None for a dropped write
            self.stats["not_stored:store_failed"] += 1
            return
        self.stats["stored"] += 1
        if (self.stats["stored"] - 1) % self.SIZE_CHECK_EVERY == 0:
            self._check_partition_size(plan)

    def _schedule_store(self, call: Call, plan: Plan, vector: np.ndarray, result: Result) -> None:
        """A stream's answer is stored when the stream ends: in a task when a loop runs, else now."""
        from ..._pipeline import adrive

        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            drive(self._write(call, plan, vector, result))
            return
        task = loop.create_task(adrive(self._write(call, plan, vector, result)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _check_partition_size(self, plan: Plan) -> None:
        """Warn once when a partition outgrows what its calibration measured (the bound assumes no more)."""
        count = getattr(self.store, "count", None)
        if count is None:
            return
        n = self.io.guard("count", count, plan.key)
        limit = 2 * plan.calibration.n_entries
        if isinstance(n, int) and n > limit:
            warn_once(
                f"semantic-partition-size:{id(plan.calibration)}",
                f"costkit: a semantic-cache partition holds {n} entries, more than twice the "
                f"{plan.calibration.n_entries} its calibration measured; more entries mean more near neighbours "
                "that are different questions, so recalibrate with a cache of this size to keep max_false_hit_rate",
            )

    # -- direct use -----------------------------------------------------------------------
    def lookup(self, call: Call) -> Match | None:
        """The best candidate for ``call`` and whether it clears the threshold, without calling anything.

        The verifier is not consulted (``hit`` is the unverified decision). None when the call is
        not cacheable or its partition is empty.
        """
        plan = self.plan(call)
        if plan is None:
            return None
        vector = drive(one_effect(self.io.embed(plan.query, None)))
        if vector is None:
            return None
        found = drive(one_effect(self.io.store("search", plan.key, vector, self.top_k or plan.calibration.top_k)))
        candidates = [] if found is FAILED else [Candidate(float(s), i, p) for s, i, p in found or ()]
        ranked = self.rank(plan, candidates)
        if ranked is None:
            return None
        score, cand = ranked
        t = self.entry_threshold(plan, cand.payload)
        return Match(
            question=cand.question,
            similarity=cand.similarity,
            score=score,
            threshold=t,
            hit=score >= t,
            entry_id=cand.entry_id,
        )

    def add(self, call: Call, result: Result) -> bool:
        """Store ``result`` as the answer to ``call`` without a lookup (warming a cache); False if not stored."""
        plan = self.plan(call)
        vector = drive(one_effect(self.io.embed(plan.query, None))) if plan is not None else None
        if plan is None or vector is None:
            return False
        before = self.stats["stored"]
        drive(self._write(call, plan, vector, result))
        return self.stats["stored"] > before

    # -- invalidation ---------------------------------------------------------------------
    def invalidate(self, **tags: str) -> int:
        """Drop entries of this cache carrying any of the given tags (e.g. ``corpus_version="v3"``)."""
        self.rules.invalidation_labels(tags)  # validates the names
        ns = self.rules.namespace

        def doomed(payload: Mapping[str, Any]) -> bool:
            have = payload.get("tags") or {}
            return payload.get("ns") == ns and any(have.get(n) == v for n, v in tags.items())

        return int(self._delete_where(doomed))

    def clear(self) -> int:
        """Drop every entry of this cache's namespace."""
        ns = self.rules.namespace
        return int(self._delete_where(lambda p: p.get("ns") == ns))

    def _delete_where(self, predicate: Callable[[Mapping[str, Any]], bool]) -> int:
        delete_where = getattr(self.store, "delete_where", None)
        if delete_where is not None:
            n = self.io.guard("invalidate", delete_where, predicate)
            return 0 if n is FAILED else int(n or 0)
        clear = getattr(self.store, "clear", None)
        if clear is None:
            raise ConfigError("store", "this store supports neither delete_where nor clear")
        n = self.io.guard("invalidate", clear, self.rules.namespace)
        return 0 if n is FAILED else int(n or 0)


__all__ = ["Decision", "Match", "Plan", "SemanticCache"]
