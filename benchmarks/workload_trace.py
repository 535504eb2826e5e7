"""The workload generator: real questions, real difficulty, real sizes and arrival times, as one replayable trace.

``generate(sources, spec)`` builds a :class:`Workload` deterministically from one split of the sources
(benchmarks/workload_data.py) and a :class:`Spec`; ``save`` / ``load_workload`` write and read it as
JSON, so a trace can be replayed exactly, or built once from other data and shared.

What a request is made of:

* **Tenants and features** with Zipf-skewed sizes (``tenant_zipf``, ``feature_zipf``); the features,
  largest first: ``faq`` (Quora questions), ``exam`` (MMLU questions asked as they are), ``docs``
  (SQuAD questions answered from 10 retrieved paragraphs) and ``nightly`` (offline work: the
  tenant's faq and exam questions answered again by a job, eligible for the batch lane).
* **Questions** with true duplicate structure: each QQP pair is a *topic*; a duplicate pair is one
  question with two phrasings, a non-duplicate pair two different questions (near misses, which
  must never be answered from each other). Topics, MMLU items and SQuAD questions are asked with
  Zipf popularity (``question_zipf``), in an order of popularity of the tenant's own; a repeat of a
  duplicate pair's question uses either phrasing. Each tenant has its own questions and system
  prompts: a question is ``(tenant, feature, topic, which question of the topic)``.
* **Difficulty** from MMLU: whether the weak and the strong model answer a question right is an
  MMLU item's label. An exam question is its own item; a faq or docs question is mapped to the
  MMLU item nearest in meaning (wordllama cosine, each item used at most ``ceil(n / items)``
  times), so hard topics stay hard.
* **Sizes and arrival times** from the Azure conversation trace: request ``i`` arrives at row
  ``i``'s time; a question's answer has the generated-token count of the row that first asked it;
  each tenant-feature's system prompt is sized from a row's context tokens (for docs, less the
  retrieved paragraphs), so prompt sizes follow the trace.
* **In-flight duplicates and client retries**: a request identical to one still being answered
  (modelled latency ``0.5 s + answer tokens / 40 per s``) arrives while it is in flight; and
  ``client_retry_rate`` of the interactive requests are sent again by the application after its own
  timeout, while the first is still in flight. The replay runs each such group concurrently.

Faults (429 / 5xx / timeouts) are injected by the fake provider at replay time
(benchmarks/workload_fake.py), at ``fault_rate`` of the provider requests.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np
from workload_data import MmluItem, Sources

WEAK, STRONG = "gpt-4o-mini", "gpt-4o"  # priced stand-ins for Mixtral-8x7B and GPT-4 (the MMLU labels)
FEATURES = ("faq", "exam", "docs", "nightly")  # largest first
FAMILY_OF = {"faq": "faq", "exam": "exam", "docs": "docs"}
FILLER = (
    "the policy covers account billing orders shipping returns support hours plans devices settings "
    "privacy security refunds invoices delivery warranty contact region language update access team "
    "report limit usage service product customer request review status answer detail note example"
).split()


@attrs.frozen
class Spec:
    """What the generator is asked for; every default was fixed before any configuration was run, except
    ``requests``, cut from 5,000 to 2,000 rows afterwards so that the whole run stays within minutes."""

    requests: int = 2000  # trace rows used (interactive and offline); client retries come on top
    tenants: int = 10
    tenant_zipf: float = 1.0
    feature_zipf: float = 1.0
    question_zipf: float = 1.0
    client_retry_rate: float = 0.02
    fault_rate: float = 0.03
    paragraphs: int = 10  # retrieved per docs question: the answer's and others of its article
    seed: int = 0


@attrs.frozen
class Question:
    """One distinct question of one tenant: its phrasings, its truth and what each model knows."""

    qid: str
    tenant: str
    family: str  # faq, exam or docs
    system_id: str
    phrasings: tuple[str, ...]
    weak_correct: bool
    strong_correct: bool
    answer_tokens: int
    context: tuple[str, ...] = ()  # docs: the retrieved paragraphs, in the order sent
    gold: int = -1  # docs: which of them holds the answer
    answer_sentence: str = ""  # docs: the sentence that must reach the model

    @property
    def answer_id(self) -> str:
        return f"ANSWER-{self.qid}"

    @property
    def wrong_id(self) -> str:
        return f"WRONG-{self.qid}"

    def answer(self, right: bool) -> str:
        """The model's reply: the answer id first, then filler up to the answer's size."""
        head = self.answer_id if right else self.wrong_id
        return head + " " + filler(self.answer_tokens - 8, self.qid)

    def right_for(self, model: str) -> bool | None:
        """Whether ``model`` knows the answer (None: a model the labels say nothing about)."""
        return {WEAK: self.weak_correct, STRONG: self.strong_correct}.get(model)


@attrs.frozen
class Request:
    """One request of the application, in arrival order."""

    index: int
    t_s: float
    tenant: str
    feature: str  # faq, exam, docs or nightly
    qid: str
    phrasing: int
    lane: str  # interactive or offline
    leader: int | None = None  # set on a request that arrives while an identical one (this index) is in flight
    why: str = ""  # "in_flight" or "client_retry" for such a request


@attrs.frozen
class Workload:
    spec: Spec
    split: str
    systems: dict[str, str]
    questions: dict[str, Question]
    requests: tuple[Request, ...]
    router_examples: tuple[dict[str, Any], ...]

    def question(self, request: Request) -> Question:
        return self.questions[request.qid]

    def text(self, request: Request) -> str:
        return self.questions[request.qid].phrasings[request.phrasing]

    def messages(self, request: Request) -> list[dict[str, Any]]:
        """What the application sends: its system prompt, the retrieved paragraphs (docs), the question."""
        q = self.questions[request.qid]
        context = [{"role": "user", "name": "context", "content": p} for p in q.context]
        return [{"role": "system", "content": self.systems[q.system_id]}, *context,
                {"role": "user", "content": q.phrasings[request.phrasing]}]  # fmt: skip


def filler(tokens: int, seed_text: str) -> str:
    """Deterministic words (about one token each) standing for prose of that size."""
    if tokens <= 0:
        return ""
    rng = np.random.default_rng(abs(hash_text(seed_text)) % (2**32))
    words = rng.choice(len(FILLER), size=tokens)
    return " ".join(FILLER[i] for i in words) + "."


def hash_text(text: str) -> int:
    import hashlib

    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")


def zipf_weights(n: int, s: float) -> np.ndarray:
    w = 1.0 / np.arange(1, n + 1) ** s
    return w / w.sum()


def latency_s(answer_tokens: int) -> float:
    """Modelled time to answer (for in-flight overlap only): first token, then 40 tokens a second."""
    return 0.5 + answer_tokens / 40.0


# --------------------------------------------------------------------------------------------- pools


@attrs.frozen
class Topic:
    """Questions that belong together: one per phrasing group (a near-miss pair is two questions)."""

    questions: tuple[tuple[str, ...], ...]
    labels: tuple[MmluItem, ...]  # one per question
    docs: Any = None  # the SquadQuestion of a docs topic


def faq_topics(sources: Sources, mapping: dict[str, MmluItem]) -> list[Topic]:
    topics, seen = [], set()
    for pair in sources.qqp:
        a, b = pair.a.strip(), pair.b.strip()
        if not a or not b or a in seen or b in seen or a.lower() == b.lower():
            continue  # a text asked in two topics, or a pair that is one text, would make the truth ambiguous
        seen.update((a, b))
        if pair.duplicate:
            topics.append(Topic(((a, b),), (mapping[a],)))
        else:
            topics.append(Topic(((a,), (b,)), (mapping[a], mapping[b])))
    return topics


def exam_topics(sources: Sources) -> list[Topic]:
    out, seen = [], set()
    for item in sources.mmlu:
        if item.prompt not in seen:
            seen.add(item.prompt)
            out.append(Topic(((item.prompt,),), (item,)))
    return out


def docs_topics(sources: Sources, mapping: dict[str, MmluItem]) -> list[Topic]:
    out, seen = [], set()
    for q in sources.squad:
        if q.question not in seen:
            seen.add(q.question)
            out.append(Topic(((q.question,),), (mapping[q.question],), docs=q))
    return out


def nearest_items(texts: Sequence[str], items: Sequence[MmluItem], seed: int) -> dict[str, MmluItem]:
    """Each text -> the MMLU item nearest in meaning that still has room (each used <= ceil(n/m) times)."""
    from costkit.embedders import default_embedder

    unique = sorted(set(texts))
    if not unique:
        return {}
    embed = default_embedder()
    tv = np.asarray(embed(unique), dtype=np.float32)
    iv = np.asarray(embed([i.prompt for i in items]), dtype=np.float32)
    room = np.full(len(items), math.ceil(len(unique) / len(items)))
    sims = tv @ iv.T
    out: dict[str, MmluItem] = {}
    for t in np.random.default_rng(seed).permutation(len(unique)):
        order = np.argsort(-sims[t])
        j = next(int(j) for j in order if room[j] > 0)
        room[j] -= 1
        out[unique[t]] = items[j]
    return out


# --------------------------------------------------------------------------------------------- generate


def generate(sources: Sources, spec: Spec = Spec()) -> Workload:
    rng = np.random.default_rng(spec.seed)
    qqp_texts = [t.strip() for p in sources.qqp for t in (p.a, p.b)]
    mapping = nearest_items(qqp_texts + [q.question for q in sources.squad], sources.mmlu, spec.seed)
    pools = {
        "faq": faq_topics(sources, mapping),
        "exam": exam_topics(sources),
        "docs": docs_topics(sources, mapping),
    }
    tenants = [f"t{i:02d}" for i in range(spec.tenants)]
    tenant_w = zipf_weights(len(tenants), spec.tenant_zipf)
    feature_w = zipf_weights(len(FEATURES), spec.feature_zipf)
    # each tenant's popularity order over each pool, and its per-rank weights
    orders = {(t, f): rng.permutation(len(pool)) for t in tenants for f, pool in pools.items()}
    topic_w = {f: zipf_weights(len(pool), spec.question_zipf) for f, pool in pools.items()}
    rows = list(sources.trace)
    while len(rows) < spec.requests:  # a longer run than the split: the trace again, later
        span = rows[-1].t_s + 1.0
        rows += [attrs.evolve(r, t_s=r.t_s + span) for r in sources.trace]
    rows = rows[: spec.requests]

    systems: dict[str, str] = {}
    questions: dict[str, Question] = {}
    mean_docs = _mean_context_tokens(pools["docs"], spec.paragraphs)

    def system_for(tenant: str, family: str) -> str:
        sid = f"{tenant}:{family}"
        if sid not in systems:
            size = rows[int(rng.integers(len(rows)))].context_tokens
            size = max(40, size - (mean_docs if family == "docs" else 30))
            head = f"You are the {family} assistant of tenant {tenant}. Answer from the policy below.\n"
            systems[sid] = head + filler(size - 20, sid)
        return sid

    def ask(tenant: str, family: str, row_tokens: int) -> tuple[str, int]:
        pool = pools[family]
        rank = int(rng.choice(len(pool), p=topic_w[family]))
        ti = int(orders[(tenant, family)][rank])
        topic = pool[ti]
        k = int(rng.integers(len(topic.questions)))
        phrasings = topic.questions[k]
        qid = f"{tenant}:{family}:{ti}:{k}"
        if qid not in questions:
            label = topic.labels[k]
            context, gold, sentence = (), -1, ""
            if topic.docs is not None:
                context, gold = _retrieved(topic.docs, spec.paragraphs, qid)
                sentence = topic.docs.answer_sentence
            questions[qid] = Question(
                qid=qid, tenant=tenant, family=family, system_id=system_for(tenant, family),
                phrasings=phrasings, weak_correct=label.weak_correct, strong_correct=label.strong_correct,
                answer_tokens=max(12, row_tokens), context=context, gold=gold, answer_sentence=sentence,
            )  # fmt: skip
        return qid, int(rng.integers(len(phrasings)))

    interactive: list[Request] = []
    offline: list[Request] = []
    nightly_seen: set[tuple[str, int]] = set()
    for i, row in enumerate(rows):
        tenant = tenants[int(rng.choice(len(tenants), p=tenant_w))]
        feature = FEATURES[int(rng.choice(len(FEATURES), p=feature_w))]
        if feature != "nightly":
            qid, ph = ask(tenant, FAMILY_OF[feature], row.generated_tokens)
            interactive.append(Request(i, row.t_s, tenant, feature, qid, ph, "interactive"))
            continue
        for _ in range(20):  # a nightly job answers each question once: draw again on a repeat
            family = "faq" if rng.random() < feature_w[0] / (feature_w[0] + feature_w[1]) else "exam"
            qid, ph = ask(tenant, family, row.generated_tokens)
            if (qid, ph) not in nightly_seen:
                nightly_seen.add((qid, ph))
                offline.append(Request(i, row.t_s, tenant, "nightly", qid, ph, "offline"))
                break
    requests = _in_flight(interactive, questions, spec, rng)
    n = len(requests)
    requests += [attrs.evolve(r, index=n + j) for j, r in enumerate(offline)]
    examples = tuple(
        {"prompt": m.prompt, "ok": {WEAK: m.weak_correct, STRONG: m.strong_correct}} for m in sources.router_train
    )
    return Workload(spec, sources.split, systems, questions, tuple(requests), examples)


def _retrieved(docs: Any, paragraphs: int, qid: str) -> tuple[tuple[str, ...], int]:
    """The answer's paragraph and others of its article, in an order fixed per question."""
    rng = np.random.default_rng(hash_text(qid) % (2**32))
    others = [j for j in range(len(docs.paragraphs)) if j != docs.gold]
    picks = [*(int(j) for j in rng.choice(others, size=min(paragraphs - 1, len(others)), replace=False)), docs.gold]
    rng.shuffle(picks)
    return tuple(docs.paragraphs[j] for j in picks), picks.index(docs.gold)


def _mean_context_tokens(topics: Sequence[Topic], paragraphs: int) -> int:
    """About how many tokens the retrieved paragraphs of a docs question take (4 characters a token)."""
    if not topics:
        return 0
    sizes = [sum(len(p) for p in t.docs.paragraphs) / len(t.docs.paragraphs) for t in topics]
    return int(float(np.mean(sizes)) * paragraphs / 4)


def _in_flight(
    requests: list[Request], questions: dict[str, Question], spec: Spec, rng: np.random.Generator
) -> list[Request]:
    """Mark requests that arrive while an identical one is being answered; add the client retries.

    Renumbers the interactive requests in arrival order (a client retry right after its original)."""
    out: list[Request] = []
    flying: dict[tuple[str, int], tuple[int, float]] = {}
    for r in requests:
        key = (r.qid, r.phrasing)
        lead = flying.get(key)
        if lead is not None and r.t_s < lead[1]:
            out.append(attrs.evolve(r, index=len(out), leader=lead[0], why="in_flight"))
            continue
        index = len(out)
        flying[key] = (index, r.t_s + latency_s(questions[r.qid].answer_tokens))
        out.append(attrs.evolve(r, index=index))
        if rng.random() < spec.client_retry_rate:
            out.append(attrs.evolve(r, index=len(out), leader=index, why="client_retry"))
    return out


# --------------------------------------------------------------------------------------------- files


def save(workload: Workload, path: Path) -> None:
    doc = {
        "spec": attrs.asdict(workload.spec),
        "split": workload.split,
        "systems": workload.systems,
        "questions": [attrs.asdict(q) for q in workload.questions.values()],
        "requests": [attrs.astuple(r) for r in workload.requests],
        "router_examples": list(workload.router_examples),
    }
    path.write_text(json.dumps(doc))


def load_workload(path: Path) -> Workload:
    doc = json.loads(path.read_text())
    questions = {}
    for q in doc["questions"]:
        q["phrasings"], q["context"] = tuple(q["phrasings"]), tuple(q["context"])
        questions[q["qid"]] = Question(**q)
    return Workload(
        spec=Spec(**doc["spec"]),
        split=doc["split"],
        systems=doc["systems"],
        questions=questions,
        requests=tuple(Request(*r) for r in doc["requests"]),
        router_examples=tuple(doc["router_examples"]),
    )


def summary(workload: Workload) -> dict[str, Any]:
    """What the trace holds: counts by feature, repeats, paraphrases, near misses, groups."""
    reqs = workload.requests
    first: dict[str, int] = {}
    seen: set[tuple[str, int]] = set()
    repeats = paraphrases = 0
    for r in reqs:
        if r.qid in first:
            repeats += (r.qid, r.phrasing) in seen
            paraphrases += (r.qid, r.phrasing) not in seen
        first.setdefault(r.qid, r.index)
        seen.add((r.qid, r.phrasing))
    by_feature: dict[str, int] = {}
    for r in reqs:
        by_feature[r.feature] = by_feature.get(r.feature, 0) + 1
    topics_asked: dict[str, set[str]] = {}
    for qid in first:
        topic = qid.rsplit(":", 1)[0]
        topics_asked.setdefault(topic, set()).add(qid)
    return {
        "requests": len(reqs),
        "by_feature": by_feature,
        "distinct_questions": len(first),
        "exact_repeats": repeats,
        "paraphrased_repeats": paraphrases,
        "near_miss_pairs_asked": sum(1 for v in topics_asked.values() if len(v) > 1),
        "in_flight_duplicates": sum(r.why == "in_flight" for r in reqs),
        "client_retries": sum(r.why == "client_retry" for r in reqs),
        "offline": sum(r.lane == "offline" for r in reqs),
        "tenants": len({r.tenant for r in reqs}),
        "trace_span_s": round(max((r.t_s for r in reqs), default=0.0), 1),
    }
