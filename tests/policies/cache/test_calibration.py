"""Calibration: the bound, the threshold walk, the simulated cache, and the held-out guarantee."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import numpy as np
import pytest

from costkit.embedders import default_embedder
from costkit.errors import ConfigError
from costkit.policies.cache.calibration import (
    FEATURES,
    Calibration,
    Scorer,
    calibrate,
    default_calibration,
    feature_tensor,
    max_allowed_wrong,
    pair_features,
    simulate,
    upper_bound,
    veto_mask,
)

QQP = Path(__file__).resolve().parents[3] / "benchmarks" / "data" / "qqp_pairs_dev.jsonl"


def test_upper_bound_matches_clopper_pearson() -> None:
    scipy_stats = pytest.importorskip("scipy.stats")
    for k, n in [(0, 100), (3, 100), (50, 1000), (120, 12000)]:
        expected = 1.0 if k == n else float(scipy_stats.beta.ppf(0.95, k + 1, n - k))
        assert upper_bound(k, n, 0.95) == pytest.approx(expected, rel=1e-6)
    assert upper_bound(5, 5, 0.95) == 1.0
    assert upper_bound(0, 0, 0.95) == 1.0


def test_max_allowed_wrong_is_the_largest_count_within_the_bound() -> None:
    w = max_allowed_wrong(10_000, 0.02, 0.95)
    assert upper_bound(w, 10_000, 0.95) <= 0.02 < upper_bound(w + 1, 10_000, 0.95)
    assert max_allowed_wrong(100, 0.01, 0.95) == -1  # 100 lookups cannot show 1% at 95%


def _cal(right, wrong, n=10_000, **kw) -> Calibration:
    return Calibration(
        embedder="e",
        scorer=Scorer(None),
        n_lookups=n,
        n_duplicates=n // 2,
        n_entries=n,
        right_scores=tuple(right),
        wrong_scores=tuple(wrong),
        **kw,
    )


def test_threshold_walk_stops_at_the_first_failing_step() -> None:
    cal = _cal([0.99] * 50 + [0.9] * 50, [0.97] * 100 + [0.85] * 100 + [0.5] * 1000)
    assert cal.threshold(0.02) == 0.9
    assert cal.threshold(0.25) == 0.5
    assert cal.threshold(0.005) == 0.99
    nothing = _cal([0.9], [0.95] * 500)
    assert nothing.threshold(0.01) == math.inf
    # ties: a threshold admits every pick at its score, wrong ones included
    tied = _cal([0.8] * 10, [0.8] * 300)
    assert tied.threshold(0.02) == math.inf


def test_expected_and_json_roundtrip(tmp_path) -> None:
    cal = _cal([0.99] * 50 + [0.9] * 50, [0.97] * 100, source="unit")
    e = cal.expected(0.9)
    assert e["hit_rate_on_duplicates"] == 100 / 5000 and e["false_hit_rate"] == 100 / 10_000
    assert e["false_hit_rate_upper_bound"] > e["false_hit_rate"]
    cal.save(tmp_path / "c.json")
    assert Calibration.load(tmp_path / "c.json") == cal
    doc = cal.to_json()
    doc["version"] = 99
    with pytest.raises(ConfigError):
        Calibration.from_json(doc)


def test_learned_scorer_needs_the_same_features() -> None:
    cal = _cal([0.9], [0.5]).to_json()
    cal["scorer"] = {"features": ["cosine"], "weights": [1.0]}
    with pytest.raises(ConfigError, match="other scorer features"):
        Calibration.from_json(cal)


def test_config_errors() -> None:
    with pytest.raises(ConfigError) as e:
        _cal([], [], confidence=0.3)
    assert e.value.field == "confidence"
    with pytest.raises(ConfigError) as e:
        _cal([], []).threshold(0)
    assert e.value.field == "max_false_hit_rate"
    with pytest.raises(ConfigError) as e:
        calibrate([("a", "b", 1)] * 3, scorer="magic")
    assert e.value.field == "scorer"
    with pytest.raises(ConfigError) as e:
        calibrate([("a", "b")])
    assert e.value.field == "pairs[0]"
    with pytest.raises(ConfigError) as e:
        calibrate([{"a": "x"}])
    assert e.value.field == "pairs[0]"


def test_pair_features_shape_and_signals() -> None:
    same = pair_features("How do I learn Python?", "how do i learn python", 0.95)
    other = pair_features("How do I learn Python?", "How do I learn Java?", 0.9)
    assert len(same) == len(FEATURES)
    f = dict(zip(FEATURES, same, strict=True))
    g = dict(zip(FEATURES, other, strict=True))
    assert f["same_tokens"] == 1.0 and g["same_tokens"] == 0.0
    assert f["query_only_words"] == 0 and g["query_only_words"] == 1
    assert pair_features("Top 10 movies", "Top 5 movies", 0.99)[FEATURES.index("numbers_differ")] == 1.0


def _circle(texts):
    # A toy embedder: questions about topic i sit near angle i; the last word nudges them.
    out = []
    for t in texts:
        topic = int(t.split()[1])
        out.append([math.cos(topic * 0.3 + 0.01 * len(t)), math.sin(topic * 0.3 + 0.01 * len(t))])
    return np.asarray(out, dtype=np.float32)


def test_simulate_labels_own_duplicates_same_text_and_labeled_pairs() -> None:
    from costkit.embedders import CallableEmbedder

    emb = CallableEmbedder(_circle, dim=2, name="circle")
    pairs = [
        ("topic 1 question", "topic 1 question again", 1),
        ("topic 2 question", "topic 2 other thing", 0),
        ("topic 3 question", "topic 1 question", 0),  # the b is exactly another entry's text: right
    ]
    lk = simulate(pairs, emb, top_k=3)
    assert lk.entries == ("topic 1 question", "topic 2 question", "topic 3 question")
    for j, (a, b, d) in enumerate(pairs):
        for r in range(3):
            text = lk.entries[int(lk.candidates[j, r])]
            assert lk.right[j, r] == ((text == a and d == 1) or text == b)
    assert list(lk.duplicate) == [True, False, False]
    assert feature_tensor(lk).shape == (3, 3, len(FEATURES))


@pytest.fixture(scope="module")
def qqp_rows() -> list[dict]:
    return [json.loads(line) for line in QQP.read_text().splitlines()[:4000]]


@pytest.mark.slow
@pytest.mark.parametrize("scorer", ["cosine", "learned"])
def test_held_out_false_hit_rate_stays_under_target(qqp_rows: list[dict], scorer: str) -> None:
    """Calibrate on 2,000 QQP pairs, measure the same protocol on 2,000 others it never saw."""
    rows = list(qqp_rows)
    random.Random(7).shuffle(rows)
    cal_rows, test_rows = rows[:2000], rows[2000:]
    emb = default_embedder()
    cal = calibrate(cal_rows, emb, scorer=scorer)
    lk = simulate(test_rows, emb, top_k=cal.top_k)
    scores = feature_tensor(lk) @ np.asarray(cal.scorer.weights) if cal.scorer.weights else lk.cosines
    scores = np.where(veto_mask(lk), -np.inf, scores)  # scored as the cache scores: meaning flips vetoed
    m = scores.argmax(axis=1)
    best, ok = scores[np.arange(len(m)), m], lk.right[np.arange(len(m)), m]
    for delta in (0.02, 0.05):
        t = cal.threshold(delta)
        assert math.isfinite(t)
        fhr = float(((best >= t) & ~ok).sum() / len(best))
        # the held-out rate is itself a 2,000-lookup sample: allow one standard error of it
        assert fhr <= delta + math.sqrt(delta * (1 - delta) / len(best)), (delta, fhr)
        assert ((best >= t) & ok).sum() > 0  # it answers some duplicates


def test_default_calibration_file_is_valid() -> None:
    cal = default_calibration(default_embedder().name)
    assert cal is not None
    assert cal.embedder == default_embedder().name
    assert cal.scorer.weights is not None and len(cal.scorer.weights) == len(FEATURES)
    assert cal.n_lookups == 12_125 and "first half" in cal.source
    assert cal.threshold(0.01) >= cal.threshold(0.02) >= cal.threshold(0.05) > -math.inf
    assert default_calibration("no-such-embedder") is None


def test_thresholds_with_a_verifier_count_its_mistakes() -> None:
    """With a judge of stated accuracy, direct wrong picks plus the judge's expected misses stay within the bound."""
    cal = default_calibration(default_embedder().name)
    assert cal is not None
    allowed = max_allowed_wrong(cal.n_lookups, 0.02, cal.confidence)
    for accuracy in (0.9, 0.98, 1.0):
        direct, band = cal.thresholds_with_verifier(0.02, accuracy)
        assert band <= direct
        wrong_direct = sum(s >= direct for s in cal.wrong_scores)
        wrong_band = sum(band <= s < direct for s in cal.wrong_scores)
        assert wrong_direct + (1 - accuracy) * wrong_band <= allowed
    _direct, sure_band = cal.thresholds_with_verifier(0.02, 1.0)
    assert sure_band <= min(cal.right_scores) + 0.5  # a perfect judge may be shown (nearly) every right pick
    with pytest.raises(ConfigError) as err:
        cal.thresholds_with_verifier(0.02, 0.4)
    assert err.value.field == "verifier.accuracy"
