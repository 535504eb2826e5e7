"""The QQP pairs the semantic cache is calibrated and measured on (benchmarks/data/qqp_pairs_dev.jsonl).

One split serves everything: :func:`halves` with seed 0 gives the half the shipped calibration was
made from (scripts/make_cache_calibration.py) and the half it never saw (benchmarks/cache_quality.py);
benchmarks/cache_qqp.py repeats the protocol over several seeds.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

PAIRS = Path(__file__).resolve().parent / "data" / "qqp_pairs_dev.jsonl"


def read_pairs(path: Path = PAIRS) -> list[dict[str, Any]]:
    """``[{"a", "b", "duplicate"}, ...]`` in file order."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def halves(rows: list[dict[str, Any]], seed: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The rows in two halves, shuffled with ``seed`` (the first half is the one calibrated on)."""
    order = np.random.default_rng(seed).permutation(len(rows))
    half = len(rows) // 2
    return [rows[i] for i in order[:half]], [rows[i] for i in order[half:]]


def calibration_setup(description: str) -> tuple[Any, Any, list[dict[str, Any]], list[dict[str, Any]], Any]:
    """The calibration scripts' shared start: ``--embedder`` / ``--cache-dir`` parsed, the embedder,
    the two seed-0 halves, and a :class:`Replay` of the embeddings of every QQP text (computed once,
    kept under ``--cache-dir``): (args, embedder, calibration half, held-out half, replay)."""
    import argparse

    from _replay import Replay

    from costkit.embedders import as_embedder

    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--embedder", default="wordllama", help="wordllama (default), minilm or minilm-onnx")
    ap.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "costkit-bench")
    args = ap.parse_args()
    model = as_embedder(None if args.embedder == "wordllama" else args.embedder)
    cal_pairs, held = halves(read_pairs(), seed=0)
    replay = Replay(model, [r[k] for r in cal_pairs + held for k in ("a", "b")], args.cache_dir)
    return args, model, cal_pairs, held, replay


def duplicates_of(rows: list[dict[str, Any]]) -> dict[str, set[str]]:
    """Each question -> the questions some pair of ``rows`` labels its duplicate (both ways)."""
    same: dict[str, set[str]] = {}
    for r in rows:
        if r["duplicate"]:
            same.setdefault(r["a"], set()).add(r["b"])
            same.setdefault(r["b"], set()).add(r["a"])
    return same
