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


def duplicates_of(rows: list[dict[str, Any]]) -> dict[str, set[str]]:
    """Each question -> the questions some pair of ``rows`` labels its duplicate (both ways)."""
    same: dict[str, set[str]] = {}
    for r in rows:
        if r["duplicate"]:
            same.setdefault(r["a"], set()).add(r["b"])
            same.setdefault(r["b"], set()).add(r["a"])
    return same
