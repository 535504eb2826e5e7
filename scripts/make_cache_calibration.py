"""Produce the semantic-cache calibrations shipped in costkit/data/.

    python scripts/make_cache_calibration.py                    # the bundled wordllama embedder
    python scripts/make_cache_calibration.py --embedder minilm  # all-MiniLM-L6-v2 (torch or its ONNX twin)

What it does (deterministic): split benchmarks/data/qqp_pairs_dev.jsonl in two halves with seed 0,
calibrate on the first half (costkit.policies.cache.calibration.calibrate: simulated cache of every
`a`, lookups of every `b`, meaning-flip veto, cross-fitted rescoring, Clopper-Pearson
fixed-sequence threshold at 99%), write the calibration file, then measure the shipped calibration
on the second half, which it never saw, exactly as the cache scores (veto included), and print hit
rate on duplicates and false-hit rate at max_false_hit_rate 0.01 / 0.02 / 0.05.

Embeddings are computed once per text and kept under --cache-dir (MiniLM on 48k texts takes tens
of minutes on a small CPU).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from costkit.embedders import as_embedder, normalize_rows  # noqa: E402
from costkit.policies.cache.calibration import calibrate, feature_tensor, simulate, veto_mask  # noqa: E402

DATA = ROOT / "benchmarks" / "data" / "qqp_pairs_dev.jsonl"
OUT = ROOT / "costkit" / "data"


def halves(seed: int) -> tuple[list[dict], list[dict]]:
    rows = [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]
    order = np.random.default_rng(seed).permutation(len(rows))
    half = len(rows) // 2
    return [rows[i] for i in order[:half]], [rows[i] for i in order[half:]]


class Cached:
    """The model's vectors for every text of the file, computed once and kept on disk."""

    def __init__(self, model: Any, texts: list[str], cache_dir: Path) -> None:
        unique = sorted(set(texts))
        digest = hashlib.sha256("\n".join(unique).encode()).hexdigest()[:16]
        path = cache_dir / f"{model.name}-{digest}.npy"
        if path.exists():
            vecs = np.load(path, allow_pickle=False)
        else:
            t0 = time.perf_counter()
            vecs = normalize_rows(model(unique))
            print(f"embedded {len(unique)} texts with {model.name} in {time.perf_counter() - t0:.0f} s", flush=True)
            cache_dir.mkdir(parents=True, exist_ok=True)
            np.save(path, vecs, allow_pickle=False)
        self.name, self.dim = model.name, int(vecs.shape[1])
        self.table = dict(zip(unique, vecs, strict=True))

    def __call__(self, texts: Any) -> np.ndarray:
        return np.stack([self.table[t] for t in texts])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--embedder", default="wordllama", help="wordllama (default), minilm or minilm-onnx")
    parser.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "costkit-bench")
    args = parser.parse_args()
    model = as_embedder(None if args.embedder == "wordllama" else args.embedder)
    cal_pairs, held_out = halves(seed=0)
    embedder = Cached(model, [r[k] for r in cal_pairs + held_out for k in ("a", "b")], args.cache_dir)
    t0 = time.perf_counter()
    cal = calibrate(
        cal_pairs,
        embedder,
        source=f"scripts/make_cache_calibration.py: first half (seed 0, {len(cal_pairs)} pairs) of "
        "benchmarks/data/qqp_pairs_dev.jsonl",
    )
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"calibration-{re.sub(r'[^A-Za-z0-9_.-]', '_', embedder.name)}.json"
    cal.save(path)
    print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size} bytes) in {time.perf_counter() - t0:.0f} s")
    lk = simulate(held_out, embedder, top_k=cal.top_k)
    x = feature_tensor(lk)
    scores = x @ np.asarray(cal.scorer.weights) if cal.scorer.weights is not None else lk.cosines
    scores = np.where(veto_mask(lk), -np.inf, scores)
    m = scores.argmax(axis=1)
    rows = np.arange(len(m))
    best, ok = scores[rows, m], lk.right[rows, m]
    print(f"held-out half: {len(best)} lookups, {int(lk.duplicate.sum())} duplicates, {len(lk.entries)} entries")
    print("max_false_hit_rate  threshold  hit_rate_on_duplicates  false_hit_rate(held out)  calibration_estimate")
    for delta in (0.01, 0.02, 0.05):
        t = cal.threshold(delta)
        hit = best >= t
        dup_hit = float((hit & ok & lk.duplicate).sum() / lk.duplicate.sum())
        fhr = float((hit & ~ok).sum() / len(best))
        print(f"{delta:18.2f}  {t:9.4f}  {dup_hit:22.3f}  {fhr:24.4f}  {cal.expected(t)['false_hit_rate']:.4f}")


if __name__ == "__main__":
    main()
