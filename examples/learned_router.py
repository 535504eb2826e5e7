"""A router trained from logged outcomes: saved, loaded, then routing live calls.

    python examples/learned_router.py

The log: MMLU questions with whether a weak and a strong model answered each correctly
(benchmarks/data/mmlu_routing_dev.jsonl, from RouteLLM, Apache-2.0; here the weak model plays
``gpt-4o-mini`` and the strong one ``gpt-4o``). ``costkit.Router.learned`` trains on 1,000 of them,
shaped ``{"prompt", "ok": {model: bool}}``, choosing its threshold so routed quality stays >= 95%
of the strong model's at 95% confidence. The router is saved to one ``.npz`` file and loaded back,
then routes 300 questions it never saw. The fake provider answers "right" or "wrong" as the log
says the model it was sent to did, so the records show both the money saved and the quality paid.
"""

from __future__ import annotations

import json
import random
import tempfile
from pathlib import Path

import costkit
from costkit.sinks import MemorySink
from costkit.testing import FakeOpenAI, FakeProvider, FakeRequest

CHEAP, STRONG = "gpt-4o-mini", "gpt-4o"
LOG = Path(__file__).resolve().parents[1] / "benchmarks" / "data" / "mmlu_routing_dev.jsonl"


def outcomes() -> list[dict]:
    """Logged traffic, judged offline: which model got each prompt right."""
    rows = [json.loads(line) for line in LOG.read_text().splitlines()]
    random.Random(0).shuffle(rows)
    return [{"prompt": r["prompt"], "ok": {CHEAP: r["weak_correct"], STRONG: r["strong_correct"]},
             "group": r["subject"]} for r in rows[:1300]]


def main() -> None:
    logged = outcomes()
    train, live = logged[:1000], logged[1000:]
    router = costkit.Router.learned(train, models=[CHEAP, STRONG], target_quality=0.95)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "router.npz"
        router.save(path)
        print(f"trained on {len(train)} logged outcomes, saved to {path.name} ({path.stat().st_size // 1024} KiB)")
        router = costkit.Router.load(path)  # what a service does at start-up: no retraining
    cal = router.learned_model.calibration
    print(f"held-out calibration: {cal.shares[CHEAP]:.0%} to {CHEAP}, quality ratio >= "
          f"{cal.quality_ratio_lower_bound:.3f} of {STRONG} at {cal.confidence:.0%} confidence")

    ok = {ex["prompt"]: ex["ok"] for ex in live}

    def model_answer(req: FakeRequest) -> str:
        return "right" if ok[req.last_user_text][req.model] else "wrong"

    fake = FakeProvider()
    fake.on(model_answer)
    records = MemorySink()
    client = costkit.wrap(FakeOpenAI(fake), policies=[router], sink=records)
    with costkit.tags(feature="quiz"):
        for ex in live:
            client.chat.completions.create(
                model=STRONG, messages=[{"role": "user", "content": ex["prompt"]}], max_tokens=5, temperature=0
            )

    print(f"\nprovider calls: {fake.count()} ({fake.count(model=CHEAP)} to {CHEAP}, "
          f"{fake.count(model=STRONG)} to {STRONG})   cost records: {len(records.records)}")
    for r in records.records[:4]:
        p_ok = {k: round(v, 2) for k, v in r.notes["route_scores"].items() if k.startswith("p_ok")}
        print(f"  {r.model:<12} cost ${r.cost_usd:.6f} saved ${r.savings.get('router', 0):.6f}  {p_ok}")
    right = sum(c.reply.text == "right" for c in fake.calls)
    strong_right = sum(ex["ok"][STRONG] for ex in live)
    cost = sum(r.cost_usd or 0 for r in records.records)
    saved = sum(r.savings.get("router", 0) for r in records.records)
    print(f"\non {len(live)} unseen questions: routed {right} right vs {strong_right} all on {STRONG} "
          f"(quality ratio {right / strong_right:.3f})")
    print(f"cost ${cost:.6f} vs ${cost + saved:.6f} all on {STRONG}: router saved ${saved:.6f} "
          f"({saved / (cost + saved):.0%}); unlike the training prompts (sent to {STRONG}): "
          f"{sum(bool(r.notes.get('route_ood')) for r in records.records)}")


if __name__ == "__main__":
    main()
