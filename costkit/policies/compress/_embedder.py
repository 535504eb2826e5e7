"""The one place the compressor imports an embedder from (the embedders' package may move)."""

from __future__ import annotations

from typing import Any


def resolve_embedder(spec: Any) -> Any:
    """``None`` -> the bundled default (wordllama, offline); ``False`` -> no semantic ranking;
    anything else as :func:`as_embedder` takes it (an Embedder, a callable, a name)."""
    if spec is False:
        return None
    from ...embedders import as_embedder

    return as_embedder(spec)


__all__ = ["resolve_embedder"]
