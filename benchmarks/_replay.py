"""An embedder's vectors computed once (in batches, kept on disk) and replayed under its own name.

The semantic-cache benchmarks and scripts/make_cache_calibration.py embed tens of thousands of
texts; a slow model (MiniLM on a small CPU) then takes minutes, so each text set's vectors are
saved under ``cache_dir`` keyed by the model's name and a digest of the texts.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import numpy as np

from costkit.embedders import normalize_rows


class Replay:
    """The model's (normalized) vector for every one of ``texts``; called like an embedder on them."""

    def __init__(self, model: Any, texts: list[str], cache_dir: Path) -> None:
        unique = sorted(set(texts))
        digest = hashlib.sha256("\n".join(unique).encode()).hexdigest()[:16]
        path = cache_dir / f"{model.name}-{digest}.npy"
        if path.exists():
            vecs = np.load(path, allow_pickle=False)
        else:
            t0 = time.perf_counter()
            vecs = normalize_rows(model(unique))
            print(f"  embedded {len(unique)} texts with {model.name} in {time.perf_counter() - t0:.0f} s", flush=True)
            cache_dir.mkdir(parents=True, exist_ok=True)
            np.save(path, vecs, allow_pickle=False)
        self.name, self.dim = model.name, int(vecs.shape[1])
        self.table = dict(zip(unique, vecs, strict=True))

    def __call__(self, texts: Any) -> np.ndarray:
        return np.stack([self.table[t] for t in texts])
