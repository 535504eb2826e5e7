"""What a replay cost, what it got wrong, and what the oracle would have paid.

* **cost**: what the provider billed, read from the fake provider's own call log (not from costkit's
  records): every answered request at its model's price from LiteLLM's bundled cost map
  (``costkit.pricing``), batch items at batch prices, and requests the client gave up on (read
  timeouts) at the full answer the provider generated. 429s and 5xx are not billed.
* **wrong**: a request is answered right when the application receives its question's answer id.
  ``wrong_rate`` counts the wrong answers a configuration *causes*: an answer that is neither the
  right one nor what the baseline (the frontier model, full context) would have answered for that
  request -- a cache hit from another question, a model that does not know what the frontier
  model knows, an answer sentence compressed away. ``wrong_rate_abs`` counts every wrong answer,
  the frontier model's own mistakes included (MMLU's labels: gpt-4 is wrong on about a fifth).
  Failed requests (the application got an error) are ``failed_rate``, in neither.
* **oracle**: each distinct question answered once, by the cheapest model that answers it right
  (the weak one if it does, else the strong one), with no wasted context (a docs question gets
  only the paragraph that holds its answer), at batch prices when the question is only ever asked
  by offline work. ``oracle_ratio`` = cost / oracle cost.
* **overhead**: costkit's own time per call: the time from where costkit takes the request over from
  the SDK (the wrapped client's ``request``) until it hands the answer back, less the time of its
  provider attempts as costkit's records measured them (the SDK sending the request and parsing the
  answer, and the fake provider answering); the SDK's own work building the request from
  ``create``'s arguments is not counted. Over the requests that ran alone and had no failed attempt
  (a retry waits as the provider asked). A cache hit's overhead is its whole time in costkit.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from typing import Any

from workload_fake import answer_id
from workload_replay import Run
from workload_trace import STRONG, WEAK, Question, Workload

from costkit import Usage
from costkit.pricing import default_pricebook
from costkit.tokens import count_messages, count_text

PROVIDER_KINDS = {"call", "retry", "escalation", "judge", "summary", "embedding"}


def billed_usd(run: Run) -> tuple[float, dict[str, float]]:
    """What the provider billed in this run, in all and by the prompt family it answered."""
    book = default_pricebook()
    total = 0.0
    by_family: dict[str, float] = defaultdict(float)
    for i, c in enumerate(run.calls):
        if c.api != "chat":
            continue
        if c.failure == "timeout" and c.reply is not None:
            usage = Usage(input_tokens=count_messages(list(c.messages), c.model),
                          output_tokens=count_text(c.reply.text or "", c.model))  # fmt: skip
        elif c.status == 200 and c.usage is not None:
            usage = c.usage
        else:
            continue
        batch = run.batch_from is not None and i >= run.batch_from
        cost = book.cost(c.model, usage, batch=batch) or 0.0
        total += cost
        family = "nightly (batch)" if batch else _family(c)
        by_family[family] += cost
    return total, dict(by_family)


def _family(call: Any) -> str:
    text = call.request.system_text if call.request is not None else ""
    for family in ("faq", "exam", "docs"):
        if f"the {family} assistant" in text[:80]:
            return family
    return "other"


def oracle_question_usd(workload: Workload, q: Question, phrasing: int, batch: bool) -> float:
    model = WEAK if q.weak_correct else STRONG
    messages: list[dict[str, Any]] = [{"role": "system", "content": workload.systems[q.system_id]}]
    if q.context:
        messages.append({"role": "user", "name": "context", "content": q.context[q.gold]})
    messages.append({"role": "user", "content": q.phrasings[phrasing]})
    usage = Usage(input_tokens=count_messages(messages, model), output_tokens=count_text(q.answer(True), model))
    return default_pricebook().cost(model, usage, batch=batch) or 0.0


def oracle_usd(workload: Workload) -> float:
    return sum(oracle_by_prompt(workload).values())


def oracle_by_prompt(workload: Workload) -> dict[str, float]:
    """The oracle's cost by prompt family (as ``cost_by_prompt``); questions only ever asked offline
    are "nightly (batch)"."""
    first: dict[str, int] = {}
    lanes: dict[str, set[str]] = defaultdict(set)
    for r in workload.requests:
        first.setdefault(r.qid, r.phrasing)
        lanes[r.qid].add(r.lane)
    out: dict[str, float] = defaultdict(float)
    for qid, ph in first.items():
        q, batch = workload.questions[qid], lanes[qid] == {"offline"}
        out["nightly (batch)" if batch else q.family] += oracle_question_usd(workload, q, ph, batch)
    return dict(sorted(out.items()))


def upper_bound(clusters: list[list[int]], z: float = 1.645) -> float:
    """One-sided 95% upper bound of the caused-wrong rate, with each question's requests as one
    cluster (a popular question answered wrong is wrong every time it is asked: the requests are
    not independent draws)."""
    n, c = sum(m for _, m in clusters), len(clusters)
    if n == 0 or c < 2:
        return 1.0
    rate = sum(y for y, _ in clusters) / n
    var = sum((y - rate * m) ** 2 for y, m in clusters) / n**2 * c / (c - 1)
    return min(1.0, rate + z * var**0.5)


def judge(workload: Workload, run: Run) -> dict[str, Any]:
    """Right / caused wrong / wrong / failed counts, in all and by feature."""
    counts: Counter[str] = Counter()
    errors: Counter[str] = Counter(o.error for o in run.outcomes if o.error is not None)
    by_feature: dict[str, Counter[str]] = defaultdict(Counter)
    by_question: dict[Any, list[int]] = defaultdict(lambda: [0, 0])  # qid -> [caused, requests]
    for r, o in zip(workload.requests, run.outcomes, strict=True):
        q = workload.question(r)
        got = answer_id(o.text)
        baseline = q.answer_id if q.strong_correct else q.wrong_id
        kind = "failed" if got is None else "right" if got == q.answer_id else "wrong" if got == baseline else "caused"
        counts[kind] += 1
        by_feature[r.feature][kind] += 1
        by_feature[r.feature]["n"] += 1
        by_question[r.qid][0] += kind == "caused"
        by_question[r.qid][1] += 1
    n = len(run.outcomes)
    return {
        "calls": n,
        "wrong_rate": counts["caused"] / n,
        "wrong_rate_upper": upper_bound(list(by_question.values())),
        "wrong_rate_abs": (counts["caused"] + counts["wrong"]) / n,
        "failed_rate": counts["failed"] / n,
        "errors": dict(errors.most_common()),
        "by_feature": {
            f: {"requests": c["n"], "wrong_rate": c["caused"] / c["n"], "failed": c["failed"]}
            for f, c in sorted(by_feature.items())
        },
    }


def overhead_us(run: Run) -> tuple[float | None, float | None, int]:
    """p50 and p99 of costkit's own microseconds per call (module docstring), and the sample size."""
    if not run.records:
        return None, None, 0
    provider_s: dict[str, float] = defaultdict(float)
    failed: set[str] = set()
    for rec in run.records:
        if rec.task is None or rec.kind not in PROVIDER_KINDS:
            continue
        provider_s[rec.task] += rec.latency_ms / 1000.0
        if not rec.success:
            failed.add(rec.task)
    sample = [
        (o.inside_s - provider_s.get(f"r{o.index}", 0.0)) * 1e6
        for o in run.outcomes
        if o.inside_s is not None and not o.concurrent and o.text is not None and f"r{o.index}" not in failed
    ]
    if not sample:
        return None, None, 0
    sample.sort()
    return statistics.median(sample), sample[min(len(sample) - 1, int(0.99 * len(sample)))], len(sample)


def layer_figures(workload: Workload, run: Run) -> dict[str, Any]:
    """From costkit's records: what each layer saved, hits by source, and what costkit itself recorded."""
    if not run.records:
        return {}
    savings: dict[str, float] = defaultdict(float)
    hits: Counter[str] = Counter()
    recorded = 0.0
    for rec in run.records:
        recorded += rec.cost_usd or 0.0
        for layer, usd in rec.savings.items():
            savings[layer] += usd
        if rec.kind == "cache_hit":
            hits[rec.cache] += 1
    # a follower answered from a cache while its leader went to the provider: the hold failed (should be 0)
    hits_of = {rec.task for rec in run.records if rec.kind == "cache_hit" and rec.cache != "dedup"}
    from_cache = sum(
        1 for r in workload.requests if r.why and f"r{r.index}" in hits_of and f"r{r.leader}" not in hits_of
    )
    routed = Counter(rec.model for rec in run.records if rec.kind in ("call", "retry") and rec.task)
    return {
        "recorded_usd": recorded,
        "savings_by_layer": {k: round(v, 6) for k, v in sorted(savings.items())},
        "answered_by_cache": dict(sorted(hits.items())),
        "concurrent_followers_answered_from_a_cache": from_cache,
        "provider_attempts_by_model": dict(sorted(routed.items())),
    }


def score(workload: Workload, run: Run, baseline_usd: float | None, oracle: float) -> dict[str, Any]:
    cost, by_family = billed_usd(run)
    p50, p99, n = overhead_us(run)
    out: dict[str, Any] = {
        "cost_usd": round(cost, 6),
        "saving": None if not baseline_usd else round(1.0 - cost / baseline_usd, 4),
        "oracle_ratio": round(cost / oracle, 4) if oracle else None,
        "overhead_us_p50": None if p50 is None else round(p50, 1),
        "overhead_us_p99": None if p99 is None else round(p99, 1),
        "overhead_sample": n,
    }
    judged = judge(workload, run)
    out["wrong_rate"] = round(judged.pop("wrong_rate"), 5)
    out["wrong_rate_upper"] = round(judged.pop("wrong_rate_upper"), 5)
    out["wrong_rate_abs"] = round(judged.pop("wrong_rate_abs"), 5)
    out["failed_rate"] = round(judged.pop("failed_rate"), 5)
    out["calls"] = judged.pop("calls")
    out["provider_calls"] = sum(1 for c in run.calls if c.api == "chat")
    out["cost_by_prompt"] = {k: round(v, 6) for k, v in sorted(by_family.items())}
    out.update(judged)
    out.update(layer_figures(workload, run))
    out["wall_s"] = round(run.wall_s, 1)
    if run.note:
        out["note"] = run.note
    return out
