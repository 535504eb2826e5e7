"""SemanticCache: paraphrases hit inside their partition only, at the calibrated threshold; the rest misses."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from _cache_helpers import Provider, chat_call, completion, pipeline
from openai.types.chat import ChatCompletion

from costkit import Call, Tags
from costkit._warn import CostkitWarning
from costkit.embedders import CallableEmbedder, default_embedder
from costkit.errors import ConfigError
from costkit.policies.cache.calibration import Calibration, Scorer, default_calibration
from costkit.policies.cache.partition import partition_key, semantic_query
from costkit.policies.cache.semantic import SemanticCache
from costkit.policies.cache.semantic_store import LocalSemanticStore
from costkit.policies.cache.verifier import Verifier

# ------------------------------------------------------------------ a controlled embedder and calibration
# Each known text sits at an angle on the unit circle, so cosines are exact: cos(a - b).
ANGLES = {
    "How do I reset my password?": 0.0,
    "how to reset my password": 0.2,  # cos 0.980: above the threshold
    "I forgot my password, how do I reset it?": 0.6,  # cos 0.825: in the verifier band
    "How do I delete my account?": 1.2,  # cos 0.362: a different question
}


def _vectors(texts: list[str]) -> np.ndarray:
    out = []
    for t in texts:
        a = ANGLES.get(t)
        if a is None:  # unknown texts land far away, each at its own angle
            a = 2.0 + (sum(map(ord, t)) % 1000) / 1000.0
        out.append([math.cos(a), math.sin(a)])
    return np.asarray(out)


EMB = CallableEmbedder(_vectors, dim=2, name="test-circle")
# Cosine scorer; wrong picks: 100 at 0.97, 100 at 0.85, 1000 at 0.5; right picks at 0.99 and 0.9.
# Over 10,000 lookups: delta 0.02 admits down to 0.9 (100 wrong); delta 0.25 down to 0.5.
CAL = Calibration(
    embedder="test-circle",
    scorer=Scorer(None),
    n_lookups=10_000,
    n_duplicates=4_000,
    n_entries=10_000,
    right_scores=(0.99,) * 50 + (0.9,) * 50,
    wrong_scores=(0.97,) * 100 + (0.85,) * 100 + (0.5,) * 1000,
)


def cache(**kw) -> SemanticCache:
    kw.setdefault("embedder", EMB)
    kw.setdefault("calibration", CAL)
    return SemanticCache(kw.pop("max_false_hit_rate", 0.02), **kw)


def answer_by_question(call: Call):
    return completion(f"answer to {call.last_user_text} for {call.tags.tenant}")


def test_calibration_thresholds_used() -> None:
    assert CAL.threshold(0.02) == 0.9
    assert CAL.threshold(0.25) == 0.5


def test_paraphrase_hits_with_notes_sdk_object_and_original_cost() -> None:
    c = cache()
    provider = Provider(answer_by_question, cost=0.004)
    p = pipeline(c, provider)
    p.run(chat_call("How do I reset my password?"))
    hit = p.run(chat_call("how to reset my password"))
    assert hit.source == "semantic" and len(provider.calls) == 1
    assert isinstance(hit.raw, ChatCompletion) and hit.text == "answer to How do I reset my password? for None"
    assert hit.cost_usd == 0.004 and hit.usage.input_tokens == 12
    assert hit.notes["similarity"] == pytest.approx(math.cos(0.2), abs=1e-5)
    assert hit.notes["threshold"] == 0.9
    assert hit.notes["cached_question_text"] == "How do I reset my password?"
    assert c.stats["hits"] == 1 and c.stats["stored"] == 1


def test_below_threshold_and_different_question_miss() -> None:
    c = cache()
    provider = Provider(answer_by_question)
    p = pipeline(c, provider)
    p.run(chat_call("How do I reset my password?"))
    assert p.run(chat_call("I forgot my password, how do I reset it?")).source == "provider"
    assert p.run(chat_call("How do I delete my account?")).source == "provider"
    assert len(provider.calls) == 3


def test_tighter_rate_raises_threshold() -> None:
    strict = cache(max_false_hit_rate=0.005)  # allows 0..~37 wrong: only the 0.99 picks qualify
    p = pipeline(strict, Provider(answer_by_question))
    p.run(chat_call("How do I reset my password?"))
    assert p.run(chat_call("how to reset my password")).source == "provider"  # cos 0.98 < 0.99


@pytest.mark.parametrize(
    "other",
    [
        {"tags": Tags(tenant="b")},
        {"tags": Tags(tenant="a", prompt_version="v2")},
        {"tags": Tags(tenant="a", corpus_version="c2")},
        {"model": "gpt-4o"},
        {"tools": [{"type": "function", "function": {"name": "lookup"}}]},
        {"max_tokens": 50},
    ],
)
def test_partitions_never_cross(other: dict) -> None:
    c = cache()
    provider = Provider(answer_by_question)
    p = pipeline(c, provider)
    base_tags = Tags(tenant="a")
    p.run(chat_call("How do I reset my password?", tags=base_tags))
    kwargs = {"tags": base_tags, **other}
    assert p.run(chat_call("How do I reset my password?", **kwargs)).source == "provider"
    assert p.run(chat_call("How do I reset my password?", tags=base_tags)).source == "semantic"


def _conversation(system: str, history: list[tuple[str, str]], last: str) -> Call:
    from _cache_helpers import ADAPTER

    messages = [{"role": "system", "content": system}]
    for q, a in history:
        messages += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
    messages.append({"role": "user", "content": last})
    return ADAPTER.to_call({"model": "gpt-4o-mini", "messages": messages, "temperature": 0}, Tags())


def test_system_prompt_and_earlier_turns_partition() -> None:
    c = cache()
    p = pipeline(c, Provider(answer_by_question))
    p.run(_conversation("You are support.", [("hi", "hello")], "How do I reset my password?"))
    assert p.run(_conversation("You are support.", [("hi", "hello")], "how to reset my password")).source == "semantic"
    assert p.run(_conversation("You are sales.", [("hi", "hello")], "how to reset my password")).source == "provider"
    assert p.run(_conversation("You are support.", [("hey", "hello")], "how to reset my password")).source == "provider"


def test_history_ignore_matches_last_turn_alone() -> None:
    c = cache(history="ignore")
    p = pipeline(c, Provider(answer_by_question))
    p.run(_conversation("You are support.", [("hi", "hello")], "How do I reset my password?"))
    assert p.run(_conversation("You are support.", [("hey", "yo")], "how to reset my password")).source == "semantic"
    assert p.run(_conversation("You are sales.", [("hi", "hello")], "how to reset my password")).source == "provider"


def test_partition_key_and_query() -> None:
    a = chat_call("How do I reset my password?")
    b = chat_call("something else entirely")
    assert partition_key(a) == partition_key(b)
    assert partition_key(a) != partition_key(chat_call("x", tags=Tags(tenant="t")))
    assert partition_key(a, namespace="n1") != partition_key(a, namespace="n2")
    assert semantic_query(a) == "How do I reset my password?"
    image = a.evolve(messages=({"role": "user", "content": [{"type": "image_url", "image_url": {"url": "u"}}]},))
    assert semantic_query(image) is None


def test_zero_cross_tenant_hits_with_the_bundled_embedder() -> None:
    c = SemanticCache(0.05)  # default embedder and shipped calibration
    provider = Provider(answer_by_question)
    p = pipeline(c, provider)
    questions = [
        "How can I lose weight fast?",
        "What is the best way to learn Python?",
        "How do I reset my password?",
        "Which laptop is best for programming?",
        "How can I improve my English speaking skills?",
    ]
    tenants = [f"tenant-{i}" for i in range(12)]
    for t in tenants:
        for q in questions:
            p.run(chat_call(q, tags=Tags(tenant=t)))
    calls_after_fill = len(provider.calls)
    assert calls_after_fill == len(tenants) * len(questions)  # nothing answered across tenants while filling
    served = 0
    for t in tenants:
        for q in questions:
            r = p.run(chat_call(q, tags=Tags(tenant=t)))
            assert r.text == f"answer to {q} for {t}"
            served += r.source == "semantic"
    assert served == len(tenants) * len(questions)
    assert len(provider.calls) == calls_after_fill


def test_default_calibration_ships_for_bundled_embedder() -> None:
    cal = default_calibration(default_embedder().name)
    assert cal is not None and cal.scorer.kind == "learned" and cal.n_lookups > 10_000
    c = SemanticCache(0.02)
    assert c.calibration.embedder == default_embedder().name
    t1, t2, t5 = (c.threshold_for(cal, d) for d in (0.01, 0.02, 0.05))
    assert t1 >= t2 >= t5


@pytest.mark.parametrize(
    ("params", "reason"),
    [({"temperature": 1.0}, "bypass:sampled"), ({"n": 3}, "bypass:sampled")],
)
def test_sampled_calls_bypass(params: dict, reason: str) -> None:
    c = cache()
    provider = Provider(answer_by_question)
    p = pipeline(c, provider)
    p.run(chat_call("How do I reset my password?", **params))
    p.run(chat_call("How do I reset my password?", **params))
    assert len(provider.calls) == 2 and c.stats[reason] == 2


def test_truncated_tool_call_and_error_answers_not_stored() -> None:
    c = cache()
    answers = [
        completion("cut", finish="length"),
        completion(
            None,
            finish="tool_calls",
            tool_calls=[{"id": "1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
        ),
        RuntimeError("boom"),
    ]
    provider = Provider(lambda call: answers.pop(0))
    p = pipeline(c, provider)
    p.run(chat_call("How do I reset my password?"))
    p.run(chat_call("How do I reset my password?"))
    with pytest.raises(RuntimeError):
        p.run(chat_call("How do I reset my password?"))
    assert c.stats["stored"] == 0
    assert c.stats["not_stored:length"] == 1 and c.stats["not_stored:tool_calls"] == 1


def test_stream_stored_when_consumed() -> None:
    c = cache()
    provider = Provider(answer_by_question)
    p = pipeline(c, provider)
    r = p.run(chat_call("How do I reset my password?", stream=True))
    assert c.stats["stored"] == 0
    list(r.stream)
    assert c.stats["stored"] == 1
    hit = p.run(chat_call("how to reset my password", stream=True))
    assert hit.source == "semantic" and hit.stream is None and isinstance(hit.raw, ChatCompletion)


def test_ttl_and_feature_ttl() -> None:
    c = cache(ttl_s=0.2, ttl_by_feature={"live": 0})
    provider = Provider(answer_by_question)
    p = pipeline(c, provider)
    p.run(chat_call("How do I reset my password?"))
    assert p.run(chat_call("how to reset my password")).source == "semantic"
    time.sleep(0.3)
    assert p.run(chat_call("how to reset my password")).source == "provider"
    p.run(chat_call("How do I reset my password?", tags=Tags(feature="live")))
    assert c.stats["bypass:ttl_zero"] == 1


def test_invalidate_and_clear() -> None:
    c = cache()
    provider = Provider(answer_by_question)
    p = pipeline(c, provider)
    v1 = Tags(tenant="a", corpus_version="v1")
    p.run(chat_call("How do I reset my password?", tags=v1))
    p.run(chat_call("How do I reset my password?", tags=Tags(tenant="b")))
    assert c.invalidate(corpus_version="v1") == 1
    assert p.run(chat_call("how to reset my password", tags=v1)).source == "provider"
    assert p.run(chat_call("how to reset my password", tags=Tags(tenant="b"))).source == "semantic"
    assert c.clear() == 2
    assert p.run(chat_call("how to reset my password", tags=Tags(tenant="b"))).source == "provider"
    with pytest.raises(ConfigError):
        c.invalidate(colour="red")


def test_per_feature_calibration() -> None:
    loose = Calibration(
        embedder="test-circle",
        scorer=Scorer(None),
        n_lookups=10_000,
        n_duplicates=5_000,
        n_entries=1_000,
        right_scores=(0.8,) * 100,
        wrong_scores=(0.3,) * 500,
    )
    c = cache(calibrations={"faq": loose})
    p = pipeline(c, Provider(answer_by_question))
    for tags in (Tags(feature="faq"), Tags(feature="other")):
        p.run(chat_call("How do I reset my password?", tags=tags))
    faq = p.run(chat_call("I forgot my password, how do I reset it?", tags=Tags(feature="faq")))
    assert faq.source == "semantic" and faq.notes["threshold"] == 0.8
    assert p.run(chat_call("I forgot my password, how do I reset it?", tags=Tags(feature="other"))).source == "provider"


def test_calibrate_method_on_own_pairs() -> None:
    c = SemanticCache(0.05)
    pairs = [(f"How do I reset password number {i}?", f"how do i reset password number {i}", 1) for i in range(300)]
    pairs += [(f"How do I reset password number {i}?", f"How do I delete account number {i}?", 0) for i in range(300)]
    cal = c.calibrate(pairs, feature="support")
    assert c.calibrations["support"] is cal and cal.n_lookups == 600
    assert math.isfinite(cal.threshold(0.05))


def test_verifier_confirms_band_candidates_and_refutations_block() -> None:
    verdicts: list[tuple[str, str]] = []
    answer = {"ok": True}

    def verifier(query: str, cached_question: str, cached_answer: str | None) -> bool:
        verdicts.append((query, cached_question))
        assert cached_answer is not None and cached_answer.startswith("answer to")
        return answer["ok"]

    c = cache(verifier=verifier)
    provider = Provider(answer_by_question)
    p = pipeline(c, provider)
    p.run(chat_call("How do I reset my password?"))
    # 0.98 >= 0.9: served without asking
    assert p.run(chat_call("how to reset my password")).source == "semantic" and verdicts == []
    # 0.825: in the band [0.5, 0.9): asked, confirmed, served
    band = p.run(chat_call("I forgot my password, how do I reset it?"))
    assert band.source == "semantic" and band.notes["verified"] is True
    assert len(verdicts) == 1 and c.stats["verified_yes"] == 1
    # refuted once at 0.825: that entry no longer answers at or below that score, even for direct hits
    answer["ok"] = False
    assert p.run(chat_call("I forgot my password, how do I reset it?")).source == "provider"
    assert c.stats["verified_no"] == 1
    # the refuted question was answered by the provider and stored as its own entry; the old entry
    # is blocked at that score, so the next ask is served by the new entry without asking the verifier
    n = len(verdicts)
    again = p.run(chat_call("I forgot my password, how do I reset it?"))
    assert again.source == "semantic"
    assert again.notes["cached_question_text"] == "I forgot my password, how do I reset it?"
    assert len(verdicts) == n
    entry = c.store.get(1)  # the verdict is kept in the entry, where other processes see it too
    assert entry["verified_no"] == [pytest.approx(math.cos(0.6), abs=1e-6)]
    assert entry["verified_yes"] == [pytest.approx(math.cos(0.6), abs=1e-6)]


def test_confirmed_entries_adapt_their_threshold() -> None:
    asked: list[str] = []

    def verifier(query: str, cached_question: str, cached_answer: str | None) -> bool:
        asked.append(query)
        return True

    c = cache(verifier=Verifier(check=verifier, min_confirmations=2))
    p = pipeline(c, Provider(answer_by_question))
    p.run(chat_call("How do I reset my password?"))
    for _ in range(2):
        assert p.run(chat_call("I forgot my password, how do I reset it?")).source == "semantic"
    assert len(asked) == 2
    # two confirmations at 0.825: the entry now answers at that score without asking
    hit = p.run(chat_call("I forgot my password, how do I reset it?"))
    assert hit.source == "semantic" and len(asked) == 2 and hit.notes["verified"] is False
    assert hit.notes["threshold"] == pytest.approx(math.cos(0.6), abs=1e-6)


def test_verify_all() -> None:
    c = cache(verifier=Verifier(check=lambda q, cq, a: False, verify_all=True))
    p = pipeline(c, Provider(answer_by_question))
    p.run(chat_call("How do I reset my password?"))
    assert p.run(chat_call("how to reset my password")).source == "provider"
    assert c.stats["verified_no"] == 1


def test_failing_store_and_embedder_never_fail_the_call() -> None:
    class BrokenStore:
        def add(self, *a):
            raise OSError("disk full")

        def search(self, *a):
            raise ConnectionError("db down")

    c = cache(store=BrokenStore())
    provider = Provider(answer_by_question)
    p = pipeline(c, provider)
    with pytest.warns(CostkitWarning):
        assert p.run(chat_call("How do I reset my password?")).source == "provider"
        assert p.run(chat_call("How do I reset my password?")).source == "provider"
    assert c.stats["store_error:search"] == 2 and c.stats["store_error:add"] == 2

    def broken(texts):
        raise RuntimeError("model missing")

    c2 = SemanticCache(0.02, embedder=CallableEmbedder(broken, dim=2, name="test-circle"), calibration=CAL)
    with pytest.warns(CostkitWarning, match="embedding failed"):
        assert pipeline(c2, provider).run(chat_call("How do I reset my password?")).source == "provider"


def test_corrupt_entry_is_a_miss() -> None:
    c = cache()
    p = pipeline(c, Provider(answer_by_question))
    c.store.add(
        partition_key(chat_call("x"), namespace="semantic"),
        _vectors(["How do I reset my password?"])[0],
        {"q": "How do I reset my password?", "result": {"v": 99}, "ns": "semantic", "tags": {}},
    )
    with pytest.warns(CostkitWarning, match="unreadable semantic entry"):
        assert p.run(chat_call("How do I reset my password?")).source == "provider"


def test_persistent_local_store_reloads(tmp_path) -> None:
    provider = Provider(answer_by_question)
    pipeline(cache(store=str(tmp_path)), provider).run(chat_call("How do I reset my password?"))
    reopened = cache(store=LocalSemanticStore(tmp_path))
    assert len(reopened.store) == 1
    assert pipeline(reopened, provider).run(chat_call("how to reset my password")).source == "semantic"


async def test_async_path() -> None:
    c = cache()
    provider = Provider(answer_by_question)
    p = pipeline(c, provider)
    assert (await p.arun(chat_call("How do I reset my password?"))).source == "provider"
    assert (await p.arun(chat_call("how to reset my password"))).source == "semantic"


async def test_async_verifier_coroutine() -> None:
    async def verifier(q, cq, a):
        return True

    c = cache(verifier=verifier)
    p = pipeline(c, Provider(answer_by_question))
    await p.arun(chat_call("How do I reset my password?"))
    assert (await p.arun(chat_call("I forgot my password, how do I reset it?"))).source == "semantic"


def test_config_errors() -> None:
    for kwargs, field in [
        ({"max_false_hit_rate": 0}, "max_false_hit_rate"),
        ({"max_false_hit_rate": 1.5}, "max_false_hit_rate"),
        ({"verifier": Verifier(check=bool, band=0.01)}, "verifier.band"),
        ({"history": "fuzzy"}, "history"),
        ({"verifier": 3}, "verifier"),
        ({"store": 42}, "store"),
        ({"ttl_s": -1}, "ttl_s"),
        ({"colour": "red"}, "colour"),
        ({"calibration": default_calibration(default_embedder().name)}, "calibration"),  # wrong embedder
    ]:
        with pytest.raises(ConfigError) as e:
            cache(**kwargs)
        assert e.value.field == field, kwargs
    with pytest.raises(ConfigError) as e:
        SemanticCache(0.02, embedder=CallableEmbedder(_vectors, dim=2, name="no-calibration"))
    assert e.value.field == "calibration"


def test_public_name() -> None:
    import costkit

    assert costkit.SemanticCache is SemanticCache


# ------------------------------------------------------------------ Postgres + pgvector, several processes


def _pg_writer(uri: str, table: str, worker: int, tenants: list[str], questions: list[str]) -> int:
    """One process filling the shared cache (run in a spawned process)."""
    import sys

    sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
    from _cache_helpers import Provider, chat_call, pipeline

    from costkit.policies.cache.pgvector_store import PgVectorStore

    store = PgVectorStore(uri, dim=2, table=table)
    c = SemanticCache(0.02, embedder=EMB, calibration=CAL, store=store)
    provider = Provider(lambda call: completion(f"answer to {call.last_user_text} for {call.tags.tenant}"))
    p = pipeline(c, provider)
    for i in range(len(questions) * len(tenants)):
        t = tenants[(i + worker) % len(tenants)]
        q = questions[(i // len(tenants) + worker) % len(questions)]
        p.run(chat_call(q, tags=Tags(tenant=t)))
    store.close()
    return len(provider.calls)


@pytest.mark.postgres
def test_pgvector_store_shared_by_processes_without_cross_tenant_hits(pg_uri: str) -> None:
    import multiprocessing

    from costkit.policies.cache.pgvector_store import PgVectorStore

    table = "semantic_test_mp"
    tenants = ["acme", "globex", "initech"]
    questions = [*list(ANGLES)[:2], "How do I delete my account?"]
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(3) as pool:
        calls = pool.starmap(_pg_writer, [(pg_uri, table, w, tenants, questions) for w in range(3)], chunksize=1)
    assert sum(calls) >= len(tenants) * 2  # some calls were answered by entries other processes wrote
    store = PgVectorStore(pg_uri, dim=2, table=table)
    # one row per (partition, question): concurrent writers upserted instead of duplicating
    import psycopg

    with psycopg.connect(pg_uri) as conn:
        rows, distinct = conn.execute(f"SELECT count(*), count(DISTINCT (partition, key)) FROM {table}").fetchone()
    assert rows == distinct
    c = SemanticCache(0.02, embedder=EMB, calibration=CAL, store=store)
    provider = Provider(answer_by_question)
    p = pipeline(c, provider)
    for t in tenants:
        for q in questions:
            r = p.run(chat_call(q, tags=Tags(tenant=t)))
            assert r.source == "semantic"
            assert r.text.endswith(f"for {t}")  # never another tenant's answer
    assert provider.calls == []
    assert c.invalidate(tenant="acme") >= 1
    assert p.run(chat_call(questions[0], tags=Tags(tenant="acme"))).source == "provider"
    store.close()


def test_through_the_wrapped_openai_client_after_the_exact_cache() -> None:
    import os

    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import costkit
    from costkit.policies.cache import ExactCache, MemoryStore
    from costkit.sinks import MemorySink
    from costkit.testing import FakeOpenAI

    sink = MemorySink()
    fake = FakeOpenAI()
    client = costkit.wrap(fake, policies=[ExactCache(MemoryStore()), cache()], sink=sink)
    ask = client.chat.completions.create
    ask(model="gpt-4o-mini", messages=[{"role": "user", "content": "How do I reset my password?"}], temperature=0)
    hit = ask(model="gpt-4o-mini", messages=[{"role": "user", "content": "how to reset my password"}], temperature=0)
    assert isinstance(hit, ChatCompletion) and len(fake.fake.calls) == 1
    call, semantic = sink.records
    assert semantic.kind == "cache_hit" and semantic.cache == "semantic"
    assert semantic.cost_usd == 0 and semantic.saved_usd == call.cost_usd > 0
    assert semantic.notes["threshold"] == 0.9 and semantic.notes["similarity"] > 0.9


def test_saved_index_is_reused_and_a_corrupt_one_rebuilt(tmp_path) -> None:
    provider = Provider(answer_by_question)
    store = LocalSemanticStore(tmp_path)
    p = pipeline(cache(store=store), provider)
    p.run(chat_call("How do I reset my password?"))
    p.run(chat_call("How do I delete my account?", tags=Tags(tenant="b")))
    store.close()
    reopened = LocalSemanticStore(tmp_path)
    assert len(reopened) == 2 and reopened.rebuilt == 0  # both partitions' saved indexes matched
    for index_file in (tmp_path / "index").rglob("index-*.faiss"):
        index_file.write_bytes(b"garbage")
    broken = LocalSemanticStore(tmp_path)
    assert len(broken) == 2
    assert pipeline(cache(store=broken), provider).run(chat_call("how to reset my password")).source == "semantic"
    assert len(provider.calls) == 2


def test_llm_judge_asks_a_cheap_model_and_fails_closed() -> None:
    from costkit.policies.cache import LLMJudge
    from costkit.testing import Failure, FakeOpenAI, FakeProvider

    fake = FakeProvider(default="no")
    fake.on("Question 1: how to reset my password", "Yes.")
    judge = LLMJudge(FakeOpenAI(fake), model="gpt-4o-mini")
    assert judge("how to reset my password", "How do I reset my password?", "Click 'forgot'.") is True
    assert judge("How do I delete my account?", "How do I reset my password?") is False
    sent = fake.calls[0]
    assert sent.model == "gpt-4o-mini" and sent.body["temperature"] == 0
    assert "Question 1: how to reset my password" in sent.body["messages"][0]["content"]
    fake.on("Question 1: boom", Failure(status=500))
    with pytest.warns(CostkitWarning, match="LLM judge failed"):
        assert judge("boom", "How do I reset my password?") is False
    assert judge.errors == 1
    with pytest.raises(ConfigError):
        LLMJudge(object())


def test_warns_when_a_partition_outgrows_its_calibration() -> None:
    small = Calibration(
        embedder="test-circle",
        scorer=Scorer(None),
        n_lookups=10_000,
        n_duplicates=4_000,
        n_entries=1,
        right_scores=(0.99,),
        wrong_scores=(0.5,),
    )
    c = cache(calibration=small)
    c.SIZE_CHECK_EVERY = 1
    p = pipeline(c, Provider(answer_by_question))
    p.run(chat_call("How do I reset my password?"))
    p.run(chat_call("How do I delete my account?"))
    with pytest.warns(CostkitWarning, match="more than twice"):
        p.run(chat_call("What is the weather like?"))


def test_provider_embeddings_are_recorded_as_embedding_records_of_the_request() -> None:
    import attrs as _attrs

    import costkit
    from costkit.embedders import ProviderEmbedder
    from costkit.sinks import MemorySink
    from costkit.testing import FakeOpenAI, FakeProvider

    fake = FakeProvider(default="an answer")
    emb = ProviderEmbedder(FakeOpenAI(fake), model="text-embedding-3-small")
    sem = SemanticCache(0.02, embedder=emb, calibration=_attrs.evolve(CAL, embedder=emb.name))
    sink = MemorySink()
    client = costkit.wrap(FakeOpenAI(fake), policies=[sem], sink=sink)
    msgs = [{"role": "user", "content": "How do I reset my password?"}]
    client.chat.completions.create(model="gpt-4o", messages=msgs, temperature=0)
    client.chat.completions.create(model="gpt-4o", messages=msgs, temperature=0)  # embedding LRU: no new request
    kinds = [(r.kind, r.model, r.attempt) for r in sink.records]
    assert kinds == [("embedding", "text-embedding-3-small", 1), ("call", "gpt-4o", 2), ("cache_hit", "gpt-4o", 0)]
    embedding = sink.records[0]
    assert fake.count(api="embeddings") == 1 and embedding.input_tokens > 0
    assert embedding.cost_usd == pytest.approx(embedding.input_tokens * 2e-8, abs=1e-15)
    assert embedding.request_id == sink.records[1].request_id


# ------------------------------------------------------------------ records, sharing, shared verdicts, live estimate


def _wrapped(policy, record_text: bool = False):
    import os

    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import costkit
    from costkit.sinks import MemorySink
    from costkit.testing import FakeOpenAI

    sink = MemorySink()
    fake = FakeOpenAI()
    client = costkit.wrap(fake, policies=[policy], sink=sink, record_text=record_text)

    def ask(text: str, user: str | None = None):
        return client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": text}],
            temperature=0,
            costkit={"user": user} if user else None,
        )

    return ask, sink, fake


def test_a_semantic_hit_record_carries_no_other_requests_text_unless_record_text() -> None:
    """The cached question (another user's prompt, here with an email address) must not reach the record."""
    secret = "How do I reset my password? My email is jane.roe@example.com"
    ANGLES[secret] = 0.0
    try:
        ask, sink, _ = _wrapped(cache())
        ask(secret)
        ask("how to reset my password")
        hit = sink.records[-1]
        assert hit.cache == "semantic" and hit.notes["similarity"] > 0.9
        assert "jane.roe" not in repr(hit) and hit.prompt_text is None
        ask_text, sink_text, _ = _wrapped(cache(), record_text=True)
        ask_text(secret)
        ask_text("how to reset my password")
        assert sink_text.records[-1].notes["cached_question_text"] == secret
    finally:
        del ANGLES[secret]


def test_semantic_entry_serves_other_users_only_after_min_distinct_users() -> None:
    ask, sink, fake = _wrapped(cache(min_distinct_users=2))
    ask("How do I reset my password?", user="attacker")
    assert sink.records[-1].kind == "call"
    ask("how to reset my password", user="attacker")  # its writer is served
    assert sink.records[-1].cache == "semantic"
    ask("how to reset my password", user="alice")  # not shared yet: the provider answers, alice is counted
    assert sink.records[-1].kind == "call"
    # alice's answer to her other wording became her own entry (closest to that wording)
    ask("How do I reset my password?", user="bob")  # the first entry's second distinct asker: shared now
    assert sink.records[-1].cache == "semantic" and len(fake.fake.calls) == 2


def test_with_a_verifier_an_unshared_entry_serves_once_verified() -> None:
    asked = []
    c = cache(min_distinct_users=5, verifier=lambda q, cq, a: asked.append(q) or True)
    p = pipeline(c, Provider(answer_by_question))
    p.run(chat_call("How do I reset my password?", tags=Tags(user="u1")))
    hit = p.run(chat_call("how to reset my password", tags=Tags(user="u2")))
    assert hit.source == "semantic" and hit.notes["verified"] is True and asked == ["how to reset my password"]


def test_verdicts_are_shared_through_the_store_by_every_cache_on_it() -> None:
    """Two caches on one store (two processes): a refutation seen by one blocks the entry for the other."""
    store = LocalSemanticStore()
    refuse = cache(store=store, verifier=lambda q, cq, a: False)
    other = cache(store=store)
    provider = Provider(answer_by_question)
    pipeline(refuse, provider).run(chat_call("How do I reset my password?"))
    assert pipeline(refuse, provider).run(chat_call("I forgot my password, how do I reset it?")).source == "provider"
    # the other cache never asked a verifier, yet the stored refutation (at cos 0.825) raises that
    # entry's threshold above 0.825 for it too; a question at cos 0.98 is still served
    assert other.lookup(chat_call("I forgot my password, how do I reset it?")).question != "How do I reset my password?"
    assert pipeline(other, provider).run(chat_call("how to reset my password")).source == "semantic"


def test_sampled_hits_are_verified_and_reported_in_records() -> None:
    verdict = {"ok": True}
    c = cache(verifier=Verifier(check=lambda q, cq, a: verdict["ok"], sample=1.0))
    ask, sink, _ = _wrapped(c)
    ask("How do I reset my password?")
    ask("how to reset my password")
    served = sink.records[-1]
    assert served.cache == "semantic" and served.notes["cache_verified"] is True
    verdict["ok"] = False
    ask("how to reset my password")
    refused = sink.records[-1]
    assert refused.kind == "call" and refused.notes["cache_verified"] is False
    q = c.live_quality
    assert (q.sampled, q.refuted) == (2, 1) and q.wrong_share_of_hits == 0.5
    assert 0.5 < q.wrong_share_upper_bound <= 1.0


def test_no_sampling_without_sample_share() -> None:
    c = cache(verifier=lambda q, cq, a: False)
    p = pipeline(c, Provider(answer_by_question))
    p.run(chat_call("How do I reset my password?"))
    hit = p.run(chat_call("how to reset my password"))
    assert hit.source == "semantic" and "cache_verified" not in hit.notes and c.live_quality.sampled == 0


def test_the_policy_is_one_flow() -> None:
    from costkit import FlowPolicy

    assert isinstance(cache(), FlowPolicy)
    assert "handle" not in SemanticCache.__dict__ and "ahandle" not in SemanticCache.__dict__


@pytest.mark.postgres
def test_verdicts_and_askers_append_in_postgres(pg_uri: str) -> None:
    from costkit.policies.cache.pgvector_store import PgVectorStore

    store = PgVectorStore(pg_uri, dim=2, table="semantic_test_append")
    store.clear()
    entry = store.add("p", [1.0, 0.0], {"q": "x", "verified_no": "junk"})
    assert entry is not None
    for i in range(5):
        assert store.append(entry, "verified_no", [0.1 * i], cap=3)
    assert store.get(entry)["verified_no"] == pytest.approx([0.2, 0.3, 0.4])
    assert store.append(entry, "users", ["a"]) and store.get(entry)["users"] == ["a"]
    assert not store.append(entry + 999, "users", ["a"])
    store.close()


def test_a_stated_verifier_accuracy_sets_threshold_and_band_together() -> None:
    c = cache(verifier=Verifier(check=lambda q, cq, a: True, accuracy=0.98))
    plan = c.plan(chat_call("How do I reset my password?"))
    assert plan is not None and (plan.threshold, plan.explore) == CAL.thresholds_with_verifier(0.02, 0.98)
    assert plan.explore <= plan.threshold
