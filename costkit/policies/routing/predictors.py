"""What the learned router predicts with: each model's chance of answering a prompt acceptably.

Three predictors over prompt embeddings, each ``predict(E) -> (n, M)`` in [0, 1]-ish:

* :class:`Linear`: a ridge regression of each model's 0/1 label on the embedding (global), fitted
  for any penalty from one eigendecomposition (:class:`RidgePath`);
* :class:`Knn`: the similarity-weighted vote of the nearest training prompts, shrunk to the base
  rate (local);
* :class:`Groups`: the topic the prompt belongs to (a ridge classifier) times each topic's success
  rates; topics are given groups or k-means clusters.

:func:`mix` blends them into the ensemble's estimate.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import numpy as np


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


__all__ = ["Groups", "Knn", "Linear", "RidgePath", "fit_groups", "kmeans", "mix"]
