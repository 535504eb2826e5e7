"""Does the router know this kind of prompt? Out-of-distribution traffic goes to the strongest model.

A router trained on one kind of traffic predicts nonsense on another (trained on MMLU questions,
it sends math word problems to the cheap model and loses 15% of the quality). Its predictions are
only as good as the training prompts near a new prompt, so the distance to them is the check:

* a prompt's **strangeness** is ``1 - mean cosine of its k nearest training prompts``;
* the **threshold** is a conformal quantile of the training prompts' own strangeness, each
  measured against the others (leave-one-out): with ``rate=0.02`` at most about 2% of prompts like
  the training ones are flagged, whatever the embedder;
* a prompt above it is **out of distribution**: the router sends it to the strongest model and
  says so (``notes["route_ood"] = True``; every learned decision carries the flag), so the share
  of such traffic is in the records and the report.

A second, looser level catches **new topics** close enough to pass that check: MMLU subjects sit
near each other in embedding space, so a prompt from a subject the router never saw is rarely
"far", yet its predictions are worse. Prompts stranger than the ``topic_rate`` quantile (0.5: the
stranger half of prompts like the training ones) are routed with a more careful threshold, one
calibrated on folds of whole held-out topics (:mod:`.route_calibration`), not sent to the
strongest model (``notes["route_new_topic"]``).
"""

from __future__ import annotations

import math

import attrs
import numpy as np

from ...errors import ConfigError

DEFAULT_K = 10


@attrs.frozen(kw_only=True)
class Familiarity:
    """The training prompts' embeddings and the strangeness above which a prompt is unfamiliar."""

    X: np.ndarray = attrs.field(repr=False)  # (n, d) unit rows
    k: int
    rate: float  # the share of in-distribution prompts flagged (conformal level)
    threshold: float
    topic_rate: float | None = None  # the share of in-distribution prompts given the careful threshold
    topic_threshold: float | None = None  # strangeness above which a prompt may be from a new topic

    def strangeness(self, E: np.ndarray) -> np.ndarray:
        """``1 - mean cosine of the k nearest training prompts``, per row of ``E``."""
        return strangeness_against(E, self.X, self.k)

    def unfamiliar(self, E: np.ndarray) -> np.ndarray:
        return self.strangeness(E) > self.threshold

    def new_topic(self, E: np.ndarray) -> np.ndarray:
        """Which prompts get the careful threshold (all False without the topic level)."""
        if self.topic_threshold is None:
            return np.zeros(len(E), dtype=bool)
        return self.strangeness(E) > self.topic_threshold


def strangeness_against(E: np.ndarray, X: np.ndarray, k: int) -> np.ndarray:
    """``1 - mean cosine of the k nearest rows of X``, per row of ``E``."""
    sims = np.asarray(E, dtype=np.float32) @ X.T
    k = min(k, X.shape[0])
    top = np.partition(sims, sims.shape[1] - k, axis=1)[:, -k:]
    out: np.ndarray = 1.0 - top.mean(axis=1)
    return out


def check_rate(rate: object) -> float | None:
    if rate is None:
        return None
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0.0 < rate < 0.5:
        raise ConfigError("ood_rate", f"must be None (off) or a share in (0, 0.5), e.g. 0.02; got {rate!r}")
    return float(rate)


def check_topic_rate(rate: object, ood_rate: float | None) -> float | None:
    if rate is None:
        return None
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0.0 < rate < 1.0:
        raise ConfigError("topic_rate", f"must be None (off) or a share in (0, 1), e.g. 0.5; got {rate!r}")
    if ood_rate is not None and rate <= ood_rate:
        raise ConfigError("topic_rate", f"must exceed ood_rate ({ood_rate}): it is the looser level; got {rate!r}")
    return float(rate)


def conformal_quantile(scores: np.ndarray, rate: float) -> float:
    """The score above which about ``rate`` of prompts like these fall (the conformal quantile)."""
    n = len(scores)
    rank = min(n, math.ceil((n + 1) * (1.0 - rate)))
    return float(np.sort(scores)[rank - 1])


def leave_one_out(X: np.ndarray, k: int, batch: int = 1024) -> np.ndarray:
    """Each training prompt's strangeness against the other training prompts."""
    n = X.shape[0]
    k = min(k, n - 1)
    out = np.empty(n, dtype=np.float64)
    for lo in range(0, n, batch):
        sims = X[lo : lo + batch] @ X.T
        rows = np.arange(sims.shape[0])
        sims[rows, lo + rows] = -np.inf  # not its own neighbour
        top = np.partition(sims, sims.shape[1] - k, axis=1)[:, -k:]
        out[lo : lo + batch] = 1.0 - top.mean(axis=1)
    return out


def fit(
    X: np.ndarray, rate: float, k: int = DEFAULT_K, topic_rate: float | None = None
) -> tuple[Familiarity, np.ndarray]:
    """The detector and the training prompts' own (leave-one-out) strangeness."""
    X = np.ascontiguousarray(X, dtype=np.float32)
    scores = leave_one_out(X, k)
    topic_threshold = None if topic_rate is None else conformal_quantile(scores, topic_rate)
    fam = Familiarity(
        X=X,
        k=k,
        rate=rate,
        threshold=conformal_quantile(scores, rate),
        topic_rate=topic_rate,
        topic_threshold=topic_threshold,
    )
    return fam, scores


__all__ = [
    "DEFAULT_K",
    "Familiarity",
    "check_rate",
    "check_topic_rate",
    "conformal_quantile",
    "fit",
    "leave_one_out",
    "strangeness_against",
]
