"""A router learned from labeled traffic: which cheaper model suffices for which request.

Training data is what you already have or can label offline: for each past prompt, which models
answered it acceptably (``{"prompt": str, "ok": {model: bool, ...}}``). Prompts are embedded with
the cache layer's embedder (offline, numpy; :class:`~costkit.embedders.ConcatEmbedder`
puts two side by side); up to three predictors estimate, for a new prompt, the probability
``q[m]`` that each model answers it acceptably:

* ``linear``: a ridge regression of each model's 0/1 label on the embedding. Because the router
  acts on ``q[strongest] - q[m]``, it sends to the strong model where the strong model is
  predicted to *help*, not where the question merely looks hard (both models fail hard questions).
* ``knn``: the similarity-weighted vote of the ``k`` most similar training prompts, shrunk toward
  the model's base rate (so a lone neighbour cannot decide): local where the ridge is global.
* ``groups``: the topic the prompt belongs to, and how well each model does on that topic. Topics
  are the examples' optional ``"group"`` (a feature or subject name, used only in training: the
  router recognizes topics from text alone) or, with ``method="groups"`` and no groups, k-means
  clusters. A ridge classifier gives ``P(topic | prompt)``; ``q = P @ rate[topic, model]``.

``method="ensemble"`` (default) blends ``a * linear + (1 - a) * knn``, and, when the examples carry
groups, mixes in the topic model at ``group_weight``. The ridge penalty (relative to the
embeddings' total variance, so one grid fits any embedder and data size) and the blend weight
``a`` are chosen by cross-validation *inside the training data*: every example is predicted by a
fit that never saw it, and the pair whose held-out predictions need the fewest strong calls to
keep ``target_quality`` (averaged over the target and +-0.02, to steady a noisy curve; ties broken
by the Brier score) wins. ``method="linear"``, ``"knn"`` and ``"groups"`` use one predictor.

The routing rule: the predicted quality loss of model ``m`` is ``q[strongest] - q[m]``; the router
picks the cheapest model whose loss is at most a threshold ``lambda``. ``lambda`` is calibrated on
the same held-out predictions as the largest value for which the traffic's quality stays at
``target_quality`` of what the strongest model alone would achieve -- with a ``margin`` of
standard errors to spare, and for every smaller value too (the first crossing, not a lucky
spike). The final predictors are refit on all examples with the chosen settings.

A trained model saves to one ``.npz`` (arrays plus JSON settings; no pickle).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from ..._call import Call
from ...errors import ConfigError
from .decision import Decision, text_of

METHODS = ("ensemble", "linear", "knn", "groups")
FORMAT_VERSION = 2
READABLE_FORMATS = (1, 2)
L2_GRID = (0.1, 0.03, 0.01, 0.003)  # ridge penalties cross-validation chooses from, x the data's total variance
LINEAR_WEIGHTS = (1.0, 0.75, 0.5, 0.25, 0.0)  # the ridge model's share beside the kNN vote


# ----------------------------------------------------------------------------------------- predictors


@attrs.frozen(kw_only=True)
class Knn:
    """Similarity-weighted neighbour vote: ``q = (sum w*y + alpha*prior) / (sum w + alpha)``."""

    X: np.ndarray  # (n, d) unit rows
    Y: np.ndarray  # (n, M) 0/1
    prior: np.ndarray  # (M,)
    k: int = 50
    temperature: float = 0.1
    alpha: float = 1.0

    def predict(self, E: np.ndarray) -> np.ndarray:
        sims = E @ self.X.T
        k = min(self.k, self.X.shape[0])
        if k < self.X.shape[0]:
            idx = np.argpartition(-sims, k - 1, axis=1)[:, :k]
            top = np.take_along_axis(sims, idx, axis=1)
        else:
            idx = np.broadcast_to(np.arange(self.X.shape[0]), sims.shape)
            top = sims
        w = np.exp((top - top.max(axis=1, keepdims=True)) / self.temperature)
        votes = np.einsum("bk,bkm->bm", w, self.Y[idx])
        return (votes + self.alpha * self.prior) / (w.sum(axis=1, keepdims=True) + self.alpha)


@attrs.frozen(kw_only=True)
class Linear:
    """Ridge regression of each model's 0/1 label on the embedding: ``q = E @ W[:-1] + W[-1]``.

    One linear model per column, so ``q[strong] - q[cheap]`` is itself a linear score of the
    prompt: the router goes strong where the strong model is predicted to *help*, not merely
    where the question looks hard. Global (every training prompt shapes every prediction), it
    complements the local kNN vote.
    """

    W: np.ndarray  # (d + 1, M), last row the intercept
    l2: float  # the penalty, as a share of the training embeddings' total variance

    def predict(self, E: np.ndarray) -> np.ndarray:
        return E @ self.W[:-1] + self.W[-1]


class RidgePath:
    """Ridge fits for any penalty from one eigendecomposition, so cross-validation sweeps penalties cheaply."""

    def __init__(self, X: np.ndarray, Y: np.ndarray) -> None:
        X64, Y64 = X.astype(np.float64), Y.astype(np.float64)
        self.mu, self.ym = X64.mean(axis=0), Y64.mean(axis=0)
        Xc = X64 - self.mu
        self.evals, self.V = np.linalg.eigh(Xc.T @ Xc)
        self.proj = self.V.T @ (Xc.T @ (Y64 - self.ym))
        self.scale = max(float(np.maximum(self.evals, 0.0).sum()), 1e-12)  # total variance: penalties scale with it

    def fit(self, l2: float) -> Linear:
        """``l2`` is relative (x the total variance), so one grid suits any embedder and any amount of data."""
        B = self.V @ (self.proj / (np.maximum(self.evals, 0.0) + l2 * self.scale)[:, None])
        b = self.ym - self.mu @ B
        return Linear(W=np.vstack([B, b[None, :]]).astype(np.float32), l2=float(l2))


@attrs.frozen(kw_only=True)
class Groups:
    """Topic mixture: ridge-classifier ``P(topic | x)`` times per-topic shrunk success rates."""

    W: np.ndarray  # (d + 1, K)
    rates: np.ndarray  # (K, M)
    names: tuple[str, ...]
    temperature: float = 0.1

    def proba(self, E: np.ndarray) -> np.ndarray:
        z = (E @ self.W[:-1] + self.W[-1]) / self.temperature
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(axis=1, keepdims=True)

    def predict(self, E: np.ndarray) -> np.ndarray:
        return self.proba(E) @ self.rates


def kmeans(X: np.ndarray, k: int, seed: int, iters: int = 25) -> np.ndarray:
    """Spherical k-means (cosine) labels; deterministic for a seed."""
    rng = np.random.default_rng(seed)
    centers = X[rng.choice(X.shape[0], size=k, replace=False)].copy()
    labels = np.zeros(X.shape[0], dtype=np.int64)
    for _ in range(iters):
        labels = np.argmax(X @ centers.T, axis=1)
        sums = np.zeros_like(centers)
        np.add.at(sums, labels, X)
        norms = np.linalg.norm(sums, axis=1, keepdims=True)
        moved = norms[:, 0] > 0
        centers[moved] = sums[moved] / norms[moved]
    return labels


def fit_groups(
    X: np.ndarray,
    Y: np.ndarray,
    labels: np.ndarray,
    names: Sequence[str],
    *,
    l2: float = 0.1,
    alpha: float = 5.0,
    temperature: float = 0.1,
) -> Groups:
    K = len(names)
    onehot = np.zeros((X.shape[0], K), dtype=np.float64)
    onehot[np.arange(X.shape[0]), labels] = 1.0
    A = np.hstack([X.astype(np.float64), np.ones((X.shape[0], 1))])
    W = np.linalg.solve(A.T @ A + l2 * np.eye(A.shape[1]), A.T @ onehot)
    prior = Y.mean(axis=0)
    counts = np.bincount(labels, minlength=K).astype(np.float64)[:, None]
    sums = np.zeros((K, Y.shape[1]))
    np.add.at(sums, labels, Y)
    rates = (sums + alpha * prior) / (counts + alpha)
    return Groups(W=W.astype(np.float32), rates=rates.astype(np.float32), names=tuple(names), temperature=temperature)


def mix(
    E: np.ndarray,
    *,
    knn: Knn | None,
    linear: Linear | None,
    groups: Groups | None,
    linear_weight: float,
    group_weight: float,
) -> np.ndarray:
    """The ensemble's quality estimate: ``(1-g) * (a*linear + (1-a)*knn) + g * groups``, absent parts dropped."""
    parts: list[tuple[float, np.ndarray]] = []
    if linear is not None and knn is not None:
        parts += [(linear_weight, linear.predict(E)), (1.0 - linear_weight, knn.predict(E))]
    elif linear is not None:
        parts.append((1.0, linear.predict(E)))
    elif knn is not None:
        parts.append((1.0, knn.predict(E)))
    if groups is not None:
        if not parts:
            return groups.predict(E)
        parts = [(w * (1.0 - group_weight), q) for w, q in parts] + [(group_weight, groups.predict(E))]
    if not parts:
        raise ValueError("a learned model needs at least one predictor")
    return sum((w * q for w, q in parts if w), start=np.zeros((E.shape[0], parts[0][1].shape[1]), dtype=np.float32))


# ----------------------------------------------------------------------------------------- the model


@attrs.frozen(kw_only=True)
class Calibration:
    """What the held-out (out-of-fold) predictions showed at the chosen threshold."""

    threshold: float
    target_quality: float
    quality: float  # share acceptable at the threshold, held-out
    strongest_quality: float  # share acceptable if every call went to the strongest model
    shares: Mapping[str, float]  # share of calls per model at the threshold, held-out
    examples: int


@attrs.frozen(kw_only=True)
class LearnedModel:
    """The trained predictors, their blend weights, the model ladder and the calibrated threshold."""

    models: tuple[str, ...]
    method: str
    embedder_name: str
    dim: int
    knn: Knn | None
    groups: Groups | None
    calibration: Calibration
    linear: Linear | None = None
    linear_weight: float = 0.0  # the ridge model's share of the embedding part (chosen by cross-validation)
    group_weight: float = 0.6  # the topic mixture's share of the ensemble
    margin: float = 1.0  # calibration safety margin, in standard errors of the held-out quality
    # what cross-validation compared: "l2=..,linear_weight=.." -> held-out mean ladder position at the target
    selection: Mapping[str, float] = attrs.field(factory=dict, repr=False)
    # the held-out loss predictions and labels, kept so the target can be changed without retraining
    oof_loss: np.ndarray = attrs.field(repr=False)
    oof_ok: np.ndarray = attrs.field(repr=False)

    @property
    def threshold(self) -> float:
        return self.calibration.threshold

    def quality(self, E: np.ndarray) -> np.ndarray:
        """``q[i, m]``: the predicted probability that model ``m`` answers prompt ``i`` acceptably."""
        return mix(
            E,
            knn=self.knn,
            linear=self.linear,
            groups=self.groups,
            linear_weight=self.linear_weight,
            group_weight=self.group_weight,
        )

    def loss(self, E: np.ndarray) -> np.ndarray:
        """``(n, M-1)``: predicted quality lost by each cheaper model versus the strongest."""
        q = self.quality(E)
        return q[:, -1:] - q[:, :-1]

    def choose(self, loss: np.ndarray, threshold: float | None = None) -> np.ndarray:
        """Index of the cheapest model whose loss is within the threshold (the strongest if none)."""
        t = self.threshold if threshold is None else threshold
        return choose(loss, t)

    def with_target(self, target_quality: float) -> LearnedModel:
        """The same predictors recalibrated to another target (from the stored held-out predictions)."""
        _check_target(target_quality)
        cal = calibrate(self.oof_loss, self.oof_ok, target_quality, self.models, margin=self.margin)
        return attrs.evolve(self, calibration=cal)

    # ---- persistence: one .npz, no pickle
    def save(self, path: str | Path) -> None:
        arrays: dict[str, np.ndarray] = {"oof_loss": self.oof_loss, "oof_ok": self.oof_ok}
        meta: dict[str, Any] = {
            "format": FORMAT_VERSION,
            "models": list(self.models),
            "method": self.method,
            "embedder_name": self.embedder_name,
            "dim": self.dim,
            "linear_weight": self.linear_weight,
            "group_weight": self.group_weight,
            "margin": self.margin,
            "selection": dict(self.selection),
            "calibration": attrs.asdict(self.calibration),
        }
        if self.knn is not None:
            arrays.update(knn_X=self.knn.X, knn_Y=self.knn.Y, knn_prior=self.knn.prior)
            meta["knn"] = {"k": self.knn.k, "temperature": self.knn.temperature, "alpha": self.knn.alpha}
        if self.linear is not None:
            arrays.update(linear_W=self.linear.W)
            meta["linear"] = {"l2": self.linear.l2}
        if self.groups is not None:
            arrays.update(groups_W=self.groups.W, groups_rates=self.groups.rates)
            meta["groups"] = {"names": list(self.groups.names), "temperature": self.groups.temperature}
        arrays["meta"] = np.array(json.dumps(meta))
        with open(path, "wb") as f:
            np.savez_compressed(f, **arrays)  # type: ignore[arg-type]

    @classmethod
    def load(cls, path: str | Path) -> LearnedModel:
        """Reads this format and the previous one (kNN + topics, before the ridge model existed)."""
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        except (OSError, ValueError) as exc:
            raise ConfigError("path", f"cannot read a saved router from {path}: {exc}") from None
        if "meta" not in arrays:
            raise ConfigError("path", f"{path} is not a saved costkit router")
        meta = json.loads(str(arrays["meta"]))
        if meta.get("format") not in READABLE_FORMATS:
            raise ConfigError("path", f"{path} has format {meta.get('format')}, this costkit reads {READABLE_FORMATS}")
        knn = None
        if "knn" in meta:
            knn = Knn(X=arrays["knn_X"], Y=arrays["knn_Y"], prior=arrays["knn_prior"], **meta["knn"])
        linear = None
        if "linear" in meta:
            linear = Linear(W=arrays["linear_W"], l2=float(meta["linear"]["l2"]))
        groups = None
        if "groups" in meta:
            groups = Groups(
                W=arrays["groups_W"],
                rates=arrays["groups_rates"],
                names=tuple(meta["groups"]["names"]),
                temperature=meta["groups"]["temperature"],
            )
        cal = meta["calibration"]
        return cls(
            models=tuple(meta["models"]),
            method=meta["method"],
            embedder_name=meta["embedder_name"],
            dim=int(meta["dim"]),
            knn=knn,
            linear=linear,
            groups=groups,
            calibration=Calibration(**{**cal, "shares": dict(cal["shares"])}),
            linear_weight=float(meta.get("linear_weight", 0.0)),
            group_weight=float(meta["group_weight"]),
            margin=float(meta["margin"]),
            selection={str(k): float(v) for k, v in meta.get("selection", {}).items()},
            oof_loss=arrays["oof_loss"],
            oof_ok=arrays["oof_ok"],
        )


def choose(loss: np.ndarray, threshold: float) -> np.ndarray:
    """Per row, the first (cheapest) column with ``loss <= threshold``; ``M - 1`` (strongest) if none."""
    within = loss <= threshold
    first = np.argmax(within, axis=1)
    return np.where(within.any(axis=1), first, loss.shape[1])


def _candidates(loss: np.ndarray) -> np.ndarray:
    return np.unique(np.concatenate([[-np.inf], np.quantile(loss, np.linspace(0, 1, 401), method="lower")]))


def calibrate(
    loss: np.ndarray, ok: np.ndarray, target_quality: float, models: Sequence[str], *, margin: float = 1.0
) -> Calibration:
    """The largest threshold whose held-out quality, and every smaller one's, meets the target.

    "Meets" is with a safety margin: the held-out quality must exceed the target by ``margin``
    standard errors of the per-example difference, since the threshold will meet new traffic.
    """
    n = ok.shape[0]
    rows = np.arange(n)
    strongest = float(ok[:, -1].mean())
    best = -math.inf
    for t in _candidates(loss):
        idx = choose(loss, float(t))
        diff = ok[rows, idx] - target_quality * ok[:, -1]
        se = float(diff.std()) / math.sqrt(n)
        if float(diff.mean()) + 1e-12 < margin * se:
            break
        best = float(t)
    idx = choose(loss, best)
    shares = {m: float(np.mean(idx == i)) for i, m in enumerate(models)}
    return Calibration(
        threshold=best,
        target_quality=target_quality,
        quality=float(ok[np.arange(n), idx].mean()),
        strongest_quality=strongest,
        shares=shares,
        examples=n,
    )


def ladder_cost(loss: np.ndarray, ok: np.ndarray, target_quality: float) -> float:
    """How well a loss ranks: the least mean ladder position (0 = all cheapest, 1 = all strongest) at
    which some threshold keeps quality at ``target_quality`` x the strongest model's.

    With two models this is RouteLLM's "share of strong calls at the target"; cross-validation
    minimizes it (averaged over targets around the asked one, which steadies a noisy curve).
    """
    rows = np.arange(ok.shape[0])
    top = ok.shape[1] - 1
    targets = sorted({max(target_quality - 0.02, 0.0), target_quality, min(target_quality + 0.02, 1.0)})
    goals = np.array(targets) * float(ok[:, -1].mean()) - 1e-9
    best = np.ones(len(targets))
    for t in _candidates(loss):
        idx = choose(loss, float(t))
        met = float(ok[rows, idx].mean()) >= goals
        best = np.where(met, np.minimum(best, float(idx.mean()) / top), best)
    out = best
    return float(np.mean(out))


# ----------------------------------------------------------------------------------------- training


def _check_target(target_quality: Any) -> None:
    if not isinstance(target_quality, int | float) or not 0.0 < target_quality <= 1.0:
        raise ConfigError("target_quality", f"must be a number in (0, 1], got {target_quality!r}")


def read_examples(
    examples: Iterable[Mapping[str, Any]], models: Sequence[str]
) -> tuple[list[str], np.ndarray, list[str] | None]:
    """Prompts, the (n, M) 0/1 label matrix, and the groups (None unless every example has one)."""
    prompts: list[str] = []
    rows: list[list[float]] = []
    groups: list[str | None] = []
    for i, ex in enumerate(examples):
        if not isinstance(ex, Mapping):
            raise ConfigError(f"examples[{i}]", "must be a mapping {'prompt': str, 'ok': {model: bool}}")
        prompt = ex.get("prompt")
        if not isinstance(prompt, str):
            raise ConfigError(f"examples[{i}].prompt", "must be a str")
        ok = ex.get("ok")
        if not isinstance(ok, Mapping):
            raise ConfigError(f"examples[{i}].ok", "must be a mapping model -> bool")
        missing = [m for m in models if m not in ok]
        if missing:
            raise ConfigError(f"examples[{i}].ok", f"has no label for {missing[0]!r}")
        rows.append([1.0 if ok[m] else 0.0 for m in models])
        prompts.append(prompt)
        group = ex.get("group")
        groups.append(str(group) if group is not None else None)
    has_groups = bool(groups) and all(g is not None for g in groups)
    return (
        prompts,
        np.array(rows, dtype=np.float32).reshape(-1, len(models)),
        ([str(g) for g in groups] if has_groups else None),
    )


def _folds(n: int, folds: int, seed: int) -> list[np.ndarray]:
    perm = np.random.default_rng(seed).permutation(n)
    return [np.sort(perm[i::folds]) for i in range(folds)]


@attrs.frozen(kw_only=True)
class Trainer:
    """Fits the predictors on a subset; the same code makes the held-out and the final fits."""

    method: str
    k: int
    seed: int
    group_labels: np.ndarray | None  # given topics, as indices
    group_names: tuple[str, ...]

    def fit(self, X: np.ndarray, Y: np.ndarray, rows: np.ndarray) -> tuple[Knn | None, RidgePath | None, Groups | None]:
        Xs, Ys = X[rows], Y[rows]
        knn = None
        if self.method in ("ensemble", "knn"):
            knn = Knn(X=Xs, Y=Ys, prior=Ys.mean(axis=0), k=self.k)
        ridge = RidgePath(Xs, Ys) if self.method in ("ensemble", "linear") else None
        groups = None
        if self.method == "groups" or (self.method == "ensemble" and self.group_labels is not None):
            if self.group_labels is not None:
                labels, names = self.group_labels[rows], self.group_names
            else:
                K = int(min(64, max(4, len(rows) // 60)))
                labels = kmeans(Xs, K, self.seed)
                names = tuple(f"cluster{j}" for j in range(K))
            groups = fit_groups(Xs, Ys, labels, names)
        return knn, ridge, groups


def train(
    examples: Iterable[Mapping[str, Any]],
    models: Sequence[str],
    *,
    target_quality: float = 0.95,
    embedder: Any = None,
    method: str = "ensemble",
    k: int = 50,
    group_weight: float = 0.6,
    margin: float = 1.0,
    folds: int = 5,
    seed: int = 0,
    embeddings: np.ndarray | None = None,
    l2_grid: Sequence[float] = L2_GRID,
    linear_weights: Sequence[float] = LINEAR_WEIGHTS,
) -> LearnedModel:
    """Embed, fit, choose the blend by cross-validation, calibrate on out-of-fold predictions, refit.

    ``embeddings`` lets a caller that already embedded the prompts (a benchmark) pass them in.
    ``l2_grid`` (ridge penalties) and ``linear_weights`` (the ridge model's share beside the kNN
    vote) are what cross-validation chooses from; see the module docstring.
    """
    from ...embedders import as_embedder

    if isinstance(models, str) or not isinstance(models, Sequence) or len(models) < 2:
        raise ConfigError("models", "needs at least two models, cheapest first, strongest last")
    if len(set(models)) != len(models) or not all(isinstance(m, str) and m for m in models):
        raise ConfigError("models", f"must be distinct non-empty model names, got {list(models)!r}")
    _check_target(target_quality)
    if method not in METHODS:
        raise ConfigError("method", f"must be one of {METHODS}, got {method!r}")
    if not isinstance(k, int) or k < 1:
        raise ConfigError("k", f"must be a positive int, got {k!r}")
    if not isinstance(group_weight, int | float) or not 0.0 <= group_weight <= 1.0:
        raise ConfigError("group_weight", f"must be a number in [0, 1], got {group_weight!r}")
    if not isinstance(margin, int | float) or margin < 0 or math.isnan(margin):
        raise ConfigError("margin", f"must be a number >= 0 (standard errors), got {margin!r}")
    if not isinstance(folds, int) or folds < 2:
        raise ConfigError("folds", f"must be an int >= 2, got {folds!r}")
    l2s = tuple(l2_grid)
    if not l2s or not all(isinstance(v, int | float) and v > 0 for v in l2s):
        raise ConfigError("l2_grid", f"must be positive numbers, got {l2_grid!r}")
    weights = tuple(linear_weights)
    if not weights or not all(isinstance(v, int | float) and 0.0 <= v <= 1.0 for v in weights):
        raise ConfigError("linear_weights", f"must be numbers in [0, 1], got {linear_weights!r}")
    prompts, Y, group_list = read_examples(examples, models)
    if len(prompts) < max(4 * folds, 20):
        raise ConfigError("examples", f"needs at least {max(4 * folds, 20)} labeled examples, got {len(prompts)}")
    emb = as_embedder(embedder)
    X = np.asarray(emb(prompts) if embeddings is None else embeddings, dtype=np.float32)
    if X.shape != (len(prompts), emb.dim):
        raise ConfigError("embeddings", f"expected shape {(len(prompts), emb.dim)}, got {X.shape}")
    group_labels: np.ndarray | None = None
    group_names: tuple[str, ...] = ()
    if group_list is not None:
        group_names = tuple(sorted(set(group_list)))
        index = {g: i for i, g in enumerate(group_names)}
        group_labels = np.array([index[g] for g in group_list], dtype=np.int64)
    trainer = Trainer(method=method, k=k, seed=seed, group_labels=group_labels, group_names=group_names)
    if method == "linear":
        weights = (1.0,)
    elif method != "ensemble":
        l2s, weights = (l2s[0],), (0.0,)

    # out-of-fold predictions of every part, for every penalty: each example predicted by a fit that never saw it
    n, M = Y.shape
    oof_knn = np.zeros((n, M), dtype=np.float32)
    oof_groups = np.zeros((n, M), dtype=np.float32)
    oof_linear = np.zeros((len(l2s), n, M), dtype=np.float32)
    everything = np.arange(n)
    has = {"knn": False, "linear": False, "groups": False}
    for held in _folds(n, folds, seed):
        knn, ridge, groups = trainer.fit(X, Y, np.setdiff1d(everything, held))
        if knn is not None:
            oof_knn[held], has["knn"] = knn.predict(X[held]), True
        if ridge is not None:
            for j, l2 in enumerate(l2s):
                oof_linear[j, held] = ridge.fit(l2).predict(X[held])
            has["linear"] = True
        if groups is not None:
            oof_groups[held], has["groups"] = groups.predict(X[held]), True

    def blended_quality(j: int, a: float) -> np.ndarray:
        if has["knn"] and has["linear"]:
            q = a * oof_linear[j] + (1.0 - a) * oof_knn
        else:
            q = oof_linear[j] if has["linear"] else oof_knn
        if has["groups"]:
            q = oof_groups if not (has["knn"] or has["linear"]) else (1 - group_weight) * q + group_weight * oof_groups
        return q

    # ranked by the held-out ladder cost at the target; ties (easy data) by the Brier score of the predictions
    scores: dict[tuple[int, float], tuple[float, float]] = {}
    for j in range(len(l2s) if has["linear"] else 1):
        for a in weights if (has["knn"] and has["linear"]) else (1.0 if has["linear"] else 0.0,):
            q = blended_quality(j, a)
            scores[(j, float(a))] = (
                ladder_cost(q[:, -1:] - q[:, :-1], Y, float(target_quality)),
                float(np.mean((q - Y) ** 2)),
            )
    best_j, best_a = min(scores, key=lambda key: scores[key])
    q = blended_quality(best_j, best_a)
    oof = q[:, -1:] - q[:, :-1]
    calibration = calibrate(oof, Y, float(target_quality), models, margin=float(margin))

    knn, ridge, groups = trainer.fit(X, Y, everything)
    linear = ridge.fit(l2s[best_j]) if ridge is not None else None
    selection = {f"l2={l2s[j]:g},linear_weight={a:g}": round(v[0], 4) for (j, a), v in scores.items()}
    return LearnedModel(
        models=tuple(models),
        method=method,
        embedder_name=emb.name,
        dim=emb.dim,
        knn=knn,
        groups=groups,
        linear=linear,
        linear_weight=best_a if (knn is not None and linear is not None) else float(linear is not None),
        calibration=calibration,
        oof_loss=oof,
        oof_ok=Y,
        group_weight=float(group_weight),
        margin=float(margin),
        selection=selection,
    )


# ----------------------------------------------------------------------------------------- the strategy


class LearnedStrategy:
    """Embeds the request's text, predicts each model's quality, picks the cheapest within the threshold."""

    def __init__(self, model: LearnedModel, *, embedder: Any = None, text: Callable[[Call], str] | None = None) -> None:
        from ...embedders import as_embedder

        emb = as_embedder(embedder)
        if emb.name != model.embedder_name or emb.dim != model.dim:
            raise ConfigError(
                "embedder",
                f"this router was trained with {model.embedder_name} ({model.dim}-d); "
                f"got {emb.name} ({emb.dim}-d): vectors of different embedders cannot be compared",
            )
        if text is not None and not callable(text):
            raise ConfigError("text", "must be callable call -> str")
        self.model = model
        self.embedder = emb
        self.text = text or text_of

    def decide_vector(self, E: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
        """For one embedded prompt: the chosen model index, the qualities and the losses (no embedding)."""
        q = self.model.quality(E)
        loss = q[:, -1:] - q[:, :-1]
        return int(choose(loss, self.model.threshold)[0]), q[0], loss[0]

    def decide(self, call: Call) -> Decision:
        return self.decision(self.embedder([self.text(call)]))

    async def adecide(self, call: Call) -> Decision:
        """Awaits an embedder that embeds over the network (``aembed``); a local one is just called."""
        aembed = getattr(self.embedder, "aembed", None)
        texts = [self.text(call)]
        return self.decision(await aembed(texts) if aembed is not None else self.embedder(texts))

    def decision(self, E: np.ndarray) -> Decision:
        """The decision for one embedded prompt."""
        idx, q, loss = self.decide_vector(E)
        models = self.model.models
        # a ridge estimate can stray just outside [0, 1]; the note shows it as a probability (the rule uses it raw)
        scores = {f"p_ok:{m}": round(min(max(float(v), 0.0), 1.0), 4) for m, v in zip(models, q, strict=True)}
        scores["threshold"] = round(self.model.threshold, 4)
        if idx < len(models) - 1:
            reason = f"predicted loss {loss[idx]:.3f} <= {self.model.threshold:.3f} on {models[idx]}"
        else:
            reason = f"no cheaper model within {self.model.threshold:.3f} of {models[-1]}"
        return Decision(tiers=tuple((m,) for m in models[idx:]), reason=reason, scores=scores)

    def __repr__(self) -> str:
        return f"Learned({list(self.model.models)}, threshold={self.model.threshold:.4f}, method={self.model.method!r})"


__all__ = [
    "METHODS",
    "Calibration",
    "Groups",
    "Knn",
    "LearnedModel",
    "LearnedStrategy",
    "Linear",
    "RidgePath",
    "calibrate",
    "choose",
    "kmeans",
    "ladder_cost",
    "mix",
    "train",
]
