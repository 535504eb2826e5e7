"""Turn what a user passed as ``embedder=`` (None, a name, an embedder, a callable) into an embedder."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from ..errors import ConfigError
from .base import Embedder
from .function import CallableEmbedder
from .wordllama import default_embedder

_lock = threading.Lock()
_named: dict[str, Embedder] = {}


def _minilm() -> Embedder:
    """One shared all-MiniLM-L6-v2 per process: loading torch weights takes seconds."""
    with _lock:
        if "minilm" not in _named:
            from .minilm import SentenceTransformerEmbedder

            _named["minilm"] = SentenceTransformerEmbedder()
        return _named["minilm"]


def _minilm_onnx() -> Embedder:
    """One shared ONNX Runtime MiniLM per process (the session holds the model's weights)."""
    with _lock:
        if "minilm-onnx" not in _named:
            from .onnx import OnnxMiniLMEmbedder

            _named["minilm-onnx"] = OnnxMiniLMEmbedder()
        return _named["minilm-onnx"]


_NAMED: dict[str, Callable[[], Embedder]] = {
    "wordllama": default_embedder,
    "default": default_embedder,
    "minilm": _minilm,
    "all-MiniLM-L6-v2": _minilm,
    "minilm-onnx": _minilm_onnx,
}


def as_embedder(obj: Any = None) -> Embedder:
    """None -> the default; an Embedder as is; "wordllama" / "minilm" / "minilm-onnx" by name; a callable wrapped."""
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


__all__ = ["as_embedder"]
