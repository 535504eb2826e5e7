"""SemanticCache: answer a question asked before *in other words*, at a false-hit rate you choose.

``SemanticCache(max_false_hit_rate=0.02)`` embeds the last user turn, finds the nearest cached
questions **inside the call's partition**, rescores them (see :mod:`.calibration`) and answers from
the best one only if its score clears the threshold that calibration measured for that rate.

* **Partitions**: an entry can only match a call with the same tenant (and user if
  ``scope_user``), system prompt, requested model, prompt_version, corpus_version, tool schema and
  every other output-changing parameter, and by default the same earlier turns (only the last user
  turn is matched semantically; ``history="ignore"`` matches it alone). The partition is the
  exact-cache key of the call with its last user turn blanked, so it is exact, not approximate.
* **The threshold** comes from a :class:`~.calibration.Calibration`: the one shipped for the
  bundled embedder, one you pass, or one per ``tags.feature`` (``calibrations={"faq": cal}``,
  or ``cache.calibrate(pairs, feature="faq")``) measured on your own labeled pairs.
* **Verifier** (optional): a callable ``(query, cached_question, cached_answer) -> bool`` (or
  :class:`LLMJudge`) asked about candidates that score between a looser threshold and the calibrated
  one; confirmed ones are served. Its answers adapt each entry online (vCache-style): a refuted
  score blocks direct hits on that entry at or below it; after ``min_confirmations`` confirmations
  an entry is served directly down to its lowest confirmed score.
* What is not cached, TTL and failure handling are the exact cache's (:mod:`.exact`).

Stores: the default keeps entries in process (a faiss :class:`~.vector_index.VectorIndex` per
partition); ``store="some/dir"`` also writes them to disk and reloads them; for many processes and
hosts pass a :mod:`.pgvector_store` store (Postgres + pgvector). A failing store is a miss plus one warning.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import math
import threading
import time
import warnings
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from ..._call import SOURCE_SEMANTIC_CACHE, Call, Result, content_text
from ..._pipeline import ANext, Next
from ..._serialize import SerializationError, result_from_json, result_to_json
from ..._warn import warn_once
from ...errors import ConfigError
from .calibration import Calibration, calibrate, check_rate, default_calibration
from .exact import CacheRules, request_skip_reason, result_skip_reason
from .keys import exact_key
from .stores import DiskStore

_FAILED: Any = object()  # what a guarded store operation returns when the store failed
_BLANK = "\x00costkit:semantic-turn\x00"
Candidate = tuple[float, Any, Mapping[str, Any]]  # (cosine, entry id, payload)


# ----------------------------------------------------------------------------------- partitions


def last_user_index(call: Call) -> int | None:
    for i in range(len(call.messages) - 1, -1, -1):
        if call.messages[i].get("role") == "user":
            return i
    return None


def semantic_query(call: Call) -> str | None:
    """The text matched semantically: the last user turn, if it is plain text (images etc. are not matched)."""
    i = last_user_index(call)
    if i is None:
        return None
    content = call.messages[i].get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list | tuple) and all(
        isinstance(p, str) or (isinstance(p, Mapping) and p.get("type") in ("text", "input_text")) for p in content
    ):
        return content_text(content)
    return None


def partition_key(call: Call, *, scope_user: bool = False, namespace: str = "semantic", history: str = "exact") -> str:
    """Everything but the last user turn, hashed exactly: only entries with the same key can match."""
    i = last_user_index(call)
    messages = list(call.messages)
    if i is not None:
        messages[i] = {**messages[i], "content": _BLANK}
        if history == "ignore":
            messages = [m for j, m in enumerate(messages) if j >= i or m.get("role") in ("system", "developer")]
    return exact_key(call.evolve(messages=tuple(messages)), scope_user=scope_user, namespace=namespace)


# ------------------------------------------------------------------------------------- stores


class LocalSemanticStore:
    """Entries in this process: one faiss VectorIndex per partition, payloads in a dict.

    With ``directory`` every entry is also written (JSON, vector included) to a :class:`DiskStore`
    there; :meth:`save` / :meth:`close` write each partition's faiss index beside them. Reopening
    loads a saved index when it holds exactly the stored entries and otherwise (missing, stale,
    corrupt) rebuilds it from the stored vectors, so a lost index file never loses the cache.
    Other processes do not see new entries until they reopen the directory: for live sharing
    across processes use the Postgres + pgvector store.
    """

    def __init__(self, directory: str | Path | None = None) -> None:
        self.directory = Path(directory) if directory is not None else None
        self._disk = DiskStore(self.directory / "entries") if self.directory is not None else None
        self._indexes: dict[str, Any] = {}
        self._payloads: dict[int, dict[str, Any]] = {}
        self._partition_of: dict[int, str] = {}
        self._lock = threading.RLock()
        self._next_id = 1
        self._loaded = self._disk is None
        self.rebuilt = 0  # partitions whose index was rebuilt from stored vectors when reopened

    # -- persistence ----------------------------------------------------------------------
    def _load(self) -> None:
        if self._loaded:
            return
        with self._lock:
            if self._loaded:
                return
            self._loaded = True
            assert self._disk is not None and self.directory is not None
            db = self._disk._db()
            now = time.time()
            by_partition: dict[str, list[tuple[int, list[float], dict[str, Any]]]] = {}
            for key in list(db.iterkeys()):
                doc = self._disk.get(key)
                if doc is None or not isinstance(doc.get("vec"), list):
                    continue
                if doc.get("exp") is not None and doc["exp"] <= now:
                    self._disk.delete(key)
                    continue
                by_partition.setdefault(str(doc["partition"]), []).append((int(key), doc["vec"], doc))
            for partition, rows in by_partition.items():
                ids = np.array([r[0] for r in rows], dtype=np.int64)
                vecs = np.asarray([r[1] for r in rows], dtype=np.float32)
                index = self._saved_index(partition, ids, vecs.shape[1])
                if index is None:  # none saved, stale or corrupt: rebuild from the stored vectors
                    self.rebuilt += 1
                    index = self._index(partition, vecs.shape[1])
                    index.add(ids, vecs)
                self._indexes[partition] = index
                for entry_id, _vec, doc in rows:
                    self._payloads[entry_id] = doc
                    self._partition_of[entry_id] = partition
                    self._next_id = max(self._next_id, entry_id + 1)

    def _index_dir(self, partition: str) -> Path:
        assert self.directory is not None
        return self.directory / "index" / partition[:32]

    def _saved_index(self, partition: str, ids: np.ndarray, dim: int) -> Any:
        """The index saved for ``partition`` if it holds exactly these entries, else None."""
        from .vector_index import VectorIndex

        path = self._index_dir(partition)
        if not path.exists():
            return None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a corrupt save is rebuilt here, not reported twice
                index = VectorIndex.open(path, dim)
        except Exception:
            return None
        if len(index) != len(ids) or not np.array_equal(np.sort(index.ids()), np.sort(ids)):
            return None
        return index

    def save(self) -> None:
        """Write each partition's faiss index next to the entries (reopening then skips the rebuild)."""
        if self.directory is None:
            return
        with self._lock:
            items = list(self._indexes.items())
        for partition, index in items:
            self._index_dir(partition).parent.mkdir(parents=True, exist_ok=True)
            index.save(self._index_dir(partition))

    def close(self) -> None:
        self.save()
        if self._disk is not None:
            self._disk.close()

    def _index(self, partition: str, dim: int) -> Any:
        index = self._indexes.get(partition)
        if index is None:
            from .vector_index import VectorIndex

            index = self._indexes[partition] = VectorIndex(dim)
        return index

    def _insert(self, entry_id: int, partition: str, vector: np.ndarray, payload: dict[str, Any]) -> None:
        self._index(partition, vector.shape[-1]).add(np.array([entry_id], dtype=np.int64), vector.reshape(1, -1))
        self._payloads[entry_id] = payload
        self._partition_of[entry_id] = partition
        self._next_id = max(self._next_id, entry_id + 1)

    # -- the backend interface (shared with the pgvector store) ---------------------------
    def add(self, partition: str, vector: np.ndarray, payload: Mapping[str, Any], ttl_s: float | None = None) -> int:
        self._load()
        vec = np.asarray(vector, dtype=np.float32).reshape(-1)
        doc = dict(payload)
        doc["exp"] = time.time() + ttl_s if ttl_s is not None else None
        with self._lock:
            entry_id = self._next_id
            self._next_id += 1
            self._insert(entry_id, partition, vec, doc)
        if self._disk is not None:
            self._disk.set(str(entry_id), {**doc, "partition": partition, "vec": [float(x) for x in vec]}, ttl_s=ttl_s)
        return entry_id

    def search(self, partition: str, vector: np.ndarray, k: int) -> list[Candidate]:
        self._load()
        index = self._indexes.get(partition)
        if index is None or len(index) == 0:
            return []
        scores, ids = index.search(np.asarray(vector, dtype=np.float32).reshape(1, -1), k)
        now = time.time()
        out: list[Candidate] = []
        expired = []
        for score, entry_id in zip(scores[0], ids[0], strict=True):
            if entry_id < 0:
                continue
            payload = self._payloads.get(int(entry_id))
            if payload is None:
                continue
            if payload.get("exp") is not None and payload["exp"] <= now:
                expired.append(int(entry_id))
                continue
            out.append((float(score), int(entry_id), payload))
        for entry_id in expired:
            self.delete(entry_id)
        return out

    def delete(self, entry_id: Any) -> None:
        with self._lock:
            partition = self._partition_of.pop(int(entry_id), None)
            self._payloads.pop(int(entry_id), None)
            if partition is not None:
                self._indexes[partition].remove(np.array([int(entry_id)], dtype=np.int64))
        if self._disk is not None:
            self._disk.delete(str(entry_id))

    def delete_where(self, predicate: Callable[[Mapping[str, Any]], bool]) -> int:
        self._load()
        with self._lock:
            doomed = [i for i, p in self._payloads.items() if predicate(p)]
        for entry_id in doomed:
            self.delete(entry_id)
        return len(doomed)

    def count(self, partition: str) -> int:
        index = self._indexes.get(partition)
        return len(index) if index is not None else 0

    def __len__(self) -> int:
        self._load()
        return len(self._payloads)

    def clear(self) -> None:
        with self._lock:
            self._indexes.clear()
            self._payloads.clear()
            self._partition_of.clear()
        if self._disk is not None:
            self._disk.clear()


def as_semantic_store(store: Any) -> Any:
    if store is None:
        return LocalSemanticStore()
    if isinstance(store, str | Path):
        return LocalSemanticStore(store)
    if all(callable(getattr(store, m, None)) for m in ("add", "search")):
        return store
    raise ConfigError("store", f"expected a directory, a LocalSemanticStore or a pgvector store; got {store!r}")


# ------------------------------------------------------------------------------------ verifier


class LLMJudge:
    """A verifier that asks a cheap model whether two questions ask the same thing.

    ``client`` is an openai-shaped client (wrap it with costkit so the judge's calls are recorded
    and priced). It answers False on any error: a failing judge makes misses, never wrong hits.
    """

    PROMPT = (
        "Do these two questions ask for the same information, so that one answer serves both? "
        "Answer only yes or no.\nQuestion 1: {a}\nQuestion 2: {b}"
    )

    def __init__(self, client: Any, model: str = "gpt-4o-mini") -> None:
        if not hasattr(getattr(getattr(client, "chat", None), "completions", None), "create"):
            raise ConfigError("client", "needs an openai-shaped client with client.chat.completions.create")
        self.client = client
        self.model = model
        self.errors = 0

    def __call__(self, query: str, cached_question: str, cached_answer: str | None = None) -> bool:
        try:
            response = self.client.chat.completions.create(
                model=self.model,
                messages=[{"role": "user", "content": self.PROMPT.format(a=query, b=cached_question)}],
                temperature=0,
                max_tokens=2,
            )
            text = (response.choices[0].message.content or "").strip().lower()
        except Exception as exc:
            self.errors += 1
            warn_once(
                f"llm-judge:{type(exc).__name__}", f"costkit: the cache's LLM judge failed ({exc!r}); treating as no"
            )
            return False
        return text.startswith("yes")


@attrs.frozen(kw_only=True)
class Match:
    """What a lookup found: the best cached question, its similarity and score, and the decision."""

    question: str
    similarity: float
    score: float
    threshold: float
    hit: bool
    entry_id: Any


@attrs.define
class EntryState:
    """What the verifier said about one entry (kept in this process)."""

    confirmed: list[float] = attrs.field(factory=list)
    refuted: list[float] = attrs.field(factory=list)


# -------------------------------------------------------------------------------------- policy


@attrs.frozen(slots=True)
class _Plan:
    key: str  # partition
    query: str
    ttl: float | None
    calibration: Calibration
    threshold: float
    explore: float


class SemanticCache:
    """The semantic cache policy; see the module docstring.

    ``max_false_hit_rate``: δ, the promised false-hit rate. ``embedder``: None (bundled static
    model), an Embedder, a name or a callable. ``store``: None (in process), a directory, or a
    pgvector store. ``calibration``: a :class:`Calibration` (or a path to one) for this embedder;
    None uses the one shipped for the bundled embedder. ``calibrations``: per ``tags.feature``.
    ``verifier``: optional callable ``(query, cached_question, cached_answer) -> bool``;
    ``verify_band``: the looser false-hit rate whose threshold starts the band the verifier is
    asked about (default 0.25); ``verify_all``: also verify candidates above the threshold.
    ``history``: ``"exact"`` (earlier turns must match) or ``"ignore"``.
    """

    def __init__(
        self,
        max_false_hit_rate: float = 0.02,
        embedder: Any = None,
        store: Any = None,
        *,
        calibration: Calibration | str | Path | None = None,
        calibrations: Mapping[str, Calibration] | None = None,
        verifier: Callable[..., Any] | None = None,
        verify_band: float = 0.25,
        verify_all: bool = False,
        min_confirmations: int = 3,
        ttl_s: float | None = None,
        ttl_by_feature: Mapping[str, float] | None = None,
        ttl_by_route: Mapping[str, float] | None = None,
        namespace: str = "semantic",
        scope_user: bool = False,
        history: str = "exact",
        cache_sampled: bool = False,
        cache_tool_calls: bool = False,
        top_k: int | None = None,
    ) -> None:
        from ...embedders import as_embedder

        self.max_false_hit_rate = check_rate(max_false_hit_rate)
        self.verify_band = check_rate(verify_band, "verify_band")
        if self.verify_band < self.max_false_hit_rate:
            raise ConfigError("verify_band", "must be >= max_false_hit_rate (it is the looser rate)")
        if history not in ("exact", "ignore"):
            raise ConfigError("history", f"must be 'exact' or 'ignore', got {history!r}")
        if verifier is not None and not callable(verifier):
            raise ConfigError("verifier", "must be a callable (query, cached_question, cached_answer) -> bool")
        if not isinstance(min_confirmations, int) or min_confirmations < 1:
            raise ConfigError("min_confirmations", f"must be an int >= 1, got {min_confirmations!r}")
        if top_k is not None and (not isinstance(top_k, int) or top_k < 1):
            raise ConfigError("top_k", f"must be an int >= 1, got {top_k!r}")
        self.embedder = as_embedder(embedder)
        self.store = as_semantic_store(store)
        self.rules = CacheRules(
            namespace=namespace,
            ttl_s=ttl_s,
            ttl_by_feature=ttl_by_feature,
            ttl_by_route=ttl_by_route,
            cache_sampled=cache_sampled,
            cache_tool_calls=cache_tool_calls,
        )
        self.calibration = self._check_calibration("calibration", self._resolve(calibration))
        self.calibrations: dict[str, Calibration] = {
            str(f): self._check_calibration(f"calibrations[{f!r}]", self._resolve(c))
            for f, c in (calibrations or {}).items()
        }
        self.verifier = verifier
        self.verify_all = bool(verify_all)
        self.min_confirmations = min_confirmations
        self.scope_user = bool(scope_user)
        self.history = history
        self.top_k = top_k
        self.stats: Counter[str] = Counter()
        self.entries: dict[Any, EntryState] = {}
        self._thresholds: dict[tuple[int, float], tuple[Calibration, float]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._verifier_async = verifier is not None and inspect.iscoroutinefunction(verifier)

    # -- configuration --------------------------------------------------------------------
    def _resolve(self, cal: Any) -> Calibration:
        if cal is None:
            found = default_calibration(self.embedder.name)
            if found is None:
                raise ConfigError(
                    "calibration",
                    f"no calibration ships for embedder {self.embedder.name!r}: measure one on labeled pairs with "
                    "costkit.policies.cache.calibration.calibrate(pairs, embedder) and pass calibration=",
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

    # -- shared, I/O-free steps -----------------------------------------------------------
    def _plan(self, call: Call) -> _Plan | None:
        reason = request_skip_reason(call, cache_sampled=self.rules.cache_sampled)
        query = semantic_query(call) if reason is None else None
        if reason is None and query is None:
            reason = "no_text_turn"
        ttl = self.rules.ttl_for(call) if reason is None else None
        if reason is None and ttl is not None and ttl <= 0:
            reason = "ttl_zero"
        if reason is not None or query is None:
            self.stats[f"bypass:{reason}"] += 1
            return None
        feature = call.tags.feature
        cal = self.calibrations.get(feature, self.calibration) if feature is not None else self.calibration
        key = partition_key(call, scope_user=self.scope_user, namespace=self.rules.namespace, history=self.history)
        return _Plan(
            key=key,
            query=query,
            ttl=ttl,
            calibration=cal,
            threshold=self.threshold_for(cal, self.max_false_hit_rate),
            explore=self.threshold_for(cal, self.verify_band) if self.verifier is not None else math.inf,
        )

    def _rank(self, plan: _Plan, candidates: Sequence[Candidate]) -> tuple[float, Candidate] | None:
        """The best candidate by the calibration's scorer (candidates sorted by cosine first)."""
        cands = sorted(candidates, key=lambda c: -c[0])[: plan.calibration.top_k]
        texts = [str(c[2].get("q", "")) for c in cands]
        if not cands:
            return None
        scores = plan.calibration.scorer.score_candidates(plan.query, texts, [c[0] for c in cands])
        best = int(np.argmax(scores))
        return scores[best], cands[best]

    def _entry_threshold(self, plan: _Plan, entry_id: Any) -> float:
        """The calibrated threshold, moved by what the verifier said about this entry."""
        state = self.entries.get(entry_id)
        t = plan.threshold
        if state is None:
            return t
        if len(state.confirmed) >= self.min_confirmations and not state.refuted:
            t = min(t, max(min(state.confirmed), plan.explore))
        if state.refuted:
            t = max(t, math.nextafter(max(state.refuted), math.inf))
        return t

    def _decide(self, plan: _Plan, ranked: tuple[float, Candidate] | None) -> tuple[str, float, Candidate | None]:
        """'hit', 'verify' or 'miss' for the best candidate."""
        if ranked is None:
            return "miss", -math.inf, None
        score, cand = ranked
        t = self._entry_threshold(plan, cand[1])
        if score >= t:
            return ("verify" if self.verify_all and self.verifier is not None else "hit"), score, cand
        state = self.entries.get(cand[1])
        blocked = state is not None and state.refuted and score <= max(state.refuted)
        if self.verifier is not None and score >= plan.explore and not blocked:
            return "verify", score, cand
        return "miss", score, cand

    def _record_verdict(self, entry_id: Any, score: float, ok: bool) -> None:
        state = self.entries.setdefault(entry_id, EntryState())
        (state.confirmed if ok else state.refuted).append(score)
        self.stats["verified_yes" if ok else "verified_no"] += 1

    def _hit(self, plan: _Plan, score: float, cand: Candidate, verified: bool) -> Result | None:
        cosine, entry_id, payload = cand
        try:
            result = result_from_json(payload["result"], source=SOURCE_SEMANTIC_CACHE)
        except (SerializationError, KeyError, TypeError) as exc:
            self.stats["corrupt"] += 1
            warn_once(f"semantic-cache-corrupt:{type(exc).__name__}", f"costkit: unreadable semantic entry ({exc})")
            self._guard("delete", self.store.delete, entry_id)
            return None
        self.stats["hits"] += 1
        return result.with_notes(
            similarity=round(cosine, 6),
            score=round(score, 6),
            threshold=round(self._entry_threshold(plan, entry_id), 6),
            max_false_hit_rate=self.max_false_hit_rate,
            cached_question=payload.get("q"),
            entry_id=entry_id,
            verified=verified,
        )

    def _payload(self, call: Call, plan: _Plan, result: Result) -> dict[str, Any] | None:
        reason = result_skip_reason(result, cache_tool_calls=self.rules.cache_tool_calls)
        if reason is not None:
            self.stats[f"not_stored:{reason}"] += 1
            return None
        try:
            doc = result_to_json(result)
        except SerializationError as exc:
            self.stats["not_stored:unserializable"] += 1
            warn_once(f"semantic-serialize:{type(result.raw).__name__}", f"costkit: cannot cache answer: {exc}")
            return None
        tags = call.tags
        return {
            "q": plan.query,
            "result": doc,
            "at": time.time(),
            "ns": self.rules.namespace,
            "tags": {n: v for n, v in tags.as_dict().items() if n != "idempotency_key"},
        }

    def _guard(self, op: str, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return fn(*args)
        except Exception as exc:
            self.stats[f"store_error:{op}"] += 1
            warn_once(
                f"semantic-store:{op}:{type(exc).__name__}",
                f"costkit: semantic cache store failed on {op} ({exc!r}); treating it as a miss",
            )
            return _FAILED

    @staticmethod
    def _costs_of(call: Call | None) -> contextlib.AbstractContextManager[None]:
        """Embeddings bought from a provider for ``call`` become "embedding" records of its request."""
        if call is None:
            return contextlib.nullcontext()
        from ..._recorder import record_side_call
        from ...embedders import reporting_costs_to

        def report(cost: Any) -> None:
            record_side_call(
                call,
                kind="embedding",
                model=cost.model,
                provider=cost.provider,
                input_tokens=cost.input_tokens,
                cost_usd=cost.cost_usd,
                latency_ms=cost.latency_ms,
            )

        return reporting_costs_to(report)

    def _embed(self, text: str, call: Call | None = None) -> np.ndarray | None:
        try:
            with self._costs_of(call):
                return np.asarray(self.embedder([text]), dtype=np.float32)[0]
        except Exception as exc:
            self.stats["embed_error"] += 1
            warn_once(f"semantic-embed:{type(exc).__name__}", f"costkit: embedding failed ({exc!r}); cache bypassed")
            return None

    def _store_sync(self, call: Call, plan: _Plan, vector: np.ndarray, result: Result) -> None:
        payload = self._payload(call, plan, result)
        if payload is None:
            return
        added = self._guard("add", self.store.add, plan.key, vector, payload, plan.ttl)
        if added is None or added is _FAILED:  # the pgvector store answers None for a dropped write
            self.stats["not_stored:store_failed"] += 1
            return
        self.stats["stored"] += 1
        if (self.stats["stored"] - 1) % self.SIZE_CHECK_EVERY == 0:
            self._check_partition_size(plan)

    SIZE_CHECK_EVERY = 256

    def _check_partition_size(self, plan: _Plan) -> None:
        """Warn once when a partition outgrows what its calibration measured (the bound assumes no more)."""
        count = getattr(self.store, "count", None)
        if count is None:
            return
        n = self._guard("count", count, plan.key)
        limit = 2 * plan.calibration.n_entries
        if isinstance(n, int) and n > limit:
            warn_once(
                f"semantic-partition-size:{id(plan.calibration)}",
                f"costkit: a semantic-cache partition holds {n} entries, more than twice the "
                f"{plan.calibration.n_entries} its calibration measured; more entries mean more near neighbours "
                "that are different questions, so recalibrate with a cache of this size to keep max_false_hit_rate",
            )

    def _search(self, plan: _Plan, vector: np.ndarray) -> list[Candidate]:
        k = self.top_k or plan.calibration.top_k
        found = self._guard("search", self.store.search, plan.key, vector, k)
        return [] if found is _FAILED else list(found or [])

    # -- direct use -----------------------------------------------------------------------
    def lookup(self, call: Call) -> Match | None:
        """The best candidate for ``call`` and whether it clears the threshold, without calling anything.

        The verifier is not consulted (``hit`` is the unverified decision). None when the call is
        not cacheable or its partition is empty.
        """
        plan = self._plan(call)
        vector = self._embed(plan.query) if plan is not None else None
        if plan is None or vector is None:
            return None
        ranked = self._rank(plan, self._search(plan, vector))
        if ranked is None:
            return None
        score, (cosine, entry_id, payload) = ranked
        t = self._entry_threshold(plan, entry_id)
        return Match(
            question=str(payload.get("q", "")),
            similarity=cosine,
            score=score,
            threshold=t,
            hit=score >= t,
            entry_id=entry_id,
        )

    def add(self, call: Call, result: Result) -> bool:
        """Store ``result`` as the answer to ``call`` without a lookup (warming a cache); False if not stored."""
        plan = self._plan(call)
        vector = self._embed(plan.query) if plan is not None else None
        if plan is None or vector is None:
            return False
        before = self.stats["stored"]
        self._store_sync(call, plan, vector, result)
        return self.stats["stored"] > before

    # -- the policy -----------------------------------------------------------------------
    def handle(self, call: Call, next: Next) -> Result:
        plan = self._plan(call)
        if plan is None:
            return next(call)
        vector = self._embed(plan.query, call)
        if vector is None:
            return next(call)
        verdict, score, cand = self._decide(plan, self._rank(plan, self._search(plan, vector)))
        verified = verdict == "verify"
        if verdict == "verify" and cand is not None:
            ok = bool(self.verifier(plan.query, cand[2].get("q", ""), _answer_text(cand[2])))  # type: ignore[misc]
            self._record_verdict(cand[1], score, ok)
            verdict = "hit" if ok else "miss"
        if verdict == "hit" and cand is not None:
            hit = self._hit(plan, score, cand, verified=verified)
            if hit is not None:
                return hit
        self.stats["misses"] += 1
        result = next(call)
        result.when_complete(lambda final: self._store_sync(call, plan, vector, final))
        return result

    async def ahandle(self, call: Call, anext: ANext) -> Result:
        plan = self._plan(call)
        if plan is None:
            return await anext(call)
        vector = await self._aembed(plan.query, call)
        if vector is None:
            return await anext(call)
        candidates = await self._asearch(plan, vector)
        verdict, score, cand = self._decide(plan, self._rank(plan, candidates))
        verified = verdict == "verify"
        if verdict == "verify" and cand is not None:
            ok = bool(await self._averify(plan.query, cand[2]))
            self._record_verdict(cand[1], score, ok)
            verdict = "hit" if ok else "miss"
        if verdict == "hit" and cand is not None:
            hit = self._hit(plan, score, cand, verified=verified)
            if hit is not None:
                return hit
        self.stats["misses"] += 1
        result = await anext(call)
        if result.stream is None:
            await self._astore(call, plan, vector, result)
        else:
            result.when_complete(lambda final: self._schedule_store(call, plan, vector, final))
        return result

    # -- async I/O ------------------------------------------------------------------------
    async def _aembed(self, text: str, call: Call | None = None) -> np.ndarray | None:
        aembed = getattr(self.embedder, "aembed", None)
        if aembed is None:
            return self._embed(text, call)  # the bundled static model embeds one question in microseconds
        try:
            with self._costs_of(call):
                return np.asarray(await aembed([text]), dtype=np.float32)[0]
        except Exception as exc:
            self.stats["embed_error"] += 1
            warn_once(f"semantic-embed:{type(exc).__name__}", f"costkit: embedding failed ({exc!r}); cache bypassed")
            return None

    async def _asearch(self, plan: _Plan, vector: np.ndarray) -> list[Candidate]:
        asearch = getattr(self.store, "asearch", None)
        if isinstance(self.store, LocalSemanticStore):
            return self._search(plan, vector)  # in-memory faiss: no I/O
        if asearch is not None:
            try:
                return list(await asearch(plan.key, vector, self.top_k or plan.calibration.top_k))
            except Exception as exc:
                self._guard("search", _raise, exc)
                return []
        return await asyncio.to_thread(self._search, plan, vector)

    async def _averify(self, query: str, payload: Mapping[str, Any]) -> bool:
        assert self.verifier is not None
        if self._verifier_async:
            return bool(await self.verifier(query, payload.get("q", ""), _answer_text(payload)))
        return bool(await asyncio.to_thread(self.verifier, query, payload.get("q", ""), _answer_text(payload)))

    async def _astore(self, call: Call, plan: _Plan, vector: np.ndarray, result: Result) -> None:
        if isinstance(self.store, LocalSemanticStore) and self.store.directory is None:
            self._store_sync(call, plan, vector, result)
        else:
            await asyncio.to_thread(self._store_sync, call, plan, vector, result)

    def _schedule_store(self, call: Call, plan: _Plan, vector: np.ndarray, result: Result) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._store_sync(call, plan, vector, result)
            return
        task = loop.create_task(self._astore(call, plan, vector, result))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

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
        self.entries.clear()
        return int(self._delete_where(lambda p: p.get("ns") == ns))

    def _delete_where(self, predicate: Callable[[Mapping[str, Any]], bool]) -> int:
        delete_where = getattr(self.store, "delete_where", None)
        if delete_where is not None:
            n = self._guard("invalidate", delete_where, predicate)
            return 0 if n is _FAILED else int(n or 0)
        clear = getattr(self.store, "clear", None)
        if clear is None:
            raise ConfigError("store", "this store supports neither delete_where nor clear")
        n = self._guard("invalidate", clear, self.rules.namespace)
        return 0 if n is _FAILED else int(n or 0)


def _answer_text(payload: Mapping[str, Any]) -> str | None:
    result = payload.get("result")
    return result.get("text") if isinstance(result, Mapping) else None


def _raise(exc: BaseException) -> None:
    raise exc


__all__ = [
    "LLMJudge",
    "LocalSemanticStore",
    "Match",
    "SemanticCache",
    "partition_key",
    "semantic_query",
]
