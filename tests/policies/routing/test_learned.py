"""Learned router: predicts per-model quality from labeled prompts, calibrated to a target, saved and loaded."""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pytest

from costkit import Call, ConfigError, Result, Router, Usage
from costkit._pipeline import Pipeline
from costkit.embedders import CallableEmbedder
from costkit.policies.routing.learned import (
    LearnedModel,
    LearnedStrategy,
    RidgePath,
    calibrate,
    choose,
    kmeans,
    ladder_cost,
)


def topic_vectors(texts: list[str]) -> np.ndarray:
    """A deterministic stand-in embedder: the topic word sets one axis, a hash adds per-text jitter."""
    out = np.zeros((len(texts), 8), dtype=np.float32)
    for i, t in enumerate(texts):
        out[i, 0 if t.startswith("math") else 1] = 1.0
        rng = np.random.default_rng(zlib.crc32(t.encode()))
        out[i, 2:] = rng.normal(0, 0.15, 6)
    return out


EMBEDDER = CallableEmbedder(topic_vectors, dim=8, name="test-topics")


def examples(n: int = 200, seed: int = 0, groups: bool = False) -> list[dict[str, Any]]:
    """Cheap is right on 95% of chat but 20% of math; strong is right on 95% of both."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        topic = "math" if i % 2 else "chat"
        cheap_ok = rng.random() < (0.2 if topic == "math" else 0.95)
        ok = {"cheap": cheap_ok, "strong": rng.random() < 0.95}
        ex: dict[str, Any] = {"prompt": f"{topic} question {i}", "ok": ok}
        if groups:
            ex["group"] = topic
        out.append(ex)
    return out


def call_for(text: str) -> Call:
    return Call(provider="openai", api="chat", requested_model="strong", model="strong",
                messages=({"role": "user", "content": text},))


def routed_model(router: Router, text: str) -> tuple[str, Call]:
    seen: list[Call] = []

    def terminal(call: Call) -> Result:
        seen.append(call)
        return Result(text="x", model=call.model, usage=Usage(input_tokens=5, output_tokens=1))

    Pipeline([router], terminal).run(call_for(text))
    return seen[0].model, seen[0]


@pytest.mark.parametrize(("method", "groups"), [("ensemble", True), ("ensemble", False), ("knn", False),
                                                ("groups", True), ("groups", False)])
def test_easy_topic_goes_cheap_and_hard_topic_goes_strong(method: str, groups: bool) -> None:
    router = Router.learned(examples(groups=groups), models=["cheap", "strong"], embedder=EMBEDDER, method=method)
    assert routed_model(router, "chat question 9001")[0] == "cheap"
    assert routed_model(router, "math question 9001")[0] == "strong"
    cal = router.learned_model.calibration
    assert cal.quality >= 0.95 * cal.strongest_quality
    assert cal.shares["cheap"] == pytest.approx(0.5, abs=0.1)


def test_decision_notes_carry_the_predictions_and_the_threshold() -> None:
    router = Router.learned(examples(), models=["cheap", "strong"], embedder=EMBEDDER)
    _, call = routed_model(router, "chat question 77")
    scores = call.notes["route_scores"]
    assert set(scores) == {"p_ok:cheap", "p_ok:strong", "threshold", "strangeness", "strangeness_threshold"}
    assert scores["p_ok:cheap"] > 0.8 and call.notes["route_ood"] is False
    assert call.notes["route_reason"].startswith("predicted loss")
    assert call.notes["routed_from"] == "strong"


def test_a_target_of_one_keeps_hard_calls_on_the_strong_model_and_lower_targets_route_more() -> None:
    model = Router.learned(examples(), models=["cheap", "strong"], embedder=EMBEDDER).learned_model
    strict, loose = model.with_target(1.0), model.with_target(0.5)
    assert strict.calibration.shares["strong"] >= model.calibration.shares["strong"]
    assert loose.calibration.shares["strong"] <= model.calibration.shares["strong"]
    assert loose.threshold >= strict.threshold


def test_save_and_load_give_the_same_decisions(tmp_path: Path) -> None:
    router = Router.learned(examples(groups=True), models=["cheap", "strong"], embedder=EMBEDDER)
    path = tmp_path / "router.npz"
    router.save(path)
    loaded = Router.load(path, embedder=EMBEDDER)
    E = EMBEDDER([f"{t} question {i}" for t in ("math", "chat") for i in range(20)])
    a, b = router.learned_model, loaded.learned_model
    np.testing.assert_allclose(a.loss(E), b.loss(E), rtol=1e-6)
    assert b.threshold == a.threshold and b.models == ("cheap", "strong") and b.calibration == a.calibration
    assert Router.load(path, embedder=EMBEDDER, target_quality=1.0).learned_model.calibration.target_quality == 1.0


def test_loading_with_another_embedder_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "router.npz"
    Router.learned(examples(), models=["cheap", "strong"], embedder=EMBEDDER).save(path)
    other = CallableEmbedder(topic_vectors, dim=8, name="another")
    with pytest.raises(ConfigError) as info:
        Router.load(path, embedder=other)
    assert info.value.field == "embedder"
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ConfigError) as info:
        Router.load(tmp_path / "junk.npz", embedder=EMBEDDER)
    assert info.value.field == "path"


def test_three_models_pick_the_cheapest_that_suffices() -> None:
    rng = np.random.default_rng(1)
    exs = []
    for i in range(300):
        topic = ("chat", "math", "code")[i % 3]
        tiny_ok = topic == "chat" and rng.random() < 0.95
        mid_ok = topic in ("chat", "math") and rng.random() < 0.95
        exs.append({"prompt": f"{topic} q{i}", "ok": {"tiny": tiny_ok, "mid": mid_ok, "big": rng.random() < 0.97}})

    def vec(texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), 4), dtype=np.float32)
        for j, t in enumerate(texts):
            out[j, ("chat", "math", "code").index(t.split()[0])] = 1.0
            out[j, 3] = (zlib.crc32(t.encode()) % 100) / 500
        return out

    router = Router.learned(
        exs, models=["tiny", "mid", "big"], embedder=CallableEmbedder(vec, dim=4, name="t3"), target_quality=0.9
    )
    assert routed_model(router, "chat new")[0] == "tiny"
    assert routed_model(router, "math new")[0] == "mid"
    model, call = routed_model(router, "code new")
    assert model == "big" and call.notes["route_reason"].startswith("no cheaper model")


@pytest.mark.parametrize(
    ("exs", "kwargs", "field"),
    [
        ([{"prompt": 1, "ok": {}}], {}, "examples[0].prompt"),
        ([{"prompt": "a", "ok": {"cheap": True}}], {}, "examples[0].ok"),
        (["nope"], {}, "examples[0]"),
        (None, {"target_quality": 1.5}, "target_quality"),
        (None, {"target_quality": 0}, "target_quality"),
        (None, {"method": "svm"}, "method"),
        (None, {"k": 0}, "k"),
        (None, {"folds": 1}, "folds"),
        (None, {"group_weight": 1.5}, "group_weight"),
        (None, {"margin": -1}, "margin"),
        (None, {"models": ["only"]}, "models"),
        (None, {"models": ["a", "a"]}, "models"),
    ],
)
def test_bad_training_input_fails_naming_the_field(exs: Any, kwargs: dict[str, Any], field: str) -> None:
    args: dict[str, Any] = {"models": ["cheap", "strong"], "embedder": EMBEDDER, **kwargs}
    with pytest.raises(ConfigError) as info:
        Router.learned(examples() if exs is None else exs, **args)
    assert info.value.field == field


def test_too_few_examples_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as info:
        Router.learned(examples(10), models=["cheap", "strong"], embedder=EMBEDDER)
    assert info.value.field == "examples"


def test_calibration_takes_the_first_crossing_not_a_later_spike() -> None:
    # threshold order: a loss of 0.1 already breaks the target; 0.3 would recover it by luck.
    loss = np.array([[0.0], [0.1], [0.3], [0.3]])
    ok = np.array([[1, 1], [0, 1], [1, 0], [1, 0]], dtype=np.float32)  # columns: cheap, strong
    cal = calibrate(loss, ok, 1.0, ["cheap", "strong"])
    assert cal.threshold == 0.0
    assert cal.shares == {"cheap": 0.25, "strong": 0.75}


def test_choose_and_kmeans_helpers() -> None:
    loss = np.array([[0.5, 0.01], [0.0, 0.0], [0.4, 0.3]])
    assert choose(loss, 0.05).tolist() == [1, 0, 2]
    X = np.vstack([np.tile([1.0, 0.0], (5, 1)), np.tile([0.0, 1.0], (5, 1))]).astype(np.float32)
    labels = kmeans(X, 2, seed=0)
    assert len(set(labels[:5])) == 1 and len(set(labels[5:])) == 1 and labels[0] != labels[5]


def test_learned_model_is_a_plain_value() -> None:
    model = Router.learned(examples(), models=["cheap", "strong"], embedder=EMBEDDER).learned_model
    assert isinstance(model, LearnedModel) and model.embedder_name == "test-topics" and model.dim == 8


def test_a_larger_margin_is_more_careful() -> None:
    rng = np.random.default_rng(3)
    loss = rng.random((400, 1))
    ok = np.stack([rng.random(400) < 1 - loss[:, 0] * 0.5, rng.random(400) < 0.9], axis=1).astype(np.float32)
    bold, careful = calibrate(loss, ok, 0.95, ["a", "b"], margin=0.0), calibrate(loss, ok, 0.95, ["a", "b"], margin=2.0)
    assert careful.threshold <= bold.threshold
    assert careful.shares["b"] >= bold.shares["b"]
    assert bold.quality >= 0.95 * bold.strongest_quality - 1e-9


class NetworkEmbedder:
    """An embedder with an async path, like costkit's ProviderEmbedder; counts which path was used."""

    name, dim = "test-topics", 8

    def __init__(self) -> None:
        self.sync_calls = self.async_calls = 0

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.sync_calls += 1
        return topic_vectors(texts)

    async def aembed(self, texts: list[str]) -> np.ndarray:
        self.async_calls += 1
        return topic_vectors(texts)


async def test_an_async_pipeline_awaits_the_embedder_and_routes_the_same() -> None:
    trained = Router.learned(examples(), models=["cheap", "strong"], embedder=EMBEDDER).learned_model
    emb = NetworkEmbedder()
    router = Router(LearnedStrategy(trained, embedder=emb))
    seen: list[Call] = []

    async def aterminal(call: Call) -> Result:
        seen.append(call)
        return Result(text="x", model=call.model, usage=Usage(input_tokens=5, output_tokens=1))

    def terminal(call: Call) -> Result:
        seen.append(call)
        return Result(text="x", model=call.model, usage=Usage(input_tokens=5, output_tokens=1))

    pipeline = Pipeline([router], terminal, aterminal)
    await pipeline.arun(call_for("chat question 5"))
    await pipeline.arun(call_for("math question 5"))
    assert [c.model for c in seen] == ["cheap", "strong"]
    assert (emb.async_calls, emb.sync_calls) == (2, 0)
    pipeline.run(call_for("chat question 6"))
    assert seen[-1].model == "cheap" and emb.sync_calls == 1


async def test_an_async_embedder_failure_degrades_to_the_requested_model() -> None:
    import warnings

    trained = Router.learned(examples(), models=["cheap", "strong"], embedder=EMBEDDER).learned_model

    class Down(NetworkEmbedder):
        async def aembed(self, texts: list[str]) -> np.ndarray:
            raise ConnectionError("embeddings endpoint down")

    router = Router(LearnedStrategy(trained, embedder=Down()))

    async def aterminal(call: Call) -> Result:
        return Result(text="x", model=call.model)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = await Pipeline([router], lambda c: Result(), aterminal).arun(call_for("chat question 5"))
    assert result.model == "strong"
    assert any("ConnectionError" in str(w.message) for w in caught)


def test_the_ensemble_holds_a_ridge_model_chosen_by_cross_validation() -> None:
    model = Router.learned(examples(), models=["cheap", "strong"], embedder=EMBEDDER).learned_model
    assert model.linear is not None and model.knn is not None
    assert model.linear.l2 in (0.1, 0.03, 0.01, 0.003)
    assert 0.0 <= model.linear_weight <= 1.0
    assert len(model.selection) == 4 * 5  # every penalty x every blend weight was scored on held-out folds
    assert all(0.0 <= v <= 1.0 for v in model.selection.values())


def test_the_linear_method_predicts_each_models_success_and_routes_on_the_difference() -> None:
    router = Router.learned(examples(), models=["cheap", "strong"], embedder=EMBEDDER, method="linear")
    model = router.learned_model
    assert model.knn is None and model.groups is None and model.linear_weight == 1.0
    q = model.quality(EMBEDDER(["chat question 5000", "math question 5000"]))
    assert q[0, 0] == pytest.approx(0.95, abs=0.1) and q[1, 0] == pytest.approx(0.2, abs=0.1)
    assert q[:, 1] == pytest.approx([0.95, 0.95], abs=0.1)
    assert routed_model(router, "chat question 9001")[0] == "cheap"
    assert routed_model(router, "math question 9001")[0] == "strong"


def test_ridge_path_matches_a_direct_ridge_solve() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 5)).astype(np.float32)
    Y = (rng.random((60, 2)) < 0.5).astype(np.float32)
    path = RidgePath(X, Y)
    lin = path.fit(0.1)
    Xc = X.astype(np.float64) - X.mean(axis=0)
    lam = 0.1 * float((Xc**2).sum())
    B = np.linalg.solve(Xc.T @ Xc + lam * np.eye(5), Xc.T @ (Y - Y.mean(axis=0)))
    np.testing.assert_allclose(lin.predict(X), Xc @ B + Y.mean(axis=0), atol=1e-5)


def test_ladder_cost_is_the_strong_share_at_the_target() -> None:
    # strong helps exactly on rows 0 and 1; a loss ranking them first needs 2 of 10 strong calls at the target
    ok = np.array([[0, 1]] * 2 + [[1, 1]] * 8, dtype=np.float32)
    good = np.array([[0.9], [0.8]] + [[0.0]] * 8)
    bad = good[::-1].copy()
    assert ladder_cost(good, ok, 1.0) == pytest.approx(0.2)
    assert ladder_cost(bad, ok, 1.0) == pytest.approx(1.0)


def test_a_router_saved_in_the_previous_format_still_loads(tmp_path: Path) -> None:
    router = Router.learned(examples(groups=True), models=["cheap", "strong"], embedder=EMBEDDER, method="knn")
    model = router.learned_model
    path = tmp_path / "v1.npz"
    meta = {
        "format": 1, "models": list(model.models), "method": "ensemble", "embedder_name": model.embedder_name,
        "dim": model.dim, "group_weight": 0.6, "margin": 1.0, "calibration": attrs.asdict(model.calibration),
        "knn": {"k": model.knn.k, "temperature": model.knn.temperature, "alpha": model.knn.alpha},
    }
    np.savez(path, oof_loss=model.oof_loss, oof_ok=model.oof_ok, knn_X=model.knn.X, knn_Y=model.knn.Y,
             knn_prior=model.knn.prior, meta=np.array(json.dumps(meta)))
    loaded = Router.load(path, embedder=EMBEDDER).learned_model
    assert loaded.linear is None and loaded.linear_weight == 0.0
    E = EMBEDDER(["chat question 1", "math question 1"])
    np.testing.assert_allclose(loaded.loss(E), model.loss(E), rtol=1e-6)


SUBJECTS = 12  # training subjects; "subject12" and up are never seen in training


def subject_vectors(texts: list[str]) -> np.ndarray:
    """Subjects close to each other (like MMLU's): a shared axis, a weaker subject axis, per-text jitter."""
    out = np.zeros((len(texts), 32), dtype=np.float32)
    for i, t in enumerate(texts):
        out[i, 0] = 1.0
        out[i, 1 + int(t.split()[0].removeprefix("subject"))] = 0.6
        out[i, 17:] = np.random.default_rng(zlib.crc32(t.encode())).normal(0, 0.3, 15)
    return out / np.linalg.norm(out, axis=1, keepdims=True)


SUBJECT_EMBEDDER = CallableEmbedder(subject_vectors, dim=32, name="test-subjects")


def subject_examples(n: int = 600, groups: bool = True) -> list[dict[str, Any]]:
    """The cheap model is right on 95% of the even subjects' questions and 30% of the odd ones'."""
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        s = i % SUBJECTS
        ok = {"cheap": bool(rng.random() < (0.3 if s % 2 else 0.95)), "strong": bool(rng.random() < 0.95)}
        out.append({"prompt": f"subject{s} question {i}", "ok": ok, **({"group": f"subject{s}"} if groups else {})})
    return out


def test_a_prompt_on_a_subject_never_seen_gets_the_careful_threshold_and_says_so() -> None:
    router = Router.learned(subject_examples(), models=["cheap", "strong"], embedder=SUBJECT_EMBEDDER)
    model = router.learned_model
    cal = model.calibration
    assert cal.careful_threshold is not None and cal.careful_threshold < cal.threshold
    assert cal.new_topic_quality_ratio_lower_bound is not None and cal.new_topic_quality_ratio_lower_bound >= 0.95
    unseen = "subject12 question 1"
    E = SUBJECT_EMBEDDER([unseen])
    assert model.new_topic(E)[0] and not model.unfamiliar(E)[0]
    assert cal.careful_threshold < model.loss(E)[0, 0] <= cal.threshold  # one threshold would send it cheap
    chosen, call = routed_model(router, unseen)
    assert chosen == "strong" and call.notes["route_new_topic"] is True and call.notes["route_ood"] is False
    assert call.notes["route_scores"]["threshold"] == round(cal.careful_threshold, 4)
    familiar = [f"subject0 question {9000 + i}" for i in range(20)]
    flags = model.new_topic(SUBJECT_EMBEDDER(familiar))
    assert 0.2 < flags.mean() < 0.8  # about topic_rate (0.5) of prompts like the training ones
    chosen, call = routed_model(router, familiar[int(np.argmin(flags))])
    assert chosen == "cheap" and call.notes["route_new_topic"] is False

    one_threshold = Router.learned(
        subject_examples(), models=["cheap", "strong"], embedder=SUBJECT_EMBEDDER, topic_rate=None
    )
    assert one_threshold.learned_model.calibration.careful_threshold is None
    chosen, call = routed_model(one_threshold, unseen)
    assert chosen == "cheap" and "route_new_topic" not in call.notes


def test_without_groups_there_is_one_threshold() -> None:
    router = Router.learned(subject_examples(groups=False), models=["cheap", "strong"], embedder=SUBJECT_EMBEDDER)
    assert router.learned_model.calibration.careful_threshold is None and router.learned_model.topics is None
    _, call = routed_model(router, "subject12 question 1")
    assert "route_new_topic" not in call.notes
    grouped = Router.learned(
        subject_examples(), models=["cheap", "strong"], embedder=SUBJECT_EMBEDDER, holdout="groups"
    )
    assert grouped.learned_model.calibration.careful_threshold is None  # every prompt already calibrated on new groups
    two_groups = Router.learned(examples(groups=True), models=["cheap", "strong"], embedder=EMBEDDER)
    assert two_groups.learned_model.calibration.careful_threshold is None  # fewer groups than folds: no topic folds


def test_the_careful_threshold_survives_save_load_and_a_new_target(tmp_path: Path) -> None:
    router = Router.learned(subject_examples(), models=["cheap", "strong"], embedder=SUBJECT_EMBEDDER)
    router.save(tmp_path / "r.npz")
    loaded = Router.load(tmp_path / "r.npz", embedder=SUBJECT_EMBEDDER).learned_model
    assert loaded.calibration == router.learned_model.calibration
    assert loaded.familiarity is not None and loaded.familiarity.topic_rate == 0.5
    E = SUBJECT_EMBEDDER([f"subject{s} question {i}" for s in range(16) for i in range(3)])
    assert np.array_equal(loaded.route(E), router.learned_model.route(E))
    stricter = Router.load(tmp_path / "r.npz", embedder=SUBJECT_EMBEDDER, target_quality=0.99).learned_model
    assert stricter.calibration.careful_threshold is not None
    assert stricter.calibration.careful_threshold <= loaded.calibration.careful_threshold  # type: ignore[operator]
    assert stricter.calibration.threshold <= loaded.calibration.threshold


def test_a_router_saved_in_format_3_still_loads_with_one_threshold(tmp_path: Path) -> None:
    model = Router.learned(examples(), models=["cheap", "strong"], embedder=EMBEDDER).learned_model
    model.save(tmp_path / "v4.npz")
    with np.load(tmp_path / "v4.npz", allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    meta = json.loads(str(arrays["meta"]))
    meta["format"] = 3
    for key in ("careful_threshold", "new_topic_quality_ratio", "new_topic_quality_ratio_lower_bound"):
        del meta["calibration"][key]
    for key in ("topic_rate", "topic_threshold"):
        del meta["familiarity"][key]
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(tmp_path / "v3.npz", **arrays)  # type: ignore[arg-type]
    loaded = LearnedModel.load(tmp_path / "v3.npz")
    assert loaded.calibration.careful_threshold is None and loaded.familiarity is not None
    assert loaded.familiarity.topic_threshold is None
    E = EMBEDDER(["chat question 1", "math question 1"])
    assert loaded.route(E).tolist() == [0, 1]
