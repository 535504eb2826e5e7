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

import re
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _qqp import calibration_setup  # noqa: E402

from costkit.policies.cache.calibration import calibrate, feature_tensor, simulate, veto_mask  # noqa: E402

OUT = ROOT / "costkit" / "data"


def main() -> None:
    _, _, cal_pairs, held_out, embedder = calibration_setup(__doc__.split("\n\n")[0])
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
