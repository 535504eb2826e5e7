"""Familiarity: a conformal share of training-like prompts is flagged; far prompts go to the strongest model."""

from __future__ import annotations

import numpy as np
import pytest
from test_learned import EMBEDDER, examples, routed_model

from costkit import ConfigError, Router
from costkit.policies.routing.familiarity import check_rate, check_topic_rate, fit, leave_one_out
from costkit.policies.routing.learned import LearnedModel


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_about_rate_of_new_in_distribution_prompts_are_flagged() -> None:
    rng = np.random.default_rng(0)
    centre = rng.normal(size=16)
    X = _unit(centre + rng.normal(scale=0.5, size=(2000, 16)))
    fam, scores = fit(X[:1000], rate=0.05)
    flagged = scores > fam.threshold
    assert flagged.mean() <= 0.06
    fresh = fam.unfamiliar(X[1000:]).mean()
    assert 0.01 < fresh < 0.1  # conformal: about the rate on new prompts like the training ones
    far = _unit(-centre + rng.normal(scale=0.5, size=(100, 16)))
    assert fam.unfamiliar(far).all()


def test_leave_one_out_does_not_count_a_prompt_as_its_own_neighbour() -> None:
    X = _unit(np.eye(4, dtype=np.float32) + 0.01)
    assert (leave_one_out(X, k=1) > 0.5).all()


def test_an_unfamiliar_prompt_goes_to_the_strongest_model_and_says_so() -> None:
    router = Router.learned(examples(), models=["cheap", "strong"], embedder=EMBEDDER)
    model, call = routed_model(router, "chat question 7")
    assert model == "cheap" and call.notes["route_ood"] is False
    # a text the topic embedder places on neither training axis: far from every training prompt
    far_router = Router.learned(examples(), models=["cheap", "strong"], embedder=EMBEDDER, ood_rate=0.02)
    fam = far_router.learned_model.familiarity
    assert fam is not None and fam.rate == 0.02
    E = np.zeros((1, 8), dtype=np.float32)
    E[0, 5] = 1.0
    assert far_router.learned_model.unfamiliar(E)[0] and far_router.learned_model.route(E)[0] == 1


def test_the_check_can_be_turned_off_and_survives_save_and_load(tmp_path) -> None:
    off = Router.learned(examples(), models=["cheap", "strong"], embedder=EMBEDDER, ood_rate=None)
    assert off.learned_model.familiarity is None
    on = Router.learned(examples(), models=["cheap", "strong"], embedder=EMBEDDER)
    on.save(tmp_path / "r.npz")
    loaded = LearnedModel.load(tmp_path / "r.npz")
    assert loaded.familiarity is not None and loaded.familiarity.threshold == on.learned_model.familiarity.threshold
    assert np.array_equal(loaded.familiarity.X, on.learned_model.familiarity.X)


@pytest.mark.parametrize("bad", [0, 0.5, -0.1, True, "0.02"])
def test_bad_rate(bad: object) -> None:
    with pytest.raises(ConfigError) as err:
        check_rate(bad)
    assert err.value.field == "ood_rate"


def test_the_topic_level_flags_about_topic_rate_of_prompts_like_the_training_ones() -> None:
    rng = np.random.default_rng(1)
    centre = rng.normal(size=16)
    X = _unit(centre + rng.normal(scale=0.5, size=(2000, 16)))
    fam, _ = fit(X[:1000], rate=0.02, topic_rate=0.3)
    assert fam.topic_threshold is not None and fam.topic_threshold < fam.threshold
    assert 0.2 < fam.new_topic(X[1000:]).mean() < 0.4
    far = _unit(-centre + rng.normal(scale=0.5, size=(50, 16)))
    assert fam.new_topic(far).all()
    plain, _ = fit(X[:1000], rate=0.02)
    assert not plain.new_topic(far).any()  # no topic level: nobody gets the careful threshold


@pytest.mark.parametrize("bad", [0, 1.0, -0.3, True, "0.3", 0.01])
def test_bad_topic_rate(bad: object) -> None:
    with pytest.raises(ConfigError) as err:
        check_topic_rate(bad, ood_rate=0.02)
    assert err.value.field == "topic_rate"
    with pytest.raises(ConfigError) as err:
        Router.learned(examples(groups=True), models=["cheap", "strong"], embedder=EMBEDDER, topic_rate=bad)
    assert err.value.field == "topic_rate"
