"""Several embedders side by side: one vector per text, each embedder's part weighted equally.

Two embedders see different things (wordllama's static vectors the vocabulary, MiniLM the
sentence), and the learned router ranks better on both together than on either: on MMLU the
ridge + kNN router needs 41% strong calls at 95% of GPT-4's accuracy on the two, against 44-45%
on either alone (docs/routing.md). Each part is unit-normalized, so a 384-d part does not
outweigh a 256-d one, and the whole row is unit-normalized again (inner product = cosine).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import ConfigError


class ConcatEmbedder:
    """``ConcatEmbedder("wordllama", "minilm")``: the parts' vectors concatenated, each part weighted equally.

    Parts are anything :func:`costkit.embedders.as_embedder` accepts (an embedder,
    a callable, a short name). The name lists the parts' names, so a router trained on one
    combination refuses another.
    """

    def __init__(self, *parts: Any) -> None:
        from .resolve import as_embedder

        if len(parts) < 2:
            raise ConfigError("parts", f"needs at least two embedders, got {len(parts)}")
        self.parts = tuple(as_embedder(p) for p in parts)
        self.dim = sum(p.dim for p in self.parts)
        self.name = "concat(" + "+".join(p.name for p in self.parts) + ")"

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        blocks = [np.asarray(p(list(texts)), dtype=np.float32) for p in self.parts]
        return self.join(blocks)

    async def aembed(self, texts: Sequence[str]) -> np.ndarray:
        """Awaits the parts that embed over the network (``aembed``); local parts are just called."""
        blocks = []
        for p in self.parts:
            aembed = getattr(p, "aembed", None)
            blocks.append(
                np.asarray(await aembed(list(texts)) if aembed is not None else p(list(texts)), dtype=np.float32)
            )
        return self.join(blocks)

    @staticmethod
    def join(blocks: Sequence[np.ndarray]) -> np.ndarray:
        """Unit-normalize each part, concatenate, and scale so each row has unit norm again."""
        normed = [b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12) for b in blocks]
        out: np.ndarray = np.hstack(normed) / math.sqrt(len(blocks))
        return out.astype(np.float32)

    def __repr__(self) -> str:
        return f"ConcatEmbedder(name={self.name!r}, dim={self.dim})"


__all__ = ["ConcatEmbedder"]
