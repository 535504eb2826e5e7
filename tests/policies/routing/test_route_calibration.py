"""Route calibration: the threshold keeps the target at a stated confidence, and reports the bound."""

from __future__ import annotations

import numpy as np
import pytest

from costkit import ConfigError
from costkit.policies.routing.route_calibration import TopicEvidence, calibrate, check_confidence, choose


def _data(n: int = 2000, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    loss = rng.random((n, 1))
    ok = np.stack([rng.random(n) < 1 - loss[:, 0] * 0.5, rng.random(n) < 0.9], axis=1).astype(np.float32)
    return loss, ok


def test_higher_confidence_is_more_careful_and_the_bound_holds_at_the_threshold() -> None:
    loss, ok = _data()
    bold = calibrate(loss, ok, 0.95, ["a", "b"], confidence=0.6)
    careful = calibrate(loss, ok, 0.95, ["a", "b"], confidence=0.99)
    assert careful.threshold <= bold.threshold and careful.shares["b"] >= bold.shares["b"]
    for cal in (bold, careful):
        assert cal.quality_ratio_lower_bound >= 0.95 - 1e-9
        assert cal.quality_ratio >= cal.quality_ratio_lower_bound


def test_the_target_holds_on_new_data_at_the_stated_confidence() -> None:
    """Calibrate on one sample, measure on fresh samples of the same process: the target holds in most."""
    loss, ok = _data(seed=1)
    cal = calibrate(loss, ok, 0.95, ["a", "b"], confidence=0.95)
    kept = 0
    for seed in range(100, 140):
        l2, ok2 = _data(seed=seed)
        idx = np.where(l2[:, 0] <= cal.threshold, 0, 1)
        kept += ok2[np.arange(len(idx)), idx].mean() >= 0.95 * ok2[:, 1].mean()
    assert kept >= 36  # 90% of 40 fresh samples (the promise is 95%, with sampling noise)


def test_margin_overrides_the_confidence_for_old_routers() -> None:
    loss, ok = _data()
    fixed = calibrate(loss, ok, 0.95, ["a", "b"], margin=0.0)
    assert fixed.threshold >= calibrate(loss, ok, 0.95, ["a", "b"]).threshold


@pytest.mark.parametrize("bad", [0.3, 1.0, "0.9", True])
def test_bad_confidence(bad: object) -> None:
    with pytest.raises(ConfigError) as err:
        check_confidence(bad)
    assert err.value.field == "confidence"


def test_clustered_errors_make_a_more_careful_threshold() -> None:
    """When a topic's examples err together, the bound counts topics: the threshold moves back."""
    rng = np.random.default_rng(5)
    n, topics = 2000, 20
    cluster = np.repeat(np.arange(topics), n // topics)
    topic_skill = rng.random(topics)[cluster]  # the cheap model is good or bad on a whole topic
    loss = (1 - topic_skill + rng.normal(0, 0.2, n))[:, None]
    ok = np.stack([rng.random(n) < topic_skill, rng.random(n) < 0.9], axis=1).astype(np.float32)
    iid = calibrate(loss, ok, 0.95, ["a", "b"])
    clustered = calibrate(loss, ok, 0.95, ["a", "b"], clusters=cluster)
    assert clustered.threshold <= iid.threshold and clustered.shares["b"] >= iid.shares["b"]


def test_holdout_groups_needs_groups_and_is_checked() -> None:
    from test_learned import EMBEDDER, examples

    from costkit import Router

    with pytest.raises(ConfigError) as err:
        Router.learned(examples(), models=["cheap", "strong"], embedder=EMBEDDER, holdout="groups")
    assert err.value.field == "holdout"
    with pytest.raises(ConfigError):
        Router.learned(examples(groups=True), models=["cheap", "strong"], embedder=EMBEDDER, holdout="topics")
    router = Router.learned(examples(groups=True), models=["cheap", "strong"], embedder=EMBEDDER, holdout="groups")
    assert router.learned_model.calibration.quality_ratio_lower_bound >= 0.95 - 1e-9


def _topic_evidence(loss: np.ndarray, seed: int, informative: bool) -> TopicEvidence:
    """Topic-fold predictions: as good as the random folds', or mostly noise (a new topic fools the predictors)."""
    rng = np.random.default_rng(seed)
    n = len(loss)
    topic_loss = loss if informative else rng.random((n, 1))
    return TopicEvidence(
        loss=topic_loss,
        new=rng.random(n) < 0.5,
        new_in_random_folds=rng.random(n) < 0.3,
        clusters=np.arange(n) % 40,
    )


def test_topic_folds_that_predict_worse_give_new_topics_a_careful_threshold() -> None:
    loss, ok = _data(seed=7)
    plain = calibrate(loss, ok, 0.95, ["a", "b"])
    cal = calibrate(loss, ok, 0.95, ["a", "b"], topics=_topic_evidence(loss, 8, informative=False))
    assert plain.careful_threshold is None and plain.new_topic_quality_ratio_lower_bound is None
    assert cal.careful_threshold is not None and cal.careful_threshold < cal.threshold <= plain.threshold
    assert cal.quality_ratio_lower_bound >= 0.95 - 1e-9  # the familiar traffic's promise still holds
    new_topic_bound = cal.new_topic_quality_ratio_lower_bound
    assert new_topic_bound is not None and new_topic_bound >= 0.95 - 1e-9
    good = calibrate(loss, ok, 0.95, ["a", "b"], topics=_topic_evidence(loss, 8, informative=True))
    assert good.careful_threshold is not None and good.careful_threshold > cal.careful_threshold


def test_the_careful_threshold_is_used_per_row() -> None:
    loss = np.array([[0.1], [0.1], [0.5]])
    assert choose(loss, np.array([0.2, 0.0, 0.6])).tolist() == [0, 1, 0]
