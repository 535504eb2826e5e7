"""Embedders: text -> unit-norm vectors, shared by the semantic cache and the learned router.

Every embedder is a callable ``embedder(texts) -> np.ndarray`` of shape ``(len(texts), dim)``,
float32, rows of unit L2 norm, with a ``dim`` and a stable ``name`` (what calibrations, indexes and
trained routers are keyed on). Names resolve lazily: ``import costkit.embedders`` pays for neither
numpy nor a model.

* :class:`WordLlamaEmbedder` (the default, :func:`default_embedder`): a bundled static model, numpy only;
* :class:`SentenceTransformerEmbedder`: all-MiniLM-L6-v2 with torch (``costkit[minilm]``);
* :class:`OnnxMiniLMEmbedder`: the same model with ONNX Runtime, no torch (``costkit[onnx]``);
* :class:`ProviderEmbedder`: a provider's embeddings endpoint, its cost reported;
* :class:`CallableEmbedder`: any function; :class:`ConcatEmbedder`: several side by side;
* :func:`as_embedder`: what ``embedder=`` accepts (None, ``"wordllama"``, ``"minilm"``,
  ``"minilm-onnx"``, an embedder, a callable).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

_LAZY = {
    "Embedder": "base",
    "VectorLRU": "base",
    "normalize_rows": "base",
    "WordLlamaEmbedder": "wordllama",
    "default_embedder": "wordllama",
    "SentenceTransformerEmbedder": "minilm",
    "OnnxMiniLMEmbedder": "onnx",
    "ProviderEmbedder": "provider",
    "EmbeddingCost": "provider",
    "reporting_costs_to": "provider",
    "CallableEmbedder": "function",
    "ConcatEmbedder": "concat",
    "as_embedder": "resolve",
}

__all__ = [
    "CallableEmbedder",
    "ConcatEmbedder",
    "Embedder",
    "EmbeddingCost",
    "OnnxMiniLMEmbedder",
    "ProviderEmbedder",
    "SentenceTransformerEmbedder",
    "VectorLRU",
    "WordLlamaEmbedder",
    "as_embedder",
    "default_embedder",
    "normalize_rows",
    "reporting_costs_to",
]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())


if TYPE_CHECKING:  # pragma: no cover
    from .base import Embedder, VectorLRU, normalize_rows
    from .concat import ConcatEmbedder
    from .function import CallableEmbedder
    from .minilm import SentenceTransformerEmbedder
    from .onnx import OnnxMiniLMEmbedder
    from .provider import EmbeddingCost, ProviderEmbedder, reporting_costs_to
    from .resolve import as_embedder
    from .wordllama import WordLlamaEmbedder, default_embedder
