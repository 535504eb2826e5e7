"""An in-process vector index for the semantic cache: exact while small, approximate when big.

(Over 600 lines on purpose: searching, background rebuilds and persistence share one lock, one
write log and one set of invariants; split apart, each part would reach into the others' state.)

``VectorIndex(dim)`` maps int64 ids to unit vectors and answers top-k inner-product searches.

* Up to ``approximate_above`` entries it is exact: faiss ``IndexIDMap2(IndexFlatIP)``.
* Above that it rebuilds itself as an IVF index (``IndexIVFFlat``, about sqrt(n) lists, a hashed
  direct map so ids can be removed) and tunes ``nprobe`` on its own data: the smallest probe count
  whose recall@1 against exact search, on near-duplicate queries made from stored vectors, reaches
  ``target_recall`` (0.99), times 1.5 (at least 4) as a margin. It retrains when it has grown
  4x since the last training.
  Rebuilds run on a background thread by default: searches stay exact (correct, slower) until the
  new index is swapped in, and writes made meanwhile are replayed onto it.
* The raw vectors are kept beside the index, so it can always be rebuilt: :meth:`save` writes them,
  the faiss index and a manifest of checksums (new files first, then an atomic manifest replace);
  :meth:`load` rebuilds the index from the vectors when the index file is missing or corrupt.
* Thread-safe: searches share a read lock (faiss releases the GIL, so they run concurrently);
  add / remove take the write lock.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import faiss
import numpy as np

from ..._warn import warn_once
from ...errors import ConfigError, CostkitError

Metric = Literal["ip", "l2"]
FORMAT_VERSION = 1
MANIFEST = "manifest.json"


class IndexCorrupt(CostkitError):
    """A saved index cannot be loaded: its stored vectors are missing or fail their checksum."""


class _RWLock:
    """Many readers or one writer; a waiting writer blocks new readers (no writer starvation)."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0

    @contextlib.contextmanager
    def read(self) -> Iterator[None]:
        with self._cond:
            while self._writer or self._writers_waiting:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextlib.contextmanager
    def write(self) -> Iterator[None]:
        with self._cond:
            self._writers_waiting += 1
            while self._writer or self._readers:
                self._cond.wait()
            self._writers_waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


class _VectorStore:
    """The raw vectors, dense (rows 0..n-1) in fixed-size blocks, with id -> row.

    Blocks, not one growing array: growing a 1 GB array copies it while the write lock is held,
    which stalls every search for a second. A removal moves the last row into the hole.
    """

    BLOCK = 1 << 15

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.vec_blocks: list[np.ndarray] = []
        self.id_blocks: list[np.ndarray] = []
        self.n = 0
        self.pos: dict[int, int] = {}

    def _append(self, ids: np.ndarray, vecs: np.ndarray) -> None:
        done = 0
        while done < len(ids):
            b, off = divmod(self.n, self.BLOCK)
            if b == len(self.vec_blocks):
                self.vec_blocks.append(np.empty((self.BLOCK, self.dim), dtype=np.float32))
                self.id_blocks.append(np.empty(self.BLOCK, dtype=np.int64))
            take = min(len(ids) - done, self.BLOCK - off)
            self.vec_blocks[b][off : off + take] = vecs[done : done + take]
            self.id_blocks[b][off : off + take] = ids[done : done + take]
            self.pos.update(zip(ids[done : done + take].tolist(), range(self.n, self.n + take), strict=True))
            self.n += take
            done += take

    def row(self, r: int) -> np.ndarray:
        return self.vec_blocks[r // self.BLOCK][r % self.BLOCK]

    def put(self, ids: np.ndarray, vecs: np.ndarray) -> None:
        """Insert or replace (ids are distinct within one call)."""
        fresh = []
        for j, i in enumerate(ids.tolist()):
            r = self.pos.get(i)
            if r is None:
                fresh.append(j)
            else:
                self.row(r)[:] = vecs[j]
        if len(fresh) == len(ids):
            self._append(ids, vecs)
        elif fresh:
            sel = np.asarray(fresh, dtype=np.int64)
            self._append(ids[sel], vecs[sel])

    def drop(self, ids: Iterable[int]) -> list[int]:
        removed = []
        for i in ids:
            r = self.pos.pop(i, None)
            if r is None:
                continue
            last = self.n - 1
            if r != last:
                lb, lo = divmod(last, self.BLOCK)
                moved = int(self.id_blocks[lb][lo])
                self.row(r)[:] = self.vec_blocks[lb][lo]
                self.id_blocks[r // self.BLOCK][r % self.BLOCK] = moved
                self.pos[moved] = r
            self.n = last
            if self.n % self.BLOCK == 0 and len(self.vec_blocks) > self.n // self.BLOCK + 1:
                self.vec_blocks.pop()  # keep at most one spare block
                self.id_blocks.pop()
            removed.append(i)
        return removed

    def view(self) -> tuple[np.ndarray, np.ndarray]:
        """Contiguous copies of the live ids and vectors (for builds and saves)."""
        full, rest = divmod(self.n, self.BLOCK)
        vecs = [*self.vec_blocks[:full], *([self.vec_blocks[full][:rest]] if rest else [])]
        ids = [*self.id_blocks[:full], *([self.id_blocks[full][:rest]] if rest else [])]
        if not vecs:
            return np.empty(0, dtype=np.int64), np.empty((0, self.dim), dtype=np.float32)
        return np.concatenate(ids), np.concatenate(vecs)


SMALL_BATCH = 64


@contextlib.contextmanager
def _one_thread(n: int) -> Iterator[None]:
    """Run faiss single-threaded in this thread for a small batch (n rows).

    An OpenMP team for one query costs more than it saves, and on a busy machine its barrier waits
    on a descheduled thread: measured here, a single-query flat search over 20k vectors took 45 ms
    with 2 threads under load and 0.9 ms with 1. ``omp_set_num_threads`` is per calling thread, so
    other threads (and bulk builds) keep their setting.
    """
    if n > SMALL_BATCH:
        yield
        return
    prev = faiss.omp_get_max_threads()
    if prev != 1:
        faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        if prev != 1:
            faiss.omp_set_num_threads(prev)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _fsync_write(path: Path, data: bytes | memoryview) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


class VectorIndex:
    """Top-k search over int64-keyed vectors; exact when small, IVF with tuned nprobe when large."""

    def __init__(
        self,
        dim: int,
        metric: Metric = "ip",
        *,
        approximate_above: int | None = 20_000,
        target_recall: float = 0.99,
        background: bool = True,
        seed: int = 0,
    ) -> None:
        if not isinstance(dim, int) or isinstance(dim, bool) or dim < 1:
            raise ConfigError("dim", f"must be a positive int, got {dim!r}")
        if metric not in ("ip", "l2"):
            raise ConfigError(
                "metric", f"must be 'ip' (inner product / cosine on unit vectors) or 'l2', got {metric!r}"
            )
        if approximate_above is not None and (not isinstance(approximate_above, int) or approximate_above < 256):
            raise ConfigError(
                "approximate_above", f"must be None (always exact) or an int >= 256, got {approximate_above!r}"
            )
        if not 0.5 <= float(target_recall) <= 1.0:
            raise ConfigError("target_recall", f"must be in [0.5, 1.0], got {target_recall!r}")
        self.dim = dim
        self.metric: Metric = metric
        self.approximate_above = approximate_above
        self.target_recall = float(target_recall)
        self.background = background
        self.seed = seed
        self._faiss_metric = faiss.METRIC_INNER_PRODUCT if metric == "ip" else faiss.METRIC_L2
        self._lock = _RWLock()
        self._store = _VectorStore(dim)
        self._index: Any = self._new_exact()
        self.kind: Literal["exact", "ivf"] = "exact"
        self.nlist = 0
        self.nprobe = 0
        self.trained_on = 0
        self.rebuilds = 0
        self._pending: list[tuple[str, np.ndarray, np.ndarray | None]] | None = None  # writes during a rebuild
        self._rebuild_thread: threading.Thread | None = None
        self._rebuild_mutex = threading.Lock()

    # ------------------------------------------------------------------ building blocks

    def _new_exact(self) -> Any:
        flat = faiss.IndexFlatIP(self.dim) if self.metric == "ip" else faiss.IndexFlatL2(self.dim)
        return faiss.IndexIDMap2(flat)

    def _check(self, vectors: Any, name: str = "vectors") -> np.ndarray:
        arr = np.ascontiguousarray(vectors, dtype=np.float32)
        if arr.ndim == 1:
            arr = arr.reshape(1, -1)
        if arr.ndim != 2 or arr.shape[1] != self.dim:
            raise ValueError(f"{name} must have shape (n, {self.dim}), got {arr.shape}")
        if not np.isfinite(arr).all():
            raise ValueError(f"{name} contain NaN or infinity")
        return arr

    @staticmethod
    def _check_ids(ids: Any) -> np.ndarray:
        arr = np.ascontiguousarray(np.asarray(ids, dtype=np.int64).reshape(-1))
        if len(arr) and arr.min() < 0:
            raise ValueError("ids must be >= 0 (-1 marks 'no result' in search output)")
        return arr

    def _want(self, n: int) -> str:
        """What the index should be at size n: keep exact, or (re)build the IVF index."""
        if self.approximate_above is None:
            return "exact" if self.kind == "exact" else "to_exact"
        if self.kind == "exact":
            return "to_ivf" if n > self.approximate_above else "exact"
        if n < self.approximate_above // 2:
            return "to_exact"
        if n > 4 * self.trained_on:
            return "to_ivf"
        return "ivf"

    def _build_ivf(self, vecs: np.ndarray, ids: np.ndarray) -> tuple[Any, int, int]:
        """Train, fill and tune an IVF index on a snapshot (no lock held: searches continue)."""
        n = len(vecs)
        nlist = int(min(16384, max(16, round(np.sqrt(n)))))
        rng = np.random.default_rng(self.seed + n)
        quantizer = faiss.IndexFlatIP(self.dim) if self.metric == "ip" else faiss.IndexFlatL2(self.dim)
        ivf = faiss.IndexIVFFlat(quantizer, self.dim, nlist, self._faiss_metric)
        ivf.cp.niter = 10
        ivf.cp.seed = self.seed
        ivf.cp.max_points_per_centroid = 64
        sample = vecs[np.sort(rng.choice(n, size=min(n, 64 * nlist), replace=False))]
        ivf.train(sample)
        ivf.set_direct_map_type(faiss.DirectMap.Hashtable)  # type: ignore[attr-defined]
        ivf.add_with_ids(vecs, ids)
        ivf.nprobe = self._tune_nprobe(ivf, vecs, rng)
        return ivf, nlist, n

    def _tune_nprobe(self, ivf: Any, vecs: np.ndarray, rng: np.random.Generator) -> int:
        """Smallest nprobe (powers of 2) whose recall@1 vs exact reaches target on near-duplicate queries, x1.5.

        Queries are stored vectors plus noise (cosine ~0.95 to their source): the region where a
        semantic cache decides a hit, so the approximation is tuned where its errors cost money.
        """
        m = min(len(vecs), 400)
        src = vecs[rng.choice(len(vecs), size=m, replace=False)]
        noise = rng.standard_normal(src.shape).astype(np.float32)
        noise *= 0.33 / np.maximum(np.linalg.norm(noise, axis=1, keepdims=True), 1e-12)
        queries = src + noise * np.linalg.norm(src, axis=1, keepdims=True)
        if self.metric == "ip":
            queries /= np.linalg.norm(queries, axis=1, keepdims=True)
        exact_d, _ = faiss.knn(queries, vecs, 1, metric=self._faiss_metric)
        better = (lambda a, b: a >= b - 1e-5) if self.metric == "ip" else (lambda a, b: a <= b + 1e-5)
        probe = 1
        while True:
            ivf.nprobe = probe
            d, _ = ivf.search(queries, 1)
            recall = float(np.mean(better(d[:, 0], exact_d[:, 0])))
            if recall >= self.target_recall or probe >= ivf.nlist:
                break
            probe *= 2
        return int(min(ivf.nlist, max(4, -(-3 * probe // 2))))

    def _apply(self, index: Any, op: str, ids: np.ndarray, vecs: np.ndarray | None) -> None:
        if len(ids) == 0:
            return
        index.remove_ids(ids)
        if op == "add" and vecs is not None:
            index.add_with_ids(vecs, ids)

    # ------------------------------------------------------------------ rebuilds

    def _schedule(self) -> None:
        """Called with the write lock held, after a change: start a rebuild if the size calls for one."""
        want = self._want(self._store.n)
        if want == "to_exact":
            self._switch_to_exact()
            return
        if want != "to_ivf" or self._pending is not None:
            return
        ids, vecs = self._store.view()
        self._pending = []
        if self.background:  # the build reads its own copy: writers go on changing the store meanwhile
            self._rebuild_thread = threading.Thread(
                target=self._rebuild_from,
                args=(ids, vecs),
                name="costkit-vector-index-rebuild",
                daemon=True,
            )
            self._rebuild_thread.start()
        else:
            self._finish(*self._build_ivf(vecs, ids))

    def _rebuild_from(self, ids: np.ndarray, vecs: np.ndarray) -> None:
        try:
            built = self._build_ivf(vecs, ids)
        except Exception as exc:  # a failed rebuild leaves the (correct) current index in place
            warn_once(f"vector-index-rebuild:{type(exc).__name__}", f"costkit VectorIndex rebuild failed: {exc!r}")
            with self._lock.write():
                self._pending = None
            return
        with self._lock.write():
            self._finish(*built)

    def _finish(self, ivf: Any, nlist: int, trained_on: int) -> None:
        """Write lock held: replay the writes made during the build, swap, and check again."""
        for op, ids, vecs in self._pending or ():
            self._apply(ivf, op, ids, vecs)
        self._pending = None
        self._index, self.kind, self.nlist, self.nprobe, self.trained_on = ivf, "ivf", nlist, ivf.nprobe, trained_on
        self.rebuilds += 1
        self._schedule()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until no rebuild is running (tests, benchmarks, before save); False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock.read():
                if self._pending is None:
                    return True
                thread = self._rebuild_thread
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return False
            if thread is not None:
                thread.join(0.05 if remaining is None else min(0.05, remaining))

    def rebuild(self) -> None:
        """Rebuild now, synchronously, in the form the current size calls for (exact or IVF)."""
        self.wait()
        with self._lock.write():
            if self.approximate_above is not None and self._store.n > self.approximate_above:
                ids, vecs = self._store.view()
                self._pending = []
                self._finish(*self._build_ivf(vecs, ids))
            else:
                self._switch_to_exact()

    def _switch_to_exact(self) -> None:
        ids, vecs = self._store.view()
        index = self._new_exact()
        if len(ids):
            index.add_with_ids(vecs, ids)
        self._index, self.kind, self.nlist, self.nprobe, self.trained_on = index, "exact", 0, 0, 0

    # ------------------------------------------------------------------ the API

    def add(self, ids: Sequence[int] | np.ndarray, vectors: Any) -> None:
        """Insert vectors under ids; an id already present gets its new vector (last one wins)."""
        id_arr = self._check_ids(ids)
        vecs = self._check(vectors)
        if len(id_arr) != len(vecs):
            raise ValueError(f"{len(id_arr)} ids for {len(vecs)} vectors")
        if len(id_arr) == 0:
            return
        _, last = np.unique(id_arr[::-1], return_index=True)
        if len(last) != len(id_arr):  # duplicate ids in one call: keep each id's last vector
            keep = np.sort(len(id_arr) - 1 - last)
            id_arr, vecs = id_arr[keep], vecs[keep]
        with self._lock.write():
            existing = np.fromiter((i in self._store.pos for i in id_arr.tolist()), dtype=bool, count=len(id_arr))
            self._store.put(id_arr, vecs)
            with _one_thread(len(id_arr)):
                if existing.any():
                    self._index.remove_ids(id_arr[existing])
                self._index.add_with_ids(vecs, id_arr)
            if self._pending is not None:
                self._pending.append(("add", id_arr, vecs))
            self._schedule()

    def remove(self, ids: Iterable[int] | np.ndarray) -> int:
        """Remove ids (unknown ones are ignored); returns how many were removed."""
        id_arr = self._check_ids(list(ids) if not isinstance(ids, np.ndarray) else ids)
        with self._lock.write():
            removed = np.asarray(self._store.drop(id_arr.tolist()), dtype=np.int64)
            if len(removed):
                with _one_thread(len(removed)):
                    self._apply(self._index, "remove", removed, None)
                if self._pending is not None:
                    self._pending.append(("remove", removed, None))
                self._schedule()
            return len(removed)

    def clear(self) -> None:
        self.wait()
        with self._lock.write():
            self._store = _VectorStore(self.dim)
            self._switch_to_exact()

    def search(self, vectors: Any, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """``(scores, ids)``, each (n, k), best first; ids are -1 where fewer than k entries exist.

        Scores are inner products for ``metric="ip"`` (cosine on unit vectors; higher is closer)
        and squared L2 distances for ``"l2"`` (lower is closer).
        """
        if not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be a positive int, got {k!r}")
        queries = self._check(vectors, "queries")
        with self._lock.read():
            if self._store.n == 0:
                fill = -np.inf if self.metric == "ip" else np.inf
                return np.full((len(queries), k), fill, np.float32), np.full((len(queries), k), -1, np.int64)
            with _one_thread(len(queries)):
                scores, ids = self._index.search(queries, k)
        missing = ids < 0
        if missing.any():
            scores[missing] = -np.inf if self.metric == "ip" else np.inf
        return scores, ids

    def search_one(self, vector: Any, k: int = 1) -> list[tuple[float, int]]:
        """``[(score, id), ...]`` for one query, best first, only real entries."""
        scores, ids = self.search(vector, k)
        return [(float(s), int(i)) for s, i in zip(scores[0], ids[0], strict=True) if i >= 0]

    def get(self, id: int) -> np.ndarray | None:
        """The stored vector of ``id`` (a copy), or None."""
        with self._lock.read():
            row = self._store.pos.get(int(id))
            return None if row is None else self._store.row(row).copy()

    def ids(self) -> np.ndarray:
        with self._lock.read():
            return self._store.view()[0]

    def __len__(self) -> int:
        return self._store.n

    def __contains__(self, id: object) -> bool:
        return isinstance(id, int | np.integer) and int(id) in self._store.pos

    def __repr__(self) -> str:
        extra = f", nlist={self.nlist}, nprobe={self.nprobe}" if self.kind == "ivf" else ""
        return f"VectorIndex(dim={self.dim}, metric={self.metric!r}, n={len(self)}, kind={self.kind!r}{extra})"

    # ------------------------------------------------------------------ persistence

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write vectors, ids and the faiss index under ``directory``, then atomically the manifest.

        Files of this save carry a fresh generation in their names; the manifest that names them
        replaces the old one with ``os.replace``, so a crash leaves the previous save intact.
        """
        root = Path(directory)
        root.mkdir(parents=True, exist_ok=True)
        gen = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
        with self._lock.read():
            ids, vecs = self._store.view()
            files = {"ids": f"ids-{gen}.npy", "vectors": f"vectors-{gen}.npy", "index": f"index-{gen}.faiss"}
            np.save(root / files["ids"], ids, allow_pickle=False)
            np.save(root / files["vectors"], vecs, allow_pickle=False)
            _fsync_write(root / files["index"], faiss.serialize_index(self._index).tobytes())
            meta = {
                "format": FORMAT_VERSION,
                "dim": self.dim,
                "metric": self.metric,
                "count": len(ids),
                "kind": self.kind,
                "nlist": self.nlist,
                "nprobe": self.nprobe,
                "trained_on": self.trained_on,
                "approximate_above": self.approximate_above,
                "target_recall": self.target_recall,
                "files": files,
                "sha256": {name: _sha256(root / f) for name, f in files.items()},
                "saved_at": time.time(),
            }
        tmp = root / f".{MANIFEST}.{gen}.tmp"
        _fsync_write(tmp, json.dumps(meta, indent=1).encode())
        os.replace(tmp, root / MANIFEST)
        with contextlib.suppress(OSError):
            dfd = os.open(root, os.O_RDONLY)
            os.fsync(dfd)
            os.close(dfd)
        for old in root.iterdir():  # earlier generations and leftovers of crashed saves
            if (
                old.name != MANIFEST
                and old.name not in files.values()
                and old.name.split("-")[0]
                in (
                    "ids",
                    "vectors",
                    "index",
                )
            ):
                with contextlib.suppress(OSError):
                    old.unlink()
        return root

    @classmethod
    def load(cls, directory: str | os.PathLike[str], *, background: bool = True) -> VectorIndex:
        """Load a saved index; an unreadable or corrupt index file is rebuilt from the stored vectors.

        Raises :class:`IndexCorrupt` when the manifest or the vectors themselves are unusable.
        """
        root = Path(directory)
        try:
            meta = json.loads((root / MANIFEST).read_text())
            files, sums = meta["files"], meta["sha256"]
            if meta.get("format") != FORMAT_VERSION:
                raise IndexCorrupt(f"{root}: unknown format {meta.get('format')!r}")
        except IndexCorrupt:
            raise
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise IndexCorrupt(f"{root}: no readable manifest ({exc})") from exc
        for name in ("ids", "vectors"):
            path = root / files[name]
            if not path.is_file() or _sha256(path) != sums[name]:
                raise IndexCorrupt(f"{root}: stored {name} are missing or fail their checksum")
        ids = np.load(root / files["ids"], allow_pickle=False)
        vecs = np.load(root / files["vectors"], allow_pickle=False)
        if vecs.shape != (meta["count"], meta["dim"]) or ids.shape != (meta["count"],):
            raise IndexCorrupt(f"{root}: stored arrays do not match the manifest's shape")
        self = cls(
            meta["dim"],
            meta["metric"],
            approximate_above=meta["approximate_above"],
            target_recall=meta["target_recall"],
            background=background,
        )
        self._store.put(ids.astype(np.int64), vecs.astype(np.float32))
        index = None
        index_path = root / files["index"]
        try:
            if index_path.is_file() and _sha256(index_path) == sums["index"]:
                index = faiss.deserialize_index(np.fromfile(index_path, dtype=np.uint8))
                if index.ntotal != len(ids) or index.d != self.dim:
                    index = None
        except Exception:
            index = None
        if index is None:
            warn_once(
                f"vector-index-corrupt:{root}",
                f"costkit VectorIndex at {root}: index file missing or corrupt; rebuilt from the stored vectors",
            )
            self.background = False
            with self._lock.write():
                self._switch_to_exact()
                self._schedule()
            self.background = background
            return self
        self._index = index
        self.kind = meta["kind"]
        self.nlist, self.nprobe, self.trained_on = meta["nlist"], meta["nprobe"], meta["trained_on"]
        if self.kind == "ivf":
            faiss.extract_index_ivf(index).nprobe = self.nprobe
        return self

    @classmethod
    def open(cls, directory: str | os.PathLike[str], dim: int, metric: Metric = "ip", **kwargs: Any) -> VectorIndex:
        """Load from ``directory`` if a save is there, else start empty; a corrupt save degrades to
        an empty index with one warning (a cache must not fail its caller)."""
        root = Path(directory)
        if not (root / MANIFEST).exists():
            return cls(dim, metric, **kwargs)
        try:
            index = cls.load(root, background=kwargs.get("background", True))
        except IndexCorrupt as exc:
            warn_once(f"vector-index-unloadable:{root}", f"costkit VectorIndex: {exc}; starting empty")
            return cls(dim, metric, **kwargs)
        if index.dim != dim or index.metric != metric:
            warn_once(
                f"vector-index-mismatch:{root}",
                f"costkit VectorIndex at {root} has dim={index.dim}, metric={index.metric}; "
                f"wanted dim={dim}, metric={metric}: starting empty",
            )
            return cls(dim, metric, **kwargs)
        return index


__all__ = ["IndexCorrupt", "VectorIndex"]
