"""The learned router's threshold, chosen so the quality target holds at a stated confidence.

The router sends a prompt to the cheapest model whose predicted quality loss (versus the strongest
model) is at most a threshold. Which threshold keeps the traffic at ``target_quality`` x the
strongest model's accuracy is measured on held-out (out-of-fold) predictions:

* for a threshold, each example contributes ``d = ok[chosen model] - target * ok[strongest]``;
  the target holds when the mean of ``d`` is >= 0;
* the **one-sided lower confidence bound** of that mean (normal approximation, ``confidence``
  0.95 by default: ``mean - z * sd / sqrt(n)``) must be >= 0, for the chosen threshold and every
  more careful one: walking from "everything to the strongest model" towards cheaper routing, the
  first threshold whose bound fails stops the walk (fixed-sequence testing: one test per step at
  level 1 - confidence, no multiple-testing penalty). The threshold before it is chosen.

:class:`Calibration` reports what the held-out predictions showed there, and the bound itself:
``quality_ratio_lower_bound`` is the lower bound of (routed accuracy / strongest accuracy) at the
stated confidence -- the promise, stated with its margin.

**New topics** (:class:`TopicEvidence`, when examples carry groups): the same predictions are also
made on folds of whole held-out groups (each example predicted by a fit that never saw its topic),
and prompts the familiarity check calls possibly new (``new``) get a second, more careful
threshold. The pair is walked as one sequence: for each familiar threshold (careful to cheap), the
careful threshold is the loosest (and no looser than the familiar one) for which the bound holds
on the topic folds (cluster-robust: it counts topics); the walk stops at the first pair whose
bound fails on the random folds, or for which no careful threshold passes on the topic folds.
Both must hold, so each step is an intersection-union test at level ``1 - confidence``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from statistics import NormalDist

import attrs
import numpy as np

from ...errors import ConfigError


@attrs.frozen(kw_only=True)
class Calibration:
    """What the held-out (out-of-fold) predictions showed at the chosen threshold."""

    threshold: float
    target_quality: float
    quality: float  # share acceptable at the threshold, held-out
    strongest_quality: float  # share acceptable if every call went to the strongest model
    shares: Mapping[str, float]  # share of calls per model at the threshold, held-out
    examples: int
    confidence: float = 0.95
    quality_ratio_lower_bound: float = 0.0  # lower bound of quality / strongest_quality at `confidence`
    # with topic evidence: the threshold for prompts that may be from a new topic, and what the topic folds showed
    careful_threshold: float | None = None
    new_topic_quality_ratio: float | None = None  # routed / strongest accuracy on the topic folds
    new_topic_quality_ratio_lower_bound: float | None = None  # its cluster-robust lower bound at `confidence`

    @property
    def quality_ratio(self) -> float:
        return self.quality / self.strongest_quality if self.strongest_quality else 1.0


def check_confidence(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.5 <= value < 1.0:
        raise ConfigError("confidence", f"must be in [0.5, 1), e.g. 0.95; got {value!r}")
    return float(value)


@attrs.frozen(kw_only=True)
class TopicEvidence:
    """Out-of-fold predictions on folds of whole groups, and which prompts the check calls possibly new."""

    loss: np.ndarray = attrs.field(repr=False)  # (n, M-1) predicted by fits that never saw the example's group
    new: np.ndarray = attrs.field(repr=False)  # (n,) possibly new, measured against the other groups' prompts
    new_in_random_folds: np.ndarray = attrs.field(repr=False)  # (n,) the same check, leave-one-out
    clusters: np.ndarray = attrs.field(repr=False)  # (n,) group index: the topic folds' bound counts topics


def choose(loss: np.ndarray, threshold: float | np.ndarray) -> np.ndarray:
    """Per row, the first (cheapest) column with ``loss <= threshold``; ``M - 1`` (strongest) if none.

    ``threshold``: one number, or one per row.
    """
    t = np.asarray(threshold, dtype=np.float64)
    within = loss <= (t[:, None] if t.ndim == 1 else t)
    first = np.argmax(within, axis=1)
    return np.where(within.any(axis=1), first, loss.shape[1])


def candidates(loss: np.ndarray, count: int = 401) -> np.ndarray:
    """The thresholds worth trying: -inf (everything strongest) and ``count`` quantiles of the losses."""
    finite = loss[np.isfinite(loss)]
    if finite.size == 0:
        return np.array([-np.inf])
    return np.unique(np.concatenate([[-np.inf], np.quantile(finite, np.linspace(0, 1, count), method="lower")]))


def calibrate(
    loss: np.ndarray,
    ok: np.ndarray,
    target_quality: float,
    models: Sequence[str],
    *,
    confidence: float = 0.95,
    margin: float | None = None,
    clusters: np.ndarray | None = None,
    topics: TopicEvidence | None = None,
) -> Calibration:
    """The largest threshold whose quality, and every more careful one's, meets the target at ``confidence``.

    ``margin`` (standard errors) overrides the bound's multiplier, for routers trained before
    confidence was stated (format 2 saved ``margin=1``, about 84% one-sided). ``clusters`` (a
    group index per example) makes the standard error cluster-robust: examples of one topic err
    together, and new traffic brings new topics, so the bound counts topics, not questions.
    ``topics``: also choose the careful threshold for possibly new topics (module docstring).
    """
    if topics is not None:
        return _calibrate_with_topics(loss, ok, target_quality, models, confidence, margin, topics)
    n = ok.shape[0]
    rows = np.arange(n)
    z = float(margin) if margin is not None else NormalDist().inv_cdf(confidence)
    strongest = float(ok[:, -1].mean())
    best = -math.inf
    best_lb = 0.0
    for t in candidates(loss):
        idx = choose(loss, float(t))
        diff = ok[rows, idx] - target_quality * ok[:, -1]
        lb = float(diff.mean()) - z * _standard_error(diff, clusters)
        if lb + 1e-12 < 0:
            break
        best, best_lb = float(t), lb
    idx = choose(loss, best)
    shares = {m: float(np.mean(idx == i)) for i, m in enumerate(models)}
    if best == -math.inf:  # not even all-strongest clears the bound (a target of 1, or tiny data)
        diff = ok[:, -1] - target_quality * ok[:, -1]
        best_lb = float(diff.mean()) - z * _standard_error(diff, clusters)
    return Calibration(
        threshold=best,
        target_quality=target_quality,
        quality=float(ok[rows, idx].mean()),
        strongest_quality=strongest,
        shares=shares,
        examples=n,
        confidence=confidence,
        quality_ratio_lower_bound=target_quality + best_lb / strongest if strongest else 1.0,
    )


def _calibrate_with_topics(
    loss: np.ndarray,
    ok: np.ndarray,
    target_quality: float,
    models: Sequence[str],
    confidence: float,
    margin: float | None,
    topics: TopicEvidence,
) -> Calibration:
    rows = np.arange(ok.shape[0])
    z = float(margin) if margin is not None else NormalDist().inv_cdf(confidence)
    strongest = float(ok[:, -1].mean())
    grid = candidates(np.concatenate([loss.ravel(), topics.loss.ravel()]), 201)

    def bound(
        lss: np.ndarray, new: np.ndarray, familiar_t: float, careful_t: float, clusters: np.ndarray | None
    ) -> tuple[float, np.ndarray]:
        """The lower confidence bound of mean d with these two thresholds, and the models chosen."""
        idx = choose(lss, np.where(new, careful_t, familiar_t))
        diff = ok[rows, idx] - target_quality * ok[:, -1]
        return float(diff.mean()) - z * _standard_error(diff, clusters), idx

    best: tuple[float, float] = (-math.inf, -math.inf)
    for t in grid:
        careful = None  # as loose as the topic folds allow with familiar prompts at t, never looser than t
        for c in grid:
            if c > t or bound(topics.loss, topics.new, float(t), float(c), topics.clusters)[0] + 1e-12 < 0:
                break
            careful = float(c)
        if careful is None or bound(loss, topics.new_in_random_folds, float(t), careful, None)[0] + 1e-12 < 0:
            break
        best = (float(t), careful)
    lb_r, idx = bound(loss, topics.new_in_random_folds, *best, None)
    lb_g, idx_g = bound(topics.loss, topics.new, *best, topics.clusters)
    return Calibration(
        threshold=best[0],
        target_quality=target_quality,
        quality=float(ok[rows, idx].mean()),
        strongest_quality=strongest,
        shares={m: float(np.mean(idx == i)) for i, m in enumerate(models)},
        examples=len(rows),
        confidence=confidence,
        quality_ratio_lower_bound=target_quality + lb_r / strongest if strongest else 1.0,
        careful_threshold=best[1],
        new_topic_quality_ratio=float(ok[rows, idx_g].mean()) / strongest if strongest else 1.0,
        new_topic_quality_ratio_lower_bound=target_quality + lb_g / strongest if strongest else 1.0,
    )


def _standard_error(diff: np.ndarray, clusters: np.ndarray | None) -> float:
    """The standard error of ``diff.mean()``: per example, or cluster-robust (summed within clusters)."""
    n = len(diff)
    if clusters is None:
        return float(diff.std()) / math.sqrt(n)
    sums = np.bincount(clusters, weights=diff - diff.mean())
    g = int((np.bincount(clusters) > 0).sum())
    correction = g / (g - 1) if g > 1 else 1.0
    return math.sqrt(correction * float((sums**2).sum())) / n


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
    for t in candidates(loss):
        idx = choose(loss, float(t))
        met = float(ok[rows, idx].mean()) >= goals
        best = np.where(met, np.minimum(best, float(idx.mean()) / top), best)
    return float(np.mean(best))


__all__ = ["Calibration", "TopicEvidence", "calibrate", "candidates", "check_confidence", "choose", "ladder_cost"]
