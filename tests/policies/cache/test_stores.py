"""Stores: JSON in, JSON out, TTL, labels; failures are misses with one warning, never errors."""

from __future__ import annotations

import pickle
import sqlite3
import time
import warnings

import pytest

from costkit._warn import CostkitWarning
from costkit.errors import ConfigError
from costkit.policies.cache.stores import CacheStore, DiskStore, MemoryStore, RedisStore, as_store


@pytest.fixture(params=["memory", "disk", "redis"])
def store(request: pytest.FixtureRequest, tmp_path) -> CacheStore:
    if request.param == "memory":
        return MemoryStore()
    if request.param == "disk":
        return DiskStore(tmp_path / "c")
    return RedisStore(request.getfixturevalue("redis_url"), prefix="t:")


def test_roundtrip_and_delete(store: CacheStore) -> None:
    assert store.get("k") is None
    assert store.set("k", {"a": [1, "é"], "b": None}, labels=["x"])
    assert store.get("k") == {"a": [1, "é"], "b": None}
    store.delete("k")
    assert store.get("k") is None


async def test_async_roundtrip(store: CacheStore) -> None:
    assert await store.aget("k") is None
    assert await store.aset("k", {"a": 1})
    assert await store.aget("k") == {"a": 1}
    assert store.get("k") == {"a": 1}


def test_ttl_expires(store: CacheStore) -> None:
    store.set("short", {"a": 1}, ttl_s=0.2)
    store.set("long", {"a": 2}, ttl_s=60)
    assert store.get("short") == {"a": 1}
    time.sleep(0.35)
    assert store.get("short") is None
    assert store.get("long") == {"a": 2}


def test_invalidate_by_label_and_clear(store: CacheStore) -> None:
    store.set("a", {"n": 1}, labels=["tenant=x", "feature=f"])
    store.set("b", {"n": 2}, labels=["tenant=y", "feature=f"])
    store.set("c", {"n": 3}, labels=["tenant=y"])
    assert store.invalidate("feature=f") == 2
    assert store.get("a") is None and store.get("b") is None and store.get("c") == {"n": 3}
    assert store.invalidate("nothing") == 0
    store.clear()
    assert store.get("c") is None


def test_bad_ttl_is_rejected(store: CacheStore) -> None:
    with pytest.raises(ValueError):
        store.set("k", {}, ttl_s=0)


def test_memory_lru_evicts_least_recently_used() -> None:
    s = MemoryStore(max_entries=2)
    s.set("a", {"n": 1})
    s.set("b", {"n": 2})
    assert s.get("a") == {"n": 1}  # a is now most recent
    s.set("c", {"n": 3})
    assert s.get("b") is None and s.get("a") == {"n": 1} and s.get("c") == {"n": 3}
    assert len(s) == 2


def test_memory_entry_is_a_copy() -> None:
    s = MemoryStore()
    value = {"a": [1]}
    s.set("k", value)
    value["a"].append(2)
    assert s.get("k") == {"a": [1]}


def test_config_errors_name_the_field() -> None:
    with pytest.raises(ConfigError) as e:
        MemoryStore(max_entries=0)
    assert e.value.field == "max_entries"
    with pytest.raises(ConfigError) as e:
        RedisStore()
    assert e.value.field == "url"
    with pytest.raises(ConfigError) as e:
        RedisStore("redis://x", timeout_s=0)
    assert e.value.field == "timeout_s"
    with pytest.raises(ConfigError) as e:
        as_store(42)
    assert e.value.field == "store"


def test_as_store(tmp_path) -> None:
    assert isinstance(as_store("memory"), MemoryStore)
    assert isinstance(as_store("redis://127.0.0.1:1/0"), RedisStore)
    d = as_store(str(tmp_path / "d"))
    assert isinstance(d, DiskStore) and d.directory == tmp_path / "d"
    m = MemoryStore()
    assert as_store(m) is m


def test_default_disk_dir_follows_env(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("COSTKIT_CACHE_DIR", str(tmp_path / "root"))
    s = as_store(None)
    assert isinstance(s, DiskStore) and s.directory == tmp_path / "root" / "exact"


def test_disk_store_is_shared_between_instances(tmp_path) -> None:
    DiskStore(tmp_path / "c").set("k", {"a": 1})
    assert DiskStore(tmp_path / "c").get("k") == {"a": 1}


def test_disk_store_never_unpickles_a_planted_row(tmp_path) -> None:
    class Boom:
        def __reduce__(self):  # runs code if ever unpickled
            return (exec, ("raise SystemExit('unpickled!')",))

    s = DiskStore(tmp_path / "c")
    s.set("k", {"a": 1})
    s.close()
    db = sqlite3.connect(tmp_path / "c" / "cache.db")
    db.execute("UPDATE Cache SET mode = 4, value = ? WHERE key = 'k'", (pickle.dumps(Boom()),))
    db.commit()
    db.close()
    s2 = DiskStore(tmp_path / "c")
    with pytest.warns(CostkitWarning, match="disk cache store failed on get"):
        assert s2.get("k") is None
    assert s2.errors == 1
    assert s2.get("k") is None  # the planted row was dropped


def test_disk_store_corrupt_json_is_a_miss(tmp_path) -> None:
    s = DiskStore(tmp_path / "c")
    s._db().set("k", "{not json", retry=False)
    with pytest.warns(CostkitWarning):
        assert s.get("k") is None
    assert s.get("k") is None


def test_disk_store_unwritable_directory_degrades(tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    s = DiskStore(blocker / "sub")  # cannot create a directory under a file
    with pytest.warns(CostkitWarning):
        assert s.set("k", {"a": 1}) is False
        assert s.get("k") is None
    assert s.dropped == 1 and s.errors >= 2


def test_redis_down_is_a_fast_miss_with_one_warning() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens here once closed
    s = RedisStore(f"redis://127.0.0.1:{port}/0", timeout_s=0.2, retry_after_s=60)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t0 = time.monotonic()
        assert s.get("k") is None
        assert s.set("k", {"a": 1}) is False
        for _ in range(50):
            assert s.get("k") is None
        elapsed = time.monotonic() - t0
    assert elapsed < 5  # bounded: marked down after the first failure, not 52 timeouts
    assert len([w for w in caught if issubclass(w.category, CostkitWarning)]) <= 2  # one per operation kind
    assert s.errors == 52 and s.dropped == 1


async def test_redis_down_async_is_a_miss() -> None:
    s = RedisStore("redis://127.0.0.1:1/0", timeout_s=0.2)
    with pytest.warns(CostkitWarning):
        assert await s.aget("k") is None
        assert await s.aset("k", {"a": 1}) is False


def test_redis_corrupt_value_is_a_miss(redis_url: str) -> None:
    import redis

    s = RedisStore(redis_url, prefix="t:")
    redis.Redis.from_url(redis_url).set("t:e:k", b"\x80garbage")
    with pytest.warns(CostkitWarning):
        assert s.get("k") is None
    assert redis.Redis.from_url(redis_url).get("t:e:k") is None


def test_redis_prefixes_isolate(redis_url: str) -> None:
    a = RedisStore(redis_url, prefix="a:")
    b = RedisStore(redis_url, prefix="b:")
    a.set("k", {"n": 1})
    assert b.get("k") is None
    b.clear()
    assert a.get("k") == {"n": 1}


def test_disk_store_files_are_private_to_their_owner(tmp_path) -> None:
    """Entries hold prompts and answers in plaintext: 0700 directories and a 0600 database, whatever the umask."""
    import os
    import stat

    old = os.umask(0o022)
    try:
        s = DiskStore(tmp_path / "a" / "b")
        s.set("k", {"a": 1})
    finally:
        os.umask(old)
    mode = lambda p: stat.S_IMODE(os.stat(p).st_mode)  # noqa: E731
    assert mode(tmp_path / "a") == 0o700 and mode(tmp_path / "a" / "b") == 0o700
    assert mode(tmp_path / "a" / "b" / "cache.db") == 0o600
    for side in ("cache.db-wal", "cache.db-shm"):
        if (tmp_path / "a" / "b" / side).exists():
            assert mode(tmp_path / "a" / "b" / side) == 0o600
