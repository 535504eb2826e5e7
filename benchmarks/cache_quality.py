"""The semantic cache's quality promises, measured through a wrapped openai client on data it never saw.

    python benchmarks/cache_quality.py                        # bundled embedder, shipped calibration
    python benchmarks/cache_quality.py --embedder minilm      # all-MiniLM-L6-v2 and its shipped calibration
    python benchmarks/cache_quality.py --qqp-pairs 4000       # a smaller QQP slice (quicker)

Every figure comes from ``costkit.wrap(FakeOpenAI(), policies=[SemanticCache(delta, embedder=...)])``
with the defaults (the calibration shipped for the embedder): the cache is filled by asking each
cached question through the client (a miss: the fake provider answers, the cache stores), then
frozen (no more writes, so each lookup sees the same entries), then every lookup is asked through
the client; its cost record says whether it was a semantic hit and on which entry.

* **Near misses** (``benchmarks/near_miss.py``: 222 pairs written for this, over negation and its
  scope, antonyms, role swaps, numbers, units, dates and named entities; 70 from held-out
  templates): the cache holds every ``a``, each ``b`` is looked up, then the other way round. A
  hit on the lookup's own partner is a near-miss hit (goal: none at any delta <= 0.05); hits on
  other entries are counted apart ("5 kilometers" may rightly hit another pair's "5 km").
* **Everyday paraphrases** (``benchmarks/data/everyday_paraphrases.txt``, written by hand): the
  cache holds the questions; each paraphrase should hit its own question (answered), and the
  related-but-different questions should hit nothing. "wrong" = wrong hits / all lookups. Split
  into the clusters used while building (dev) and the held-out clusters.
* **QQP** (``benchmarks/data/qqp_pairs_dev.jsonl``, the half the shipped calibration never saw,
  seed 0): the cache holds every ``a``, each ``b`` is looked up. Right = the own ``a`` of a
  duplicate pair, an entry with the same text, or a pair labeled duplicate elsewhere in the file.
  Goal: false-hit rate <= delta at every delta.
* **With a simulated verifier** (right with probability p = 0.9 and 0.98, seeded per pair; asked
  on the band from the 0.25-rate threshold up, at most on ``--judge-budget`` of the lookups: past
  the budget it answers "no" without being called), paraphrases and QQP again.

Embeddings are computed once per text and replayed under the embedder's own name (MiniLM on a
2-core machine is slow); everything else is the cache's own lookup path.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _qqp import duplicates_of, halves, read_pairs  # noqa: E402
from _replay import Replay  # noqa: E402
from near_miss import near_misses  # noqa: E402

import costkit  # noqa: E402
from costkit.embedders import as_embedder  # noqa: E402
from costkit.policies.cache import SemanticCache, Verifier  # noqa: E402
from costkit.sinks import MemorySink  # noqa: E402
from costkit.testing import FakeOpenAI  # noqa: E402

DATA = ROOT / "benchmarks" / "data"
RATES = (0.01, 0.02, 0.05)
ACCURACIES = (0.9, 0.98)


# ------------------------------------------------------------------------------------------ data


def paraphrase_clusters(path: Path = DATA / "everyday_paraphrases.txt") -> list[dict[str, Any]]:
    """``[{"topic", "held_out", "qs": [(question, [paraphrase, ...])], "ns": [question, ...]}]``."""
    clusters: list[dict[str, Any]] = []
    last: tuple[str, list[str]] | None = None
    for line in path.read_text().splitlines():
        if line.startswith("## "):
            topic = line[3:].strip()
            clusters.append({"topic": topic, "held_out": "[held-out]" in topic, "qs": [], "ns": []})
        elif line.startswith("Q: "):
            last = (line[3:].strip(), [])
            clusters[-1]["qs"].append(last)
        elif line.startswith("P: ") and last is not None:
            last[1].append(line[3:].strip())
        elif line.startswith("N: "):
            clusters[-1]["ns"].append(line[3:].strip())
    return clusters


def qqp_held_out(limit: int) -> tuple[list[dict[str, Any]], dict[str, set[str]]]:
    rows = read_pairs()
    _, held = halves(rows, seed=0)  # the split scripts/make_cache_calibration.py uses
    return (held[:limit] if limit else held), duplicates_of(rows)


# ------------------------------------------------------------------------------------- plumbing


class Frozen:
    """A store proxy that stops taking writes once frozen: every lookup then sees the same entries."""

    def __init__(self, store: Any) -> None:
        self.inner = store
        self.frozen = False

    def add(self, *args: Any, **kwargs: Any) -> Any:
        return None if self.frozen else self.inner.add(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class SimulatedJudge:
    """Right with probability ``accuracy`` (seeded per question pair); answers "no" uncalled past its budget."""

    def __init__(self, truth: Any, accuracy: float, budget: float, seed: int = 0) -> None:
        self.truth, self.accuracy, self.budget, self.seed = truth, accuracy, budget, seed
        self.calls = 0
        self.lookups = 0

    def __call__(self, query: str, cached_question: str, cached_answer: str | None) -> bool:
        if self.calls >= self.budget * max(self.lookups, 1):
            return False
        self.calls += 1
        right = bool(self.truth(query, cached_question))
        flip = random.Random(f"{self.seed}:{query}:{cached_question}").random() >= self.accuracy
        return right != flip


def run(
    embedder: Any,
    rate: float,
    entries: list[str],
    lookups: list[str],
    judge: SimulatedJudge | None = None,
    band: float = 0.25,
    stated: bool = False,
) -> list[str | None]:
    """Fill a fresh cache through the wrapped client, freeze it, ask every lookup; the entry each hit
    came from (None: a miss)."""
    verifier = None
    if judge is not None:  # stated: the cache is told the judge's accuracy and sets its band from it
        verifier = Verifier(check=judge, band=band, accuracy=judge.accuracy if stated else None)
    cache = SemanticCache(rate, embedder=embedder, verifier=verifier)
    store = Frozen(cache.store)
    cache.store = store
    sink = MemorySink()
    client = costkit.wrap(FakeOpenAI(), policies=[cache], sink=sink)

    def ask(text: str) -> Any:
        return client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": text}], temperature=0
        )

    for text in dict.fromkeys(entries):
        ask(text)
    store.frozen = True
    out: list[str | None] = []
    for text in lookups:
        if judge is not None:
            judge.lookups += 1
        before = len(sink.records)
        ask(text)
        hit = next((r for r in sink.records[before:] if r.cache == "semantic"), None)
        if hit is None:
            out.append(None)
        else:
            entry = store.inner.get(hit.notes["entry_id"])
            out.append(entry["q"] if entry else "?")
    return out


# ------------------------------------------------------------------------------------------ main


def pct(x: float) -> str:
    return f"{100 * x:5.1f}%"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--embedder", default="wordllama", help="wordllama (default), minilm or minilm-onnx")
    ap.add_argument("--qqp-pairs", type=int, default=0, help="QQP held-out pairs to use (0: all 12,126)")
    ap.add_argument("--judge-budget", type=float, default=0.5, help="most judge calls per lookup")
    ap.add_argument("--band", type=float, default=0.25, help="the verifier's band starts at this rate's threshold")
    ap.add_argument(
        "--stated-accuracy", action="store_true", help="tell the cache the judge's accuracy (band chosen from it)"
    )
    ap.add_argument("--no-verifier", action="store_true")
    ap.add_argument(
        "--sections", default="nearmiss,paraphrases,qqp,verifier", help="which parts to run (comma-separated)"
    )
    ap.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "costkit-bench")
    args = ap.parse_args()

    model = as_embedder(None if args.embedder == "wordllama" else args.embedder)
    clusters = paraphrase_clusters()
    pairs = near_misses()
    qqp, same = qqp_held_out(args.qqp_pairs)
    texts = [p.a for p in pairs] + [p.b for p in pairs]
    for c in clusters:
        texts += [q for q, _ in c["qs"]] + [p for _, ps in c["qs"] for p in ps] + c["ns"]
    every_qqp, _ = qqp_held_out(0)  # embed the whole half: one vector file serves every --qqp-pairs
    texts += [r["a"] for r in every_qqp] + [r["b"] for r in every_qqp]
    emb = Replay(model, texts, args.cache_dir)
    print(f"embedder {emb.name}; {len(pairs)} near-miss pairs, {len(qqp)} QQP held-out pairs", flush=True)

    sections = set(args.sections.split(","))
    if args.no_verifier:
        sections.discard("verifier")

    # ---------------------------------------------------------------- near misses
    if "nearmiss" in sections:
        print("\nNear misses, both directions: hits on the own partner / lookups (goal: 0)")
        print(f"{'delta':>6}  {'all':>9}  {'held-out templates':>18}  {'other entries hit':>17}  by kind")
        for rate in RATES:
            hits: Counter[str] = Counter()
            held = other = 0
            for fill, look in (("a", "b"), ("b", "a")):
                found = run(emb, rate, [getattr(p, fill) for p in pairs], [getattr(p, look) for p in pairs])
                for p, f in zip(pairs, found, strict=True):
                    if f is not None and f == getattr(p, fill):
                        hits[p.kind] += 1
                        held += p.held_out
                    elif f is not None:
                        other += 1
            n = 2 * len(pairs)
            n_held = 2 * sum(p.held_out for p in pairs)
            kinds = ", ".join(f"{k} {v}" for k, v in sorted(hits.items())) or "none"
            total = sum(hits.values())
            print(f"{rate:6.2f}  {total:4d}/{n:<4d}  {held:8d}/{n_held:<9d}  {other:17d}  {kinds}", flush=True)

    # ---------------------------------------------------------------- paraphrases
    def paraphrase_lookups(held_out: bool) -> tuple[list[str], list[str], list[str | None]]:
        cs = [c for c in clusters if c["held_out"] == held_out]
        entries = [q for c in cs for q, _ in c["qs"]]
        looks = [p for c in cs for _q, ps in c["qs"] for p in ps]
        owner: list[str | None] = [q for c in cs for q, ps in c["qs"] for _p in ps]
        looks += [n for c in cs for n in c["ns"]]
        owner += [None for c in cs for _n in c["ns"]]
        return entries, looks, owner

    def score_paraphrases(found: list[str | None], owner: list[str | None]) -> tuple[float, float]:
        n_para = sum(o is not None for o in owner)
        right = sum(f is not None and f == o for f, o in zip(found, owner, strict=True))
        wrong = sum(f is not None and f != o for f, o in zip(found, owner, strict=True))
        return right / n_para, wrong / len(owner)

    if "paraphrases" in sections:
        print("\nEveryday paraphrases: answered (right hits / paraphrases), wrong (wrong hits / all lookups)")
    for held_out in (False, True) if "paraphrases" in sections else ():
        entries, looks, owner = paraphrase_lookups(held_out)
        label = "held-out" if held_out else "dev"
        n_para = sum(o is not None for o in owner)
        for rate in RATES:
            answered, wrong = score_paraphrases(run(emb, rate, entries, looks), owner)
            print(
                f"  {label:8s} ({len(entries)} cached, {n_para} paraphrases, {len(looks) - n_para} different)"
                f"  delta {rate:.2f}: answered {pct(answered)}, wrong {pct(wrong)}",
                flush=True,
            )

    # ---------------------------------------------------------------- QQP
    def qqp_truth(query: str, cached: str) -> bool:
        return cached == query or cached in same.get(query, ())

    def score_qqp(found: list[str | None]) -> tuple[float, float]:
        dup = sum(r["duplicate"] for r in qqp)
        right_dup = sum(
            f is not None and r["duplicate"] and (f == r["a"] or qqp_truth(r["b"], f))
            for r, f in zip(qqp, found, strict=True)
        )
        wrong = sum(f is not None and not qqp_truth(r["b"], f) for r, f in zip(qqp, found, strict=True))
        return right_dup / dup, wrong / len(qqp)

    if "qqp" in sections:
        print(f"\nQQP held-out half ({len(qqp)} lookups): hit rate on duplicates, false-hit rate (goal: <= delta)")
    for rate in RATES if "qqp" in sections else ():
        t0 = time.perf_counter()
        hit, fhr = score_qqp(run(emb, rate, [r["a"] for r in qqp], [r["b"] for r in qqp]))
        ok = "yes" if fhr <= rate else "NO"
        print(
            f"  delta {rate:.2f}: hit rate on duplicates {pct(hit)}, false-hit rate {fhr:.4f} (<= delta: {ok}) "
            f"[{time.perf_counter() - t0:.0f} s]",
            flush=True,
        )

    if "verifier" not in sections:
        return
    band = "chosen from the judge's stated accuracy" if args.stated_accuracy else f"from the {args.band}-rate threshold"
    print(f"\nWith a simulated verifier (band {band}; at most {args.judge_budget} calls/lookup)")
    for accuracy in ACCURACIES:
        for rate in RATES:
            parts = []
            for held_out in (False, True):
                entries, looks, owner = paraphrase_lookups(held_out)
                truth = dict(zip(looks, owner, strict=True))
                judge = SimulatedJudge(lambda q, c, truth=truth: truth.get(q) == c, accuracy, args.judge_budget)
                found = run(emb, rate, entries, looks, judge, args.band, args.stated_accuracy)
                answered, wrong = score_paraphrases(found, owner)
                label = "held-out" if held_out else "dev"
                calls = judge.calls / len(looks)
                parts.append(f"{label} answered {pct(answered)} wrong {pct(wrong)} ({calls:.2f} calls)")
            judge = SimulatedJudge(qqp_truth, accuracy, args.judge_budget)
            found = run(emb, rate, [r["a"] for r in qqp], [r["b"] for r in qqp], judge, args.band, args.stated_accuracy)
            hit, fhr = score_qqp(found)
            parts.append(f"QQP dup hits {pct(hit)} false-hit {fhr:.4f} ({judge.calls / len(qqp):.2f} calls)")
            print(f"  p={accuracy} delta {rate:.2f}: " + "; ".join(parts), flush=True)


if __name__ == "__main__":
    main()
