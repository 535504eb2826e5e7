"""Calibration: turn labeled question pairs into a threshold that keeps the false-hit rate <= δ.

(One module because the pair features, the scorer fitted on them, the simulation of lookups and
the confidence bound are one procedure: each step's output is only meaningful to the next.)

A semantic cache answers a lookup when the best candidate's *score* clears a threshold. Which
threshold keeps wrong answers rare depends on the embedder, on the traffic and on how many
entries compete, so it is measured, not guessed:

1. **Simulate the cache on the user's labeled pairs** ``(cached question a, new question b,
   duplicate?)``: fill it with every ``a``, look up every ``b`` exactly as the cache does (top-k
   by cosine, rescored, best candidate). A pick is right when it is ``b``'s own ``a`` and the pair
   is a duplicate (or the same text as ``b``, or a pair labeled duplicate elsewhere); anything else
   it picks is a false hit. The false-hit rate at threshold t is wrong picks scoring >= t over all
   lookups, the definition the docs use.
2. **Score**: cosine alone, or (default) a small logistic model over the cosine and lexical
   agreement (content words only in one question, numbers that differ, character trigrams, ...),
   fitted on the same pairs with two-fold cross-fitting so the scores used for the threshold are
   out-of-fold.
3. **Threshold with a guarantee**: walking down from the highest score, keep lowering the threshold
   while the one-sided Clopper-Pearson upper bound (confidence 99% by default) of the false-hit rate
   stays <= δ, and stop at the first failure (fixed-sequence testing: one test at level 1 - confidence per step,
   valid without a multiple-testing correction). With that confidence the rate on new traffic of the
   same kind is <= δ.

The guarantee covers traffic like the calibration pairs and caches up to about as many entries as
the calibration had (``n_entries``): more entries means more chances of a near neighbour that is a
different question. Calibrate per feature / partition from your own pairs when traffic differs.
"""

from __future__ import annotations

import functools
import json
import math
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from ...errors import ConfigError

CALIBRATION_VERSION = 1
DEFAULT_TOP_K = 5

# ------------------------------------------------------------------------------------- features

_TOKEN = re.compile(r"[a-z0-9]+")
_STOP_WORDS = (
    "a an the of to in on for and or is are was were be been being do does did i you we my your me how what why "
    "when where which who whom can could should would will shall it its this that these those there their they "
    "he she his her with at by from as about into if so than then not no am has have had any some more most very "
    "just also get s t please tell"
)
_OPENER_WORDS = "how what why when where which who is are can do does should will would"
_STOP = frozenset(_STOP_WORDS.split())
_OPENERS = frozenset(_OPENER_WORDS.split())

FEATURES = (
    "cosine",
    "cosine_sq",
    "token_jaccard",
    "content_jaccard",
    "query_only_words",
    "entry_only_words",
    "same_content_words",
    "numbers_differ",
    "opener_differs",
    "length_log_ratio",
    "bias",
    "same_tokens",
    "trigram_jaccard",
    "content_cosine",
    "query_only_min_sim",
    "query_only_far",
    "entry_only_min_sim",
    "entry_only_far",
)
FAR = 0.6  # a word whose nearest counterpart in the other question is below this cosine has none


class _Lexicon:
    """Word and content-word vectors from the bundled static model, memoized.

    The soft word-match features use this fixed lexical resource whatever embedder the cache uses:
    it is offline, fast (tens of thousands of words per second) and the same at calibration and
    lookup time, so a calibration stays valid.
    """

    MAX = 200_000

    def __init__(self) -> None:
        self._vecs: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()
        self._model: Any = None

    def vectors(self, texts: Sequence[str]) -> list[np.ndarray]:
        missing = [t for t in dict.fromkeys(texts) if t not in self._vecs]
        if missing:
            if self._model is None:
                from ...embedders import default_embedder

                self._model = default_embedder()
            computed = np.asarray(self._model(missing), dtype=np.float32)
            with self._lock:
                if len(self._vecs) + len(missing) > self.MAX:
                    self._vecs.clear()
                self._vecs.update(zip(missing, computed, strict=True))
            return [self._vecs[t] if t in self._vecs else computed[missing.index(t)] for t in texts]
        return [self._vecs[t] for t in texts]


LEXICON = _Lexicon()


def _soft_match(words: Sequence[str], other: Sequence[str]) -> tuple[float, float]:
    """(lowest best-match cosine of ``words`` in ``other``, how many have no match above FAR)."""
    if not words:
        return 1.0, 0.0
    if not other:
        return 0.0, float(min(len(words), 5))
    vecs = LEXICON.vectors([*words, *other])
    a = np.stack(vecs[: len(words)])
    b = np.stack(vecs[len(words) :])
    best = (a @ b.T).max(axis=1)
    return float(best.min()), float(min(int((best < FAR).sum()), 5))


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


@functools.lru_cache(maxsize=65536)
def _text_info(text: str) -> tuple[tuple[str, ...], frozenset[str], frozenset[str], frozenset[str], frozenset[str]]:
    """Tokens, token set, content words, numbers and character trigrams of a text (memoized)."""
    toks = tuple(tokens(text))
    joined = " ".join(toks)
    tok_set = frozenset(toks)
    return (
        toks,
        tok_set,
        tok_set - _STOP,
        frozenset(w for w in tok_set if w.isdigit()),
        frozenset(joined[i : i + 3] for i in range(len(joined) - 2)),
    )


def pair_features(query: str, entry: str, cosine: float) -> list[float]:
    """The features of one (query, cached question) candidate, in :data:`FEATURES` order.

    Only features of the pair itself: nothing that depends on how many other entries the cache
    holds (a runner-up margin was tried and dropped: it inflates scores in small caches). The soft
    word-match features (content words of one question and their nearest word in the other) use the
    bundled static model as a fixed lexicon, whatever the cache's embedder.
    """
    tq, sq, cq, nq, gq = _text_info(query)
    te, se, ce, ne, ge = _text_info(entry)
    q_only, e_only = len(cq - ce), len(ce - cq)
    opener = bool(tq and te and tq[0] in _OPENERS and te[0] in _OPENERS and tq[0] != te[0])
    content_q = " ".join(sorted(cq)) or " ".join(tq)
    content_e = " ".join(sorted(ce)) or " ".join(te)
    vq, ve = LEXICON.vectors([content_q, content_e])
    q_min, q_far = _soft_match(sorted(cq - ce), sorted(ce))
    e_min, e_far = _soft_match(sorted(ce - cq), sorted(cq))
    return [
        cosine,
        cosine * cosine,
        len(sq & se) / max(1, len(sq | se)),
        len(cq & ce) / max(1, len(cq | ce)),
        float(min(q_only, 5)),
        float(min(e_only, 5)),
        float(q_only == 0 and e_only == 0),
        float(nq != ne),
        float(opener),
        abs(math.log((len(tq) + 1) / (len(te) + 1))),
        1.0,
        float(tq == te),
        len(gq & ge) / max(1, len(gq | ge)),
        float(vq @ ve),
        q_min,
        q_far,
        e_min,
        e_far,
    ]


@attrs.frozen(slots=True)
class Scorer:
    """Cosine (``weights`` None) or a logistic model's log-odds over :data:`FEATURES`.

    ``veto``: a candidate whose wording flips the query's meaning (:func:`.contrast.contrast`)
    scores -inf, whatever its similarity: it can never be served, at any threshold.
    """

    weights: tuple[float, ...] | None = None
    veto: bool = True

    @property
    def kind(self) -> str:
        return "cosine" if self.weights is None else "learned"

    def score_candidates(self, query: str, entries: Sequence[str], cosines: Sequence[float]) -> list[float]:
        """Scores of a query's top-k candidates, given in decreasing cosine order."""
        if self.weights is None or not entries:
            scores = [float(c) for c in cosines]
        else:
            w = np.asarray(self.weights, dtype=np.float64)
            rows = [pair_features(query, e, float(c)) for e, c in zip(entries, cosines, strict=True)]
            scores = [float(x) for x in np.asarray(rows) @ w]
        if self.veto:
            from .contrast import contrast

            scores = [-math.inf if contrast(query, e) else s for s, e in zip(scores, entries, strict=True)]
        return scores


def fit_logistic(x: np.ndarray, y: np.ndarray, *, l2: float = 1e-2, iterations: int = 30) -> np.ndarray:
    """L2-regularized logistic regression by Newton's method (a few features, no extra dependency)."""
    w = np.zeros(x.shape[1])
    eye = np.eye(x.shape[1]) * l2
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(x @ w, -30, 30)))
        grad = x.T @ (p - y) + l2 * w
        hess = (x.T * (p * (1 - p))) @ x + eye
        step = np.linalg.solve(hess, grad)
        w -= step
        if float(np.abs(step).max()) < 1e-8:
            break
    return w


# ------------------------------------------------------------------------------- the guarantee


def _binom_cdf(k: int, n: int, p: float) -> float:
    if p <= 0.0:
        return 1.0
    if p >= 1.0:
        return 1.0 if k >= n else 0.0
    lp, lq = math.log(p), math.log1p(-p)
    base = math.lgamma(n + 1)
    total = 0.0
    for i in range(k + 1):
        total += math.exp(base - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * lp + (n - i) * lq)
    return min(1.0, total)


def upper_bound(k: int, n: int, confidence: float) -> float:
    """One-sided Clopper-Pearson upper confidence bound of a rate with k events in n trials."""
    if n <= 0:
        return 1.0
    if k >= n:
        return 1.0
    alpha = 1.0 - confidence
    lo, hi = k / n, 1.0
    for _ in range(60):  # bisection: P(X <= k | p) is decreasing in p
        mid = (lo + hi) / 2
        if _binom_cdf(k, n, mid) > alpha:
            lo = mid
        else:
            hi = mid
    return hi


@functools.lru_cache(maxsize=256)
def max_allowed_wrong(n: int, delta: float, confidence: float) -> int:
    """The most wrong hits among ``n`` lookups whose rate's upper bound stays <= delta (-1: not even 0).

    The bound grows with the count, so walking the threshold down and stopping at the first count
    that fails (fixed-sequence testing) is the same as stopping once this many wrong hits are admitted.
    """
    if upper_bound(0, n, confidence) > delta:
        return -1
    lo, hi = 0, max(1, int(delta * n) + 1)
    while lo < hi:  # largest w with upper_bound(w) <= delta
        mid = (lo + hi + 1) // 2
        if upper_bound(mid, n, confidence) <= delta:
            lo = mid
        else:
            hi = mid - 1
    return lo


@attrs.frozen(kw_only=True)
class Calibration:
    """What a calibration measured: enough to pick a threshold for any δ and to say what to expect.

    ``right_scores`` / ``wrong_scores``: the scores of the cache's picks that were right / wrong
    (only those above the point where the false-hit rate passes 60% are kept); ``n_lookups``:
    all lookups (the false-hit rate's denominator); ``n_duplicates``: lookups whose question was
    cached; ``n_entries``: how many entries competed.
    """

    embedder: str
    scorer: Scorer
    n_lookups: int
    n_duplicates: int
    n_entries: int
    right_scores: tuple[float, ...]
    wrong_scores: tuple[float, ...]
    confidence: float = 0.99
    top_k: int = DEFAULT_TOP_K
    source: str = ""

    def __attrs_post_init__(self) -> None:
        if not 0.5 <= self.confidence < 1.0:
            raise ConfigError("confidence", f"must be in [0.5, 1), got {self.confidence!r}")

    def threshold(self, max_false_hit_rate: float) -> float:
        """The lowest score threshold whose false-hit rate is <= δ with ``confidence`` (inf: none is)."""
        delta = check_rate(max_false_hit_rate)
        allowed = max_allowed_wrong(self.n_lookups, delta, self.confidence)
        if allowed < 0:
            return math.inf
        picks = sorted(
            [(s, 0) for s in self.right_scores] + [(s, 1) for s in self.wrong_scores],
            key=lambda x: -x[0],
        )
        best = math.inf
        wrong = 0
        i = 0
        while i < len(picks):
            score = picks[i][0]
            while i < len(picks) and picks[i][0] == score:  # a threshold admits every pick at its score
                wrong += picks[i][1]
                i += 1
            if wrong > allowed:
                break
            best = score
        return best

    def thresholds_with_verifier(self, max_false_hit_rate: float, accuracy: float) -> tuple[float, float]:
        """(direct threshold, band start) for a verifier right with probability ``accuracy``.

        Hits at or above the direct threshold are served as they are; candidates in the band are
        served when the verifier confirms them, so a wrong one slips through with probability
        ``1 - accuracy``. The pair kept is the one answering the most right picks (direct ones,
        plus ``accuracy`` x the band's) while the expected wrong count -- wrong direct picks plus
        ``1 - accuracy`` x the band's -- stays within what the false-hit bound at ``confidence``
        allows: the promise then holds with the verifier's stated accuracy, not only without it.
        """
        delta = check_rate(max_false_hit_rate)
        if isinstance(accuracy, bool) or not isinstance(accuracy, int | float) or not 0.5 < accuracy <= 1.0:
            raise ConfigError("verifier.accuracy", f"must be in (0.5, 1], got {accuracy!r}")
        allowed = max_allowed_wrong(self.n_lookups, delta, self.confidence)
        if allowed < 0:
            return math.inf, math.inf
        scores = np.array([*self.right_scores, *self.wrong_scores], dtype=np.float64)
        wrong = np.array([0] * len(self.right_scores) + [1] * len(self.wrong_scores), dtype=np.float64)
        order = np.argsort(-scores, kind="stable")
        scores, wrong = scores[order], wrong[order]
        if not len(scores):
            return math.inf, math.inf
        cut: np.ndarray = np.unique(np.quantile(scores, np.linspace(0, 1, 201), method="lower"))[::-1]
        cum_w = np.concatenate([[0.0], np.cumsum(wrong)])
        cum_r = np.concatenate([[0.0], np.cumsum(1.0 - wrong)])
        upto = {float(c): int(np.searchsorted(-scores, -c, side="right")) for c in cut}  # picks scoring >= c
        best, best_value = (math.inf, math.inf), -1.0
        miss = 1.0 - float(accuracy)
        for t in cut:
            i = upto[float(t)]
            if cum_w[i] > allowed:
                break
            for b in cut:
                if b > t:
                    continue
                j = upto[float(b)]
                expected_wrong = cum_w[i] + miss * (cum_w[j] - cum_w[i])
                if expected_wrong > allowed:
                    break
                value = cum_r[i] + accuracy * (cum_r[j] - cum_r[i])
                if value > best_value:
                    best, best_value = (float(t), float(b)), value
        return best

    def expected(self, threshold: float) -> dict[str, float]:
        """Rates measured on the calibration pairs at ``threshold`` (the guarantee is the bound, not these)."""
        right = sum(1 for s in self.right_scores if s >= threshold)
        wrong = sum(1 for s in self.wrong_scores if s >= threshold)
        return {
            "hit_rate_on_duplicates": right / self.n_duplicates if self.n_duplicates else 0.0,
            "false_hit_rate": wrong / self.n_lookups if self.n_lookups else 0.0,
            "false_hit_rate_upper_bound": upper_bound(wrong, self.n_lookups, self.confidence),
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "version": CALIBRATION_VERSION,
            "embedder": self.embedder,
            "scorer": {
                "features": list(FEATURES),
                "weights": list(self.scorer.weights or []) or None,
                "veto": self.scorer.veto,
            },
            "n_lookups": self.n_lookups,
            "n_duplicates": self.n_duplicates,
            "n_entries": self.n_entries,
            "confidence": self.confidence,
            "top_k": self.top_k,
            "source": self.source,
            "right_scores": [round(s, 6) for s in self.right_scores],
            "wrong_scores": [round(s, 6) for s in self.wrong_scores],
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Calibration:
        if doc.get("version") != CALIBRATION_VERSION:
            raise ConfigError("calibration", f"unsupported calibration version {doc.get('version')!r}")
        scorer_doc = doc.get("scorer") or {}
        weights = scorer_doc.get("weights")
        if weights is not None and list(scorer_doc.get("features") or []) != list(FEATURES):
            raise ConfigError("calibration", "the calibration was made with other scorer features; recalibrate")
        return cls(
            embedder=str(doc["embedder"]),
            scorer=Scorer(
                tuple(float(w) for w in weights) if weights else None, veto=bool(scorer_doc.get("veto", False))
            ),
            n_lookups=int(doc["n_lookups"]),
            n_duplicates=int(doc["n_duplicates"]),
            n_entries=int(doc["n_entries"]),
            right_scores=tuple(float(s) for s in doc["right_scores"]),
            wrong_scores=tuple(float(s) for s in doc["wrong_scores"]),
            confidence=float(doc.get("confidence", 0.99)),
            top_k=int(doc.get("top_k", DEFAULT_TOP_K)),
            source=str(doc.get("source", "")),
        )

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), separators=(",", ":")))

    @classmethod
    def load(cls, path: str | Path) -> Calibration:
        return cls.from_json(json.loads(Path(path).read_text()))


def check_rate(value: Any, name: str = "max_false_hit_rate") -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 < value < 1.0:
        raise ConfigError(name, f"must be a rate in (0, 1), e.g. 0.02; got {value!r}")
    return float(value)


# ------------------------------------------------------------------------------- calibrate()


def _as_triples(pairs: Iterable[Any]) -> list[tuple[str, str, bool]]:
    out = []
    for i, p in enumerate(pairs):
        if isinstance(p, Mapping):
            try:
                a, b, d = p["a"], p["b"], p["duplicate"]
            except KeyError as exc:
                raise ConfigError(f"pairs[{i}]", f"a dict pair needs keys a, b, duplicate (missing {exc})") from None
        else:
            try:
                a, b, d = p
            except (TypeError, ValueError):
                raise ConfigError(f"pairs[{i}]", "a pair is (cached_question, new_question, duplicate)") from None
        if not isinstance(a, str) or not isinstance(b, str):
            raise ConfigError(f"pairs[{i}]", "questions must be str")
        out.append((a, b, bool(d)))
    return out


@attrs.frozen(slots=True)
class Lookups:
    """The simulated cache on labeled pairs: each query's top-k candidates and whether each is right."""

    queries: tuple[str, ...]
    entries: tuple[str, ...]
    candidates: np.ndarray  # (n_queries, k) entry indices, decreasing cosine
    cosines: np.ndarray  # (n_queries, k)
    right: np.ndarray  # (n_queries, k) bool
    duplicate: np.ndarray  # (n_queries,) bool: the query's own question is cached


def simulate(pairs: Iterable[Any], embedder: Any, *, top_k: int = DEFAULT_TOP_K, batch: int = 2048) -> Lookups:
    """Fill a cache with every ``a``, look up every ``b`` (exact cosine search), label every candidate."""
    triples = _as_triples(pairs)
    if len(triples) < 2:
        raise ConfigError("pairs", "calibration needs labeled pairs (hundreds at least)")
    entries = list(dict.fromkeys(a for a, _b, _d in triples))
    entry_index = {t: i for i, t in enumerate(entries)}
    same = {(a, b) for a, b, d in triples if d} | {(b, a) for a, b, d in triples if d}
    queries = [b for _a, b, _d in triples]
    own = np.array([entry_index[a] for a, _b, _d in triples])
    dup = np.array([d for _a, _b, d in triples], dtype=bool)
    e_vecs = np.asarray(embedder(entries), dtype=np.float32)
    q_vecs = np.asarray(embedder(queries), dtype=np.float32)
    k = min(top_k, len(entries))
    cand = np.empty((len(queries), k), dtype=np.int64)
    cos = np.empty((len(queries), k), dtype=np.float32)
    for lo in range(0, len(queries), batch):
        sims = q_vecs[lo : lo + batch] @ e_vecs.T
        part = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        part_sims = np.take_along_axis(sims, part, axis=1)
        order = np.argsort(-part_sims, axis=1, kind="stable")
        cand[lo : lo + batch] = np.take_along_axis(part, order, axis=1)
        cos[lo : lo + batch] = np.take_along_axis(part_sims, order, axis=1)
    right = np.zeros(cand.shape, dtype=bool)
    for j, q in enumerate(queries):
        for r in range(k):
            e = int(cand[j, r])
            text = entries[e]
            right[j, r] = (e == own[j] and dup[j]) or text == q or (q, text) in same
    return Lookups(tuple(queries), tuple(entries), cand, cos, right, dup)


def feature_tensor(lk: Lookups) -> np.ndarray:
    """Features of every (query, candidate) of a simulation: shape (n_queries, k, len(FEATURES))."""
    n, k = lk.candidates.shape
    out = np.empty((n, k, len(FEATURES)))
    for j in range(n):
        for r in range(k):
            c = float(lk.cosines[j, r])
            entry = lk.entries[int(lk.candidates[j, r])]
            out[j, r] = pair_features(lk.queries[j], entry, c)
    return out


def veto_mask(lk: Lookups) -> np.ndarray:
    """Which (query, candidate) of a simulation flip meaning (:func:`.contrast.contrast`): shape (n, k)."""
    from .contrast import contrast

    n, k = lk.candidates.shape
    out = np.zeros((n, k), dtype=bool)
    for j in range(n):
        for r in range(k):
            out[j, r] = contrast(lk.queries[j], lk.entries[int(lk.candidates[j, r])]) is not None
    return out


def _picks(scores: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each query's best candidate: its score and whether it is right."""
    m = scores.argmax(axis=1)
    rows = np.arange(len(m))
    return scores[rows, m], right[rows, m]


def calibrate(
    pairs: Iterable[Any],
    embedder: Any = None,
    *,
    scorer: str = "learned",
    confidence: float = 0.99,
    top_k: int = DEFAULT_TOP_K,
    seed: int = 0,
    source: str = "",
    veto: bool = True,
) -> Calibration:
    """Measure a :class:`Calibration` from labeled pairs ``(a, b, duplicate)`` or dicts with those keys.

    ``embedder``: the cache's embedder (None: the default). ``scorer``: ``"learned"`` (default)
    or ``"cosine"``. ``veto``: candidates that flip the query's meaning (:mod:`.contrast`) never
    count as picks, here as in the cache. See the module docstring for the procedure and what it
    guarantees.
    """
    from ...embedders import as_embedder

    if scorer not in ("learned", "cosine"):
        raise ConfigError("scorer", f"must be 'learned' or 'cosine', got {scorer!r}")
    if not isinstance(top_k, int) or top_k < 1:
        raise ConfigError("top_k", f"must be an int >= 1, got {top_k!r}")
    emb = as_embedder(embedder)
    lk = simulate(pairs, emb, top_k=top_k)
    n = len(lk.queries)
    vetoed = veto_mask(lk) if veto else np.zeros(lk.candidates.shape, dtype=bool)
    if scorer == "cosine":
        final = Scorer(None, veto=veto)
        best, ok = _picks(np.where(vetoed, -np.inf, lk.cosines.astype(np.float64)), lk.right)
    else:
        x = feature_tensor(lk)
        y = lk.right.astype(np.float64)
        order = np.random.default_rng(seed).permutation(n)
        folds = (np.sort(order[: n // 2]), np.sort(order[n // 2 :]))
        best = np.empty(n)
        ok = np.empty(n, dtype=bool)
        for train, held in ((folds[0], folds[1]), (folds[1], folds[0])):
            keep = ~vetoed[train]  # a vetoed candidate is never served: nothing to learn from it
            w = fit_logistic(x[train][keep], y[train][keep])
            best[held], ok[held] = _picks(np.where(vetoed[held], -np.inf, x[held] @ w), lk.right[held])
        w_all = fit_logistic(x[~vetoed], y[~vetoed])
        final = Scorer(tuple(float(v) for v in w_all), veto=veto)
    # Keep only the picks that could matter: above the score where the false-hit rate passes 60%
    # (a verifier's band reaches that low; never a vetoed pick: -inf is admitted by no threshold).
    order = np.argsort(-best, kind="stable")
    order = order[np.isfinite(best[order])]
    wrong_cum = np.cumsum(~ok[order])
    stop = int(np.searchsorted(wrong_cum, 0.6 * n, side="right"))
    kept = order[: max(stop, 1)]
    return Calibration(
        embedder=emb.name,
        scorer=final,
        n_lookups=n,
        n_duplicates=int(lk.duplicate.sum()),
        n_entries=len(lk.entries),
        right_scores=tuple(float(s) for s in best[kept][ok[kept]]),
        wrong_scores=tuple(float(s) for s in best[kept][~ok[kept]]),
        confidence=confidence,
        top_k=top_k,
        source=source,
    )


def default_calibration(embedder_name: str) -> Calibration | None:
    """The calibration shipped for a bundled embedder (see ``scripts/make_cache_calibration.py``), or None."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", embedder_name)
    try:
        text = resources.files("costkit").joinpath("data", f"calibration-{safe}.json").read_text()
    except (FileNotFoundError, OSError, ModuleNotFoundError):
        return None
    return Calibration.from_json(json.loads(text))


__all__ = [
    "FEATURES",
    "Calibration",
    "Lookups",
    "Scorer",
    "calibrate",
    "check_rate",
    "default_calibration",
    "feature_tensor",
    "fit_logistic",
    "pair_features",
    "simulate",
    "upper_bound",
]
