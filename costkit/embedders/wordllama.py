"""The default embedder: wordllama's bundled 256-d static model, read from the installed files.

No download and numpy only: ``WordLlama.load()`` looks for the tokenizer in a folder that does not
exist and then tries Hugging Face, so the two bundled files are read directly.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Sequence
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from .base import Embedder, VectorLRU, Vectors, check_texts, normalize_rows


def _wordllama_dir() -> Path:
    """The installed wordllama package folder, found without importing it (its import logs at INFO)."""
    spec = importlib.util.find_spec("wordllama")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("embedder", "wordllama is not installed (it is a costkit dependency: pip install wordllama)")
    return Path(next(iter(spec.submodule_search_locations)))


class WordLlamaEmbedder:
    """wordllama's bundled l2_supercat static embeddings: tokenize, mean-pool token vectors, normalize.

    Why not ``WordLlama.load()``: it looks for the tokenizer in a folder that does not exist and
    then tries to download from Hugging Face. The wheel ships both files, so we read them directly.
    ``dim`` may truncate the 256-d Matryoshka model to 64 or 128 dimensions (smaller, a bit worse).
    """

    CONFIG = "l2_supercat"
    DIMS = (64, 128, 256)
    POOL_TOKENS = 1024

    def __init__(self, dim: int = 256, *, cache_size: int = 8192, package_dir: str | Path | None = None) -> None:
        if dim not in self.DIMS:
            raise ConfigError("dim", f"must be one of {self.DIMS}, got {dim!r}")
        if not isinstance(cache_size, int) or cache_size < 0:
            raise ConfigError("cache_size", f"must be an int >= 0, got {cache_size!r}")
        root = Path(package_dir) if package_dir is not None else _wordllama_dir()
        self._weights_path = root / "weights" / f"{self.CONFIG}_256.safetensors"
        self._tokenizer_path = root / "tokenizers" / f"{self.CONFIG}_tokenizer_config.json"
        for field, path in (("weights", self._weights_path), ("tokenizer", self._tokenizer_path)):
            if not path.is_file():
                raise ConfigError("embedder", f"wordllama's bundled {field} file is missing: {path}")
        self.dim = dim
        self.name = f"wordllama-{self.CONFIG}-{dim}"
        self.cache = VectorLRU(cache_size)
        self._load_lock = threading.Lock()
        self._table: np.ndarray | None = None
        self._tokenizer: Any = None

    def _load(self) -> tuple[np.ndarray, Any]:
        if self._table is None:
            with self._load_lock:
                if self._table is None:
                    from safetensors import safe_open
                    from tokenizers import Tokenizer

                    with safe_open(str(self._weights_path), framework="np", device="cpu") as f:
                        table = f.get_tensor("embedding.weight")
                    tokenizer = Tokenizer.from_file(str(self._tokenizer_path))
                    tokenizer.no_truncation()
                    tokenizer.no_padding()
                    self._tokenizer = tokenizer
                    self._table = np.ascontiguousarray(table[:, : self.dim], dtype=np.float32)
        return self._table, self._tokenizer

    def _compute(self, texts: list[str]) -> Vectors:
        table, tokenizer = self._load()
        encodings = tokenizer.encode_batch(texts, add_special_tokens=False)
        # A text with no tokens (the empty string) pools the <unk> row: all empty texts then agree.
        ids = [e.ids or [0] for e in encodings]
        lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
        flat = np.fromiter(chain.from_iterable(ids), dtype=np.int64, count=int(lengths.sum()))
        np.clip(flat, 0, table.shape[0] - 1, out=flat)
        ends = np.cumsum(lengths)
        out = np.zeros((len(ids), self.dim), dtype=np.float32)
        # Sum token vectors POOL_TOKENS at a time, whatever the text boundaries: the gathered block
        # stays in cache (measured ~3x faster than one big gather) and memory stays bounded even
        # for one very long text. Within a window, each text's run of tokens is one reduceat segment.
        total = int(ends[-1]) if len(ends) else 0
        for w0 in range(0, total, self.POOL_TOKENS):
            w1 = min(total, w0 + self.POOL_TOKENS)
            t0 = int(np.searchsorted(ends, w0, side="right"))  # the text holding token w0
            t1 = int(np.searchsorted(ends, w1 - 1, side="right"))  # the text holding token w1 - 1
            starts = np.concatenate(([w0], ends[t0:t1])) - w0
            out[t0 : t1 + 1] += np.add.reduceat(table[flat[w0:w1]], starts, axis=0)
        return normalize_rows(out)  # mean-pooling up to scale: the scale goes away here

    def __call__(self, texts: Sequence[str]) -> Vectors:
        batch = check_texts(texts)
        return self.cache.embed(batch, self._compute, self.dim)

    def __repr__(self) -> str:
        return f"WordLlamaEmbedder(dim={self.dim})"


_default: Embedder | None = None
_default_lock = threading.Lock()


def default_embedder() -> Embedder:
    """The process-wide default (a :class:`WordLlamaEmbedder`), built on first use and shared."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = WordLlamaEmbedder()
    return _default


__all__ = ["WordLlamaEmbedder", "default_embedder"]
