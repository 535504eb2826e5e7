"""What every embedder is: texts -> unit-norm float32 rows, with a ``dim`` and a stable ``name``.

An inner product of two rows is then a cosine similarity. The name is a stable id: calibrations,
indexes and trained routers are keyed on it, because vectors of two different embedders must never
be compared. :class:`VectorLRU` is the text -> vector cache every built-in embedder keeps.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

Vectors = np.ndarray  # (n, dim) float32, unit-norm rows


@runtime_checkable
class Embedder(Protocol):
    """Maps texts to unit-norm float32 vectors of shape ``(len(texts), dim)``."""

    @property
    def dim(self) -> int: ...

    @property
    def name(self) -> str:
        """A stable id: calibrations and indexes built with one embedder are keyed on it."""
        ...

    def __call__(self, texts: Sequence[str]) -> Vectors: ...


def normalize_rows(x: Any) -> Vectors:
    """Float32, C-contiguous, each row scaled to unit L2 norm (an all-zero row stays zero)."""
    arr = np.array(x, dtype=np.float32, copy=True, order="C")
    if arr.ndim == 1:
        arr = arr.reshape(1, -1)
    if arr.ndim != 2:
        raise ValueError(f"embeddings must be 2-d (n, dim), got shape {arr.shape}")
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    np.divide(arr, norms, out=arr, where=norms > 0)
    return arr


def check_texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        raise TypeError("an embedder takes a sequence of texts, not one str: use embedder([text])")
    out = list(texts)
    for t in out:
        if not isinstance(t, str):
            raise TypeError(f"texts must be str, got {type(t).__name__}")
    return out


class VectorLRU:
    """A small thread-safe text -> vector LRU, so a repeated text costs a dict lookup."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._data: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._data)

    def lookup(self, texts: list[str], dim: int) -> tuple[Vectors, dict[str, list[int]]]:
        """Rows for the cached texts, and for each distinct missing text the positions it fills."""
        out = np.empty((len(texts), dim), dtype=np.float32)
        missing: dict[str, list[int]] = {}
        with self._lock:
            for i, t in enumerate(texts):
                row = self._data.get(t) if self.capacity > 0 else None
                if row is None:
                    missing.setdefault(t, []).append(i)
                else:
                    self._data.move_to_end(t)
                    out[i] = row
            self.hits += len(texts) - sum(len(v) for v in missing.values())
            self.misses += len(missing)
        return out, missing

    def fill(self, out: Vectors, missing: dict[str, list[int]], computed: Vectors) -> Vectors:
        """Put the rows computed for ``missing`` (in its order) into ``out`` and into the cache."""
        with self._lock:
            for t, v in zip(missing, computed, strict=True):
                row = np.array(v, dtype=np.float32)  # own copy: callers may mutate what we return
                for i in missing[t]:
                    out[i] = row
                if self.capacity > 0:
                    row.setflags(write=False)
                    self._data[t] = row
                    self._data.move_to_end(t)
            while len(self._data) > self.capacity:
                self._data.popitem(last=False)
        return out

    def embed(self, texts: list[str], compute: Callable[[list[str]], Vectors], dim: int) -> Vectors:
        """Rows for ``texts``, computing only the ones not cached (each distinct miss once)."""
        out, missing = self.lookup(texts, dim)
        if missing:
            self.fill(out, missing, compute(list(missing)))
        return out

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


__all__ = ["Embedder", "VectorLRU", "Vectors", "check_texts", "normalize_rows"]
