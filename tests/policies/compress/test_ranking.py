import numpy as np
import pytest

from costkit import ConfigError
from costkit.policies.compress.ranking import Ranker, RankWeights


def test_lexical_and_chunk_signals_rank_the_answer_sentence_first():
    units = ["Rollo was the first duke.", "They spoke French.", "Sky is a broadcaster."]
    chunks = ["Rollo was the first duke. They spoke French.", "Sky is a broadcaster."]
    scores = Ranker(embedder=None).score("Who was the first duke?", units, [0, 0, 1], chunks)
    assert scores.argmax() == 0
    assert scores[1] > scores[2]  # same chunk as the answer: the chunk signal lifts it
    assert np.all((scores >= 0) & (scores <= 1))


def test_semantic_signal_uses_the_embedder():
    class Fixed:
        name, dim = "fixed", 2

        def __call__(self, texts):
            return np.array([[1.0, 0.0] if "cat" in t else [0.0, 1.0] for t in texts], dtype=np.float32)

    ranker = Ranker(embedder=Fixed(), weights=RankWeights(lexical=0.0, chunk=0.0, semantic=1.0))
    scores = ranker.score("a cat?", ["dogs bark", "cats purr and cat naps"], [0, 1], ["x", "y"])
    assert list(scores) == [0.0, 1.0]


def test_weights_are_checked():
    with pytest.raises(ConfigError) as err:
        RankWeights(chunk=-1)
    assert err.value.field == "weights.chunk"
    with pytest.raises(ConfigError):
        Ranker(weights=RankWeights(lexical=0, chunk=0, semantic=0))
