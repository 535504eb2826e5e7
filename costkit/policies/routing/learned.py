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
picks the cheapest model whose loss is at most a threshold ``lambda``, calibrated on the same
held-out predictions so that the traffic's quality stays at ``target_quality`` of the strongest
model's at a stated confidence (:mod:`.route_calibration`). A prompt far from every training
prompt goes to the strongest model (:mod:`.familiarity`), with ``notes["route_ood"]`` saying so;
when the examples carry groups, a prompt that may be from a topic the router never saw is routed
with a more careful threshold calibrated on held-out groups (``notes["route_new_topic"]``).

The parts live in their own modules: :mod:`.predictors`, :mod:`.route_calibration`,
:mod:`.familiarity`, :mod:`.learned_model` (the trained value and its ``.npz``) and
:mod:`.learned_training`; this module is the strategy the Router runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..._call import Call
from ...errors import ConfigError
from .decision import Decision, text_of
from .familiarity import Familiarity
from .learned_model import FORMAT_VERSION, READABLE_FORMATS, LearnedModel
from .learned_training import L2_GRID, LINEAR_WEIGHTS, METHODS, read_examples, train
from .predictors import Groups, Knn, Linear, RidgePath, fit_groups, kmeans, mix
from .route_calibration import Calibration, TopicEvidence, calibrate, choose, ladder_cost


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
        if self.model.unfamiliar(E)[0]:
            return len(self.model.models) - 1, q[0], loss[0]
        return int(choose(loss, self.model.thresholds(E))[0]), q[0], loss[0]

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
        fam = self.model.familiarity
        strange = float(fam.strangeness(E)[0]) if fam is not None else None
        ood = strange is not None and fam is not None and strange > fam.threshold
        careful = self.model.calibration.careful_threshold
        new_topic = bool(self.model.new_topic(E)[0])
        threshold = float(self.model.thresholds(E)[0])
        # a ridge estimate can stray just outside [0, 1]; the note shows it as a probability (the rule uses it raw)
        scores = {f"p_ok:{m}": round(min(max(float(v), 0.0), 1.0), 4) for m, v in zip(models, q, strict=True)}
        scores["threshold"] = round(threshold, 4)
        if strange is not None and fam is not None:
            scores["strangeness"] = round(strange, 4)
            scores["strangeness_threshold"] = round(fam.threshold, 4)
            if careful is not None and fam.topic_threshold is not None:
                scores["new_topic_strangeness_threshold"] = round(fam.topic_threshold, 4)
        topic = " (maybe a new topic: careful threshold)" if new_topic else ""
        if ood:
            reason = f"unlike the training prompts (strangeness {strange:.3f} > {fam.threshold:.3f}): {models[-1]}"  # type: ignore[union-attr]
        elif idx < len(models) - 1:
            reason = f"predicted loss {loss[idx]:.3f} <= {threshold:.3f}{topic} on {models[idx]}"
        else:
            reason = f"no cheaper model within {threshold:.3f}{topic} of {models[-1]}"
        notes = {"route_ood": bool(ood)}
        if careful is not None:
            notes["route_new_topic"] = new_topic and not ood
        return Decision(tiers=tuple((m,) for m in models[idx:]), reason=reason, scores=scores, notes=notes)

    def __repr__(self) -> str:
        return f"Learned({list(self.model.models)}, threshold={self.model.threshold:.4f}, method={self.model.method!r})"


__all__ = [
    "FORMAT_VERSION",
    "L2_GRID",
    "LINEAR_WEIGHTS",
    "METHODS",
    "READABLE_FORMATS",
    "Calibration",
    "Familiarity",
    "Groups",
    "Knn",
    "LearnedModel",
    "LearnedStrategy",
    "Linear",
    "RidgePath",
    "TopicEvidence",
    "calibrate",
    "choose",
    "fit_groups",
    "kmeans",
    "ladder_cost",
    "mix",
    "read_examples",
    "train",
]
