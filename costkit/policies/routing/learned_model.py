"""A trained learned router: its predictors, blend, calibrated threshold and familiarity check.

Saved as one ``.npz`` (arrays plus JSON settings, read with ``allow_pickle=False``: a model file
names no code). Format 3 adds the out-of-distribution check and the stated confidence; format 4
the careful threshold for possibly new topics (and the topic folds' predictions it was calibrated
on); formats 1 (kNN + topics), 2 (with the ridge model) and 3 still load, and route as they did.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from ...errors import ConfigError
from .familiarity import Familiarity
from .predictors import Groups, Knn, Linear, mix
from .route_calibration import Calibration, TopicEvidence, calibrate, choose

FORMAT_VERSION = 4
READABLE_FORMATS = (1, 2, 3, 4)


def check_target(target_quality: Any) -> None:
    if not isinstance(target_quality, int | float) or not 0.0 < target_quality <= 1.0:
        raise ConfigError("target_quality", f"must be a number in (0, 1], got {target_quality!r}")


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
    margin: float | None = None  # a fixed bound multiplier (format 2 routers); None: from the calibration's confidence
    familiarity: Familiarity | None = None  # None: no out-of-distribution check (format 2 routers)
    # what cross-validation compared: "l2=..,linear_weight=.." -> held-out mean ladder position at the target
    selection: Mapping[str, float] = attrs.field(factory=dict, repr=False)
    # the held-out loss predictions and labels, kept so the target can be changed without retraining
    oof_loss: np.ndarray = attrs.field(repr=False)
    oof_ok: np.ndarray = attrs.field(repr=False)
    topics: TopicEvidence | None = attrs.field(default=None, repr=False)  # the topic folds' (for the careful threshold)

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

    def unfamiliar(self, E: np.ndarray) -> np.ndarray:
        """Which prompts are out of distribution (they go to the strongest model); all False without a check."""
        if self.familiarity is None:
            return np.zeros(len(E), dtype=bool)
        return self.familiarity.unfamiliar(E)

    def new_topic(self, E: np.ndarray) -> np.ndarray:
        """Which prompts get the careful threshold (may be from a topic the router never saw)."""
        if self.familiarity is None or self.calibration.careful_threshold is None:
            return np.zeros(len(E), dtype=bool)
        return self.familiarity.new_topic(E)

    def thresholds(self, E: np.ndarray) -> np.ndarray:
        """The threshold each prompt is routed with: the careful one for possibly new topics."""
        careful = self.calibration.careful_threshold
        if careful is None:
            return np.full(len(E), self.threshold)
        return np.where(self.new_topic(E), careful, self.threshold)

    def route(self, E: np.ndarray) -> np.ndarray:
        """The chosen model index per prompt: the threshold rule, and the strongest model when unfamiliar."""
        idx = choose(self.loss(E), self.thresholds(E))
        return np.where(self.unfamiliar(E), len(self.models) - 1, idx)

    def choose(self, loss: np.ndarray, threshold: float | None = None) -> np.ndarray:
        """Index of the cheapest model whose loss is within the threshold (the strongest if none)."""
        t = self.threshold if threshold is None else threshold
        return choose(loss, t)

    def with_target(self, target_quality: float) -> LearnedModel:
        """The same predictors recalibrated to another target (from the stored held-out predictions)."""
        check_target(target_quality)
        cal = calibrate(
            self.oof_loss,
            self.oof_ok,
            target_quality,
            self.models,
            confidence=self.calibration.confidence,
            margin=self.margin,
            topics=self.topics,
        )
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
        fam = self.familiarity
        if fam is not None:
            same = self.knn is not None and fam.X.shape == self.knn.X.shape and np.array_equal(fam.X, self.knn.X)
            if not same:
                arrays["familiarity_X"] = fam.X
            meta["familiarity"] = {
                "k": fam.k,
                "rate": fam.rate,
                "threshold": fam.threshold,
                "topic_rate": fam.topic_rate,
                "topic_threshold": fam.topic_threshold,
                "uses_knn_X": same,
            }
        if self.topics is not None:
            t = self.topics
            arrays.update(
                topic_loss=t.loss, topic_new=t.new, topic_new_in_random_folds=t.new_in_random_folds,
                topic_clusters=t.clusters,
            )  # fmt: skip
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
        familiarity = None
        if "familiarity" in meta:
            f = meta["familiarity"]
            X = knn.X if f.get("uses_knn_X") and knn is not None else arrays["familiarity_X"]
            familiarity = Familiarity(
                X=X,
                k=int(f["k"]),
                rate=float(f["rate"]),
                threshold=float(f["threshold"]),
                topic_rate=None if f.get("topic_rate") is None else float(f["topic_rate"]),
                topic_threshold=None if f.get("topic_threshold") is None else float(f["topic_threshold"]),
            )
        topics = None
        if "topic_loss" in arrays:
            topics = TopicEvidence(
                loss=arrays["topic_loss"],
                new=arrays["topic_new"].astype(bool),
                new_in_random_folds=arrays["topic_new_in_random_folds"].astype(bool),
                clusters=arrays["topic_clusters"].astype(np.int64),
            )
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
            margin=None if meta.get("margin") is None else float(meta["margin"]),
            familiarity=familiarity,
            selection={str(k): float(v) for k, v in meta.get("selection", {}).items()},
            oof_loss=arrays["oof_loss"],
            oof_ok=arrays["oof_ok"],
            topics=topics,
        )


__all__ = ["FORMAT_VERSION", "READABLE_FORMATS", "LearnedModel", "check_target"]
