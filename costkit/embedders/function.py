"""Any ``fn(texts) -> array`` as an embedder (rows normalized for you)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..errors import ConfigError
from .base import Vectors, check_texts, normalize_rows


class CallableEmbedder:
    """Adapts ``fn(list[str]) -> array-like (n, dim)``; rows are normalized for you.

    ``dim`` is probed with one call on first access when not given; ``name`` defaults to the
    function's qualified name, so pass one if that is not stable (a lambda, a closure).
    """

    def __init__(self, fn: Callable[[list[str]], Any], *, dim: int | None = None, name: str | None = None) -> None:
        if not callable(fn):
            raise ConfigError("embedder", f"must be callable, got {type(fn).__name__}")
        if dim is not None and (not isinstance(dim, int) or dim < 1):
            raise ConfigError("dim", f"must be a positive int, got {dim!r}")
        self.fn = fn
        self._dim = dim
        qualname = getattr(fn, "__qualname__", type(fn).__name__)
        self.name = name or f"callable-{getattr(fn, '__module__', '?')}.{qualname}"

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._dim = int(self._run(["dimension probe"]).shape[1])
        return self._dim

    def _run(self, texts: list[str]) -> Vectors:
        out = normalize_rows(self.fn(texts))
        if out.shape[0] != len(texts):
            raise ValueError(f"embedder {self.name} returned {out.shape[0]} rows for {len(texts)} texts")
        if self._dim is not None and out.shape[1] != self._dim:
            raise ValueError(f"embedder {self.name} returned {out.shape[1]}-d vectors, expected {self._dim}")
        return out

    def __call__(self, texts: Sequence[str]) -> Vectors:
        batch = check_texts(texts)
        if not batch:
            return np.empty((0, self.dim), dtype=np.float32)
        return self._run(batch)

    def __repr__(self) -> str:
        return f"CallableEmbedder(name={self.name!r})"


__all__ = ["CallableEmbedder"]
