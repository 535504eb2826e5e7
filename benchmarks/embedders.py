"""Embedding speed: the bundled wordllama model, MiniLM with torch and the same MiniLM with ONNX Runtime.

    python benchmarks/embedders.py [--texts 400] [--rounds 3] [--threads 1]

Texts are MMLU prompts (benchmarks/data/mmlu_routing_dev.jsonl, cut to 300 characters, a typical
question length). Each round embeds every text once in batches of 32 and 100 texts one at a time,
with each embedder in turn (order shuffled per round, the LRU off), and the median rate over rounds
is printed with its ratio to MiniLM under torch, measured in the same run. MiniLM's two runtimes
are also checked to give the same vectors. Needs the minilm extra and, for ONNX, the one-time
conversion (``python -m costkit.embedders.onnx_export``); a missing one is skipped with a note.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from costkit.errors import ConfigError  # noqa: E402


def rate(embed: Any, texts: list[str], batch: int) -> float:
    t0 = time.perf_counter()
    for i in range(0, len(texts), batch):
        embed(texts[i : i + batch])
    return len(texts) / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--texts", type=int, default=400)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="torch / onnxruntime intra-op threads")
    args = ap.parse_args()
    rows = [json.loads(line) for line in (ROOT / "benchmarks/data/mmlu_routing_dev.jsonl").read_text().splitlines()]
    texts = [r["prompt"][:300] for r in rows[: args.texts]]

    from costkit.embedders import OnnxMiniLMEmbedder, SentenceTransformerEmbedder, WordLlamaEmbedder

    embedders: dict[str, Any] = {"wordllama (bundled, numpy)": WordLlamaEmbedder(cache_size=0)}
    for label, make in (
        ("MiniLM, torch", lambda: SentenceTransformerEmbedder(cache_size=0, threads=args.threads)),
        ("MiniLM, ONNX Runtime", lambda: OnnxMiniLMEmbedder(cache_size=0, threads=args.threads)),
    ):
        try:
            embedders[label] = make()
        except ConfigError as exc:
            print(f"skipped {label}: {exc}")
    for e in embedders.values():
        e(texts[:8])  # load the model outside the timing
    if {"MiniLM, torch", "MiniLM, ONNX Runtime"} <= set(embedders):
        a, b = embedders["MiniLM, torch"](texts[:64]), embedders["MiniLM, ONNX Runtime"](texts[:64])
        print(f"MiniLM torch vs ONNX on 64 texts: max abs difference {float(np.abs(a - b).max()):.2e}")
    batched: dict[str, list[float]] = {k: [] for k in embedders}
    single: dict[str, list[float]] = {k: [] for k in embedders}
    for _ in range(args.rounds):
        order = list(embedders)
        random.shuffle(order)
        for name in order:
            batched[name].append(rate(embedders[name], texts, 32))
            single[name].append(rate(embedders[name], texts[:100], 1))
    print(f"load average {os.getloadavg()[0]:.1f}; {len(texts)} texts, {args.rounds} rounds, {args.threads} thread(s)")
    base = "MiniLM, torch"
    print(f"{'embedder':28s} {'batched texts/s':>16s} {'x torch':>8s} {'one at a time /s':>17s} {'x torch':>8s}")
    for name in embedders:
        b, s1 = statistics.median(batched[name]), statistics.median(single[name])
        rb = b / statistics.median(batched[base]) if base in batched else float("nan")
        rs = s1 / statistics.median(single[base]) if base in single else float("nan")
        print(f"{name:28s} {b:16.1f} {rb:8.2f} {s1:17.1f} {rs:8.2f}")


if __name__ == "__main__":
    main()
