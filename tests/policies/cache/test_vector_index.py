"""VectorIndex: exact results, the switch to IVF and back, background rebuilds, threads, persistence."""

from __future__ import annotations

import json
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest

from costkit import ConfigError
from costkit._warn import CostkitWarning
from costkit.policies.cache import vector_index as vi
from costkit.policies.cache.vector_index import IndexCorrupt, VectorIndex

DIM = 32


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def clustered(n: int, dim: int = DIM, clusters: int = 50, seed: int = 0) -> np.ndarray:
    """Topic-like data: points spread around cluster centres (what embeddings of questions look like)."""
    rng = np.random.default_rng(seed)
    centres = unit(rng.standard_normal((clusters, dim)))
    return unit(centres[rng.integers(0, clusters, n)] + 0.15 * rng.standard_normal((n, dim)).astype(np.float32))


def near(x: np.ndarray, scale: float = 0.05, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return unit(x + scale * rng.standard_normal(x.shape).astype(np.float32))


def brute(queries: np.ndarray, ids: np.ndarray, vecs: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    sims = queries @ vecs.T
    order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(sims, order, axis=1), ids[order]


# ------------------------------------------------------------------------------ exact


def test_exact_search_matches_brute_force() -> None:
    x = clustered(500)
    ids = np.arange(1000, 1500)
    index = VectorIndex(DIM)
    index.add(ids, x)
    q = near(x[:50])
    scores, got = index.search(q, k=3)
    want_scores, want = brute(q, ids, x, 3)
    assert index.kind == "exact" and len(index) == 500
    np.testing.assert_array_equal(got, want)
    np.testing.assert_allclose(scores, want_scores, atol=1e-5)
    assert index.search_one(x[7])[0] == (pytest.approx(1.0, abs=1e-5), 1007)


def test_empty_and_short_results_are_padded() -> None:
    index = VectorIndex(DIM)
    scores, ids = index.search(clustered(2), k=2)
    assert (ids == -1).all() and np.isneginf(scores).all()
    index.add([5], clustered(1))
    scores, ids = index.search(clustered(1), k=3)
    assert ids[0].tolist() == [5, -1, -1] and np.isneginf(scores[0, 1:]).all()
    assert index.search_one(clustered(1), k=3) == [(pytest.approx(float(scores[0, 0])), 5)]


def test_replace_remove_contains_get() -> None:
    x = clustered(10)
    index = VectorIndex(DIM)
    index.add(range(10), x)
    index.add([3], x[9:10])  # id 3 now holds x[9]
    assert len(index) == 10
    np.testing.assert_array_equal(index.get(3), x[9])
    assert sorted(i for _, i in index.search_one(x[9], k=2)) == [3, 9]
    assert index.remove([3, 4, 123]) == 2
    assert len(index) == 8 and 3 not in index and 5 in index and index.get(3) is None
    assert 3 not in index.search(x, k=8)[1]
    assert sorted(index.ids().tolist()) == [0, 1, 2, 5, 6, 7, 8, 9]


def test_duplicate_ids_in_one_add_keep_the_last() -> None:
    x = clustered(3)
    index = VectorIndex(DIM)
    index.add([7, 7, 8], x)
    assert len(index) == 2
    np.testing.assert_array_equal(index.get(7), x[1])


def test_l2_metric() -> None:
    x = clustered(100)
    index = VectorIndex(DIM, metric="l2")
    index.add(np.arange(100), x)
    scores, ids = index.search(x[:5] + 0.001, k=1)
    assert ids[:, 0].tolist() == [0, 1, 2, 3, 4] and (scores[:, 0] < 1e-3).all()


def test_bad_input() -> None:
    index = VectorIndex(DIM)
    with pytest.raises(ValueError, match="shape"):
        index.add([1], np.ones((1, DIM + 1)))
    with pytest.raises(ValueError, match="ids for"):
        index.add([1, 2], clustered(1))
    with pytest.raises(ValueError, match=">= 0"):
        index.add([-1], clustered(1))
    with pytest.raises(ValueError, match="NaN"):
        index.add([1], np.full((1, DIM), np.nan))
    with pytest.raises(ValueError, match="k must"):
        index.search(clustered(1), k=0)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"dim": 0}, "dim"),
        ({"dim": DIM, "metric": "cosine"}, "metric"),
        ({"dim": DIM, "approximate_above": 10}, "approximate_above"),
        ({"dim": DIM, "target_recall": 1.5}, "target_recall"),
    ],
)
def test_config_errors(kwargs: dict, field: str) -> None:
    with pytest.raises(ConfigError) as err:
        VectorIndex(**kwargs)
    assert err.value.field == field


# ------------------------------------------------------------------------------ approximate


def test_switches_to_ivf_with_high_recall_and_back() -> None:
    x = clustered(6000, dim=64, clusters=200)
    ids = np.arange(6000) * 3
    index = VectorIndex(64, approximate_above=1000, background=False)
    index.add(ids[:900], x[:900])
    assert index.kind == "exact"
    index.add(ids[900:], x[900:])
    assert index.kind == "ivf" and index.nlist == round(np.sqrt(6000)) and 4 <= index.nprobe <= index.nlist
    q = near(x[::6], scale=0.03)  # 1000 near-duplicate lookups
    _, got = index.search(q, k=1)
    _, want = brute(q, ids, x, 1)
    assert np.mean(got[:, 0] == want[:, 0]) >= 0.99
    # removal and replacement work in IVF mode too
    assert index.remove(ids[:10]) == 10
    assert not set(ids[:10].tolist()) & set(index.search(x[:10], k=5)[1].ravel().tolist())
    index.add([ids[20]], x[30:31])
    assert index.search_one(x[30], k=2)[0][0] == pytest.approx(1.0, abs=1e-5)
    # shrinking below half the threshold returns to exact search
    index.remove(ids[: 6000 - 400])
    assert index.kind == "exact" and len(index) == 400


def test_grows_4x_then_retrains() -> None:
    x = clustered(5000, dim=16, clusters=40)
    index = VectorIndex(16, approximate_above=500, background=False)
    index.add(np.arange(600), x[:600])
    assert (index.kind, index.trained_on, index.rebuilds) == ("ivf", 600, 1)
    index.add(np.arange(600, 2000), x[600:2000])
    assert (index.trained_on, index.rebuilds) == (600, 1)  # under 4x: lists get longer, no retrain
    index.add(np.arange(2000, 5000), x[2000:])
    assert (index.trained_on, index.rebuilds, index.nlist) == (5000, 2, round(np.sqrt(5000)))


def test_background_rebuild_replays_writes_made_during_the_build(monkeypatch: pytest.MonkeyPatch) -> None:
    x = clustered(3000, dim=16)
    release, started = threading.Event(), threading.Event()
    real_build = VectorIndex._build_ivf

    def slow_build(self: VectorIndex, vecs: np.ndarray, ids: np.ndarray) -> object:
        started.set()
        assert release.wait(30)
        return real_build(self, vecs, ids)

    monkeypatch.setattr(VectorIndex, "_build_ivf", slow_build)
    index = VectorIndex(16, approximate_above=1000)
    index.add(np.arange(2000), x[:2000])
    assert started.wait(30)
    # while the IVF index is being built: still exact and fully correct
    assert index.kind == "exact"
    index.add(np.arange(2000, 3000), x[2000:])
    index.remove([0, 1, 2])
    index.add([5], x[2999:3000])
    assert index.search_one(x[2500])[0][1] == 2500
    release.set()
    assert index.wait(30)
    assert index.kind == "ivf" and len(index) == 2997
    assert index.search_one(x[2500])[0][1] == 2500  # added during the build
    assert not {0, 1, 2} & set(index.search(x[:3], k=5)[1].ravel().tolist())  # removed during the build
    assert {i for s, i in index.search_one(x[2999], k=2)} == {5, 2999}  # replaced during the build


def test_failed_background_rebuild_keeps_the_exact_index(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_a: object) -> object:
        raise RuntimeError("out of memory")

    monkeypatch.setattr(VectorIndex, "_build_ivf", broken)
    index = VectorIndex(16, approximate_above=300)
    with pytest.warns(CostkitWarning, match="rebuild failed"):
        index.add(np.arange(400), clustered(400, dim=16))
        assert index.wait(30)
    assert index.kind == "exact" and index.search_one(clustered(400, dim=16)[9])[0][1] == 9


def test_concurrent_searches_and_writes() -> None:
    x = clustered(4000, dim=16)
    index = VectorIndex(16, approximate_above=1500)
    errors: list[BaseException] = []

    def writer(lo: int) -> None:
        try:
            for start in range(lo, lo + 1000, 50):
                index.add(np.arange(start, start + 50), x[start : start + 50])
                index.remove([start])
        except BaseException as exc:
            errors.append(exc)

    def reader() -> None:
        try:
            for i in range(300):
                _, ids = index.search(x[i : i + 1], k=2)
                assert ids.shape == (1, 2)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(lo,)) for lo in (0, 1000, 2000, 3000)]
    threads += [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert index.wait(60)
    assert len(index) == 4000 - 80 and index.kind == "ivf"
    removed = set(range(0, 4000, 50))
    assert set(index.ids().tolist()) == set(range(4000)) - removed
    _, got = index.search(x[1::50], k=1)
    assert np.mean(got[:, 0] == np.arange(1, 4000, 50)) >= 0.99


# ------------------------------------------------------------------------------ persistence


def _saved(tmp_path: Path, n: int = 3000, approximate_above: int | None = 1000) -> tuple[VectorIndex, np.ndarray, Path]:
    x = clustered(n, dim=16)
    index = VectorIndex(16, approximate_above=approximate_above, background=False)
    index.add(np.arange(n) + 10, x)
    return index, x, index.save(tmp_path / "ix")


def test_save_load_roundtrip(tmp_path: Path) -> None:
    index, x, root = _saved(tmp_path)
    loaded = VectorIndex.load(root)
    assert (loaded.kind, loaded.nlist, loaded.nprobe, len(loaded)) == ("ivf", index.nlist, index.nprobe, 3000)
    q = near(x[:200])
    for a, b in zip(index.search(q, k=3), loaded.search(q, k=3)):
        np.testing.assert_array_equal(a, b)
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["count"] == 3000 and set(manifest["sha256"]) == {"ids", "vectors", "index"}


def test_save_replaces_the_previous_generation(tmp_path: Path) -> None:
    index, _, root = _saved(tmp_path, n=100, approximate_above=None)
    first = set(p.name for p in root.iterdir())
    index.remove([10])
    index.save(root)
    second = set(p.name for p in root.iterdir())
    assert len(first) == len(second) == 4 and first & second == {"manifest.json"}
    assert len(VectorIndex.load(root)) == 99


def test_crash_before_the_manifest_keeps_the_last_save(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    index, _, root = _saved(tmp_path, n=100, approximate_above=None)
    index.remove([10, 11])

    def crash(*_a: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(vi.os, "replace", crash)
    with pytest.raises(OSError):
        index.save(root)
    monkeypatch.undo()
    assert len(VectorIndex.load(root)) == 100


def test_corrupt_index_file_is_rebuilt_from_vectors(tmp_path: Path) -> None:
    _, x, root = _saved(tmp_path)
    files = json.loads((root / "manifest.json").read_text())["files"]
    path = root / files["index"]
    data = bytearray(path.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = b"\x00" * 64
    path.write_bytes(bytes(data))
    with pytest.warns(CostkitWarning, match="rebuilt from the stored vectors"):
        loaded = VectorIndex.load(root)
    assert loaded.kind == "ivf" and len(loaded) == 3000
    q = near(x[:300])
    _, got = loaded.search(q, k=1)
    _, want = brute(q, np.arange(3000) + 10, x, 1)
    assert np.mean(got[:, 0] == want[:, 0]) >= 0.99
    path.unlink()  # a missing index file: same
    assert len(VectorIndex.load(root)) == 3000


def test_corrupt_vectors_raise_and_open_degrades(tmp_path: Path) -> None:
    _, _, root = _saved(tmp_path, n=50, approximate_above=None)
    files = json.loads((root / "manifest.json").read_text())["files"]
    with open(root / files["vectors"], "r+b") as f:
        f.seek(200)
        f.write(b"garbage!")
    with pytest.raises(IndexCorrupt, match="vectors"):
        VectorIndex.load(root)
    with pytest.warns(CostkitWarning, match="starting empty"):
        fresh = VectorIndex.open(root, dim=16)
    assert len(fresh) == 0
    (root / "manifest.json").write_text("{not json")
    with pytest.raises(IndexCorrupt, match="manifest"):
        VectorIndex.load(root)


def test_open(tmp_path: Path) -> None:
    assert len(VectorIndex.open(tmp_path / "none", dim=8)) == 0
    _, _, root = _saved(tmp_path, n=20, approximate_above=None)
    assert len(VectorIndex.open(root, dim=16)) == 20
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert len(VectorIndex.open(root, dim=8)) == 0
    assert any("wanted dim=8" in str(w.message) for w in caught)


def test_block_store_matches_a_dict_under_random_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vi._VectorStore, "BLOCK", 4)  # many block boundaries
    rng = np.random.default_rng(3)
    x = clustered(200, dim=8)
    index = VectorIndex(8)
    model: dict[int, np.ndarray] = {}
    for _ in range(300):
        ids = rng.integers(0, 60, size=int(rng.integers(1, 6)))
        if rng.random() < 0.6:
            rows = rng.integers(0, 200, size=len(ids))
            index.add(ids, x[rows])
            for i, r in zip(ids.tolist(), rows.tolist()):
                model[i] = x[r]
        else:
            assert index.remove(ids) == len(set(ids.tolist()) & set(model))
            for i in ids.tolist():
                model.pop(i, None)
        assert len(index) == len(model)
    assert sorted(index.ids().tolist()) == sorted(model)
    for i, v in model.items():
        np.testing.assert_array_equal(index.get(i), v)
        assert index.search_one(v)[0][0] == pytest.approx(1.0, abs=1e-5)
