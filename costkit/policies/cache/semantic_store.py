"""Where semantic entries live in one process (optionally on disk), and what a search returns.

The store interface the semantic cache uses (this store and :mod:`.pgvector_store` implement it):
``add(partition, vector, payload, ttl_s) -> id``, ``search(partition, vector, k) -> [(cosine, id,
payload)]``, ``append(id, field, items, cap)`` (what verdicts and askers are recorded with: kept in
the entry, so every process sharing the store sees them), ``delete(id)``, ``delete_where(pred)``,
``count(partition)``, ``clear()``. The cache turns each search row into a :class:`Candidate`.
"""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from ...errors import ConfigError
from .stores import DiskStore


@attrs.frozen(slots=True)
class Candidate:
    """One entry a search found: its cosine to the query, its id, and its stored payload."""

    similarity: float
    entry_id: Any
    payload: Mapping[str, Any]

    @property
    def question(self) -> str:
        q = self.payload.get("q")
        return q if isinstance(q, str) else ""

    @property
    def answer_text(self) -> str | None:
        result = self.payload.get("result")
        text = result.get("text") if isinstance(result, Mapping) else None
        return text if isinstance(text, str) else None


Hit = tuple[float, Any, Mapping[str, Any]]  # what a store's search returns: (cosine, id, payload)


class LocalSemanticStore:
    """Entries in this process: one faiss VectorIndex per partition, payloads in a dict.

    With ``directory`` every entry is also written (JSON, vector included) to a :class:`DiskStore`
    there; :meth:`save` / :meth:`close` write each partition's faiss index beside them. Reopening
    loads a saved index when it holds exactly the stored entries and otherwise (missing, stale,
    corrupt) rebuilds it from the stored vectors, so a lost index file never loses the cache.
    Other processes do not see new entries until they reopen the directory: for live sharing
    across processes use the Postgres + pgvector store.
    """

    def __init__(self, directory: str | Path | None = None) -> None:
        self.directory = Path(directory) if directory is not None else None
        self._disk = DiskStore(self.directory / "entries") if self.directory is not None else None
        self._indexes: dict[str, Any] = {}
        self._payloads: dict[int, dict[str, Any]] = {}
        self._partition_of: dict[int, str] = {}
        self._lock = threading.RLock()
        self._next_id = 1
        self._loaded = self._disk is None
        self.rebuilt = 0  # partitions whose index was rebuilt from stored vectors when reopened

    # -- persistence ----------------------------------------------------------------------
    def _load(self) -> None:
        if self._loaded:
            return
        with self._lock:
            if self._loaded:
                return
            self._loaded = True
            assert self._disk is not None and self.directory is not None
            db = self._disk._db()
            now = time.time()
            by_partition: dict[str, list[tuple[int, list[float], dict[str, Any]]]] = {}
            for key in list(db.iterkeys()):
                doc = self._disk.get(key)
                if doc is None or not isinstance(doc.get("vec"), list):
                    continue
                if doc.get("exp") is not None and doc["exp"] <= now:
                    self._disk.delete(key)
                    continue
                by_partition.setdefault(str(doc["partition"]), []).append((int(key), doc["vec"], doc))
            for partition, rows in by_partition.items():
                ids = np.array([r[0] for r in rows], dtype=np.int64)
                vecs = np.asarray([r[1] for r in rows], dtype=np.float32)
                index = self._saved_index(partition, ids, vecs.shape[1])
                if index is None:  # none saved, stale or corrupt: rebuild from the stored vectors
                    self.rebuilt += 1
                    index = self._index(partition, vecs.shape[1])
                    index.add(ids, vecs)
                self._indexes[partition] = index
                for entry_id, _vec, doc in rows:
                    self._payloads[entry_id] = doc
                    self._partition_of[entry_id] = partition
                    self._next_id = max(self._next_id, entry_id + 1)

    def _index_dir(self, partition: str) -> Path:
        assert self.directory is not None
        return self.directory / "index" / partition[:32]

    def _saved_index(self, partition: str, ids: np.ndarray, dim: int) -> Any:
        """The index saved for ``partition`` if it holds exactly these entries, else None."""
        from .vector_index import VectorIndex

        path = self._index_dir(partition)
        if not path.exists():
            return None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a corrupt save is rebuilt here, not reported twice
                index = VectorIndex.open(path, dim)
        except Exception:
            return None
        if len(index) != len(ids) or not np.array_equal(np.sort(index.ids()), np.sort(ids)):
            return None
        return index

    def save(self) -> None:
        """Write each partition's faiss index next to the entries (reopening then skips the rebuild)."""
        if self.directory is None:
            return
        with self._lock:
            items = list(self._indexes.items())
        for partition, index in items:
            self._index_dir(partition).parent.mkdir(parents=True, exist_ok=True)
            index.save(self._index_dir(partition))

    def close(self) -> None:
        self.save()
        if self._disk is not None:
            self._disk.close()

    def _index(self, partition: str, dim: int) -> Any:
        index = self._indexes.get(partition)
        if index is None:
            from .vector_index import VectorIndex

            index = self._indexes[partition] = VectorIndex(dim)
        return index

    def _insert(self, entry_id: int, partition: str, vector: np.ndarray, payload: dict[str, Any]) -> None:
        self._index(partition, vector.shape[-1]).add(np.array([entry_id], dtype=np.int64), vector.reshape(1, -1))
        self._payloads[entry_id] = payload
        self._partition_of[entry_id] = partition
        self._next_id = max(self._next_id, entry_id + 1)

    # -- the backend interface (shared with the pgvector store) ---------------------------
    def add(self, partition: str, vector: np.ndarray, payload: Mapping[str, Any], ttl_s: float | None = None) -> int:
        self._load()
        vec = np.asarray(vector, dtype=np.float32).reshape(-1)
        doc = dict(payload)
        doc["exp"] = time.time() + ttl_s if ttl_s is not None else None
        with self._lock:
            entry_id = self._next_id
            self._next_id += 1
            self._insert(entry_id, partition, vec, doc)
        if self._disk is not None:
            self._disk.set(str(entry_id), {**doc, "partition": partition, "vec": [float(x) for x in vec]}, ttl_s=ttl_s)
        return entry_id

    def search(self, partition: str, vector: np.ndarray, k: int) -> list[Hit]:
        self._load()
        index = self._indexes.get(partition)
        if index is None or len(index) == 0:
            return []
        scores, ids = index.search(np.asarray(vector, dtype=np.float32).reshape(1, -1), k)
        now = time.time()
        out: list[Hit] = []
        expired = []
        for score, entry_id in zip(scores[0], ids[0], strict=True):
            if entry_id < 0:
                continue
            payload = self._payloads.get(int(entry_id))
            if payload is None:
                continue
            if payload.get("exp") is not None and payload["exp"] <= now:
                expired.append(int(entry_id))
                continue
            out.append((float(score), int(entry_id), payload))
        for entry_id in expired:
            self.delete(entry_id)
        return out

    def get(self, entry_id: Any) -> dict[str, Any] | None:
        """A copy of entry ``entry_id``'s payload, or None."""
        self._load()
        with self._lock:
            payload = self._payloads.get(int(entry_id))
            return dict(payload) if payload is not None else None

    def append(self, entry_id: Any, field: str, items: Sequence[Any], *, cap: int = 32) -> bool:
        """Append ``items`` to the list ``field`` of an entry, keeping the last ``cap`` (False: no such entry)."""
        self._load()
        with self._lock:
            payload = self._payloads.get(int(entry_id))
            if payload is None:
                return False
            old = payload.get(field)
            payload[field] = [*(old if isinstance(old, list) else []), *items][-cap:]
            doc = dict(payload)
        if self._disk is not None:
            stored = self._disk.get(str(entry_id))
            if stored is not None:
                stored[field] = doc[field]
                exp = stored.get("exp")
                ttl = None if exp is None else max(exp - time.time(), 1e-3)
                self._disk.set(str(entry_id), stored, ttl_s=ttl)
        return True

    def delete(self, entry_id: Any) -> None:
        with self._lock:
            partition = self._partition_of.pop(int(entry_id), None)
            self._payloads.pop(int(entry_id), None)
            if partition is not None:
                self._indexes[partition].remove(np.array([int(entry_id)], dtype=np.int64))
        if self._disk is not None:
            self._disk.delete(str(entry_id))

    def delete_where(self, predicate: Callable[[Mapping[str, Any]], bool]) -> int:
        self._load()
        with self._lock:
            doomed = [i for i, p in self._payloads.items() if predicate(p)]
        for entry_id in doomed:
            self.delete(entry_id)
        return len(doomed)

    def count(self, partition: str) -> int:
        index = self._indexes.get(partition)
        return len(index) if index is not None else 0

    def __len__(self) -> int:
        self._load()
        return len(self._payloads)

    def clear(self) -> None:
        with self._lock:
            self._indexes.clear()
            self._payloads.clear()
            self._partition_of.clear()
        if self._disk is not None:
            self._disk.clear()


def as_semantic_store(store: Any) -> Any:
    if store is None:
        return LocalSemanticStore()
    if isinstance(store, str | Path):
        return LocalSemanticStore(store)
    if all(callable(getattr(store, m, None)) for m in ("add", "search")):
        return store
    raise ConfigError("store", f"expected a directory, a LocalSemanticStore or a pgvector store; got {store!r}")


__all__ = ["Candidate", "Hit", "LocalSemanticStore", "as_semantic_store"]
