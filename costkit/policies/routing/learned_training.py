"""Training the learned router: embed, fit the predictors, choose the blend by cross-validation,
calibrate the threshold on out-of-fold predictions, fit the familiarity check, refit on everything.

The ridge penalty (relative to the embeddings' total variance, so one grid fits any embedder and
data size) and the ridge model's share beside the kNN vote are chosen by cross-validation *inside
the training data*: every example is predicted by a fit that never saw it, and the pair whose
held-out predictions need the fewest strong calls to keep ``target_quality`` (averaged over the
target and +-0.02, to steady a noisy curve; ties broken by the Brier score) wins.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs
import numpy as np

from ...errors import ConfigError
from .familiarity import Familiarity, check_topic_rate, strangeness_against
from .familiarity import check_rate as check_ood_rate
from .familiarity import fit as fit_familiarity
from .learned_model import LearnedModel, check_target
from .predictors import Groups, Knn, RidgePath, fit_groups, kmeans, mix
from .route_calibration import TopicEvidence, calibrate, check_confidence, ladder_cost

METHODS = ("ensemble", "linear", "knn", "groups")
L2_GRID = (0.1, 0.03, 0.01, 0.003)  # ridge penalties cross-validation chooses from, x the data's total variance
LINEAR_WEIGHTS = (1.0, 0.75, 0.5, 0.25, 0.0)  # the ridge model's share beside the kNN vote


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


def _group_folds(labels: np.ndarray, folds: int, seed: int) -> list[np.ndarray]:
    """Folds of whole groups: each example is predicted by a fit that never saw its group (topic)."""
    groups = np.random.default_rng(seed).permutation(int(labels.max()) + 1)
    sizes = np.bincount(labels, minlength=len(groups))
    load = np.zeros(folds)
    fold_of = np.zeros(len(groups), dtype=np.int64)
    for g in sorted(groups, key=lambda g: -sizes[g]):  # largest first, each to the lightest fold
        fold_of[g] = int(np.argmin(load))
        load[fold_of[g]] += sizes[g]
    return [np.nonzero(fold_of[labels] == f)[0] for f in range(folds) if (fold_of[labels] == f).any()]


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


def _topic_evidence(
    trainer: Trainer,
    X: np.ndarray,
    Y: np.ndarray,
    group_labels: np.ndarray,
    familiarity: Familiarity,
    strangeness: np.ndarray,
    folds: int,
    seed: int,
    l2: float,
    linear_weight: float,
    group_weight: float,
) -> TopicEvidence:
    """The chosen blend's predictions on folds of whole held-out groups, and the check's verdicts there.

    A held-out group's prompts are measured against the other groups' prompts only, as a prompt on
    a topic the router never saw would be; the far ones go strongest, as in use.
    """
    n, M = Y.shape
    q = np.zeros((n, M), dtype=np.float32)
    far_from_rest = np.zeros(n)
    everything = np.arange(n)
    for held in _group_folds(group_labels, folds, seed):
        rest = np.setdiff1d(everything, held)
        knn, ridge, groups = trainer.fit(X, Y, rest)
        linear = ridge.fit(l2) if ridge is not None else None
        q[held] = mix(
            X[held],
            knn=knn,
            linear=linear,
            groups=groups,
            linear_weight=linear_weight if (knn is not None and linear is not None) else float(linear is not None),
            group_weight=group_weight,
        )
        far_from_rest[held] = strangeness_against(X[held], X[rest], familiarity.k)
    loss = np.where((far_from_rest > familiarity.threshold)[:, None], np.inf, q[:, -1:] - q[:, :-1])
    topic_threshold = familiarity.topic_threshold
    assert topic_threshold is not None
    return TopicEvidence(
        loss=loss,
        new=far_from_rest > topic_threshold,
        new_in_random_folds=strangeness > topic_threshold,
        clusters=group_labels,
    )


def train(
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
    embeddings: np.ndarray | None = None,
    l2_grid: Sequence[float] = L2_GRID,
    linear_weights: Sequence[float] = LINEAR_WEIGHTS,
) -> LearnedModel:
    """Embed, fit, choose the blend by cross-validation, calibrate on out-of-fold predictions, refit.

    ``confidence``: the threshold keeps ``target_quality`` at this one-sided confidence
    (:mod:`.route_calibration`); ``margin`` instead fixes the bound's multiplier in standard
    errors. ``ood_rate``: the familiarity check's level (:mod:`.familiarity`; None turns it off).
    ``topic_rate``: when every example has a ``"group"`` (at least ``folds`` distinct ones, and
    ``holdout="examples"``), the strangest
    ``topic_rate`` of prompts like the training ones get a careful threshold calibrated on folds
    of whole held-out groups, so traffic on topics the router never saw keeps the target too
    (:mod:`.route_calibration`; None turns it off; without groups it does nothing).
    ``holdout``: ``"examples"`` (folds of random examples) or ``"groups"`` (folds of whole groups,
    so the threshold is calibrated on topics the fit never saw: for traffic whose topics will
    differ from the training ones; needs every example's ``"group"``).
    ``embeddings`` lets a caller that already embedded the prompts (a benchmark) pass them in.
    ``l2_grid`` (ridge penalties) and ``linear_weights`` (the ridge model's share beside the kNN
    vote) are what cross-validation chooses from; see the module docstring.
    """
    from ...embedders import as_embedder

    if isinstance(models, str) or not isinstance(models, Sequence) or len(models) < 2:
        raise ConfigError("models", "needs at least two models, cheapest first, strongest last")
    if len(set(models)) != len(models) or not all(isinstance(m, str) and m for m in models):
        raise ConfigError("models", f"must be distinct non-empty model names, got {list(models)!r}")
    check_target(target_quality)
    confidence = check_confidence(confidence)
    ood_rate = check_ood_rate(ood_rate)
    topic_rate = check_topic_rate(topic_rate, ood_rate)
    if method not in METHODS:
        raise ConfigError("method", f"must be one of {METHODS}, got {method!r}")
    if not isinstance(k, int) or k < 1:
        raise ConfigError("k", f"must be a positive int, got {k!r}")
    if not isinstance(group_weight, int | float) or not 0.0 <= group_weight <= 1.0:
        raise ConfigError("group_weight", f"must be a number in [0, 1], got {group_weight!r}")
    if margin is not None and (not isinstance(margin, int | float) or margin < 0 or math.isnan(margin)):
        raise ConfigError("margin", f"must be None or a number >= 0 (standard errors), got {margin!r}")
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
    if holdout not in ("examples", "groups"):
        raise ConfigError("holdout", f"must be 'examples' or 'groups', got {holdout!r}")
    if holdout == "groups" and group_labels is None:
        raise ConfigError("holdout", "'groups' needs a 'group' in every example")
    if holdout == "groups" and group_labels is not None:
        fold_list = _group_folds(group_labels, folds, seed)
    else:
        fold_list = _folds(n, folds, seed)
    for held in fold_list:
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
    familiarity = None
    topics = None
    if ood_rate is not None:  # prompts unlike the others go strongest in calibration as in use
        # topic folds need a group to hold out in every fold (and their bound counts groups)
        use_topics = topic_rate is not None and len(group_names) >= folds and holdout == "examples"
        familiarity, strangeness = fit_familiarity(X, ood_rate, topic_rate=topic_rate if use_topics else None)
        oof = np.where((strangeness > familiarity.threshold)[:, None], np.inf, oof)
        if use_topics and group_labels is not None:
            topics = _topic_evidence(
                trainer, X, Y, group_labels, familiarity, strangeness, folds, seed, l2s[best_j], best_a, group_weight
            )
    calibration = calibrate(
        oof,
        Y,
        float(target_quality),
        models,
        confidence=confidence,
        margin=None if margin is None else float(margin),
        clusters=group_labels if holdout == "groups" else None,  # the bound counts topics, not questions
        topics=topics,
    )

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
        margin=None if margin is None else float(margin),
        familiarity=familiarity,
        selection=selection,
        topics=topics,
    )


__all__ = ["L2_GRID", "LINEAR_WEIGHTS", "METHODS", "Trainer", "read_examples", "train"]
