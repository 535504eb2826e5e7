"""The prompt compressor and provider prompt caching, measured on what reaches the (fake) provider.

    python benchmarks/context.py                 # all four parts
    python benchmarks/context.py --parts squad   # one part: squad, history, caching, latency

1. **squad**: SQuAD 2.0 dev articles (benchmarks/data/squad_context_dev.json). For each answerable
   question: the gold paragraph and 9 other paragraphs of the same article, shuffled (seed 0),
   each a ``{"role": "user", "name": "context"}`` message after a system prompt, the question
   last. Sent through a wrapped openai SDK client to the fake provider; measured on the messages
   the fake received: the share of the retrieved tokens sent (framing included) and whether the
   sentence holding the answer arrived verbatim (white space normalized; sentences split by a
   plain reference rule, not the library's splitter). Budgets: 10% and 5% of the retrieved tokens.
   Baselines in the same run: head cut (ContextBudget on_over="truncate"), first-k paragraphs,
   sentence-level BM25 (the compressor with BM25 alone). "Normans" is the development article
   (defaults were chosen on it); "Sky (United Kingdom)" is held out.
2. **history**: conversations whose user-turn and answer sizes are drawn from the Azure LLM
   inference trace (conversation service; benchmarks/data/azure_llm_trace_conv_2000.csv),
   10 turns each, sent whole (baseline) or through ContextBudget(history=2000); input tokens and
   dollars at gpt-4o prices, the gpt-4o-mini summaries' cost counted.
3. **caching**: 50 calls to claude-sonnet-4-5 with the same 2,000-token system prompt and
   different questions, through the fake provider billing Anthropic's prompt cache; input cost
   with PromptCache (cache_control injected) against the same workload without it.
4. **latency**: the compressor on the squad instances (10 paragraphs, ~1,500 tokens, budget 10%):
   median and p99 milliseconds per call on this machine, beside what the call saves.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import re
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import costkit
from costkit import ContextBudget, PromptCache, PromptCompressor
from costkit.policies.compress import RankWeights
from costkit.pricing import PriceBook
from costkit.sinks import MemorySink
from costkit.testing import FakeAnthropic, FakeOpenAI, FakeProvider
from costkit.tokens import count_messages, count_text

DATA = Path(__file__).resolve().parent / "data"
MODEL = "gpt-4o-mini"
SYSTEM = "Answer the question using only the context documents."
DEV, HELD_OUT = "Normans", "Sky_(United_Kingdom)"


def norm(text: str) -> str:
    return " ".join(text.split())


def reference_sentence(paragraph: str, start: int, end: int) -> str:
    """The sentence(s) holding [start, end): a plain split at . ! ? followed by a capital."""
    bounds = [0, *(m.end() for m in re.finditer(r"[.!?][\"')\]]*\s+(?=[A-Z\"(])", paragraph)), len(paragraph)]
    s = max(b for b in bounds if b <= start)
    e = min(b for b in bounds if b >= end)
    return paragraph[s:e].strip()


def squad_cases(title: str) -> list[tuple[str, list[str], str]]:
    doc = json.loads((DATA / "squad_context_dev.json").read_text())
    article = next(a for a in doc["data"] if a["title"] == title)
    paragraphs = [p["context"] for p in article["paragraphs"]]
    rng = random.Random(0)
    cases = []
    for pi, p in enumerate(article["paragraphs"]):
        for q in p["qas"]:
            if q.get("is_impossible") or not q["answers"]:
                continue
            a = q["answers"][0]
            picks = [*rng.sample([j for j in range(len(paragraphs)) if j != pi], 9), pi]
            rng.shuffle(picks)
            gold = reference_sentence(p["context"], a["answer_start"], a["answer_start"] + len(a["text"]))
            cases.append((q["question"], [paragraphs[j] for j in picks], gold))
    return cases


def messages_of(question: str, docs: list[str]) -> list[dict]:
    return [
        {"role": "system", "content": SYSTEM},
        *({"role": "user", "name": "context", "content": d} for d in docs),
        {"role": "user", "content": question},
    ]


def size(msgs: list[dict]) -> int:
    return count_messages(msgs, MODEL) - 3 if msgs else 0


class FirstK:
    """Baseline: the first paragraphs that fit the budget, whole."""

    def __init__(self, budget: int) -> None:
        self.budget = budget

    def handle(self, call, nxt):
        kept, used = [], 0
        for m in call.messages:
            if m.get("name") == "context":
                cost = size([m])
                if used + cost > self.budget:
                    continue
                used += cost
            kept.append(m)
        return nxt(call.evolve(messages=tuple(kept)))

    async def ahandle(self, call, anext):  # pragma: no cover - sync benchmark
        raise NotImplementedError


def squad_part(titles: list[str]) -> None:
    bm25 = PromptCompressor(
        weights=RankWeights(lexical=1.0, chunk=0.0, semantic=0.0), min_relevance=0.0, normalize=False
    )
    ours = PromptCompressor()
    methods = {
        "head cut (today's ContextBudget)": lambda b: ContextBudget(retrieved=b, on_over="truncate"),
        "first-k paragraphs": FirstK,
        "sentence BM25": lambda b: ContextBudget(retrieved=b, compressor=bm25),
        "PromptCompressor (default)": lambda b: ContextBudget(retrieved=b, compressor=ours),
    }
    for title in titles:
        cases = squad_cases(title)
        tag = "development" if title == DEV else "HELD OUT"
        print(f"\nsquad {title} ({tag}): {len(cases)} questions, 10 paragraphs each")
        print(f"{'method':36s} {'budget':>6s} {'answer kept':>12s} {'tokens sent':>12s}")
        for ratio in (0.10, 0.05):
            for name, make in methods.items():
                kept = 0
                shares = []
                for question, docs, gold in cases:
                    msgs = messages_of(question, docs)
                    before = size(msgs[1:-1])
                    budget = int(before * ratio)
                    fake = FakeProvider(default="ok")
                    client = costkit.wrap(FakeOpenAI(fake), policies=[make(budget)])
                    client.chat.completions.create(model=MODEL, messages=msgs)
                    got = [m for m in fake.last.messages if m.get("name") == "context"]
                    shares.append(size(got) / before)
                    kept += norm(gold) in norm(" ".join(str(m["content"]) for m in got))
                print(f"{name:36s} {ratio:6.0%} {kept / len(cases):12.1%} {statistics.mean(shares):12.1%}")


def trace_sizes() -> list[tuple[int, int]]:
    with (DATA / "azure_llm_trace_conv_2000.csv").open() as f:
        return [(int(r["ContextTokens"]), int(r["GeneratedTokens"])) for r in csv.DictReader(f)]


def filler(tokens: int, rng: random.Random) -> str:
    words = ["order", "account", "shipping", "refund", "invoice", "plan", "update", "device", "error", "setting"]
    text = " ".join(rng.choice(words) + f"{rng.randrange(100)}" for _ in range(max(1, tokens // 2)))
    return text


def history_part(conversations: int, turns: int, budget: int) -> None:
    rng = random.Random(0)
    sizes = trace_sizes()
    prices = PriceBook()
    totals = {"baseline": [0, 0.0], "compacted": [0, 0.0]}
    summary_usd = 0.0
    summaries = 0
    for _ in range(conversations):
        script = [rng.choice(sizes) for _ in range(turns)]
        answers = [filler(g, rng) for _, g in script]
        for variant in totals:
            fake = FakeProvider()
            index = {"turn": 0}
            fake.set_default(lambda request, index=index: answers[min(index["turn"], turns - 1)])
            fake.on(
                r"compress conversations|^user: ",
                "Summary: the user asked about orders, refunds and plans; "
                "the assistant answered each with the account's details.",
                model="gpt-4o-mini",
            )
            sink = MemorySink()
            policies = [ContextBudget(history=budget)] if variant == "compacted" else []
            client = costkit.wrap(FakeOpenAI(fake), policies=policies, sink=sink)
            msgs = [{"role": "system", "content": "You are a support agent."}]
            for t, (user_tokens, _) in enumerate(script):
                index["turn"] = t
                msgs.append({"role": "user", "content": filler(user_tokens, rng)})
                reply = client.chat.completions.create(model="gpt-4o", messages=msgs, max_tokens=2000)
                msgs.append({"role": "assistant", "content": reply.choices[0].message.content})
            for r in sink.records:
                if r.kind == "summary":
                    summary_usd += r.cost_usd or 0.0
                    summaries += 1
                    totals[variant][1] += r.cost_usd or 0.0
                else:
                    totals[variant][0] += r.input_tokens
                    price = prices.get("gpt-4o")
                    totals[variant][1] += r.input_tokens * price.input_per_token
    (bt, bu), (ct, cu) = totals["baseline"], totals["compacted"]
    print(f"\nhistory: {conversations} conversations x {turns} turns, sizes from the Azure conversation trace,")
    print(f"ContextBudget(history={budget}) on gpt-4o, summaries by gpt-4o-mini")
    print(f"  input tokens: {bt:,} -> {ct:,} ({1 - ct / bt:.1%} fewer)")
    print(f"  input dollars incl. summaries: ${bu:.4f} -> ${cu:.4f}; net saved ${bu - cu:.4f} ({1 - cu / bu:.1%})")
    print(f"  summaries paid: {summaries} (${summary_usd:.4f} in all)")


def caching_part(calls: int) -> None:
    rng = random.Random(0)
    model = "claude-sonnet-4-5"
    rules = []
    while count_text(" ".join(rules), model) < 2000:
        i = len(rules)
        rules.append(f"Rule {i}: when a customer asks about topic {i}, answer politely and cite section {i}.")
    system = " ".join(rules)
    prices = PriceBook()
    price = prices.get(model, "anthropic")
    costs = {}
    for variant, policies in (("without", []), ("with PromptCache", [PromptCache()])):
        fake = FakeProvider(default="ok", prompt_caching=True)
        sink = MemorySink()
        client = costkit.wrap(FakeAnthropic(fake), policies=policies, sink=sink)
        for i in range(calls):
            client.messages.create(
                model=model,
                max_tokens=50,
                system=system,
                messages=[{"role": "user", "content": f"Question {i}: what about topic {rng.randrange(200)}?"}],
            )
        usd = 0.0
        for r in sink.records:
            uncached = r.input_tokens - r.cached_read_tokens - r.cache_write_tokens
            usd += (
                uncached * price.input_per_token
                + r.cached_read_tokens * price.cache_read_per_token
                + r.cache_write_tokens * price.cache_write_per_token
            )
        costs[variant] = usd
        reads = sum(r.cached_read_tokens for r in sink.records)
        writes = sum(r.cache_write_tokens for r in sink.records)
        print(f"  {variant:18s} input ${usd:.5f}  (cache reads {reads:,} tokens, writes {writes:,})")
    print(
        f"caching: {calls} calls, {count_text(system, model):,}-token system prompt on {model}: "
        f"input cost down {1 - costs['with PromptCache'] / costs['without']:.1%} with cache_control injection"
    )


def latency_part(rounds: int) -> None:
    from costkit._call import Call
    from costkit._pipeline import drive

    cases = squad_cases(DEV)[:50]
    policy = PromptCompressor()
    prices = PriceBook().get(MODEL)
    calls = []
    for question, docs, _ in cases:
        msgs = messages_of(question, docs)
        budget = int(size(msgs[1:-1]) * 0.10)
        calls.append(
            (
                Call(
                    provider="openai", api="chat.completions", requested_model=MODEL, model=MODEL, messages=tuple(msgs)
                ),
                {"retrieved": budget},
            )
        )
    drive(policy.reduce(calls[0][0], calls[0][1], layer="bench"))  # warm: embedder, wordfreq, bm25s
    times, removed, tokens = [], [], []
    for r in range(rounds):
        call, budgets = calls[r % len(calls)]
        t0 = time.perf_counter()
        out = drive(policy.reduce(call, budgets, layer="bench"))
        times.append((time.perf_counter() - t0) * 1000)
        removed.append(out.notes.get("tokens_removed", 0))
        tokens.append(size(list(call.messages)))
    times.sort()
    p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
    saved = statistics.mean(removed) * prices.input_per_token
    print(f"\nlatency: {rounds} calls, {statistics.mean(tokens):,.0f} prompt tokens each, budget 10% of the retrieved")
    print(f"  compressor: median {statistics.median(times):.1f} ms, p99 {p99:.1f} ms per call")
    print(
        f"  it removes {statistics.mean(removed):,.0f} input tokens per call "
        f"(${saved * 1e6:.0f} per million calls at {MODEL})"
    )


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--parts", nargs="*", default=["squad", "history", "caching", "latency"])
    ap.add_argument("--articles", nargs="*", default=[DEV, HELD_OUT])
    ap.add_argument("--conversations", type=int, default=20)
    ap.add_argument("--turns", type=int, default=10)
    ap.add_argument("--history-budget", type=int, default=2000)
    ap.add_argument("--calls", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=500)
    args = ap.parse_args()
    if "squad" in args.parts:
        squad_part(args.articles)
    if "history" in args.parts:
        history_part(args.conversations, args.turns, args.history_budget)
    if "caching" in args.parts:
        caching_part(args.calls)
    if "latency" in args.parts:
        latency_part(args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
